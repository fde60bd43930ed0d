/**
 * Byte-level index of the places code may refer to other code: `call rel32` (e8), `jmp rel32`
 * (e9), `mov $imm32,%r32`/`push $imm32`/`movq $imm32,%r64` whose immediate is a code address
 * (non-PIE function pointers) and `lea disp32(%rip),%r` whose target is code (PIE function
 * pointers). Most hits are not instructions (the bytes sit inside other instructions or data):
 * the index only proposes; a reference counts once the decoder shows an instruction there, in
 * code already proven (see reach.ts).
 *
 * One pass over the bytes (memchr per opcode byte), then the references are chained into 64-byte
 * target buckets.
 */
import type { CodeView } from "./decode.ts";
import type { InCode } from "./entries.ts";

export const REF_CALL = 0; // e8 at `src`
export const REF_JMP = 1; // e9 at `src`
export const REF_IMM = 2; // imm32 field at `src` (the instruction ends at src + 4)
export const REF_LEA = 3; // rip-relative disp32 field at `src` (the instruction ends at src + 4)

export interface RefRange {
  view: CodeView;
  start: number; // vaddrs, [start, end)
  end: number;
}

const BUCKET = 64;

/** Opcode byte → what follows it (0: nothing of interest). */
const C_CALL = 1;
const C_JMP = 2;
const C_IMM1 = 3; // imm32 right after the opcode byte (b8+r, 68)
const C_MOVQ = 4; // c7 /0 register form: imm32 after the ModRM byte
const C_LEA = 5; // 8d with a rip-relative ModRM

function classes(imm: boolean, lea: boolean): Uint8Array {
  const t = new Uint8Array(256);
  t[0xe8] = C_CALL;
  t[0xe9] = C_JMP;
  if (imm) {
    for (let op = 0xb8; op <= 0xbf; op++) t[op] = C_IMM1;
    t[0x68] = C_IMM1;
    t[0xc7] = C_MOVQ;
  }
  if (lea) t[0x8d] = C_LEA;
  return t;
}

/** Little-endian int32 at bytes[q]. */
function i32(bytes: Uint8Array, q: number): number {
  return (
    (bytes[q] as number) |
    ((bytes[q + 1] as number) << 8) |
    ((bytes[q + 2] as number) << 16) |
    ((bytes[q + 3] as number) << 24)
  );
}

/** A growable typed column. */
class Column {
  a = new Float64Array(1 << 16);
  n = 0;
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
}

/**
 * Proposed references in view bytes [lo, hi) whose target is code, as (view offset * 4 + kind)
 * keys. Each opcode byte is found with Buffer.indexOf (memchr), not a JavaScript loop.
 */
function findRefs(
  view: CodeView,
  lo: number,
  hi: number,
  cls: Uint8Array,
  inCode: InCode,
  span: { lo: number; hi: number },
  out: Column,
): void {
  const { bytes, base } = view;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const topLo = Math.floor(span.lo / 2 ** 24);
  const topHi = Math.floor((span.hi - 1) / 2 ** 24);
  for (let op = 0; op < 256; op++) {
    const c = cls[op] as number;
    if (c === 0) continue;
    for (let p = buf.indexOf(op, lo); p >= 0 && p + 5 <= hi; p = buf.indexOf(op, p + 1)) {
      let q = p; // where the rel32/imm32/disp32 field or the opcode (call/jmp) is
      let k: number;
      if (c === C_CALL) k = REF_CALL;
      else if (c === C_JMP) k = REF_JMP;
      else if (c === C_IMM1) {
        // The immediate's top byte bounds it: skip values that cannot be code addresses.
        const top = bytes[p + 4] as number;
        if (top < topLo || top > topHi) continue;
        q = p + 1;
        k = REF_IMM;
      } else {
        const m = bytes[p + 1] as number;
        if (c === C_MOVQ) {
          // c7 /0: mov $imm32 to a register or memory; the immediate follows ModRM/SIB/disp.
          if ((m & 0x38) !== 0) continue;
          q = p + 1 + modrmBytes(bytes, p + 1);
          k = REF_IMM;
        } else {
          if ((m & 0xc7) !== 0x05) continue;
          q = p + 2;
          k = REF_LEA;
        }
        if (q + 4 > hi) continue;
      }
      const t = targetOf(bytes, base, q, k);
      if (t >= span.lo && t < span.hi && inCode(t)) out.push(q * 4 + k);
    }
  }
}

