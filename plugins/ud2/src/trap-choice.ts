/**
 * The ud2 strategy's default trap on this host: the cheapest of ud2, hlt and int $4, as timed by
 * probe/trap-probe.c (each trap's round trip with a bare handler), measured once per host and
 * cached under the sysi cache keyed by CPU model + kernel release + the probe's source.
 *
 * The rule (chooseTrap): int3 is never the default — it is the breakpoint instruction, and a
 * debugger takes its SIGTRAP for its own breakpoint and does not pass it on, so under gdb every
 * instrumented syscall would stop and then not be emulated. ud2 (SIGILL) is the default unless
 * int $4 or hlt (both SIGSEGV) is cheaper by more than MARGIN: a SIGILL is never a real crash, so
 * a debugger can be told to ignore it (`handle SIGILL nostop noprint pass`) without hiding real
 * faults, which ignoring SIGSEGV would. Between the two SIGSEGV traps int $4 goes first (#OF: no
 * #GP path, which hypervisors may intercept), and hlt replaces it only when cheaper by MARGIN.
 * Trap costs differ by host far more than this margin: ud2 7.4 µs against 2.3–2.4 µs for the
 * others on the AMD EPYC VM this was written on, 10.5 µs against 1.15–1.45 µs on an Intel VM.
 *
 * The plugin imports @sysi/core for types only, so the cache location rule is core's
 * (trust.ts cacheLocation) restated here: $SYSI_CACHE_DIR, else $XDG_CACHE_HOME/sysi (absolute
 * only), else ~/.cache/sysi. Whatever the cache file holds, only a known variant is used.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, release } from "node:os";
import { isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Ud2Variant } from "./encode.ts";

/** A SIGSEGV trap replaces ud2 (or hlt replaces int $4) only when cheaper by this fraction. */
export const MARGIN = 0.1;

/** ns per round trip of each trap (probe output). */
export type TrapCosts = Record<Ud2Variant, number>;

export interface TrapChoice {
  variant: Ud2Variant;
  /** What was measured (null: not measured, see reason). */
  costs: TrapCosts | null;
  /** One line: why this variant. */
  reason: string;
  /** Whether the measurement came from the cache (false: measured now, or not at all). */
  cached: boolean;
}

const PROBE_SOURCE = fileURLToPath(new URL("../probe/trap-probe.c", import.meta.url));
/** Bump when the probe's output or the rule changes meaning (part of the cache key). */
const PROBE_VERSION = "1";

const us = (ns: number) => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
const NAMES: Record<Ud2Variant, string> = { ud2: "ud2", int3: "int3", hlt: "hlt", int4: "int $4" };

/** The rule above, as a pure function of the measured costs. */
export function chooseTrap(costs: TrapCosts): { variant: Ud2Variant; reason: string } {
  let pick: Ud2Variant = "ud2";
  for (const c of ["int4", "hlt"] as const) {
    if (Number.isFinite(costs[c]) && costs[c] > 0 && costs[c] * (1 + MARGIN) < costs[pick]) pick = c;
  }
  const all = (["ud2", "hlt", "int4", "int3"] as const).map((v) => `${NAMES[v]} ${us(costs[v])}`).join(", ");
  const why =
    pick === "ud2"
      ? `no SIGSEGV trap is ${MARGIN * 100}% cheaper than ud2`
      : `${NAMES[pick]} is the cheapest trap a debugger lets through`;
  return { variant: pick, reason: `${why} (round trips measured here: ${all}; int3 is left to debuggers)` };
}

function cacheRoot(env: Record<string, string | undefined>): string {
  if (env.SYSI_CACHE_DIR) return env.SYSI_CACHE_DIR;
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) return join(env.XDG_CACHE_HOME, "sysi");
  return join(env.HOME || homedir(), ".cache", "sysi");
}

function cpuModel(): string {
  try {
    return /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** The cache file for this host: CPU model + kernel release + probe source and version. */
export function trapCachePath(env: Record<string, string | undefined> = process.env): string {
  let source = "";
  try {
    source = readFileSync(PROBE_SOURCE, "utf8");
  } catch {
    // no probe source: the key still names the host
  }
  const key = Bun.hash([PROBE_VERSION, cpuModel(), release(), source].join("\n")).toString(16);
  return join(cacheRoot(env), "trap-choice", `${key}.json`);
}

function parseCosts(text: string): TrapCosts | null {
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    const out = {} as TrapCosts;
    for (const v of ["ud2", "int3", "hlt", "int4"] as const) {
      const n = j[v];
      if (typeof n !== "number" || !Number.isFinite(n) || n <= 0) return null;
      out[v] = n;
    }
    return out;
  } catch {
    return null;
  }
}

/** Build and run the probe (about 0.1 s of compiling, a few ms of traps). */
export function measureTraps(env: Record<string, string | undefined> = process.env): TrapCosts | string {
  const cc = env.CC || "cc";
  if (Bun.which(cc) === null) return `no C compiler (${cc}) to build the trap probe`;
  const dir = mkdtempSync(join(cacheRoot(env), ".trap-probe-"));
  try {
    const exe = join(dir, "trap-probe");
    const build = Bun.spawnSync([cc, "-O2", "-o", exe, PROBE_SOURCE], { stdout: "ignore", stderr: "pipe" });
    if (build.exitCode !== 0) return `the trap probe did not build: ${build.stderr.toString().trim().split("\n")[0]}`;
    const run = Bun.spawnSync([exe, "200", "7"], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
    if (run.exitCode !== 0) return `the trap probe failed: ${run.stderr.toString().trim().split("\n")[0] || "killed"}`;
    return parseCosts(run.stdout.toString()) ?? "the trap probe printed no costs";
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** This host's default trap: from the cache, else measured now and cached (temp + rename). */
export function defaultTrap(env: Record<string, string | undefined> = process.env): TrapChoice {
  const path = trapCachePath(env);
  let text: string | null = null;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    // not measured on this host yet
  }
  const hit = text === null ? null : parseCosts(text);
  if (hit !== null) return { ...chooseTrap(hit), costs: hit, cached: true };
  let costs: TrapCosts | string;
  try {
    mkdirSync(join(cacheRoot(env), "trap-choice"), { recursive: true, mode: 0o755 });
    costs = measureTraps(env);
  } catch (e) {
    costs = `the trap probe could not run: ${(e as Error).message}`;
  }
  if (typeof costs === "string") return { variant: "ud2", costs: null, reason: `${costs}: ud2`, cached: false };
  try {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ ...costs, cpu: cpuModel(), kernel: release() })}\n`);
    renameSync(tmp, path);
  } catch {
    // a read-only cache only costs the probe next time
  }
  return { ...chooseTrap(costs), costs, cached: false };
}
