/**
 * A hook that answers some calls itself and passes the others to the kernel (sysi.h
 * SYSI_CALL_MADE). The entries leave by `ret` after an answered call and by an indirect jump
 * after one libsysi made (a `ret` right after a syscall mispredicts: the kernel refills the
 * return stack on its way out), choosing by c->flags' SYSI_CALL_MADE. Either way the program
 * must get its result with its registers and stack as the kernel leaves them. The program is
 * fixtures/answer-or-make/mixed.c (getppid, answered, and close of a bad fd, made, alternating
 * at several call depths, inline and through libc; registers checked around the inline site);
 * the hook, mixed-hook.c, answers getppid with 0x51510000 + 110 and checks the flag on the
 * way: clear when it answers, set after sysi_syscall() (a flag out of place changes a result).
 * The oracle is the native run, its getppid lines ("parent") turned into the hook's answer.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";

const CLI = join(import.meta.dir, "../../bin/run.js");
const FIX = join(import.meta.dir, "fixtures/answer-or-make");
const INCLUDE = join(import.meta.dir, "../../../core/native/include");
const out = mkdtempSync(join(tmpdir(), "sysi-answer-or-make-"));
const cache = mkdtempSync(join(tmpdir(), "sysi-answer-or-make-cache-"));
const PROG = join(out, "mixed");
const HOOKS = [
  { name: "a fast-path hook (SYSI_HOOK_* flags: no dispatcher)", so: join(out, "libmixed-fast.so"), def: ["-DFAST"] },
  { name: "a hook without flags (through the dispatcher)", so: join(out, "libmixed.so"), def: [] },
];

function cc(args: string[]): void {
  const r = Bun.spawnSync(["cc", ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`cc ${args.join(" ")} failed: ${r.stderr.toString()}`);
}

let native = "";
beforeAll(() => {
  cc(["-O2", "-Wall", "-Wextra", "-o", PROG, join(FIX, "mixed.c"), join(FIX, "mixed-fn.S")]);
  for (const h of HOOKS)
    cc(
      ["-O2", "-fPIC", "-shared", "-mgeneral-regs-only", "-ffreestanding", "-Wall", "-Wextra", ...h.def].concat([
        "-I",
        INCLUDE,
        "-o",
        h.so,
        join(FIX, "mixed-hook.c"),
      ]),
    );
  native = Bun.spawnSync([PROG], { stdout: "pipe" }).stdout.toString();
}, 120_000);
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

const page0 = (await probeHost()).check("page0")?.ok === true ? null : "page 0 cannot be mapped here";
const CHAINS = [
  { spec: "zpoline", skip: page0 },
  { spec: "punning", skip: null },
  { spec: "ud2", skip: null },
];

test("the native run: getppid names the parent, close(bad fd) = -EBADF, registers kept", () => {
  expect(native).toBe(
    "inline getppid: parent\ninline close(bad fd): -9\nlibc getppid: parent\nlibc close(bad fd): -9\n" +
      "2000 rounds: same results\nregisters: kept\n",
  );
});

for (const chain of CHAINS) {
  describe(`sysi run -s ${chain.spec}${chain.skip ? ` (skipped: ${chain.skip})` : ""}`, () => {
    for (const h of HOOKS) {
      test.skipIf(chain.skip !== null)(`${h.name}: answered and made calls as natively, the flag in place`, () => {
        const r = Bun.spawnSync(["bun", CLI, "run", "-s", chain.spec, "--hook", h.so, "--", PROG], {
          env: { ...process.env, SYSI_CACHE_DIR: cache },
          stdout: "pipe",
          stderr: "pipe",
        });
        expect(r.stdout.toString()).toBe(native.replace(/getppid: parent/g, "getppid: answer"));
        expect(r.exitCode).toBe(0);
      });
    }
  });
}
