export type SiteKind = "syscall" | "sysenter" | "int80";

/** One system-call instruction found in a module. */
export interface Site {
  vaddr: number; // link-time virtual address of the instruction
  offset: number; // file offset
  kind: SiteKind;
  /** Length of the instruction itself (2 for all three kinds). */
  length: number;
  /** The instruction bytes followed by the next >= 16 bytes of the segment (fewer at the segment end). */
  bytes: Uint8Array;
  /** Syscall number from a preceding `mov $imm,%eax`/`%rax` in the same basic block, else null. */
  nr: number | null;
  /** Enclosing function name when known. */
  function: string | null;
  /** Enclosing function range when known (symbol or .eh_frame). */
  functionRange: { start: number; end: number } | null;
  /** Found only by sweeping a gap, or decoding conflicts: never patch without extra evidence. */
  uncertain: boolean;
  /** The 2 bytes cross a 4 KiB page boundary. */
  straddlesPage: boolean;
}

export interface ScanStats {
  textBytes: number;
  decodedBytes: number;
  functions: number;
  byKind: Record<SiteKind, number>;
  uncertain: number;
  ms: number;
}

export interface ScanResult {
  path: string | null;
  buildId: string | null;
  sites: Site[];
  stats: ScanStats;
}
