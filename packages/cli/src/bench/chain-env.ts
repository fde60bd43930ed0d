/**
 * The preload environment of one strategy chain for the measured program, per the RUNTIME
 * ENVIRONMENT contract in sysi.h: LD_PRELOAD=libsysi.so, SYSI_RUNTIMES, SYSI_PLAN_DIR (plans of
 * the program's modules — executable, libc, ld.so — from the plan cache, as `sysi run` makes
 * them: run/planning.ts planModules with the chain the registry resolves).
 *
 * Anything missing (a strategy not installed, a host check failing, a runtime that does not
 * build, a planner error) makes the chain "skipped" with the reason — never faked.
 */
import { ensureRuntime } from "@sysi/core/runtime";
import type { HostFacts } from "@sysi/core/strategy";
import { chainEntries, hookLowEnv, type RegistryConfig, resolveChain, sysiCoreApi } from "../registry.ts";
import { planModules } from "../run/planning.ts";
import type { BenchPaths } from "./build.ts";

export type ChainEnv =
  | { ok: true; spec: string; env: Record<string, string> }
  | { ok: false; spec: string; reason: string };

export function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n").find((l) => l.trim() !== "") ?? msg;
}

const libsysiCache = new Map<string, Promise<string>>();

/** Path of the built libsysi.so (throws with a one-line reason). */
export async function libsysi(paths: BenchPaths): Promise<string> {
  let p = libsysiCache.get(paths.coreNative);
  if (p === undefined) {
    p = ensureRuntime(paths.coreNative, "libsysi.so", { includeDir: paths.includeDir });
    libsysiCache.set(paths.coreNative, p);
  }
  return p;
}

export interface ChainContext {
  config: RegistryConfig;
  host: HostFacts;
  paths: BenchPaths;
  /** The program whose modules are planned. */
  program: string;
}

/** Plan the program's modules for `spec` and build the runtimes: the chain's environment. */
export async function chainEnv(spec: string, ctx: ChainContext): Promise<ChainEnv> {
  const skip = (reason: string): ChainEnv => ({ ok: false, spec, reason });
  let chain: Awaited<ReturnType<typeof resolveChain>>;
  try {
    chain = await resolveChain(ctx.config, spec);
  } catch (e) {
    return skip(firstLine(e));
  }
  for (const el of chain.entries) {
    const missing = el.entry.strategy.requires.filter((id) => ctx.host.checks[id] !== true);
    if (missing.length > 0) return skip(`host check failed: ${missing.join(", ")} (see sysi doctor)`);
  }
  let preload: string;
  try {
    preload = await libsysi(ctx.paths);
  } catch (e) {
    return skip(`libsysi unavailable: ${firstLine(e)}`);
  }
  const runtimes: string[] = [];
  for (const el of chain.entries) {
    const rt = el.entry.strategy.runtime;
    try {
      const so = await ensureRuntime(rt.nativeDir, rt.lib, { includeDir: sysiCoreApi().includeDir });
      runtimes.push(`${so}#${rt.entry}`);
    } catch (e) {
      return skip(`${el.entry.name} runtime does not build: ${firstLine(e)}`);
    }
  }
  let planDir: string;
  try {
    planDir = (await planModules(ctx.program, chainEntries(chain), ctx.host)).planDir;
  } catch (e) {
    return skip(`planning failed: ${firstLine(e)}`);
  }
  return {
    ok: true,
    spec: chain.spec,
    env: {
      LD_PRELOAD: preload,
      SYSI_PLAN_DIR: planDir,
      SYSI_RUNTIMES: runtimes.join(","),
      ...(hookLowEnv(chain.entries, {}) === "1" ? { SYSI_HOOK_LOW: "1" } : {}),
    },
  };
}

/** The runtime-environment variables of sysi.h (plus the bench hook's): never inherited. */
const RUNTIME_VARS = new Set([
  "LD_PRELOAD",
  "SYSI_PLAN_DIR",
  "SYSI_PLAN_SOCK",
  "SYSI_RUNTIMES",
  "SYSI_HOOK",
  "SYSI_HOOK_LOW",
  "SYSI_FILTER",
  "SYSI_STATS_FILE",
  "SYSI_TRACE_FILE",
  "SYSI_TRACE_JSON",
  "SYSI_MARKER",
  "SYSI_DEBUG",
  "SYSI_UD2_SIGRETURN",
  "SYSI_BENCH_ANSWER",
]);

/** This process's environment without the runtime variables (each config adds its own). */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || RUNTIME_VARS.has(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}
