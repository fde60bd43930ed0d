/**
 * `int $0x80` calls of a 64-bit program (issue 17 item 6): the i386 ABI, which no strategy
 * patches. Under --complete the catch-all (SUD) traps them and makes them; the trace hook prints
 * their lines named from the i386 table, as strace does, with strace's notes when a thread's
 * calls change ABI ("[ Process PID=N runs in 32 bit mode. ]", only when the trace goes to
 * stderr: strace prints none with -o). Without --complete they are reported as not instrumented.
 * Oracles: `strace -f` of the native run (lines, notes, -e trace=NAME), and strace's own names of
 * every i386 number, read with `strace -e inject=all@32:error=ENOSYS` (no call is made).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { alignedAsStrace } from "./strace-lines.ts";

const CLI = join(import.meta.dir, "../../bin/run.js");
const FIX = join(import.meta.dir, "fixtures/trace-int80");
const NAMES_H = join(import.meta.dir, "../../../core/native/syscall-names.h");
const dir = mkdtempSync(join(tmpdir(), "sysi-trace-int80-"));
const cache = join(dir, "cache");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const host = await probeHost();
const noStrace = Bun.which("strace") === null || host.check("ptrace")?.ok === false ? "needs strace" : null;
const noCc = Bun.which("cc") === null ? "no cc" : null;
const why = noStrace ?? noCc ?? (host.check("sud")?.ok === true ? null : "no Syscall User Dispatch");
const I386 = join(dir, "i386");
const NAMES = join(dir, "names");

beforeAll(() => {
  if ((noStrace ?? noCc) !== null) return;
  for (const n of ["i386", "names"]) {
    // -no-pie: the buffers the calls pass are below 4 GiB, where a 32-bit pointer reaches
    const r = Bun.spawnSync(["cc", "-O1", "-no-pie", "-Wall", "-o", join(dir, n), join(FIX, `${n}.c`)], {
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  }
});

function run(argv: string[]) {
  const r = Bun.spawnSync(argv, { env: { ...process.env, SYSI_CACHE_DIR: cache }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/**
 * Trace lines without sysi's own notices, and with pids as P; each first checked at strace's
 * result column, which is then one space (P is not the pid's width).
 */
function lines(text: string, pid: string): string[] {
  return text
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("sysi: "))
    .map((l) => {
      expect({ line: l, aligned: alignedAsStrace(l) }).toEqual({ line: l, aligned: true });
      return l
        .replace(/\)\s+= /, ") = ")
        .replaceAll(pid, "P")
        .replace(/^getppid\(\) = \d+$/, "getppid() = PP"); // the parent is strace or sysi
    });
}

/** From the first 32-bit note to the 64-bit note after it (both included). */
function i386Part(ls: string[]): string[] {
  const a = ls.findIndex((l) => /^\[ Process PID=P runs in 32 bit mode\. \]$/.test(l));
  const b = ls.findIndex((l, i) => i > a && /^\[ Process PID=P runs in 64 bit mode\. \]$/.test(l));
  return a < 0 || b < 0 ? [] : ls.slice(a, b + 1);
}

const pidOf = (text: string) => /runs in 32 bit mode/.test(text) && (/PID=(\d+)/.exec(text)?.[1] ?? "none");

describe("int $0x80 calls", () => {
  test.skipIf(why !== null)(
    "--complete --hook trace: their lines and mode notes are strace -f's, named from the i386 table",
    () => {
      const native = run([I386]);
      const s = run(["strace", "-f", I386]);
      const t = run(["bun", CLI, "run", "--complete", "--hook", "trace", "--", I386]);
      expect(t.code).toBe(0);
      expect(t.stdout).toBe(native.stdout); // the calls were made: the program saw their results
      const want = i386Part(lines(s.stderr, String(pidOf(s.stderr))));
      const got = i386Part(lines(t.stderr, String(pidOf(t.stderr))));
      expect(want.length).toBe(8); // the two notes and six calls
      expect(got).toEqual(want);
      expect(got).toContain('write(1, "from int $0x80\\n", 15) = 15');
      expect(got).toContain('access("/nonexistent/sysi-int80", F_OK) = -1 ENOENT (No such file or directory)');
    },
  );

  test.skipIf(why !== null)("-e trace=getpid: the same lines as strace -f -e trace=getpid", () => {
    const s = run(["strace", "-f", "-e", "trace=getpid", I386]);
    const t = run(["bun", CLI, "run", "--complete", "--hook", "trace", "-e", "trace=getpid", "--", I386]);
    expect(t.code).toBe(0);
    const want = lines(s.stderr, String(pidOf(s.stderr)));
    expect(want.filter((l) => l.startsWith("getpid()")).length).toBe(2); // i386's and the 64-bit one
    expect(lines(t.stderr, String(pidOf(t.stderr)))).toEqual(want);
  });

  test.skipIf(why !== null)("-o FILE: the lines without notes, as strace -o", () => {
    const out = join(dir, "trace.out");
    const sOut = join(dir, "strace.out");
    const t = run(["bun", CLI, "run", "--complete", "--hook", "trace", "-o", out, "--", I386]);
    expect(t.code).toBe(0);
    run(["strace", "-f", "-o", sOut, I386]);
    const strip = (l: string) => l.replace(/^\d+ +/, "").replace(/\)\s+= /, ") = ");
    const calls = (f: string) =>
      readFileSync(f, "utf8")
        .split("\n")
        .map(strip)
        .filter((l) => /^(write\(1, "from|access\("\/nonexistent|close\(12345|syscall_0x270f)/.test(l));
    expect(readFileSync(sOut, "utf8")).not.toContain("bit mode");
    expect(readFileSync(out, "utf8")).not.toContain("bit mode");
    expect(calls(out)).toEqual(calls(sOut));
    expect(calls(out).length).toBe(4);
  });

  test.skipIf((noStrace ?? noCc) !== null)(
    "without --complete: no line for them, and the run says they are not instrumented",
    () => {
      const out = join(dir, "plain.out");
      const t = run(["bun", CLI, "run", "--hook", "trace", "-o", out, "--", I386]);
      expect(t.code).toBe(0);
      const text = readFileSync(out, "utf8");
      expect(text).not.toContain("access(");
      expect(text).not.toContain("syscall_0x270f");
      expect(t.stderr).toMatch(/\d+ int \$0x80\)/);
    },
  );

  test.skipIf((noStrace ?? noCc) !== null)("the i386 table names every number 0..469 as strace does", () => {
    const s = run(["strace", "-e", "trace=all@32", "-e", "inject=all@32:error=ENOSYS", NAMES]);
    // one line per number, in order, between the notes (numbers without a name are not injected:
    // the kernel answers ENOSYS)
    const all = s.stderr.split("\n");
    const from = all.findIndex((l) => l.includes("runs in 32 bit mode"));
    const straceNames = all
      .slice(from + 1)
      .filter((l) => /^[a-z_0-9]+\(/.test(l))
      .map((l) => l.slice(0, l.indexOf("(")));
    expect(straceNames.length).toBe(470);
    const table = readFileSync(NAMES_H, "utf8");
    const body = table.slice(table.indexOf("sysi_i386_names[SYSI_NI386]"));
    const ours = new Map([...body.matchAll(/\[(\d+)\] = "([a-z0-9_]+)"/g)].map((m) => [Number(m[1]), m[2] as string]));
    const mine = straceNames.map((_, nr) => ours.get(nr) ?? `syscall_0x${nr.toString(16)}`);
    expect(mine).toEqual(straceNames);
  });
});
