/**
 * The patched-file writer for statically linked executables (ET_EXEC, no PT_INTERP, no
 * PT_DYNAMIC: Go, musl and glibc `-static` programs). Nothing of the input moves; the output is
 *
 *   - the input with its site bytes changed in place (inside executable sections only),
 *   - one new RW PT_LOAD at the end of the file holding a copy of the program header table
 *     (e_phoff and PT_PHDR point at it: the kernel's AT_PHDR names it) and the sysi note
 *     (NT_SYSI_PATCH: configuration and plans, see embed.ts), named by a new PT_NOTE,
 *   - the static runtime (native/static: libsysi and the chain's strategy runtimes linked into
 *     one position-independent image without libc) placed at a fixed address above it: each of
 *     its PT_LOADs becomes one of the output's, its R_X86_64_RELATIVE relocations applied here,
 *     `sysi_static_entry` set to the input's entry point,
 *   - e_entry = the runtime's `sysi_static_start`, which sets the runtime up (plans applied)
 *     and jumps to the input's entry with the kernel's initial stack and registers.
 *
 * The output is a pure function of the input, the runtime image and the request.
 */
import { type ElfFile, ET_EXEC, PT_DYNAMIC, PT_INTERP, PT_LOAD, PT_NOTE, SHF_EXECINSTR } from "../elf/types.ts";
import { type AddedSegment, hasSysiNote, NT_SYSI_PATCH, PatchError, phdrRow, SYSI_NOTE_NAME } from "./elf-writer.ts";

const PT_PHDR = 6;
const PHENT = 56;
const PAGE = 4096;
const PF_R = 4;
const PF_W = 2;
const DT_NULL = 0n;
const DT_RELA = 7n;
const DT_RELASZ = 8n;
const DT_RELAENT = 9n;
const DT_RELR = 36n;
const R_X86_64_RELATIVE = 8;
const REL32_REACH = 2 ** 31 + 2 ** 21;

const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;
const unsupported = (what: string) => new PatchError("PATCH_UNSUPPORTED", what);

export interface StaticRewriteRequest {
  patches: { vaddr: number; bytes: Uint8Array }[];
  noteDesc: Uint8Array;
  /** The static runtime image (sysi-static.elf). */
  runtime: ElfFile;
  /** Address ranges the new segments must stay clear of (trampoline pages), [lo, hi). */
  reserved: { lo: number; hi: number }[];
  /**
   * The build-id (hex) written as an NT_GNU_BUILD_ID note into the new PT_NOTE: the runtime keys
   * the program by the build-id it finds in a PT_NOTE in memory (Go keeps its GNU note outside
   * any PT_NOTE, and many Go programs have none: then a hash of the input stands in).
   */
  buildId: string;
}

export interface StaticRewriteResult {
  bytes: Uint8Array;
  segments: AddedSegment[];
  noteDescOffset: number;
  /** Where the runtime image was placed (its link address 0 maps here). */
  runtimeBase: number;
}

/** Is `elf` a statically linked executable this writer handles? */
export function isStaticExecutable(elf: ElfFile): boolean {
  return (
    !elf.segments.some((s) => s.type === PT_INTERP) &&
    !elf.segments.some((s) => s.type === PT_DYNAMIC) &&
    elf.type === ET_EXEC
  );
}

export function checkStaticRewritable(elf: ElfFile): void {
  if (hasSysiNote(elf)) {
    throw new PatchError("PATCH_ALREADY_PATCHED", "already patched by sysi (it carries a SYSI note)", {
      suggestions: ["patch the original file"],
    });
  }
  if (!isStaticExecutable(elf)) throw unsupported("not a statically linked (non-PIE) executable");
  const b = elf.bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint16(54, true) !== PHENT) throw unsupported(`program header entry size ${dv.getUint16(54, true)}`);
  if (!elf.segments.some((s) => s.type === PT_LOAD)) throw unsupported("no PT_LOAD");
}

interface RuntimeImage {
  loads: { vaddr: number; offset: number; filesz: number; memsz: number; flags: number }[];
  entry: number;
  entryVar: number;
  relocs: { offset: number; addend: bigint }[];
  span: number;
}