/** Bytes taken by the ModRM byte at bytes[p] with its SIB and displacement (64-bit addressing). */
function modrmBytes(bytes: Uint8Array, p: number): number {
  const m = bytes[p] as number;
  const mod = m >> 6;
  const rm = m & 7;
  if (mod === 3) return 1;
  let n = 1;
  if (rm === 4) {
    n++;
    if (mod === 0 && ((bytes[p + 1] as number) & 7) === 5) return n + 4;
  } else if (mod === 0 && rm === 5) return n + 4;
  return n + (mod === 1 ? 1 : mod === 2 ? 4 : 0);
}

/** Target vaddr of a reference of `kind` at view offset `q` (vaddr = base + q). */
function targetOf(bytes: Uint8Array, base: number, q: number, kind: number): number {
  if (kind === REF_CALL || kind === REF_JMP) return base + q + 5 + i32(bytes, q + 1);
  if (kind === REF_IMM) return i32(bytes, q) >>> 0;
  return base + q + 4 + i32(bytes, q);
}

export class RefIndex {
  /** Bucket of t is floor((t - lowest) / BUCKET); head[b] is its last reference, next[] chains. */
  private readonly lowest: number;
  private readonly head: Int32Array;
  private readonly next: Int32Array;
  /** Per reference: target (vaddr) and (view offset * 4 + kind) with the range's base. */
  private readonly tgt: Float64Array;
  private readonly key: Float64Array;
  private readonly base: Float64Array;

  constructor(ranges: readonly RefRange[], inCode: InCode, opts: { imm: boolean; lea: boolean }) {
    const cls = classes(opts.imm, opts.lea);
    const span = { lo: Math.min(...ranges.map((r) => r.start)), hi: Math.max(...ranges.map((r) => r.end)) };
    const found: Column[] = [];
    let n = 0;
    for (const r of ranges) {
      const keys = new Column();
      findRefs(r.view, r.start - r.view.base, r.end - r.view.base, cls, inCode, span, keys);
      found.push(keys);
      n += keys.n;
    }
    this.lowest = span.lo;
    this.head = new Int32Array(Math.max(0, Math.ceil((span.hi - span.lo) / BUCKET))).fill(-1);
    this.next = new Int32Array(n);
    this.tgt = new Float64Array(n);
    this.key = new Float64Array(n);
    this.base = new Float64Array(n);
    let i = 0;
    for (let ri = 0; ri < ranges.length; ri++) {
      const { bytes, base } = (ranges[ri] as RefRange).view;
      const keys = found[ri] as Column;
      for (let j = 0; j < keys.n; j++, i++) {
        const key = keys.a[j] as number;
        const k = key % 4;
        const t = targetOf(bytes, base, (key - k) / 4, k);
        const b = Math.floor((t - span.lo) / BUCKET);
        this.tgt[i] = t;
        this.key[i] = key;
        this.base[i] = base;
        this.next[i] = this.head[b] as number;
        this.head[b] = i;
      }
    }
  }

  get size(): number {
    return this.tgt.length;
  }

  private bucket(t: number): number {
    return Math.floor((t - this.lowest) / BUCKET);
  }

  /** The references proposed for target t: [src, kind] pairs. */
  refsTo(t: number): { src: number; kind: number }[] {
    const out: { src: number; kind: number }[] = [];
    const b = this.bucket(t);
    if (b < 0 || b >= this.head.length) return out;
    for (let i = this.head[b] as number; i >= 0; i = this.next[i] as number) {
      if (this.tgt[i] !== t) continue;
      const key = this.key[i] as number;
      const kind = key % 4;
      out.push({ src: (this.base[i] as number) + (key - kind) / 4, kind });
    }
    return out;
  }

  /** Bit mask (1 << REF_*) of the kinds of reference proposed for target t. */
  kindsTo(t: number): number {
    let m = 0;
    for (const r of this.refsTo(t)) m |= 1 << r.kind;
    return m;
  }

  /** The largest proposed target in [min, x], or -1. */
  targetAtOrBelow(x: number, min: number): number {
    const stop = Math.max(0, this.bucket(min));
    for (let b = Math.min(this.bucket(x), this.head.length - 1); b >= stop; b--) {
      let best = -1;
      for (let i = this.head[b] as number; i >= 0; i = this.next[i] as number) {
        const t = this.tgt[i] as number;
        if (t <= x && t >= min && t > best) best = t;
      }
      if (best >= 0) return best;
    }
    return -1;
  }
}
