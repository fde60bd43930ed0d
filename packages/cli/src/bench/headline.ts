/**
 * The headline figures: per strategy, the instrumentation cost with the syscall taken out (the
 * self-answering hook's row: it makes no syscall) next to the indirect-call floor, and the cost
 * with the syscall (passthrough hook, inline site), each checked against the goals the strategy
 * declares for that row group (BenchRow.goals, contract 1.4): this file names no strategy.
 *
 * Every figure comes twice: the median (what a ~75 ms stretch typically costs on this machine,
 * interference included) and the best ~1 ms block (the smallest ns/call of any block of any
 * round: the cost in a quiet window, since interference only ever slows a deterministic loop
 * down). Goals are checked against both; the best-block check is the intrinsic cost.
 *
 * A trap strategy's goal (`trapRatio`) is a ratio, not a limit in ns: trap costs differ by host
 * far more than sysi's share of them (a bare ud2 round trip: 7.3 µs on an AMD VM, 10.5 µs on an
 * Intel one). It compares the self-answering row (the trap and sysi's emulation, no syscall) with
 * the same trap's bare floor (a handler that only steps over it, then rt_sigreturn), measured in
 * the same run.
 */
import { SYS } from "@sysi/core/syscalls";
import { type BenchSpec, FLOOR, NATIVE_INLINE, NR_SWEEP, trapDirectFloor, trapFloor } from "./configs.ts";

interface RowLike {
  id: string;
  group: string;
  hook: string | null;
  mode: string;
  nr: number;
  status: string;
  median: number | null;
  cpuMedian?: number | null;
  /** The best ~1 ms block's ns/call (min over the rounds). */
  bestNs?: number | null;
}

export interface Goal {
  /** What is compared, e.g. "self-answer, worst nr". */
  what: string;
  limitNs: number;
  valueNs: number | null;
  met: boolean | null;
  /** The same from thread CPU time (robust to other load on the machine). */
  valueCpuNs: number | null;
  metCpu: boolean | null;
  /** The same from the best ~1 ms blocks (the quiet-window cost). */
  valueBestNs: number | null;
  metBest: boolean | null;
}

/** A trap strategy's cost as a ratio to its bare trap floor, measured in the same run (goals.trapRatio). */
export interface TrapRatio {
  limit: number;
  /** Self-answer median / bare trap floor median. */
  ratio: number | null;
  met: boolean | null;
  /** Self-answer best 1-ms block / bare trap floor best 1-ms block. */
  ratioBest: number | null;
  metBest: boolean | null;
}

export interface StrategyHeadline {
  spec: string;
  /** Self-answering hook, inline site, by syscall number (null: not measured). */
  selfNs: Record<string, number | null>;
  /** selfNs minus the floor. */
  selfOverFloorNs: Record<string, number | null>;
  /** Thread CPU time of the same rows, and minus the floor's. */
  selfCpuNs: Record<string, number | null>;
  selfCpuOverFloorNs: Record<string, number | null>;
  /** Best ~1 ms block of the same rows, and minus the floor's best block. */
  selfBestNs: Record<string, number | null>;
  selfBestOverFloorNs: Record<string, number | null>;
  /** Passthrough hook, inline site: with the real syscall. */
  passthroughNs: number | null;
  /** passthroughNs minus native inline. */
  passthroughOverNativeNs: number | null;
  passthroughCpuNs: number | null;
  passthroughBestNs: number | null;
  /** Count hook, inline site (issue 17: the cost of counting, ≤ 3 ns over passthrough). */
  countNs: number | null;
  /** countNs minus passthroughNs, and the same for the best ~1 ms blocks. */
  countOverPassthroughNs: number | null;
  countBestNs: number | null;
  countOverPassthroughBestNs: number | null;
  /** Trap strategies: the bare kernel signal round trip of the same trap (no sysi, no syscall). */
  trapFloorNs: number | null;
  /** Its best ~1 ms block. */
  trapFloorBestNs: number | null;
  /** Trap strategies with a trapRatio goal: self-answer over the bare trap floor. */
  trapRatio: TrapRatio | null;
  /**
   * Trap strategies: the same trap resumed without rt_sigreturn by the plugin's resume, median
   * and best block: the kernel's delivery plus the cheapest return, the strategy's floor.
   */
  trapDirectNs: number | null;
  trapDirectBestNs: number | null;
  /** The goals.selfNs check (null: no such goal). */
  goal: Goal | null;
  /**
   * The goals.near check: this group's worst self-answer figure minus that of the group `spec`,
   * median and best block; absent without such a goal or without that group's rows.
   */
  near?: NearGoal;
}

export interface NearGoal {
  /** The row group compared with, e.g. "zpoline". */
  spec: string;
  diffNs: number | null;
  diffBestNs: number | null;
  limitNs: number;
}

export interface Headline {
  floorNs: number | null;
  floorCpuNs: number | null;
  /** The floor's best ~1 ms block. */
  floorBestNs: number | null;
  nativeInlineNs: number | null;
  strategies: StrategyHeadline[];
}

function trapRatio(
  limit: number,
  selfNs: number | null,
  floorNs: number | null,
  selfBest: number | null,
  floorBest: number | null,
): TrapRatio {
  const div = (a: number | null, b: number | null) => (a === null || b === null || b <= 0 ? null : a / b);
  const ratio = div(selfNs, floorNs);
  const ratioBest = div(selfBest, floorBest);
  return {
    limit,
    ratio,
    met: ratio === null ? null : ratio <= limit,
    ratioBest,
    metBest: ratioBest === null ? null : ratioBest <= limit,
  };
}

