/**
 * DESIGN §6 hard cases through the real `sysi run`: each C program in
 * packages/core/native/tests/hard prints deterministic output and exits 0 when the behaviour is
 * right; instrumented, it must print exactly what it prints natively, under every strategy.
 * Where the right behaviour depends on the host (what a NULL read does once zpoline has mapped
 * page 0), the test tells the program what to expect, from the host probe, and says why in
 * the test name.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { splitCoverage } from "../helpers.ts";

const CLI = join(import.meta.dir, "../../bin/run.js");
const NATIVE = join(import.meta.dir, "../../../core/native");
const out = mkdtempSync(join(tmpdir(), "sysi-hard-"));
const cache = mkdtempSync(join(tmpdir(), "sysi-hard-cache-"));
const PROGRAMS = readdirSync(join(NATIVE, "tests/hard"))
  .filter((f) => f.endsWith(".c"))
  .map((f) => f.slice(0, -2))
  .sort();

beforeAll(() => {
  const r = Bun.spawnSync(["make", "-s", "-C", NATIVE, `OUT=${out}`, "tests"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`building the hard cases failed: ${r.stderr.toString()}`);
}, 120_000);
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

const host = await probeHost();
const page0 = host.check("page0")?.ok === true ? null : "page 0 cannot be mapped here";
const CHAINS: { spec: string; skip: string | null }[] = [
  { spec: "ud2", skip: null },
  { spec: "ud2:int3", skip: null },
  { spec: "ud2:hlt", skip: null },
  { spec: "ud2:int4", skip: null },
  { spec: "zpoline", skip: page0 },
  { spec: "zpoline,ud2", skip: page0 },
  { spec: "punning,ud2", skip: null },
];

/**
 * What a NULL read does in the program (own-traps checks it): natively, and under chains
 * without zpoline, page 0 is unmapped and the read faults (SEGV_MAPERR). zpoline maps page 0
 * when it patches a site (it patches these programs' libc under the chains here) with
 * PROT_EXEC only: on a CPU with protection keys the kernel makes that execute-only and
 * the read still faults (SEGV_PKUERR); without them PROT_EXEC implies read, and the read does
 * NOT fault (README, Security).
 */
function page0Reads(spec: string, pkeys: boolean): { mode: string; why: string } {
  if (!spec.split(",").some((s) => s.split(":")[0] === "zpoline"))
    return { mode: "unmapped", why: "page 0 unmapped: NULL reads fault" };
  return pkeys
    ? { mode: "xonly", why: "page 0 execute-only through a pkey: NULL reads fault with SEGV_PKUERR" }
    : { mode: "readable", why: "page 0 readable, no pkeys on this CPU: NULL reads do NOT fault" };
}
const pkeys = host.check("pkeys")?.ok === true;

/** Per program: the environment telling it what to expect here, and why (for the test name). */
const EXPECTATIONS: Record<string, (spec: string) => { env: Record<string, string>; why: string }> = {
  "own-traps": (spec) => {
    const p = page0Reads(spec, pkeys);
    return { env: { OWN_TRAPS_PAGE0: p.mode }, why: p.why };
  },
  // the same for the kernel's reads of a NULL pointer argument (zpoline patches sites of these
  // programs' libc under the chains here, so it maps page 0; page0.test.ts covers chains where
  // it patches nothing)
  nullargs: (spec) => {
    const p = page0Reads(spec, pkeys);
    const why = {
      unmapped: "page 0 unmapped: NULL pointer arguments fail with EFAULT",
      xonly: "page 0 execute-only through a pkey: NULL pointer arguments fail with EFAULT",
      readable: "page 0 readable, no pkeys on this CPU: the kernel's reads of NULL pointer arguments do NOT fail",
    }[p.mode];
    return { env: { NULL_ARGS_PAGE0: p.mode }, why: why ?? p.why };
  },
};
const NATIVE_ENV: Record<string, Record<string, string>> = {
  "own-traps": { OWN_TRAPS_PAGE0: "unmapped" },
  nullargs: { NULL_ARGS_PAGE0: "unmapped" },
};

function run(cmd: string[], env: Record<string, string> = {}) {
  // a hang (e.g. a traced vfork child stopped at a trap) fails the test instead of the whole run
  const r = Bun.spawnSync(cmd, {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
    killSignal: "SIGKILL",
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

expect(PROGRAMS.length).toBeGreaterThan(5);

for (const chain of CHAINS) {
  describe(`hard cases under sysi run -s ${chain.spec}${chain.skip ? ` (skipped: ${chain.skip})` : ""}`, () => {
    for (const name of PROGRAMS) {
      const expectation = EXPECTATIONS[name]?.(chain.spec);
      test.skipIf(chain.skip !== null)(expectation ? `${name} (${expectation.why})` : name, () => {
        const prog = join(out, "tests", name);
        // Some sources are helpers (a shared library for the dlopen case), not programs.
        if (!existsSync(prog)) return;
        const native = run([prog], NATIVE_ENV[name]);
        const inst = run(["bun", CLI, "run", "-s", chain.spec, "--hook", "passthrough", "--", prog], {
          ...expectation?.env,
          SYSI_CACHE_DIR: cache,
        });
        // zpoline alone refuses a few red-zone sites in libc and ld.so, and sysi run says so;
        // every other chain here ends in ud2, which takes every site of these programs.
        const { start, exit, rest } = splitCoverage(inst.stderr);
        expect(rest).toBe(native.stderr);
        expect({ start: start !== null, exit }).toEqual({ start: chain.spec === "zpoline", exit: null });
        expect(inst.stdout).toBe(native.stdout);
        expect(inst.code).toBe(native.code);
      });
    }
  });
}
