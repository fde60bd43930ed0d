/**
 * `sysi bench`: the configuration table, the headline arithmetic, and one tiny real run whose
 * output shape and correctness checks (bad == 0, instrumented sites really patched) are verified.
 * Never asserts a time.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { SYS } from "@sysi/core/syscalls/index";
import { callConfigs, NR_SWEEP, STRATEGY_SPECS } from "../src/bench/configs.ts";
import { headline } from "../src/bench/headline.ts";
import type { BenchResult } from "../src/bench/index.ts";
import { makeSysiHome, sysi } from "./helpers.ts";

const home = makeSysiHome();
afterAll(() => home.cleanup());

describe("bench configurations", () => {
  it("measures every strategy with three hooks at both sites, and sweeps nr for zpoline", () => {
    const ids = new Set(callConfigs().map((c) => c.id));
    for (const id of ["native/inline", "native/libc", "floor", "strace/inline", "strace/libc"])
      expect(ids.has(id)).toBe(true);
    for (const spec of STRATEGY_SPECS)
      for (const hook of ["passthrough", "count", "self"])
        for (const mode of ["inline", "libc"]) expect(ids.has(`${spec}/${hook}/${mode}`)).toBe(true);
    for (const nr of NR_SWEEP) if (nr !== SYS.getppid) expect(ids.has(`zpoline/self/inline/${nr}`)).toBe(true);
  });

  it("keeps the native baselines and the floor under --only", () => {
    const groups = new Set(callConfigs(["ud2:int3"]).map((c) => c.group));
    expect([...groups].sort()).toEqual(["floor", "native", "trap-floor", "ud2:int3"]);
    expect(callConfigs(["ud2"]).some((c) => c.group === "ud2:hlt")).toBe(true);
  });
});

describe("headline", () => {
  const row = (id: string, group: string, hook: string | null, mode: string, nr: number, median: number | null) => ({
    id,
    group,
    hook,
    mode,
    nr,
    status: median === null ? "skipped" : "ok",
    median,
    cpuMedian: median === null ? null : median / 2,
  });

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
    const h = headline(rows);
    const z = h.strategies.find((s) => s.spec === "zpoline");
    expect(z?.goal).toEqual({
      what: expect.any(String),
      limitNs: 5,
      valueNs: 6,
      met: false,
      valueCpuNs: 3,
      metCpu: true,
    });
    expect(z?.selfOverFloorNs[SYS.getpid]).toBe(1);
    expect(z?.selfCpuOverFloorNs[SYS.getpid]).toBe(0.5);
    expect(z?.passthroughOverNativeNs).toBe(30);
  });

  it("reports a goal as not measured when its row was skipped", () => {
    const h = headline([row("ud2:int3/passthrough/inline", "ud2:int3", "passthrough", "inline", SYS.getppid, null)]);
    expect(h.strategies[0]?.goal?.met).toBeNull();
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
      if (row.group !== "native" && row.group !== "floor" && row.group !== "strace" && row.mode === "inline")
        expect(row.site).not.toBe("0f05");
    }
    const native = res.startup.find((s) => s.id === "startup/native");
    expect(native?.status).toBe("ok");
    for (const s of res.startup) if (s.status !== "ok") expect(s.reason ?? "").not.toBe("");
    expect(res.headline.floorNs).toBeGreaterThan(0);
  });
});
