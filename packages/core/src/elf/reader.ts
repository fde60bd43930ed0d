/**
 * ELF64 x86-64 reader. parseElf() validates the file header and program headers eagerly (they
 * decide what the scanner reads), parses the section table, PT_INTERP, the dynamic section and
 * the build-id, and defers symbols, function ranges and data-in-text to first use.
 *
 * What rejects the file (ElfError) and what degrades (a warning, the part treated as absent):
 * - file header, program headers, PT_LOAD extents/congruence/overlap, PT_INTERP, PT_DYNAMIC and
 *   its strings: reject. The loader needs them, and the scanner reads code through PT_LOAD only,
 *   so they must be exact.
 * - section table (bad offset/count/entsize, a section's data past EOF, sizes > 2^53): degrade
 *   to `sections = []`. The kernel and ld.so never read it. A section name out of range becomes "".
 * - notes (build-id): a malformed note chain stops that chain; buildId stays null unless a
 *   well-formed NT_GNU_BUILD_ID was found.
 * - symbol tables: a bad table is skipped; a bad symbol name becomes ""; values > 2^53 are dropped.
 * - .eh_frame: the walk stops at the first malformed entry, FDEs before it are kept.
 * Function ranges and data ranges are hints for where decoding starts; bytes always come from
 * PT_LOAD file images via bytesAt(), which returns null rather than bytes the loader would not map.
 */
import { readFileSync, statSync } from "node:fs";
import { ElfError, FileError, SysiError } from "../errors.ts";
import { ByteReader, fail, StringTable } from "./bin.ts";
import { walkEhFrame } from "./eh-frame.ts";
import {
  type ElfDynamic,
  type ElfFile,
  type ElfSection,
  type ElfSegment,
  type ElfSymbol,
  type ElfWarning,
  type FunctionRange,
  PF_X,
  PT_DYNAMIC,
  PT_GNU_EH_FRAME,
  PT_INTERP,
  PT_LOAD,
  PT_NOTE,
  STT_FUNC,
  STT_OBJECT,
} from "./types.ts";

const EM_X86_64 = 62;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const DYN_SIZE = 16;
/** The kernel refuses program header tables above 64 KiB (binfmt_elf load_elf_phdrs). */
const MAX_PHDR_BYTES = 65536;
const PAGE = 4096;

const SHT_PROGBITS = 1;
const SHT_SYMTAB = 2;
const SHT_STRTAB = 3;
const SHT_DYNAMIC = 6;
const SHT_NOTE = 7;
const SHT_NOBITS = 8;
const SHT_DYNSYM = 11;
const SHT_X86_64_UNWIND = 0x7000_0001;
const SHN_UNDEF = 0;
const SHN_XINDEX = 0xffff;
const STT_GNU_IFUNC = 10;
const NT_GNU_BUILD_ID = 3;

const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_INIT = 12;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_INIT_ARRAY = 25;
const DT_INIT_ARRAYSZ = 27;
const DT_RUNPATH = 29;
const DT_FLAGS_1 = 0x6fff_fffb;

const MACHINES: Record<number, string> = {
  3: "i386",
  8: "mips",
  20: "ppc",
  21: "ppc64",
  22: "s390",
  40: "arm",
  50: "ia64",
  183: "aarch64",
  243: "riscv",
  258: "loongarch",
};

/** Reads and parses an ELF file. File-system errors → FileError; bad contents → ElfError. */
export function readElfFile(path: string): ElfFile {
  let bytes: Uint8Array;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new FileError("FILE_IS_DIRECTORY", `cannot read ${path}: is a directory`);
    // Devices and FIFOs could block or never end; ELF files are regular files.
    if (!st.isFile()) throw new FileError("FILE_UNREADABLE", `cannot read ${path}: not a regular file`);
    if (st.size > 0xffff_ffff) throw new ElfError("ELF_TOO_LARGE", `file is larger than 4 GiB: ${path}`);
    const buf = readFileSync(path);
    // A plain Uint8Array view (no copy): Buffer#slice() does not copy, so a planner's
    // `bytesAt(…).slice()` would alias (and could scribble on) the file image.
    bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    if (e instanceof SysiError) throw e;
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new FileError("FILE_NOT_FOUND", `cannot read ${path}: no such file`, { cause: e });
    }
    if (code === "EISDIR")
      throw new FileError("FILE_IS_DIRECTORY", `cannot read ${path}: is a directory`, { cause: e });
    const why = code === "EACCES" || code === "EPERM" ? "permission denied" : code ? code.toLowerCase() : String(e);
    throw new FileError("FILE_UNREADABLE", `cannot read ${path}: ${why}`, { cause: e });
  }
  return parseElf(bytes, path);
}

