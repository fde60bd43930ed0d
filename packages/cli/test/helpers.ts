/** Shared helpers for CLI tests: run the real `sysi` in isolated data/cache/config dirs. */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";

export const CLI_ROOT = join(import.meta.dir, "..");
export const RUN_JS = join(CLI_ROOT, "bin", "run.js");
export const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";
export const TRUE_BIN = "/usr/bin/true";

export interface SysiResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A temp dir with data/, cache/ and config/ subdirs for SYSI_*_DIR; remove with cleanup(). */
export function makeSysiHome(): { dir: string; env: Record<string, string>; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "sysi-cli-test-"));
  const env: Record<string, string> = {};
  for (const k of ["data", "cache", "config"]) {
    mkdirSync(join(dir, k));
    env[`SYSI_${k.toUpperCase()}_DIR`] = join(dir, k);
  }
  return { dir, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Run `bun bin/run.js …args` with stdin closed; a signal-killed child maps to 128+n. */
export async function sysi(args: string[], env: Record<string, string>, cwd?: string): Promise<SysiResult> {
  const base: Record<string, string> = { ...(process.env as Record<string, string>) };
  delete base.DEBUG;
  const childEnv = { ...base, ...env };
  const proc = Bun.spawn([process.execPath, RUN_JS, ...args], {
    cwd: cwd ?? CLI_ROOT,
    env: childEnv,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  const code = proc.exitCode ?? 128 + signalNumber(proc.signalCode);
  return { code, stdout, stderr };
}

function signalNumber(name: string | number | null): number {
  if (typeof name === "number") return name;
  return name ? ((constants.signals as Record<string, number>)[name] ?? 0) : 0;
}

/** Lines of `text` without the trailing empty one. */
export function lines(text: string): string[] {
  const l = text.split("\n");
  if (l.at(-1) === "") l.pop();
  return l;
}

/** True when stderr holds something that looks like a JS stack frame. */
export function hasStack(text: string): boolean {
  return /^\s+at\s/m.test(text) || /\(\S+:\d+:\d+\)/.test(text);
}

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Run `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** `sysi run`'s start-of-run line about sites its chain's plans leave unpatched. */
export const START_GAP =
  /^sysi: chain \S+ leaves \d+ system-call sites? unpatched, in .+: system calls made there bypass the hook .*$/;
/** `sysi run`'s end-of-run line about sites left unpatched during the run. */
export const EXIT_GAP = /^sysi: left unpatched during the run: .+: system calls made there bypassed the hook$/;

/** `sysi run`'s end-of-run line about programs that ran uninstrumented (run/escapes.ts). */
export const ESCAPED = /^sysi: not instrumented during the run: .+: their system calls were not seen$/;

/**
 * Split `sysi run`'s stderr into its coverage lines (the first line, when it is the start
 * line; the last, when it is the exit line, and after it the escaped-programs line) and the
 * rest, which is the program's own.
 */
export function splitCoverage(stderr: string): {
  start: string | null;
  exit: string | null;
  escaped: string | null;
  rest: string;
} {
  let rest = stderr;
  let start: string | null = null;
  let exit: string | null = null;
  let escaped: string | null = null;
  const first = rest.slice(0, rest.indexOf("\n") + 1);
  if (START_GAP.test(first.trimEnd())) {
    start = first.trimEnd();
    rest = rest.slice(first.length);
  }
  const lastLine = (): string => {
    const body = rest.endsWith("\n") ? rest.slice(0, -1) : rest;
    return body.slice(body.lastIndexOf("\n") + 1);
  };
  let last = lastLine();
  if (ESCAPED.test(last)) {
    escaped = last;
    rest = rest.slice(0, rest.length - last.length - 1);
    last = lastLine();
  }
  if (EXIT_GAP.test(last)) {
    exit = last;
    rest = rest.slice(0, rest.length - last.length - 1);
  }
  return { start, exit, escaped, rest };
}
