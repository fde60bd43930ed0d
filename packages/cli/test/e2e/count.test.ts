/**
 * The count hook against an outside oracle: `strace -f` of the whole `sysi run`, restricted to
 * the system calls made after each process's runtime started (SYSI_MARKER), without the runtime's
 * own work that it brackets with markers (patching after dlopen) — see
 * packages/core/src/runtime/strace-oracle.ts for the rules. Per syscall name, calls and errors
 * must be equal.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { countUnderStraceArgv, straceOracle } from "@sysi/core/testing";
import { PROGRAMS, programEnv } from "./programs.ts";

const CLI = join(import.meta.dir, "../../bin/run.js");
const cache = mkdtempSync(join(tmpdir(), "sysi-count-cache-"));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

const host = await probeHost();
const page0 = host.check("page0")?.ok === true;
const ptrace = Bun.which("strace") !== null && host.check("ptrace")?.ok !== false;
const CHAINS = [
  { spec: "ud2", skip: null as string | null },
  { spec: "punning,ud2", skip: null as string | null },
  { spec: "zpoline,ud2", skip: page0 ? null : "page 0 cannot be mapped here" },
];

type Counts = Record<string, { calls: number; errors: number }>;

for (const chain of CHAINS) {
  const why = !ptrace ? "strace/ptrace unavailable" : chain.skip;
  describe(`count hook = strace -f, -s ${chain.spec}${why ? ` (skipped: ${why})` : ""}`, () => {
    for (const p of PROGRAMS) {
      const skip = why !== null || Bun.which(p.needs) === null;
      // a program that cannot run instrumented at all (`todo`) has no counts to compare either
      const todo = p.todo ?? p.countTodo;
      const run = todo !== undefined && !skip ? test.todo : test.skipIf(skip);
      run(todo !== undefined ? `${p.name} — todo: ${todo}` : p.name, () => {
        const dir = mkdtempSync(join(tmpdir(), "sysi-count-"));
        const work = join(dir, "w");
        try {
          Bun.spawnSync(["mkdir", work]);
          p.setup?.(work);
          const trace = join(dir, "strace.txt");
          const out = join(dir, "counts.json");
          const r = Bun.spawnSync(countUnderStraceArgv(CLI, chain.spec, trace, out, p.cmd), {
            cwd: work,
            env: { ...programEnv(work), SYSI_CACHE_DIR: cache, SYSI_MARKER: "1" },
            stdout: "pipe",
            stderr: "pipe",
          });
          expect(r.stderr.toString()).not.toContain("sysi: error");
          expect(r.exitCode).toBe(0); // every program exits 0 natively: counts of a broken run prove nothing
          const oracle = straceOracle(readFileSync(trace, "utf8"));
          const counts = JSON.parse(readFileSync(out, "utf8")) as {
            syscalls: { name: string; calls: number; errors: number }[];
          };
          const ours: Counts = {};
          for (const s of counts.syscalls) ours[s.name] = { calls: s.calls, errors: s.errors };
          const theirs: Counts = {};
          for (const [name, c] of Object.entries(oracle.byName)) theirs[name] = { calls: c.calls, errors: c.errors };
          expect(oracle.total).toBeGreaterThan(0);
          if (!Bun.deepEquals(ours, theirs)) {
            // keep the evidence of a mismatch (the temp dir goes away below)
            const kept = join(tmpdir(), `sysi-count-mismatch-${process.pid}-${Date.now()}.strace`);
            copyFileSync(trace, kept);
            console.error(`count mismatch for ${p.name} under -s ${chain.spec}: strace log kept in ${kept}`);
          }
          expect(ours).toEqual(theirs);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  });
}