/** Parses an in-memory ELF64 x86-64 file. Throws ElfError (never anything else) on bad input. */
export function parseElf(bytes: Uint8Array, path: string | null = null): ElfFile {
  return guard(() => new ElfReader(bytes, path ?? null), path ?? null);
}

/** Runs fn, turning any non-SysiError (a RangeError from a missed check) into an ElfError. */
function guard<T>(fn: () => T, path: string | null): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SysiError) throw e;
    const what = e instanceof Error ? e.message : String(e);
    throw new ElfError("ELF_TRUNCATED", `malformed ELF (read out of range: ${what})${path ? `: ${path}` : ""}`, {
      cause: e,
    });
  }
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

class ElfReader implements ElfFile {
  readonly path: string | null;
  readonly bytes: Uint8Array;
  readonly type: number;
  readonly entry: number;
  readonly segments: ElfSegment[];
  readonly sections: ElfSection[];
  readonly interpreter: string | null;
  readonly dynamic: ElfDynamic | null;
  readonly buildId: string | null;
  readonly warnings: ElfWarning[] = [];

  private readonly r: ByteReader;
  /** PT_LOAD segments sorted by vaddr. */
  private readonly loads: ElfSegment[];
  private symbolCache: ElfSymbol[] | null = null;
  private functionCache: FunctionRange[] | null = null;
  private dataCache: { start: number; end: number; name: string }[] | null = null;
  private fdeCache: number[] | null = null;

  constructor(bytes: Uint8Array, path: string | null) {
    this.path = path;
    this.bytes = bytes;
    const r = new ByteReader(bytes);
    this.r = r;
    const len = r.length;
    if (len > 0xffff_ffff) fail("ELF_TOO_LARGE", "file is larger than 4 GiB", path);
    if (len < 4 || r.u32(0) !== 0x464c_457f) fail("ELF_NOT_ELF", "not an ELF file", path);
    if (len < 5) fail("ELF_TRUNCATED", `truncated ELF: file header needs ${EHDR_SIZE} bytes, file has ${len}`, path);
    const cls = r.u8(4);
    if (cls === 1) fail("ELF_CLASS", "ELF32 is not supported (only x86-64 ELF64)", path);
    if (cls !== 2) fail("ELF_CLASS", `invalid ELF class ${cls} (only x86-64 ELF64)`, path);
    if (len < 6) fail("ELF_TRUNCATED", `truncated ELF: file header needs ${EHDR_SIZE} bytes, file has ${len}`, path);
    const data = r.u8(5);
    if (data === 2) fail("ELF_ENDIAN", "big-endian ELF is not supported (only x86-64 ELF64)", path);
    if (data !== 1) fail("ELF_ENDIAN", `invalid ELF data encoding ${data} (only little-endian x86-64)`, path);
    if (len >= 20) {
      const machine = r.u16(18);
      if (machine !== EM_X86_64) {
        const name = MACHINES[machine] ?? `machine ${machine}`;
        fail("ELF_MACHINE", `unsupported architecture ${name} (only x86-64)`, path);
      }
    }
    if (len < EHDR_SIZE) {
      fail("ELF_TRUNCATED", `truncated ELF: file header needs ${EHDR_SIZE} bytes, file has ${len}`, path);
    }
    this.type = r.u16(16);
    this.entry = r.u64(24);
    if (!Number.isFinite(this.entry)) fail("ELF_TOO_LARGE", "e_entry is too large", path);

    this.segments = this.readSegments();
    this.loads = this.segments.filter((s) => s.type === PT_LOAD).sort((a, b) => a.vaddr - b.vaddr);
    this.checkLoads();
    this.sections = this.readSections();
    this.interpreter = this.readInterpreter();
    this.dynamic = this.readDynamic();
    this.buildId = this.readBuildId();
  }

  private warn(code: string, message: string): void {
    this.warnings.push({ code, message });
  }

  // ---- program headers -------------------------------------------------------------------

