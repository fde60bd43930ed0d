/**
 * The trace hook against `strace -f` on the same program (issue 17 item 5). The program is the
 * one `sysi bench` measures, packages/cli/bench/getppid.c, in its `inline` mode: getppid through
 * an inline `syscall` site (planned and patched like any other), N calls per repetition, one
 * warm-up and K timed repetitions, every result checked against the real parent pid. Four
 * configurations, rounds interleaved (round 1 of each, then round 2, …) so drift on a shared
 * machine hits each alike:
 *
 *   native       the program alone
 *   passthrough  `sysi run --hook passthrough` (the chain's cost with a hook that only calls)
 *   trace        `sysi run --hook trace -o FILE` (every call gets its decoded line, written to a
 *                file; the file's getppid lines are counted against the calls made)
 *   strace       `strace -f -o FILE` (every call gets its line, written to a file)
 *
 * Measured, per configuration (median over rounds of getppid.c's figures): `median`, the
 * wall-clock ns per call of a whole repetition (median of K); `best`, the fastest ~1 ms block of
 * calls (a quiet window on a busy machine: interference only slows a loop down). Both include
 * the trace file's writes (one write(2) per 64 KiB under the trace hook; most blocks hold one).
 *
 * The ratio is of what tracing adds to a call in the same run: (strace − native) / (trace −
 * native), from the medians, and from the best blocks. Thread CPU time is not used: under strace
 * it leaves out the tracer's work.
 *
 *   bun bench/trace-vs-strace.ts [--rounds N] [--calls N] [--strace-calls N] [--reps K]
 *                                [-s CHAIN] [--json]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const SYSI = join(ROOT, "packages/cli/bin/sysi");
const BENCH_SRC = join(ROOT, "packages/cli/bench");
const RESUME = join(ROOT, "plugins/ud2/native/resume.S");

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  process.stdout.write(
    "usage: bun bench/trace-vs-strace.ts [--rounds N] [--calls N] [--strace-calls N] [--reps K] [-s CHAIN] [--json]\n" +
      "  ns per getppid natively, under sysi's passthrough and trace hooks and under strace -f (same program,\n" +
      "  same run, rounds interleaved), and how many times less the trace hook adds to a call than strace.\n",
  );
  process.exit(0);
}
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : dflt;
};
const ROUNDS = Number(opt("--rounds", "5"));
const CALLS = Number(opt("--calls", "200000"));
const STRACE_CALLS = Number(opt("--strace-calls", "10000"));
const REPS = Number(opt("--reps", "5"));
const CHAIN = opt("-s", "");
const JSON_OUT = args.includes("--json");
if (![ROUNDS, CALLS, STRACE_CALLS, REPS].every((n) => Number.isInteger(n) && n > 0) || REPS > 64) {
  process.stderr.write(
    "trace-vs-strace: error: --rounds, --calls, --strace-calls and --reps need positive integers (--reps at most 64)\n",
  );
  process.exit(2);
}

const tmp = mkdtempSync(join(tmpdir(), "sysi-bench-trace-"));
const prog = join(tmp, "getppid");
const made = Bun.spawnSync([
  "cc",
  "-O2",
  "-mno-red-zone",
  "-fPIE",
  "-pie",
  "-o",
  prog,
  join(BENCH_SRC, "getppid.c"),
  RESUME,
]);
if (made.exitCode !== 0) {
  process.stderr.write(`trace-vs-strace: error: building getppid failed: ${made.stderr.toString().trim()}\n`);
  rmSync(tmp, { recursive: true, force: true });
  process.exit(2);
}
const out = join(tmp, "trace.out");

interface Figures {
  median: number;
  best: number;
}

function measure(argv: string[]): Figures {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  const line = r.stdout
    .toString()
    .split("\n")
    .find((l) => l.startsWith('{"mode"'));
  if (r.exitCode !== 0 || !line) {
    throw new Error(`${argv.join(" ")}: exit ${r.exitCode}: ${r.stdout.toString()}${r.stderr.toString()}`);
  }
  const j = JSON.parse(line) as { bad: number; median: number; best: number };
  if (j.bad !== 0) throw new Error(`${argv.join(" ")}: ${j.bad} calls returned a wrong parent pid`);
  return { median: j.median, best: j.best };
}

const loop = (n: number) => [prog, "inline", "--n", String(n), "--reps", String(REPS)];
const chain = CHAIN ? ["-s", CHAIN] : [];
const configs: Record<string, () => Figures> = {
  native: () => measure(loop(CALLS)),
  passthrough: () => measure([SYSI, "run", ...chain, "--hook", "passthrough", "--", ...loop(CALLS)]),
  trace: () => {
    rmSync(out, { force: true });
    const f = measure([SYSI, "run", ...chain, "--hook", "trace", "-o", out, "--", ...loop(CALLS)]);
    const lines = readFileSync(out, "utf8")
      .split("\n")
      .filter((l) => /^getppid\(\) +=/.test(l)).length;
    // the warm-up and the K timed repetitions, each of CALLS calls, all traced
    if (lines < CALLS * (REPS + 1))
      throw new Error(`trace file has ${lines} getppid lines for ${CALLS * (REPS + 1)}+ calls`);
    return f;
  },
  strace: () => measure(["strace", "-f", "-o", out, ...loop(STRACE_CALLS)]),
};
const samples: Record<string, Figures[]> = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
try {
  for (let r = 0; r < ROUNDS; r++) for (const [k, f] of Object.entries(configs)) samples[k]?.push(f());
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fig = (k: string, f: keyof Figures) => median((samples[k] ?? []).map((s) => s[f]));
const added = (k: string, f: keyof Figures) => fig(k, f) - fig("native", f);
const ratio = (f: keyof Figures) => added("strace", f) / Math.max(added("trace", f), 0.1);
const report = {
  chain: CHAIN || "default",
  nsPerCall: Object.fromEntries(
    Object.keys(configs).map((k) => [k, { median: fig(k, "median"), best: fig(k, "best") }]),
  ),
  addedNs: Object.fromEntries(
    ["passthrough", "trace", "strace"].map((k) => [k, { median: added(k, "median"), best: added(k, "best") }]),
  ),
  traceOverStraceRatio: { median: Math.round(ratio("median")), best: Math.round(ratio("best")) },
  samples,
};
if (JSON_OUT) {
  process.stdout.write(`${JSON.stringify(report)}\n`);
} else {
  process.stdout.write(
    `ns per getppid, median over ${ROUNDS} rounds   median   best block   added over native (median / best)\n`,
  );
  for (const k of Object.keys(configs)) {
    const a = k === "native" ? "" : `${added(k, "median").toFixed(0).padStart(9)} / ${added(k, "best").toFixed(0)}`;
    process.stdout.write(
      `${k.padEnd(36)} ${fig(k, "median").toFixed(1).padStart(8)} ${fig(k, "best").toFixed(1).padStart(12)}   ${a}\n`,
    );
  }
  process.stdout.write(
    `per traced call: strace -f adds ${added("strace", "median").toFixed(0)} ns, the trace hook ${added("trace", "median").toFixed(0)} ns: ${report.traceOverStraceRatio.median}x cheaper (best blocks: ${added("strace", "best").toFixed(0)} / ${added("trace", "best").toFixed(0)} ns, ${report.traceOverStraceRatio.best}x; goal 300x)\n`,
  );
}
