/**
 * The benchmark's configurations. Each one is "this program with this environment": the
 * measured program (bench/getppid.c) with argv, plus the preload environment of a strategy chain
 * (libsysi + the chain's runtimes + plans) and a hook.
 */
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

/** The strategies measured, in table order (punning is listed; it is skipped until it exists). */
export const STRATEGY_SPECS = [
  "zpoline",
  "punning",
  // each trap named: a bare "ud2" is this host's default trap (plugins/ud2/src/trap-choice.ts)
  "ud2:ud2",
  "ud2:int3",
  "ud2:hlt",
  "ud2:int4",
  // the bench's loop passes the number in a register: only the `any` variant takes its site
  // (even numbers: the far call; odd ones, getpid 39 and clock_getres 229: the fault path)
  "segmentation:any",
] as const;

/** Syscall numbers of the extra self-answering rows ("zpoline ≤ 5 ns at any syscall number"). */
export const NR_SWEEP = [SYS.getpid, SYS.getppid, SYS.clock_getres, SYS.epoll_wait] as const;
/** Strategies whose entry cost may depend on the syscall number (page-0 sled position). */
const SWEEP_STRATEGIES = new Set(["zpoline", "punning", "segmentation:any"]);

export const NATIVE_INLINE = "native/inline";
export const NATIVE_LIBC = "native/libc";
export const FLOOR = "floor";

/** The kernel's signal round trip alone (bench/getppid sig-* modes) behind each trap strategy. */
export const TRAP_FLOORS: Record<string, TrapMode> = {
  "ud2:ud2": "sig-ud2",
  "ud2:int3": "sig-int3",
  "ud2:hlt": "sig-hlt",
  "ud2:int4": "sig-int4",
};
/**
 * The same trap resumed without rt_sigreturn by the ud2 plugin's own resume (sig-*-direct): the
 * kernel's delivery plus the cheapest return, the least a strategy on that trap can cost here.
 */
export const TRAP_DIRECT_FLOORS: Record<string, TrapMode> = {
  "ud2:ud2": "sig-ud2-direct",
  "ud2:int3": "sig-int3-direct",
  "ud2:hlt": "sig-hlt-direct",
  "ud2:int4": "sig-int4-direct",
};
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

/** Every configuration, in table order. `only` filters groups ("native", "floor", "strace", chains). */
export function callConfigs(only?: readonly string[]): CallConfig[] {
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
  for (const floors of [TRAP_FLOORS, TRAP_DIRECT_FLOORS]) {
    for (const spec of STRATEGY_SPECS) {
      const trap = floors[spec];
      if (trap === undefined || !want(spec)) continue;
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
  for (const spec of STRATEGY_SPECS) {
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
    if (SWEEP_STRATEGIES.has(spec)) {
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