/** The runtime image's loadable parts, its relocations (RELATIVE only) and its two symbols. */
function readRuntime(rt: ElfFile): RuntimeImage {
  const b = rt.bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const loads = rt.segments
    .filter((s) => s.type === PT_LOAD)
    .map((s) => ({ vaddr: s.vaddr, offset: s.offset, filesz: s.filesz, memsz: s.memsz, flags: s.flags }));
  if (loads.length === 0 || (loads[0]?.vaddr ?? 1) !== 0)
    throw new PatchError("PATCH_RUNTIME", "bad static runtime image");
  const dyn = rt.segments.find((s) => s.type === PT_DYNAMIC);
  const tags = new Map<bigint, bigint>();
  if (dyn !== undefined) {
    for (let o = dyn.offset; o + 16 <= dyn.offset + dyn.filesz; o += 16) {
      const tag = dv.getBigUint64(o, true);
      if (tag === DT_NULL) break;
      tags.set(tag, dv.getBigUint64(o + 8, true));
    }
  }
  if (tags.has(DT_RELR)) throw new PatchError("PATCH_RUNTIME", "static runtime uses DT_RELR (not supported)");
  const relocs: RuntimeImage["relocs"] = [];
  const rela = tags.get(DT_RELA);
  if (rela !== undefined) {
    const size = Number(tags.get(DT_RELASZ) ?? 0n);
    const ent = Number(tags.get(DT_RELAENT) ?? 24n);
    const off = rt.vaddrToOffset(Number(rela));
    if (off === null || ent !== 24) throw new PatchError("PATCH_RUNTIME", "bad relocation table in the static runtime");
    for (let o = off; o < off + size; o += ent) {
      const type = Number(dv.getBigUint64(o + 8, true) & 0xffffffffn);
      if (type !== R_X86_64_RELATIVE) {
        throw new PatchError("PATCH_RUNTIME", `static runtime relocation type ${type} (only RELATIVE is handled)`);
      }
      relocs.push({ offset: Number(dv.getBigUint64(o, true)), addend: dv.getBigInt64(o + 16, true) });
    }
  }
  const sym = (name: string) => {
    const s = rt.symbols().find((x) => x.name === name);
    if (s === undefined) throw new PatchError("PATCH_RUNTIME", `static runtime without ${name}`);
    return s.value;
  };
  const last = loads[loads.length - 1] as RuntimeImage["loads"][number];
  return {
    loads,
    entry: sym("sysi_static_start"),
    entryVar: sym("sysi_static_entry"),
    relocs,
    span: alignUp(last.vaddr + last.memsz, PAGE),
  };
}

