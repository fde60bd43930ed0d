/**
 * .eh_frame walker: yields the [pc_begin, pc_begin + pc_range) of every FDE.
 *
 * Robustness: every entry advances by at least 5 bytes (length 0 terminates), every read is
 * bounds-checked against the .eh_frame extent, CIEs are parsed once (cached by offset, including
 * failures), and any malformed entry stops the walk with a warning: FDEs already found are kept
 * (they are hints for decoding start points, never bytes), the rest is dropped.
 */
import type { ByteReader } from "./bin.ts";

export const DW_EH_PE_absptr = 0x00;
export const DW_EH_PE_uleb128 = 0x01;
export const DW_EH_PE_udata2 = 0x02;
export const DW_EH_PE_udata4 = 0x03;
export const DW_EH_PE_udata8 = 0x04;
export const DW_EH_PE_sleb128 = 0x09;
export const DW_EH_PE_sdata2 = 0x0a;
export const DW_EH_PE_sdata4 = 0x0b;
export const DW_EH_PE_sdata8 = 0x0c;
export const DW_EH_PE_pcrel = 0x10;
export const DW_EH_PE_datarel = 0x30;
export const DW_EH_PE_indirect = 0x80;
export const DW_EH_PE_omit = 0xff;

export interface EhFrameRegion {
  /** File offset of the first entry. */
  offset: number;
  /** Bytes available (the walk also stops at a zero terminator). */
  size: number;
  /** Link-time vaddr of `offset` (base for pcrel). */
  vaddr: number;
  /** Base for DW_EH_PE_datarel (the .eh_frame_hdr vaddr), null when unknown. */
  dataRel: number | null;
}

export interface EhFrameResult {
  /** Flat [start0, end0, start1, end1, …]. */
  ranges: number[];
  fdes: number;
  /** Null when the walk finished cleanly. */
  error: string | null;
}

/** A cursor over the bytes: `pos` advances as values are read; reads never pass `end`. */
class Cursor {
  pos = 0;
  end = 0;
  ok = true;
  constructor(readonly r: ByteReader) {}

  u8(): number {
    if (this.pos + 1 > this.end) return this.bad();
    return this.r.u8(this.pos++);
  }
  fixed(size: number, signed: boolean): number {
    if (this.pos + size > this.end) return this.bad();
    const p = this.pos;
    this.pos += size;
    const r = this.r;
    switch (size) {
      case 2: {
        const v = r.u16(p);
        return signed && v >= 0x8000 ? v - 0x10000 : v;
      }
      case 4:
        return signed ? r.i32(p) : r.u32(p);
      default:
        return signed ? r.i64(p) : r.u64(p);
    }
  }
  uleb(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) return this.bad();
      const b = this.r.u8(this.pos++);
      result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return result;
    }
    return this.bad();
  }
  sleb(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) return this.bad();
      const b = this.r.u8(this.pos++);
      result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return b & 0x40 ? result - mul : result;
    }
    return this.bad();
  }
  bad(): number {
    this.ok = false;
    this.pos = this.end;
    return Number.NaN;
  }

  /**
   * Reads a pointer with encoding `enc`. `fieldVaddr` is the vaddr of the field (for pcrel).
   * With `applyRel` false only the value format is used (pc_range). NaN when unsupported/bad.
   * DW_EH_PE_indirect is ignored (the address itself is what we want for pc ranges).
   */
  encoded(enc: number, fieldVaddr: number, dataRel: number | null, applyRel = true): number {
    if (enc === DW_EH_PE_omit) return Number.NaN;
    let v: number;
    switch (enc & 0x0f) {
      case DW_EH_PE_absptr:
      case DW_EH_PE_udata8:
        v = this.fixed(8, false);
        break;
      case DW_EH_PE_uleb128:
        v = this.uleb();
        break;
      case DW_EH_PE_udata2:
        v = this.fixed(2, false);
        break;
      case DW_EH_PE_udata4:
        v = this.fixed(4, false);
        break;
      case DW_EH_PE_sleb128:
        v = this.sleb();
        break;
      case DW_EH_PE_sdata2:
        v = this.fixed(2, true);
        break;
      case DW_EH_PE_sdata4:
        v = this.fixed(4, true);
        break;
      case DW_EH_PE_sdata8:
        v = this.fixed(8, true);
        break;
      default:
        return this.bad();
    }
    if (!applyRel) return v;
    switch (enc & 0x70) {
      case 0:
        return v;
      case DW_EH_PE_pcrel:
        return v + fieldVaddr;
      case DW_EH_PE_datarel:
        return dataRel === null ? Number.NaN : v + dataRel;
      default:
        return Number.NaN; // textrel/funcrel/aligned: not used on x86-64 Linux
    }
  }
}

interface Cie {
  fdeEnc: number;
  /** 'z' augmentation: FDEs carry an augmentation-data length to skip. */
  hasAugData: boolean;
}

