/**
 * End-to-end helper: plan a program's modules (executable, interpreter, ldd closure) with a strategy
 * chain, write the binary plans, and run the program under libsysi with the chain's runtimes.
 * Independent of the CLI so the runtime can be tested on its own.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readElfFile } from "@sysi/core/elf";
import { moduleKey } from "@sysi/core/internal";
import { encodePlan, planModule } from "@sysi/core/plan";
import { scanElf } from "@sysi/core/scan";
import type { Strategy } from "@sysi/core/strategy";
import punningFactory from "../src/index.ts";

const ROOT = join(import.meta.dir, "..", "..", "..");
export const LIBSYSI = join(ROOT, "packages/core/native/build/libsysi.so");
export const PUNNING_SO = join(import.meta.dir, "..", "native/build/libsysi-punning.so");

export function which(cmd: string): string | null {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? realpathSync(r.stdout.trim()) : null;
}

export function buildNative(): boolean {
  const a = spawnSync("make", ["-s", "-C", join(import.meta.dir, "..", "native")], { encoding: "utf8" });
  if (a.status !== 0) return false;
  // always: make is incremental, and a libsysi.so older than sysi.h is refused at init
  spawnSync("make", ["-s", "-C", join(ROOT, "packages/core/native")]);
  return existsSync(LIBSYSI) && existsSync(PUNNING_SO);
}

interface ChainMember {
  strategy: Strategy;
  so: string;
  options?: Record<string, string>;
}

export async function ud2Member(): Promise<ChainMember | null> {
  const so = join(ROOT, "plugins/ud2/native/build/libsysi-ud2.so");
  try {
    const mod = (await import(join(ROOT, "plugins/ud2/src/index.ts"))) as { default: typeof punningFactory };
    const strategy = mod.default({ version: "test", includeDir: "" });
    spawnSync("make", ["-s", "-C", join(ROOT, "plugins/ud2/native")]);
    return existsSync(so) ? { strategy, so } : null;
  } catch {
    return null;
  }
}

export function punningMember(options: Record<string, string> = {}): ChainMember {
  return { strategy: punningFactory({ version: "test", includeDir: "" }), so: PUNNING_SO, options };
}

/** The executable, its interpreter and the ldd closure (real paths). */
export function modulesOf(exe: string): string[] {
  const out = new Set<string>([realpathSync(exe)]);
  const r = spawnSync("ldd", [exe], { encoding: "utf8" });
  for (const line of r.stdout.split("\n")) {
    const m = /=>\s+(\/\S+)|^\s+(\/\S+)/.exec(line);
    const p = m?.[1] ?? m?.[2];
    if (p !== undefined && existsSync(p)) out.add(realpathSync(p));
  }
  return [...out];
}

export async function writePlans(
  modules: string[],
  chain: ChainMember[],
  dir: string,
): Promise<Record<string, unknown>> {
  mkdirSync(dir, { recursive: true });
  const stats: Record<string, unknown> = {};
  for (const path of modules) {
    const elf = readElfFile(path);
    const scan = await scanElf(elf);
    const key = moduleKey(path, elf);
    const plan = planModule(
      elf,
      scan,
      chain.map((c) => ({ strategy: c.strategy, options: c.options ?? {} })),
      { checks: { cc: true, page0: false } },
      { key, path },
    );
    const tmp = join(dir, `.${key}.tmp`);
    writeFileSync(tmp, encodePlan(plan));
    renameSync(tmp, join(dir, `${key}.plan`));
    stats[path] = plan.stats;
  }
  return stats;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  trace: string;
}

export async function runUnder(
  argv: string[],
  chain: ChainMember[],
  opts: { hook?: string; env?: Record<string, string>; input?: string; cwd?: string; preload?: string } = {},
): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), "sysi-punning-"));
  const exe = which(argv[0] as string) ?? (argv[0] as string);
  await writePlans(modulesOf(exe), chain, join(dir, "plans"));
  const traceFile = join(dir, "trace.jsonl");
  const r = spawnSync(exe, argv.slice(1), {
    encoding: "utf8",
    input: opts.input,
    cwd: opts.cwd,
    timeout: 60_000,
    env: {
      ...process.env,
      ...opts.env,
      LD_PRELOAD: opts.preload === undefined ? LIBSYSI : `${LIBSYSI}:${opts.preload}`,
      SYSI_PLAN_DIR: join(dir, "plans"),
      SYSI_RUNTIMES: chain.map((c) => `${c.so}#${c.strategy.runtime.entry}`).join(","),
      SYSI_HOOK: opts.hook ?? "trace",
      SYSI_TRACE_FILE: traceFile,
      SYSI_TRACE_JSON: "1",
    },
  });
  const trace = existsSync(traceFile) ? Bun.file(traceFile).text() : Promise.resolve("");
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, trace: await trace };
}

export function runNative(argv: string[], opts: { input?: string; cwd?: string } = {}): RunResult {
  const exe = which(argv[0] as string) ?? (argv[0] as string);
  const r = spawnSync(exe, argv.slice(1), { encoding: "utf8", input: opts.input, cwd: opts.cwd, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, trace: "" };
}
