import { describe, expect, it } from "bun:test";
import type { ElfFile, FunctionRange } from "@sysi/core/elf";
import type { Site, SiteKind } from "@sysi/core/scan";
import { createInsnReader } from "@sysi/core/scan";
import { isRefusal, type PlanResult, type SiteContext } from "@sysi/core/strategy";
import { callRax, isMovRspRbp, subRspImm } from "../src/encode.ts";
import { planSite } from "../src/plan.ts";

const BASE = 0x1000;

/** A one-function module holding `hex` (spaces ignored) at BASE, decoded by core's reader. */
function fnContext(hex: string): { ctx: Pick<SiteContext, "functionInsns">; bytes: Uint8Array } {
  const bytes = Uint8Array.from(hex.replace(/\s+/g, "").match(/../g) ?? [], (h) => Number.parseInt(h, 16));
  const fn: FunctionRange = { start: BASE, end: BASE + bytes.length, name: "f", source: "symbol" };
  const elf = {
    bytes,
    execSegments: () => [{ vaddr: BASE, offset: 0, filesz: bytes.length, memsz: bytes.length }],
    functions: () => [fn],
  } as unknown as ElfFile;
  return { ctx: createInsnReader(elf), bytes };
}

function siteAt(bytes: Uint8Array, off: number, kind: SiteKind = "syscall", uncertain = false): Site {
  return {
    vaddr: BASE + off,
    offset: off,
    kind,
    length: 2,
    bytes: bytes.slice(off, off + 18),
    nr: null,
    function: "f",
    functionRange: { start: BASE, end: BASE + bytes.length },
    uncertain,
    straddlesPage: false,
  };
}

/** Plans the first `0f 05` of the function. */
function planFn(hex: string): PlanResult {
  const { ctx, bytes } = fnContext(hex);
  const off = bytes.findIndex((b, i) => b === 0x0f && bytes[i + 1] === 0x05);
  return planSite(siteAt(bytes, off), ctx);
}

function reason(r: PlanResult): string {
  return isRefusal(r) ? r.reason : "patch";
}

describe("planSite on function bytes", () => {
  const table: [string, string, string][] = [
    // b8 27 00 00 00 mov $39,%eax; 0f 05 syscall; c3 ret
    ["leaf wrapper, no stack use", "b8 27 00 00 00 0f 05 c3", "patch"],
    // 48 8b 4c 24 08 mov 8(%rsp),%rcx (positive: the caller's argument area)
    ["positive rsp displacement", "48 8b 4c 24 08 0f 05 c3", "patch"],
    // 48 89 44 24 f8 mov %rax,-8(%rsp): the slot call *%rax overwrites
    ["store at -8(%rsp)", "48 89 44 24 f8 0f 05 c3", "red-zone-in-use"],
    // 48 8b 44 24 e8 mov -24(%rsp),%rax after the syscall: red zone live across it
    ["load below rsp after the syscall", "0f 05 48 8b 44 24 e8 c3", "red-zone-in-use"],
    // 48 8d 7c 24 e8 lea -24(%rsp),%rdi: address of the red zone taken
    ["lea of the red zone", "48 8d 7c 24 e8 0f 05 c3", "red-zone-in-use"],
    // 48 83 ec 18 sub $24,%rsp; 48 89 04 24 mov %rax,(%rsp); 0f 05; 48 83 c4 18 add $24,%rsp
    ["allocated frame", "48 83 ec 18 48 89 04 24 0f 05 48 83 c4 18 c3", "patch"],
    // 55 push %rbp; 48 89 e5 mov %rsp,%rbp; 48 89 7d f8 mov %rdi,-8(%rbp); 0f 05; 5d pop; c3
    ["-O0 leaf: locals below rbp, no allocation", "55 48 89 e5 48 89 7d f8 0f 05 5d c3", "red-zone-in-use"],
    // 55; 48 89 e5; 48 83 ec 10 sub $16,%rsp; 48 89 7d f8 mov %rdi,-8(%rbp); 0f 05; c9 leave; c3
    ["-O0 with sub: locals inside the frame", "55 48 89 e5 48 83 ec 10 48 89 7d f8 0f 05 c9 c3", "patch"],
    // same with 48 89 7d e8 mov %rdi,-24(%rbp): deeper than the 16 allocated
    ["-O0 with sub: access below the frame", "55 48 89 e5 48 83 ec 10 48 89 7d e8 0f 05 c9 c3", "red-zone-in-use"],
    // 55; 48 89 e5; 53 push %rbx; 48 8b 5d f8 mov -8(%rbp),%rbx (the pushed rbx); 0f 05; 5b; 5d; c3
    ["rbp access to a register pushed after the frame", "55 48 89 e5 53 48 8b 5d f8 0f 05 5b 5d c3", "patch"],
    // 48 8b 45 f0 mov -16(%rbp),%rax with rbp a general register (no mov %rsp,%rbp)
    ["rbp as a general register", "48 8b 45 f0 0f 05 c3", "patch"],
  ];
  for (const [name, hex, want] of table) {
    it(`${name} → ${want}`, () => {
      expect(reason(planFn(hex))).toBe(want);
    });
  }

  it("writes ff d0 over exactly the 2 site bytes, checking 0f 05", () => {
    const r = planFn("b8 27 00 00 00 0f 05 c3");
    expect(isRefusal(r)).toBe(false);
    if (isRefusal(r)) return;
    expect(r.patch.vaddr).toBe(BASE + 5);
    expect([...r.patch.old]).toEqual([0x0f, 0x05]);
    expect([...r.patch.bytes]).toEqual([0xff, 0xd0]);
    expect(r.trampolines ?? []).toEqual([]);
  });

  it("names the offending instruction in the refusal detail", () => {
    const r = planFn("48 89 44 24 f8 0f 05 c3");
    expect(isRefusal(r) && r.detail).toBe("mov -8(%rsp) at 0x1000");
  });
});

