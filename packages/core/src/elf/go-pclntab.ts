/**
 * Function starts from a Go program's pc-line table (`.gopclntab`). A stripped Go binary
 * (terraform) has no symbols and no .eh_frame, but the Go runtime needs this table for stack
 * traces and keeps it: its function table lists the entry of every function, which makes the
 * scanner's decoding start at real instruction boundaries (system-call sites in assembly
 * functions after int3 padding would otherwise be found by sweep only, and stay unpatched).
 *
 * Header (Go 1.18+: magic 0xfffffff0, 1.20+: 0xfffffff1; little-endian, ptrSize 8):
 *   0 magic u32 | 4 pad u16 | 6 minLC u8 | 7 ptrSize u8 | 8 nfunc | 16 nfiles | 24 textStart
 *   | 32 funcnameOffset | 40 cuOffset | 48 filetabOffset | 56 pctabOffset | 64 pclnOffset
 * then at pclnOffset, nfunc + 1 pairs { entryoff u32 (from textStart), funcoff u32 }.
 * Go 1.16/1.17 (0xfffffffa): no textStart, pclnOffset at 56, pairs of absolute { entry, funcoff }
 * as pointer-sized words. Older tables and anything out of bounds give no starts.
 */
import type { ElfFile } from "./types.ts";

const MAX_FUNCS = 1 << 22;

export function goFunctionStarts(elf: ElfFile): number[] {
  const sec = elf.sections.find((s) => s.name === ".gopclntab");
  if (sec === undefined || sec.size < 72 || sec.offset + sec.size > elf.bytes.length) return [];
  const b = elf.bytes;
  const dv = new DataView(b.buffer, b.byteOffset + sec.offset, sec.size);
  const u64 = (o: number) => dv.getUint32(o, true) + dv.getUint32(o + 4, true) * 0x1_0000_0000;
  const magic = dv.getUint32(0, true);
  if (dv.getUint8(7) !== 8) return [];
  const nfunc = u64(8);
  if (nfunc > MAX_FUNCS) return [];
  const out: number[] = [];
  if (magic === 0xfffffff0 || magic === 0xfffffff1) {
    const text = u64(24);
    const off = u64(64);
    if (off + nfunc * 8 > sec.size) return [];
    for (let i = 0; i < nfunc; i++) out.push(text + dv.getUint32(off + i * 8, true));
  } else if (magic === 0xfffffffa) {
    const off = u64(56);
    if (off + nfunc * 16 > sec.size) return [];
    for (let i = 0; i < nfunc; i++) out.push(u64(off + i * 16));
  }
  return out;
}
