/**
 * `int $0x80` calls in the count table (issue 17 item 6): under --complete the catch-all (SUD)
 * traps them and makes them, and the count hook counts them by i386 number, shown as strace -c
 * shows them: a second table under "System call usage summary for 32 bit mode:" (text), and
 * `i386` beside `syscalls` in --json. Oracle: `strace -f -c` of the native run (its 32-bit table's
 * calls and errors per name, and its title line). An i386 number without a name (9999 in the
 * fixture) is not in strace's table; sysi counts it in `other`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";

const CLI = join(import.meta.dir, "../../bin/run.js");
const FIX = join(import.meta.dir, "fixtures/trace-int80/i386.c");
const dir = mkdtempSync(join(tmpdir(), "sysi-count-int80-"));
const cache = join(dir, "cache");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const host = await probeHost();
const noStrace = Bun.which("strace") === null || host.check("ptrace")?.ok === false ? "needs strace" : null;
const noCc = Bun.which("cc") === null ? "no cc" : null;
const why = noStrace ?? noCc ?? (host.check("sud")?.ok === true ? null : "no Syscall User Dispatch");
const BIN = join(dir, "i386");

beforeAll(() => {
  if ((noStrace ?? noCc) !== null) return;
  // -no-pie: the buffer the write passes is below 4 GiB, where a 32-bit pointer reaches
  const r = Bun.spawnSync(["cc", "-O1", "-no-pie", "-Wall", "-o", BIN, FIX], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
});

function run(argv: string[]) {
  const r = Bun.spawnSync(argv, { env: { ...process.env, SYSI_CACHE_DIR: cache }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

type Table = Record<string, { calls: number; errors: number }>;

/** The rows after the line `title` (up to its total), from a strace -c or sysi count table. */
function tableAfter(text: string, title: string): { rows: Table; total: string | null } | null {
  const ls = text.split("\n");
  const at = ls.indexOf(title);
  if (at < 0) return null;
  const rows: Table = {};
  let total: string | null = null;
  for (const l of ls.slice(at + 3)) {
    const f = l.trim().split(/\s+/);
    if (l.startsWith("------")) continue;
    const name = f[f.length - 1] as string;
    // "%time seconds usecs calls [errors] name": errors is blank when 0
    const calls = Number(f.length === 6 ? f[3] : f[f.length - 2]);
    const errors = f.length === 6 ? Number(f[4]) : 0;
    if (name === "total") {
      total = `${calls} ${errors}`;
      break;
    }
    rows[name] = { calls, errors };
  }
  return { rows, total };
}

const TITLE = "System call usage summary for 32 bit mode:";

describe("int $0x80 calls in the count table", () => {
  test.skipIf(why !== null)("--complete --hook count: strace -f -c's 32-bit table, in text and --json", () => {
    const native = run([BIN]);
    const s = run(["strace", "-f", "-c", "-o", join(dir, "strace.txt"), BIN]);
    expect(s.code).toBe(0);
    const want = tableAfter(readFileSync(join(dir, "strace.txt"), "utf8"), TITLE);
    expect(want).not.toBeNull();
    expect(Object.keys(want?.rows ?? {}).length).toBe(5); // getpid getppid write access close

    const t = run(["bun", CLI, "run", "--complete", "--hook", "count", "--", BIN]);
    expect(t.code).toBe(0);
    expect(t.stdout).toBe(native.stdout); // the calls were made: the program saw their results
    const got = tableAfter(t.stderr, TITLE);
    expect(got).toEqual(want);

    const out = join(dir, "count.json");
    const j = run(["bun", CLI, "run", "--complete", "--hook", "count", "--json", "-o", out, "--", BIN]);
    expect(j.code).toBe(0);
    const report = JSON.parse(readFileSync(out, "utf8")) as {
      i386?: { syscalls: { name: string; nr: number; calls: number; errors: number }[]; total: { calls: number } };
      syscalls: { name: string }[];
      other: { calls: number; errors: number };
    };
    const rows: Table = {};
    for (const r of report.i386?.syscalls ?? []) rows[r.name] = { calls: r.calls, errors: r.errors };
    expect(rows).toEqual(want?.rows ?? {});
    expect(report.i386?.syscalls.find((r) => r.name === "getpid")?.nr).toBe(20); // i386 numbers
    // the unnamed number: counted, in `other` (strace leaves it out of its tables)
    expect(report.other).toMatchObject({ calls: 1, errors: 1 });

    // without int $0x80 calls there is no 32-bit table, as with strace -c
    const none = run(["bun", CLI, "run", "--complete", "--hook", "count", "--", "/bin/true"]);
    expect(none.code).toBe(0);
    expect(none.stderr).not.toContain(TITLE);
  });
});
