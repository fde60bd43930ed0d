/**
 * `sysi bench`: the configuration table, the headline arithmetic, and one tiny real run whose
 * output shape and correctness checks (bad == 0, instrumented sites really patched) are verified.
 * Never asserts a time.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SYS } from "@sysi/core/syscalls";
import { type BenchBinaries, benchPaths, buildBench } from "../src/bench/build.ts";
import { benchSpecs, callConfigs, NR_SWEEP } from "../src/bench/configs.ts";
import { headline, type TrapRatio } from "../src/bench/headline.ts";
import type { BenchResult, CallRow } from "../src/bench/index.ts";
import { goalLine, nearLine, trapRatioLine } from "../src/bench/report.ts";
import { callSample, runCall } from "../src/bench/runner.ts";
import { loadStrategies } from "../src/registry.ts";
import { lines, makeSysiHome, sysi } from "./helpers.ts";
import { checkChart, parseSvg } from "./svg-helpers.ts";

const home = makeSysiHome();

/** The CLI's own plugin: in this checkout the registry adds the workspace's strategy plugins. */
const cliRoot = join(import.meta.dir, "..");
const cliPjson = JSON.parse(readFileSync(join(cliRoot, "package.json"), "utf8"));
/** What the bundled and workspace strategies declare (Strategy.bench), as `sysi bench` reads it. */
const SPECS = benchSpecs(
  (
    await loadStrategies({
      getPluginsList: () => [{ name: "sysi", version: cliPjson.version, type: "core", root: cliRoot, pjson: cliPjson }],
    })
  ).map((e) => e.strategy),
);
const work = mkdtempSync(join(tmpdir(), "sysi-bench-test-"));
afterAll(() => {
  home.cleanup();
  rmSync(work, { recursive: true, force: true });
});

/** The real measured program, built once from bench/getppid.c. */
let binsP: Promise<BenchBinaries> | undefined;
const bins = () => {
  binsP ??= buildBench(benchPaths(), { cacheDir: work });
  return binsP;
};

describe("bench/getppid result line", () => {
  const line = {
    mode: "floor",
    nr: 110,
    n: 1000,
    expect: 20817,
    got: 20817,
    bad: 0,
    ns: [2.5, 2.4],
    median: 2.45,
    cpu: [2.5, 2.4],
    cpu_median: 2.45,
    best: 2.01,
    blocks: 150,
    site: "0f05",
    libc_head: "4889f8",
  };

  it("accepts a complete line and keeps best and blocks", () => {
    const r = callSample(JSON.parse(JSON.stringify(line)));
    expect(r.ok).toBe(true);
    if (r.ok) expect([r.value.best, r.value.blocks]).toEqual([2.01, 150]);
  });

  it("rejects a line without best or blocks, or with impossible values", () => {
    const { best: _b, ...noBest } = line;
    const { blocks: _k, ...noBlocks } = line;
    expect(callSample(noBest)).toEqual({ ok: false, error: "result line: no number best" });
    expect(callSample(noBlocks)).toEqual({ ok: false, error: "result line: no number blocks" });
    expect(callSample({ ...line, blocks: 0 })).toEqual({ ok: false, error: "result line: blocks < 1" });
    expect(callSample({ ...line, best: 0 })).toEqual({ ok: false, error: "result line: best <= 0" });
    expect(callSample({ ...line, best: "2.0" }).ok).toBe(false);
    expect(callSample({ ...line, ns: [] }).ok).toBe(false);
    expect(callSample(null).ok).toBe(false);
  });

  it("the real program times ~1 ms blocks: T blocks per repetition, best ≤ every repetition", async () => {
    const b = await bins();
    const reps = 3;
    const targetMs = 10;
    const r = await runCall([b.getppid, "floor", "--target-ms", String(targetMs), "--reps", String(reps)], {}, 60_000);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const s = r.value;
    expect(s.bad).toBe(0);
    expect(s.ns).toHaveLength(reps);
    // Block length = floor(n / T) calls, floor(n / block) blocks per repetition (the last one
    // takes the remainder): T of them whenever n ≥ T².
    const block = Math.floor(s.n / targetMs);
    expect(s.n).toBeGreaterThanOrEqual(targetMs * targetMs);
    expect(s.blocks).toBe(reps * Math.floor(s.n / block));
    expect(s.blocks).toBe(reps * targetMs);
    // The minimum block's ns/call can never exceed a whole repetition's (a weighted mean of its
    // blocks): true of any timing, however noisy.
    expect(s.best).toBeGreaterThan(0);
    expect(s.best).toBeLessThanOrEqual(Math.min(...s.ns));
    // …and is a per-call figure of one block, not a block's total spread over a repetition's
    // calls (that would be ~1/T of it): only a stall of 3/4 of every repetition could reach this.
    expect(s.best).toBeGreaterThan(Math.min(...s.ns) / 4);
  });

  it("with an explicit --n the block length comes from the warm-up: a short run is one block", async () => {
    const b = await bins();
    const r = await runCall([b.getppid, "floor", "--n", "1000", "--reps", "2"], {}, 60_000);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.n).toBe(1000);
    // 1000 indirect calls take microseconds, far below 1 ms: one block per repetition.
    expect(r.value.blocks).toBe(2);
    expect(r.value.best).toBeLessThanOrEqual(Math.min(...r.value.ns));
  });
});

