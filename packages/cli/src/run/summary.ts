/** The count hook's end-of-run report: an `strace -c`-style table plus what the runtime did. */
import type { HostReport } from "@sysi/core/host";
import type { StatsSnapshot } from "@sysi/core/runtime";
import { beforeRuntimeLine, type EscapeReport, EXEC_ESCAPE_KINDS, escapeSentence, vdsoLine } from "./escapes.ts";

/** What the report needs to know of the run: its chain, and the host (when it ran here). */
export interface SummaryRun {
  chain: { spec: string; entries?: readonly SummaryChainElement[] };
  host?: Pick<HostReport, "check">;
}

/** What the summary reads of a resolved chain element (registry.ts ChainElement). */
export interface SummaryChainElement {
  entry: { name: string; strategy: { variants?: readonly { name: string; summary: string }[] } };
  options: Readonly<Record<string, string>>;
}

/**
 * The variant each chain element used without naming one: its strategy's first (the default,
 * which for ud2 is this host's cheapest trap, measured: plugins/ud2/src/trap-choice.ts), for
 * strategies with a choice of variants that patched sites in the run.
 */
export function defaultVariants(
  stats: StatsSnapshot,
  run: SummaryRun,
): { name: string; variant: string; why: string }[] {
  const out: { name: string; variant: string; why: string }[] = [];
  for (const e of run.chain.entries ?? []) {
    const vs = e.entry.strategy.variants ?? [];
    const first = vs[0];
    if (vs.length < 2 || first === undefined || e.options.variant !== undefined) continue;
    if ((stats.strategies[e.entry.name]?.patched ?? 0) === 0) continue;
    out.push({ name: e.entry.name, variant: first.name, why: first.summary });
  }
  return out;
}

/**
 * Page 0 in the run's processes: zpoline maps it in a process where it patches a site (the
 * first one), execute-only where the CPU has protection keys, else readable. Null without a
 * host report (`sysi stats` of a file from elsewhere).
 */
export function page0Mode(stats: StatsSnapshot, host: SummaryRun["host"]): "unmapped" | "xonly" | "readable" | null {
  if (host === undefined) return null;
  // segmentation's far pointers are read as data: readable whatever the CPU (docs/segmentation.md)
  if ((stats.strategies.segmentation?.patched ?? 0) > 0) return "readable";
  if ((stats.strategies.zpoline?.patched ?? 0) === 0) return "unmapped";
  return host.check("pkeys")?.ok === true ? "xonly" : "readable";
}

/** One line when page 0 was readable: NULL reads and NULL pointer arguments did not fault. */
export function page0Notice(stats: StatsSnapshot, host: SummaryRun["host"]): string | null {
  if (page0Mode(stats, host) !== "readable") return null;
  const seg = stats.strategies.segmentation?.patched ?? 0;
  if (seg > 0)
    return `sysi: segmentation mapped page 0 (readable far pointers) for its ${seg} site${seg === 1 ? "" : "s"}: NULL reads and the kernel's reads of NULL pointer arguments did not fault (docs/segmentation.md)`;
  const n = stats.strategies.zpoline?.patched ?? 0;
  return `sysi: zpoline mapped page 0 for its ${n} site${n === 1 ? "" : "s"} on a CPU without protection keys: NULL reads and the kernel's reads of NULL pointer arguments did not fault (README, Security)`;
}

/** Stats slots named `missed:REASON` (sud.c): calls the catch-all made without the hook. */
const MISSED = "missed:";

/**
 * `sysi run --complete` (sud.c): calls the catch-all brought to the hook, sites it patched
 * lazily, and calls it made without the hook, by reason. Null when the run had no catch-all.
 */
export function completeReport(stats: StatsSnapshot) {
  const c = stats.strategies["catch-all"];
  if (c === undefined) return null;
  const missed: Record<string, number> = {};
  for (const [name, s] of Object.entries(stats.strategies))
    if (name.startsWith(MISSED)) missed[name.slice(MISSED.length)] = s.calls;
  return { catchAll: c.calls, lazilyPatched: c.patched, missed };
}

