/**
 * Certainty of sites outside every known function (reach.ts through scanElf), on small ELF files
 * with no symbols and no .eh_frame: only the entry point, code pointers in data and references
 * from proven code can make such a site certain.
 */
import { describe, expect, it } from "bun:test";
import { buildElf } from "../../test/fixtures/elf-builder.ts";
import { parseElf } from "../elf/reader.ts";
import { SYS } from "../syscalls/index.ts";
import { REF_CALL, REF_IMM, REF_JMP, RefIndex } from "./refs.ts";
import { reachStats, scanElf, uncertainReason } from "./scan.ts";
import type { ScanResult, Site } from "./types.ts";

const BASE = 0x401000;
const hex = (s: string) => (s.match(/[0-9a-f]{2}/g) ?? []).map((h) => Number.parseInt(h, 16));
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** Text assembled at fixed offsets; gaps are int3 padding. */
function text(parts: [offset: number, bytes: number[]][], size = 0x80): Uint8Array {
  const t = new Uint8Array(size).fill(0xcc);
  for (const [at, b] of parts) t.set(b, at);
  return t;
}
/** call rel32 at `at` to `to` (text offsets). */
const call = (at: number, to: number) => [0xe8, ...le32(to - (at + 5))];
// Hand-encoded sequences (disassembly in the comments).
const GETPID = hex("b8 27 00 00 00 0f 05 c3"); // mov $0x27,%eax; syscall; ret
const HLT = 0xf4; // hlt
const FAKE = hex("90 90 0f 05 90 90"); // nop; nop; "syscall"; nop; nop — bytes nothing reaches

async function scan(t: Uint8Array, opts: { data?: Uint8Array; reach?: boolean } = {}): Promise<ScanResult> {
  return scanElf(parseElf(buildElf({ text: t, data: opts.data })), { reach: opts.reach });
}
const at = (r: ScanResult, off: number): Site | undefined => r.sites.find((s) => s.vaddr === BASE + off);

describe("certainty outside known functions", () => {
  // _start: call f; hlt | fake blob | f: mov $0x27,%eax; syscall; ret
  const layout = text([
    [0x00, [...call(0x00, 0x20), HLT]],
    [0x06, FAKE],
    [0x20, GETPID],
  ]);

  it("a syscall reached through a call from the entry point is certain; an unreachable one is not", async () => {
    const r = await scan(layout);
    // Both are sites (a linear sweep decodes both, as objdump -d does) …
    expect(r.sites.map((s) => s.vaddr - BASE)).toEqual([0x08, 0x25]);
    // … but only the one the entry point reaches is proven code.
    const real = at(r, 0x25) as Site;
    expect(real).toMatchObject({ uncertain: false, nr: SYS.getpid, function: null, functionRange: null });
    expect(uncertainReason(real)).toBeNull();
    const fake = at(r, 0x08) as Site;
    expect(fake.uncertain).toBe(true);
    expect(uncertainReason(fake)).toBe("gap-sweep");
    expect(r.stats.uncertain).toBe(1);
    expect(reachStats(r)?.decodedInsns).toBeGreaterThan(0);
  });

  it("without the analysis every gap site stays uncertain", async () => {
    const r = await scan(layout, { reach: false });
    expect(r.sites.map((s) => [s.vaddr - BASE, s.uncertain, uncertainReason(s)])).toEqual([
      [0x08, true, "gap-sweep"],
      [0x25, true, "gap-sweep"],
    ]);
    expect(reachStats(r)).toBeNull();
  });

  it("follows calls transitively (entry → f1 → f2)", async () => {
    const t = text([
      [0x00, [...call(0x00, 0x10), HLT]],
      [0x10, [...call(0x10, 0x30), 0xc3]], // f1: call f2; ret
      [0x30, GETPID], // f2
    ]);
    const r = await scan(t);
    expect(r.sites.map((s) => [s.vaddr - BASE, s.uncertain])).toEqual([[0x35, false]]);
  });

  it("does not follow a call that proven code never makes", async () => {
    // _start: hlt. f calls g, but nothing reaches f: g's syscall has no proof.
    const t = text([
      [0x00, [HLT]],
      [0x10, [...call(0x10, 0x30), 0xc3]],
      [0x30, GETPID],
    ]);
    const r = await scan(t);
    expect(r.sites.map((s) => [s.vaddr - BASE, s.uncertain, uncertainReason(s)])).toEqual([[0x35, true, "gap-sweep"]]);
  });

  it("takes code pointers stored in data as entries", async () => {
    const t = text([
      [0x00, [HLT]],
      [0x10, GETPID],
    ]);
    const ptr = new Uint8Array(16);
    new DataView(ptr.buffer).setBigUint64(8, BigInt(BASE + 0x10), true);
    const withPtr = await scan(t, { data: ptr });
    expect(withPtr.sites.map((s) => [s.vaddr - BASE, s.uncertain])).toEqual([[0x15, false]]);
    const without = await scan(t, { data: new Uint8Array(16) });
    expect(without.sites.map((s) => [s.vaddr - BASE, s.uncertain])).toEqual([[0x15, true]]);
  });

  it("takes an address loaded by proven code (mov $f,%edi) as an entry", async () => {
    // _start: mov $f,%edi; call *%rdi; hlt
    const t = text([
      [0x00, [0xbf, ...le32(BASE + 0x20), 0xff, 0xd7, HLT]],
      [0x20, GETPID],
    ]);
    const r = await scan(t);
    expect(r.sites.map((s) => [s.vaddr - BASE, s.uncertain])).toEqual([[0x25, false]]);
  });

  it("proves nothing from a traversal that runs into invalid bytes", async () => {
    // f: mov $0x27,%eax; syscall; (bad) — 06 is invalid in 64-bit mode: f is not what it seems.
    const t = text([
      [0x00, [...call(0x00, 0x20), HLT]],
      [0x20, [...GETPID.slice(0, 7), 0x06]],
    ]);
    const r = await scan(t);
    expect(r.sites.map((s) => [s.vaddr - BASE, s.uncertain, uncertainReason(s)])).toEqual([[0x25, true, "gap-sweep"]]);
  });
});

describe("RefIndex", () => {
  it("proposes call/jmp rel32 targets and mov-immediate code addresses, by target", () => {
    const t = text([
      [0x00, call(0x00, 0x40)], // call 0x40
      [0x05, [0xe9, ...le32(0x40 - 0x0a)]], // jmp 0x40
      [0x0a, [0x48, 0xc7, 0x40, 0x08, ...le32(BASE + 0x40)]], // movq $0x401040,0x8(%rax)
      [0x12, [0xe8, ...le32(0x7fff0000)]], // call far outside the code: not proposed
    ]);
    const view = { bytes: t, base: BASE };
    const range = { view, start: BASE, end: BASE + t.length };
    const idx = new RefIndex([range], (v) => v >= range.start && v < range.end, { imm: true, lea: false });
    expect(idx.refsTo(BASE + 0x40).sort((a, b) => a.src - b.src)).toEqual([
      { src: BASE + 0x00, kind: REF_CALL },
      { src: BASE + 0x05, kind: REF_JMP },
      { src: BASE + 0x0e, kind: REF_IMM },
    ]);
    expect(idx.targetAtOrBelow(BASE + 0x7f, BASE)).toBe(BASE + 0x40);
    expect(idx.targetAtOrBelow(BASE + 0x3f, BASE)).toBe(-1);
  });
});
