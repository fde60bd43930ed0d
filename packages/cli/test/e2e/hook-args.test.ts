/**
 * A hook's arguments and the program's registers. The kernel leaves every register but rax, rcx
 * and r11 as it was, whatever a hook does with struct sysi_call; entries may skip their own
 * copy of the argument registers only for a hook that keeps c->nr and c->args
 * (SYSI_HOOK_KEEPS_ARGS, and the built-in hooks). The program is the hard case
 * tests/hard/regs.c (its output natively: "regs ok", "red zone ok"); the hooks are
 * tests/hooks/rewrite-hook.c, which rewrites c->args after each getppid, once honestly and once
 * claiming to keep them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";

const CLI = join(import.meta.dir, "../../bin/run.js");
const NATIVE = join(import.meta.dir, "../../../core/native");
const out = mkdtempSync(join(tmpdir(), "sysi-hook-args-"));
const cache = mkdtempSync(join(tmpdir(), "sysi-hook-args-cache-"));
const T = join(out, "tests");

beforeAll(() => {
  const r = Bun.spawnSync(["make", "-s", "-C", NATIVE, `OUT=${out}`, "tests"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`building the test programs failed: ${r.stderr.toString()}`);
}, 120_000);
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

const page0 = (await probeHost()).check("page0")?.ok === true ? null : "page 0 cannot be mapped here";
const NATIVE_OUT = "regs ok\nred zone ok\n";

function run(chain: string, hook: string): { code: number | null; stdout: string; stderr: string } {
  const r = Bun.spawnSync(["bun", CLI, "run", "-s", chain, "--hook", hook, "--", join(T, "regs")], {
    env: { ...process.env, SYSI_CACHE_DIR: cache },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

const CHAINS = [
  { spec: "zpoline,ud2", skip: page0, honoursFlag: true },
  { spec: "punning,ud2", skip: null, honoursFlag: true },
  { spec: "ud2", skip: null, honoursFlag: false },
];

for (const chain of CHAINS) {
  describe(`sysi run -s ${chain.spec}${chain.skip ? ` (skipped: ${chain.skip})` : ""}`, () => {
    test.skipIf(chain.skip !== null)("the native run prints the oracle's output", () => {
      const r = Bun.spawnSync([join(T, "regs")], { stdout: "pipe" });
      expect(r.stdout.toString()).toBe(NATIVE_OUT);
    });
    for (const hook of ["count", "trace"]) {
      test.skipIf(chain.skip !== null)(`built-in ${hook} hook (keeps the arguments): registers as natively`, () => {
        const r = run(chain.spec, hook);
        expect(r.stdout).toBe(NATIVE_OUT);
        expect(r.code).toBe(0);
      });
    }
    test.skipIf(chain.skip !== null)("a hook that rewrites c->args: registers as natively", () => {
      const r = run(chain.spec, join(T, "libtest-rewrite-hook.so"));
      expect(r.stdout).toBe(NATIVE_OUT);
      expect(r.code).toBe(0);
    });
    test.skipIf(chain.skip !== null)(
      chain.honoursFlag
        ? "the same hook claiming SYSI_HOOK_KEEPS_ARGS: its rewrite reaches the registers (the flag selects the lean entry)"
        : "the same hook claiming SYSI_HOOK_KEEPS_ARGS: registers as natively (the trap handler restores them from its context)",
      () => {
        const r = run(chain.spec, join(T, "libtest-rewrite-lies-hook.so"));
        if (chain.honoursFlag) {
          // rdi was 0x7777777777777707; the hook wrote its complement into c->args[0]
          expect(r.stdout).toContain("rdi changed: 0x88888888888888f8");
        } else {
          expect(r.stdout).toBe(NATIVE_OUT);
        }
        expect(r.code).toBe(0);
      },
    );
  });
}