export function rewriteStatic(elf: ElfFile, req: StaticRewriteRequest): StaticRewriteResult {
  checkStaticRewritable(elf);
  const rt = readRuntime(req.runtime);
  const src = elf.bytes;
  const sdv = new DataView(src.buffer, src.byteOffset, src.byteLength);

  // Step (1): the new RW segment: phdrs | note. Rows: the old ones, the new RW PT_LOAD and the
  // runtime's PT_LOADs after the last old PT_LOAD, the new PT_NOTE last.
  const phnum = elf.segments.length + 2 + rt.loads.length;
  const phdrSize = phnum * PHENT;
  const noteOffIn = alignUp(phdrSize, 8) + 4; // descriptor (after 12 + "SYSI\0"→8) 8-aligned
  const id = Buffer.from(req.buildId, "hex");
  const sysiNoteSize = 20 + alignUp(req.noteDesc.length, 4);
  const noteSize = sysiNoteSize + 16 + alignUp(id.length, 4); // + the GNU build-id note
  const segSize = noteOffIn + noteSize;
  const segOff = alignUp(src.length, PAGE);
  let maxEnd = 0;
  for (const s of elf.segments) if (s.type === PT_LOAD) maxEnd = Math.max(maxEnd, s.vaddr + s.memsz);
  for (const r of req.reserved) maxEnd = Math.max(maxEnd, r.hi);
  // Beyond rel32 reach of every site, as for dynamic programs (elf-writer.ts).
  const segVaddr = alignUp(maxEnd + REL32_REACH, PAGE);
  const base = alignUp(segVaddr + segSize, 2 ** 21); // the runtime's link address 0
  if (base + rt.span >= 2 ** 47) throw unsupported("no address space left for the new segments");

  // Step (2): file layout of the runtime's segments: offset ≡ address (mod page).
  let fileEnd = segOff + segSize;
  const placed = rt.loads.map((l) => {
    const vaddr = base + l.vaddr;
    const off = alignUp(fileEnd, PAGE) + (vaddr % PAGE);
    fileEnd = off + l.filesz;
    return { ...l, vaddr, fileOff: off };
  });
  const out = new Uint8Array(fileEnd);
  out.set(src, 0);
  const dv = new DataView(out.buffer);
  const u64 = (o: number, v: number | bigint) => dv.setBigUint64(o, BigInt(v), true);
  for (const p of placed) out.set(req.runtime.bytes.subarray(p.offset, p.offset + p.filesz), p.fileOff);
  const fileOffOf = (linkVaddr: number, len: number) => {
    for (const p of placed) {
      const v = base + linkVaddr;
      if (v >= p.vaddr && v + len <= p.vaddr + p.filesz) return p.fileOff + (v - p.vaddr);
    }
    throw new PatchError("PATCH_RUNTIME", `static runtime address 0x${linkVaddr.toString(16)} not in its file image`);
  };
  for (const r of rt.relocs) u64(fileOffOf(r.offset, 8), BigInt(base) + r.addend);
  u64(fileOffOf(rt.entryVar, 8), elf.entry);

  // Step (3): site patches, inside executable sections only.
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

  // Step (4): the program header table.
  const phoff = Number(sdv.getBigUint64(32, true));
  const rows: Uint8Array[] = [];
  let lastLoad = -1;
  for (let i = 0; i < elf.segments.length; i++) {
    rows.push(src.slice(phoff + i * PHENT, phoff + (i + 1) * PHENT));
    if (elf.segments[i]?.type === PT_LOAD) lastLoad = i;
  }
  const row = phdrRow;
  for (const r of rows) {
    const v = new DataView(r.buffer);
    if (v.getUint32(0, true) !== PT_PHDR) continue;
    v.setBigUint64(8, BigInt(segOff), true);
    v.setBigUint64(16, BigInt(segVaddr), true);
    v.setBigUint64(24, BigInt(segVaddr), true);
    v.setBigUint64(32, BigInt(phdrSize), true);
    v.setBigUint64(40, BigInt(phdrSize), true);
  }
  rows.splice(
    lastLoad + 1,
    0,
    row(PT_LOAD, PF_R | PF_W, segOff, segVaddr, segSize, segSize, PAGE),
    ...placed.map((p) => row(PT_LOAD, p.flags, p.fileOff, p.vaddr, p.filesz, p.memsz, PAGE)),
  );
  rows.push(row(PT_NOTE, PF_R, segOff + noteOffIn, segVaddr + noteOffIn, noteSize, noteSize, 4));
  rows.forEach((r, i) => {
    out.set(r, segOff + i * PHENT);
  });
  u64(32, segOff); // e_phoff
  dv.setUint16(56, phnum, true); // e_phnum
  u64(24, base + rt.entry); // e_entry

  // Step (5): the note.
  const n = segOff + noteOffIn;
  dv.setUint32(n, 5, true);
  dv.setUint32(n + 4, req.noteDesc.length, true);
  dv.setUint32(n + 8, NT_SYSI_PATCH, true);
  out.set(new TextEncoder().encode(`${SYSI_NOTE_NAME}\0`), n + 12);
  out.set(req.noteDesc, n + 20);
  const g = n + sysiNoteSize;
  dv.setUint32(g, 4, true);
  dv.setUint32(g + 4, id.length, true);
  dv.setUint32(g + 8, 3, true); // NT_GNU_BUILD_ID
  out.set(new TextEncoder().encode("GNU\0"), g + 12);
  out.set(id, g + 16);

  return {
    bytes: out,
    noteDescOffset: n + 20,
    runtimeBase: base,
    segments: [
      { type: "LOAD", offset: segOff, vaddr: segVaddr, size: segSize, flags: "RW" },
      ...placed.map(
        (p): AddedSegment => ({
          type: "LOAD",
          offset: p.fileOff,
          vaddr: p.vaddr,
          size: p.memsz,
          flags: `${p.flags & 4 ? "R" : ""}${p.flags & 2 ? "W" : ""}${p.flags & 1 ? "E" : ""}`,
        }),
      ),
      { type: "NOTE", offset: n, vaddr: segVaddr + noteOffIn, size: noteSize, flags: "R" },
    ],
  };
}