/**
 * One row of the count table, strace -c's columns: calls, errors, and the time columns when the
 * count hook timed the calls (`sysi run -w`, SYSI_COUNT_TIME=1: wall-clock ns inside each call,
 * as strace -c -w), else null. usecsPerCall is truncated as strace prints it.
 */
export interface CountRow {
  name: string;
  nr: number;
  calls: number;
  errors: number;
  percentTime: number | null;
  seconds: number | null;
  usecsPerCall: number | null;
}

/** The row name of the calls whose numbers lie above the table (x32 numbers strace does not name among them). */
export const OTHER_ROW = "other";

/** strace -c's line before the table of the `int $0x80` calls (strace 6.1, count.c). */
export const I386_TABLE_TITLE = "System call usage summary for 32 bit mode:";

/** strace -c's line before the table of the x32 calls (strace 6.1, count.c). */
export const X32_TABLE_TITLE = "System call usage summary for x32 mode:";

type Counted = { nr: number; name?: string | null; calls: number; errors: number; nanos?: number };

/** The rows of the 64-bit table: named numbers, and `other`. */
function mainCounts(stats: StatsSnapshot): Counted[] {
  const used: Counted[] = stats.syscalls.filter((s) => s.calls > 0);
  // numbers the stats table has no slot for are counted together; they are calls all the same
  // (issue 17: they belong in the table and the total)
  if (stats.other.calls > 0) used.push({ nr: -1, name: OTHER_ROW, ...stats.other });
  return used;
}

/** The rows of the x32 table: x32 calls by strace's x32 names (strace -c counts them apart). */
function x32Counts(stats: StatsSnapshot): Counted[] {
  return (stats.x32 ?? []).filter((s) => s.calls > 0);
}

/** The rows of the 32-bit table: `int $0x80` calls by i386 name (strace -c counts them apart). */
function i386Counts(stats: StatsSnapshot): Counted[] {
  return (stats.i386 ?? []).filter((s) => s.calls > 0);
}

/** A second table's JSON (`i386`, `x32`): its rows and total, as the main table's. */
function sideTable(used: Counted[]) {
  if (used.length === 0) return null;
  const t = countRows(used);
  return { syscalls: t.rows, total: { ...t.total, ...(t.total.percentTime === null ? {} : { percentTime: 100 }) } };
}

function countRows(used: Counted[]): { rows: CountRow[]; total: Omit<CountRow, "name" | "nr">; timed: boolean } {
  const timed = used.some((s) => (s.nanos ?? 0) > 0);
  const totalNs = used.reduce((n, s) => n + (s.nanos ?? 0), 0);
  const time = (ns: number, calls: number) =>
    timed
      ? {
          percentTime: totalNs > 0 ? (100 * ns) / totalNs : 0,
          seconds: ns / 1e9,
          usecsPerCall: calls > 0 ? Math.floor(ns / calls / 1000) : 0,
        }
      : { percentTime: null, seconds: null, usecsPerCall: null };
  // strace -c's order: time, then number; without time, calls (strace -S calls), then number
  const rows = [...used]
    .sort(
      (a, b) =>
        (timed ? (b.nanos ?? 0) - (a.nanos ?? 0) : b.calls - a.calls) ||
        (a.nr < 0 ? 1e9 : a.nr) - (b.nr < 0 ? 1e9 : b.nr), // "other" last among equals
    )
    .map((s) => ({
      name: s.name ?? `syscall_0x${s.nr.toString(16)}`,
      nr: s.nr,
      calls: s.calls,
      errors: s.errors,
      ...time(s.nanos ?? 0, s.calls),
    }));
  const calls = rows.reduce((n, s) => n + s.calls, 0);
  const errors = rows.reduce((n, s) => n + s.errors, 0);
  return { rows, total: { calls, errors, ...time(totalNs, calls) }, timed };
}

