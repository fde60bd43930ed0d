/**
 * Calls whose numbers the statistics table has no slot for (above it, x32 numbers) are counted
 * together as `other`: they appear as a row of the count table and in its total (issue 17), as
 * strace -c counts every call it sees.
 */
import { describe, expect, it } from "bun:test";
import type { StatsSnapshot } from "@sysi/core/runtime";
import { countTable, OTHER_ROW, summaryJson } from "../src/run/summary.ts";

function stats(other: { calls: number; errors: number }): StatsSnapshot {
  return {
    version: 1,
    syscalls: [
      { nr: 1, name: "write", calls: 3, errors: 0 },
      { nr: 39, name: "getpid", calls: 1, errors: 0 },
    ],
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
