import { describe, expect, it } from "bun:test";
import type { StatsSnapshot } from "@sysi/core/runtime";
import { exitGaps, parseUnpatchedFile, startError, startNotice } from "../src/run/coverage.ts";

const gap = (path: string, refused: number, fell = 0, noPlan = false) => ({ path, refused, fell, noPlan });

function stats(strategies: Record<string, { fellThrough: number; mismatched: number }>): StatsSnapshot {
  const s: StatsSnapshot["strategies"] = {};
  for (const [name, c] of Object.entries(strategies)) s[name] = { calls: 0, patched: 0, ...c };
  return {
    version: 1,
    syscalls: [],
    x32: [],
    i386: [],
    other: { calls: 0, errors: 0 },
    strategies: s,
    modules: { planned: 0, unplanned: 0, corrupt: 0 },
    sitesUnpatched: 0,
    processes: 1,
    forks: 0,
  };
}

describe("parseUnpatchedFile", () => {
  it("keeps one entry per module, the worst process image's counts, and skips malformed lines", () => {
    const text = [
      "sites 2 0 /lib/libc.so.6",
      "sites 2 3 /lib/libc.so.6",
      "sites 1 0 /lib/libc.so.6",
      "noplan /opt/x y.so",
      "sites x 0 /bad",
      "garbage",
      "",
    ].join("\n");
    expect(parseUnpatchedFile(text)).toEqual([gap("/lib/libc.so.6", 2, 3), gap("/opt/x y.so", 0, 0, true)]);
  });
});

describe("the start line", () => {
  it("is absent when the plans patch every site", () => {
    expect(startNotice("zpoline,ud2", [])).toBeNull();
    expect(startError("zpoline,ud2", [])).toBeNull();
  });

  it("names each module with its count, at most four, in one line", () => {
    const gaps = ["a", "b", "c", "d", "e", "f"].map((m, i) => gap(`/${m}`, i + 1));
    expect(startNotice("zpoline", gaps)).toBe(
      "sysi: chain zpoline leaves 21 system-call sites unpatched, in /a (1), /b (2), /c (3), /d (4) and 2 more: system calls made there bypass the hook (`sysi plan -s zpoline FILE` says why)\n",
    );
    expect(startNotice("zpoline", [gap("/a", 1)])).toContain("leaves 1 system-call site unpatched, in /a (1):");
  });

  it("under --strict suggests ud2 only when the chain lacks it", () => {
    expect(startError("zpoline", [gap("/a", 1)])?.suggestions?.[0]).toBe(
      "-s zpoline,ud2 lets ud2 take the sites the others refuse",
    );
    expect(startError("zpoline,ud2:int3", [gap("/a", 1)])?.suggestions).toEqual([
      "`sysi plan -s zpoline,ud2:int3 FILE` says why",
    ]);
  });
});

describe("exitGaps", () => {
  it("is null when nothing new was left unpatched (modules planned ahead were reported at start)", () => {
    expect(exitGaps([], [], null)).toBeNull();
    expect(exitGaps([gap("/lib/libc.so.6", 2)], ["/lib/libc.so.6"], null)).toBeNull();
  });

  it("reports modules loaded later, sites that fell through (with whose options failed) and modules without a plan", () => {
    const s = exitGaps(
      [gap("/lib/libc.so.6", 2, 1), gap("/usr/lib/late.so", 4), gap("/opt/noplan.so", 0, 0, true)],
      ["/lib/libc.so.6"],
      stats({
        zpoline: { fellThrough: 1, mismatched: 0 },
        ud2: { fellThrough: 0, mismatched: 1 },
        punning: { fellThrough: 0, mismatched: 0 },
      }),
    );
    expect(s).toBe(
      "left unpatched during the run: 4 sites every strategy refused in modules loaded after start (/usr/lib/late.so 4); 1 site whose planned strategies all failed at run time (/lib/libc.so.6 1; options that failed: zpoline 1, ud2 1); 1 module without a usable plan (/opt/noplan.so): system calls made there bypassed the hook",
    );
  });
});
