/**
 * Module keys: the name of a module's plan file (sysi.h, MODULE KEY).
 *
 *   - the lowercase hex NT_GNU_BUILD_ID, "-" and the file's size in decimal bytes when the
 *     module has a build-id (a stripped copy keeps the build-id: the size tells them apart);
 *   - else "p" + 16 lowercase hex digits of FNV-1a 64 over
 *     realpath + "\n" + st_size + "\n" + st_mtime (decimal seconds).
 */
import { closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from "node:fs";
import type { ElfFile } from "./elf/types.ts";
import { FileError } from "./errors.ts";

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;

/** FNV-1a 64 of `bytes` (a string is hashed as its UTF-8 bytes). */
export function fnv1a64(bytes: Uint8Array | string): bigint {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  // Two 32-bit halves: BigInt per byte is slow on large inputs.
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < data.length; i++) {
    lo = (lo ^ (data[i] as number)) >>> 0;
    // (hi:lo) * 0x100000001b3 mod 2^64 = (hi:lo) * 0x1b3 + (lo << 40)
    const loMul = lo * 0x1b3;
    const carry = Math.floor(loMul / 0x1_0000_0000);
    const newLo = loMul >>> 0;
    const newHi = (Math.imul(hi, 0x1b3) + carry + ((lo << 8) >>> 0)) >>> 0;
    hi = newHi;
    lo = newLo;
  }
  return ((BigInt(hi) << 32n) | BigInt(lo)) & MASK64;
}

/** Reference implementation (BigInt), kept for tests. */
export function fnv1a64Slow(bytes: Uint8Array): bigint {
  let h = FNV_OFFSET;
  for (const b of bytes) h = ((h ^ BigInt(b)) * FNV_PRIME) & MASK64;
  return h;
}

/** Path-based key of a file without a build-id: "p" + FNV-1a 64 of realpath\nsize\nmtime. */
export function pathKey(realPath: string, size: number, mtimeSeconds: number | bigint): string {
  return `p${fnv1a64(`${realPath}\n${size}\n${mtimeSeconds}`).toString(16).padStart(16, "0")}`;
}

/** The key of a module with a build-id: "<build-id hex>-<file size>". */
export function buildIdKey(buildId: string, size: number): string {
  return `${buildId.toLowerCase()}-${size}`;
}

