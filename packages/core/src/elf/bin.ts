/**
 * Bounds-checked little-endian reads over a Uint8Array (no copy). Callers check `has(off, size)`
 * before reading; the read methods themselves still go through DataView, which throws RangeError
 * on a bug, and parseElf turns any such RangeError into an ElfError.
 */
import { ElfError } from "../errors.ts";

const TWO32 = 0x1_0000_0000;
/** Largest high word of a u64 that still gives a safe integer. */
const MAX_SAFE_HI = 0x1f_ffff;

export class ByteReader {
  readonly bytes: Uint8Array;
  readonly dv: DataView;
  readonly length: number;
  /** A Buffer view of the same memory (no copy), for native string decoding. */
  private readonly buf: Buffer;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.length = bytes.byteLength;
  }

  /** [off, off+size) lies inside the buffer. Safe for any numbers (NaN/Infinity/negatives → false). */
  has(off: number, size: number): boolean {
    return off >= 0 && size >= 0 && off <= this.length && size <= this.length - off;
  }

  u8(off: number): number {
    return this.dv.getUint8(off);
  }
  u16(off: number): number {
    return this.dv.getUint16(off, true);
  }
  u32(off: number): number {
    return this.dv.getUint32(off, true);
  }
  i32(off: number): number {
    return this.dv.getInt32(off, true);
  }
  /** Unsigned 64-bit value; Infinity when above Number.MAX_SAFE_INTEGER (so `has` rejects it). */
  u64(off: number): number {
    const lo = this.dv.getUint32(off, true);
    const hi = this.dv.getUint32(off + 4, true);
    return hi > MAX_SAFE_HI ? Number.POSITIVE_INFINITY : hi * TWO32 + lo;
  }
  /** Signed 64-bit value; ±Infinity when outside the safe-integer range. */
  i64(off: number): number {
    const lo = this.dv.getUint32(off, true);
    const hi = this.dv.getInt32(off + 4, true);
    if (hi > MAX_SAFE_HI) return Number.POSITIVE_INFINITY;
    if (hi < -MAX_SAFE_HI - 1) return Number.NEGATIVE_INFINITY;
    return hi * TWO32 + lo;
  }

  /** NUL-terminated string starting at off, not reading past `end` (exclusive); null if no NUL before end. */
  cstr(off: number, end: number): string | null {
    const limit = Math.min(end, this.length);
    if (!(off >= 0) || off >= limit) return null;
    const nul = this.bytes.indexOf(0, off);
    if (nul < 0 || nul >= limit) return null;
    return this.text(off, nul);
  }

  /** Bytes [start, end) as UTF-8 (names are ASCII in practice; invalid bytes become U+FFFD). */
  text(start: number, end: number): string {
    return this.buf.toString("utf8", start, end);
  }
}

/**
 * A string table (.strtab, .dynstr, .shstrtab) with O(log n) lookups: the NUL positions are
 * indexed once (O(size)), so a hostile table without NULs cannot make each lookup scan it again.
 */
export class StringTable {
  private nuls: Uint32Array | null = null;
  constructor(
    private readonly r: ByteReader,
    readonly offset: number,
    readonly end: number,
  ) {}

  /** The string at table-relative `rel`, or null when out of range / unterminated. */
  get(rel: number): string | null {
    const abs = this.offset + rel;
    if (!(rel >= 0) || abs >= this.end) return null;
    const nuls = this.index();
    let lo = 0;
    let hi = nuls.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((nuls[mid] as number) < abs) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= nuls.length) return null;
    return this.r.text(abs, nuls[lo] as number);
  }

  private index(): Uint32Array {
    if (this.nuls !== null) return this.nuls;
    const b = this.r.bytes;
    let out = new Uint32Array(1024);
    let n = 0;
    let p = b.indexOf(0, this.offset);
    while (p >= 0 && p < this.end) {
      if (n === out.length) {
        const grown = new Uint32Array(out.length * 2);
        grown.set(out);
        out = grown;
      }
      out[n++] = p;
      p = b.indexOf(0, p + 1);
    }
    this.nuls = out.subarray(0, n);
    return this.nuls;
  }
}

/** Throws ElfError(code, message[: path]). */
export function fail(code: string, message: string, path: string | null): never {
  throw new ElfError(code, path ? `${message}: ${path}` : message);
}
