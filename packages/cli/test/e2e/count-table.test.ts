/**
 * The count table against `strace -c` (issue 17 item 3). Two oracles:
 *   - layout: `strace -f -c -w` of the same command, natively: the header and rules are the
 *     same bytes, and every row has the same column boundaries (`%6.2f %11.6f %11lu %9u %9.u %s`);
 *   - numbers: `strace -f` of the instrumented run (straceOracle: the calls made after the
 *     runtime started): per syscall, the table's calls and errors are strace's; with -w the time
 *     columns are consistent (rows sorted by seconds, usecs/call = seconds / calls truncated,
 *     percentages of the total), and without -w they say they were not measured ("-").
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { straceOracle } from "@sysi/core/testing";

const CLI = join(import.meta.dir, "../../bin/run.js");
const cache = mkdtempSync(join(tmpdir(), "sysi-count-table-cache-"));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

const host = await probeHost();
const ptrace = Bun.which("strace") !== null && host.check("ptrace")?.ok !== false;
const chain = host.check("page0")?.ok === true ? "zpoline,ud2" : "punning,ud2";

const PROGRAMS: { name: string; cmd: string[] }[] = [
  { name: "ls -la /usr/lib", cmd: ["ls", "-la", "/usr/lib"] },
  { name: "sh pipeline with a failing open", cmd: ["sh", "-c", "cat /etc/passwd /nonexistent | sort | wc -l; true"] },
  {
    name: "python3 threads",
    cmd: [
      "python3",
      "-c",
      "import threading;t=[threading.Thread(target=lambda: open('/etc/hostname').read()) for _ in range(4)];[x.start() for x in t];[x.join() for x in t]",
    ],
  },
];

/** Column boundaries of a table row: the end offsets of the five numeric fields. */
const ROW = /^(.{6}) (.{11}) (.{11}) (.{9}) (.{9}) (\S+)$/;

interface Row {
  pct: string;
  seconds: string;
  usecs: string;
  calls: number;
  errors: number;
  name: string;
}

function parseTable(text: string): { head: string[]; rows: Row[]; total: Row } {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.startsWith("% time"));
  expect(start).toBeGreaterThanOrEqual(0);
  const head = [lines[start] as string, lines[start + 1] as string];
  const rows: Row[] = [];
  let i = start + 2;
  for (; !(lines[i] as string).startsWith("------"); i++) {
    const m = ROW.exec(lines[i] as string);
    expect(m, `row ${JSON.stringify(lines[i])}`).not.toBeNull();
    if (m === null) break;
    rows.push({
      pct: (m[1] as string).trim(),
      seconds: (m[2] as string).trim(),
      usecs: (m[3] as string).trim(),
      calls: Number(m[4]),
      errors: Number((m[5] as string).trim() || "0"),
      name: m[6] as string,
    });
  }
  const t = ROW.exec(lines[i + 1] as string);
  expect(t).not.toBeNull();
  const total = {
    pct: (t?.[1] ?? "").trim(),
    seconds: (t?.[2] ?? "").trim(),
    usecs: (t?.[3] ?? "").trim(),
    calls: Number(t?.[4]),
    errors: Number((t?.[5] ?? "").trim() || "0"),
    name: t?.[6] ?? "",
  };
  return { head, rows, total };
}

function run(argv: string[], cwd: string) {
  const r = Bun.spawnSync(argv, {
    cwd,
    env: { ...process.env, SYSI_CACHE_DIR: cache, SYSI_MARKER: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(r.stderr.toString()).not.toContain("sysi: error");
  expect(r.exitCode).toBe(0);
  return r;
}

describe(`count table = strace -c, -s ${chain}${ptrace ? "" : " (skipped: strace/ptrace unavailable)"}`, () => {
  for (const p of PROGRAMS) {
    for (const timed of [true, false]) {
      test.skipIf(!ptrace || Bun.which(p.cmd[0] as string) === null)(`${p.name}${timed ? ", -w" : ""}`, () => {
        const dir = mkdtempSync(join(tmpdir(), "sysi-count-table-"));
        try {
          const native = join(dir, "native.txt");
          run(["strace", "-f", "-c", "-w", "-o", native, ...p.cmd], dir);
          const theirs = parseTable(readFileSync(native, "utf8"));
          const trace = join(dir, "strace.txt");
          const table = join(dir, "table.txt");
          const flags = timed ? ["-w"] : [];
          run(
            ["strace", "-f", "-qq", "-o", trace, "bun", CLI, "run", "-s", chain, ...flags, "-o", table, "--", ...p.cmd],
            dir,
          );
          const ours = parseTable(readFileSync(table, "utf8"));
          // the same header, and the same rule (its last group: the longest name + 1 dashes, 16 at least)
          const rule = (t: ReturnType<typeof parseTable>) => {
            const groups = (t.head[1] as string).split(" ");
            const longest = Math.max(16, ...t.rows.map((r) => r.name.length + 1));
            return { first: groups.slice(0, 5), last: (groups[5] as string).length === longest };
          };
          expect(ours.head[0]).toBe(theirs.head[0] as string);
          expect(rule(ours)).toEqual(rule(theirs));
          expect(rule(ours).last).toBe(true);
          // the calls and errors strace saw after the runtime started
          const oracle = straceOracle(readFileSync(trace, "utf8"));
          const got = Object.fromEntries(ours.rows.map((r) => [r.name, { calls: r.calls, errors: r.errors }]));
          const want = Object.fromEntries(
            Object.entries(oracle.byName).map(([n, c]) => [n, { calls: c.calls, errors: c.errors }]),
          );
          expect(got).toEqual(want);
          expect(ours.total.name).toBe("total");
          expect(ours.total.calls).toBe(oracle.total);
          expect(ours.total.errors).toBe(ours.rows.reduce((n, r) => n + r.errors, 0));
          if (timed) {
            const secs = ours.rows.map((r) => Number(r.seconds));
            expect(secs).toEqual([...secs].sort((a, b) => b - a)); // strace's order: time, descending
            for (const r of ours.rows) {
              expect(r.seconds).toMatch(/^\d+\.\d{6}$/);
              expect(r.pct).toMatch(/^\d+\.\d{2}$/);
              // truncated as strace does; the seconds column is rounded to microseconds
              expect(Math.abs(Number(r.usecs) - (Number(r.seconds) * 1e6) / r.calls)).toBeLessThanOrEqual(
                1 + 1 / r.calls,
              );
            }
            expect(ours.total.pct).toBe("100.00");
            const pctSum = ours.rows.reduce((n, r) => n + Number(r.pct), 0);
            expect(Math.abs(pctSum - 100)).toBeLessThan(0.01 * ours.rows.length + 0.01);
            expect(Math.abs(secs.reduce((a, b) => a + b, 0) - Number(ours.total.seconds))).toBeLessThan(
              1e-6 * ours.rows.length + 1e-6,
            );
          } else {
            for (const r of [...ours.rows, ours.total]) expect([r.pct, r.seconds, r.usecs]).toEqual(["-", "-", "-"]);
            expect(readFileSync(table, "utf8")).toContain("sysi: time columns not measured");
            // without time, the rows go by calls, then number (strace -S calls)
            const calls = ours.rows.map((r) => r.calls);
            expect(calls).toEqual([...calls].sort((a, b) => b - a));
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  }
});