/** `escapes`: what ran uninstrumented (escapes.ts), when the run knows it (`sysi run`). */
export function summaryJson(stats: StatsSnapshot, run: SummaryRun, escapes?: EscapeReport) {
  const { rows: syscalls, total } = countRows(mainCounts(stats));
  const i386 = sideTable(i386Counts(stats));
  const x32 = sideTable(x32Counts(stats));
  const strategies: Record<string, number> = {};
  const paths = Object.entries(stats.strategies).filter(([name]) => !name.startsWith(MISSED));
  for (const [name, s] of paths) strategies[name] = s.calls;
  const complete = completeReport(stats);
  return {
    chain: run.chain.spec,
    syscalls,
    total: { ...total, ...(total.percentTime === null ? {} : { percentTime: 100 }) },
    // strace -c's tables "for 32 bit mode" (int $0x80 calls, counted under --complete) and
    // "for x32 mode" (x32 calls strace names), when the program made such calls
    ...(i386 === null ? {} : { i386 }),
    ...(x32 === null ? {} : { x32 }),
    strategies,
    sites: Object.fromEntries(
      paths.map(([name, s]) => [name, { patched: s.patched, fellThrough: s.fellThrough, mismatched: s.mismatched }]),
    ),
    other: stats.other,
    modules: stats.modules,
    sitesUnpatched: stats.sitesUnpatched,
    processes: stats.processes,
    forks: stats.forks,
    ...(complete === null ? {} : { complete }),
    ...(run.host === undefined ? {} : { page0: page0Mode(stats, run.host) }),
    ...(run.chain.entries === undefined
      ? {}
      : { defaultVariants: Object.fromEntries(defaultVariants(stats, run).map((d) => [d.name, d.variant])) }),
    ...(escapes === undefined ? {} : { escapes }),
  };
}

