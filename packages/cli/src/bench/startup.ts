/**
 * Startup configurations: wall time of posix_spawn + wait (bench/spawn.c) for native /bin/true,
 * `sysi run -- /bin/true` with a cold and a warm cache, and the launcher path (/bin/true started
 * directly with the environment `sysi env` printed).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { BenchBinaries, BenchPaths } from "./build.ts";
import { cleanEnv } from "./chain-env.ts";
import { runJson, runProcess } from "./runner.ts";

export interface StartupConfig {
  id: string;
  label: string;
  /** Full argv of bench/spawn (runs, warm-up, fresh dir, then the command). */
  argv: string[];
  env: Record<string, string>;
  runs: number;
}

export type StartupSetup =
  | { ok: true; config: StartupConfig }
  | { ok: false; id: string; label: string; reason: string };

const TRUE = "/bin/true";

export interface StartupRuns {
  native: number;
  launcher: number;
  warm: number;
  cold: number;
}

export const DEFAULT_STARTUP_RUNS: StartupRuns = { native: 200, launcher: 200, warm: 10, cold: 2 };
export const TINY_STARTUP_RUNS: StartupRuns = { native: 5, launcher: 5, warm: 1, cold: 1 };

function spawnArgv(bins: BenchBinaries, runs: number, warmup: number, cmd: string[], fresh: string[] = []): string[] {
  return [bins.spawn, "--runs", String(runs), "--warmup", String(warmup), ...fresh, "--", ...cmd];
}

/**
 * Prepare every startup configuration. `sysi run` is run once first with the warm cache (that
 * fills it and shows whether it works at all); `sysi env` gives the launcher's environment.
 */
export async function startupConfigs(
  paths: BenchPaths,
  bins: BenchBinaries,
  workDir: string,
  runs: StartupRuns,
): Promise<StartupSetup[]> {
  const bun = process.execPath;
  const sysi = [bun, paths.cliBin];
  const warmCache = join(workDir, "cache-warm");
  mkdirSync(warmCache, { recursive: true });
  const warmEnv = cleanEnv({ SYSI_CACHE_DIR: warmCache });
  const out: StartupSetup[] = [
    {
      ok: true,
      config: {
        id: "startup/native",
        label: "native /bin/true",
        argv: spawnArgv(bins, runs.native, 5, [TRUE]),
        env: cleanEnv(),
        runs: runs.native,
      },
    },
  ];

  const first = await runProcess([...sysi, "run", "--", TRUE], warmEnv, 600_000);
  const runReason = first.ok ? null : `sysi run -- /bin/true failed: ${first.error}`;
  const sysiRows: [string, string, string[], number][] = [
    [
      "startup/sysi-run-cold",
      "sysi run -- /bin/true, cold cache (empty: runtimes built, modules planned)",
      ["--fresh-dir", "SYSI_CACHE_DIR"],
      runs.cold,
    ],
    [
      "startup/sysi-run-cold-plans",
      "sysi run -- /bin/true, cold plan cache (runtimes already built)",
      ["--fresh-dir", "SYSI_CACHE_DIR", "--fresh-link", `native=${join(warmCache, "native")}`],
      runs.cold,
    ],
    ["startup/sysi-run-warm", "sysi run -- /bin/true, warm cache", [], runs.warm],
  ];
  for (const [id, label, fresh, n] of sysiRows) {
    if (runReason !== null) out.push({ ok: false, id, label, reason: runReason });
    else
      out.push({
        ok: true,
        config: {
          id,
          label,
          argv: spawnArgv(bins, n, fresh.length > 0 ? 0 : 2, [...sysi, "run", "--", TRUE], fresh),
          env: warmEnv,
          runs: n,
        },
      });
  }

  const launcherLabel = "launcher path: /bin/true with the environment of sysi env";
  const printed = await runJson<{ env?: Record<string, string> }>(
    [...sysi, "env", "--format", "json", "--", TRUE],
    warmEnv,
    600_000,
  );
  if (!printed.ok)
    out.push({ ok: false, id: "startup/launcher", label: launcherLabel, reason: `sysi env failed: ${printed.error}` });
  else if (typeof printed.value.env !== "object" || printed.value.env === null)
    out.push({
      ok: false,
      id: "startup/launcher",
      label: launcherLabel,
      reason: "sysi env --format json printed no env",
    });
  else
    out.push({
      ok: true,
      config: {
        id: "startup/launcher",
        label: launcherLabel,
        argv: spawnArgv(bins, runs.launcher, 5, [TRUE]),
        env: cleanEnv({ ...printed.value.env, SYSI_CACHE_DIR: warmCache }),
        runs: runs.launcher,
      },
    });

  out.push({
    ok: true,
    config: {
      id: "startup/bun",
      label: "reference: bun -e 0 (the runtime sysi run starts on)",
      argv: spawnArgv(bins, runs.warm, 2, [bun, "-e", "0"]),
      env: cleanEnv(),
      runs: runs.warm,
    },
  });
  return out;
}