describe("planSite refusals before the analysis", () => {
  const { ctx, bytes } = fnContext("0f 05 c3 0f 34 c3");
  const cases: [string, Site, string][] = [
    ["sysenter", siteAt(bytes, 3, "sysenter"), "not-syscall"],
    ["int 0x80", siteAt(bytes, 3, "int80"), "not-syscall"],
    ["uncertain site", siteAt(bytes, 0, "syscall", true), "uncertain-site"],
    ["bytes that are not 0f 05", siteAt(bytes, 3, "syscall"), "unexpected-bytes"],
  ];
  for (const [name, site, want] of cases) {
    it(`${name} → ${want}`, () => {
      expect(reason(planSite(site, ctx))).toBe(want);
    });
  }

  it("refuses a site outside any known function", () => {
    const site = siteAt(bytes, 0);
    expect(reason(planSite(site, { functionInsns: () => null }))).toBe("red-zone-unknown-function");
  });
});

describe("encoders", () => {
  it("callRax is ff d0", () => {
    expect([...callRax()]).toEqual([0xff, 0xd0]);
  });

  const subs: [string, number | null][] = [
    ["48 83 ec 18", 24], // sub $0x18,%rsp
    ["48 81 ec 00 01 00 00", 256], // sub $0x100,%rsp
    ["48 83 c4 18", null], // add $0x18,%rsp
    ["48 83 ed 18", null], // sub $0x18,%rbp
  ];
  for (const [hex, want] of subs) {
    it(`subRspImm(${hex}) = ${want}`, () => {
      const b = Uint8Array.from(hex.split(" "), (h) => Number.parseInt(h, 16));
      expect(subRspImm(b)).toBe(want);
    });
  }

  it("recognises both encodings of mov %rsp,%rbp", () => {
    expect(isMovRspRbp(Uint8Array.of(0x48, 0x89, 0xe5))).toBe(true);
    expect(isMovRspRbp(Uint8Array.of(0x48, 0x8b, 0xec))).toBe(true);
    expect(isMovRspRbp(Uint8Array.of(0x48, 0x89, 0xec))).toBe(false); // mov %rbp,%rsp
  });
});
