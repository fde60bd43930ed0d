/**
 * @sysi/ud2 — syscall/sysenter → a 2-byte trap (ud2, or int3/hlt/int $4 with `-s ud2:int3`,
 * `-s ud2:hlt`, `-s ud2:int4`); the runtime's signal handler emulates the call. Works everywhere,
 * slowly.
 */
import { fileURLToPath } from "node:url";
import type { Strategy, StrategyFactory } from "@sysi/core/strategy";
import { checkOptions, planSite } from "./plan.ts";

const factory: StrategyFactory = () => {
  const strategy: Strategy = {
    name: "ud2",
    summary: "syscall → ud2 (or int3/hlt/int $4), trapped and emulated in a signal handler",
    requires: [],
    planVersion: "ud2-1",
    planSite,
    checkOptions,
    runtime: {
      nativeDir: fileURLToPath(new URL("../native", import.meta.url)),
      lib: "libsysi-ud2.so",
      entry: "sysi_ud2_entry",
    },
  };
  return strategy;
};

export default factory;
