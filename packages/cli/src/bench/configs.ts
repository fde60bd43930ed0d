/**
 * The benchmark's configurations. Each one is "this program with this environment": the
 * measured program (bench/getppid.c) with argv, plus the preload environment of a strategy chain
 * (libsysi + the chain's runtimes + plans) and a hook.
 */
import type { BenchGoals, BenchRow, Strategy } from "@sysi/core/strategy";
import { SYS } from "@sysi/core/syscalls";
import type { BenchBinaries } from "./build.ts";

export type LoopMode = "inline" | "libc" | "floor" | TrapMode;
export type TrapMode =
  | "sig-int3"
  | "sig-ud2"
  | "sig-hlt"
  | "sig-int4"
  | "sig-int3-direct"
  | "sig-ud2-direct"
  | "sig-hlt-direct"
  | "sig-int4-direct";
export type HookKind = "passthrough" | "count" | "self";

export interface CallConfig {
  /** Stable id, e.g. "zpoline/self/inline/110". */
  id: string;
  /** "native", "floor", "strace" or a chain spec such as "ud2:int3". */
  group: string;
  hook: HookKind | null;
  mode: LoopMode;
  nr: number;
  /** Id of the configuration this row's ratio is taken against. */
  baseline: string | null;
  /** Whether the site must read differently from the native bytes after the run. */
  instrumented: boolean;
}

export type TrapName = NonNullable<BenchRow["trap"]>;

/** One group of strategy rows: a chain element, as a strategy declares it (Strategy.bench). */
export interface BenchSpec {
  /** The chain element measured, e.g. "zpoline" or "ud2:int3". */
  spec: string;
  /** Also measured self-answering at the other numbers of NR_SWEEP. */
  sweepNr: boolean;
  /** The trap its sites become: the bench adds that trap's kernel floors. */
  trap: TrapName | null;
  /** The limits the headline checks this group against (BenchRow.goals); null: none. */
  goals: BenchGoals | null;
}

/**
 * The strategies' row groups in table order: each strategy's `bench.rows` (without `bench`: one
 * group, the strategy by its name), strategies by `bench.order`, then by name.
 */
export function benchSpecs(strategies: readonly Pick<Strategy, "name" | "bench">[]): BenchSpec[] {
  const order = (s: Pick<Strategy, "bench">) => s.bench?.order ?? Number.POSITIVE_INFINITY;
  return [...strategies]
    .sort((a, b) => order(a) - order(b) || a.name.localeCompare(b.name))
    .flatMap((s) =>
      (s.bench?.rows ?? [{ spec: s.name }]).map((r) => ({
        spec: r.spec,
        sweepNr: r.sweepNr === true,
        trap: r.trap ?? null,
        goals: r.goals ?? null,
      })),
    );
}

/** Syscall numbers of the extra self-answering rows ("zpoline ≤ 5 ns at any syscall number"). */
export const NR_SWEEP = [SYS.getpid, SYS.getppid, SYS.clock_getres, SYS.epoll_wait] as const;

export const NATIVE_INLINE = "native/inline";
export const NATIVE_LIBC = "native/libc";
export const FLOOR = "floor";

/** The kernel's signal round trip alone (bench/getppid sig-* modes) behind a trap strategy. */
export function trapFloor(s: BenchSpec): TrapMode | null {
  return s.trap === null ? null : `sig-${s.trap}`;
}
/**
 * The same trap resumed without rt_sigreturn by the ud2 plugin's own resume (sig-*-direct): the
 * kernel's delivery plus the cheapest return, the least a strategy on that trap can cost here.
 */
export function trapDirectFloor(s: BenchSpec): TrapMode | null {
  return s.trap === null ? null : `sig-${s.trap}-direct`;
}
const TRAP_LABELS: Record<TrapMode, string> = {
  "sig-ud2": "ud2 → SIGILL round trip",
  "sig-int3": "int3 → SIGTRAP round trip",
  "sig-hlt": "hlt → #GP → SIGSEGV round trip",
  "sig-int4": "int $4 → #OF → SIGSEGV round trip",
  "sig-ud2-direct": "ud2 → SIGILL, resumed without rt_sigreturn",
  "sig-int3-direct": "int3 → SIGTRAP, resumed without rt_sigreturn",
  "sig-hlt-direct": "hlt → SIGSEGV, resumed without rt_sigreturn",
  "sig-int4-direct": "int $4 → SIGSEGV, resumed without rt_sigreturn",
};

