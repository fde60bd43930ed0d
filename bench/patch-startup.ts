/**
 * Start-up cost of a program written by `sysi patch` (issue 15): /bin/true against copies of it
 * patched with `-s punning,ud2` and `-s ud2` (hook passthrough), each also with --standalone
 * (compared with its plain copy: the runtime written into memfds at start), and against `sysi run`'s
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
 * Each row gives the median over rounds of each round's median and of its lower quartile (p25):
 * on a loaded machine (2 cores shared with test runs) the median also counts the time a run
 * waits for a core, the quartile less so. With --perf N (Linux perf installed) each round also
 * runs `perf stat -r N` per row (not the sysi run/--version rows): task-clock (CPU time of the
 * process itself, ms) and page faults, medians over rounds.
 *
 *   bun bench/patch-startup.ts [--runs N] [--rounds K] [--run-runs M] [--perf N] [--json]
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
const PERF = args.includes("--perf") ? num("--perf", 200) : 0;
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
    // the runtime carried in the file (memfds written at start: docs/patch.md, --standalone)
    sh([SYSI, "patch", "--standalone", "-s", chain, "--hook", "passthrough", "/bin/true", "-o", `${out}.sa`]);
    configs.push({ name: `patched -s ${chain} --standalone`, argv: [`${out}.sa`], base: `patched -s ${chain}` });
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

  /** per row, one value per round */
  const medians: Record<string, number[]> = {};
  const quartiles: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  const faults: Record<string, number[]> = {};
  const push = (m: Record<string, number[]>, k: string, v: number) => {
    const list = m[k] ?? [];
    list.push(v);
    m[k] = list;
  };
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  for (let k = 0; k < ROUNDS; k++) {
    for (const c of configs) {
      const runs = String(c.runs ?? RUNS);
      const j = JSON.parse(sh([spawn, "--runs", runs, "--warmup", c.runs ? "1" : "10", "--", ...c.argv], c.env));
      if (j.fail !== 0) throw new Error(`${c.name}: ${j.fail} runs failed`);
      push(medians, c.name, j.median);
      const ms = sorted(j.ms as number[]);
      push(quartiles, c.name, ms[Math.floor(ms.length / 4)] as number);
      if (PERF && !c.runs) {
        const r = Bun.spawnSync(
          ["perf", "stat", "-x,", "-r", String(PERF), "-e", "task-clock,page-faults", ...c.argv],
          {
            env: c.env ?? (process.env as Record<string, string>),
            stdout: "ignore",
            stderr: "pipe",
          },
        );
        if (r.exitCode !== 0) throw new Error(`perf stat ${c.name}: ${r.stderr.toString()}`);
        for (const line of r.stderr.toString().split("\n")) {
          const f = line.split(",");
          if (f[2]?.startsWith("task-clock")) push(cpu, c.name, Number(f[0]));
          if (f[2]?.startsWith("page-faults")) push(faults, c.name, Number(f[0]));
        }
      }
    }
  }
  const med = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)] as number;
  const ms3 = (x: number) => Math.round(x * 1000) / 1000;
  const rows = configs.map((c) => {
    const base = c.base ?? "native /bin/true";
    const m = med(medians[c.name] as number[]);
    const q = med(quartiles[c.name] as number[]);
    const row: Record<string, string | number> = {
      config: c.name,
      medianMs: ms3(m),
      overMs: ms3(m - med(medians[base] as number[])),
      p25Ms: ms3(q),
      p25OverMs: ms3(q - med(quartiles[base] as number[])),
      over: base,
    };
    if (cpu[c.name] && cpu[base]) {
      row.taskClockMs = ms3(med(cpu[c.name] as number[]));
      row.taskClockOverMs = ms3(med(cpu[c.name] as number[]) - med(cpu[base] as number[]));
      row.pageFaults = med(faults[c.name] as number[]);
    }
    return row;
  });
  if (args.includes("--json"))
    process.stdout.write(
      `${JSON.stringify({ runs: RUNS, rounds: ROUNDS, runRuns: RUN_RUNS, perfRuns: PERF, rows }, null, 2)}\n`,
    );
  else {
    const perfHead = PERF ? `; task-clock and page faults: perf stat -r ${PERF}` : "";
    process.stdout.write(`start-up, medians of ${ROUNDS} rounds × ${RUNS} runs (ms): median, p25${perfHead}\n`);
    const over = (x: number) => `${x < 0 ? "" : "+"}${x.toFixed(3)}`;
    for (const r of rows) {
      const base = r.over === "native /bin/true" ? "" : ` over ${r.over}`;
      const perf =
        r.taskClockMs === undefined
          ? ""
          : `  cpu ${(r.taskClockMs as number).toFixed(3)} (${over(r.taskClockOverMs as number)})  faults ${r.pageFaults}`;
      process.stdout.write(
        `  ${String(r.config).padEnd(40)} ${(r.medianMs as number).toFixed(3)} (${over(r.overMs as number)})  p25 ${(r.p25Ms as number).toFixed(3)} (${over(r.p25OverMs as number)})${perf}${base}\n`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
