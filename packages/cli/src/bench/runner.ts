/** Runs one measured process and parses its JSON line. */

/** What bench/getppid prints. */
export interface CallSample {
  mode: string;
  nr: number;
  n: number;
  expect: number;
  got: number;
  bad: number;
  /** ns/call of each repetition. */
  ns: number[];
  median: number;
  /** Thread CPU ns/call of each repetition, and their median. */
  cpu: number[];
  cpu_median: number;
  /**
   * The smallest wall-clock ns/call over every ~1 ms block of every repetition (the loop's cost
   * in a quiet window: interference only ever slows a deterministic loop down).
   */
  best: number;
  /** How many blocks `best` is the minimum of. */
  blocks: number;
  /** 8 bytes at bench_inline_site after the run (hex). */
  site: string;
  /** 48 bytes at libc's syscall() after the run (hex). */
  libc_head: string;
}

/** What bench/spawn prints. */
export interface SpawnSample {
  runs: number;
  ms: number[];
  median: number;
  min: number;
  max: number;
  fail: number;
  status: number;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

const SIGNALS: Record<number, string> = {
  4: "SIGILL",
  5: "SIGTRAP",
  6: "SIGABRT",
  7: "SIGBUS",
  9: "SIGKILL",
  11: "SIGSEGV",
};

function lastLine(text: string): string {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  return (lines[lines.length - 1] ?? "").trim().slice(0, 200);
}

/** Run argv with exactly `env`; ok when it exits 0 (stdout and stderr collected). */
export async function runProcess(
  argv: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<Outcome<{ out: string; err: string }>> {
  let proc: ReturnType<typeof Bun.spawn<"ignore", "pipe", "pipe">>;
  try {
    proc = Bun.spawn(argv, {
      env,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    });
  } catch (e) {
    return { ok: false, error: `cannot start ${argv[0]}: ${e instanceof Error ? e.message : String(e)}` };
  }
  const [code, out, err] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  const why = lastLine(err);
  if (proc.signalCode !== null && proc.signalCode !== undefined) {
    return { ok: false, error: `killed by ${proc.signalCode}${why ? `: ${why}` : ""}` };
  }
  if (code !== 0) {
    const sig = code > 128 ? SIGNALS[code - 128] : undefined;
    return { ok: false, error: `exit ${code}${sig ? ` (${sig})` : ""}${why ? `: ${why}` : ""}` };
  }
  return { ok: true, value: { out, err } };
}

/**
 * Run argv with exactly `env`; the result is stdout as one JSON document (e.g. pretty-printed),
 * else its last line starting with "{".
 */
export async function runJson<T>(argv: string[], env: Record<string, string>, timeoutMs: number): Promise<Outcome<T>> {
  const r = await runProcess(argv, env, timeoutMs);
  if (!r.ok) return r;
  const text = r.value.out.trim();
  if (text.startsWith("{") && text.endsWith("}")) {
    try {
      return { ok: true, value: JSON.parse(text) as T };
    } catch {
      // several lines: take the last one below
    }
  }
  const line = text
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  const why = lastLine(r.value.err);
  if (line === undefined) return { ok: false, error: `no result line${why ? `: ${why}` : ""}` };
  try {
    return { ok: true, value: JSON.parse(line) as T };
  } catch {
    return { ok: false, error: `unparsable result line: ${line.slice(0, 80)}` };
  }
}

const SAMPLE_NUMBERS = ["nr", "n", "expect", "got", "bad", "median", "cpu_median", "best", "blocks"] as const;

/**
 * Check that a parsed result line of bench/getppid has every field `sysi bench` reads (numbers
 * finite, ns/cpu arrays of numbers, `blocks` ≥ 1, `best` > 0); a getppid built from older
 * sources (no `best`) is an error, not a row of NaN.
 */
export function callSample(v: unknown): Outcome<CallSample> {
  if (typeof v !== "object" || v === null) return { ok: false, error: "result line is not an object" };
  const o = v as Record<string, unknown>;
  for (const k of SAMPLE_NUMBERS)
    if (typeof o[k] !== "number" || !Number.isFinite(o[k])) return { ok: false, error: `result line: no number ${k}` };
  for (const k of ["ns", "cpu"] as const) {
    const xs = o[k];
    if (!Array.isArray(xs) || xs.length === 0 || !xs.every((x) => typeof x === "number" && Number.isFinite(x)))
      return { ok: false, error: `result line: ${k} is not a list of numbers` };
  }
  for (const k of ["mode", "site", "libc_head"] as const)
    if (typeof o[k] !== "string") return { ok: false, error: `result line: no string ${k}` };
  if ((o.blocks as number) < 1) return { ok: false, error: "result line: blocks < 1" };
  if ((o.best as number) <= 0) return { ok: false, error: "result line: best <= 0" };
  return { ok: true, value: o as unknown as CallSample };
}

/** runJson for bench/getppid: the result line, checked by callSample. */
export async function runCall(
  argv: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<Outcome<CallSample>> {
  const r = await runJson<unknown>(argv, env, timeoutMs);
  return r.ok ? callSample(r.value) : r;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
