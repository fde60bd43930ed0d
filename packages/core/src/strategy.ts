/**
 * The contract every strategy plugin implements (bundled or third-party), version
 * STRATEGY_CONTRACT_VERSION (docs/writing-a-strategy.md states it in prose).
 *
 * A plugin package declares `"sysi": { "strategy": "./src/index.ts", "core": "^0.1.0" }` in its
 * package.json: the module whose default export is a factory `(api: SysiCoreApi) => Strategy`,
 * and the semver range of @sysi/core it was written against (the TypeScript contract here and
 * the C ABI of native/include/sysi.h both ship with core). The CLI refuses a plugin whose range
 * does not cover its core, in one line naming both versions. The plugin imports @sysi/core for
 * types only and uses the CLI's own copy of core at run time.
 *
 * Everything a chain needs to know about a strategy lives in the strategy: its host
 * requirements, its place in the default chain, its variants and options, and (through
 * planModule) the state it keeps while planning one module.
 */
import type { ElfFile, FunctionRange } from "./elf/types.ts";
import type { Site } from "./x86/types.ts";

export type { ElfFile, FunctionRange } from "./elf/types.ts";
export type { Site, SiteKind } from "./x86/types.ts";

/**
 * Version of this contract. Major: a change that breaks plugins written against an older one
 * (a field they must now provide, a changed meaning); minor: optional additions.
 *   1.0 — Strategy with planModule/ModulePlanner, defaultChain, variants, options; the
 *         package.json `sysi.core` range.
 *   1.1 — optional Strategy.claims (resources a runtime takes for itself: one per chain).
 *   1.2 — optional Strategy.bench (what `sysi bench` measures of the strategy).
 *   1.3 — TakenSite.fallback, and ModulePlanner.finish may give taken sites back (FinishResult).
 *   1.4 — optional BenchRow.goals (the limits `sysi bench`'s headline checks a row group against).
 */
export const STRATEGY_CONTRACT_VERSION = "1.4";

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

/** A site a strategy took (its patch survived the composite's checks and came first). */
export interface TakenSite {
  site: Site;
  patch: SitePatch;
  /**
   * Contract 1.3: the strategy after this one in the chain that would take the site if this one
   * gave it back (its patch lies within this one's range, so it fits whatever else was taken);
   * absent when nothing would, i.e. giving the site back leaves it unpatched.
   */
  fallback?: string;
}

/**
 * What ModulePlanner.finish may return (contract 1.3). Numeric fields are shown by `sysi plan`
 * (e.g. page counts); `giveBack` names taken sites the strategy no longer takes (only sites whose
 * TakenSite has a fallback: others are ignored), with the refusal the plan records for it; the
 * fallback strategy takes each instead.
 */
export interface FinishResult {
  giveBack?: readonly { vaddr: number; reason: string; detail?: string }[];
  [stat: string]: unknown;
}

/**
 * The planner of one module, created by Strategy.planModule for each module planned: whatever
 * a strategy keeps while planning a module (trampoline space, pages, counters) lives in this
 * object and dies with it, never in module-level maps. The composite planner calls planSite
 * for the module's sites in address order, then finish once.
 */
export interface ModulePlanner {
  planSite(site: Site, ctx: SiteContext): PlanResult;
  /**
   * Optional: once, after every site of the module was offered to every strategy, with the
   * sites this strategy took. May change those patches in place (e.g. move trampolines) and
   * add trampolines. The numeric fields of an object it returns are shown by `sysi plan`
   * (e.g. page counts); its `giveBack` (contract 1.3, FinishResult) hands taken sites that have a
   * fallback to that strategy; anything else it returns is ignored.
   */
  finish?(ctx: SiteContext, taken: readonly TakenSite[]): unknown;
}

/**
 * Where a strategy goes in the default chain (`sysi run` without -s), lowest rank first. A
 * strategy without it is used only when named with -s.
 */
export interface DefaultChainPlace {
  /** Order in the default chain: bundled ones use 100 (punning), 200 (zpoline), 900 (ud2). */
  rank: number;
  /**
   * Host checks that must pass for the strategy to join the default chain, beyond `requires`
   * (which must pass for it to plan anything): e.g. zpoline works without protection keys,
   * but only with them does it leave NULL reads faulting, so it joins by default only then.
   */
  needs?: HostCheckId[];
  /** One line per check of `needs`/`requires` saying what its absence would cost (`sysi doctor`). */
  why?: Partial<Record<HostCheckId, string>>;
}

/** A named variant, chosen with `-s name:variant`. */
export interface StrategyVariant {
  name: string;
  summary: string;
}

/**
 * One group of `sysi bench` rows: the strategy as one chain element (`name` or `name:variant`),
 * measured with the passthrough, count and self-answering hooks at an inline syscall and at
 * libc's syscall().
 */
