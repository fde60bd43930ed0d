/**
 * The patched-file writer: a copy of a dynamically linked ELF with
 *
 *   - site bytes changed in place (inside the existing executable sections only),
 *   - one new PT_LOAD (RW) appended at the end of the file, holding a copy of the program
 *     header table (now two entries longer), a copy of the dynamic section with DT_NEEDED
 *     entries put first (the runtime, so that the loader maps it and runs its constructor
 *     before any code of the program's own), a copy of the dynamic string table with their names
 *     appended, and the sysi note (NT_SYSI_PATCH: configuration and plans, see embed.ts),
 *   - a new PT_NOTE naming that note,
 *   - e_phoff, PT_PHDR, PT_DYNAMIC and the .dynamic section header pointing at the copies.
 *
 * With `standalone` (sysi patch --standalone) there is no DT_NEEDED on the runtime: two more
 * PT_LOADs follow, the start stub (R E: native/standalone, its header after its code) and the
 * embedded libraries' bytes (R), OUT's DT_PREINIT_ARRAY names the stub (for a PIE through an
 * R_X86_64_RELATIVE appended to a copy of DT_RELA in the RW segment) and the stub loads the
 * runtime from memfds at start (docs/patch.md, "A standalone program").
 *
 * Nothing else moves: every original byte keeps its file offset and its address, so symbols,
 * debug info, relocations and the section table stay valid. The output is a pure function of
 * the input and the request (deterministic).
 */

import { type ElfFile, ET_DYN, ET_EXEC, PT_DYNAMIC, PT_INTERP, PT_LOAD, PT_NOTE, SHF_EXECINSTR } from "../elf/types.ts";
import { SysiError } from "../errors.ts";
import { classifyElf } from "./classify.ts";

const PT_PHDR = 6;
const PHENT = 56;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_PLTRELSZ = 2n;
const DT_RELA = 7n;
const DT_RELASZ = 8n;
const DT_RELAENT = 9n;
const DT_DEBUG = 21n;
const DT_JMPREL = 23n;
const DT_PREINIT_ARRAY = 32n;
const DT_PREINIT_ARRAYSZ = 33n;
const R_X86_64_RELATIVE = 8n;
const PF_X = 1;
/** native/standalone/stub.h: struct sysi_stub_header. */
export const STUB_MAGIC = "SYSISTB";
export const STUB_MAX_LIBS = 8;
const STUB_LIB = 40;
const STUB_HEADER = 32 + STUB_MAX_LIBS * STUB_LIB;
const SHT_DYNAMIC = 6;
const SHT_STRTAB = 3;
const PF_R = 4;
const PF_W = 2;
const PAGE = 4096;
const REL32_REACH = 2 ** 31 + 2 ** 21;

/** Note owner and type of the sysi note (embed.ts gives its contents). */
export const SYSI_NOTE_NAME = "SYSI";
export const NT_SYSI_PATCH = 0x53595349;

export interface BytePatchAt {
  vaddr: number;
  bytes: Uint8Array;
}

export interface RewriteRequest {
  /** Byte changes, each inside one executable section. */
  patches: BytePatchAt[];
  /** Library names (or absolute paths) to load before the program's own DT_NEEDED. */
  needed: string[];
  /** The sysi note's descriptor (8-byte aligned in memory). */
  noteDesc: Uint8Array;
  /** Address ranges the new segment must stay clear of (e.g. trampoline pages), [lo, hi). */
  reserved: { lo: number; hi: number }[];
  /** The input is a shared library (classify.ts); the caller checked it may be patched. */
  library?: boolean;
  /** Carry the runtime inside the output, started by the stub from DT_PREINIT_ARRAY. */
  standalone?: StandaloneRequest;
  /** Write no sysi note (a hook library given a DT_NEEDED for a standalone output). */
  noNote?: boolean;
}

export interface StandaloneRequest {
  /** The stub's flat code (native/standalone: entry at offset 0, header at the next 16 bytes). */
  stub: Uint8Array;
  /**
   * The libraries it writes into memfds: [0] libsysi (dlopen'ed by the stub), then those the
   * note names. `path`: offset in the note's descriptor of the fd placeholder in that name
   * (SYSI_STUB_FD_DIGITS bytes after "/proc/self/fd/"); `key`: of the setting naming it.
   */
  libs: { name: string; bytes: Uint8Array; path: number | null; key: number | null; patch: number | null }[];
}

