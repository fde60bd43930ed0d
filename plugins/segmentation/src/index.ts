/**
 * @sysi/segmentation — syscall → `lcall *(%rax)` (ff 18): a far call through the far pointer
 * page 0 holds at the syscall number (`33 00 …`: selector 0x33, offset 0x00330033) into the
 * runtime's entry. Even numbers known at plan time only (variant `any`: unknown ones too, odd
 * ones then fault and are performed by the SIGSEGV claim). Needs page 0. An experiment: see
 * docs/segmentation.md and `sysi segmentation probe`.
 */
import { join } from "node:path";
import type { Strategy, StrategyFactory } from "@sysi/core/strategy";
import { checkOptions, planSite, variantOf } from "./plan.ts";

const factory: StrategyFactory = (): Strategy => ({
  name: "segmentation",
  summary: "syscall → lcall *(%rax) through page-0 far pointers (even numbers known at plan time; needs page 0)",
  requires: ["page0"],
  planVersion: "segmentation-1",
  planSite: (site, ctx) => planSite(site, ctx, variantOf(ctx.options)),
  checkOptions,
  variants: [
    { name: "even", summary: "sites whose number is known here and even (the far call never faults)" },
    {
      name: "any",
      summary: "also sites whose number is unknown here: odd numbers fault, and the SIGSEGV claim performs them",
    },
  ],
  // No default-chain place, on purpose: page 0 holds readable far pointers, so NULL reads in
  // the program and NULL pointer arguments to system calls stop faulting (as zpoline without
  // protection keys, and no protection key can help: the far call reads page 0 as data), it
  // covers only even numbers, and it is no faster than zpoline (docs/segmentation.md).
  claims: { page0: "far pointers (33 00 …) read by lcall *(%rax)" },
  // the bench's loop passes the number in a register: only the `any` variant takes its site
  // (even numbers: the far call; odd ones, getpid 39 and clock_getres 229: the fault path)
  bench: { order: 400, rows: [{ spec: "segmentation:any", sweepNr: true }] },
  runtime: {
    nativeDir: join(import.meta.dir, "..", "native"),
    lib: "libsysi-segmentation.so",
    entry: "sysi_segmentation_entry",
    lowHook: true,
  },
});

export default factory;
