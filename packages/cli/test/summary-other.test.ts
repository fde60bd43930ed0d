/**
 * Calls whose numbers the statistics table has no slot for (above it, x32 numbers) are counted
 * together as `other`: they appear as a row of the count table and in its total (issue 17), as
 * strace -c counts every call it sees. x32 calls strace names make a second table, as strace -c's
 * "System call usage summary for x32 mode:" (its e2e oracle: test/e2e/sysnr.test.ts).
 */
import { describe, expect, it } from "bun:test";
import type { StatsSnapshot } from "@sysi/core/runtime";
import { countTable, OTHER_ROW, summaryJson, X32_TABLE_TITLE } from "../src/run/summary.ts";

function stats(other: { calls: number; errors: number }, x32: StatsSnapshot["x32"] = []): StatsSnapshot {
  return {
    version: 1,
    syscalls: [
      { nr: 1, name: "write", calls: 3, errors: 0 },
      { nr: 39, name: "getpid", calls: 1, errors: 0 },
    ],
    x32,
    i386: [],
    other,
    strategies: { ud2: { calls: 4 + other.calls, patched: 10, fellThrough: 0, mismatched: 0 } },
    modules: { planned: 1, unplanned: 0, corrupt: 0 },
    sitesUnpatched: 0,
    processes: 1,
    forks: 0,
  } as StatsSnapshot;
}

const run = { chain: { spec: "ud2" }, host: { check: () => undefined } } as never;

describe("the count table's other row", () => {
  it("lists numbers above the table as one row, counted in the total", () => {
    const t = countTable(stats({ calls: 2, errors: 2 }));
    expect(t.some((l) => /^[ \d.-]* 2 +2 other$/.test(l))).toBe(true);
    expect(t.find((l) => / total$/.test(l))).toMatch(/^[ \d.-]* 6 +2 total$/);
    const j = summaryJson(stats({ calls: 2, errors: 2 }), run);
    expect(j.total.calls).toBe(6);
    expect(j.syscalls.find((s) => s.name === OTHER_ROW)).toMatchObject({ calls: 2, errors: 2 });
  });

  it("has no such row when every number had a slot", () => {
    const t = countTable(stats({ calls: 0, errors: 0 }));
    expect(t.some((l) => / other$/.test(l))).toBe(false);
    expect(t.find((l) => / total$/.test(l))).toMatch(/^[ \d.-]* 4 +total$/);
  });
});

describe("the count table's x32 table", () => {
  const x32 = [
    { nr: 0x40000027, name: "getpid", calls: 3, errors: 3 },
    { nr: 0x4000000d, name: "rt_sigaction#64", calls: 1, errors: 1 },
  ];

  it("follows the 64-bit one under strace's title, with a total of its own", () => {
    const t = countTable(stats({ calls: 0, errors: 0 }, x32));
    const at = t.indexOf(X32_TABLE_TITLE);
    expect(at).toBeGreaterThan(0);
    expect(t.slice(0, at).find((l) => / total$/.test(l))).toMatch(/^[ \d.-]* 4 +total$/);
    const mine = t.slice(at);
    expect(mine[1]).toBe("% time     seconds  usecs/call     calls    errors syscall");
    expect(mine.filter((l) => /\d [a-z#0-9_]+$/.test(l))).toEqual([
      "     -           -           -         3         3 getpid",
      "     -           -           -         1         1 rt_sigaction#64",
      "     -           -           -         4         4 total",
    ]);
  });

  it("is in the JSON as x32, apart from the 64-bit rows and total", () => {
    const j = summaryJson(stats({ calls: 0, errors: 0 }, x32), run);
    expect(j.total.calls).toBe(4);
    expect(j.syscalls.map((s) => s.name)).toEqual(["write", "getpid"]);
    expect(j.x32?.syscalls.map((s) => [s.name, s.nr, s.calls, s.errors])).toEqual([
      ["getpid", 0x40000027, 3, 3],
      ["rt_sigaction#64", 0x4000000d, 1, 1],
    ]);
    expect(j.x32?.total).toMatchObject({ calls: 4, errors: 4 });
    expect(summaryJson(stats({ calls: 0, errors: 0 }), run).x32).toBeUndefined();
  });
});
