/**
 * `sysi bench` / `bun bench/run.ts`: ns per getppid for native, every strategy with three hooks,
 * the indirect-call floor and strace, interleaved in one run (round 1 of every configuration,
 * then round 2, …), plus the startup cost of `sysi run -- /bin/true`.
 *
 * Library code: it returns a BenchResult and reports progress through a callback; it never
 * prints. Missing pieces (a strategy, its runtime, a host feature) become skipped rows with the
 * reason; a configuration that crashes or returns a wrong result becomes a failed row.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { createStatsFile } from "@sysi/core/runtime";
import type { HostFacts } from "@sysi/core/strategy";
import { loadStrategies, type RegistryConfig } from "../registry.ts";
import { type BenchBinaries, type BenchPaths, benchPaths, buildBench } from "./build.ts";
import { type ChainEnv, chainEnv, cleanEnv } from "./chain-env.ts";
import {
  benchSpecs,
  type CallConfig,
  callArgv,
  callConfigs,
  hookEnv,
  labelOf,
  NATIVE_INLINE,
  NATIVE_LIBC,
  type RunParams,
} from "./configs.ts";
import { type Headline, headline } from "./headline.ts";
import { type CallSample, median, runCall, runJson, type SpawnSample } from "./runner.ts";
import {
  DEFAULT_STARTUP_RUNS,
  type StartupConfig,
  type StartupRuns,
  startupConfigs,
  TINY_STARTUP_RUNS,
} from "./startup.ts";

export type RowStatus = "ok" | "skipped" | "failed";

export interface CallRow {
  id: string;
  label: string;
  group: string;
  hook: string | null;
  mode: string;
  nr: number;
  baseline: string | null;
  status: RowStatus;
  reason?: string;
  /** Per-round value: the median ns/call of that round's process. */
  rounds: number[];
  median: number | null;
  min: number | null;
  max: number | null;
  /** The same from thread CPU time (leaves out waiting for a CPU; under strace, the tracer). */
  cpuRounds: number[];
  cpuMedian: number | null;
  /**
   * Per-round `best` of the process: the smallest wall-clock ns/call over its ~1 ms blocks; and
   * their minimum over the rounds (the configuration's cost in a quiet window of the machine).
   */
  bestRounds: number[];
  bestNs: number | null;
  /** ~1 ms blocks timed over every round (what bestNs is the minimum of). */
  blocks: number;
  /** median / the baseline row's median (same run). */
  ratio: number | null;
  /** Wrong results over every call of every process of this row. */
  bad: number;
  /** Bytes at the measured site after the run (inline: bench_inline_site; libc: syscall()'s site). */
  site: string | null;
  /** Calls per repetition (last round). */
  n: number | null;
}

export interface StartupRow {
  id: string;
  label: string;
  status: RowStatus;
  reason?: string;
  runsPerRound: number;
  /** Per-round median ms. */
  rounds: number[];
  median: number | null;
  min: number | null;
  max: number | null;
  ratio: number | null;
  addedMs: number | null;
}

export interface ChainInfo {
  spec: string;
  ok: boolean;
  reason?: string;
  env?: Record<string, string>;
}

export interface BenchResult {
  date: string;
  machine: { cpu: string; cores: number; kernel: string; bun: string };
  /** 1-minute load average when the run started and when it ended (other work on the machine). */
  load: { start: number; end: number };
  params: { rounds: number; targetMs: number; reps: number; tiny: boolean };
  chains: ChainInfo[];
  rows: CallRow[];
  startup: StartupRow[];
  headline: Headline;
}

export interface BenchOptions {
  config: RegistryConfig;
  host?: HostFacts;
  rounds?: number;
  /** Target ms per repetition (default 75). */
  targetMs?: number;
  reps?: number;
  /** Groups to run: strategy names/specs, "strace", "startup" (native and floor always run). */
  only?: readonly string[];
  /** Tiny mode for tests: 1 round unless given, ~2 ms repetitions, a handful of startup runs. */
  tiny?: boolean;
  /** The CLI package's root (its bench/ and bin/; default: this CLI's). */
  cliRoot?: string;
  progress?: (line: string) => void;
}

interface Live {
  config: CallConfig;
  row: CallRow;
  argv: string[];
  env: Record<string, string>;
}

interface LiveStartup {
  config: StartupConfig;
  row: StartupRow;
}

const CALL_TIMEOUT_MS = 300_000;
const STARTUP_TIMEOUT_MS = 900_000;

function machine(): BenchResult["machine"] {
  let cpu = cpus()[0]?.model ?? "unknown";
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m?.[1]) cpu = m[1].trim();
  } catch {
    // keep os.cpus()
  }
  return { cpu, cores: cpus().length, kernel: release(), bun: Bun.version };
}

/** SYSI_BENCH_ANSWER_BASE from bench/bench.h (one definition shared with the hook). */
function answerBase(paths: BenchPaths): number {
  const m = /#define\s+SYSI_BENCH_ANSWER_BASE\s+(0x[0-9a-fA-F]+|\d+)L?/.exec(
    readFileSync(join(paths.bench, "bench.h"), "utf8"),
  );
  if (!m?.[1]) throw new Error("bench/bench.h does not define SYSI_BENCH_ANSWER_BASE");
  return Number(m[1]);
}

