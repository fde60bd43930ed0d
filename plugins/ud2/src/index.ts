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
    // Last in the default chain: it works everywhere and takes what the others refuse.
    defaultChain: { rank: 900 },
    variants: [
      { name: "ud2", summary: "0f 0b, SIGILL (the default)" },
      { name: "int3", summary: "cc 90, SIGTRAP" },
      { name: "hlt", summary: "f4 90, SIGSEGV (#GP: privileged in user mode)" },
      { name: "int4", summary: "cd 04, SIGSEGV (#OF through the overflow gate)" },
    ],
    runtime: {
      nativeDir: fileURLToPath(new URL("../native", import.meta.url)),
      lib: "libsysi-ud2.so",
      entry: "sysi_ud2_entry",
    },
  };
  return strategy;
};

export default factory;
