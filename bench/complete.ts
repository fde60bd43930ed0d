/**
 * The cost of `sysi run --complete` (docs/complete.md), in one run, interleaved rounds, medians:
 * ns per getppid from a patched libc site and from generated code (an anonymous page no patch
 * reaches), natively, under `sysi run` and under `sysi run --complete` (hook as given, default
 * passthrough). Ratios are to the native call of the same round.
 *
 *   bun bench/complete.ts [--hook passthrough|count] [--rounds 5] [--n 200000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    hook: { type: "string", default: "passthrough" },
    rounds: { type: "string", default: "5" },
    n: { type: "string", default: "200000" },
  },
});
const dir = mkdtempSync(join(tmpdir(), "sysi-bench-complete-"));
const prog = join(dir, "complete");
const cli = join(import.meta.dir, "../packages/cli/bin/run.js");
try {
  const cc = Bun.spawnSync(["cc", "-O2", "-o", prog, join(import.meta.dir, "complete.c")], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`cc failed: ${cc.stderr}`);
  const configs: Record<string, string[]> = {
    native: [],
    run: ["bun", cli, "run", "--hook", values.hook as string, "--"],
    complete: ["bun", cli, "run", "--complete", "--hook", values.hook as string, "--"],
  };
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const mode of ["libc", "jit"]) {
      for (const [name, pre] of Object.entries(configs)) {
        // without --complete the generated code's calls bypass sysi: that row is native again
        const p = Bun.spawnSync([...pre, prog, mode, values.n as string], { stdout: "pipe", stderr: "pipe" });
        const m = /^\w+ ([\d.]+)$/m.exec(p.stdout.toString());
        if (p.exitCode !== 0 || m === null) throw new Error(`${name} ${mode}: ${p.stderr}`);
        const key = `${name} ${mode}`;
        samples[key] = [...(samples[key] ?? []), Number(m[1])];
      }
    }
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number;
  const base = { libc: median(samples["native libc"] ?? []), jit: median(samples["native jit"] ?? []) };
  console.log(
    `hook ${values.hook}, ${values.rounds} rounds of ${values.n} calls, medians (ns per call, ratio to native)`,
  );
  for (const [k, v] of Object.entries(samples)) {
    const b = k.endsWith("libc") ? base.libc : base.jit;
    console.log(`${k.padEnd(14)} ${median(v).toFixed(1).padStart(8)} ns  ${(median(v) / b).toFixed(2)}x`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
