/**
 * Every system-call number under every chain (issue 12): the hard case sysi calls numbers the
 * kernel answers with ENOSYS (>= 4096, negative as an int, x32 on a kernel without x32) and
 * numbers with bits above 31 whose low 32 bits the kernel runs ((1 << 32) | 39 is getpid),
 * inline and through libc's syscall(). The hooks must see the call the kernel ran.
 * Oracles: `strace -f -c` of the native run for the count hook (it counts the high-bit numbers
 * under their 64-bit names and the x32 ones in a table of their own; the count hook keeps those
 * out of its named rows: they land in `other`), and `strace -f -n` of the native run for the
 * trace hook (each call's number as the kernel read it, its name and its result, in order).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { SYS as SYSCALL_NUMBERS } from "@sysi/core/syscalls";

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

const NAME_OF = new Map<number, string>(Object.entries(SYSCALL_NUMBERS).map(([n, nr]) => [nr, n]));
const X32_BIT = 0x40000000;
const ERRNO_NAME = new Map<number, string>(Object.entries(constants.errno).map(([n, v]) => [v, n]));

/** The numbers this test follows: getpid, getppid and every one outside the 64-bit table's range. */
const followed = (nr: bigint) => nr < 0n || nr >= 512n || nr === 39n || nr === 110n;

/** The name strace gives a 64-bit number it has no name for: syscall_0x<its 64 bits>. */
const hexName = (nr: bigint) => `syscall_0x${BigInt.asUintN(64, nr).toString(16)}`;

/** `strace -f -n` lines (`PID [NR] name(args) = ret`): the followed calls, in order. */
function straceCalls(text: string): Call[] {
  const calls: Call[] = [];
  for (const line of text.split("\n")) {
    const m = /^\d+\s+\[\s*(\d+|\?\?\?)\]\s+([a-z_0-9]+)\(.*\)\s+=\s+(-?\d+|0x[0-9a-f]+)(?:\s+(E[A-Z0-9]+))?/.exec(
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

/** sysi's trace lines (`[pid N] name(args) = ret`, ret as strace shows it): the followed calls, in order. */
function sysiCalls(text: string): Call[] {
  const calls: Call[] = [];
  for (const line of text.split("\n")) {
    const m = /^(?:\[pid \d+\] )?([a-z_0-9]+)\(.*\) = (-?\d+|0x[0-9a-f]+|\?)(?: (E[A-Z0-9]+))?/.exec(line);
    if (m === null) continue;
    const [, name, ret, err] = m as unknown as [string, string, string, string | undefined];
    const known = name.startsWith("syscall_0x") ? null : SYSCALL_NUMBERS[name as keyof typeof SYSCALL_NUMBERS];
    const nr = known === null ? BigInt.asIntN(64, BigInt(name.replace("syscall_", ""))) : BigInt(known ?? -1);
    if (!followed(nr)) continue;
    const r = Number(ret);
    // strace's form (-1 ENOSYS) or a raw -errno
    const result = err !== undefined ? err : r < 0 && r > -4096 ? (ERRNO_NAME.get(-r) ?? `E${-r}`) : "ok";
    calls.push({ nr: nr.toString(), name, result });
  }
  return calls;
}

describe("the trace hook shows each call as the kernel ran it, as strace -f -n does", () => {
  for (const chain of CHAINS) {
    const skip = skipOf(chain);
    test.skipIf(skip !== null)(`${label(chain)}${skip ? ` (skipped: ${skip})` : ""}`, () => {
      const file = join(out, "strace-n.txt");
      const native = Bun.spawnSync(["strace", "-f", "-qq", "-n", "-o", file, SYSNR], { stdout: "pipe" });
      const want = straceCalls(readFileSync(file, "utf8"));
      const trace = join(out, "trace.txt");
      const inst = sysi(chain, ["--hook", "trace"], trace);
      expect(inst.stdout.toString()).toBe(native.stdout.toString());
      expect(inst.exitCode).toBe(0);
      const got = sysiCalls(readFileSync(trace, "utf8"));
      // the same calls in the same order, each under the number the kernel read, with its result
      expect(got.map(({ nr, result }) => ({ nr, result }))).toEqual(want.map(({ nr, result }) => ({ nr, result })));
      // x32 calls (from the oracle's numbers: strace names them from the x32 table) carry
      // their number, never a 64-bit name; every other one strace's own name
      const x32 = want.filter((c) => (Number(BigInt.asUintN(32, BigInt(c.nr))) & X32_BIT) !== 0 && BigInt(c.nr) > 0n);
      expect(x32.length).toBeGreaterThan(0);
      const expected = want.map((c) => {
        const nr = BigInt(c.nr);
        return nr >= 0n && nr < 512n ? (NAME_OF.get(Number(nr)) ?? hexName(nr)) : hexName(nr);
      });
      expect(got.map((c) => c.name)).toEqual(expected);
      const named64 = want.filter((c) => !x32.includes(c));
      expect(named64.map((c) => c.name)).toEqual(
        got.filter((_, i) => !x32.includes(want[i] as Call)).map((c) => c.name),
      );
    });
  }
});
