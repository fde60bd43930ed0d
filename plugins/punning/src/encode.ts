/**
 * Byte builders: the site jumps and the trampoline. native/tramp.c builds the same trampoline at
 * run time from the original bytes and the aux words (the layout below is the contract).
 *
 * Trampoline occupying [P, P + length) for a site S with the displaced window
 * [S - pre, S + 2 + post). The site jumps to L (= P + 4) when nothing precedes the site in the
 * window, else to P:
 *
 *   P:      <pre instructions, relocated>                         (evict only)
 *           eb 04                     jmp L                       (evict only)
 *   I:      0f 05                     syscall                     stub returns here (in-context)
 *           eb 12                     jmp R
 *   L:      48 8d 64 24 80            lea -0x80(%rsp),%rsp        step over the red zone
 *           4c 8d 1d <d32>            lea S(%rip),%r11            the site, for the stub
 *           ff 15 <d32>               call *slot(%rip)            slot = page + SLOT_OFFSET
 *   R:      <post instructions, relocated; a final jmp/jcc is re-encoded with a rel32>
 *           e9 <rel32>                jmp S + 2 + post            stub returns here (done)
 *
 * The stub leaves with `ret $128`, which pops R and the 128 red-zone bytes the trampoline stepped
 * over: both return points run with the site's own rsp (clone/vfork/rt_sigreturn need it at I).
 * r11 and rcx are free at a site (the kernel clobbers them), so `lea S(%rip),%r11` costs no save.
 * The normal path takes no jump inside the trampoline but the one back.
 *
 * With the passthrough hook (SYSI_FAST_PASSTHROUGH) the runtime rewrites the call as `90 e8 <rel32>`
 * (nop; call the stub at STUB_OFFSET of the same page): same length and return address, so the
 * planner's layout and checks stand (native/punning.h, docs/strategies/punning.md).
 */
import { PAGE, SLOT_OFFSET } from "./pages.ts";

/** Bytes every trampoline has: in-context block, lea, lea, call, jmp back. */
export const FIXED_BYTES = 4 + 5 + 7 + 6 + 5;
/** `jmp L` over the in-context block, after pre instructions. */
const PRE_JUMP = 2;
/** The in-context return point I relative to R (the call's return address). */
export const INCONTEXT_OFFSET = -22;

/** Where the site jumps to inside the trampoline span. */
export function entryOffset(hasPre: boolean): number {
  return hasPre ? 0 : 4;
}

export type BranchKind = "none" | "jmp8" | "jmp32" | "jcc8" | "jcc32";
export const BRANCH_CODES: Record<BranchKind, number> = { none: 0, jmp8: 1, jmp32: 2, jcc8: 3, jcc32: 4 };
const BRANCH_LEN: Record<BranchKind, number> = { none: 0, jmp8: 2, jmp32: 5, jcc8: 2, jcc32: 6 };

/** One displaced instruction with what relocation needs. */
export interface Displaced {
  vaddr: number;
  bytes: Uint8Array;
  /** Offset of a rip-relative disp32 inside bytes, or -1. */
  ripDisp: number;
  /** A relative jmp/jcc (only allowed as the window's last instruction). */
  branch: BranchKind;
}

export function branchLength(kind: BranchKind): number {
  return BRANCH_LEN[kind];
}

/** Relocated length of an instruction (rel8 branches grow to rel32). */
export function relocatedLength(d: Displaced): number {
  if (d.branch === "jmp8" || d.branch === "jmp32") return 5;
  if (d.branch === "jcc8" || d.branch === "jcc32") return 6;
  return d.bytes.length;
}

export function trampolineLength(pre: readonly Displaced[], post: readonly Displaced[]): number {
  let n = FIXED_BYTES + (pre.length > 0 ? PRE_JUMP : 0);
  for (const d of pre) n += relocatedLength(d);
  for (const d of post) n += relocatedLength(d);
  return n;
}

function i32(v: number): boolean {
  return Number.isInteger(v) && v >= -0x8000_0000 && v <= 0x7fff_ffff;
}

function putI32(out: Uint8Array, at: number, v: number): void {
  new DataView(out.buffer, out.byteOffset).setInt32(at, v, true);
}

function getI32(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset).getInt32(at, true);
}

/** Absolute target of a relative branch. */
export function branchTarget(d: Displaced): number {
  const end = d.vaddr + d.bytes.length;
  if (d.branch === "jmp8" || d.branch === "jcc8") return end + (((d.bytes[1] as number) << 24) >> 24);
  if (d.branch === "jmp32") return end + getI32(d.bytes, 1);
  if (d.branch === "jcc32") return end + getI32(d.bytes, 2);
  return end;
}

/** Write d relocated to address at; false when a displacement no longer fits in 32 bits. */
function relocate(out: Uint8Array, pos: number, at: number, d: Displaced): boolean {
  const len = relocatedLength(d);
  if (d.branch !== "none") {
    const target = branchTarget(d);
    const rel = target - (at + len);
    if (!i32(rel)) return false;
    if (d.branch === "jmp8" || d.branch === "jmp32") {
      out[pos] = 0xe9; // jmp rel32
    } else {
      const cc = d.branch === "jcc8" ? (d.bytes[0] as number) & 0x0f : (d.bytes[1] as number) & 0x0f;
      out[pos] = 0x0f; // jcc rel32: 0f 8<cc>
      out[pos + 1] = 0x80 | cc;
    }
    putI32(out, pos + len - 4, rel);
    return true;
  }
  out.set(d.bytes, pos);
  if (d.ripDisp >= 0) {
    const disp = getI32(d.bytes, d.ripDisp) + (d.vaddr + d.bytes.length) - (at + len);
    if (!i32(disp)) return false;
    putI32(out, pos + d.ripDisp, disp);
  }
  return true;
}

