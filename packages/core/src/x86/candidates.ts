/** Byte-level search for the opcode pairs of the three syscall-class instructions. */
import type { SiteKind } from "./types.ts";

/** Opcode bytes of each site kind (the instruction may carry prefixes before them). */
export const SITE_OPCODES: Readonly<Record<SiteKind, readonly [number, number]>> = {
  syscall: [0x0f, 0x05],
  sysenter: [0x0f, 0x34],
  int80: [0xcd, 0x80],
};

export interface Candidate {
  /** Index of the first opcode byte in the searched buffer. */
  pos: number;
  kind: SiteKind;
}

/**
 * Every position of `0f 05`, `0f 34` and `cd 80` in `bytes[from, to)`, sorted. Most are not
 * instructions (they sit inside immediates, displacements or data): the decoder decides.
 */
export function findCandidates(bytes: Uint8Array, from = 0, to = bytes.length): Candidate[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset + from, Math.max(0, to - from));
  const out: Candidate[] = [];
  for (const kind of Object.keys(SITE_OPCODES) as SiteKind[]) {
    const needle = Buffer.from(SITE_OPCODES[kind]);
    for (let p = buf.indexOf(needle); p >= 0; p = buf.indexOf(needle, p + 1)) out.push({ pos: p + from, kind });
  }
  return out.sort((a, b) => a.pos - b.pos);
}

/** Kind of the opcode pair at `bytes[pos]`, or null. */
export function candidateKindAt(bytes: Uint8Array, pos: number): SiteKind | null {
  const a = bytes[pos];
  const b = bytes[pos + 1];
  if (a === 0x0f) return b === 0x05 ? "syscall" : b === 0x34 ? "sysenter" : null;
  return a === 0xcd && b === 0x80 ? "int80" : null;
}
