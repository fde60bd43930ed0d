/**
 * `<unfinished ...>` and `<... NAME resumed>` (issue 17 item 1): strace -f splits a call's line
 * when another thread's or process's line is printed while the call is in progress. The trace
 * hook does so for calls that may block, when the trace is watched live (here: a pipe) and
 * several threads or processes write to it: the entry part goes out before the call, and a line
 * another writer puts out meanwhile ends it with ` <unfinished ...>`. Oracle: `strace -f` on the
 * same programs: a thread blocked in read on a pipe while the main thread writes lines, a thread
 * making one blocking call after another (each woken by the main thread 30 ms later: which
 * arguments each prints at entry), a parent blocked in wait4 while its child runs, and a lone
 * process blocked in clock_nanosleep (strace keeps its line whole: nothing interleaves). Halves
 * are compared as strings, pids replaced by the thread's role.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { alignedAsStrace } from "./strace-lines.ts";

const CLI = join(import.meta.dir, "../../bin/run.js");
const FIX = join(import.meta.dir, "fixtures/trace-interleave");
const dir = mkdtempSync(join(tmpdir(), "sysi-trace-interleave-"));
const cache = join(dir, "cache");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const host = await probeHost();
const noStrace = Bun.which("strace") === null || host.check("ptrace")?.ok === false ? "needs strace" : null;
const why = noStrace ?? (Bun.which("cc") === null ? "no cc" : null);

beforeAll(() => {
  if (why !== null) return;
  for (const n of ["threads", "forkwait", "blockers"]) {
    const r = Bun.spawnSync(["cc", "-O1", "-pthread", "-Wall", "-o", join(dir, n), join(FIX, `${n}.c`)], {
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  }
});

interface Line {
  pid: number | null;
  text: string;
}

/** strace -f -o FILE lines ("PID  text") or sysi's ("[pid N] text"; none: the first process's). */
function parse(text: string, kind: "strace" | "sysi"): Line[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("sysi: "))
    .map((l) => {
      // the raw line at strace's result column (resumed halves: counted from their own start)
      expect({ line: l, aligned: alignedAsStrace(l) }).toEqual({ line: l, aligned: true });
      const m = kind === "strace" ? /^(\d+)\s+(.*)$/.exec(l) : /^\[pid +(\d+)\] (.*)$/.exec(l);
      // the prefixes differ in width ("PID  ", "[pid N] "): one space before " = " once they are gone
      const t = (m ? (m[2] as string) : l).replace(/\)\s+= /, ") = ");
      return { pid: m ? Number(m[1]) : null, text: t };
    });
}

