/**
 * The ud2 strategy's default trap: the rule (a table of measured costs → variant), the probe's
 * cache (measured once per host, reused, re-measured when unreadable), and the plans following
 * the default (the variant is in planVersion, part of the plan-cache key).
 */
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Site } from "@sysi/core/scan";
import type { SitePatch } from "@sysi/core/strategy";
import type { Ud2Variant } from "../src/encode.ts";
import factory from "../src/index.ts";
import { chooseTrap, defaultTrap, type TrapCosts, trapCachePath } from "../src/trap-choice.ts";

const WORK = mkdtempSync(join(tmpdir(), "sysi-trap-choice-"));
afterAll(() => rmSync(WORK, { recursive: true, force: true }));

const costs = (ud2: number, int3: number, hlt: number, int4: number): TrapCosts => ({ ud2, int3, hlt, int4 });

describe("chooseTrap", () => {
  const table: [string, TrapCosts, Ud2Variant][] = [
    ["an Intel VM (ud2 10.5 µs, the others 1.15–1.45 µs): int $4", costs(10500, 1150, 1450, 1300), "int4"],
    ["this AMD VM (ud2 7.3 µs, others 2.3–2.4 µs): int $4", costs(7330, 2350, 2430, 2330), "int4"],
    ["all alike: ud2 (SIGILL is never a real crash)", costs(1000, 1000, 1000, 1000), "ud2"],
    ["int $4 cheaper by less than the margin: ud2", costs(1000, 500, 1000, 950), "ud2"],
    ["hlt cheaper than int $4 by more than the margin: hlt", costs(5000, 500, 1000, 2000), "hlt"],
    ["hlt a little cheaper than int $4: int $4", costs(5000, 500, 1000, 1050), "int4"],
    ["int3 far the cheapest: never int3", costs(5000, 10, 5000, 5000), "ud2"],
  ];
  for (const [name, c, want] of table)
    it(`picks ${want} for ${name}`, () => {
      const r = chooseTrap(c);
      expect(r.variant).toBe(want);
      expect(r.reason).toContain("int3 is left to debuggers");
    });
});

describe("defaultTrap", () => {
  const env = { ...process.env, SYSI_CACHE_DIR: join(WORK, "cache") };

  it("measures once per host, caches the costs under the sysi cache, and reuses them", () => {
    const first = defaultTrap(env);
    if (first.costs === null) throw new Error(`not measured: ${first.reason}`);
    expect(first.cached).toBe(false);
    expect(readdirSync(join(WORK, "cache", "trap-choice"))).toEqual([trapCachePath(env).split("/").pop() ?? ""]);
    // the choice follows from its own measurement, and each round trip is a real kernel trip
    expect(chooseTrap(first.costs).variant).toBe(first.variant);
    for (const v of Object.values(first.costs)) expect(v).toBeGreaterThan(100);
    const again = defaultTrap(env);
    expect(again).toMatchObject({ cached: true, variant: first.variant, costs: first.costs });
  });

  it("takes the cached costs as they are, and measures again when the file is unreadable", () => {
    const path = trapCachePath(env);
    writeFileSync(path, JSON.stringify(costs(9000, 100, 3000, 1000)));
    expect(defaultTrap(env)).toMatchObject({ cached: true, variant: "int4" });
    writeFileSync(path, '{"ud2":"fast"}');
    const r = defaultTrap(env);
    expect(r.cached).toBe(false);
    expect(r.costs).not.toBeNull();
  });
});

describe("the strategy", () => {
  const site: Site = {
    vaddr: 0x1000,
    offset: 0x1000,
    kind: "syscall",
    length: 2,
    bytes: Uint8Array.of(0x0f, 0x05),
    nr: 39,
    function: "f",
    functionRange: { start: 0xff0, end: 0x1010 },
    uncertain: false,
    straddlesPage: false,
  };
  const s = factory({ version: "0", includeDir: "/nonexistent" });
  const chosen = defaultTrap().variant;
  const want: Record<string, string> = { ud2: "0f0b", int3: "cc90", hlt: "f490", int4: "cd04" };
  const planned = (options: Record<string, string>) => {
    const r = s.planSite?.(site, { options } as never) as SitePatch;
    return Buffer.from(r.patch.bytes).toString("hex");
  };

  it("plans the host's default trap without a variant, and the named one with it", () => {
    expect(planned({})).toBe(want[chosen] ?? "");
    for (const v of ["ud2", "int3", "hlt", "int4"]) expect(planned({ variant: v })).toBe(want[v] ?? "");
  });

  it("names the default in planVersion (the plan-cache key) and lists it first", () => {
    expect(s.planVersion).toBe(`ud2-2/${chosen}`);
    expect(s.variants?.[0]?.name).toBe(chosen);
    expect(s.variants?.map((v) => v.name).sort()).toEqual(["hlt", "int3", "int4", "ud2"]);
  });
});