describe("bench/getppid trap floors", () => {
  const MODES = ["sig-int3", "sig-ud2", "sig-hlt", "sig-int4"];

  it("every trap floor answers the floor value, with and without rt_sigreturn", async () => {
    const b = await bins();
    for (const base of MODES)
      for (const mode of [base, `${base}-direct`]) {
        const r = await runCall([b.getppid, mode, "--n", "2000", "--reps", "2"], {}, 60_000);
        expect(r.ok ? { mode, bad: r.value.bad, got: r.value.got } : r).toEqual({ mode, bad: 0, got: 0x5151 });
      }
  });

  const strace = Bun.which("strace");
  it.skipIf(strace === null)(
    "the -direct floors never call rt_sigreturn, the plain ones once per trap (strace -c)",
    async () => {
      const b = await bins();
      const n = 300;
      for (const mode of ["sig-int3", "sig-int3-direct", "sig-hlt-direct", "sig-ud2-direct"]) {
        const out = join(work, `${mode}.strace`);
        const p = Bun.spawnSync(
          [
            "strace",
            "-f",
            "-qq",
            "-c",
            "-e",
            "trace=rt_sigreturn",
            "-o",
            out,
            b.getppid,
            mode,
            "--n",
            String(n),
            "--reps",
            "1",
          ],
          { stdout: "pipe", stderr: "pipe" },
        );
        expect(p.exitCode).toBe(0);
        const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?rt_sigreturn$/m.exec(await Bun.file(out).text());
        const calls = m === null ? 0 : Number(m[1]);
        // warm-up + one repetition + the call outside the loop's result line: 2n traps
        if (mode.endsWith("-direct")) expect({ mode, calls }).toEqual({ mode, calls: 0 });
        else expect(calls).toBeGreaterThanOrEqual(2 * n);
      }
    },
    120_000,
  );
});

describe("bench configurations", () => {
  it("measures every strategy with three hooks at both sites, and sweeps nr for zpoline", () => {
    const ids = new Set(callConfigs(SPECS).map((c) => c.id));
    for (const id of ["native/inline", "native/libc", "floor", "strace/inline", "strace/libc"])
      expect(ids.has(id)).toBe(true);
    for (const { spec } of SPECS)
      for (const hook of ["passthrough", "count", "self"])
        for (const mode of ["inline", "libc"]) expect(ids.has(`${spec}/${hook}/${mode}`)).toBe(true);
    for (const nr of NR_SWEEP) if (nr !== SYS.getppid) expect(ids.has(`zpoline/self/inline/${nr}`)).toBe(true);
  });

  it("keeps the native baselines and the floor under --only", () => {
    const groups = new Set(callConfigs(SPECS, ["ud2:int3"]).map((c) => c.group));
    expect([...groups].sort()).toEqual(["floor", "native", "trap-floor", "ud2:int3"]);
    expect(callConfigs(SPECS, ["ud2"]).some((c) => c.group === "ud2:hlt")).toBe(true);
  });

  it("takes its rows from the strategies' bench declarations, in their order", () => {
    expect(SPECS.map((s) => s.spec)).toEqual([
      "zpoline",
      "punning",
      "ud2:ud2",
      "ud2:int3",
      "ud2:hlt",
      "ud2:int4",
      "segmentation:any",
    ]);
    expect(SPECS.filter((s) => s.sweepNr).map((s) => s.spec)).toEqual(["zpoline", "punning", "segmentation:any"]);
    const trap = callConfigs(SPECS, ["ud2:int4"]).filter((c) => c.group === "trap-floor");
    expect(trap.map((c) => c.id)).toEqual(["trap-floor/sig-int4", "trap-floor/sig-int4-direct"]);
    // a strategy without `bench`: one group by its name, after the ordered ones; no trap floor, no sweep
    const plain = benchSpecs([
      { name: "aaa" },
      { name: "zz", bench: { order: 1, rows: [{ spec: "zz:v", trap: "hlt" }] } },
    ]);
    expect(plain).toEqual([
      { spec: "zz:v", sweepNr: false, trap: "hlt", goals: null },
      { spec: "aaa", sweepNr: false, trap: null, goals: null },
    ]);
    const ids = callConfigs(plain).map((c) => c.id);
    expect(ids).toContain("aaa/self/inline");
    expect(ids.filter((id) => id.startsWith("aaa/self/inline/"))).toEqual([]);
    expect(ids).toContain("trap-floor/sig-hlt");
  });
});