function strace(argv: string[]): Line[] {
  const out = join(dir, "strace.txt");
  const r = Bun.spawnSync(["strace", "-f", "-o", out, ...argv], { stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(0);
  return parse(readFileSync(out, "utf8"), "strace");
}

/** sysi's trace on a pipe (its stderr): watched live, as strace's output always is. */
function sysi(argv: string[]): Line[] {
  const r = Bun.spawnSync(["bun", CLI, "run", "--hook", "trace", "--", ...argv], {
    env: { ...process.env, SYSI_CACHE_DIR: cache },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0)
    throw new Error(`sysi run ${argv.join(" ")}: exit ${r.exitCode}: ${r.stderr.toString().slice(-500)}`);
  return parse(r.stderr.toString(), "sysi");
}

/** The lines from the first one `start` matches to the first one after it `end` matches. */
function span(ls: Line[], start: RegExp, end: RegExp): Line[] {
  const a = ls.findIndex((l) => start.test(l.text));
  const b = ls.findIndex((l, i) => i > a && end.test(l.text));
  return a < 0 || b < 0 ? [] : ls.slice(a, b + 1);
}

/** The blocking calls of blockers.c's thread, either half. */
const BLOCKING = /^(?:<\.\.\. )?(read|poll|pselect6|epoll_wait|accept|recvfrom|futex|clock_nanosleep)[( ]/;

const pidOf = (ls: Line[], re: RegExp) => ls.find((l) => re.test(l.text))?.pid ?? -1;

describe("interleaved lines", () => {
  test.skipIf(why !== null)(
    "a thread blocked in read while another writes: the read's halves and what comes between are strace -f's",
    () => {
      const bin = join(dir, "threads");
      const roles = (ls: Line[]) => {
        const reader = pidOf(ls, /^read\(3, {2}<unfinished/);
        return span(ls, /^read\(3, {2}<unfinished/, /^<\.\.\. read resumed>/).map(
          (l) => `${l.pid === reader ? "reader" : "main"}: ${l.text}`,
        );
      };
      const want = roles(strace([bin]));
      const got = roles(sysi([bin]));
      // strace: read(3,  <unfinished ...> / the main thread's lines / <... read resumed>"hello\n", 64) = 6
      expect(want[0]).toBe("reader: read(3,  <unfinished ...>");
      expect(want[want.length - 1]).toBe('reader: <... read resumed>"hello\\n", 64) = 6');
      // the main thread's lines between the halves; its write to the pipe races with the reader's
      // wake-up, and its clock_nanosleep with the reader's start (split or not), in both
      const writes = (ls: string[]) => ls.filter((l) => l.startsWith("main: write(1, "));
      expect(writes(got)).toEqual(writes(want));
      expect(writes(want).length).toBe(3);
      expect(got[0]).toBe(want[0]);
      expect(got[got.length - 1]).toBe(want[want.length - 1]);
    },
  );

  test.skipIf(why !== null)(
    "a thread's blocking calls (read, poll, pselect6, epoll_wait, accept, recvfrom, futex, clock_nanosleep): their halves are strace -f's",
    () => {
      const bin = join(dir, "blockers");
      const halves = (ls: Line[]) => {
        const blocker = pidOf(ls, /^poll\(/);
        return (
          ls
            .filter((l) => l.pid === blocker && (/ <unfinished \.\.\.>$/.test(l.text) || l.text.startsWith("<... ")))
            // strace also splits fast calls its ptrace stops happen to interleave (the thread's start)
            .filter((l) => BLOCKING.test(l.text))
            .map((l) =>
              l.text
                .replace(/0x[0-9a-f]+/g, "0xADDR")
                // the decoder prints epoll_wait's events as their address (not a split difference)
                .replace(/^(<\.\.\. epoll_wait resumed>)(?:\[.*\]|0xADDR), /, "$1EVENTS, ")
                // the fd accept returns races with the main thread's opens (wait-in.h)
                .replace(/^(<\.\.\. accept resumed>\) = )\d+$/, "$1FD"),
            )
        );
      };
      const want = halves(strace([bin]));
      const got = halves(sysi([bin]));
      // read, poll, pselect6, epoll_wait, accept, recvfrom, futex, clock_nanosleep: each split
      expect(want.length).toBe(16);
      expect(want).toContain("read(3,  <unfinished ...>");
      expect(want.some((l) => /^accept\(\d+, NULL, NULL <unfinished \.\.\.>$/.test(l))).toBe(true);
      expect(want).toContain("clock_nanosleep(CLOCK_REALTIME, 0, {tv_sec=0, tv_nsec=200000000},  <unfinished ...>");
      expect(got).toEqual(want);
    },
  );

  test.skipIf(why !== null)(
    "a parent blocked in wait4 while its child runs: its halves are strace -f's; a lone sleeper's line stays whole",
    () => {
      const bin = join(dir, "forkwait");
      const halves = (ls: Line[]) => {
        const child = pidOf(ls, /^write\(1, "child\\n", 6\) = 6$/);
        const s = span(ls, /^wait4\(/, /^<\.\.\. wait4 resumed>/).map((l) => ({
          who: l.pid === child ? "child" : "parent",
          text: l.text.replaceAll(String(child), "CHILD"),
        }));
        return { first: s[0], last: s[s.length - 1], child: s.filter((l) => l.who === "child").map((l) => l.text) };
      };
      const want = halves(strace([bin]));
      const got = halves(sysi([bin]));
      expect(want.first).toEqual({ who: "parent", text: "wait4(CHILD,  <unfinished ...>" });
      expect(got.first).toEqual(want.first);
      expect(got.last).toEqual(want.last); // <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 3}], 0, NULL) = CHILD
      expect(got.child).toContain('write(1, "child\\n", 6) = 6');
      expect(want.child).toContain('write(1, "child\\n", 6) = 6');

      // one process, one thread: nothing interleaves, the blocking call's line is whole in both
      const sleeper = ["sleep", "0.05"];
      const whole = (ls: Line[]) =>
        ls.filter((l) => /^clock_nanosleep\(/.test(l.text)).map((l) => l.text.replace(/0x[0-9a-f]+/g, "0xADDR"));
      const w = whole(strace(sleeper));
      expect(w.length).toBe(1);
      expect(w[0]).toMatch(/^clock_nanosleep\(CLOCK_REALTIME, 0, \{tv_sec=0, tv_nsec=50000000\}, .*\) = 0$/);
      expect(whole(sysi(sleeper))).toEqual(w);
    },
  );
});