  private readSegments(): ElfSegment[] {
    const r = this.r;
    const path = this.path;
    const phoff = r.u64(32);
    const phentsize = r.u16(54);
    const phnum = r.u16(56);
    if (phnum === 0) return [];
    if (phentsize !== PHDR_SIZE) {
      fail("ELF_BAD_HEADER", `bad ELF header: e_phentsize is ${phentsize}, expected ${PHDR_SIZE}`, path);
    }
    if (phnum * PHDR_SIZE > MAX_PHDR_BYTES)
      fail("ELF_BAD_HEADER", `bad ELF header: too many program headers (${phnum})`, path);
    if (!Number.isFinite(phoff)) fail("ELF_TOO_LARGE", "e_phoff is too large", path);
    if (!r.has(phoff, phnum * PHDR_SIZE)) {
      const first = phoff >= r.length ? 0 : Math.floor((r.length - phoff) / PHDR_SIZE);
      fail("ELF_TRUNCATED", `truncated ELF: program header ${first} extends past end of file`, path);
    }
    const segments: ElfSegment[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = phoff + i * PHDR_SIZE;
      const seg: ElfSegment = {
        index: i,
        type: r.u32(o),
        flags: r.u32(o + 4),
        offset: r.u64(o + 8),
        vaddr: r.u64(o + 16),
        filesz: r.u64(o + 32),
        memsz: r.u64(o + 40),
        align: r.u64(o + 48),
      };
      for (const k of ["offset", "vaddr", "filesz", "memsz", "align"] as const) {
        if (!Number.isFinite(seg[k])) fail("ELF_TOO_LARGE", `program header ${i}: p_${k} is too large`, path);
      }
      segments.push(seg);
    }
    return segments;
  }

  /**
   * PT_LOAD rules, so that bytesAt() returns exactly what the loader maps: file image inside the
   * file, filesz <= memsz, offset ≡ vaddr (mod 4096) (else kernel/ld.so refuse or map other bytes),
   * no two segments overlap in memory, and two segments sharing a page map it from the same file
   * page (else the later mapping replaces the earlier one's bytes).
   */
  private checkLoads(): void {
    const path = this.path;
    let lastVaddr = -1;
    for (const s of this.segments) {
      if (s.type !== PT_LOAD) continue;
      const name = `segment ${s.index} (PT_LOAD)`;
      // A bss-only segment (filesz 0) reads nothing from the file, so its offset may be anywhere.
      if (s.filesz > 0 && !this.r.has(s.offset, s.filesz)) {
        fail("ELF_TRUNCATED", `truncated ELF: ${name} extends past end of file`, path);
      }
      if (s.filesz > s.memsz) fail("ELF_BAD_SEGMENT", `bad ${name}: p_filesz is larger than p_memsz`, path);
      if (!Number.isSafeInteger(s.vaddr + s.memsz)) {
        fail("ELF_TOO_LARGE", `${name}: p_vaddr + p_memsz is too large`, path);
      }
      if ((s.vaddr - s.offset) % PAGE !== 0) {
        fail("ELF_BAD_SEGMENT", `bad ${name}: p_offset and p_vaddr are not congruent modulo the page size`, path);
      }
      // The gABI requires ascending p_vaddr; loaders map in table order, so a later segment's
      // page would silently replace (or its bss zero-fill clobber) an earlier one's bytes.
      if (s.vaddr < lastVaddr) fail("ELF_BAD_SEGMENT", `bad ${name}: PT_LOAD segments are not sorted by address`, path);
      lastVaddr = s.vaddr;
    }
    let a: ElfSegment | null = null;
    for (const b of this.loads) {
      if (b.memsz === 0) continue;
      if (a !== null) {
        if (b.vaddr < a.vaddr + a.memsz) {
          fail("ELF_BAD_SEGMENT", `bad PT_LOAD: segments ${a.index} and ${b.index} overlap in memory`, path);
        }
        const aLastPage = Math.floor((a.vaddr + a.memsz - 1) / PAGE);
        const bFirstPage = Math.floor(b.vaddr / PAGE);
        if (aLastPage === bFirstPage && a.vaddr - a.offset !== b.vaddr - b.offset) {
          fail(
            "ELF_BAD_SEGMENT",
            `bad PT_LOAD: segments ${a.index} and ${b.index} map the same page from different file offsets`,
            path,
          );
        }
      }
      a = b;
    }
  }

