/**
 * The vDSO's own system calls in a dynamically linked program (issue 15, complete coverage):
 * libsysi arms Syscall User Dispatch on the vDSO alone (PR_SYS_DISPATCH_INCLUSIVE_ON, Linux 6.17+;
 * native/vdso.c, shared with the static runtime) in every thread and fork child when asked
 * (`sysi run --vdso`, SYSI_VDSO=1: its cost is on every call, so it is off by default in a dynamic
 * program), so the count hook sees the calls the vDSO makes without --complete.
 *
 * Oracles: the native run's output, and `strace -f` of the whole `sysi run` restricted to the
 * calls after each image's start marker (strace-oracle.ts, SYSI_MARKER=1), where SUD's SIGSYS is a
 * runtime trap frame (its first call is the program's: the one the vDSO made; the rest and its
 * rt_sigreturn are the runtime's). clock_gettime(CLOCK_PROCESS_CPUTIME_ID) has no vDSO fast path:
 * each call is the vDSO's fallback `syscall`, made here by the main thread, a second thread and a
 * fork child.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { countUnderStraceArgv, straceOracle } from "@sysi/core/testing";
import { makeSysiHome, sysi } from "../helpers.ts";

const CLI = join(import.meta.dir, "../../bin/run.js");
const N = 100;
const dir = mkdtempSync(join(tmpdir(), "sysi-vdso-dynamic-"));
const home = makeSysiHome();
const PROG = join(dir, "cputime");
const host = await probeHost();
const page0 = host.check("page0")?.ok === true;
const PYTHON = Bun.which("python3");

/** ud2's traps (strace-oracle.ts's default) and SUD's SIGSYS for a call the vDSO makes. */
const RUNTIME_SIGNAL =
  /^--- (SIG(ILL|TRAP|SEGV) \{si_signo=SIG\w+, si_code=(ILL_ILLOPN|SI_KERNEL)|SIGSYS \{si_signo=SIGSYS, si_code=SYS_USER_DISPATCH)\b/;

type Counts = Record<string, { calls: number; errors: number }>;

/** Why the tests cannot run here (null: they can). */
let why: string | null =
  Bun.which("strace") === null || host.check("ptrace")?.ok === false ? "needs strace (ptrace)" : null;

function cc(args: string[]): boolean {
  return Bun.spawnSync(["cc", ...args], { stdout: "pipe", stderr: "pipe" }).exitCode === 0;
}

beforeAll(() => {
  if (why !== null) return;
  const src = join(import.meta.dir, "fixtures", "vdso", "cputime.c");
  if (!cc(["-O2", `-DN=${N}`, "-pthread", "-o", PROG, src])) {
    why = "needs cc";
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

interface Summary {
  syscalls: { name: string; calls: number; errors: number }[];
  strategies: Record<string, number>;
  escapes: { vdso: { sites: number; caught: boolean } };
}

/** `sysi run -s CHAIN --hook count --json` of cmd under `strace -f`: the hook's counts and the oracle's. */
function countBoth(
  chain: string,
  cmd: string[],
  env: Record<string, string> = {},
): { ours: Counts; theirs: Counts; s: Summary; out: string } {
  const tag = `${chain}-${Object.keys(env).join("")}-${cmd.length}`;
  const trace = join(dir, `strace-${tag}.txt`);
  const json = join(dir, `counts-${tag}.json`);
  const r = Bun.spawnSync(countUnderStraceArgv(CLI, chain, trace, json, cmd), {
    cwd: dir,
    env: { ...(process.env as Record<string, string>), ...home.env, SYSI_MARKER: "1", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(r.stderr.toString()).not.toContain("sysi: error");
  expect(r.exitCode).toBe(0);
  const oracle = straceOracle(readFileSync(trace, "utf8"), { isRuntimeSignal: (l) => RUNTIME_SIGNAL.test(l) });
  const s = JSON.parse(readFileSync(json, "utf8")) as Summary;
  const ours: Counts = {};
  for (const x of s.syscalls) ours[x.name] = { calls: x.calls, errors: x.errors };
  const theirs: Counts = {};
  for (const [name, c] of Object.entries(oracle.byName)) theirs[name] = { calls: c.calls, errors: c.errors };
  return { ours, theirs, s, out: r.stdout.toString() };
}

function nativeOut(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(0);
  return r.stdout.toString();
}

const CHAINS = ["punning,ud2", ...(page0 ? ["zpoline,ud2"] : []), "ud2"];

const ON = { SYSI_VDSO: "1" };

describe(`a dynamic program's vDSO calls are counted with --vdso, without --complete${why ? ` (skipped: ${why})` : ""}`, () => {
  for (const chain of CHAINS)
    test.skipIf(why !== null)(
      `sysi run -s ${chain} --hook count equals strace -f (main thread, a thread, a fork child)`,
      () => {
        const native = nativeOut([PROG]);
        expect(native).toBe(`${N} ${N} 0\n`);
        const { ours, theirs, s, out } = countBoth(chain, [PROG], ON);
        expect(out).toBe(native);
        expect(ours).toEqual(theirs);
        expect(ours.clock_gettime?.calls).toBe(3 * N);
        expect(s.strategies.vdso).toBe(3 * N);
        expect(s.escapes.vdso.caught).toBe(true);
      },
      300_000,
    );

  test.skipIf(why !== null)(
    "off by default (and with SYSI_VDSO=0): the vDSO's calls bypass the hook, the count is short of strace's",
    () => {
      for (const env of [{}, { SYSI_VDSO: "0" }] as Record<string, string>[]) {
        const { ours, theirs, s, out } = countBoth("punning,ud2", [PROG], env);
        expect(out).toBe(`${N} ${N} 0\n`);
        expect(theirs.clock_gettime?.calls).toBe(3 * N);
        expect(ours.clock_gettime?.calls ?? 0).toBe(0);
        expect(s.strategies.vdso).toBeUndefined();
        expect(s.escapes.vdso.caught).toBe(false);
      }
    },
    300_000,
  );

  test.skipIf(why !== null)(
    "the count summary's 'not instrumented: the vDSO' line goes with sysi run --vdso, stays without",
    async () => {
      const on = await sysi(["run", "--vdso", "--hook", "count", "--", PROG], home.env);
      expect(on.code).toBe(0);
      expect(on.stdout).toBe(`${N} ${N} 0\n`);
      expect(on.stderr).not.toContain("not instrumented: the vDSO");
      expect(on.stderr).toMatch(/calls by strategy: .*\bvdso 300\b/);
      const off = await sysi(["run", "--hook", "count", "--", PROG], home.env);
      expect(off.code).toBe(0);
      expect(off.stderr).toContain("sysi: not instrumented: the vDSO's");
      expect(off.stderr).toContain("(--vdso or --complete catches it)");
    },
    300_000,
  );

  test.skipIf(why !== null || PYTHON === null)(
    "python3 time.process_time() x100: counts equal strace -f's",
    () => {
      const cmd = [PYTHON as string, "-c", "import time; [time.process_time() for _ in range(100)]"];
      const { ours, theirs, s } = countBoth("punning,ud2", cmd, ON);
      expect(ours).toEqual(theirs);
      expect(ours.clock_gettime?.calls ?? 0).toBeGreaterThanOrEqual(100);
      expect(s.strategies.vdso).toBe(ours.clock_gettime?.calls as number);
    },
    300_000,
  );
});
