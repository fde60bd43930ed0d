/**
 * `sysi bench --svg FILE`: the chart is well-formed XML (parsed back by python3's
 * xml.etree, not by our code), with one bar per measured row carrying its id and median, the
 * printed value reading back as that median, bar lengths on one log scale, native and the floor
 * marked; the same result gives the same bytes; a FILE that cannot be written is one error line
 * before anything is measured. The real-run check is in bench.test.ts (`--tiny --only zpoline`).
 */
import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchResult, CallRow } from "../src/bench/index.ts";
import { renderBenchSvg } from "../src/bench/svg.ts";
import { hasStack, lines, makeSysiHome, sysi } from "./helpers.ts";
import { checkChart, type ParsedBar, parseSvg } from "./svg-helpers.ts";

const work = mkdtempSync(join(tmpdir(), "sysi-bench-svg-"));
const home = makeSysiHome();
afterAll(() => {
  home.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const row = (id: string, group: string, hook: string | null, median: number | null, status = "ok"): CallRow => ({
  id,
  label: `${id} label <&>`,
  group,
  hook,
  mode: "inline",
  nr: 110,
  baseline: null,
  status: status as CallRow["status"],
  ...(status === "ok" ? {} : { reason: "why" }),
  rounds: median === null ? [] : [median],
  median,
  min: median,
  max: median,
  cpuRounds: [],
  cpuMedian: null,
  bestRounds: [],
  bestNs: median,
  blocks: 1,
  ratio: null,
  bad: 0,
  site: null,
  n: 1,
});

const result = (rows: CallRow[]): BenchResult =>
  ({
    date: "2026-12-06T00:00:00.000Z",
    machine: { cpu: "AMD EPYC", cores: 2, kernel: "6.1.0", bun: "1.4.5" },
    load: { start: 1, end: 1 },
    params: { rounds: 3, targetMs: 75, reps: 5, tiny: false },
    chains: [],
    rows,
    startup: [],
    headline: {} as BenchResult["headline"],
  }) as BenchResult;

const ROWS = [
  row("native/inline", "native", null, 88.123),
  row("native/libc", "native", null, 90.5),
  row("floor", "floor", null, 2.014),
  row("trap-floor/sig-ud2", "trap-floor", null, 7330),
  row("zpoline/self/inline", "zpoline", "self", 6.31),
  row("zpoline/passthrough/inline", "zpoline", "passthrough", 95.2),
  row("zpoline/count/inline", "zpoline", "count", 98.9),
  row("punning/self/inline", "punning", "self", null, "skipped"),
  row("ud2:ud2/self/inline", "ud2:ud2", "self", null, "failed"),
  row("strace/inline", "strace", null, 31234.5),
];

describe("renderBenchSvg", () => {
  it("draws one bar per measured row, with its median printed and on a log scale", () => {
    const file = join(work, "chart.svg");
    writeFileSync(file, renderBenchSvg(result(ROWS)));
    const svg = parseSvg(file);
    checkChart(svg, ROWS);
    expect(svg.bars.map((b) => b.cls)).toEqual([
      "native",
      "native",
      "floor",
      "floor",
      "self",
      "passthrough",
      "count",
      "strace",
    ]);
    // 1 ns .. 100 µs: five decades over the chart, the 2.014 ns floor a third of a decade in
    const floor = svg.bars.find((b) => b.id === "floor") as ParsedBar;
    const strace = svg.bars.find((b) => b.id === "strace/inline") as ParsedBar;
    expect(floor.width / strace.width).toBeCloseTo(Math.log10(2.014) / Math.log10(31234.5), 2);
    // native inline and the floor marked across the chart, at their bars' ends
    for (const id of ["native/inline", "floor"]) {
      const b = svg.bars.find((x) => x.id === id) as ParsedBar;
      expect(svg.marks.find((m) => m.id === id)?.x).toBeCloseTo(b.x + b.width, 0);
    }
  });

  it("gives the same bytes for the same result", () => {
    expect(renderBenchSvg(result(ROWS))).toBe(renderBenchSvg(result(ROWS)));
    expect(renderBenchSvg(result(ROWS))).not.toBe(renderBenchSvg(result(ROWS.slice(1))));
  });

  it("is still a well-formed chart with no measured rows", () => {
    const file = join(work, "empty.svg");
    writeFileSync(file, renderBenchSvg(result([row("native/inline", "native", null, null, "failed")])));
    expect(parseSvg(file)).toEqual({ bars: [], marks: [] });
  });
});

describe("sysi bench --svg", () => {
  it("refuses a FILE it cannot write before measuring anything: one line, exit 2, no file", async () => {
    for (const [file, msg] of [
      [join(work, "missing", "x.svg"), /^sysi: error: --svg .*: no such directory /],
      [work, /^sysi: error: --svg .*: is a directory$/],
    ] as const) {
      const r = await sysi(["bench", "--tiny", "--only", "zpoline", "--svg", file], home.env);
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr.trimEnd()).toMatch(msg);
      expect(hasStack(r.stderr)).toBe(false);
      expect(r.stdout).toBe("");
    }
    expect(existsSync(join(work, "missing"))).toBe(false);
  });
});