  // ---- section headers (optional: degrade) ----------------------------------------------

  private readSections(): ElfSection[] {
    const r = this.r;
    const shoff = r.u64(40);
    const shentsize = r.u16(58);
    let shnum = r.u16(60);
    let shstrndx = r.u16(62);
    if (shoff === 0) return [];
    const bad = (why: string): ElfSection[] => {
      this.warn("ELF_BAD_SECTION", `section table ignored: ${why}`);
      return [];
    };
    if (!Number.isFinite(shoff)) return bad("e_shoff is too large");
    if (shentsize !== SHDR_SIZE) return bad(`e_shentsize is ${shentsize}, expected ${SHDR_SIZE}`);
    if (!r.has(shoff, SHDR_SIZE)) return bad("section header 0 extends past end of file");
    // Extended numbering: counts that do not fit 16 bits live in section 0.
    if (shnum === 0) {
      const n = r.u64(shoff + 32);
      if (!Number.isSafeInteger(n)) return bad("section count is too large");
      shnum = n;
    }
    if (shstrndx === SHN_XINDEX) shstrndx = r.u32(shoff + 40);
    if (shnum === 0) return [];
    if (!r.has(shoff, shnum * SHDR_SIZE)) {
      return bad(`section header ${Math.floor((r.length - shoff) / SHDR_SIZE)} extends past end of file`);
    }
    const sections: ElfSection[] = [];
    const nameOffsets: number[] = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * SHDR_SIZE;
      const sec: ElfSection = {
        index: i,
        name: "",
        type: r.u32(o + 4),
        flags: r.u64(o + 8),
        addr: r.u64(o + 16),
        offset: r.u64(o + 24),
        size: r.u64(o + 32),
        link: r.u32(o + 40),
        info: r.u32(o + 44),
        entsize: r.u64(o + 56),
      };
      for (const k of ["flags", "addr", "offset", "size", "entsize"] as const) {
        if (!Number.isFinite(sec[k])) return bad(`section ${i}: sh_${k} is too large`);
      }
      if (sec.type !== SHT_NOBITS && sec.type !== 0 && !r.has(sec.offset, sec.size)) {
        return bad(`section ${i} extends past end of file`);
      }
      sections.push(sec);
      nameOffsets.push(r.u32(o));
    }
    const strtab = sections[shstrndx];
    if (shstrndx === 0 || strtab === undefined || strtab.type !== SHT_STRTAB) {
      this.warn("ELF_BAD_SECTION", `section names ignored: e_shstrndx ${shstrndx} is not a string table`);
      return sections;
    }
    const names = new StringTable(r, strtab.offset, strtab.offset + strtab.size);
    let badNames = 0;
    for (let i = 0; i < shnum; i++) {
      const name = names.get(nameOffsets[i] as number);
      if (name === null) badNames++;
      else (sections[i] as ElfSection).name = name;
    }
    if (badNames > 0) this.warn("ELF_BAD_SECTION", `${badNames} section name(s) out of range`);
    return sections;
  }

  private sectionByName(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  // ---- PT_INTERP ----------------------------------------------------------------------

  private readInterpreter(): string | null {
    const seg = this.segments.find((s) => s.type === PT_INTERP);
    if (!seg) return null;
    const path = this.path;
    if (!this.r.has(seg.offset, seg.filesz))
      fail("ELF_TRUNCATED", "truncated ELF: PT_INTERP extends past end of file", path);
    if (seg.filesz < 2 || this.r.u8(seg.offset + seg.filesz - 1) !== 0) {
      fail("ELF_BAD_SEGMENT", "bad PT_INTERP: not a NUL-terminated path", path);
    }
    return this.r.cstr(seg.offset, seg.offset + seg.filesz) as string;
  }

  // ---- dynamic section ----------------------------------------------------------------

  private readDynamic(): ElfDynamic | null {
    const r = this.r;
    const path = this.path;
    let off: number;
    let size: number;
    const seg = this.segments.find((s) => s.type === PT_DYNAMIC);
    if (seg) {
      // ld.so reads the array at p_vaddr; use that mapping when it is file-backed.
      const mapped = this.vaddrToOffset(seg.vaddr);
      off = mapped !== null && this.bytesAt(seg.vaddr, seg.filesz) !== null ? mapped : seg.offset;
      size = seg.filesz;
      if (!r.has(off, size)) fail("ELF_BAD_DYNAMIC", "bad PT_DYNAMIC: extends past end of file", path);
    } else {
      const sec = this.sections.find((s) => s.type === SHT_DYNAMIC);
      if (!sec) return null;
      off = sec.offset;
      size = sec.size;
    }
    const count = Math.floor(size / DYN_SIZE);
    const needed: number[] = [];
    let soname = -1;
    let rpath = -1;
    let runpath = -1;
    let strtab = -1;
    let strsz = -1;
    let init: number | null = null;
    let initArray = -1;
    let initArraySz = -1;
    let flags1 = 0;
    for (let i = 0; i < count; i++) {
      const o = off + i * DYN_SIZE;
      const tagLo = r.u32(o);
      const tagHi = r.u32(o + 4);
      if (tagHi !== 0) continue;
      if (tagLo === DT_NULL) break;
      const val = r.u64(o + 8);
      switch (tagLo) {
        case DT_NEEDED:
          needed.push(val);
          break;
        case DT_SONAME:
          soname = val;
          break;
        case DT_RPATH:
          rpath = val;
          break;
        case DT_RUNPATH:
          runpath = val;
          break;
        case DT_STRTAB:
          strtab = val;
          break;
        case DT_STRSZ:
          strsz = val;
          break;
        case DT_INIT:
          init = Number.isFinite(val) ? val : null;
          break;
        case DT_INIT_ARRAY:
          initArray = val;
          break;
        case DT_INIT_ARRAYSZ:
          initArraySz = val;
          break;
        case DT_FLAGS_1:
          flags1 = r.u32(o + 8);
          break;
      }
    }
    const hasStrings = needed.length > 0 || soname >= 0 || rpath >= 0 || runpath >= 0;
    let strOff = -1;
    let strEnd = -1;
    if (hasStrings) {
      // DT_STRTAB is a vaddr: map it through PT_LOAD; DT_STRSZ bounds it (else the segment end).
      if (strtab >= 0 && Number.isFinite(strtab)) {
        const o = this.vaddrToOffset(strtab);
        if (o !== null) {
          const seg = this.loadAt(strtab) as ElfSegment;
          const avail = seg.offset + seg.filesz - o;
          const n = strsz >= 0 && strsz <= avail ? strsz : avail;
          strOff = o;
          strEnd = o + n;
        }
      }
      if (strOff < 0) {
        const dynSec = this.sections.find((s) => s.type === SHT_DYNAMIC);
        const linked = dynSec ? this.sections[dynSec.link] : undefined;
        const sec = linked?.type === SHT_STRTAB ? linked : this.sectionByName(".dynstr");
        if (sec && sec.type === SHT_STRTAB) {
          strOff = sec.offset;
          strEnd = sec.offset + sec.size;
        }
      }
      if (strOff < 0) fail("ELF_BAD_DYNAMIC", "bad dynamic section: DT_STRTAB is not in a loaded segment", path);
    }
    const table = new StringTable(r, strOff, strEnd);
    const str = (v: number, what: string): string => {
      const s = table.get(v);
      if (s === null) fail("ELF_BAD_DYNAMIC", `bad dynamic section: ${what} string is out of range`, path);
      return s;
    };
    return {
      needed: needed.map((v, i) => str(v, `DT_NEEDED ${i}`)),
      soname: soname >= 0 ? str(soname, "DT_SONAME") : null,
      rpath: rpath >= 0 ? str(rpath, "DT_RPATH") : null,
      runpath: runpath >= 0 ? str(runpath, "DT_RUNPATH") : null,
      initArray:
        initArray >= 0 && Number.isFinite(initArray) && Number.isFinite(initArraySz)
          ? { vaddr: initArray, size: Math.max(0, initArraySz) }
          : null,
      init,
      flags1,
    };
  }

  // ---- notes / build-id ---------------------------------------------------------------

  private readBuildId(): string | null {
    for (const seg of this.segments) {
      if (seg.type !== PT_NOTE) continue;
      const id = this.scanNotes(seg.offset, seg.filesz, seg.align, `PT_NOTE segment ${seg.index}`);
      if (id !== null) return id;
    }
    for (const sec of this.sections) {
      if (sec.type !== SHT_NOTE) continue;
      const id = this.scanNotes(sec.offset, sec.size, sec.entsize === 8 ? 8 : 4, `note section ${sec.name}`);
      if (id !== null) return id;
    }
    return null;
  }

  /** Walks a note chain; each note advances at least 12 bytes and must fit inside [off, off+size). */
  private scanNotes(off: number, size: number, align: number, what: string): string | null {
    const r = this.r;
    if (!r.has(off, size)) {
      this.warn("ELF_BAD_SEGMENT", `${what} ignored: extends past end of file`);
      return null;
    }
    const a = align === 8 ? 8 : 4;
    const end = off + size;
    let p = off;
    while (p + 12 <= end) {
      const namesz = r.u32(p);
      const descsz = r.u32(p + 4);
      const type = r.u32(p + 8);
      const name = p + 12;
      // Name and descriptor are each padded to the note alignment, measured from the chain start.
      const desc = off + Math.ceil((name + namesz - off) / a) * a;
      const next = off + Math.ceil((desc + descsz - off) / a) * a;
      if (desc + descsz > end) {
        this.warn("ELF_BAD_SEGMENT", `${what}: note at offset 0x${p.toString(16)} extends past its end`);
        return null;
      }
      if (type === NT_GNU_BUILD_ID && namesz === 4 && r.u32(name) === 0x0055_4e47 /* "GNU\0" */ && descsz > 0) {
        let hex = "";
        for (let i = 0; i < descsz; i++) hex += HEX[r.u8(desc + i)];
        return hex;
      }
      p = next;
    }
    return null;
  }

  // ---- address mapping ----------------------------------------------------------------

  private loadAt(vaddr: number): ElfSegment | null {
    for (const s of this.loads) {
      if (vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return s;
    }
    return null;
  }

  execSegments(): ElfSegment[] {
    return this.loads.filter((s) => (s.flags & PF_X) !== 0);
  }

  bytesAt(vaddr: number, len: number): Uint8Array | null {
    if (!Number.isSafeInteger(vaddr) || !Number.isSafeInteger(len) || len < 0) return null;
    for (const s of this.loads) {
      if (vaddr >= s.vaddr && vaddr + len <= s.vaddr + s.filesz && (len > 0 || vaddr < s.vaddr + s.filesz)) {
        const o = s.offset + (vaddr - s.vaddr);
        return this.bytes.subarray(o, o + len);
      }
    }
    return null;
  }

  vaddrToOffset(vaddr: number): number | null {
    if (!Number.isSafeInteger(vaddr)) return null;
    const s = this.loadAt(vaddr);
    return s ? s.offset + (vaddr - s.vaddr) : null;
  }

  /** [start, end) lies inside the file image of one executable PT_LOAD. */
  private inExec(start: number, end: number): boolean {
    for (const s of this.loads) {
      if ((s.flags & PF_X) !== 0 && start >= s.vaddr && end <= s.vaddr + s.filesz) return true;
    }
    return false;
  }

  // ---- symbols (lazy) -----------------------------------------------------------------

  symbols(): ElfSymbol[] {
    if (this.symbolCache === null) this.symbolCache = guard(() => this.readSymbols(), this.path);
    return this.symbolCache;
  }

  private readSymbols(): ElfSymbol[] {
    const out: ElfSymbol[] = [];
    const seen = new Map<number, string | Set<string>>();
    for (const type of [SHT_SYMTAB, SHT_DYNSYM]) {
      for (const sec of this.sections) {
        if (sec.type === type) this.readSymbolTable(sec, type === SHT_SYMTAB ? "symtab" : "dynsym", out, seen);
      }
    }
    return out;
  }

  private readSymbolTable(
    sec: ElfSection,
    source: "symtab" | "dynsym",
    out: ElfSymbol[],
    seen: Map<number, string | Set<string>>,
  ): void {
    const r = this.r;
    if (sec.entsize !== SYM_SIZE) {
      this.warn("ELF_BAD_SYMBOLS", `symbol table ${sec.name || sec.index} ignored: entry size ${sec.entsize}`);
      return;
    }
    const strSec = this.sections[sec.link];
    let strings = new StringTable(r, 0, 0);
    if (strSec && strSec.type === SHT_STRTAB) {
      strings = new StringTable(r, strSec.offset, strSec.offset + strSec.size);
    } else {
      this.warn("ELF_BAD_SYMBOLS", `symbol table ${sec.name || sec.index}: sh_link ${sec.link} is not a string table`);
    }
    const count = Math.floor(sec.size / SYM_SIZE); // section data was checked against the file
    let badNames = 0;
    for (let i = 1; i < count; i++) {
      const o = sec.offset + i * SYM_SIZE;
      const value = r.u64(o + 8);
      const size = r.u64(o + 16);
      if (!Number.isFinite(value) || !Number.isFinite(size)) continue;
      const nameOff = r.u32(o);
      let name = "";
      if (nameOff !== 0) {
        const s = strings.get(nameOff);
        if (s === null) badNames++;
        else name = s;
      }
      // Deduplicate by (value, name) without building a string key per symbol.
      const prev = seen.get(value);
      if (prev === undefined) seen.set(value, name);
      else if (typeof prev === "string") {
        if (prev === name) continue;
        seen.set(value, new Set([prev, name]));
      } else {
        if (prev.has(name)) continue;
        prev.add(name);
      }
      const info = r.u8(o + 4);
      out.push({ name, value, size, type: info & 0xf, bind: info >> 4, shndx: r.u16(o + 6), source });
    }
    if (badNames > 0) this.warn("ELF_BAD_SYMBOLS", `${source}: ${badNames} symbol name(s) out of range`);
  }

  // ---- functions (lazy) ---------------------------------------------------------------

  functions(): FunctionRange[] {
    if (this.functionCache === null) this.functionCache = guard(() => this.readFunctions(), this.path);
    return this.functionCache;
  }

  /**
   * STT_FUNC/STT_GNU_IFUNC symbols with size > 0 plus .eh_frame FDE ranges, kept only when they
   * lie inside an executable PT_LOAD's file image. Entries with the same start are merged: the
   * end is the largest end, the name the first symbol's (.symtab before .dynsym), source "symbol"
   * if any symbol contributed.
   */
  private readFunctions(): FunctionRange[] {
    const all: FunctionRange[] = [];
    for (const s of this.symbols()) {
      if ((s.type !== STT_FUNC && s.type !== STT_GNU_IFUNC) || s.size === 0 || s.shndx === SHN_UNDEF) continue;
      const end = s.value + s.size;
      if (this.inExec(s.value, end)) all.push({ start: s.value, end, name: s.name || null, source: "symbol" });
    }
    const eh = this.fdeRanges();
    for (let i = 0; i < eh.length; i += 2) {
      const start = eh[i] as number;
      const end = eh[i + 1] as number;
      if (this.inExec(start, end)) all.push({ start, end, name: null, source: "eh_frame" });
    }
    all.sort((a, b) => a.start - b.start || (a.source === b.source ? 0 : a.source === "symbol" ? -1 : 1));
    const out: FunctionRange[] = [];
    let last: FunctionRange | undefined;
    for (const f of all) {
      if (last !== undefined && last.start === f.start) {
        if (f.end > last.end) last.end = f.end;
        if (last.name === null && f.name !== null) last.name = f.name;
        continue;
      }
      last = f;
      out.push(f);
    }
    return out;
  }

  /** Flat [start, end, …] of every FDE with a positive range, in .eh_frame order. Lazy. */
  fdeRanges(): number[] {
    if (this.fdeCache === null) this.fdeCache = guard(() => this.readFdeRanges(), this.path);
    return this.fdeCache;
  }

  /** Locates .eh_frame (section table first, else PT_GNU_EH_FRAME → eh_frame_ptr) and walks it. */
  private readFdeRanges(): number[] {
    const r = this.r;
    let hdrVaddr: number | null = null;
    const hdrSeg = this.segments.find((s) => s.type === PT_GNU_EH_FRAME);
    if (hdrSeg && this.bytesAt(hdrSeg.vaddr, 4) !== null) hdrVaddr = hdrSeg.vaddr;
    else {
      const hdrSec = this.sectionByName(".eh_frame_hdr");
      if (hdrSec && hdrSec.addr !== 0 && this.bytesAt(hdrSec.addr, 4) !== null) hdrVaddr = hdrSec.addr;
    }
    let region: { offset: number; size: number; vaddr: number } | null = null;
    const sec = this.sections.find(
      (s) => s.name === ".eh_frame" && (s.type === SHT_PROGBITS || s.type === SHT_X86_64_UNWIND) && s.size > 0,
    );
    if (sec) {
      // The section must be where the loader maps it, or pcrel values would be misread.
      if (sec.addr === 0 || this.vaddrToOffset(sec.addr) === sec.offset) {
        region = { offset: sec.offset, size: sec.size, vaddr: sec.addr };
      } else {
        this.warn("ELF_BAD_EH_FRAME", ".eh_frame section does not match its PT_LOAD mapping; using PT_GNU_EH_FRAME");
      }
    }
    if (region === null && hdrVaddr !== null) {
      const hdrOff = this.vaddrToOffset(hdrVaddr) as number;
      const seg = this.loadAt(hdrVaddr) as ElfSegment;
      const version = r.u8(hdrOff);
      const enc = r.u8(hdrOff + 1);
      const ptr = decodeHeaderPointer(r, hdrOff + 4, seg.offset + seg.filesz, enc, hdrVaddr + 4, hdrVaddr);
      const off = ptr === null ? null : this.vaddrToOffset(ptr);
      if (version !== 1 || ptr === null || off === null) {
        this.warn("ELF_BAD_EH_FRAME", ".eh_frame_hdr is malformed; no FDE ranges");
        return [];
      }
      const s = this.loadAt(ptr) as ElfSegment;
      region = { offset: off, size: s.offset + s.filesz - off, vaddr: ptr };
    }
    if (region === null) return [];
    const res = walkEhFrame(r, { ...region, dataRel: hdrVaddr });
    if (res.error !== null) this.warn("ELF_BAD_EH_FRAME", `.eh_frame: ${res.error}; later FDEs ignored`);
    return res.ranges;
  }

  // ---- data in text (lazy) ------------------------------------------------------------

  dataInText(): { start: number; end: number; name: string }[] {
    if (this.dataCache === null) this.dataCache = guard(() => this.readDataInText(), this.path);
    return this.dataCache;
  }

  private readDataInText(): { start: number; end: number; name: string }[] {
    const exec = this.execSegments();
    const out: { start: number; end: number; name: string }[] = [];
    for (const s of this.symbols()) {
      if (s.type !== STT_OBJECT || s.size === 0 || s.shndx === SHN_UNDEF) continue;
      const end = s.value + s.size;
      if (exec.some((e) => s.value < e.vaddr + e.memsz && end > e.vaddr))
        out.push({ start: s.value, end, name: s.name });
    }
    out.sort((a, b) => a.start - b.start || a.end - b.end);
    return out.filter((d, i) => {
      const p = out[i - 1];
      return !(p && p.start === d.start && p.end === d.end);
    });
  }
}

/**
 * The raw .eh_frame FDE ranges of a file from parseElf (in .eh_frame order, before the filtering
 * and merging functions() does). For diagnostics and tests.
 */
export function fdeRanges(file: ElfFile): { start: number; end: number }[] {
  if (!(file instanceof ElfReader)) return [];
  const flat = file.fdeRanges();
  const out: { start: number; end: number }[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ start: flat[i] as number, end: flat[i + 1] as number });
  return out;
}

/** Decodes one encoded pointer of .eh_frame_hdr (absptr/udata4/sdata4/udata8/sdata8, pcrel/datarel). */
function decodeHeaderPointer(
  r: ByteReader,
  off: number,
  limit: number,
  enc: number,
  fieldVaddr: number,
  hdrVaddr: number,
): number | null {
  let size: number;
  let v: number;
  switch (enc & 0x0f) {
    case 0x00:
    case 0x04:
      size = 8;
      break;
    case 0x03:
    case 0x0b:
      size = 4;
      break;
    case 0x0c:
      size = 8;
      break;
    default:
      return null;
  }
  if (!(off + size <= limit) || !r.has(off, size)) return null;
  if (size === 4) v = (enc & 0x0f) === 0x0b ? r.i32(off) : r.u32(off);
  else v = (enc & 0x0f) === 0x0c ? r.i64(off) : r.u64(off);
  const app = enc & 0x70;
  if (app === 0x10) v += fieldVaddr;
  else if (app === 0x30) v += hdrVaddr;
  else if (app !== 0) return null;
  return Number.isSafeInteger(v) && v >= 0 ? v : null;
}
