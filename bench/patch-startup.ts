/**
 * Start-up cost of a program written by `sysi patch` (issue 15): /bin/true against copies of it
 * patched with `-s punning,ud2` and `-s ud2` (hook passthrough), and against `sysi run`'s
 * launcher path (the environment `sysi env` prints: LD_PRELOAD, plans on disk). Timed with
 * packages/cli/bench/spawn.c (posix_spawn + waitpid), interleaved rounds of R runs each, medians in ms.
 * The punning copy runs twice: as it is (trampoline pages mapped on first use) and with
 * SYSI_PUNNING_EAGER=1 (every page mapped at start, the runtime's behaviour before lazy pages).
 * The launcher-path row starts /bin/true through /usr/bin/env with sysi's variables, so that only
 * /bin/true runs instrumented (not the timer: a timer under LD_PRELOAD pays for its own
 * instrumented posix_spawn), and is compared with `env /bin/true`.
 * `sysi run` itself (the CLI: Bun, plan cache, then the program) is timed in the same rounds
 * with --run-runs runs each (default 10), since one run takes ~100 ms.
 *
 *   bun bench/patch-startup.ts [--runs N] [--rounds K] [--run-runs M] [--json]
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
const RUN_RUNS = num("--run-runs", 10);
const dir = mkdtempSync(join(tmpdir(), "sysi-patch-bench-"));

function sh(argv: string[], env?: Record<string, string>): string {
  const r = Bun.spawnSync(argv, { env: env ?? (process.env as Record<string, string>), stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

try {
  const spawn = join(dir, "spawn");
  sh(["cc", "-O2", "-o", spawn, join(ROOT, "packages/cli/bench/spawn.c")]);
  /** base: the row this one is compared with (default: native /bin/true) */
  const configs: { name: string; argv: string[]; env?: Record<string, string>; runs?: number; base?: string }[] = [
    { name: "native /bin/true", argv: ["/bin/true"] },
  ];
  for (const chain of ["punning,ud2", "ud2"]) {
    const out = join(dir, `true.${chain}`);
    sh([SYSI, "patch", "-s", chain, "--hook", "passthrough", "/bin/true", "-o", out]);
    configs.push({ name: `patched -s ${chain}`, argv: [out] });
    if (chain.startsWith("punning"))
      configs.push({
        name: `patched -s ${chain}, EAGER`,
        argv: [out],
        env: { ...(process.env as Record<string, string>), SYSI_PUNNING_EAGER: "1" },
      });
  }
  const envText = sh([SYSI, "env", "-s", "punning,ud2", "--hook", "passthrough", "--", "/bin/true"]);
  const vars: string[] = [];
  for (const m of envText.matchAll(/^export (\w+)=(.*)$/gm))
    vars.push(`${m[1]}=${(m[2] as string).replace(/^'|'$/g, "")}`);
  configs.push({ name: "env /bin/true", argv: ["/usr/bin/env", "/bin/true"] });
  configs.push({
    name: "sysi env (LD_PRELOAD) -s punning,ud2",
    argv: ["/usr/bin/env", ...vars, "/bin/true"],
    base: "env /bin/true",
  });
  configs.push({ name: "bun sysi --version (the CLI alone)", argv: [SYSI, "--version"], runs: RUN_RUNS });
  for (const chain of ["punning,ud2", "ud2"]) {
    const argv = [SYSI, "run", "-s", chain, "--hook", "passthrough", "--", "/bin/true"];
    sh(argv); // warm: plans cached, runtimes built
    configs.push({ name: `sysi run -s ${chain} (warm)`, argv, runs: RUN_RUNS });
  }

  const medians: Record<string, number[]> = {};
  for (let k = 0; k < ROUNDS; k++) {
    for (const c of configs) {
      const runs = String(c.runs ?? RUNS);
      const j = JSON.parse(sh([spawn, "--runs", runs, "--warmup", c.runs ? "1" : "10", "--", ...c.argv], c.env));
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
    const b = c.base === undefined ? base : med(medians[c.base] as number[]);
    return {
      config: c.name,
      medianMs: Math.round(m * 1000) / 1000,
      overMs: Math.round((m - b) * 1000) / 1000,
      over: c.base ?? "native /bin/true",
    };
  });
  if (args.includes("--json"))
    process.stdout.write(`${JSON.stringify({ runs: RUNS, rounds: ROUNDS, runRuns: RUN_RUNS, rows }, null, 2)}\n`);
  else {
    process.stdout.write(`start-up, median of ${ROUNDS} rounds × ${RUNS} runs (ms)\n`);
    for (const r of rows)
      process.stdout.write(
        `  ${r.config.padEnd(40)} ${r.medianMs.toFixed(3)}  (+${r.overMs.toFixed(3)}${r.over === "native /bin/true" ? "" : ` over ${r.over}`})\n`,
      );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
