/**
 * 1,000 mutated files from a fixed seed: parsing and every lazy accessor either succeed or
 * throw ElfError. Anything else (RangeError, TypeError, a hang) fails the test.
 */
import { describe, expect, it } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { buildElf } from "../../test/fixtures/elf-builder.ts";
import { ElfError } from "../errors.ts";
import { type ElfFile, fdeRanges, parseElf } from "./index.ts";

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const T = 0x401000;
const fixture = buildElf({
  text: new Uint8Array(256).fill(0x90),
  symbols: [
    { name: "a", value: T, size: 64 },
    { name: "b", value: T + 64, size: 64 },
    { name: "tbl", value: T + 200, size: 16, type: "object" },
  ],
  fdes: [
    { start: T, end: T + 64 },
    { start: T + 64, end: T + 192 },
  ],
  interpreter: "/lib64/ld-linux-x86-64.so.2",
  needed: ["libc.so.6"],
  buildId: "0123456789abcdef",
  data: new Uint8Array(32),
});
const bases: Uint8Array[] = [fixture];
for (const p of ["/usr/bin/true", ...(process.env.SYSI_FUZZ_FILES ?? "").split(":")]) {
  if (p && existsSync(p)) bases.push(new Uint8Array(readFileSync(p)));
}

const BOUNDARY = [
  0n,
  1n,
  0x7fn,
  0xffffn,
  0xffff_ffffn,
  1n << 32n,
  (1n << 53n) - 1n,
  1n << 53n,
  (1n << 64n) - 1n,
  1n << 63n,
];

function mutate(base: Uint8Array, rnd: () => number): Uint8Array {
  const int = (n: number) => Math.floor(rnd() * n);
  const b = base.slice();
  const dv = new DataView(b.buffer);
  const phoff = Number(dv.getBigUint64(32, true));
  const phnum = dv.getUint16(56, true);
  const shoff = Number(dv.getBigUint64(40, true));
  const shnum = dv.getUint16(60, true);
  const pick = (xs: number[]): number => xs[int(xs.length)] ?? 0;
  const big = () => (rnd() < 0.5 ? (BOUNDARY[int(BOUNDARY.length)] as bigint) : BigInt(int(b.length + 64)));
  const ops = 1 + int(3);
  for (let k = 0; k < ops; k++) {
    switch (int(9)) {
      case 0: // truncation
        return b.subarray(0, int(b.length));
      case 1: // byte flips in the file header and program headers
        for (let i = 0; i < 1 + int(8); i++) {
          const at = int(Math.min(b.length, phoff + phnum * 56));
          b[at] = (b[at] ?? 0) ^ (1 << int(8));
        }
        break;
      case 2: {
        // one header field
        const fields: [number, 1 | 2 | 8][] = [
          [4, 1],
          [5, 1],
          [18, 2],
          [32, 8],
          [56, 2],
          [40, 8],
          [60, 2],
          [62, 2],
          [54, 2],
          [58, 2],
          [24, 8],
        ];
        const [off, size] = fields[int(fields.length)] as [number, 1 | 2 | 8];
        const v = big();
        if (size === 1) dv.setUint8(off, Number(v & 0xffn));
        else if (size === 2) dv.setUint16(off, Number(v & 0xffffn), true);
        else dv.setBigUint64(off, v, true);
        break;
      }
      case 3: {
        // one program header field
        const o = phoff + int(phnum) * 56 + pick([0, 4, 8, 16, 32, 40, 48]);
        if (o + 8 <= b.length) dv.setBigUint64(o, big(), true);
        break;
      }
      case 4: {
        // overlapping segments: copy one header's vaddr/offset onto another
        const i = int(phnum);
        const j = int(phnum);
        dv.setBigUint64(phoff + j * 56 + 16, dv.getBigUint64(phoff + i * 56 + 16, true) + BigInt(int(3) * 0x800), true);
        if (rnd() < 0.5) dv.setBigUint64(phoff + j * 56 + 8, dv.getBigUint64(phoff + i * 56 + 8, true), true);
        break;
      }
      case 5: {
        // one section header field
        if (shnum === 0 || shoff + shnum * 64 > b.length) break;
        const o = shoff + int(shnum) * 64 + pick([0, 4, 8, 16, 24, 32, 40, 44, 56]);
        if (rnd() < 0.5) dv.setUint32(o, Number(big() & 0xffff_ffffn), true);
        else if (o + 8 <= b.length) dv.setBigUint64(o, big(), true);
        break;
      }
      case 6: // huge counts
        dv.setUint16(rnd() < 0.5 ? 56 : 60, 0xff00 + int(256), true);
        break;
      default: // random bytes anywhere (eh_frame, notes, dynamic, symbols, strings)
        for (let i = 0; i < 1 + int(64); i++) b[int(b.length)] = int(256);
    }
  }
  return b;
}

function exercise(elf: ElfFile): void {
  elf.symbols();
  const fns = elf.functions();
  for (const f of fns) if (!(f.end > f.start)) throw new Error("empty function range");
  fdeRanges(elf);
  elf.dataInText();
  for (const seg of elf.execSegments()) {
    const all = elf.bytesAt(seg.vaddr, seg.filesz);
    if (seg.filesz > 0 && (all === null || all.length !== seg.filesz)) throw new Error("exec segment not readable");
    const off = elf.vaddrToOffset(seg.vaddr);
    if (seg.filesz > 0 && off !== seg.offset) throw new Error("vaddrToOffset disagrees with the segment");
    elf.bytesAt(seg.vaddr + seg.filesz - 1, 2);
    elf.bytesAt(seg.vaddr - 1, 1);
  }
}

// SYSI_FUZZ_N / SYSI_FUZZ_SEED run a longer campaign locally; the defaults are what CI runs.
const N = Number(process.env.SYSI_FUZZ_N ?? 1000);
const SEED = Number(process.env.SYSI_FUZZ_SEED ?? 0x5eed_e1f0);

describe("fuzz", () => {
  it(`${N} mutated files parse or throw ElfError`, () => {
    const rnd = mulberry32(SEED);
    let parsed = 0;
    let rejected = 0;
    const other: string[] = [];
    for (let n = 0; n < N; n++) {
      const input = mutate(bases[n % bases.length] as Uint8Array, rnd);
      try {
        exercise(parseElf(input, null));
        parsed++;
      } catch (e) {
        // An ElfError with a cause is the reader's safety net catching a missed bounds check.
        if (e instanceof ElfError && e.cause === undefined) rejected++;
        else
          other.push(`#${n}: ${e instanceof Error ? `${e.name}: ${e.message} ${String(e.cause ?? "")}` : String(e)}`);
      }
    }
    expect(other).toEqual([]);
    // Both outcomes occur: the mutations reach past the header checks.
    expect(parsed).toBeGreaterThan(N / 10);
    expect(rejected).toBeGreaterThan(N / 10);
  });
});