export interface AddedSegment {
  type: "LOAD" | "NOTE";
  /** What a standalone output's extra segments hold. */
  holds?: "stub" | "libraries";
  offset: number;
  vaddr: number;
  size: number;
  flags: string;
}

export interface RewriteResult {
  bytes: Uint8Array;
  segments: AddedSegment[];
  /** Where the note's descriptor lies in the output (file offset). */
  noteDescOffset: number;
}

export class PatchError extends SysiError {
  override name = "PatchError";
}

function unsupported(what: string): PatchError {
  return new PatchError("PATCH_UNSUPPORTED", what);
}

const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;

/**
 * The refusal of a shared library (classify.ts tells one from a PIE executable). `runtimeDep`:
 * it is the dynamic loader, which the sysi runtime needs and programs map by their PT_INTERP
 * path (a copy would never be loaded, and ld.so does not load its own DT_NEEDED).
 */
export function sharedLibrary(elf: ElfFile, runtimeDep = false): PatchError {
  const name = elf.dynamic?.soname ?? "this file";
  return unsupported(
    runtimeDep
      ? `${name} is the dynamic loader: programs map it by the fixed path in their PT_INTERP, never through LD_LIBRARY_PATH, and it cannot load the runtime; patch libc.so.6 or the programs (their copies instrument ${name} as it runs) or use sysi run`
      : `${name} is a shared library: the writer keeps a library's code only when asked (RewriteRequest.library)`,
  );
}

/** Does this ELF carry a sysi note (written by `sysi patch`)? */
export function hasSysiNote(elf: ElfFile): boolean {
  return findSysiNote(elf) !== null;
}

/** The sysi note's descriptor, or null. */
export function findSysiNote(elf: ElfFile): Uint8Array | null {
  const b = elf.bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (const s of elf.segments) {
    if (s.type !== PT_NOTE || s.offset + s.filesz > b.length) continue;
    let p = s.offset;
    const end = s.offset + s.filesz;
    while (p + 12 <= end) {
      const namesz = dv.getUint32(p, true);
      const descsz = dv.getUint32(p + 4, true);
      const type = dv.getUint32(p + 8, true);
      const nameOff = p + 12;
      const descOff = nameOff + alignUp(namesz, 4);
      if (descOff + descsz > end || namesz > 64) break;
      const name = Buffer.from(b.subarray(nameOff, nameOff + Math.max(0, namesz - 1))).toString("latin1");
      if (name === SYSI_NOTE_NAME && type === NT_SYSI_PATCH) return b.subarray(descOff, descOff + descsz);
      p = descOff + alignUp(descsz, 4);
    }
  }
  return null;
}

/** Check that `elf` is a layout this writer handles: a dynamically linked executable. */
export function checkRewritable(elf: ElfFile, opts: { library?: boolean } = {}): void {
  if (elf.type !== ET_DYN && elf.type !== ET_EXEC) throw unsupported("not an executable or shared object");
  if (hasSysiNote(elf)) {
    throw new PatchError("PATCH_ALREADY_PATCHED", "already patched by sysi (it carries a SYSI note)", {
      suggestions: ["patch the original file"],
    });
  }
  const kind = classifyElf(elf);
  const dyn = elf.segments.find((s) => s.type === PT_DYNAMIC);
  if (kind === "shared-library" && opts.library === true && dyn !== undefined) {
    checkHeaders(elf, dyn);
    return;
  }
  if (kind === "shared-library") throw sharedLibrary(elf);
  if (kind === "static-pie") throw unsupported("static-pie: sysi patch handles static programs linked non-PIE");
  const interp = elf.segments.some((s) => s.type === PT_INTERP);
  if ((kind !== "executable" && kind !== "pie") || dyn === undefined || !interp) {
    throw unsupported("statically linked: sysi patch handles dynamically linked executables so far");
  }
  checkHeaders(elf, dyn);
}

function checkHeaders(elf: ElfFile, dyn: ElfFile["segments"][number]): void {
  const b = elf.bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint16(54, true) !== PHENT) throw unsupported(`program header entry size ${dv.getUint16(54, true)}`);
  if (elf.segments.length + 2 > 0xfff0) throw unsupported("too many program headers");
  if (dyn.filesz % 16 !== 0 || dyn.offset + dyn.filesz > b.length) throw unsupported("malformed PT_DYNAMIC");
}

