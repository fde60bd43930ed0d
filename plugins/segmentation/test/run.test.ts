/**
 * The segmentation strategy end to end, through the real `sysi run`: output and exit status as
 * natively, the count hook's numbers equal to strace -f's (packages/core/src/runtime/
 * strace-oracle.ts), and segmentation patching sites in every run. Needs page 0 (root or
 * vm.mmap_min_addr=0) and strace.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { countUnderStraceArgv, straceOracle } from "@sysi/core/testing";
import { PROGRAMS, programEnv } from "../../../packages/cli/test/e2e/programs.ts";

const CLI = join(import.meta.dir, "../../../packages/cli/bin/run.js");
const tmp = mkdtempSync(join(tmpdir(), "seg-run-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const env = { ...programEnv(tmp), SYSI_CACHE_DIR: join(tmp, "cache") };

const host = await probeHost();
const page0 = host.check("page0")?.ok === true;
const strace = Bun.which("strace") !== null && host.check("ptrace")?.ok !== false;

const oddnr = join(tmp, "oddnr");
Bun.spawnSync(["cc", "-O2", "-o", oddnr, join(import.meta.dir, "fixtures", "oddnr.c")]);

const progs = [
  ...PROGRAMS.filter((p) => p.name === "ls -la /usr/lib" || p.name.startsWith("python3 8 threads")),
  { name: "odd, out-of-range and unknown numbers through syscall()", cmd: [oddnr], needs: "cc" },
];

type Counts = Record<string, { calls: number; errors: number }>;

/**
 * The runtime's traps, as the oracle must read them: the default ones plus the page faults of
 * a far call whose pointer lies beyond page 0 (SEGV_MAPERR; the programs here make no other).
 */
const RUNTIME_SIGNAL = /^--- SIG(ILL|TRAP|SEGV) \{si_signo=SIG\w+, si_code=(ILL_ILLOPN|SI_KERNEL|SEGV_MAPERR)\b/;

describe.skipIf(!page0 || !strace)("sysi run -s segmentation… (needs page 0 and strace)", () => {
  for (const chain of ["segmentation,punning,ud2", "segmentation:any,ud2"]) {
    // build the runtimes into the cache outside strace (slow under it)
    Bun.spawnSync(["bun", CLI, "run", "-s", chain, "--", "true"], { env, stdout: "ignore", stderr: "ignore" });
    for (const p of progs) {
      it(`${p.name}, -s ${chain}: output as natively, counts = strace -f`, () => {
        const work = mkdtempSync(join(tmp, "w-"));
        p.setup?.(work);
        const native = Bun.spawnSync(p.cmd, { cwd: work, env: programEnv(work), stdout: "pipe", stderr: "pipe" });
        const trace = join(work, "..", `${Math.random().toString(36).slice(2)}.strace`);
        const out = `${trace}.json`;
        const r = Bun.spawnSync(countUnderStraceArgv(CLI, chain, trace, out, p.cmd), {
          cwd: work,
          env: { ...env, ...programEnv(work), SYSI_CACHE_DIR: env.SYSI_CACHE_DIR, SYSI_MARKER: "1" },
          stdout: "pipe",
          stderr: "pipe",
        });
        expect(r.stderr.toString()).not.toContain("sysi: error");
        if (r.exitCode !== native.exitCode) console.error(r.stderr.toString());
        expect(r.exitCode).toBe(native.exitCode);
        expect(r.stdout.toString()).toBe(native.stdout.toString());
        const counts = JSON.parse(readFileSync(out, "utf8")) as {
          syscalls: { name: string; calls: number; errors: number }[];
          sites: Record<string, { patched: number; fellThrough: number }>;
          strategies: Record<string, number>;
        };
        // segmentation takes every site it can: patched, none fell through at run time
        expect(counts.sites.segmentation?.patched ?? 0).toBeGreaterThan(0);
        expect(counts.sites.segmentation?.fellThrough).toBe(0);
        expect(counts.strategies.segmentation ?? 0).toBeGreaterThan(0);
        const ours: Counts = {};
        for (const s of counts.syscalls) ours[s.name] = { calls: s.calls, errors: s.errors };
        const oracle = straceOracle(readFileSync(trace, "utf8"), { isRuntimeSignal: (l) => RUNTIME_SIGNAL.test(l) });
        const theirs: Counts = {};
        for (const [name, c] of Object.entries(oracle.byName)) theirs[name] = { calls: c.calls, errors: c.errors };
        expect(oracle.total).toBeGreaterThan(0);
        expect(ours).toEqual(theirs);
      });
    }
  }

  it("refuses a chain with zpoline in one line: both need page 0", () => {
    const r = Bun.spawnSync(["bun", CLI, "run", "-s", "zpoline,segmentation,ud2", "--", "true"], {
      env,
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(r.exitCode).toBe(2);
    const lines = r.stderr.toString().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^sysi: error: strategies "zpoline" and "segmentation" cannot share a chain: both need page0/,
    );
  });
});
