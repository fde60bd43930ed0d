/**
 * The preload environment of one strategy chain for the measured program, per the RUNTIME
 * ENVIRONMENT contract in sysi.h: LD_PRELOAD=libsysi.so, SYSI_RUNTIMES, SYSI_PLAN_DIR (plans of
 * the program's modules — executable, libc, ld.so — written by scripts/plan-dir.ts).
 *
 * Anything missing (a strategy not installed, a host check failing, a runtime that does not
 * build, a planner error) makes the chain "skipped" with the reason — never faked.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { HostFacts } from "@sysi/core/strategy";
import { hookLowEnv, type RegistryConfig, resolveChain, sysiCoreApi } from "../registry.ts";
import type { BenchPaths } from "./build.ts";

export type ChainEnv =
  | { ok: true; spec: string; env: Record<string, string> }
  | { ok: false; spec: string; reason: string };

type EnsureRuntime = (nativeDir: string, lib: string, opts: { includeDir: string }) => string | Promise<string>;

let ensureRuntimeFn: Promise<EnsureRuntime | string> | undefined;

/** ensureRuntime from @sysi/core (or why it is not available). */
function loadEnsureRuntime(paths: BenchPaths): Promise<EnsureRuntime | string> {
  ensureRuntimeFn ??= (async () => {
    const file = join(paths.root, "packages", "core", "src", "native-build.ts");
    if (!existsSync(file)) return "runtime builder packages/core/src/native-build.ts not present";
    try {
      const mod = (await import(file)) as { ensureRuntime?: unknown };
      if (typeof mod.ensureRuntime !== "function") return "native-build.ts exports no ensureRuntime";
      return mod.ensureRuntime as EnsureRuntime;
    } catch (e) {
      return `native-build.ts failed to load: ${firstLine(e)}`;
    }
  })();
  return ensureRuntimeFn;
}

/** The line of a tool's stderr that names the error (a stack dump prints source lines first). */
export function errorLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim());
  return (lines.find((l) => /^\S*(error|Error)\b|^\w*Error:/.test(l)) ?? lines.find((l) => l !== "") ?? "").slice(
    0,
    200,
  );
}

export function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n").find((l) => l.trim() !== "") ?? msg;
}

const libsysiCache = new Map<string, Promise<string>>();

/** Path of the built libsysi.so (throws with a one-line reason). */
export async function libsysi(paths: BenchPaths): Promise<string> {
  let p = libsysiCache.get(paths.root);
  if (p === undefined) {
    p = (async () => {
      const ensure = await loadEnsureRuntime(paths);
      if (typeof ensure === "string") throw new Error(ensure);
      if (!existsSync(join(paths.coreNative, "Makefile")))
        throw new Error("libsysi sources not present (packages/core/native/Makefile)");
      return await ensure(paths.coreNative, "libsysi.so", { includeDir: paths.includeDir });
    })();
    libsysiCache.set(paths.root, p);
  }
  return p;
}

export interface ChainContext {
  config: RegistryConfig;
  host: HostFacts;
  paths: BenchPaths;
  /** The program whose modules are planned. */
  program: string;
  /** Where plan directories go (one subdirectory per chain). */
  workDir: string;
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
  const ensure = await loadEnsureRuntime(ctx.paths);
  if (typeof ensure === "string") return skip(ensure);
  const runtimes: string[] = [];
  for (const el of chain.entries) {
    const rt = el.entry.strategy.runtime;
    if (!existsSync(join(rt.nativeDir, "Makefile")))
      return skip(`${el.entry.name} runtime sources not present (${rt.nativeDir})`);
    try {
      const so = await ensure(rt.nativeDir, rt.lib, { includeDir: sysiCoreApi().includeDir });
      runtimes.push(`${so}#${rt.entry}`);
    } catch (e) {
      return skip(`${el.entry.name} runtime does not build: ${firstLine(e)}`);
    }
  }
  if (!existsSync(ctx.paths.planDir)) return skip("planner scripts/plan-dir.ts not present");
  const planDir = join(ctx.workDir, `plans-${spec.replace(/[^a-z0-9-]+/gi, "_")}`);
  const proc = Bun.spawn(["bun", ctx.paths.planDir, "-s", chain.spec, "--closure", "-o", planDir, ctx.program], {
    stdout: "pipe",
    stderr: "pipe",
    env: cleanEnv(),
  });
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) return skip(`planning failed: ${errorLine(err) || `exit ${code}`}`);
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
