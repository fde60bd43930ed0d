/**
 * @sysi/punning — E9Patch-style instruction punning: each `syscall`/`sysenter` becomes a jump to a
 * per-site trampoline that enters the shared dispatcher. Wiring only; see plan.ts.
 */

import { fileURLToPath } from "node:url";
import type { Strategy, StrategyFactory } from "@sysi/core/strategy";
import { resetSpace } from "./pages.ts";
import { checkOptions, planSite } from "./plan.ts";
import { finishModule } from "./stats.ts";

export { moduleLayout, resetSpace, spaceFor } from "./pages.ts";
export { DEFAULT_TACTICS, parseTactics, planSite, planSiteDetailed } from "./plan.ts";
export { pageStats } from "./stats.ts";

export const PLAN_VERSION = "9";

const factory: StrategyFactory = () => {
  const s: Strategy = {
    name: "punning",
    summary: "E9Patch-style jumps (plain, punned, short, evicting) to per-site trampolines on shared pages",
    requires: [],
    planVersion: PLAN_VERSION,
    // One planner per module: a fresh trampoline space for the module (pages.ts keeps it per
    // ElfFile; dropping it here means planning the same file twice starts from nothing).
    planModule(ctx) {
      resetSpace(ctx.elf);
      return { planSite, finish: finishModule };
    },
    checkOptions,
    // First in the default chain: a direct jump per site, no page 0, no signals.
    defaultChain: { rank: 100 },
    // measured after zpoline, the cost it is compared with; trampolines may differ per number
    // goals (the punning issue): ≤ 6 ns without the syscall at any number, within 1 ns of zpoline
    bench: {
      order: 200,
      rows: [{ spec: "punning", sweepNr: true, goals: { selfNs: 6, near: { spec: "zpoline", withinNs: 1 } } }],
    },
    options: [
      {
        key: "tactics",
        summary: "the tactics to try, in order: sound pun, succ, neigh (the default); unsafe jmp, punx, short, evict",
        values: "a +-list, e.g. punning:tactics=pun+succ",
      },
    ],
    runtime: {
      nativeDir: fileURLToPath(new URL("../native", import.meta.url)),
      lib: "libsysi-punning.so",
      entry: "sysi_punning_ops",
    },
  };
  return s;
};

export default factory;
