/** Human-readable rendering of a BenchResult (the JSON form is the result itself). */
import { table } from "../render.ts";
import type { Goal, NearGoal, TrapRatio } from "./headline.ts";
import type { BenchResult, CallRow, StartupRow } from "./index.ts";

export function ns(v: number | null): string {
  if (v === null) return "-";
  if (v >= 1000) return Math.round(v).toLocaleString("en-US");
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function ms(v: number | null): string {
  if (v === null) return "-";
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function ratio(v: number | null): string {
  if (v === null) return "-";
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function signed(v: number | null, unit: string): string {
  if (v === null) return "-";
  return `${v >= 0 ? "+" : "−"}${ns(Math.abs(v))} ${unit}`;
}

function callTable(rows: readonly CallRow[]): string[] {
  const head = ["configuration", "median ns", "min", "max", "best 1ms", "ratio", "cpu ns", "site", "N/rep"];
  const body = rows
    .filter((r) => r.status === "ok")
    .map((r) => [
      r.label,
      ns(r.median),
      ns(r.min),
      ns(r.max),
      ns(r.bestNs),
      ratio(r.ratio),
      ns(r.cpuMedian),
      r.site ?? "",
      r.n === null ? "" : String(r.n),
    ]);
  return table([head, ...body], [1, 2, 3, 4, 5, 6, 8]);
}

function startupTable(rows: readonly StartupRow[]): string[] {
  const head = ["program, instrumentation", "median ms", "min", "max", "runs", "ratio", "added ms"];
  const body = rows
    .filter((r) => r.status === "ok")
    .map((r) => [
      r.label,
      ms(r.median),
      ms(r.min),
      ms(r.max),
      `${r.runsPerRound}×${r.rounds.length}`,
      ratio(r.ratio),
      r.addedMs === null ? "-" : `${r.addedMs >= 0 ? "+" : "−"}${ms(Math.abs(r.addedMs))}`,
    ]);
  return table([head, ...body], [1, 2, 3, 4, 5, 6]);
}

/** Rows not measured, one line per group and reason ("skipped: ud2 (6 configurations): …"). */
function offLines(rows: readonly CallRow[]): string[] {
  const groups = new Map<string, { status: string; group: string; reason: string; labels: string[] }>();
  for (const r of rows) {
    if (r.status === "ok") continue;
    const reason = r.reason ?? "";
    const key = `${r.status}\0${r.group}\0${reason}`;
    const g = groups.get(key) ?? { status: r.status, group: r.group, reason, labels: [] };
    g.labels.push(r.label);
    groups.set(key, g);
  }
  const total = (group: string) => rows.filter((r) => r.group === group).length;
  return [...groups.values()].map((g) => {
    const what =
      g.labels.length === total(g.group) && g.labels.length > 1
        ? `${g.group} (all ${g.labels.length} configurations)`
        : g.labels.join("; ");
    return `${g.status}: ${what}: ${g.reason}`;
  });
}

const verdictOf = (met: boolean | null) => (met === null ? "not measured" : met ? "met" : "NOT met");

/** A group's worst self-answer figure against another group's (goals.near, e.g. within 1 ns). */
export function nearLine(v: NearGoal): string {
  const d = (x: number | null) => (x === null ? "n/a" : `${x >= 0 ? "+" : ""}${ns(x)} ns`);
  const met = (x: number | null) => verdictOf(x === null ? null : x <= v.limitNs);
  return `goal: worst syscall number within ${ns(v.limitNs)} ns of ${v.spec}'s: median ${d(v.diffNs)} — ${met(v.diffNs)}; best 1-ms block ${d(v.diffBestNs)} — ${met(v.diffBestNs)}`;
}

/** A trap strategy's goal: "goal: self-answer ≤ 1.10× the bare trap round trip: median 1.04× — met; …". */
export function trapRatioLine(t: TrapRatio): string {
  const x = (v: number | null) => (v === null ? "n/a" : `${v.toFixed(2)}×`);
  return `goal: self-answer ≤ ${t.limit.toFixed(2)}× the bare trap round trip (same run): median ${x(t.ratio)} — ${verdictOf(t.met)}; best 1-ms block ${x(t.ratioBest)} — ${verdictOf(t.metBest)}`;
}

/**
 * One goal, checked three ways: "goal: … ≤ 5.00 ns: median 10.3 ns — NOT met; cpu 10.2 ns — NOT
 * met; best 1-ms block (quiet-window cost) 6.10 ns — NOT met".
 */
export function goalLine(g: Goal): string {
  return [
    `goal: ${g.what} ≤ ${ns(g.limitNs)} ns: median ${ns(g.valueNs)} ns — ${verdictOf(g.met)}`,
    `cpu ${ns(g.valueCpuNs)} ns — ${verdictOf(g.metCpu)}`,
    `best 1-ms block (quiet-window cost) ${ns(g.valueBestNs)} ns — ${verdictOf(g.metBest)}`,
  ].join("; ");
}

export function renderBench(res: BenchResult): string {
  const m = res.machine;
  const out: string[] = [
    `sysi bench — ${res.date}`,
    `machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, bun ${m.bun}; load average ${res.load.start.toFixed(2)} at start, ${res.load.end.toFixed(2)} at end`,
    `${res.params.rounds} round(s), round robin; each process: ~${res.params.targetMs} ms × ${res.params.reps} repetitions after a warm-up`,
    "median/min/max: over the rounds' per-process medians; ratio: to native in the same run (inline rows to native inline, libc rows to native libc)",
    "best 1ms: the smallest ns/call of any ~1 ms block of any repetition and round, the cost in a quiet window of the machine (interference only slows a loop down)",
    "",
    ...callTable(res.rows),
  ];
  const off = offLines(res.rows);
  if (off.length > 0) out.push("", ...off);
  if (res.startup.length > 0) {
    out.push(
      "",
      "startup: posix_spawn + wait (bench/spawn.c), median of the rounds' medians",
      ...startupTable(res.startup),
    );
    for (const r of res.startup.filter((s) => s.status !== "ok"))
      out.push(`${r.status}: ${r.label}: ${r.reason ?? ""}`);
  }
  const h = res.headline;
  out.push(
    "",
    "headline: instrumentation cost per call with the syscall taken out (self-answering hook, inline site)",
    "  median: wall-clock ns, median over the rounds (thread CPU ns in brackets), what a ~75 ms stretch typically costs here",
    "  best 1-ms block: the smallest ns/call of any ~1 ms block, the quiet-window cost (the loop's own cost without interference)",
    `  floor (indirect call through a volatile pointer): median ${ns(h.floorNs)} ns [${ns(h.floorCpuNs)}], best 1-ms block ${ns(h.floorBestNs)} ns; native inline getppid: ${ns(h.nativeInlineNs)} ns`,
  );
  for (const s of h.strategies) {
    const rows = res.rows.filter((r) => r.group === s.spec);
    if (rows.every((r) => r.status !== "ok")) {
      out.push(`  ${s.spec}: ${rows[0]?.status ?? "skipped"} (${rows[0]?.reason ?? "no rows"})`);
      continue;
    }
    const pad = "".padEnd(s.spec.length);
    const nrs = Object.keys(s.selfNs);
    const self = nrs.map(
      (nr) =>
        `nr ${nr}: ${ns(s.selfNs[nr] ?? null)} ns [${ns(s.selfCpuNs[nr] ?? null)}], ${signed(s.selfOverFloorNs[nr] ?? null, "ns")} [${signed(s.selfCpuOverFloorNs[nr] ?? null, "ns")}] over floor`,
    );
    const best = nrs.map(
      (nr) =>
        `nr ${nr}: ${ns(s.selfBestNs[nr] ?? null)} ns, ${signed(s.selfBestOverFloorNs[nr] ?? null, "ns")} over the floor's best block`,
    );
    if (self.length === 0) out.push(`  ${s.spec}: self-answer not measured`);
    else {
      out.push(`  ${s.spec}: self-answer, median: ${self.join("; ")}`);
      out.push(`  ${pad}  self-answer, best 1-ms block (quiet window): ${best.join("; ")}`);
    }
    out.push(
      `  ${pad}  with the syscall (passthrough): median ${ns(s.passthroughNs)} ns [${ns(s.passthroughCpuNs)}], ${signed(s.passthroughOverNativeNs, "ns")} over native; best 1-ms block ${ns(s.passthroughBestNs)} ns`,
    );
    if (s.countNs !== null || s.countBestNs !== null)
      out.push(
        `  ${pad}  counting (count hook): median ${ns(s.countNs)} ns, ${signed(s.countOverPassthroughNs, "ns")} over passthrough; best 1-ms block ${ns(s.countBestNs)} ns, ${signed(s.countOverPassthroughBestNs, "ns")}`,
      );
    if (s.trapFloorNs !== null || s.trapFloorBestNs !== null)
      out.push(
        `  ${pad}  the same trap with a bare handler (kernel round trip, no sysi, no syscall): median ${ns(s.trapFloorNs)} ns, best 1-ms block ${ns(s.trapFloorBestNs)} ns`,
      );
    if (s.trapDirectNs !== null || s.trapDirectBestNs !== null)
      out.push(
        `  ${pad}  the same trap resumed without rt_sigreturn, no sysi, no syscall: median ${ns(s.trapDirectNs)} ns, best 1-ms block ${ns(s.trapDirectBestNs)} ns`,
      );
    if (s.trapRatio !== null) out.push(`  ${pad}  ${trapRatioLine(s.trapRatio)}`);
    if (s.goal !== null) out.push(`  ${pad}  ${goalLine(s.goal)}`);
    if (s.near !== undefined) out.push(`  ${pad}  ${nearLine(s.near)}`);
  }
  return `${out.join("\n")}\n`;
}