export interface BenchRow {
  /** The chain element measured, e.g. "zpoline" or "ud2:int3". */
  spec: string;
  /**
   * The entry cost may depend on the syscall number (e.g. a page-0 sled position): the
   * self-answering hook is also measured at other numbers.
   */
  sweepNr?: boolean;
  /**
   * The trap instruction its sites become (emulated in a signal handler): the bench adds the
   * kernel's bare round trip for it as a floor row, and the headline's trap goal.
   */
  trap?: "ud2" | "int3" | "hlt" | "int4";
  /** Optional (contract 1.4): the limits the bench's headline checks this group against. */
  goals?: BenchGoals;
}

/**
 * What a strategy promises about its cost, checked by `sysi bench`'s headline on the median and
 * on the best ~1 ms block of the same run. Every field is optional; without goals the headline
 * shows the figures and checks nothing.
 */
export interface BenchGoals {
  /**
   * The self-answering hook at an inline site (no syscall: the instrumentation alone) costs at
   * most this many ns per call, at every syscall number measured (the worst one counts).
   */
  selfNs?: number;
  /**
   * The worst self-answering figure is at most `withinNs` above that of another row group of the
   * same run (`spec`, e.g. "zpoline"); not checked when that group was not measured.
   */
  near?: { spec: string; withinNs: number };
  /**
   * With `trap`: the self-answering row costs at most this many times the same trap's bare
   * kernel round trip (a handler that only steps over it), measured in the same run.
   */
  trapRatio?: number;
}

/** What `sysi bench` measures of a strategy (contract 1.2). */
export interface StrategyBench {
  /**
   * Place among the strategies in the bench's tables, lowest first (bundled: zpoline 100,
   * punning 200, ud2 300, segmentation 400); without it, after those, by name.
   */
  order?: number;
  /** The row groups, in table order. */
  rows: readonly BenchRow[];
}

/** A `-s name:key=value` option. */
export interface StrategyOption {
  key: string;
  summary: string;
  /** Example or allowed values, for `sysi strategies`. */
  values?: string;
}

export interface Strategy {
  name: string;
  summary: string;
  /** Host checks that must pass; otherwise every site is refused with `host-<check>-unavailable`. */
  requires: HostCheckId[];
  /** Bump when the planner's output changes: part of the plan-cache key. */
  planVersion: string;
  /**
   * The planner for one module (preferred): called once per module planned, after the host
   * checks of `requires` passed. A strategy gives planModule, planSite, or both (planModule
   * wins); planSite alone is a planner without per-module state.
   */
  planModule?(ctx: SiteContext): ModulePlanner;
  /** A planner without per-module state: the same as planModule returning `{ planSite }`. */
  planSite?(site: Site, ctx: SiteContext): PlanResult;
  runtime: StrategyRuntime;
  /** Its place in the default chain; absent: only when named with -s. */
  defaultChain?: DefaultChainPlace;
  /** Variants (`-s name:variant`), the first being the default. */
  variants?: StrategyVariant[];
  /** Options (`-s name:key=value`). */
  options?: StrategyOption[];
  /**
   * Optional: check a chain element's options (`-s name:variant`, `-s name:key=val`) when the
   * chain is resolved, before anything is planned: null when they are valid, else a one-line
   * reason (`sysi` then stops with STRATEGY_OPTION). Without it, options reach planSite
   * unchecked.
   */
  checkOptions?(options: Readonly<Record<string, string>>): string | null;
  /**
   * Optional (contract 1.1): process-wide resources the runtime takes for itself, each with
   * what it puts there, e.g. `{ page0: "a jump table executed by call *%rax" }`. Two strategies
   * claiming the same resource cannot share a chain: resolving it fails with one line naming
   * both and their uses (zpoline and segmentation both need page 0, and no byte pattern serves
   * both: docs/segmentation.md).
   */
  claims?: Readonly<Record<string, string>>;
  /**
   * Optional (contract 1.2): what `sysi bench` measures of this strategy. Absent: one group of
   * rows, the strategy by its name (its default variant).
   */
  bench?: StrategyBench;
}

/** What the CLI passes to a plugin's factory. */
export interface SysiCoreApi {
  /** @sysi/core's version (what a plugin's `sysi.core` range is checked against). */
  version: string;
  /** STRATEGY_CONTRACT_VERSION of that core. */
  contract?: string;
  /** Absolute path of the directory with sysi.h (for plugin native builds: -I). */
  includeDir: string;
}

export type StrategyFactory = (api: SysiCoreApi) => Strategy;

/** The module planner of a strategy: its planModule, else its stateless planSite. */
export function modulePlanner(strategy: Strategy, ctx: SiteContext): ModulePlanner {
  if (typeof strategy.planModule === "function") return strategy.planModule(ctx);
  const planSite = strategy.planSite;
  if (typeof planSite !== "function") throw new Error(`strategy ${strategy.name} has neither planModule nor planSite`);
  return { planSite: (site, c) => planSite.call(strategy, site, c) };
}
