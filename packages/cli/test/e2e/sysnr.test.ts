/**
 * Every system-call number under every chain (issue 12): the hard case sysi calls numbers the
 * kernel answers with ENOSYS (>= 4096, negative as an int, x32 on a kernel without x32) and
 * numbers with bits above 31 whose low 32 bits the kernel runs ((1 << 32) | 39 is getpid),
 * inline and through libc's syscall(). The hooks must see the call the kernel ran.
 * Oracles: `strace -f -c` of the native run for the count hook (it counts the high-bit numbers
 * under their 64-bit names and the x32 ones in a table of their own, "for x32 mode", named from
 * strace's x32 table: getpid, rt_sigaction (x32's 512), rt_sigaction#64 (a 64-bit-only number);
 * the count hook has the same second table; numbers strace has no name for land in `other`),
 * and `strace -f -n` of the native run for the trace hook (each call's number as the kernel read
 * it, its name and its result, in order).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { X32_SYSCALL_BIT as X32_BIT } from "@sysi/core/syscalls";

const CLI = join(import.meta.dir, "../../bin/run.js");
const NATIVE = join(import.meta.dir, "../../../core/native");
const out = mkdtempSync(join(tmpdir(), "sysi-sysnr-"));
const cache = mkdtempSync(join(tmpdir(), "sysi-sysnr-cache-"));
const SYSNR = join(out, "tests", "sysnr");

const page0 = (await probeHost()).check("page0")?.ok === true ? null : "page 0 cannot be mapped here";
const noStrace = Bun.which("strace") === null ? "needs strace" : null;

/** The chains of issue 12 (null: the default chain, whatever this host picks). */
const CHAINS: (string | null)[] = ["zpoline", "zpoline,ud2", "ud2", "ud2:int3", "punning,ud2", null];
const skipOf = (chain: string | null) => (chain?.includes("zpoline") ? page0 : null) ?? noStrace;
const label = (chain: string | null) => (chain === null ? "the default chain" : `-s ${chain}`);

