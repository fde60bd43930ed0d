import { describe, expect, it } from "bun:test";
import { planModule } from "../../src/plan/composite.ts";
import { isRefusal, type SitePatch } from "../../src/strategy.ts";
import { fakeModule, fakeStrategy, nullReader, twoByte } from "./fixtures.ts";

const host = { checks: { page0: false, cc: true } };

describe("planModule", () => {
  it("asks every strategy in chain order and takes the first acceptance", () => {
    const { elf, scan, sites } = fakeModule([0, 1, 2, 3, 60]);
    const a = fakeStrategy("a", (s) =>
      s.nr !== null && s.nr % 2 === 1 ? { reason: "odd-nr" } : twoByte(s, 0xff, 0xd0, "A1"),
    );
    const b = fakeStrategy("b", (s) => twoByte(s, 0x0f, 0x0b));
    const plan = planModule(
      elf,
      scan,
      [
        { strategy: a, options: {} },
        { strategy: b, options: {} },
      ],
      host,
      { reader: nullReader },
    );
    expect(plan.chain).toEqual(["a", "b"]);
    expect(a.calls).toEqual(sites.map((s) => s.vaddr));
    expect(b.calls).toEqual(sites.map((s) => s.vaddr));
    expect(plan.sites.map((p) => p.taken)).toEqual(["a", "b", "a", "b", "a"]);
    for (const ps of plan.sites) {
      expect(ps.decisions.map((d) => d.strategy)).toEqual(["a", "b"]);
      expect(isRefusal(ps.decisions[1]?.result ?? { reason: "x" })).toBe(false);
    }
    expect(plan.stats).toEqual({
      sites: 5,
      patched: 5,
      unpatched: 0,
      byStrategy: { a: 3, b: 2 },
      refusals: { a: { "odd-nr": 2 }, b: {} },
      tactics: { a: { A1: 3 }, b: {} },
    });
    expect(plan.module.key).toBe(elf.buildId as string);
  });

  it("refuses uncertain sites itself, for every strategy, without asking", () => {
    const { elf, scan, sites } = fakeModule([0, 1, 2], { uncertain: [1] });
    const a = fakeStrategy("a", (s) => twoByte(s, 0x0f, 0x0b));
    const plan = planModule(elf, scan, [{ strategy: a, options: {} }], host, { reader: nullReader });
    expect(a.calls).toEqual([sites[0]?.vaddr as number, sites[2]?.vaddr as number]);
    expect(plan.sites[1]?.taken).toBeNull();
    expect(plan.sites[1]?.decisions).toEqual([{ strategy: "a", result: { reason: "uncertain-site" } }]);
    expect(plan.stats.unpatched).toBe(1);
    expect(plan.stats.refusals.a).toEqual({ "uncertain-site": 1 });
  });

  it("refuses every site of a strategy whose host requirement fails", () => {
    const { elf, scan } = fakeModule([0, 1]);
    const z = fakeStrategy("z", (s) => twoByte(s, 0xff, 0xd0), { requires: ["cc", "page0"] });
    const u = fakeStrategy("u", (s) => twoByte(s, 0x0f, 0x0b));
    const plan = planModule(
      elf,
      scan,
      [
        { strategy: z, options: {} },
        { strategy: u, options: {} },
      ],
      host,
      { reader: nullReader },
    );
    expect(z.calls).toEqual([]);
    expect(plan.sites.every((p) => p.taken === "u")).toBe(true);
    expect(plan.stats.refusals.z).toEqual({ "host-page0-unavailable": 2 });
    const ok = planModule(
      elf,
      scan,
      [{ strategy: z, options: {} }],
      { checks: { cc: true, page0: true } },
      { reader: nullReader },
    );
    expect(ok.stats.byStrategy.z).toBe(2);
  });

  it("refuses a patch that overlaps an earlier site's taken patch, and falls to the next option", () => {
    // mov(5)+syscall(2): the second site starts 7 bytes after the first.
    const { elf, scan } = fakeModule([0, 1]);
    // "wide" rewrites 8 bytes from the first site: covers the 5-byte mov of site 1 and its syscall's first byte.
    const wide = fakeStrategy("wide", (s) => {
      const old = elf.bytesAt(s.vaddr, 8);
      if (old === null) return { reason: "no-room" };
      return { patch: { vaddr: s.vaddr, old: old.slice(), bytes: new Uint8Array(8).fill(0x90) }, tactic: "w" };
    });
    const narrow = fakeStrategy("narrow", (s) => twoByte(s, 0x0f, 0x0b));
    const plan = planModule(
      elf,
      scan,
      [
        { strategy: wide, options: {} },
        { strategy: narrow, options: {} },
      ],
      host,
      {
        reader: nullReader,
      },
    );
    expect(plan.sites[0]?.taken).toBe("wide");
    expect(plan.sites[1]?.taken).toBeNull();
    const d1 = plan.sites[1]?.decisions ?? [];
    expect(d1.map((d) => (isRefusal(d.result) ? d.result.reason : "ok"))).toEqual([
      "no-room", // 8 bytes past site 1 run off the segment end
      "overlaps-previous-patch",
    ]);
  });

  it("refuses patches whose old bytes differ from the file, or that miss the site", () => {
    const { elf, scan } = fakeModule([0, 1, 2]);
    const liar = fakeStrategy("liar", (s): SitePatch | { reason: string } => {
      if (s.nr === 0)
        return { patch: { vaddr: s.vaddr, old: new Uint8Array([0x0f, 0x34]), bytes: new Uint8Array([1, 2]) } };
      if (s.nr === 1)
        return {
          patch: {
            vaddr: s.vaddr + 2,
            old: elf.bytesAt(s.vaddr + 2, 1)?.slice() ?? new Uint8Array(1),
            bytes: new Uint8Array([0xcc]),
          },
        };
      return { patch: { vaddr: s.vaddr, old: new Uint8Array([0x0f, 0x05]), bytes: new Uint8Array([1]) } };
    });
    const plan = planModule(elf, scan, [{ strategy: liar, options: {} }], host, { reader: nullReader });
    expect(plan.stats.refusals.liar).toEqual({ "old-bytes-mismatch": 1, "patch-misses-site": 1, "invalid-patch": 1 });
    expect(plan.stats.patched).toBe(0);
  });

  it("records a throwing planner as a refusal, passes options and host, and calls the module planner's finish", () => {
    const { elf, scan } = fakeModule([0, 1, 2]);
    const seen: { opts: Record<string, string>; host: unknown }[] = [];
    let finished: number[] = [];
    const s = fakeStrategy("s", () => ({ reason: "unused" }), {
      planModule: () => ({
        planSite(site, ctx) {
          seen.push({ opts: ctx.options, host: ctx.host });
          if (site.nr === 1) throw new Error("boom\nsecond line");
          return twoByte(site, 0x0f, 0x0b);
        },
        finish(_ctx, taken) {
          finished = taken.map((t) => t.site.nr ?? -1);
          for (const t of taken)
            t.patch.trampolines = [{ vaddr: 0x10000 + (t.site.nr ?? 0) * 16, code: new Uint8Array([0xc3]), kind: "k" }];
          // Returned numbers land in stats.reported (other fields are dropped).
          return { "virtual-pages": 2, note: "x" };
        },
      }),
    });
    const plan = planModule(elf, scan, [{ strategy: s, options: { variant: "int3" } }], host, { reader: nullReader });
    expect(seen[0]).toEqual({ opts: { variant: "int3" }, host });
    expect(plan.sites[1]?.decisions[0]?.result).toEqual({ reason: "planner-error", detail: "boom" });
    expect(finished).toEqual([0, 2]);
    expect(plan.stats.reported).toEqual({ s: { "virtual-pages": 2 } });
    expect(plan.trampolines.map((t) => [t.vaddr, t.strategy])).toEqual([
      [0x10000, "s"],
      [0x10020, "s"],
    ]);
  });

  it("gives sites back from finish to their fallback (contract 1.3), never a site without one", () => {
    const { elf, scan, sites } = fakeModule([0, 1, 2, 3]);
    let offered: { nr: number; fallback?: string }[] = [];
    let fallbackFinished: number[] = [];
    // a takes every site; b takes even numbers only, so sites 1 and 3 have no fallback
    const a = fakeStrategy("a", () => ({ reason: "unused" }), {
      planModule: () => ({
        planSite: (site) => twoByte(site, 0xff, 0xd0, "A1"),
        finish(_ctx, taken) {
          offered = taken.map((t) => ({ nr: t.site.nr ?? -1, ...(t.fallback ? { fallback: t.fallback } : {}) }));
          const v = (i: number) => sites[i]?.vaddr as number;
          return {
            "virtual-pages": 1,
            giveBack: [
              { vaddr: v(0), reason: "page-bound", detail: "too crowded" },
              { vaddr: v(1), reason: "page-bound" }, // no fallback: stays with a
              { vaddr: v(0), reason: "twice" }, // named twice: once is enough
              { vaddr: 0x12345, reason: "not-a-site" },
            ],
          };
        },
      }),
    });
    const b = fakeStrategy("b", () => ({ reason: "unused" }), {
      planModule: () => ({
        planSite: (site) => ((site.nr ?? 1) % 2 === 0 ? twoByte(site, 0x0f, 0x0b) : { reason: "odd" }),
        finish(_ctx, taken) {
          fallbackFinished = taken.map((t) => t.site.nr ?? -1);
        },
      }),
    });
    const plan = planModule(
      elf,
      scan,
      [
        { strategy: a, options: {} },
        { strategy: b, options: {} },
      ],
      host,
      { reader: nullReader },
    );
    expect(offered).toEqual([{ nr: 0, fallback: "b" }, { nr: 1 }, { nr: 2, fallback: "b" }, { nr: 3 }]);
    expect(plan.sites.map((p) => p.taken)).toEqual(["b", "a", "a", "a"]);
    expect(plan.sites[0]?.decisions[0]?.result).toEqual({ reason: "page-bound", detail: "too crowded" });
    expect(fallbackFinished).toEqual([0]); // b's finish sees the site it was given
    expect(plan.stats.byStrategy).toEqual({ a: 3, b: 1 });
    expect(plan.stats.refusals.a).toEqual({ "page-bound": 1 });
    expect(plan.stats.reported).toEqual({ a: { "virtual-pages": 1 } });
  });

  it("creates one module planner per module planned: its state never leaks into the next module", () => {
    const { elf, scan } = fakeModule([0, 1, 2]);
    let created = 0;
    // A planner that takes only the first site it sees in its module (state: `seen`).
    const firstOnly = fakeStrategy("first", () => ({ reason: "unused" }), {
      planModule: () => {
        created++;
        let seen = 0;
        return { planSite: (site) => (seen++ === 0 ? twoByte(site, 0x0f, 0x0b) : { reason: "not-first" }) };
      },
    });
    for (let round = 0; round < 2; round++) {
      const plan = planModule(elf, scan, [{ strategy: firstOnly, options: {} }], host, { reader: nullReader });
      expect(plan.sites.map((p) => p.taken)).toEqual(["first", null, null]);
    }
    expect(created).toBe(2);
  });

  it("refuses every site of a strategy whose planModule throws, and still asks the next one", () => {
    const { elf, scan } = fakeModule([0, 1]);
    const broken = fakeStrategy("broken", () => ({ reason: "unused" }), {
      planModule: () => {
        throw new Error("no space\nmore");
      },
    });
    const ok = fakeStrategy("ok", (site) => twoByte(site, 0x0f, 0x0b));
    const plan = planModule(
      elf,
      scan,
      [
        { strategy: broken, options: {} },
        { strategy: ok, options: {} },
      ],
      host,
      { reader: nullReader },
    );
    expect(plan.sites.map((p) => p.taken)).toEqual(["ok", "ok"]);
    expect(plan.stats.refusals.broken).toEqual({ "planner-error": 2 });
    expect(plan.sites[0]?.decisions[0]?.result).toEqual({ reason: "planner-error", detail: "no space" });
  });

  it("skips planModule for a strategy the host rules out", () => {
    const { elf, scan } = fakeModule([0]);
    let created = 0;
    const needsPage0 = fakeStrategy("needs", (site) => twoByte(site, 0x0f, 0x0b), {
      requires: ["page0"],
      planModule: () => {
        created++;
        return { planSite: (site) => twoByte(site, 0x0f, 0x0b) };
      },
    });
    const plan = planModule(
      elf,
      scan,
      [{ strategy: needsPage0, options: {} }],
      { checks: { page0: false } },
      {
        reader: nullReader,
      },
    );
    expect(created).toBe(0);
    expect(plan.stats.refusals.needs).toEqual({ "host-page0-unavailable": 1 });
  });

  it("gives every strategy its own copy of the site bytes", () => {
    const { elf, scan } = fakeModule([0, 1]);
    const scribbler = fakeStrategy("scribbler", (s) => {
      s.bytes[0] = 0xe9;
      s.bytes[1] = 0x00;
      return { reason: "no" };
    });
    const reader = fakeStrategy("reader", (s) =>
      s.bytes[0] === 0x0f && s.bytes[1] === 0x05 ? twoByte(s, 0x0f, 0x0b) : { reason: "unexpected-bytes" },
    );
    const plan = planModule(
      elf,
      scan,
      [
        { strategy: scribbler, options: {} },
        { strategy: reader, options: {} },
      ],
      host,
      { reader: nullReader },
    );
    expect(plan.stats.byStrategy.reader).toBe(2);
    expect(scan.sites.every((s) => s.bytes[0] === 0x0f && s.bytes[1] === 0x05)).toBe(true);
  });
});