const minus = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a - b);

/** The largest value, or null when any is missing (a goal "at every nr" needs them all). */
function worst(xs: Record<string, number | null>): number | null {
  const vs = Object.values(xs);
  return vs.length > 0 && vs.every((v) => v !== null) ? Math.max(...(vs as number[])) : null;
}

/** The headline of a run whose strategy rows are the groups of `specs` (benchSpecs). */
export function headline(rows: readonly RowLike[], specs: readonly BenchSpec[]): Headline {
  const med = (id: string) => rows.find((r) => r.id === id && r.status === "ok")?.median ?? null;
  const cpu = (id: string) => rows.find((r) => r.id === id && r.status === "ok")?.cpuMedian ?? null;
  const floorNs = med(FLOOR);
  const best = (id: string) => rows.find((r) => r.id === id && r.status === "ok")?.bestNs ?? null;
  const floorCpuNs = cpu(FLOOR);
  const floorBestNs = best(FLOOR);
  const nativeInlineNs = med(NATIVE_INLINE);
  const strategies: StrategyHeadline[] = [];
  for (const s of specs) {
    const spec = s.spec;
    if (!rows.some((r) => r.group === spec)) continue;
    const selfNs: Record<string, number | null> = {};
    const selfOverFloorNs: Record<string, number | null> = {};
    const selfCpuNs: Record<string, number | null> = {};
    const selfCpuOverFloorNs: Record<string, number | null> = {};
    const selfBestNs: Record<string, number | null> = {};
    const selfBestOverFloorNs: Record<string, number | null> = {};
    for (const nr of NR_SWEEP) {
      const row = rows.find((r) => r.group === spec && r.hook === "self" && r.mode === "inline" && r.nr === nr);
      if (row === undefined) continue;
      const v = row.status === "ok" ? row.median : null;
      const c = row.status === "ok" ? (row.cpuMedian ?? null) : null;
      const b = row.status === "ok" ? (row.bestNs ?? null) : null;
      selfNs[nr] = v;
      selfOverFloorNs[nr] = minus(v, floorNs);
      selfCpuNs[nr] = c;
      selfCpuOverFloorNs[nr] = minus(c, floorCpuNs);
      selfBestNs[nr] = b;
      selfBestOverFloorNs[nr] = minus(b, floorBestNs);
    }
    const passthroughNs = med(`${spec}/passthrough/inline`);
    const passthroughCpuNs = cpu(`${spec}/passthrough/inline`);
    const passthroughBestNs = best(`${spec}/passthrough/inline`);
    const countNs = med(`${spec}/count/inline`);
    const countBestNs = best(`${spec}/count/inline`);
    const direct = trapDirectFloor(s);
    const trapDirectNs = direct === null ? null : med(`trap-floor/${direct}`);
    const trapDirectBestNs = direct === null ? null : best(`trap-floor/${direct}`);
    const limitNs = s.goals?.selfNs;
    let goal: Goal | null = null;
    if (limitNs !== undefined) {
      const value = worst(selfNs);
      const valueCpu = worst(selfCpuNs);
      const valueBest = worst(selfBestNs);
      goal = {
        what: "self-answering hook, worst syscall number",
        limitNs,
        valueNs: value,
        met: value === null ? null : value <= limitNs,
        valueCpuNs: valueCpu,
        metCpu: valueCpu === null ? null : valueCpu <= limitNs,
        valueBestNs: valueBest,
        metBest: valueBest === null ? null : valueBest <= limitNs,
      };
    }
    const bare = trapFloor(s);
    const trapFloorNs = bare === null ? null : med(`trap-floor/${bare}`);
    const trapFloorBestNs = bare === null ? null : best(`trap-floor/${bare}`);
    strategies.push({
      spec,
      selfNs,
      selfOverFloorNs,
      selfCpuNs,
      selfCpuOverFloorNs,
      selfBestNs,
      selfBestOverFloorNs,
      passthroughNs,
      passthroughOverNativeNs: minus(passthroughNs, nativeInlineNs),
      passthroughCpuNs,
      passthroughBestNs,
      countNs,
      countOverPassthroughNs: minus(countNs, passthroughNs),
      countBestNs,
      countOverPassthroughBestNs: minus(countBestNs, passthroughBestNs),
      trapFloorNs,
      trapFloorBestNs,
      trapRatio:
        bare === null || s.goals?.trapRatio === undefined
          ? null
          : trapRatio(
              s.goals.trapRatio,
              selfNs[SYS.getppid] ?? null,
              trapFloorNs,
              selfBestNs[SYS.getppid] ?? null,
              trapFloorBestNs,
            ),
      trapDirectNs,
      trapDirectBestNs,
      goal,
    });
  }
  for (const s of specs) {
    const near = s.goals?.near;
    const mine = strategies.find((h) => h.spec === s.spec);
    const other = near === undefined ? undefined : strategies.find((h) => h.spec === near.spec);
    if (near === undefined || mine === undefined || other === undefined) continue;
    mine.near = {
      spec: near.spec,
      diffNs: minus(worst(mine.selfNs), worst(other.selfNs)),
      diffBestNs: minus(worst(mine.selfBestNs), worst(other.selfBestNs)),
      limitNs: near.withinNs,
    };
  }
  return { floorNs, floorCpuNs, floorBestNs, nativeInlineNs, strategies };
}
