/**
 * Code entry points a module states outside its instructions: function starts (symbols,
 * .eh_frame), the ELF entry point, DT_INIT/DT_FINI and the init/fini arrays ("strong" roots), and
 * code addresses stored in data: 8-byte words of the non-executable PT_LOADs and the addends of
 * R_X86_64_RELATIVE/IRELATIVE relocations (vtables, callback tables, switch tables; "pointers").
 *
 * Everything is read from the file image with bounds checks; malformed parts are skipped.
 */

import { goFunctionStarts } from "../elf/go-pclntab.ts";
import type { ElfFile } from "../elf/types.ts";
import { PF_X, PT_DYNAMIC, PT_LOAD } from "../elf/types.ts";

/** vaddr → true when it lies inside executable code. */
export type InCode = (vaddr: number) => boolean;

export interface CodeEntries {
  /** Sorted, unique: function starts, e_entry, DT_INIT, DT_FINI, init/fini/preinit array contents. */
  strong: Float64Array;
  /** Sorted, unique: code addresses found in data words and RELATIVE relocation addends (computed on first call). */
  pointers(): Float64Array;
}

const DT_NULL = 0;
const DT_RELA = 7;
const DT_RELASZ = 8;
const DT_INIT = 12;
const DT_FINI = 13;
const DT_INIT_ARRAY = 25;
const DT_FINI_ARRAY = 26;
const DT_INIT_ARRAYSZ = 27;
const DT_FINI_ARRAYSZ = 28;
const DT_PREINIT_ARRAY = 32;
const DT_PREINIT_ARRAYSZ = 33;
const R_X86_64_RELATIVE = 8;
const R_X86_64_IRELATIVE = 37;
/** Reading more than this many relocations or array slots is a malformed file: stop there. */
const MAX_ENTRIES = 1 << 24;

const u64 = (dv: DataView, o: number): number => dv.getUint32(o, true) + dv.getUint32(o + 4, true) * 0x1_0000_0000;

function sortedUnique(xs: number[]): Float64Array {
  const a = Float64Array.from(xs).sort();
  let n = 0;
  for (let i = 0; i < a.length; i++) if (i === 0 || a[i] !== a[n - 1]) a[n++] = a[i] as number;
  return a.slice(0, n);
}

/** DT_* values of the dynamic array (first occurrence), from the file image. */
function dynamicTags(elf: ElfFile, dv: DataView): Map<number, number> {
  const tags = new Map<number, number>();
  const seg = elf.segments.find((s) => s.type === PT_DYNAMIC);
  if (!seg) return tags;
  const end = Math.min(seg.offset + seg.filesz, elf.bytes.length);
  for (let o = seg.offset; o + 16 <= end; o += 16) {
    if (dv.getUint32(o + 4, true) !== 0) continue;
    const tag = dv.getUint32(o, true);
    if (tag === DT_NULL) break;
    if (!tags.has(tag)) tags.set(tag, u64(dv, o + 8));
  }
  return tags;
}

/** The 8-byte words of the array at [vaddr, vaddr + size) that point into code. */
function arrayWords(elf: ElfFile, dv: DataView, vaddr: number | undefined, size: number | undefined, out: number[]) {
  if (vaddr === undefined || size === undefined) return;
  const n = Math.min(Math.floor(size / 8), MAX_ENTRIES);
  const b = elf.bytesAt(vaddr, n * 8);
  if (b === null) return;
  const o = b.byteOffset - elf.bytes.byteOffset;
  for (let i = 0; i < n; i++) out.push(u64(dv, o + i * 8));
}

export function codeEntries(elf: ElfFile, inCode: InCode): CodeEntries {
  const dv = new DataView(elf.bytes.buffer, elf.bytes.byteOffset, elf.bytes.byteLength);
  const strong: number[] = elf.functions().map((f) => f.start);
  for (const start of goFunctionStarts(elf)) strong.push(start); // a stripped Go program's only function list
  strong.push(elf.entry);
  const tags = dynamicTags(elf, dv);
  for (const t of [DT_INIT, DT_FINI]) {
    const v = tags.get(t);
    if (v !== undefined) strong.push(v);
  }
  const arrays: number[] = [];
  arrayWords(elf, dv, tags.get(DT_INIT_ARRAY), tags.get(DT_INIT_ARRAYSZ), arrays);
  arrayWords(elf, dv, tags.get(DT_FINI_ARRAY), tags.get(DT_FINI_ARRAYSZ), arrays);
  arrayWords(elf, dv, tags.get(DT_PREINIT_ARRAY), tags.get(DT_PREINIT_ARRAYSZ), arrays);
  strong.push(...arrays);

  let pointers: Float64Array | null = null;
  return {
    strong: sortedUnique(strong.filter((v) => Number.isFinite(v) && v !== 0 && inCode(v))),
    pointers() {
      if (pointers === null) pointers = dataPointers(elf, dv, tags, inCode);
      return pointers;
    },
  };
}

/** Code addresses in the data words of non-executable PT_LOADs and in RELATIVE relocations. */
function dataPointers(elf: ElfFile, dv: DataView, tags: Map<number, number>, inCode: InCode): Float64Array {
  const pointers: number[] = [];
  // Aligned data words of the non-executable loaded file images.
  for (const seg of elf.segments) {
    if (seg.type !== PT_LOAD || (seg.flags & PF_X) !== 0) continue;
    const start = seg.offset + ((8 - (seg.vaddr % 8)) % 8);
    const end = Math.min(seg.offset + seg.filesz, elf.bytes.length);
    if (end - start < 8) continue;
    const at = elf.bytes.byteOffset + start;
    const words = Math.floor((end - start) / 8);
    if (at % 4 === 0) {
      // Fast path: a Uint32Array view (little-endian host, as x86-64 is).
      const u = new Uint32Array(elf.bytes.buffer, at, words * 2);
      for (let i = 0; i < u.length; i += 2) {
        if (u[i + 1] !== 0) continue; // code lies below 4 GiB in practice
        const v = u[i] as number;
        if (v !== 0 && inCode(v)) pointers.push(v);
      }
    } else {
      for (let o = start; o + 8 <= end; o += 8) {
        if (dv.getUint32(o + 4, true) !== 0) continue;
        const v = dv.getUint32(o, true);
        if (v !== 0 && inCode(v)) pointers.push(v);
      }
    }
  }
  // RELATIVE relocations (PIE/DSO: the file word is often 0 and the addend is the pointer).
  const rela = tags.get(DT_RELA);
  const relaSz = tags.get(DT_RELASZ);
  if (rela !== undefined && relaSz !== undefined) {
    const n = Math.min(Math.floor(relaSz / 24), MAX_ENTRIES);
    const b = elf.bytesAt(rela, n * 24);
    if (b !== null) {
      const o = b.byteOffset - elf.bytes.byteOffset;
      for (let i = 0; i < n; i++) {
        const type = dv.getUint32(o + i * 24 + 8, true);
        if (type !== R_X86_64_RELATIVE && type !== R_X86_64_IRELATIVE) continue;
        const addend = u64(dv, o + i * 24 + 16);
        if (inCode(addend)) pointers.push(addend);
      }
    }
  }
  return sortedUnique(pointers);
}
