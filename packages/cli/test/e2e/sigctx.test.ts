/**
 * Signal-context fidelity (issue 12, item 1) against the native run.
 *
 * sigctx.c: a handler for a signal delivered on the return of an instrumented kill() sees RIP,
 * registers and mask of the program at the site's return point, and its edits to the ucontext
 * (callee-saved registers, RIP, the mask) take effect at rt_sigreturn. The native run is the
 * oracle; the call is made by sysi's code (the hook's sysi_syscall(), the trap handler) or by a
 * strategy's passthrough stub, so without the runtime's deferral (signal.c, sysi.h
 * watch_context) zpoline and punning crash and ud2 shows a runtime RIP.
 *
 * sigstorm.c: profiling-timer signals at random points while the program makes inline and libc
 * system calls: wherever a delivery lands (the kernel, a hook, an entry, a trampoline, a trap
 * handler, resume code), the handler must see a RIP in the program or libc, and its edit of r12
 * at the inline site must take effect.
 *
 * rtstorm.c: 20000 queued SIGRTMIN..+3 to 3 threads making system calls under a 0.5 ms SIGALRM
 * timer: every send is delivered once with its siginfo, and no signal stays blocked (each
 * thread's SigBlk at the end is the program's, empty). A signal that lands in sysi's code is
 * deferred (re-queued, blocked) and must be released: before the fix, under punning and zpoline
 * a handler whose frame returned past sysi_release left SIGRTMIN..+3 blocked for good.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";

const CLI = join(import.meta.dir, "../../bin/run.js");
const SRC = join(import.meta.dir, "../../../core/native/tests/signals");
const dir = mkdtempSync(join(tmpdir(), "sysi-sigctx-"));

beforeAll(() => {
  for (const p of ["sigctx", "sigstorm", "rtstorm"]) {
    const r = Bun.spawnSync(["cc", "-O2", "-pthread", "-o", join(dir, p), join(SRC, `${p}.c`)], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`cc ${p}.c: ${r.stderr.toString()}`);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string[]) {
  const r = Bun.spawnSync(cmd, {
    env: { ...process.env, SYSI_CACHE_DIR: join(dir, "cache") },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 120_000,
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function sysi(chain: string, hook: string, prog: string[]) {
  return run(["bun", CLI, "run", "-s", chain, "--hook", hook, "-o", join(dir, "out.txt"), "--", ...prog]);
}

test("natively the handler sees the site's return point and its edits take effect", () => {
  const n = run([join(dir, "sigctx")]);
  expect(n.code).toBe(0);
  expect(n.stdout).toContain("rip at after_kill 1");
  expect(n.stdout).toContain("r12 0x1234 (handler saw 0x1) rbx 0x5678; skipped yes; SIGUSR2 blocked 1");
  const s = run([join(dir, "sigstorm")]);
  expect(s.stderr).toBe("");
  expect(s.code).toBe(0);
  const q = run([join(dir, "rtstorm")]);
  expect(q.stderr).toBe("");
  expect(q.code).toBe(0);
});

const page0 = (await probeHost()).check("page0")?.ok === true;
const CHAINS = [
  "punning,ud2",
  ...(page0 ? ["zpoline,ud2", "punning,zpoline,ud2"] : []),
  "ud2",
  "ud2:int3",
  "ud2:hlt",
  "ud2:int4",
];

describe.each(CHAINS)("-s %s", (chain) => {
  for (const hook of ["passthrough", "count", "trace"]) {
    test(`--hook ${hook}: a handler for a signal on an instrumented kill()'s return sees and edits the program's context`, () => {
      const native = run([join(dir, "sigctx")]);
      const inst = sysi(chain, hook, [join(dir, "sigctx")]);
      expect(inst.stdout).toBe(native.stdout);
      expect(inst.code).toBe(native.code);
    });
    test(`--hook ${hook}: timer signals anywhere in the instrumented path see the program's context`, () => {
      const inst = sysi(chain, hook, [join(dir, "sigstorm"), "100000"]);
      expect(inst.stdout).toBe(
        "calls ok 1; r12 edits at the inline syscall all took effect 1; handler saw a RIP outside the program and libc 0\n",
      );
      expect(inst.code).toBe(0);
    });
    test(`--hook ${hook}: queued real-time signals all delivered, none left blocked for sysi`, () => {
      const native = run([join(dir, "rtstorm")]);
      const inst = sysi(chain, hook, [join(dir, "rtstorm")]);
      expect(inst.stderr).toBe(""); // a thread's SigBlk or a lost signal is printed here
      expect(inst.stdout).toBe(native.stdout);
      expect(inst.code).toBe(0);
    });
  }
});
