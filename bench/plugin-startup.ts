/**
 * Warm start-up of `sysi run -- /bin/true` with and without a user plugin (issue 14): the same
 * checkout's bin/sysi, the same warm cache, one data dir per configuration, runs interleaved
 * (configuration 1, 2, 3, 4, then 1 again …) so that drift on a shared machine hits each alike.
 *
 *   none       no user plugin (punning loads from the workspace, as in development)
 *   linked     `sysi plugins link plugins/punning` (replaces the workspace copy)
 *   installed  plugins/punning copied into the data dir's node_modules and listed as
 *              `sysi plugins install` lists it
 *   oclif      no user plugin, SYSI_NO_FAST_RUN=1: what `sysi run` costs off its fast path
 *
 * Every configuration runs the same chain (punning,ud2 by default on a host without protection
 * keys) and the same hook (passthrough: no summary to print).
 *
 *   bun bench/plugin-startup.ts [--runs N] [--json]
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const SYSI = join(ROOT, "packages/cli/bin/sysi");
const PUNNING = join(ROOT, "plugins/punning");

const args = process.argv.slice(2);
const runsArg = args.indexOf("--runs");
const RUNS = runsArg >= 0 ? Number(args[runsArg + 1]) : 40;
const JSON_OUT = args.includes("--json");
if (!Number.isInteger(RUNS) || RUNS < 1) {
  process.stderr.write("plugin-startup: error: --runs needs a positive integer\n");
  process.exit(2);
}

const tmp = mkdtempSync(join(tmpdir(), "sysi-bench-plugins-"));
const cache = join(tmp, "cache");
mkdirSync(cache);

function baseEnv(data: string, extra: Record<string, string> = {}): Record<string, string> {
  const env = { ...(process.env as Record<string, string>) };
  for (const k of Object.keys(env)) if (k.startsWith("SYSI_") || k === "DEBUG") delete env[k];
  return { ...env, SYSI_DATA_DIR: data, SYSI_CACHE_DIR: cache, SYSI_CONFIG_DIR: join(tmp, "config"), ...extra };
}

function sysi(argv: string[], env: Record<string, string>) {
  const r = Bun.spawnSync([SYSI, ...argv], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe", cwd: tmp });
  return { code: r.exitCode, stderr: r.stderr.toString() };
}

interface Config {
  name: string;
  env: Record<string, string>;
}

function dataDir(name: string): string {
  const d = join(tmp, `data-${name}`);
  mkdirSync(d);
  return d;
}

try {
  const none = dataDir("none");
  const linked = dataDir("linked");
  const link = sysi(["plugins", "link", PUNNING, "--no-install"], baseEnv(linked));
  if (link.code !== 0) throw new Error(`sysi plugins link failed: ${link.stderr.trim()}`);
  const installed = dataDir("installed");
  const pj = JSON.parse(readFileSync(join(PUNNING, "package.json"), "utf8")) as { name: string; version: string };
  const dest = join(installed, "node_modules", pj.name);
  mkdirSync(dest, { recursive: true });
  for (const part of ["package.json", "src", "native"])
    cpSync(join(PUNNING, part), join(dest, part), { recursive: true, filter: (src) => !src.includes("/native/build") });
  writeFileSync(
    join(installed, "package.json"),
    JSON.stringify({
      name: "sysi",
      private: true,
      dependencies: { [pj.name]: `^${pj.version}` },
      oclif: { schema: 1, plugins: [{ name: pj.name, tag: "latest", type: "user" }] },
    }),
  );

  const configs: Config[] = [
    { name: "none", env: baseEnv(none) },
    { name: "linked", env: baseEnv(linked) },
    { name: "installed", env: baseEnv(installed) },
    { name: "oclif", env: baseEnv(none, { SYSI_NO_FAST_RUN: "1" }) },
  ];
  const argv = ["run", "--hook", "passthrough", "--", "/bin/true"];
  // Warm: runtimes built, plans cached; every configuration must run the same chain.
  const chains = new Map<string, string>();
  for (const c of configs) {
    for (let i = 0; i < 3; i++) {
      const r = sysi(argv, c.env);
      if (r.code !== 0) throw new Error(`${c.name}: sysi run failed: ${r.stderr.trim()}`);
    }
    const v = sysi(["run", "--hook", "count", "--", "/bin/true"], c.env);
    chains.set(c.name, /sysi: chain (\S+);/.exec(v.stderr)?.[1] ?? "?");
  }
  const times = new Map<string, number[]>(configs.map((c) => [c.name, []]));
  for (let i = 0; i < RUNS; i++) {
    for (const c of configs) {
      const t0 = performance.now();
      const r = sysi(argv, c.env);
      const ms = performance.now() - t0;
      if (r.code !== 0) throw new Error(`${c.name}: sysi run failed: ${r.stderr.trim()}`);
      times.get(c.name)?.push(ms);
    }
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
  };
  const rows = configs.map((c) => {
    const xs = times.get(c.name) ?? [];
    return { config: c.name, chain: chains.get(c.name), runs: xs.length, medianMs: median(xs), minMs: Math.min(...xs) };
  });
  const base = rows[0]?.medianMs ?? 0;
  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify({ bun: Bun.version, runs: RUNS, rows }, null, 2)}\n`);
  } else {
    process.stdout.write(`warm \`sysi run --hook passthrough -- /bin/true\`, ${RUNS} interleaved runs each\n`);
    process.stdout.write("config      chain            median ms   min ms   vs none\n");
    for (const r of rows)
      process.stdout.write(
        `${r.config.padEnd(11)} ${String(r.chain).padEnd(16)} ${r.medianMs.toFixed(1).padStart(9)} ${r.minMs.toFixed(1).padStart(8)} ${(r.medianMs - base >= 0 ? "+" : "") + (r.medianMs - base).toFixed(1)}\n`,
      );
  }
} catch (e) {
  process.stderr.write(`plugin-startup: error: ${(e as Error).message}\n`);
  process.exitCode = 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
