import { describe, expect, it } from "bun:test";
import { planModule } from "../../src/plan/composite.ts";
import { planToJson } from "../../src/plan/json.ts";
import type { PlanResult, SitePatch } from "../../src/strategy.ts";
import { SYS } from "../../src/syscalls/index.ts";
import { fakeModule, fakeStrategy, nullReader, twoByte } from "./fixtures.ts";

describe("planToJson", () => {
  it("renders sites with hex addresses, syscall names, every decision, and per-strategy stats", () => {
    const { elf, scan, sites } = fakeModule([SYS.read, SYS.write, null, SYS.exit_group], { uncertain: [2] });
    const p = fakeStrategy(
      "p",
      (s): PlanResult =>
        s.nr === SYS.write
          ? { reason: "window-too-short", detail: "3 bytes" }
          : {
              ...(twoByte(s, 0xe9, 0x00, "T1") as SitePatch),
              trampolines: [{ vaddr: 0x10000000 + s.vaddr * 2, code: new Uint8Array(5000), kind: "jump" }],
            },
    );
    const u = fakeStrategy("u", (s) => twoByte(s, 0x0f, 0x0b));
    const plan = planModule(
      elf,
      scan,
      [
        { strategy: p, options: {} },
        { strategy: u, options: {} },
      ],
      { checks: {} },
      { reader: nullReader },
    );
    const j = planToJson(plan);
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
    expect(j.format).toBe("sysi-plan");
    expect(j.chain).toEqual(["p", "u"]);
    expect(j.sites.map((s) => s.vaddr)).toEqual(sites.map((s) => `0x${s.vaddr.toString(16)}`));
    expect(j.sites.map((s) => s.name)).toEqual(["read", "write", null, "exit_group"]);
    expect(j.sites.map((s) => s.taken)).toEqual(["p", "u", null, "p"]);
    expect(j.sites[1]?.decisions).toEqual([
      { strategy: "p", ok: false, reason: "window-too-short", detail: "3 bytes" },
      { strategy: "u", ok: true, bytes: "0f0b", old: "0f05" },
    ]);
    expect(j.sites[0]?.decisions[0]).toEqual({
      strategy: "p",
      ok: true,
      tactic: "T1",
      bytes: "e900",
      old: "0f05",
      trampolines: 1,
    });
    expect(j.stats.strategies.p).toEqual({
      taken: 2,
      refused: 2,
      refusals: { "uncertain-site": 1, "window-too-short": 1 },
      tactics: { T1: 2 },
      trampolines: 2,
      // two 5000-byte trampolines at 0x1080200a and 0x10802034: both span pages 0x10802-0x10803.
      trampolinePages: 2,
      trampolineBytes: 10000,
      reported: {},
    });
    expect(j.stats.strategies.u?.taken).toBe(1);
    expect(j.stats.patched).toBe(3);
    expect(j.module.key).toBe(elf.buildId as string);
  });
});
