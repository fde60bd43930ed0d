/**
 * int3trap — syscall → int3; nop (cc 90), emulated by the runtime's SIGTRAP handler.
 * Wiring only: the planner is in plan.ts, the runtime in native/.
 */
import { fileURLToPath } from "node:url";
import type { Strategy, StrategyFactory } from "@sysi/core/strategy";
import { checkOptions, planSite } from "./plan.ts";

const factory: StrategyFactory = () => {
  const strategy: Strategy = {
    name: "int3trap",
    summary: "syscall → int3; nop, emulated in a SIGTRAP handler (known, complete calls only)",
    requires: [], // host checks that must pass, e.g. ["page0"]
    planVersion: "1", // bump when the planner's output changes (part of the plan-cache key)
    planSite, // stateless; keep per-module state in planModule(ctx) → { planSite, finish }
    checkOptions,
    // no defaultChain: used only when named with -s (add { rank } to join the default chain)
    runtime: {
      nativeDir: fileURLToPath(new URL("../native", import.meta.url)),
      lib: "libsysi-int3trap.so",
      entry: "sysi_int3trap_entry",
    },
  };
  return strategy;
};

export default factory;
