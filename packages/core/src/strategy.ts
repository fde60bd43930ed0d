/**
 * The contract every strategy plugin implements (bundled or third-party).
 *
 * A plugin package declares `"sysi": { "strategy": "./src/index.ts" }` in its package.json; that
 * module's default export is a factory `(api: SysiCoreApi) => Strategy`, so the plugin imports
 * @sysi/core for types only and uses the CLI's own copy of core at run time.
 */
import type { ElfFile, FunctionRange } from "./elf/types.ts";
import type { Site } from "./x86/types.ts";

/** Ids of host checks (the same ones `sysi doctor` prints). */
export type HostCheckId =
  | "page0" // address 0 can be mapped (root/CAP_SYS_RAWIO or vm.mmap_min_addr=0)
  | "modify_ldt"
  | "sud" // Syscall User Dispatch
  | "pkeys"
  | "ptrace"
  | "seccomp"
  | "cc"; // a C compiler to build runtimes

export interface HostFacts {
  /** Result of each check; absent = not checked. */
  checks: Partial<Record<HostCheckId, boolean>>;
}

/** One bytes change in the module image. */
export interface BytePatch {
  vaddr: number;
  /** Bytes the module must hold there before patching (checked by the runtime before writing). */
  old: Uint8Array;
  /** Bytes written. Same length as `old`, at most 16. */
  bytes: Uint8Array;
}

/**
 * A trampoline the strategy needs at a fixed address (punning) or anywhere (`vaddr: null`).
 * `code` is position-dependent: built for `vaddr`. `kind` lets the strategy's runtime know what
 * to do with it; libsysi only maps it.
 */
export interface TrampolineRequest {
  vaddr: number | null;
  code: Uint8Array;
  kind: string;
}

export interface SitePatch {
  /**
   * One contiguous byte change (at most 16 bytes) that contains the site: usually just the 2-byte
   * site; punning may also rewrite the following (or an evicted neighbouring) instruction.
   */
  patch: BytePatch;
  trampolines?: TrampolineRequest[];
  /** Two strategy-defined 64-bit words passed to the runtime with the site (e.g. a gadget slot). */
  aux?: [bigint, bigint];
  /** Short human tag, e.g. the tactic ("T1", "punned-b"), for `sysi plan` statistics. */
  tactic?: string;
}

export interface Refusal {
  /** Stable kebab-case reason code, e.g. "red-zone-in-use", "page0-unavailable", "uncertain-site". */
  reason: string;
  detail?: string;
}

export type PlanResult = SitePatch | Refusal;

export function isRefusal(r: PlanResult): r is Refusal {
  return (r as Refusal).reason !== undefined;
}

/** Decoded facts about one instruction, for planners that look around a site. */
export interface InsnInfo {
  vaddr: number;
  length: number;
  bytes: Uint8Array;
  /** Branch/call/ret/jump-table/etc.: changes control flow. */
  isBranch: boolean;
  /** Has a RIP-relative memory operand. */
  ripRelative: boolean;
  /** Mnemonic in lowercase, e.g. "mov", "syscall". */
  mnemonic: string;
  /**
   * Base register of the explicit memory operand, lowercase ("rsp", "rbp", "rip", "rax", …);
   * absent when there is no memory operand or it has no base register. (`lea` counts.)
   */
  memBase?: string;
  /** Signed displacement of the explicit memory operand (relative to next-insn for rip); absent without one. */
  memDisp?: number;
}

/** What a planner may look at. Everything is read-only and derived from the module file. */
export interface SiteContext {
  elf: ElfFile;
  /** The module's function ranges (symbols + .eh_frame). */
  functions: readonly FunctionRange[];
  /** Decode the instruction at vaddr (null if invalid or outside executable segments). */
  decodeAt(vaddr: number): InsnInfo | null;
  /** Decode the whole function containing vaddr, in address order (null if the function is unknown). */
  functionInsns(vaddr: number): InsnInfo[] | null;
  /** Addresses known to be jump/call targets or function starts (never patch across them). */
  isKnownTarget(vaddr: number): boolean;
  host: HostFacts;
  /** Strategy options from the command line (`-s ud2:int3` gives { variant: "int3" }). */
  options: Record<string, string>;
}

export interface StrategyRuntime {
  /** Directory holding the C/asm sources and a Makefile honouring CC and OUT. */
  nativeDir: string;
  /** File name of the shared object the Makefile builds into $(OUT), e.g. "libsysi-zpoline.so". */
  lib: string;
  /** Exported symbol of type `const struct sysi_strategy_ops *(*)(void)` that libsysi calls after dlopen. */
  entry: string;
  /**
   * The runtime's entries live below 4 GiB (zpoline's page 0 and entry pages): when this strategy
   * heads the chain, a hook library is loaded below 64 GiB at a random address (SYSI_HOOK_LOW=1
   * in sysi.h), where the entries reach it by a near call rather than one 2^37 bytes away or more.
   */
  lowHook?: boolean;
}

export interface Strategy {
  name: string;
  summary: string;
  /** Host checks that must pass; otherwise every site is refused with `host-<check>-unavailable`. */
  requires: HostCheckId[];
  /** Bump when the planner's output changes: part of the plan-cache key. */
  planVersion: string;
  planSite(site: Site, ctx: SiteContext): PlanResult;
  runtime: StrategyRuntime;
  /** Optional: called once per module after all sites are planned (punning packs pages here). */
  finishModule?(ctx: SiteContext, taken: readonly { site: Site; patch: SitePatch }[]): void;
  /**
   * Optional: check a chain element's options (`-s name:variant`, `-s name:key=val`) when the
   * chain is resolved, before anything is planned: null when they are valid, else a one-line
   * reason (`sysi` then stops with STRATEGY_OPTION). Without it, options reach planSite
   * unchecked.
   */
  checkOptions?(options: Readonly<Record<string, string>>): string | null;
}

/** What the CLI passes to a plugin's factory. */
export interface SysiCoreApi {
  version: string;
  /** Absolute path of the directory with sysi.h (for plugin native builds: -I). */
  includeDir: string;
}

export type StrategyFactory = (api: SysiCoreApi) => Strategy;
