/**
 * The vDSO's own system calls in a statically linked program (issue 15): the kernel maps the vDSO
 * sealed, so no strategy patches its fallback `syscall`s; the static runtime arms Syscall User
 * Dispatch on the vDSO alone (PR_SYS_DISPATCH_INCLUSIVE_ON, Linux 6.17+; static/vdso.c) in every
 * thread and fork child, so the count hook sees those calls without --complete.
 *
 * Oracle: `strace -f -c` of the native program. clock_gettime(CLOCK_PROCESS_CPUTIME_ID) has no vDSO
 * fast path: each call is the vDSO's fallback system call, made here by the main thread, a second
 * thread and a fork child; the static glibc program makes no call whose number depends on timing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { createStatsFile, readStatsFile } from "@sysi/core/runtime";
import { makeSysiHome, sysi } from "../helpers.ts";

const N = 100;
const dir = mkdtempSync(join(tmpdir(), "sysi-vdso-static-"));
const home = makeSysiHome();
const PROG = join(dir, "cputime-static");
const page0 = (await probeHost()).check("page0")?.ok === true;

type Counts = Record<string, { calls: number; errors: number }>;

/** Why the tests cannot run here (null: they can). */
let why: string | null = Bun.which("strace") === null ? "needs strace" : null;

function cc(args: string[]): boolean {
  return Bun.spawnSync(["cc", ...args], { stdout: "pipe", stderr: "pipe" }).exitCode === 0;
}

beforeAll(() => {
  if (why !== null) return;
  const src = join(import.meta.dir, "fixtures", "vdso", "cputime.c");
  if (!cc(["-O2", `-DN=${N}`, "-static", "-pthread", "-o", PROG, src])) {
    why = "needs cc -static (libc.a)";
    return;
  }
  // inclusive Syscall User Dispatch (Linux 6.17+): armed on a page of this probe's own
  const probe = join(dir, "probe");
  writeFileSync(
    `${probe}.c`,
    `#include <sys/prctl.h>
int main(void) { static char page[8192] __attribute__((aligned(4096))); return prctl(59, 2, (unsigned long)page, 4096UL, 0UL) != 0; }
`,
  );
  if (!cc(["-O2", "-o", probe, `${probe}.c`]) || Bun.spawnSync([probe]).exitCode !== 0)
    why = "needs PR_SYS_DISPATCH_INCLUSIVE_ON (Linux 6.17+)";
}, 120_000);
afterAll(() => {
  home.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function nativeCounts(): { counts: Counts; out: string } {
  const log = join(dir, "native.txt");
  const r = Bun.spawnSync(["strace", "-f", "-qq", "-c", "-U", "name,calls,errors", "-o", log, PROG], {
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(r.exitCode).toBe(0);
  const counts: Counts = {};
  for (const line of readFileSync(log, "utf8").split("\n")) {
    const m = /^\s*(\w+)\s+(\d+)\s*(\d*)\s*$/.exec(line);
    if (m && m[1] !== "total") counts[m[1] as string] = { calls: Number(m[2]), errors: Number(m[3] || 0) };
  }
  delete counts.execve; // the initial execve comes before any runtime
  delete counts.futex; // table()'s note
  return { counts, out: r.stdout.toString() };
}

interface Summary {
  syscalls: { name: string; nr: number; calls: number; errors: number }[];
  strategies: Record<string, number>;
  escapes: { vdso: { sites: number; caught: boolean } };
}

async function counted(args: string[], env: Record<string, string> = {}): Promise<{ s: Summary; out: string }> {
  const json = join(dir, `run-${args.join("")}-${Object.keys(env).join("")}.json`);
  const r = await sysi(["run", ...args, "--hook", "count", "--json", "-o", json, "--", PROG], {
    ...home.env,
    ...env,
  });
  expect(r.stderr).not.toContain("sysi: error");
  expect(r.code).toBe(0);
  return { s: JSON.parse(readFileSync(json, "utf8")) as Summary, out: r.stdout };
}

/**
 * strace -c's view of the hook's counts: no execve (before the runtime), and no exit or
 * exit_group (strace -c leaves out calls that never return; the hook counts them). futex is left
 * out of both sides: pthread_join waits in one only when the thread is still running (timing).
 */
function table(rows: readonly { name?: string | null; nr: number; calls: number; errors: number }[]): Counts {
  const c: Counts = {};
  for (const x of rows) {
    const name = x.name ?? `nr${x.nr}`;
    if (!["execve", "exit", "exit_group", "futex"].includes(name)) c[name] = { calls: x.calls, errors: x.errors };
  }
  return c;
}

const CHAINS = ["ud2", "punning,ud2", ...(page0 ? ["zpoline,ud2"] : [])];

describe(`a static program's vDSO calls are counted without --complete${why ? ` (skipped: ${why})` : ""}`, () => {
  for (const chain of CHAINS)
    test.skipIf(why !== null)(
      `sysi run -s ${chain} --hook count equals strace -f -c of the native run (main thread, a thread, a fork child)`,
      async () => {
        const native = nativeCounts();
        expect(native.out).toBe(`${N} ${N} 0\n`);
        expect(native.counts.clock_gettime?.calls).toBe(3 * N);
        const { s, out } = await counted(["-s", chain]);
        expect(out).toBe(native.out);
        expect(table(s.syscalls)).toEqual(native.counts);
        expect(s.strategies.vdso).toBe(3 * N);
        expect(s.escapes.vdso.caught).toBe(true);
      },
      300_000,
    );

  test.skipIf(why !== null)(
    "SYSI_VDSO=0 turns it off: the vDSO's calls bypass the hook again, and the summary says so",
    async () => {
      const { s, out } = await counted(["-s", "ud2"], { SYSI_VDSO: "0" });
      expect(out).toBe(`${N} ${N} 0\n`);
      expect(s.syscalls.find((x) => x.name === "clock_gettime")?.calls ?? 0).toBe(0);
      expect(s.strategies.vdso).toBeUndefined();
      expect(s.escapes.vdso.caught).toBe(false);
    },
    300_000,
  );

  test.skipIf(why !== null)(
    "sysi patch --hook count: the patched file counts them too",
    async () => {
      const native = nativeCounts();
      const out = join(dir, "patched");
      const w = await sysi(["patch", "-s", "punning,ud2", "--hook", "count", PROG, "-o", out], home.env);
      expect(w.code).toBe(0);
      const stats = join(dir, "patched.stats");
      createStatsFile(stats);
      const r = Bun.spawnSync([out], { env: { PATH: process.env.PATH ?? "", SYSI_STATS_FILE: stats }, stdout: "pipe" });
      expect(r.exitCode).toBe(0);
      expect(r.stdout.toString()).toBe(native.out);
      expect(table(readStatsFile(stats).syscalls)).toEqual(native.counts);
    },
    300_000,
  );
});