/**
 * Build the trampoline for site S on the span starting at p (the site jumps to
 * p + entryOffset(pre.length > 0)). Returns null when a relocated displacement does not fit (the
 * caller then tries another address or tactic).
 */
export function buildTrampoline(
  p: number,
  site: number,
  pre: readonly Displaced[],
  post: readonly Displaced[],
  back: number,
): Uint8Array | null {
  const out = new Uint8Array(trampolineLength(pre, post));
  let pos = 0;
  for (const d of pre) {
    if (!relocate(out, pos, p + pos, d)) return null;
    pos += relocatedLength(d);
  }
  if (pre.length > 0) {
    out.set([0xeb, 0x04], pos); // jmp L
    pos += PRE_JUMP;
  }
  // I: syscall ; jmp R
  out.set([0x0f, 0x05, 0xeb, 0x12], pos);
  pos += 4;
  // L: lea -0x80(%rsp),%rsp
  out.set([0x48, 0x8d, 0x64, 0x24, 0x80], pos);
  pos += 5;
  // lea S(%rip),%r11
  out.set([0x4c, 0x8d, 0x1d], pos);
  const lea = site - (p + pos + 7);
  if (!i32(lea)) return null;
  putI32(out, pos + 3, lea);
  pos += 7;
  // call *slot(%rip)
  const slot = Math.floor((p + pos) / PAGE) * PAGE + SLOT_OFFSET;
  out.set([0xff, 0x15], pos);
  putI32(out, pos + 2, slot - (p + pos + 6));
  pos += 6;
  // R: post instructions
  for (const d of post) {
    if (!relocate(out, pos, p + pos, d)) return null;
    pos += relocatedLength(d);
  }
  // jmp back
  out[pos] = 0xe9;
  const rel = back - (p + pos + 5);
  if (!i32(rel)) return null;
  putI32(out, pos + 1, rel);
  return out;
}

/**
 * The trampoline of an evicted instruction run on its own (tactic `succ`: the site's successor,
 * entered by the jump that now starts it): the instructions relocated, then `e9 <rel32>` back to
 * `back` (the original address after them). Null when a displacement does not fit.
 *
 *   P:     <instructions, relocated; a final jmp/jcc re-encoded with a rel32>
 *          e9 <rel32>                jmp back
 */
export function buildRelocTrampoline(p: number, insns: readonly Displaced[], back: number): Uint8Array | null {
  const out = new Uint8Array(relocTrampolineLength(insns));
  let pos = 0;
  for (const d of insns) {
    if (!relocate(out, pos, p + pos, d)) return null;
    pos += relocatedLength(d);
  }
  out[pos] = 0xe9;
  const rel = back - (p + pos + 5);
  if (!i32(rel)) return null;
  putI32(out, pos + 1, rel);
  return out;
}

export function relocTrampolineLength(insns: readonly Displaced[]): number {
  return insns.reduce((n, d) => n + relocatedLength(d), 5);
}

/** `e9 <rel32>`: jmp from `from` to `to`. */
export function jmpRel32(from: number, to: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = 0xe9;
  putI32(out, 1, to - (from + 5));
  return out;
}

/** `eb <rel8>`: short jmp from `from` to `to` (caller checks the range). */
export function jmpRel8(from: number, to: number): Uint8Array {
  return Uint8Array.of(0xeb, (to - (from + 2)) & 0xff);
}

/**
 * Offset of the rip-relative disp32 in an instruction known to have a rip-relative operand:
 * legacy/REX prefixes, VEX (c4/c5) or EVEX (62), a 1-3 byte opcode, then ModRM with mod=00 rm=101
 * and the disp32 right after it. -1 when the encoding is not one we can prove.
 */
export function ripDispOffset(b: Uint8Array): number {
  let i = 0;
  const legacy = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]);
  while (i < b.length && legacy.has(b[i] as number)) i++;
  const first = b[i];
  if (first === 0xc5)
    i += 3; // c5 vv op modrm
  else if (first === 0xc4)
    i += 4; // c4 vv vv op modrm
  else if (first === 0x62)
    i += 5; // 62 p0 p1 p2 op modrm
  else {
    if (first !== undefined && first >= 0x40 && first <= 0x4f) i++;
    if (b[i] === 0x0f) {
      i++;
      if (b[i] === 0x38 || b[i] === 0x3a) i++;
    }
    i++; // opcode
  }
  const modrm = b[i];
  if (modrm === undefined || (modrm & 0xc7) !== 0x05 || i + 5 > b.length) return -1;
  return i + 1;
}

/** Classify a relative jmp/jcc by its bytes (no prefixes); "none" for anything else. */
export function branchKindOf(b: Uint8Array): BranchKind {
  const op = b[0] as number;
  if (op === 0xeb && b.length === 2) return "jmp8";
  if (op === 0xe9 && b.length === 5) return "jmp32";
  if (op >= 0x70 && op <= 0x7f && b.length === 2) return "jcc8";
  if (op === 0x0f && b.length === 6 && ((b[1] as number) & 0xf0) === 0x80) return "jcc32";
  return "none";
}