/** The module key of `path` (sysi.h MODULE KEY). Stats the file when the ELF has no build-id. */
export function moduleKey(path: string, elf: Pick<ElfFile, "buildId" | "bytes">): string {
  if (elf.buildId !== null && elf.buildId !== "") return buildIdKey(elf.buildId, elf.bytes.length);
  try {
    const real = realpathSync(path);
    const st = statSync(real, { bigint: true });
    return pathKey(real, Number(st.size), Number(st.mtimeNs / 1_000_000_000n));
  } catch (e) {
    throw new FileError("FILE_STAT", `cannot stat ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      cause: e,
    });
  }
}

/**
 * A file's identity for memos keyed by file (never for plan keys): realpath-independent
 * `dev:ino:size:mtimeNs:ctimeNs` of `path` (symlinks followed), or null when it cannot be
 * stat'ed. Any write to the file changes its ctime, which no utimes() can set back.
 */
export function fileIdentity(path: string): string | null {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return null;
  }
}

const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;

/** Exactly `len` bytes of `fd` at `pos`, or null at end of file / on a short read. */
export function preadExact(fd: number, len: number, pos: number): Uint8Array | null {
  const buf = new Uint8Array(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n <= 0) return null;
    got += n;
  }
  return buf;
}

/**
 * The NT_GNU_BUILD_ID of an ELF64 file from its PT_NOTE segments only, reading just the ELF
 * header, program headers and notes (not the whole file). Null when it cannot tell (not ELF64
 * LE, no PT_NOTE build-id, anything odd): the caller then reads the file with the ELF reader,
 * which also looks at note sections.
 */
export function quickBuildId(path: string): string | null {
  return quickModuleKey(path)?.buildId ?? null;
}

/** quickBuildId() with the file's size and the module key they make (null: read the file). */
export function quickModuleKey(path: string): { buildId: string; size: number; key: string } | null {
  let fd = -1;
  try {
    fd = openSync(path, "r");
    const size = fstatSync(fd).size;
    const eh = preadExact(fd, 64, 0);
    if (eh === null || eh[0] !== 0x7f || eh[1] !== 0x45 || eh[2] !== 0x4c || eh[3] !== 0x46) return null;
    if (eh[4] !== 2 || eh[5] !== 1) return null;
    const dv = new DataView(eh.buffer);
    const phoff = Number(dv.getBigUint64(32, true));
    const phentsize = dv.getUint16(54, true);
    const phnum = dv.getUint16(56, true);
    if (phentsize < 56 || phnum === 0 || phoff + phnum * phentsize > size) return null;
    const ph = preadExact(fd, phnum * phentsize, phoff);
    if (ph === null) return null;
    const pv = new DataView(ph.buffer);
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (pv.getUint32(o, true) !== PT_NOTE) continue;
      const off = Number(pv.getBigUint64(o + 8, true));
      const filesz = Number(pv.getBigUint64(o + 32, true));
      const a = Number(pv.getBigUint64(o + 48, true)) === 8 ? 8 : 4;
      if (filesz > 1 << 20 || off + filesz > size) continue;
      const notes = preadExact(fd, filesz, off);
      if (notes === null) continue;
      const nv = new DataView(notes.buffer);
      let p = 0;
      while (p + 12 <= filesz) {
        const namesz = nv.getUint32(p, true);
        const descsz = nv.getUint32(p + 4, true);
        const type = nv.getUint32(p + 8, true);
        const desc = Math.ceil((p + 12 + namesz) / a) * a;
        if (desc + descsz > filesz) break;
        if (type === NT_GNU_BUILD_ID && namesz === 4 && nv.getUint32(p + 12, true) === 0x0055_4e47 && descsz > 0) {
          const buildId = Buffer.from(notes.subarray(desc, desc + descsz)).toString("hex");
          return { buildId, size, key: buildIdKey(buildId, size) };
        }
        p = Math.ceil((desc + descsz) / a) * a;
      }
    }
    return null;
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

const PT_LOAD = 1;

/**
 * The file bytes behind each [vaddr, vaddr + len) of an ELF64 file, concatenated in order (what
 * the runtime finds in memory there before patching), reading only the program headers and
 * those ranges. Null when a range is not backed by one PT_LOAD's file image or the file cannot
 * be read.
 */
export function readModuleRanges(path: string, ranges: readonly { vaddr: number; len: number }[]): Uint8Array | null {
  let fd = -1;
  try {
    fd = openSync(path, "r");
    const eh = preadExact(fd, 64, 0);
    if (eh === null || eh[0] !== 0x7f || eh[1] !== 0x45 || eh[2] !== 0x4c || eh[3] !== 0x46 || eh[4] !== 2) return null;
    const dv = new DataView(eh.buffer);
    const phoff = Number(dv.getBigUint64(32, true));
    const phentsize = dv.getUint16(54, true);
    const phnum = dv.getUint16(56, true);
    if (phentsize < 56 || phnum === 0) return null;
    const ph = preadExact(fd, phnum * phentsize, phoff);
    if (ph === null) return null;
    const pv = new DataView(ph.buffer);
    const loads: { vaddr: number; offset: number; filesz: number }[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (pv.getUint32(o, true) !== PT_LOAD) continue;
      loads.push({
        offset: Number(pv.getBigUint64(o + 8, true)),
        vaddr: Number(pv.getBigUint64(o + 16, true)),
        filesz: Number(pv.getBigUint64(o + 32, true)),
      });
    }
    let total = 0;
    for (const r of ranges) total += r.len;
    const out = new Uint8Array(total);
    // Read in 64 KiB chunks (a plan's ranges are many and small, and mostly close together).
    const CHUNK = 1 << 16;
    const chunks = new Map<number, Uint8Array | null>();
    const chunk = (i: number): Uint8Array | null => {
      let c = chunks.get(i);
      if (c === undefined) {
        const buf = new Uint8Array(CHUNK);
        let got = 0;
        for (;;) {
          const n = readSync(fd, buf, got, CHUNK - got, i * CHUNK + got);
          if (n <= 0) break;
          got += n;
        }
        c = got > 0 ? buf.subarray(0, got) : null;
        chunks.set(i, c);
      }
      return c;
    };
    let at = 0;
    for (const r of ranges) {
      const seg = loads.find((l) => r.vaddr >= l.vaddr && r.vaddr + r.len <= l.vaddr + l.filesz);
      if (seg === undefined) return null;
      const off = seg.offset + (r.vaddr - seg.vaddr);
      for (let k = 0; k < r.len; k++) {
        const c = chunk(Math.floor((off + k) / CHUNK));
        const b = c?.[(off + k) % CHUNK];
        if (b === undefined) return null;
        out[at++] = b;
      }
    }
    return out;
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}
