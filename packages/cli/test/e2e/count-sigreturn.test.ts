/**
 * rt_sigreturn in the count table: one per handled signal, as natively. A signal that comes
 * while the thread runs sysi's code (raise's tgkill returns through a patched site) is deferred:
 * the runtime queues it again and returns from a frame of its own, and the program's handler runs
 * in the frame of the signal queued again. That first frame's rt_sigreturn is sysi's: it was
 * counted too (6 for the fixture's 3 signals). Oracle: `strace -f -c` of the native run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";

const CLI = join(import.meta.dir, "../../bin/run.js");
const FIX = join(import.meta.dir, "fixtures/trace-decode/sigret.c");
const dir = mkdtempSync(join(tmpdir(), "sysi-count-sigreturn-"));
const cache = join(dir, "cache");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const host = await probeHost();
const noStrace = Bun.which("strace") === null || host.check("ptrace")?.ok === false ? "needs strace" : null;
const why = noStrace ?? (Bun.which("cc") === null ? "no cc" : null);
const page0 = host.check("page0")?.ok === true ? null : "page 0 cannot be mapped here";
const BIN = join(dir, "sigret");

beforeAll(() => {
  if (why !== null) return;
  const r = Bun.spawnSync(["cc", "-O1", "-Wall", "-o", BIN, FIX], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
});

/** rt_sigreturn's calls in `strace -f -c` of the native run. */
function nativeCalls(): number {
  const out = join(dir, "native.txt");
  const r = Bun.spawnSync(["strace", "-f", "-c", "-o", out, BIN], { stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(0);
  const row = readFileSync(out, "utf8")
    .split("\n")
    .find((l) => / rt_sigreturn$/.test(l));
  // % time, seconds, usecs/call, calls, [errors,] syscall
  return Number(row?.trim().split(/\s+/)[3] ?? Number.NaN);
}

describe("rt_sigreturn counted once per handled signal", () => {
  const chains: { spec: string | null; skip: string | null }[] = [
    { spec: null, skip: null },
    { spec: "ud2", skip: null },
    { spec: "punning,ud2", skip: null },
    { spec: "zpoline,ud2", skip: page0 },
  ];
  for (const c of chains) {
    const label = c.spec ?? "the default chain";
    test.skipIf((why ?? c.skip) !== null)(
      `${label}: as strace -f -c of the native run${why ? ` (${why})` : ""}`,
      () => {
        const want = nativeCalls();
        expect(want).toBe(3); // two raise()s and the timer that interrupts the read
        const json = join(dir, "count.json");
        const args = ["bun", CLI, "run", ...(c.spec ? ["-s", c.spec] : []), "--json", "-o", json, "--", BIN];
        const r = Bun.spawnSync(args, {
          env: { ...process.env, SYSI_CACHE_DIR: cache },
          stdout: "pipe",
          stderr: "pipe",
        });
        expect(r.exitCode).toBe(0);
        const counts = JSON.parse(readFileSync(json, "utf8")) as { syscalls: { name: string; calls: number }[] };
        expect(counts.syscalls.find((s) => s.name === "rt_sigreturn")?.calls).toBe(want);
      },
    );
  }
});
