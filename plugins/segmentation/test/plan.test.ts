import { describe, expect, it } from "bun:test";
import type { ElfFile, FunctionRange } from "@sysi/core/elf";
import type { Site } from "@sysi/core/scan";
import { createInsnReader } from "@sysi/core/scan";
import { isRefusal, type PlanResult, type SiteContext } from "@sysi/core/strategy";
import { farPointerAt, page0Pattern } from "../src/encode.ts";
import { checkOptions, MAX_NR, planSite, type Variant } from "../src/plan.ts";

const BASE = 0x1000;

function plan(hex: string, nr: number | null, variant: Variant = "even", kind: Site["kind"] = "syscall"): PlanResult {
  const bytes = Uint8Array.from(hex.replace(/\s+/g, "").match(/../g) ?? [], (h) => Number.parseInt(h, 16));
  const fn: FunctionRange = { start: BASE, end: BASE + bytes.length, name: "f", source: "symbol" };
  const elf = {
    bytes,
    execSegments: () => [{ vaddr: BASE, offset: 0, filesz: bytes.length, memsz: bytes.length }],
    functions: () => [fn],
  } as unknown as ElfFile;
  const ctx: Pick<SiteContext, "functionInsns"> = createInsnReader(elf);
  const off = bytes.findIndex((b, i) => b === 0x0f && bytes[i + 1] === 0x05);
  const site: Site = {
    vaddr: BASE + off,
    offset: off,
    kind,
    length: 2,
    bytes: bytes.slice(off, off + 18),
    nr,
    function: "f",
    functionRange: { start: BASE, end: BASE + bytes.length },
    uncertain: false,
    straddlesPage: false,
  };
  return planSite(site, ctx, variant);
}

const reason = (r: PlanResult) => (isRefusal(r) ? r.reason : `patch ${r.tactic}`);

describe("planSite", () => {
  // b8 6e 00 00 00 mov $110,%eax; 0f 05 syscall; c3 ret
  const LEAF = (nr: number) =>
    `b8 ${(nr & 0xff).toString(16).padStart(2, "0")} ${(nr >> 8).toString(16).padStart(2, "0")} 00 00 0f 05 c3`;
  const table: [string, string, number | null, Variant, string][] = [
    ["even number", LEAF(110), 110, "even", "patch lcall-even"],
    ["odd number", LEAF(39), 39, "even", "odd-number"],
    ["odd number under any", LEAF(39), 39, "any", "odd-number"],
    ["unknown number", "48 89 f8 0f 05 c3", null, "even", "number-unknown"],
    ["unknown number under any", "48 89 f8 0f 05 c3", null, "any", "patch lcall-any"],
    ["clone (even, needs its own stack)", LEAF(56), 56, "even", "in-context-call"],
    ["vfork", LEAF(58), 58, "any", "in-context-call"],
    ["last number inside page 0", LEAF(MAX_NR), MAX_NR, "even", "patch lcall-even"],
    ["past page 0", LEAF(MAX_NR + 2), MAX_NR + 2, "even", "number-outside-page0"],
    // 48 89 44 24 f8 mov %rax,-8(%rsp): the slot the far call's frame overwrites
    ["red zone in use", "b8 6e 00 00 00 48 89 44 24 f8 0f 05 c3", 110, "even", "red-zone-in-use"],
  ];
  for (const [name, hex, nr, variant, want] of table) {
    it(`${name} → ${want}`, () => expect(reason(plan(hex, nr, variant))).toBe(want));
  }

  it("writes ff 18 over exactly the syscall, flagging unknown numbers for a gadget", () => {
    const r = plan("48 89 f8 0f 05 c3", null, "any");
    if (isRefusal(r)) throw new Error(r.reason);
    expect([...r.patch.bytes]).toEqual([0xff, 0x18]);
    expect([...r.patch.old]).toEqual([0x0f, 0x05]);
    expect(r.aux).toEqual([0n, 1n]);
    const e = plan(LEAF(110), 110);
    if (isRefusal(e)) throw new Error(e.reason);
    expect(e.aux).toEqual([0n, 0n]);
  });

  it("refuses sysenter and int 0x80", () => {
    expect(reason(plan(LEAF(110), 110, "even", "sysenter"))).toBe("not-syscall");
  });

  it("takes exactly the numbers whose far pointer in page 0 is selector 0x33", () => {
    const page = page0Pattern();
    for (let nr = 0; nr < 4200; nr++) {
      const fp = farPointerAt(page, nr);
      const ok = fp !== null && fp.selector === 0x33 && nr !== 56 && nr !== 58;
      expect(isRefusal(plan(LEAF(nr & 0xffff), nr))).toBe(!ok);
    }
  });

  it("checks its options", () => {
    expect(checkOptions({})).toBeNull();
    expect(checkOptions({ variant: "any" })).toBeNull();
    expect(checkOptions({ variant: "odd" })).toContain("unknown variant");
    expect(checkOptions({ pages: "2" })).toContain("unknown option");
  });
});
