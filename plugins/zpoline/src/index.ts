/**
 * @sysi/zpoline — syscall → `call *%rax` (ff d0) into a page-0 trampoline (E9 layout: two
 * direct jumps whatever the syscall number), with a return-address check that makes a NULL
 * function-pointer call still die with SIGSEGV. Needs page 0 (root or vm.mmap_min_addr=0).
 */
import { join } from "node:path";
import type { Strategy, StrategyFactory } from "@sysi/core/strategy";
import { planSite } from "./plan.ts";

const factory: StrategyFactory = (): Strategy => ({
  name: "zpoline",
  summary: "syscall → call *%rax into a page-0 trampoline (needs page 0; red-zone-safe sites only)",
  requires: ["page0"],
  planVersion: "zpoline-1",
  planSite,
  // After punning (a direct jump, no page 0), before ud2 (a signal per call). Without a
  // protection key page 0 is readable: NULL reads in the program, and the kernel's reads of
  // NULL pointer arguments, would stop faulting, so only `-s zpoline` uses it there.
  defaultChain: {
    rank: 200,
    needs: ["page0", "pkeys"],
    why: {
      page0: "page 0 cannot be mapped",
      pkeys:
        "no protection keys, so page 0 would be readable: NULL reads would stop faulting and NULL pointer arguments to system calls would no longer fail with EFAULT",
    },
  },
  claims: { page0: "a jump table executed by call *%rax" },
  // the sled's length before the trampoline depends on the number (call *%rax lands at %rax)
  // goal: ≤ 5 ns per call without the syscall at any number (the zpoline issue)
  bench: { order: 100, rows: [{ spec: "zpoline", sweepNr: true, goals: { selfNs: 5 } }] },
  checkOptions: (options) => {
    const given = Object.entries(options).map(([k, v]) => (k === "variant" ? v : `${k}=${v}`));
    return given.length === 0 ? null : `takes no options (got "${given.join(":")}")`;
  },
  runtime: {
    nativeDir: join(import.meta.dir, "..", "native"),
    lib: "libsysi-zpoline.so",
    entry: "sysi_zpoline_entry",
    lowHook: true,
  },
});

export default factory;