beforeAll(() => {
  const r = Bun.spawnSync(["make", "-s", "-C", NATIVE, `OUT=${out}`, "tests"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`building the hard cases failed: ${r.stderr.toString()}`);
}, 120_000);
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

type Table = Record<string, number>;

/** `strace -c` summary: calls per name of the 64-bit table and of the x32 one ("name calls/errors"). */
function straceTables(text: string): { x64: Table; x32: Record<string, string> } {
  const x64: Table = {};
  const x32: Record<string, string> = {};
  let in32 = false;
  for (const line of text.split("\n")) {
    if (/summary for x32 mode/.test(line)) in32 = true;
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9#]+)$/.exec(line);
    if (m === null || m[3] === "total") continue;
    if (in32) x32[m[3] as string] = `${m[1]}/${m[2] ?? 0}`;
    else x64[m[3] as string] = Number(m[1]);
  }
  return { x64, x32 };
}

/** sysi's count table text (-o FILE): the rows of its x32 table, as straceTables reads them. */
function sysiX32Table(text: string): Record<string, string> {
  const rows: Record<string, string> = {};
  const at = text.indexOf("System call usage summary for x32 mode:");
  if (at < 0) return rows;
  for (const line of text.slice(at).split("\n")) {
    const m = /^\s*(?:[\d.]+|-)\s+(?:[\d.]+|-)\s+(?:\d+|-)\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9#]+)$/.exec(line);
    if (m !== null && m[3] !== "total") rows[m[3] as string] = `${m[1]}/${m[2] ?? 0}`;
  }
  return rows;
}

/** sysi run of the hard case; its stdout (the results the program saw) and exit code. */
function sysi(chain: string | null, hook: string[], output: string) {
  const s = chain === null ? [] : ["-s", chain];
  return Bun.spawnSync(["bun", CLI, "run", ...s, ...hook, "-o", output, "--", SYSNR], {
    env: { ...process.env, SYSI_CACHE_DIR: cache },
    stdout: "pipe",
    stderr: "pipe",
  });
}

describe("the count hook names the call the kernel ran, as strace -f -c does", () => {
  for (const chain of CHAINS) {
    const skip = skipOf(chain);
    test.skipIf(skip !== null)(`${label(chain)}${skip ? ` (skipped: ${skip})` : ""}`, () => {
      const summary = join(out, "strace.txt");
      const native = Bun.spawnSync(["strace", "-f", "-qq", "-c", "-o", summary, SYSNR], { stdout: "pipe" });
      const { x64, x32 } = straceTables(readFileSync(summary, "utf8"));
      const json = join(out, "counts.json");
      const inst = sysi(chain, ["--hook", "count", "--json"], json);
      expect(inst.stdout.toString()).toBe(native.stdout.toString());
      expect(inst.exitCode).toBe(0);
      type Row = { name: string; nr: number; calls: number; errors: number };
      const counts = JSON.parse(readFileSync(json, "utf8")) as {
        syscalls: Row[];
        x32?: { syscalls: Row[]; total: { calls: number; errors: number } };
        other: { calls: number; errors: number };
      };
      const ours: Table = {};
      for (const s of counts.syscalls) ours[s.name] = s.calls;
      // the program's getpid/getppid, and the high-bit numbers the kernel runs as them
      expect({ getpid: ours.getpid, getppid: ours.getppid }).toEqual({ getpid: x64.getpid, getppid: x64.getppid });
      // x32 calls (getpid, read, rt_sigaction, rt_sigaction#64, pwritev2 here) never count under
      // a 64-bit name: they make strace's x32 table, the same names, calls and errors
      expect(Object.keys(x32).length).toBeGreaterThan(3);
      for (const name of Object.keys(x32)) expect(ours[name] ?? 0).toBeLessThanOrEqual(x64[name] ?? 0);
      const ours32: Record<string, string> = {};
      for (const s of counts.x32?.syscalls ?? []) ours32[s.name] = `${s.calls}/${s.errors}`;
      expect(ours32).toEqual(x32);
      for (const s of counts.x32?.syscalls ?? []) expect(s.nr & X32_BIT).toBe(X32_BIT);
      // and the text table prints them as strace does, under its title
      const text = join(out, "counts.txt");
      expect(sysi(chain, ["--hook", "count"], text).exitCode).toBe(0);
      expect(sysiX32Table(readFileSync(text, "utf8"))).toEqual(x32);
      // numbers the kernel has no syscall for fail with ENOSYS wherever they are counted
      for (const s of counts.syscalls.filter((s) => s.name.startsWith("syscall_"))) {
        expect(s.name).toBe(`syscall_0x${s.nr.toString(16)}`); // strace's name for it
        expect(s.errors).toBe(s.calls);
      }
      expect(counts.other.errors).toBe(counts.other.calls);
      expect(counts.other.calls).toBeGreaterThan(0);
    });
  }
});

/** A call as the kernel read its number: nr (a signed int, as a string), the name, the result. */
interface Call {
  nr: string;
  name: string;
  result: string;
}

const ERRNO_NAME = new Map<number, string>(Object.entries(constants.errno).map(([n, v]) => [v, n]));

/** The numbers this test follows: getpid, getppid and every one outside the 64-bit table's range. */
const followed = (nr: bigint) => nr < 0n || nr >= 512n || nr === 39n || nr === 110n;

/** The name strace gives a 64-bit number it has no name for: syscall_0x<its 64 bits>. */
const hexName = (nr: bigint) => `syscall_0x${BigInt.asUintN(64, nr).toString(16)}`;

/** `strace -f -n` lines (`PID [NR] name(args) = ret`): the followed calls, in order. */
function straceCalls(text: string): Call[] {
  const calls: Call[] = [];
  for (const line of text.split("\n")) {
    const m = /^\d+\s+\[\s*(\d+|\?\?\?)\]\s+([a-z_0-9#]+)\(.*\)\s+=\s+(-?\d+|0x[0-9a-f]+)(?:\s+(E[A-Z0-9]+))?/.exec(
      line,
    );
    if (m === null) continue;
    const [, num, name, ret, err] = m as unknown as [string, string, string, string, string | undefined];
    // [???] is a number strace cannot show (negative as an int): its name carries the 64 bits
    const raw = num === "???" ? BigInt(name.replace("syscall_", "")) : BigInt(num);
    const nr = BigInt.asIntN(64, raw);
    if (!followed(nr)) continue;
    calls.push({ nr: nr.toString(), name, result: ret === "-1" && err !== undefined ? err : "ok" });
  }
  return calls;
}

/** sysi's trace lines (`name(args) = ret`, ret as strace shows it): name and result of each. */
function sysiLines(text: string): { name: string; result: string }[] {
  const calls: { name: string; result: string }[] = [];
  for (const line of text.split("\n")) {
    const m = /^(?:\[pid +\d+\] )?([a-z_0-9#]+)\(.*\) += (-?\d+|0x[0-9a-f]+|\?)(?: (E[A-Z0-9]+))?/.exec(line);
    if (m === null) continue;
    const [, name, ret, err] = m as unknown as [string, string, string, string | undefined];
    calls.push({ name, result: err ?? (ret === "-1" ? "?" : "ok") });
  }
  return calls;
}

/** sysi's JSON trace lines: the number (as the kernel read it), name and result of each. */
function sysiJson(text: string): Call[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => {
      const j = JSON.parse(l) as { nr: number; name: string | null; ret: number | null };
      const nr = BigInt(j.nr);
      const r = j.ret ?? 0;
      const result = r < 0 && r > -4096 ? (ERRNO_NAME.get(-r) ?? `E${-r}`) : "ok";
      return { nr: nr.toString(), name: j.name ?? hexName(nr), result };
    });
}

describe("the trace hook shows each call as the kernel ran it, as strace -f -n does", () => {
  for (const chain of CHAINS) {
    const skip = skipOf(chain);
    test.skipIf(skip !== null)(`${label(chain)}${skip ? ` (skipped: ${skip})` : ""}`, () => {
      const file = join(out, "strace-n.txt");
      const native = Bun.spawnSync(["strace", "-f", "-qq", "-n", "-o", file, SYSNR], { stdout: "pipe" });
      const want = straceCalls(readFileSync(file, "utf8"));
      const json = join(out, "trace.json");
      const inst = sysi(chain, ["--hook", "trace", "--json"], json);
      expect(inst.stdout.toString()).toBe(native.stdout.toString());
      expect(inst.exitCode).toBe(0);
      const all = sysiJson(readFileSync(json, "utf8"));
      const followedAt = all.flatMap((c, i) => (followed(BigInt(c.nr)) ? [i] : []));
      const got = followedAt.map((i) => all[i] as Call);
      // the same calls in the same order, each under the number the kernel read, with its result,
      // and strace's name: x32 calls from its x32 table (getpid, rt_sigaction#64), numbers it
      // has no name for as syscall_0x<64 bits>
      expect(want.filter((c) => (Number(BigInt.asUintN(32, BigInt(c.nr))) & X32_BIT) !== 0).length).toBeGreaterThan(5);
      expect(got).toEqual(want);
      // the text lines (the same run again: one line per call, in the same order) say the same
      const trace = join(out, "trace.txt");
      expect(sysi(chain, ["--hook", "trace"], trace).exitCode).toBe(0);
      const lines = sysiLines(readFileSync(trace, "utf8"));
      expect(lines.length).toBe(all.length);
      expect(followedAt.map((i) => lines[i])).toEqual(want.map(({ name, result }) => ({ name, result })));
    });
  }
});
