/**
 * Writes that fail with EPIPE. The kernel raises SIGPIPE on the return of such a write; with the
 * default action the writer dies before a hook sees the result, so libsysi's master watches
 * SIGPIPE under the count and trace hooks (without owning it: masks and SIG_IGN stay the
 * program's). Oracles: the native run (output, exit status of the killed writer) and strace
 * (the count hook's table, and the writer's `= -1 EPIPE` line that the trace must show too).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { countUnderStraceArgv, straceOracle } from "@sysi/core/testing";

const CLI = join(import.meta.dir, "../../bin/run.js");
const work = mkdtempSync(join(tmpdir(), "sysi-sigpipe-"));
const cache = mkdtempSync(join(tmpdir(), "sysi-sigpipe-cache-"));
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

const page0 = (await probeHost()).check("page0")?.ok === true ? null : "page 0 cannot be mapped here";
const hasStrace = Bun.which("strace") !== null;
const CHAINS = [
  { spec: "ud2", skip: null as string | null },
  { spec: "punning,ud2", skip: null as string | null },
  { spec: "zpoline,ud2", skip: page0 },
];
const env = { ...process.env, SYSI_CACHE_DIR: cache };

function run(cmd: string[], extra: Record<string, string> = {}) {
  const r = Bun.spawnSync(cmd, { env: { ...env, ...extra }, cwd: work, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** The writer dies by SIGPIPE (141); perl's handler counts SIGPIPEs and its prints go on failing. */
const PROGRAMS: [string, string[]][] = [
  ["yes | head, yes killed by SIGPIPE", ["bash", "-c", "set -o pipefail; yes | head -n 1 >/dev/null; echo $?"]],
  [
    "a perl SIGPIPE handler that returns",
    [
      "bash",
      "-c",
      `perl -e '$SIG{PIPE} = sub { $n++ }; $| = 1; for (1..5) { print "x" x 70000 } print STDERR "handled $n\\n"' | head -c 10 >/dev/null`,
    ],
  ],
];

for (const chain of CHAINS) {
  describe(`EPIPE under -s ${chain.spec}${chain.skip ? ` (skipped: ${chain.skip})` : ""}`, () => {
    for (const [name, cmd] of PROGRAMS) {
      test.skipIf(chain.skip !== null)(`${name}: same output and status as natively`, () => {
        const native = run(cmd);
        for (const hook of ["count", "trace"]) {
          const inst = run([
            "bun",
            CLI,
            "run",
            "-s",
            chain.spec,
            "--hook",
            hook,
            "-o",
            join(work, "o.txt"),
            "--",
            ...cmd,
          ]);
          expect({ hook, ...inst }).toEqual({ hook, ...native });
        }
      });

      test.skipIf(chain.skip !== null || !hasStrace)(`${name}: count hook = strace -f (needs strace)`, () => {
        const trace = join(work, "strace.txt");
        const out = join(work, "counts.json");
        const r = Bun.spawnSync(countUnderStraceArgv(CLI, chain.spec, trace, out, cmd), {
          env: { ...env, SYSI_MARKER: "1" },
          cwd: work,
          stdout: "pipe",
          stderr: "pipe",
        });
        expect(r.exitCode).toBe(0);
        const oracle = straceOracle(readFileSync(trace, "utf8"));
        const counts = JSON.parse(readFileSync(out, "utf8")) as {
          syscalls: { name: string; calls: number; errors: number }[];
        };
        const ours = Object.fromEntries(counts.syscalls.map((s) => [s.name, `${s.calls}/${s.errors}`]));
        const theirs = Object.fromEntries(Object.entries(oracle.byName).map(([n, c]) => [n, `${c.calls}/${c.errors}`]));
        expect(oracle.byName.write?.errors ?? 0).toBeGreaterThan(0); // the EPIPE writes are there
        expect(ours).toEqual(theirs);
      });
    }

    test.skipIf(chain.skip !== null || !hasStrace)(
      "the trace shows the write that SIGPIPE kills, as strace does (needs strace)",
      () => {
        const cmd = ["sh", "-c", "yes | head -n 1 >/dev/null"];
        const nat = join(work, "native.strace");
        expect(run(["strace", "-f", "-qq", "-e", "trace=write", "-o", nat, ...cmd]).code).toBe(0);
        // strace splits a write that another process's line interrupts: `<... write resumed>`
        const nativeEpipe =
          readFileSync(nat, "utf8").match(/^\d+ +(?:write\(1, |<\.\.\. write resumed>).*= -1 EPIPE/gm) ?? [];
        expect(nativeEpipe).toHaveLength(1);
        const t = join(work, "trace.txt");
        rmSync(t, { force: true });
        expect(run(["bun", CLI, "run", "-s", chain.spec, "--hook", "trace", "-o", t, "--", ...cmd]).code).toBe(0);
        expect(readFileSync(t, "utf8").match(/write\(1, .*\) += -1 EPIPE \(Broken pipe\)$/gm) ?? []).toHaveLength(1);
      },
    );
  });
}