/** Offset (bytes) of the first `0f 05` in native libc syscall()'s head, or -1. */
function libcSiteOffset(head: string): number {
  for (let i = 0; i + 4 <= head.length; i += 2) if (head.slice(i, i + 4) === "0f05") return i / 2;
  return -1;
}

/** The displayed site bytes: 5 for an e9 jump, else 2. */
function siteBytes(hex: string): string {
  return hex.startsWith("e9") ? hex.slice(0, 10) : hex.slice(0, 4);
}

function emptyRow(c: CallConfig): CallRow {
  return {
    id: c.id,
    label: labelOf(c),
    group: c.group,
    hook: c.hook,
    mode: c.mode,
    nr: c.nr,
    baseline: c.baseline,
    status: "ok",
    rounds: [],
    median: null,
    min: null,
    max: null,
    cpuRounds: [],
    cpuMedian: null,
    bestRounds: [],
    bestNs: null,
    blocks: 0,
    ratio: null,
    bad: 0,
    site: null,
    n: null,
  };
}

function emptyStartupRow(id: string, label: string, runs: number): StartupRow {
  return {
    id,
    label,
    status: "ok",
    runsPerRound: runs,
    rounds: [],
    median: null,
    min: null,
    max: null,
    ratio: null,
    addedMs: null,
  };
}

/** Native site bytes, learned from the native rows' preflight. */
interface NativeBytes {
  inline: string | null;
  libcOffset: number;
  libc: string | null;
}

