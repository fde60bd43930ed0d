/**
 * Every system-call number through zpoline (issue 12): the hard case sysnr calls numbers the
 * kernel answers with ENOSYS (>= 4096, negative as an int, x32 on a kernel without x32) and
 * numbers with bits above 31 whose low 32 bits the kernel runs ((1 << 32) | 39 is getpid). The
 * count hook must name what the kernel ran. Oracle: `strace -f -c` of the native run, which
 * counts the high-bit numbers under their 64-bit names and the x32 ones in a table of their
 * own (the count hook keeps those out of its named rows: they land in `other`).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host/index";

const CLI = join(import.meta.dir, "../../bin/run.js");
const NATIVE = join(import.meta.dir, "../../../core/native");
const out = mkdtempSync(join(tmpdir(), "sysi-sysnr-"));
const cache = mkdtempSync(join(tmpdir(), "sysi-sysnr-cache-"));
const SYSNR = join(out, "tests", "sysnr");

const page0 = (await probeHost()).check("page0")?.ok === true ? null : "page 0 cannot be mapped here";
const noStrace = Bun.which("strace") === null ? "needs strace" : null;

beforeAll(() => {
  const r = Bun.spawnSync(["make", "-s", "-C", NATIVE, `OUT=${out}`, "tests"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`building the hard cases failed: ${r.stderr.toString()}`);
}, 120_000);
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

type Table = Record<string, number>;

/** `strace -c` summary: calls per name of the 64-bit table and of the x32 one. */
function straceTables(text: string): { x64: Table; x32: Table } {
  const x64: Table = {};
  const x32: Table = {};
  let t = x64;
  for (const line of text.split("\n")) {
    if (/summary for x32 mode/.test(line)) t = x32;
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)$/.exec(line);
    if (m !== null && m[2] !== "total") t[m[2] as string] = Number(m[1]);
  }
  return { x64, x32 };
}

describe("the count hook names the call the kernel ran, as strace -f -c does", () => {
  for (const chain of ["zpoline", "zpoline,ud2"]) {
    const skip = page0 ?? noStrace;
    test.skipIf(skip !== null)(`-s ${chain}${skip ? ` (skipped: ${skip})` : ""}`, () => {
      const summary = join(out, "strace.txt");
      const native = Bun.spawnSync(["strace", "-f", "-qq", "-c", "-o", summary, SYSNR], { stdout: "pipe" });
      const { x64, x32 } = straceTables(readFileSync(summary, "utf8"));
      const json = join(out, "counts.json");
      const inst = Bun.spawnSync(
        ["bun", CLI, "run", "-s", chain, "--hook", "count", "--json", "-o", json, "--", SYSNR],
        { env: { ...process.env, SYSI_CACHE_DIR: cache }, stdout: "pipe", stderr: "pipe" },
      );
      expect(inst.stdout.toString()).toBe(native.stdout.toString());
      expect(inst.exitCode).toBe(0);
      const counts = JSON.parse(readFileSync(json, "utf8")) as {
        syscalls: { name: string; nr: number; calls: number; errors: number }[];
        other: { calls: number; errors: number };
      };
      const ours: Table = {};
      for (const s of counts.syscalls) ours[s.name] = s.calls;
      // the program's getpid/getppid, and the high-bit numbers the kernel runs as them
      expect({ getpid: ours.getpid, getppid: ours.getppid }).toEqual({ getpid: x64.getpid, getppid: x64.getppid });
      // x32 calls (getpid, read, rt_sigaction, pwritev2 here) never count under a 64-bit name
      expect(Object.keys(x32).length).toBeGreaterThan(0);
      for (const name of Object.keys(x32)) expect(ours[name] ?? 0).toBeLessThanOrEqual(x64[name] ?? 0);
      // numbers the kernel has no syscall for fail with ENOSYS wherever they are counted
      for (const s of counts.syscalls.filter((s) => s.name.startsWith("syscall_"))) expect(s.errors).toBe(s.calls);
      expect(counts.other.errors).toBe(counts.other.calls);
      expect(counts.other.calls).toBeGreaterThan(0);
    });
  }
});