function baselineOf(mode: LoopMode): string | null {
  return mode === "inline" ? NATIVE_INLINE : mode === "libc" ? NATIVE_LIBC : null;
}

/**
 * Every configuration, in table order, for the strategies' row groups (benchSpecs). `only`
 * filters groups ("native", "floor", "strace", chains).
 */
export function callConfigs(specs: readonly BenchSpec[], only?: readonly string[]): CallConfig[] {
  const out: CallConfig[] = [];
  const want = (g: string) =>
    only === undefined || only.length === 0 || only.includes(g) || only.includes(g.split(":")[0] ?? g);
  const getppid = SYS.getppid;
  // Baselines are always measured: every ratio needs them.
  for (const mode of ["inline", "libc"] as const)
    out.push({
      id: `native/${mode}`,
      group: "native",
      hook: null,
      mode,
      nr: getppid,
      baseline: `native/${mode}`,
      instrumented: false,
    });
  out.push({
    id: FLOOR,
    group: "floor",
    hook: null,
    mode: "floor",
    nr: getppid,
    baseline: NATIVE_INLINE,
    instrumented: false,
  });
  for (const floor of [trapFloor, trapDirectFloor]) {
    for (const s of specs) {
      const trap = floor(s);
      if (trap === null || !want(s.spec)) continue;
      out.push({
        id: `trap-floor/${trap}`,
        group: "trap-floor",
        hook: null,
        mode: trap,
        nr: getppid,
        baseline: NATIVE_INLINE,
        instrumented: false,
      });
    }
  }
  for (const { spec, sweepNr } of specs) {
    if (!want(spec)) continue;
    for (const hook of ["passthrough", "count", "self"] as const) {
      for (const mode of ["inline", "libc"] as const) {
        out.push({
          id: `${spec}/${hook}/${mode}`,
          group: spec,
          hook,
          mode,
          nr: getppid,
          baseline: baselineOf(mode),
          instrumented: true,
        });
      }
    }
    if (sweepNr) {
      for (const nr of NR_SWEEP) {
        if (nr === getppid) continue;
        out.push({
          id: `${spec}/self/inline/${nr}`,
          group: spec,
          hook: "self",
          mode: "inline",
          nr,
          baseline: NATIVE_INLINE,
          instrumented: true,
        });
      }
    }
  }
  if (want("strace")) {
    for (const mode of ["inline", "libc"] as const)
      out.push({
        id: `strace/${mode}`,
        group: "strace",
        hook: null,
        mode,
        nr: getppid,
        baseline: baselineOf(mode),
        instrumented: false,
      });
  }
  return out;
}

/** Human label for a row. */
export function labelOf(c: CallConfig): string {
  const site = c.mode === "inline" ? "inline syscall" : c.mode === "libc" ? "libc syscall()" : "indirect call";
  if (c.group === "native") return `native, ${site}`;
  if (c.group === "floor") return "floor: indirect call, no syscall";
  if (c.group === "trap-floor") return `floor: ${TRAP_LABELS[c.mode as TrapMode]}, no sysi, no syscall`;
  if (c.group === "strace") return `strace -f -o /dev/null, ${site}`;
  const hook = c.hook === "self" ? "self-answer" : c.hook;
  const nr = c.nr === SYS.getppid ? "" : ` nr ${c.nr}`;
  return `${c.group} + ${hook}, ${site}${nr}`;
}

export interface RunParams {
  /** One repetition ≈ this many ms. */
  targetMs: number;
  reps: number;
}

/** argv of one measured process (without the chain environment). */
export function callArgv(c: CallConfig, bins: BenchBinaries, p: RunParams, selfAnswerBase: number): string[] {
  const argv = [
    bins.getppid,
    c.mode,
    "--nr",
    String(c.nr),
    "--target-ms",
    String(p.targetMs),
    "--reps",
    String(p.reps),
  ];
  if (c.hook === "self" && c.mode !== "floor") argv.push("--expect", String(selfAnswerBase + c.nr));
  if (c.group === "strace") return ["strace", "-f", "-o", "/dev/null", ...argv];
  return argv;
}

/** The hook part of the environment. */
export function hookEnv(c: CallConfig, bins: BenchBinaries): Record<string, string> {
  if (c.hook === null) return {};
  if (c.hook === "self") return { SYSI_HOOK: bins.selfAnswer, SYSI_BENCH_ANSWER: String(c.nr) };
  return { SYSI_HOOK: c.hook };
}
