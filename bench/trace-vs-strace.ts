/**
 * The trace hook against `strace -f` on the same program (issue 17 item 5): ns per getppid of
 * packages/core/native/tests/bench-getppid.c (an inline `syscall` site, median of 5 repetitions
 * inside the program), natively, under `sysi run --hook passthrough`, under `sysi run --hook
 * trace -o FILE` (every call gets its decoded line, written to a file) and under
 * `strace -f -o FILE`, rounds interleaved so drift on a shared machine hits each alike.
 *
 * Reported: ns per call of each (median over rounds) and the ratio of what tracing adds per
 * call, (strace - native) / (trace - native): how many times cheaper a traced call is. The
 * trace file's line count is checked against the calls made.
 *
 *   bun bench/trace-vs-strace.ts [--rounds N] [--calls N] [--strace-calls N] [-s CHAIN] [--json]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const SYSI = join(ROOT, "packages/cli/bin/sysi");
const NATIVE = join(ROOT, "packages/core/native");

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : dflt;
};
const ROUNDS = Number(opt("--rounds", "3"));
const CALLS = Number(opt("--calls", "200000"));
const STRACE_CALLS = Number(opt("--strace-calls", "20000"));
const CHAIN = opt("-s", "");
const JSON_OUT = args.includes("--json");
if (![ROUNDS, CALLS, STRACE_CALLS].every((n) => Number.isInteger(n) && n > 0)) {
  process.stderr.write("trace-vs-strace: error: --rounds, --calls and --strace-calls need positive integers\n");
  process.exit(2);
}

const tmp = mkdtempSync(join(tmpdir(), "sysi-bench-trace-"));
const build = join(tmp, "build");
const made = Bun.spawnSync(["make", "-s", "-C", NATIVE, `OUT=${build}`, `${build}/tests/bench-getppid`]);
if (made.exitCode !== 0) {
  process.stderr.write(`trace-vs-strace: error: building bench-getppid failed: ${made.stderr.toString().trim()}\n`);
  process.exit(2);
}
const prog = join(build, "tests/bench-getppid");
const out = join(tmp, "trace.out");

function nsPerCall(argv: string[]): number {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  const m = /inline ([\d.]+) ns\/call n=\d+ bad=0/.exec(r.stdout.toString());
  if (r.exitCode !== 0 || !m) {
    throw new Error(`${argv.join(" ")}: exit ${r.exitCode}: ${r.stdout.toString()}${r.stderr.toString()}`);
  }
  return Number(m[1]);
}

const chain = CHAIN ? ["-s", CHAIN] : [];
const configs: Record<string, () => number> = {
  native: () => nsPerCall([prog, "inline", String(CALLS)]),
  passthrough: () => nsPerCall([SYSI, "run", ...chain, "--hook", "passthrough", "--", prog, "inline", String(CALLS)]),
  trace: () => {
    const ns = nsPerCall([SYSI, "run", ...chain, "--hook", "trace", "-o", out, "--", prog, "inline", String(CALLS)]);
    const lines = readFileSync(out, "utf8")
      .split("\n")
      .filter((l) => l.startsWith("getppid() = ")).length;
    // 5 timed repetitions plus a warm-up of the same size, each call checked against getppid()
    if (lines < CALLS * 5) throw new Error(`trace file has ${lines} getppid lines for ${CALLS * 5}+ calls`);
    return ns;
  },
  strace: () => nsPerCall(["strace", "-f", "-o", out, prog, "inline", String(STRACE_CALLS)]),
};
const samples: Record<string, number[]> = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
try {
  for (let r = 0; r < ROUNDS; r++) for (const [k, f] of Object.entries(configs)) samples[k]?.push(f());
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])) as Record<string, number>;
const native = m.native as number;
const ratio = ((m.strace as number) - native) / Math.max((m.trace as number) - native, 0.1);
const report = { nsPerCall: m, samples, traceOverStraceRatio: Math.round(ratio), chain: CHAIN || "default" };
if (JSON_OUT) {
  process.stdout.write(`${JSON.stringify(report)}\n`);
} else {
  for (const [k, v] of Object.entries(m)) process.stdout.write(`${k.padEnd(12)} ${v.toFixed(1).padStart(9)} ns/call\n`);
  process.stdout.write(
    `per traced call: strace -f adds ${((m.strace as number) - native).toFixed(0)} ns, the trace hook ${((m.trace as number) - native).toFixed(0)} ns: ${report.traceOverStraceRatio}x cheaper\n`,
  );
}