/** Check one sample: correct results, and (when instrumented) the site really changed. */
function judge(c: CallConfig, s: CallSample, native: NativeBytes): { site: string | null; error?: string } {
  let site: string | null = null;
  if (c.mode === "inline") site = siteBytes(s.site);
  else if (c.mode === "libc" && native.libcOffset >= 0) site = siteBytes(s.libc_head.slice(native.libcOffset * 2));
  if (s.bad > 0) return { site, error: `${s.bad} wrong results (expected ${s.expect}, a call returned e.g. ${s.got})` };
  if (
    c.instrumented &&
    c.mode === "inline" &&
    native.inline !== null &&
    s.site.slice(0, 4) === native.inline.slice(0, 4)
  )
    return { site, error: `not instrumented: the inline site still reads ${site}` };
  if (c.instrumented && c.mode === "libc" && native.libc !== null && s.libc_head === native.libc)
    return { site, error: `not instrumented: libc syscall() still reads ${site ?? "as natively"}` };
  return { site };
}

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const tiny = opts.tiny === true;
  const rounds = Math.max(1, opts.rounds ?? (tiny ? 1 : 5));
  const params: RunParams = { targetMs: opts.targetMs ?? (tiny ? 2 : 75), reps: opts.reps ?? (tiny ? 2 : 5) };
  const progress = opts.progress ?? (() => {});
  const paths = benchPaths(opts.cliRoot);
  const loadStart = loadavg()[0] ?? 0;
  const work = mkdtempSync(join(tmpdir(), "sysi-bench-"));
  try {
    // the count hook counts into a stats file, as under sysi run (without one it counts nothing)
    const countStats = join(work, "count-stats");
    createStatsFile(countStats);
    progress("building bench programs (once: they are cached)");
    const bins = await buildBench(paths);
    const base = answerBase(paths);
    const host = opts.host ?? (await (await import("@sysi/core/host")).probeHost()).facts();

    // the strategies say what is measured of them (Strategy.bench)
    const benchRows = benchSpecs((await loadStrategies(opts.config)).map((e) => e.strategy));
    const configs = callConfigs(benchRows, opts.only);
    const specs = [...new Set(configs.filter((c) => c.hook !== null).map((c) => c.group))];
    const chains = new Map<string, ChainEnv>();
    for (const spec of specs) {
      progress(`preparing ${spec}`);
      chains.set(spec, await chainEnv(spec, { config: opts.config, host, paths, program: bins.getppid }));
    }
    const straceOk = Bun.which("strace") !== null;

    // Preflight: one small process per configuration; it also learns the native site bytes.
    const native: NativeBytes = { inline: null, libcOffset: -1, libc: null };
    const live: Live[] = [];
    const rows: CallRow[] = [];
    for (const c of configs) {
      const row = emptyRow(c);
      rows.push(row);
      let env = cleanEnv();
      if (c.hook !== null) {
        const ch = chains.get(c.group);
        if (ch === undefined || !ch.ok) {
          row.status = "skipped";
          row.reason = ch?.ok === false ? ch.reason : "not prepared";
          continue;
        }
        env = cleanEnv({
          ...ch.env,
          ...hookEnv(c, bins),
          ...(c.hook === "count" ? { SYSI_STATS_FILE: countStats } : {}),
        });
      }
      if (c.group === "strace" && !straceOk) {
        row.status = "skipped";
        row.reason = "strace not installed";
        continue;
      }
      const argv = callArgv(c, bins, params, base);
      progress(`preflight ${c.id}`);
      const small = [...argv, "--n", c.group === "strace" ? "20" : "1000", "--reps", "1"];
      const r = await runCall(small, env, CALL_TIMEOUT_MS);
      if (!r.ok) {
        row.status = "failed";
        row.reason = r.error;
        continue;
      }
      if (c.id === NATIVE_INLINE) native.inline = r.value.site;
      if (c.id === NATIVE_LIBC) {
        native.libc = r.value.libc_head;
        native.libcOffset = libcSiteOffset(r.value.libc_head);
      }
      const verdict = judge(c, r.value, native);
      row.site = verdict.site;
      if (verdict.error !== undefined) {
        row.status = "failed";
        row.reason = verdict.error;
        continue;
      }
      live.push({ config: c, row, argv, env });
    }

    const wantStartup = opts.only === undefined || opts.only.length === 0 || opts.only.includes("startup");
    const startupRows: StartupRow[] = [];
    const liveStartup: LiveStartup[] = [];
    if (wantStartup) {
      progress("preparing startup (sysi run, sysi env)");
      const runs: StartupRuns = tiny ? TINY_STARTUP_RUNS : DEFAULT_STARTUP_RUNS;
      for (const s of await startupConfigs(paths, bins, work, runs)) {
        if (!s.ok) {
          const row = emptyStartupRow(s.id, s.label, 0);
          row.status = "skipped";
          row.reason = s.reason;
          startupRows.push(row);
          continue;
        }
        const row = emptyStartupRow(s.config.id, s.config.label, s.config.runs);
        startupRows.push(row);
        liveStartup.push({ config: s.config, row });
      }
    }

    for (let round = 1; round <= rounds; round++) {
      for (const l of live) {
        if (l.row.status !== "ok") continue;
        progress(`round ${round}/${rounds} ${l.config.id}`);
        const r = await runCall(l.argv, l.env, CALL_TIMEOUT_MS);
        if (!r.ok) {
          l.row.status = "failed";
          l.row.reason = `round ${round}: ${r.error}`;
          continue;
        }
        const verdict = judge(l.config, r.value, native);
        l.row.bad += r.value.bad;
        l.row.site = verdict.site;
        l.row.n = r.value.n;
        if (verdict.error !== undefined) {
          l.row.status = "failed";
          l.row.reason = `round ${round}: ${verdict.error}`;
          continue;
        }
        l.row.rounds.push(r.value.median);
        l.row.cpuRounds.push(r.value.cpu_median);
        l.row.bestRounds.push(r.value.best);
        l.row.blocks += r.value.blocks;
      }
      for (const l of liveStartup) {
        if (l.row.status !== "ok") continue;
        progress(`round ${round}/${rounds} ${l.config.id}`);
        const r = await runJson<SpawnSample>(l.config.argv, l.config.env, STARTUP_TIMEOUT_MS);
        if (!r.ok) {
          l.row.status = "failed";
          l.row.reason = `round ${round}: ${r.error}`;
        } else if (r.value.fail > 0) {
          l.row.status = "failed";
          l.row.reason = `round ${round}: ${r.value.fail}/${r.value.runs} runs did not exit 0 (wait status ${r.value.status})`;
        } else l.row.rounds.push(r.value.median);
      }
    }

    summarize(rows, startupRows);
    return {
      date: new Date().toISOString(),
      machine: machine(),
      load: { start: loadStart, end: loadavg()[0] ?? 0 },
      params: { rounds, targetMs: params.targetMs, reps: params.reps, tiny },
      chains: specs.map((spec) => {
        const ch = chains.get(spec);
        return ch?.ok
          ? { spec: ch.spec, ok: true, env: ch.env }
          : { spec, ok: false, reason: ch?.ok === false ? ch.reason : "not prepared" };
      }),
      rows,
      startup: startupRows,
      headline: headline(rows, benchRows),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function fill(row: {
  rounds: number[];
  median: number | null;
  min: number | null;
  max: number | null;
  status: RowStatus;
}): void {
  if (row.status !== "ok" || row.rounds.length === 0) return;
  row.median = median(row.rounds);
  row.min = Math.min(...row.rounds);
  row.max = Math.max(...row.rounds);
}

function summarize(rows: CallRow[], startup: StartupRow[]): void {
  for (const r of rows) {
    fill(r);
    if (r.median !== null) {
      r.cpuMedian = median(r.cpuRounds);
      r.bestNs = Math.min(...r.bestRounds);
    }
  }
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const r of rows) {
    const b = r.baseline === null ? undefined : byId.get(r.baseline);
    if (r.median !== null && b?.median != null) r.ratio = r.median / b.median;
  }
  for (const r of startup) fill(r);
  const nat = startup.find((r) => r.id === "startup/native");
  for (const r of startup) {
    if (r.median !== null && nat?.median != null) {
      r.ratio = r.median / nat.median;
      r.addedMs = r.median - nat.median;
    }
  }
}

export type { BenchBinaries, Headline };