describe("headline", () => {
  const row = (
    id: string,
    group: string,
    hook: string | null,
    mode: string,
    nr: number,
    median: number | null,
    bestNs: number | null = median === null ? null : median - 1,
  ) => ({
    id,
    group,
    hook,
    mode,
    nr,
    status: median === null ? "skipped" : "ok",
    median,
    cpuMedian: median === null ? null : median / 2,
    bestNs,
  });

  /** A strategy's self-answering rows at every swept nr, with these medians and best blocks. */
  const selfRows = (spec: string, medians: readonly number[], bests: readonly number[]) =>
    NR_SWEEP.map((nr, i) =>
      row(
        nr === SYS.getppid ? `${spec}/self/inline` : `${spec}/self/inline/${nr}`,
        spec,
        "self",
        "inline",
        nr,
        medians[i] as number,
        bests[i] as number,
      ),
    );
  const zpolineSelf = (medians: readonly number[], bests: readonly number[]) => selfRows("zpoline", medians, bests);

  it("takes zpoline's worst self-answering nr against the 5 ns goal and subtracts the floor", () => {
    const rows = [
      row("native/inline", "native", null, "inline", SYS.getppid, 100),
      row("floor", "floor", null, "floor", SYS.getppid, 2),
      row("zpoline/passthrough/inline", "zpoline", "passthrough", "inline", SYS.getppid, 130),
      ...NR_SWEEP.map((nr, i) =>
        row(
          nr === SYS.getppid ? "zpoline/self/inline" : `zpoline/self/inline/${nr}`,
          "zpoline",
          "self",
          "inline",
          nr,
          3 + i,
        ),
      ),
    ];
    const h = headline(rows, SPECS);
    const z = h.strategies.find((s) => s.spec === "zpoline");
    expect(z?.goal).toEqual({
      what: expect.any(String),
      limitNs: 5,
      valueNs: 6,
      met: false,
      valueCpuNs: 3,
      metCpu: true,
      valueBestNs: 5,
      metBest: true,
    });
    expect(z?.selfOverFloorNs[SYS.getpid]).toBe(1);
    expect(z?.selfCpuOverFloorNs[SYS.getpid]).toBe(0.5);
    expect(z?.passthroughOverNativeNs).toBe(30);
  });

  it("gives the count hook's cost over passthrough, median and best block", () => {
    const rows = [
      row("zpoline/passthrough/inline", "zpoline", "passthrough", "inline", SYS.getppid, 130, 120),
      row("zpoline/count/inline", "zpoline", "count", "inline", SYS.getppid, 132.5, 121),
      ...zpolineSelf([4, 4, 4, 4], [4, 4, 4, 4]),
    ];
    const z = headline(rows, SPECS).strategies.find((s) => s.spec === "zpoline");
    expect(z?.countNs).toBe(132.5);
    expect(z?.countOverPassthroughNs).toBe(2.5);
    expect(z?.countBestNs).toBe(121);
    expect(z?.countOverPassthroughBestNs).toBe(1);
    const none = headline(zpolineSelf([4, 4, 4, 4], [4, 4, 4, 4]), SPECS).strategies[0];
    expect(none?.countOverPassthroughNs).toBeNull();
    expect(none?.countOverPassthroughBestNs).toBeNull();
  });

  it("checks the goal on the best 1-ms blocks too: median fails, best block passes", () => {
    const rows = [
      row("floor", "floor", null, "floor", SYS.getppid, 3.1, 1.95),
      ...zpolineSelf([10.3, 10.5, 9.8, 10.1], [6.5, 4.7, 4.9, 4.8]),
    ];
    const h = headline(rows, SPECS);
    expect(h.floorBestNs).toBe(1.95);
    const z = h.strategies.find((s) => s.spec === "zpoline");
    // Worst nr by median is NR_SWEEP[1]; by best block it is NR_SWEEP[0]: each taken separately.
    expect(z?.goal?.valueNs).toBe(10.5);
    expect(z?.goal?.met).toBe(false);
    expect(z?.goal?.valueBestNs).toBe(6.5);
    expect(z?.goal?.metBest).toBe(false);
    const h2 = headline(
      [
        row("floor", "floor", null, "floor", SYS.getppid, 3.1, 1.95),
        ...zpolineSelf([10.3, 10.5, 9.8, 10.1], [4.5, 4.7, 4.9, 4.8]),
      ],
      SPECS,
    );
    const z2 = h2.strategies.find((s) => s.spec === "zpoline");
    expect(z2?.goal).toMatchObject({ valueNs: 10.5, met: false, valueBestNs: 4.9, metBest: true });
    expect(z2?.selfBestNs[NR_SWEEP[2]]).toBe(4.9);
    expect(z2?.selfBestOverFloorNs[NR_SWEEP[0]]).toBeCloseTo(4.5 - 1.95, 10);
    expect(z2?.selfOverFloorNs[NR_SWEEP[0]]).toBeCloseTo(10.3 - 3.1, 10);
    const text = goalLine(z2?.goal as NonNullable<typeof z2>["goal"] & object);
    expect(text).toContain("≤ 5.00 ns: median 10.5 ns — NOT met;");
    expect(text).toContain("best 1-ms block (quiet-window cost) 4.90 ns — met");
  });

  it("checks the goal on the best 1-ms blocks too: both fail", () => {
    const h = headline(
      [
        row("floor", "floor", null, "floor", SYS.getppid, 3.1, 1.95),
        ...zpolineSelf([10.3, 10.5, 9.8, 10.1], [6.1, 5.9, 5.2, 6.05]),
      ],
      SPECS,
    );
    const g = h.strategies.find((s) => s.spec === "zpoline")?.goal;
    expect(g).toMatchObject({ limitNs: 5, valueNs: 10.5, met: false, valueBestNs: 6.1, metBest: false });
    const text = goalLine(g as NonNullable<typeof g>);
    expect(text).toMatch(/median 10\.5 ns — NOT met; .*best 1-ms block \(quiet-window cost\) 6\.10 ns — NOT met$/);
  });

  it("checks punning against 6 ns and against zpoline's worst nr (within 1 ns)", () => {
    const punningSelf = (medians: readonly number[], bests: readonly number[]) => selfRows("punning", medians, bests);
    const h = headline(
      [
        ...zpolineSelf([5.6, 5.7, 5.5, 5.4], [5.0, 5.1, 4.9, 4.9]),
        ...punningSelf([8.2, 6.5, 5.8, 5.9], [5.2, 5.4, 5.3, 5.9]),
      ],
      SPECS,
    );
    const p = h.strategies.find((s) => s.spec === "punning");
    expect(p?.goal).toMatchObject({ limitNs: 6, valueNs: 8.2, met: false, valueBestNs: 5.9, metBest: true });
    expect(p?.near?.spec).toBe("zpoline");
    expect(p?.near?.diffNs).toBeCloseTo(8.2 - 5.7, 10);
    expect(p?.near?.diffBestNs).toBeCloseTo(5.9 - 5.1, 10);
    const text = nearLine(p?.near as NonNullable<NonNullable<typeof p>["near"]>);
    expect(text).toMatch(/of zpoline's: median \+2\.50 ns — NOT met; best 1-ms block \+0\.80 ns — met$/);
    // without zpoline's rows there is nothing to compare with
    expect(headline(punningSelf([6, 6, 6, 6], [5, 5, 5, 5]), SPECS).strategies[0]?.near).toBeUndefined();
  });

  it("takes a trap strategy's goal as its self-answer over the bare trap floor of the same run", () => {
    const rows = (selfBest: number | null) => [
      row("native/inline", "native", null, "inline", SYS.getppid, 180, 140),
      row("ud2:hlt/passthrough/inline", "ud2:hlt", "passthrough", "inline", SYS.getppid, 3400, 2600),
      row("ud2:hlt/self/inline", "ud2:hlt", "self", "inline", SYS.getppid, 3000, selfBest),
      row("trap-floor/sig-hlt", "trap-floor", null, "sig-hlt", SYS.getppid, 2900, 2500),
      row("trap-floor/sig-hlt-direct", "trap-floor", null, "sig-hlt-direct", SYS.getppid, 2700, 2300),
    ];
    const s = headline(rows(2600), SPECS).strategies[0];
    expect(s).toMatchObject({ trapFloorNs: 2900, trapFloorBestNs: 2500, trapDirectNs: 2700, goal: null });
    expect(s?.trapRatio?.ratio).toBeCloseTo(3000 / 2900, 10);
    expect(s?.trapRatio?.ratioBest).toBeCloseTo(2600 / 2500, 10);
    expect(s?.trapRatio).toMatchObject({ limit: 1.1, met: true, metBest: true });
    expect(trapRatioLine(s?.trapRatio as TrapRatio)).toBe(
      "goal: self-answer ≤ 1.10× the bare trap round trip (same run): median 1.03× — met; best 1-ms block 1.04× — met",
    );
    const slow = headline(rows(2800), SPECS).strategies[0]?.trapRatio;
    expect(slow).toMatchObject({ metBest: false, met: true });
    expect(headline(rows(null), SPECS).strategies[0]?.trapRatio?.metBest).toBeNull();
    // not a trap: no trap floor, no ratio
    expect(headline(zpolineSelf([9, 9, 9, 9], [8, 8, 8, 8]), SPECS).strategies[0]?.trapRatio).toBeNull();
  });

  it("checks the goals a strategy declares, whatever its name; declares none, checks none", () => {
    const specs = benchSpecs([
      { name: "aaa", bench: { rows: [{ spec: "aaa", sweepNr: true, goals: { selfNs: 7 } }] } },
      {
        name: "bbb",
        bench: {
          rows: [{ spec: "bbb:x", trap: "int3", goals: { trapRatio: 2, near: { spec: "aaa", withinNs: 0.5 } } }],
        },
      },
      { name: "ccc", bench: { rows: [{ spec: "ccc", trap: "hlt" }] } },
    ]);
    const rows = [
      ...selfRows("aaa", [6.5, 6.9, 7.2, 6.0], [6.1, 6.2, 6.3, 5.9]),
      row("bbb:x/self/inline", "bbb:x", "self", "inline", SYS.getppid, 3000, 2900),
      row("trap-floor/sig-int3", "trap-floor", null, "sig-int3", SYS.getppid, 2000, 1000),
      row("ccc/self/inline", "ccc", "self", "inline", SYS.getppid, 3000, 2900),
      row("trap-floor/sig-hlt", "trap-floor", null, "sig-hlt", SYS.getppid, 2000, 1900),
    ];
    const [a, b, c] = headline(rows, specs).strategies;
    expect(a?.goal).toMatchObject({ limitNs: 7, valueNs: 7.2, met: false, valueBestNs: 6.3, metBest: true });
    expect(a?.trapRatio).toBeNull();
    expect(a?.near).toBeUndefined();
    expect(b?.goal).toBeNull();
    expect(b?.trapRatio).toMatchObject({ limit: 2, ratio: 1.5, met: true, ratioBest: 2.9, metBest: false });
    expect(b?.near).toEqual({ spec: "aaa", diffNs: 3000 - 7.2, diffBestNs: 2900 - 6.3, limitNs: 0.5 });
    // a trap without a declared goal: its floors are shown, nothing is checked
    expect(c).toMatchObject({ spec: "ccc", goal: null, trapRatio: null, trapFloorNs: 2000 });
    expect(c?.near).toBeUndefined();
  });

  it("reports a goal as not measured when its row was skipped", () => {
    const h = headline([row("ud2:int3/self/inline", "ud2:int3", "self", "inline", SYS.getppid, null)], SPECS);
    expect(h.strategies[0]?.trapRatio?.met).toBeNull();
    expect(h.strategies[0]?.trapRatio?.metBest).toBeNull();
  });
});

/** The best 1-ms block of an ok row: present, positive, from every round, ≤ its row's median. */
function checkBest(row: CallRow): void {
  expect(row.bestRounds).toHaveLength(row.rounds.length);
  expect(row.blocks).toBeGreaterThanOrEqual(row.rounds.length);
  expect(row.bestNs).toBeGreaterThan(0);
  expect(row.bestNs as number).toBeLessThanOrEqual(row.median as number);
  expect(row.bestNs).toBe(Math.min(...row.bestRounds));
}

describe("sysi bench --tiny --only zpoline (and -s zpoline)", () => {
  it("carries each row's best 1-ms block into --json, the table and the headline", async () => {
    const svg = join(work, "bench.svg");
    const r = await sysi(["bench", "--tiny", "--only", "zpoline", "--rounds", "2", "--json", "--svg", svg], home.env);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout) as BenchResult;
    // the chart: one bar per measured row, its median printed, one log scale (svg-helpers.ts)
    checkChart(parseSvg(svg), res.rows);
    const ok = res.rows.filter((x) => x.status === "ok");
    expect(ok.map((x) => x.id)).toContain("floor");
    for (const row of ok) {
      expect(row.rounds).toHaveLength(2);
      checkBest(row);
    }
    expect(res.headline.floorBestNs).toBe(ok.find((x) => x.id === "floor")?.bestNs as number);
    const z = res.headline.strategies.find((s) => s.spec === "zpoline");
    const zrow = res.rows.find((x) => x.id === "zpoline/self/inline");
    if (zrow?.status === "ok") {
      expect(z?.selfBestNs[SYS.getppid]).toBe(zrow.bestNs as number);
      expect(z?.goal?.valueBestNs).not.toBeNull();
      expect(z?.goal?.metBest).toBe((z?.goal?.valueBestNs as number) <= 5);
    }

    // -s names the same group as --only (one name for the strategy flag on every command)
    const t = await sysi(["bench", "--tiny", "-s", "zpoline"], home.env);
    expect(t.code).toBe(0);
    const out = lines(t.stdout);
    const head = out.find((l) => l.startsWith("configuration"));
    expect(head).toMatch(/median ns\s+min\s+max\s+best 1ms\s+ratio/);
    const floorLine = out.find((l) => l.startsWith("floor: indirect call"));
    // median, min, max, best: the best block is never above the median.
    const cells = (floorLine ?? "").split(/\s{2,}/);
    expect(Number(cells[4])).toBeGreaterThan(0);
    expect(Number(cells[4])).toBeLessThanOrEqual(Number(cells[1]));
    expect(out.some((l) => /^ {2}floor .*median [\d.]+ ns .*best 1-ms block [\d.]+ ns/.test(l))).toBe(true);
    if (zrow?.status === "ok") {
      expect(out.some((l) => l.includes("self-answer, best 1-ms block (quiet window): nr 39:"))).toBe(true);
      expect(
        out.some((l) => /goal: .*≤ 5\.00 ns: median .* — (NOT )?met; .*best 1-ms block \(quiet-window cost\)/.test(l)),
      ).toBe(true);
    }
  });
});

