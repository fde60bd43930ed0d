/**
 * Start-up cost of a program written by `sysi patch` (issue 15): /bin/true against copies of it
 * patched with `-s punning,ud2` and `-s ud2` (hook passthrough), and against `sysi run`'s
 * launcher path (the environment `sysi env` prints: LD_PRELOAD, plans on disk). Timed with
 * packages/cli/bench/spawn.c (posix_spawn + waitpid), interleaved rounds of R runs each, medians in ms.
 *
 *   bun bench/patch-startup.ts [--runs N] [--rounds K] [--json]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const SYSI = join(ROOT, "packages/cli/bin/sysi");
const args = process.argv.slice(2);
const num = (flag: string, dflt: number) => {
  const i = args.indexOf(flag);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} needs a positive integer`);
  return v;
};
const RUNS = num("--runs", 200);
const ROUNDS = num("--rounds", 5);
const dir = mkdtempSync(join(tmpdir(), "sysi-patch-bench-"));

function sh(argv: string[], env?: Record<string, string>): string {
  const r = Bun.spawnSync(argv, { env: env ?? (process.env as Record<string, string>), stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

try {
  const spawn = join(dir, "spawn");
  sh(["cc", "-O2", "-o", spawn, join(ROOT, "packages/cli/bench/spawn.c")]);
  const configs: { name: string; argv: string[]; env?: Record<string, string> }[] = [
    { name: "native /bin/true", argv: ["/bin/true"] },
  ];
  for (const chain of ["punning,ud2", "ud2"]) {
    const out = join(dir, `true.${chain}`);
    sh([SYSI, "patch", "-s", chain, "--hook", "passthrough", "/bin/true", "-o", out]);
    configs.push({ name: `patched -s ${chain}`, argv: [out] });
  }
  const envText = sh([SYSI, "env", "-s", "punning,ud2", "--hook", "passthrough", "--", "/bin/true"]);
  const env: Record<string, string> = { ...(process.env as Record<string, string>) };
  for (const m of envText.matchAll(/^export (\w+)=(.*)$/gm))
    env[m[1] as string] = (m[2] as string).replace(/^'|'$/g, "");
  configs.push({ name: "sysi env (LD_PRELOAD) -s punning,ud2", argv: ["/bin/true"], env });

  const medians: Record<string, number[]> = {};
  for (let k = 0; k < ROUNDS; k++) {
    for (const c of configs) {
      const j = JSON.parse(sh([spawn, "--runs", String(RUNS), "--warmup", "10", "--", ...c.argv], c.env));
      if (j.fail !== 0) throw new Error(`${c.name}: ${j.fail} runs failed`);
      const list = medians[c.name] ?? [];
      list.push(j.median);
      medians[c.name] = list;
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const base = med(medians["native /bin/true"] as number[]);
  const rows = configs.map((c) => {
    const m = med(medians[c.name] as number[]);
    return { config: c.name, medianMs: Math.round(m * 1000) / 1000, overMs: Math.round((m - base) * 1000) / 1000 };
  });
  if (args.includes("--json"))
    process.stdout.write(`${JSON.stringify({ runs: RUNS, rounds: ROUNDS, rows }, null, 2)}\n`);
  else {
    process.stdout.write(`start-up, median of ${ROUNDS} rounds × ${RUNS} runs (ms)\n`);
    for (const r of rows)
      process.stdout.write(`  ${r.config.padEnd(40)} ${r.medianMs.toFixed(3)}  (+${r.overMs.toFixed(3)})\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
