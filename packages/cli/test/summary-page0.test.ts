/** The count summary's page-0 line: when zpoline mapped page 0 readable (no protection keys). */
import { describe, expect, it } from "bun:test";
import type { StatsSnapshot } from "@sysi/core/runtime";
import { page0Mode, page0Notice, renderRunSummary, summaryJson } from "../src/run/summary.ts";

function stats(zpolinePatched: number | null): StatsSnapshot {
  const strategies: StatsSnapshot["strategies"] = {
    punning: { calls: 10, patched: 570, fellThrough: 0, mismatched: 0 },
  };
  if (zpolinePatched !== null)
    strategies.zpoline = { calls: 3, patched: zpolinePatched, fellThrough: 0, mismatched: 0 };
  return {
    version: 1,
    syscalls: [],
    x32: [],
    i386: [],
    other: { calls: 0, errors: 0 },
    strategies,
    modules: { planned: 3, unplanned: 0, corrupt: 0 },
    sitesUnpatched: 0,
    processes: 1,
    forks: 0,
  };
}

const host = (pkeys: boolean) => ({ check: (id: string) => (id === "pkeys" ? { ok: pkeys } : undefined) }) as never;
const run = (pkeys: boolean) => ({ chain: { spec: "punning,zpoline,ud2" }, host: host(pkeys) });

describe("page 0 in the count summary", () => {
  it.each([
    [null, false, "unmapped"],
    [0, false, "unmapped"],
    [2, true, "xonly"],
    [2, false, "readable"],
  ] as const)("zpoline patched %p sites, pkeys %p: page 0 %s", (patched, pkeys, mode) => {
    expect(page0Mode(stats(patched), host(pkeys))).toBe(mode);
    expect(summaryJson(stats(patched), run(pkeys)).page0).toBe(mode);
  });

  it("says so in one line only when page 0 was readable", () => {
    expect(page0Notice(stats(2), host(false))).toMatch(
      /^sysi: zpoline mapped page 0 for its 2 sites on a CPU without protection keys: /,
    );
    expect(renderRunSummary(stats(2), run(false))).toContain("NULL pointer arguments did not fault");
    for (const [patched, pkeys] of [
      [0, false],
      [2, true],
    ] as const)
      expect(renderRunSummary(stats(patched), run(pkeys))).not.toContain("page 0");
  });

  it("knows nothing of page 0 without a host report (sysi stats of a file)", () => {
    expect(page0Mode(stats(2), undefined)).toBeNull();
    expect(summaryJson(stats(2), { chain: { spec: "zpoline" } })).not.toHaveProperty("page0");
    expect(renderRunSummary(stats(2), { chain: { spec: "zpoline" } })).not.toContain("page 0");
  });
});