/** Rewrite `elf` as described at the top of this file. Throws PatchError for layouts it refuses. */
export function rewriteElf(elf: ElfFile, req: RewriteRequest): RewriteResult {
  checkRewritable(elf, { library: req.library === true });
  const sa = req.standalone;
  if (sa !== undefined && req.library === true) throw unsupported("--standalone is for executables, not libraries");
  if (sa !== undefined && (sa.libs.length < 1 || sa.libs.length > STUB_MAX_LIBS)) {
    throw unsupported(`--standalone embeds 1 to ${STUB_MAX_LIBS} runtime libraries, not ${sa.libs.length}`);
  }
  const src = elf.bytes;
  const sdv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const dynSeg = elf.segments.find((s) => s.type === PT_DYNAMIC);
  if (dynSeg === undefined) throw unsupported("no PT_DYNAMIC");

  // Step (1): the dynamic entries up to DT_NULL, and the string table they name.
  const entries: [bigint, bigint][] = [];
  for (let o = dynSeg.offset; o + 16 <= dynSeg.offset + dynSeg.filesz; o += 16) {
    const tag = sdv.getBigUint64(o, true);
    if (tag === DT_NULL) break;
    entries.push([tag, sdv.getBigUint64(o + 8, true)]);
  }
  const strtab = entries.find(([t]) => t === DT_STRTAB)?.[1];
  const strsz = entries.find(([t]) => t === DT_STRSZ)?.[1];
  if (strtab === undefined || strsz === undefined) throw unsupported("dynamic section without DT_STRTAB/DT_STRSZ");
  const strOff = elf.vaddrToOffset(Number(strtab));
  if (strOff === null || strOff + Number(strsz) > src.length) throw unsupported("DT_STRTAB outside the file");
  const oldStr = src.subarray(strOff, strOff + Number(strsz));
  const dynVal = (t: bigint) => entries.find(([x]) => x === t)?.[1];
  if (sa !== undefined && dynVal(DT_PREINIT_ARRAY) !== undefined) {
    throw unsupported("the program has a DT_PREINIT_ARRAY already: --standalone starts the runtime from its own");
  }
  // Step (1b), standalone PIE: the relocations to copy (the preinit entry is appended to them).
  // A DT_RELASZ that covers .rela.plt too (ld.so then leaves that part to DT_JMPREL) is cut there.
  const pie = elf.type === ET_DYN;
  let oldRela: Uint8Array = new Uint8Array(0);
  if (sa !== undefined && pie && dynVal(DT_RELA) !== undefined) {
    const at = Number(dynVal(DT_RELA));
    let size = Number(dynVal(DT_RELASZ) ?? 0n);
    const jmp = dynVal(DT_JMPREL);
    const jsz = Number(dynVal(DT_PLTRELSZ) ?? 0n);
    if (jmp !== undefined && Number(jmp) >= at && Number(jmp) < at + size) {
      if (Number(jmp) + jsz !== at + size) throw unsupported("DT_JMPREL lies inside DT_RELA");
      size = Number(jmp) - at;
    }
    const ro = elf.vaddrToOffset(at);
    if (ro === null || size % 24 !== 0 || ro + size > src.length) throw unsupported("DT_RELA outside the file");
    oldRela = src.subarray(ro, ro + size);
  }

  // Step (2): new string table = old + the new names (old offsets stay valid).
  const enc = new TextEncoder();
  const names = req.needed.map((n) => enc.encode(`${n}\0`));
  const newStrSize = oldStr.length + names.reduce((a, n) => a + n.length, 0);
  const nameOffs: number[] = [];
  {
    let o = oldStr.length;
    for (const n of names) {
      nameOffs.push(o);
      o += n.length;
    }
  }

  // Step (3): the new segment's layout: phdrs | dynamic | dynstr | note.
  const noNote = req.noNote === true;
  const phnum = elf.segments.length + (sa === undefined ? 2 : 4) - (noNote ? 1 : 0);
  const phdrSize = phnum * PHENT;
  const dynOffIn = alignUp(phdrSize, 16);
  // standalone: + DT_PREINIT_ARRAY(SZ), DT_DEBUG if missing, DT_RELA(SZ, ENT) if a PIE has none
  const extra =
    sa === undefined
      ? 0
      : 2 +
        (dynVal(DT_DEBUG) === undefined ? 1 : 0) +
        (pie && dynVal(DT_RELA) === undefined ? 1 : 0) +
        (pie && dynVal(DT_RELASZ) === undefined ? 1 : 0) +
        (pie && dynVal(DT_RELAENT) === undefined ? 1 : 0);
  const dynCount = entries.length + names.length + extra + 1;
  const dynSize = dynCount * 16;
  const strOffIn = dynOffIn + dynSize;
  // note header (12) + "SYSI\0" padded to 8 = 20: start the note at 4 mod 8 so its descriptor is 8-aligned
  const relaOffIn = alignUp(strOffIn + newStrSize, 8);
  const relaSize = sa !== undefined && pie ? oldRela.length + 24 : 0;
  const preinitOffIn = relaOffIn + relaSize;
  const preinitSize = sa === undefined ? 0 : 8;
  let noteOffIn = alignUp(preinitOffIn + preinitSize, 8) + 4;
  const noteSize = noNote ? 0 : 20 + alignUp(req.noteDesc.length, 4);
  const segSize = noteOffIn + noteSize;

  const segOff = alignUp(src.length, PAGE);
  let maxEnd = 0;
  for (const s of elf.segments) if (s.type === PT_LOAD) maxEnd = Math.max(maxEnd, s.vaddr + s.memsz);
  for (const r of req.reserved) maxEnd = Math.max(maxEnd, r.hi);
  // An executable's segment lies beyond rel32 reach of every site (sites lie below maxEnd): a
  // strategy's run-time trampoline targets (punning's puns land anywhere within ±2 GiB of their
  // site) never meet it, and the kernel leaves the gap unmapped. A library's follows its last
  // segment: ld.so maps a library's whole span and keeps the holes between its segments as
  // PROT_NONE mappings of the file, so a 2 GiB gap took every pun landing there (217 of libc's
  // 526 sites fell through to ud2); next to it, only the targets inside this small segment do.
  const segVaddr = req.library === true ? alignUp(maxEnd, PAGE) : alignUp(maxEnd + REL32_REACH, PAGE);
  // standalone: the stub (R E) and the libraries (R) in two more segments, each page-aligned
  const stubHdrIn = sa === undefined ? 0 : alignUp(sa.stub.length, 16);
  const xSize = sa === undefined ? 0 : stubHdrIn + STUB_HEADER;
  const xOff = alignUp(segOff + segSize, PAGE);
  const xVaddr = alignUp(segVaddr + segSize, PAGE);
  const libOffsIn: number[] = [];
  let rSize = 0;
  for (const l of sa?.libs ?? []) {
    libOffsIn.push(rSize);
    rSize = alignUp(rSize + l.bytes.length, 16);
  }
  const rOff = alignUp(xOff + xSize, PAGE);
  const rVaddr = alignUp(xVaddr + xSize, PAGE);
  const end = sa === undefined ? segVaddr + segSize : rVaddr + rSize;
  if (end >= 2 ** 47) throw unsupported("no address space left for the new segment");

  // Step (4): copy the file and apply the site patches (inside executable sections only).
  const out = new Uint8Array(sa === undefined ? segOff + segSize : rOff + rSize);
  out.set(src, 0);
  const execSections = elf.sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0 && s.type !== 8);
  for (const p of req.patches) {
    const off = elf.vaddrToOffset(p.vaddr);
    const inSection =
      execSections.length === 0
        ? elf.execSegments().some((s) => p.vaddr >= s.vaddr && p.vaddr + p.bytes.length <= s.vaddr + s.filesz)
        : execSections.some((s) => p.vaddr >= s.addr && p.vaddr + p.bytes.length <= s.addr + s.size);
    if (off === null || !inSection) {
      throw unsupported(`patch at 0x${p.vaddr.toString(16)} is not inside an executable section`);
    }
    out.set(p.bytes, off);
  }
  const dv = new DataView(out.buffer);
  const u64 = (o: number, v: number | bigint) => dv.setBigUint64(o, BigInt(v), true);

  // Step (5): the program header table: the old entries, the new PT_LOAD after the last PT_LOAD,
  // the new PT_NOTE last; PT_PHDR and PT_DYNAMIC point at the copies.
  const phoff = Number(sdv.getBigUint64(32, true));
  const rows: Uint8Array[] = [];
  let lastLoad = -1;
  for (let i = 0; i < elf.segments.length; i++) {
    rows.push(src.slice(phoff + i * PHENT, phoff + (i + 1) * PHENT));
    if (elf.segments[i]?.type === PT_LOAD) lastLoad = i;
  }
  const row = (type: number, flags: number, off: number, vaddr: number, size: number, align: number) =>
    phdrRow(type, flags, off, vaddr, size, size, align);
  for (const r of rows) {
    const v = new DataView(r.buffer);
    const type = v.getUint32(0, true);
    if (type === PT_PHDR) {
      u64Row(v, 8, segOff);
      u64Row(v, 16, segVaddr);
      u64Row(v, 24, segVaddr);
      u64Row(v, 32, phdrSize);
      u64Row(v, 40, phdrSize);
    } else if (type === PT_DYNAMIC) {
      u64Row(v, 8, segOff + dynOffIn);
      u64Row(v, 16, segVaddr + dynOffIn);
      u64Row(v, 24, segVaddr + dynOffIn);
      u64Row(v, 32, dynSize);
      u64Row(v, 40, dynSize);
    }
  }
  rows.splice(lastLoad + 1, 0, row(PT_LOAD, PF_R | PF_W, segOff, segVaddr, segSize, PAGE));
  if (sa !== undefined) {
    rows.splice(lastLoad + 2, 0, row(PT_LOAD, PF_R | PF_X, xOff, xVaddr, xSize, PAGE));
    rows.splice(lastLoad + 3, 0, row(PT_LOAD, PF_R, rOff, rVaddr, rSize, PAGE));
  }
  if (!noNote) rows.push(row(PT_NOTE, PF_R, segOff + noteOffIn, segVaddr + noteOffIn, noteSize, 4));
  rows.forEach((r, i) => {
    out.set(r, segOff + i * PHENT);
  });
  u64(32, segOff); // e_phoff
  dv.setUint16(56, phnum, true); // e_phnum

  // Step (6): the dynamic section: new DT_NEEDED first, DT_STRTAB/DT_STRSZ → the copy.
  let o = segOff + dynOffIn;
  const put = (tag: bigint, val: bigint | number) => {
    u64(o, tag);
    u64(o + 8, val);
    o += 16;
  };
  let debugSlot = 0; // file offset of DT_DEBUG's value
  for (const off of nameOffs) put(DT_NEEDED, off);
  for (const [tag, val] of entries) {
    if (tag === DT_STRTAB) put(tag, segVaddr + strOffIn);
    else if (tag === DT_STRSZ) put(tag, newStrSize);
    else if (sa !== undefined && pie && tag === DT_RELA) put(tag, segVaddr + relaOffIn);
    else if (sa !== undefined && pie && tag === DT_RELASZ) put(tag, relaSize);
    else {
      if (tag === DT_DEBUG) debugSlot = o + 8;
      put(tag, val);
    }
  }
  if (sa !== undefined) {
    if (dynVal(DT_DEBUG) === undefined) {
      debugSlot = o + 8;
      put(DT_DEBUG, 0);
    }
    if (pie && dynVal(DT_RELA) === undefined) put(DT_RELA, segVaddr + relaOffIn);
    if (pie && dynVal(DT_RELASZ) === undefined) put(DT_RELASZ, relaSize);
    if (pie && dynVal(DT_RELAENT) === undefined) put(DT_RELAENT, 24);
    put(DT_PREINIT_ARRAY, segVaddr + preinitOffIn);
    put(DT_PREINIT_ARRAYSZ, 8);
  }
  put(DT_NULL, 0);
  out.set(oldStr, segOff + strOffIn);
  {
    let p = segOff + strOffIn + oldStr.length;
    for (const n of names) {
      out.set(n, p);
      p += n.length;
    }
  }

  // Step (7): the note.
  noteOffIn += segOff;
  if (!noNote) {
    dv.setUint32(noteOffIn, 5, true);
    dv.setUint32(noteOffIn + 4, req.noteDesc.length, true);
    dv.setUint32(noteOffIn + 8, NT_SYSI_PATCH, true);
    out.set(enc.encode(`${SYSI_NOTE_NAME}\0`), noteOffIn + 12);
    out.set(req.noteDesc, noteOffIn + 20);
  }

  // Step (7b), standalone: relocations, the preinit entry, the stub, its header, the libraries.
  if (sa !== undefined) {
    const noteDescVaddr = segVaddr + (noteOffIn - segOff) + 20;
    if (pie) {
      out.set(oldRela, segOff + relaOffIn);
      const r = segOff + relaOffIn + oldRela.length;
      u64(r, segVaddr + preinitOffIn); // r_offset: the preinit entry
      u64(r + 8, R_X86_64_RELATIVE); // r_info: no symbol
      u64(r + 16, xVaddr); // r_addend: the stub's entry (offset 0)
    }
    u64(segOff + preinitOffIn, xVaddr); // a non-PIE's final value (a PIE's before relocation)
    out.set(sa.stub, xOff);
    const h = xOff + stubHdrIn;
    const hv = xVaddr + stubHdrIn;
    const rel = (vaddr: number) => BigInt.asUintN(64, BigInt(vaddr - hv));
    out.set(enc.encode(`${STUB_MAGIC}\0`), h);
    dv.setUint32(h + 8, 1, true); // version
    dv.setUint32(h + 12, sa.libs.length, true);
    u64(h + 16, rel(segVaddr + (debugSlot - segOff))); // DT_DEBUG's d_un
    sa.libs.forEach((l, i) => {
      const e = h + 32 + i * STUB_LIB;
      out.set(l.bytes, rOff + (libOffsIn[i] as number));
      u64(e, rel(rVaddr + (libOffsIn[i] as number)));
      u64(e + 8, l.bytes.length);
      u64(e + 16, l.path === null ? 0n : rel(noteDescVaddr + l.path));
      u64(e + 24, l.key === null ? 0n : rel(noteDescVaddr + l.key));
      u64(e + 32, l.patch ?? 0);
    });
  }

  // Step (8): the .dynamic section header follows PT_DYNAMIC (gdb finds DT_DEBUG through it).
  const shoff = Number(sdv.getBigUint64(40, true));
  const shentsize = sdv.getUint16(58, true);
  for (const s of elf.sections) {
    if (s.type !== SHT_DYNAMIC || shentsize < 64) continue;
    const h = shoff + s.index * shentsize;
    if (h + 64 > src.length) continue;
    u64(h + 16, segVaddr + dynOffIn);
    u64(h + 24, segOff + dynOffIn);
    u64(h + 32, dynSize);
  }
  // …and .dynstr follows DT_STRTAB (the old table is a prefix of the new one: every offset holds).
  for (const s of elf.sections) {
    if (s.type !== SHT_STRTAB || s.offset !== strOff || shentsize < 64) continue;
    const h = shoff + s.index * shentsize;
    if (h + 64 > src.length) continue;
    u64(h + 16, segVaddr + strOffIn);
    u64(h + 24, segOff + strOffIn);
    u64(h + 32, newStrSize);
  }

  return {
    bytes: out,
    noteDescOffset: noteOffIn + 20,
    segments: [
      { type: "LOAD", offset: segOff, vaddr: segVaddr, size: segSize, flags: "RW" },
      ...(sa === undefined
        ? []
        : ([
            { type: "LOAD", holds: "stub", offset: xOff, vaddr: xVaddr, size: xSize, flags: "RE" },
            { type: "LOAD", holds: "libraries", offset: rOff, vaddr: rVaddr, size: rSize, flags: "R" },
          ] as AddedSegment[])),
      ...(noNote
        ? []
        : ([
            { type: "NOTE", offset: noteOffIn, vaddr: segVaddr + (noteOffIn - segOff), size: noteSize, flags: "R" },
          ] as AddedSegment[])),
    ],
  };
}

/** One Elf64_Phdr (56 bytes): paddr = vaddr. */
export function phdrRow(
  type: number,
  flags: number,
  off: number,
  vaddr: number,
  filesz: number,
  memsz: number,
  align: number,
): Uint8Array {
  const r = new Uint8Array(PHENT);
  const v = new DataView(r.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, flags, true);
  v.setBigUint64(8, BigInt(off), true);
  v.setBigUint64(16, BigInt(vaddr), true);
  v.setBigUint64(24, BigInt(vaddr), true);
  v.setBigUint64(32, BigInt(filesz), true);
  v.setBigUint64(40, BigInt(memsz), true);
  v.setBigUint64(48, BigInt(align), true);
  return r;
}

function u64Row(v: DataView, at: number, val: number): void {
  v.setBigUint64(at, BigInt(val), true);
}