/** Walks .eh_frame. Never throws for malformed input (RangeErrors would indicate a bug). */
export function walkEhFrame(r: ByteReader, region: EhFrameRegion): EhFrameResult {
  const ranges: number[] = [];
  let fdes = 0;
  const start = region.offset;
  const end = Math.min(region.offset + region.size, r.length);
  const cies = new Map<number, Cie | null>();
  const c = new Cursor(r);
  const toVaddr = region.vaddr - start;
  let pos = start;

  const parseCie = (at: number): Cie | null => {
    if (!(at >= start && at + 4 <= end)) return null;
    let len = r.u32(at);
    let hdr = 4;
    if (len === 0xffff_ffff) {
      if (at + 12 > end) return null;
      len = r.u64(at + 4);
      hdr = 12;
    }
    const body = at + hdr;
    const idSize = hdr === 12 ? 8 : 4;
    if (len < idSize + 1 || !(body + len <= end)) return null;
    const id = idSize === 4 ? r.u32(body) : r.u64(body);
    if (id !== 0) return null;
    c.pos = body + idSize;
    c.end = body + len;
    c.ok = true;
    const version = c.u8();
    if (version !== 1 && version !== 3 && version !== 4) return null;
    const augStart = c.pos;
    while (c.pos < c.end && r.u8(c.pos) !== 0) c.pos++;
    if (c.pos >= c.end) return null;
    const augEnd = c.pos;
    c.pos++;
    const aug0 = augEnd > augStart ? r.u8(augStart) : 0;
    // Old GCC "eh" augmentation: a pointer-sized word follows.
    if (aug0 === 0x65 /* e */ && augEnd - augStart >= 2 && r.u8(augStart + 1) === 0x68 /* h */) c.fixed(8, false);
    if (version === 4) {
      c.u8(); // address_size
      c.u8(); // segment_selector_size
    }
    c.uleb(); // code alignment
    c.sleb(); // data alignment
    if (version === 1) c.u8();
    else c.uleb(); // return address register
    let fdeEnc = DW_EH_PE_absptr;
    const hasAugData = aug0 === 0x7a; /* z */
    if (hasAugData) {
      const augLen = c.uleb();
      const augDataEnd = c.pos + augLen;
      if (!c.ok || !(augDataEnd <= c.end)) return null;
      for (let i = augStart + 1; i < augEnd && c.ok; i++) {
        const ch = r.u8(i);
        if (ch === 0x52 /* R */) fdeEnc = c.u8();
        else if (ch === 0x4c /* L */) c.u8();
        else if (ch === 0x50 /* P */) {
          const penc = c.u8();
          c.encoded(penc & 0x7f, 0, 0, false);
        } else if (ch !== 0x53 /* S */ && ch !== 0x42 /* B */ && ch !== 0x47 /* G */) break;
      }
      if (!c.ok) return null;
    } else if (augEnd > augStart && aug0 !== 0x65) {
      return null; // unknown augmentation without 'z': the FDE layout is unknowable
    }
    return { fdeEnc, hasAugData };
  };

  while (pos + 4 <= end) {
    let len = r.u32(pos);
    if (len === 0) break; // terminator
    let hdr = 4;
    if (len === 0xffff_ffff) {
      if (pos + 12 > end) return { ranges, fdes, error: `entry at offset 0x${pos.toString(16)} is truncated` };
      len = r.u64(pos + 4);
      hdr = 12;
    }
    const body = pos + hdr;
    const next = body + len;
    const idSize = hdr === 12 ? 8 : 4;
    if (!(next <= end) || len < idSize) {
      return { ranges, fdes, error: `entry at offset 0x${pos.toString(16)} extends past the end of .eh_frame` };
    }
    const id = idSize === 4 ? r.u32(body) : r.u64(body);
    if (id !== 0) {
      // FDE: the CIE pointer is relative to its own field.
      const ciePos = body - id;
      let cie = cies.get(ciePos);
      if (cie === undefined) {
        cie = parseCie(ciePos);
        cies.set(ciePos, cie);
      }
      if (cie === null) {
        return { ranges, fdes, error: `FDE at offset 0x${pos.toString(16)} has a bad CIE pointer` };
      }
      fdes++;
      c.pos = body + idSize;
      c.end = next;
      c.ok = true;
      const pcBegin = c.encoded(cie.fdeEnc, c.pos + toVaddr, region.dataRel);
      const pcRange = c.encoded(cie.fdeEnc & 0x0f, 0, null, false);
      if (!c.ok) return { ranges, fdes, error: `FDE at offset 0x${pos.toString(16)} is truncated` };
      const pcEnd = pcBegin + pcRange;
      if (pcRange > 0 && pcBegin >= 0 && Number.isSafeInteger(pcEnd)) ranges.push(pcBegin, pcEnd);
    }
    pos = next;
  }
  return { ranges, fdes, error: null };
}
