/** Human-readable rendering of a BenchResult (the JSON form is the result itself). */
import { table } from "../render.ts";
import type { BenchResult, CallRow, StartupRow } from "./index.ts";

function ns(v: number | null): string {
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
  const head = ["configuration", "median ns", "min", "max", "ratio", "cpu ns", "site", "N/rep"];
  const body = rows
    .filter((r) => r.status === "ok")
    .map((r) => [
      r.label,
      ns(r.median),
      ns(r.min),
      ns(r.max),
      ratio(r.ratio),
      ns(r.cpuMedian),
      r.site ?? "",
      r.n === null ? "" : String(r.n),
    ]);
  return table([head, ...body], [1, 2, 3, 4, 5, 7]);
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

export function renderBench(res: BenchResult): string {
  const m = res.machine;
  const out: string[] = [
    `sysi bench — ${res.date}`,
    `machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, bun ${m.bun}; load average ${res.load.start.toFixed(2)} at start, ${res.load.end.toFixed(2)} at end`,
    `${res.params.rounds} round(s), round robin; each process: ~${res.params.targetMs} ms × ${res.params.reps} repetitions after a warm-up`,
    "median/min/max: over the rounds' per-process medians; ratio: to native in the same run (inline rows to native inline, libc rows to native libc)",
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
    "  wall-clock ns (thread CPU ns in brackets)",
    `  floor (indirect call through a volatile pointer): ${ns(h.floorNs)} ns [${ns(h.floorCpuNs)}]; native inline getppid: ${ns(h.nativeInlineNs)} ns`,
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
    out.push(`  ${s.spec}: ${self.length === 0 ? "not measured" : self.join("; ")}`);
    out.push(
      `  ${pad}  with the syscall (passthrough): ${ns(s.passthroughNs)} ns [${ns(s.passthroughCpuNs)}], ${signed(s.passthroughOverNativeNs, "ns")} over native`,
    );
    if (s.trapFloorNs !== null)
      out.push(`  ${pad}  the same trap with a bare handler (kernel round trip, no sysi): ${ns(s.trapFloorNs)} ns`);
    if (s.goal !== null) {
      const verdict = (met: boolean | null) => (met === null ? "not measured" : met ? "met" : "NOT met");
      out.push(
        `  ${pad}  goal: ${s.goal.what} ≤ ${ns(s.goal.limitNs)} ns: wall ${ns(s.goal.valueNs)} ns — ${verdict(s.goal.met)}; cpu ${ns(s.goal.valueCpuNs)} ns — ${verdict(s.goal.metCpu)}`,
      );
    }
  }
  return `${out.join("\n")}\n`;
}
