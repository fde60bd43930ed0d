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

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
