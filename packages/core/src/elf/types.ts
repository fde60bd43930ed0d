/**
 * The ELF64 model @sysi/core exposes. All addresses and offsets are plain numbers: x86-64 user
 * addresses fit in 47 bits, far below 2^53. Every offset/size in the file is checked against the
 * file length before use; bad input throws ElfError (codes below), never reads out of range.
 *
 * Error codes (ElfError.code): ELF_NOT_ELF, ELF_TRUNCATED, ELF_CLASS (not ELF64), ELF_ENDIAN,
 * ELF_MACHINE (not x86-64), ELF_BAD_HEADER, ELF_BAD_SEGMENT, ELF_BAD_SECTION, ELF_BAD_DYNAMIC,
 * ELF_BAD_SYMBOLS, ELF_BAD_EH_FRAME, ELF_TOO_LARGE.
 */

export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_GNU_EH_FRAME = 0x6474e550;
export const PT_GNU_STACK = 0x6474e551;
export const PT_GNU_RELRO = 0x6474e552;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const SHF_EXECINSTR = 4;
export const STT_FUNC = 2;
export const STT_OBJECT = 1;

export interface ElfSegment {
  index: number;
  type: number;
  flags: number; // PF_*
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number; // SHF_*
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

export interface ElfSymbol {
  name: string;
  value: number; // vaddr
  size: number;
  type: number; // STT_*
  bind: number; // STB_*
  shndx: number;
  source: "symtab" | "dynsym";
}

export interface ElfDynamic {
  needed: string[]; // DT_NEEDED, in order
  soname: string | null;
  rpath: string | null; // DT_RPATH
  runpath: string | null; // DT_RUNPATH
  initArray: { vaddr: number; size: number } | null; // DT_INIT_ARRAY / DT_INIT_ARRAYSZ
  init: number | null; // DT_INIT
  flags1: number; // DT_FLAGS_1 (0 if absent)
}

/** One function range known from a symbol (STT_FUNC with size) or an .eh_frame FDE. */
export interface FunctionRange {
  start: number; // vaddr
  end: number; // vaddr, exclusive
  name: string | null;
  source: "symbol" | "eh_frame";
}

export interface ElfFile {
  path: string | null;
  /** The whole file. */
  bytes: Uint8Array;
  type: number; // ET_EXEC, ET_DYN, …
  entry: number;
  segments: ElfSegment[];
  sections: ElfSection[]; // empty when the file has no (or a stripped/bad-but-ignorable) section table
  interpreter: string | null; // PT_INTERP
  dynamic: ElfDynamic | null;
  buildId: string | null; // lowercase hex of NT_GNU_BUILD_ID
  /** Optional parts that were malformed and ignored (grows when lazy parts are parsed). */
  warnings: ElfWarning[];
  /** Executable PT_LOAD segments (PF_X). */
  execSegments(): ElfSegment[];
  /** File bytes backing [vaddr, vaddr+len) if entirely inside one PT_LOAD's file image, else null. */
  bytesAt(vaddr: number, len: number): Uint8Array | null;
  /** vaddr → file offset (null when not file-backed). */
  vaddrToOffset(vaddr: number): number | null;
  /** .symtab + .dynsym, deduplicated by (value, name). Parsed lazily on first call. */
  symbols(): ElfSymbol[];
  /** Function ranges from symbols and .eh_frame FDEs, sorted by start, duplicates merged. Lazy. */
  functions(): FunctionRange[];
  /** Data object ranges (STT_OBJECT with size > 0) that lie inside executable segments. Lazy. */
  dataInText(): { start: number; end: number; name: string }[];
}

/**
 * Something optional in the file was malformed and was ignored (a bad section table, a bad
 * .eh_frame entry, a bad note). `code` is one of the ElfError codes above. Additive to the model.
 */
export interface ElfWarning {
  code: string;
  message: string;
}