export function renderRunSummary(
  stats: StatsSnapshot,
  run: SummaryRun,
  opts: { syscalls?: boolean; escapes?: EscapeReport } = {},
): string {
  const j = summaryJson(stats, run, opts.escapes);
  const lines: string[] = [];
  if (opts.syscalls !== false) lines.push(...countTable(stats));
  const by = Object.entries(j.strategies)
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${name} ${n}`)
    .join(", ");
  const sites = Object.entries(j.sites)
    .map(([name, s]) => {
      const extra = [
        s.fellThrough ? `${s.fellThrough} fell through` : "",
        s.mismatched ? `${s.mismatched} mismatched` : "",
      ]
        .filter(Boolean)
        .join(", ");
      return `${name} ${s.patched}${extra ? ` (${extra})` : ""}`;
    })
    .join(", ");
  lines.push(`sysi: chain ${j.chain}; calls by strategy: ${by || "none"}; sites patched: ${sites || "none"}`);
  const m = j.modules as Record<string, number>;
  const mods = Object.entries(m)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  lines.push(
    `sysi: processes ${j.processes} (forks ${j.forks}); modules: ${mods}; planned sites left unpatched: ${j.sitesUnpatched}`,
  );
  for (const d of defaultVariants(stats, run))
    lines.push(`sysi: ${d.name} without a variant ran as ${d.name}:${d.variant} — ${d.why}`);
  if (j.complete !== undefined) lines.push(completeLine(j.complete));
  const notice = page0Notice(stats, run.host);
  if (notice !== null) lines.push(notice);
  const e = opts.escapes;
  if (e !== undefined) {
    if (e.command !== null) lines.push(`sysi: not instrumented: the command ${e.command.path} (${e.command.kind})`);
    const execs = EXEC_ESCAPE_KINDS.flatMap((kind) => e.execs[kind].map((x) => ({ kind, ...x })));
    const sentence = escapeSentence(execs);
    if (sentence !== null) lines.push(`sysi: ${sentence}`);
    if (e.int80.length > 0) {
      const n = e.int80.reduce((s, m) => s + m.sites, 0);
      lines.push(
        `sysi: not instrumented: ${n} int $0x80 site${n === 1 ? "" : "s"} (${e.int80.map((m) => `${m.path} ${m.sites}`).join(", ")}): the 32-bit system-call ABI, which no strategy instruments`,
      );
    }
    if (e.beforeRuntime.images > 0) lines.push(beforeRuntimeLine(e.beforeRuntime.images));
    const vd = e.vdso === undefined ? null : vdsoLine(e.vdso);
    if (vd !== null) lines.push(vd);
  }
  return `${lines.join("\n")}\n`;
}

/** The --complete line: calls per path beyond the strategies' own, and what was missed. */
export function completeLine(c: NonNullable<ReturnType<typeof completeReport>>): string {
  const missed = Object.entries(c.missed).filter(([, n]) => n > 0);
  const m = missed.length === 0 ? "none" : missed.map(([why, n]) => `${n} (${why})`).join(", ");
  return `sysi: complete: catch-all ${c.catchAll} call${c.catchAll === 1 ? "" : "s"} (sites patched lazily: ${c.lazilyPatched}); missed: ${m}`;
}

/** --strict with --complete: calls the catch-all made without the hook (null: none). */
export function missedError(stats: StatsSnapshot): string | null {
  const c = completeReport(stats);
  if (c === null) return null;
  const missed = Object.entries(c.missed).filter(([, n]) => n > 0);
  if (missed.length === 0) return null;
  return `--strict: the catch-all made ${missed.map(([why, n]) => `${n} call${n === 1 ? "" : "s"} (${why})`).join(", ")} without the hook`;
}

/**
 * The count table as strace -c prints it (strace 6.1, count.c): "%6.2f %11.6f %11lu %9u %9.u %s"
 * per syscall (errors blank when 0), dashes, then the total with 100.00. Without timing (no -w)
 * the three time columns hold "-" and one line says so.
 */
export function countTable(stats: StatsSnapshot): string[] {
  const main = countRows(mainCounts(stats));
  const i386 = i386Counts(stats);
  const x32 = x32Counts(stats);
  // strace -c prints the int $0x80 and x32 calls in tables of their own, in that order, each
  // under a title
  const lines = tableLines(main.rows, main.total, main.timed);
  if (i386.length > 0) {
    const t = countRows(i386);
    lines.push(I386_TABLE_TITLE, ...tableLines(t.rows, t.total, t.timed));
  }
  if (x32.length > 0) {
    const t = countRows(x32);
    lines.push(X32_TABLE_TITLE, ...tableLines(t.rows, t.total, t.timed));
  }
  if (!main.timed)
    lines.push(
      "sysi: time columns not measured: `sysi run -w` times each call (wall clock, as strace -c -w), at two clock reads per call",
    );
  return lines;
}

function tableLines(rows: CountRow[], total: Omit<CountRow, "name" | "nr">, timed: boolean): string[] {
  // strace widens the rule past the longest name (sched_getaffinity: 18 dashes), 16 at least
  const w = Math.max(16, ...rows.map((r) => r.name.length + 1));
  const cells = (r: Omit<CountRow, "name" | "nr">, name: string, pct?: string) =>
    [
      (pct ?? (r.percentTime === null ? "-" : r.percentTime.toFixed(2))).padStart(6),
      (r.seconds === null ? "-" : r.seconds.toFixed(6)).padStart(11),
      (r.usecsPerCall === null ? "-" : String(r.usecsPerCall)).padStart(11),
      String(r.calls).padStart(9),
      (r.errors ? String(r.errors) : "").padStart(9),
      name,
    ].join(" ");
  const rule = ["-".repeat(6), "-".repeat(11), "-".repeat(11), "-".repeat(9), "-".repeat(9), "-".repeat(w)].join(" ");
  const lines = ["% time     seconds  usecs/call     calls    errors syscall", rule];
  for (const r of rows) lines.push(cells(r, r.name));
  lines.push(rule, cells(total, "total", timed ? "100.00" : "-"));
  return lines;
}