describe("sysi bench --tiny --json", () => {
  it("runs every configuration once and reports correct, instrumented results", async () => {
    const r = await sysi(["bench", "--tiny", "--json"], home.env);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout) as BenchResult;
    expect(res.params.rounds).toBe(1);
    for (const id of ["native/inline", "native/libc", "floor"]) {
      const row = res.rows.find((x) => x.id === id);
      expect(row?.status).toBe("ok");
    }
    expect(res.rows.find((x) => x.id === "native/inline")?.ratio).toBe(1);
    expect(res.rows.find((x) => x.id === "native/inline")?.site).toBe("0f05");
    for (const row of res.rows) {
      // A failed row is a crash, a wrong result or an unpatched site: never acceptable.
      expect({ id: row.id, status: row.status, reason: row.reason }).toEqual({
        id: row.id,
        status: expect.stringMatching(/^(ok|skipped)$/),
        reason: row.reason,
      });
      if (row.status === "skipped") expect(row.reason ?? "").not.toBe("");
      if (row.status !== "ok") continue;
      expect(row.bad).toBe(0);
      expect(row.rounds).toHaveLength(1);
      expect(row.median).toBeGreaterThan(0);
      checkBest(row);
      if (row.group !== "native" && row.group !== "floor" && row.group !== "strace" && row.mode === "inline")
        expect(row.site).not.toBe("0f05");
    }
    const native = res.startup.find((s) => s.id === "startup/native");
    expect(native?.status).toBe("ok");
    for (const s of res.startup) if (s.status !== "ok") expect(s.reason ?? "").not.toBe("");
    expect(res.headline.floorNs).toBeGreaterThan(0);
  });
});
