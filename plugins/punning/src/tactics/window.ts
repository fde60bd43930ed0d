/**
 * The instructions around a site that a tactic may displace into the trampoline.
 *
 * A window is a run of whole instructions [A, B) containing the site S. Every instruction in it
 * except the site is copied (relocated) into the trampoline, so each must be relocatable:
 * - not a branch, except a relative jmp/jcc or a `ret` as the window's last instruction;
 * - a rip-relative operand only when we can prove where its disp32 is (encode.ts ripDispOffset);
 * - no other system-call instruction.
 * For the unsafe tactics (jmp, punx, short, evict), no instruction may start strictly inside
 * (A, B) at a known branch target, since the patch overwrites those bytes; the sound tactics
 * (sound.ts) pass checkTargets = false: they never overwrite an instruction start with anything
 * but a jump to a trampoline that runs that instruction.
 */
import type { InsnInfo, SiteContext } from "@sysi/core/strategy";
import { type BranchKind, branchKindOf, type Displaced, ripDispOffset } from "../encode.ts";

export interface Relocatable {
  ok: true;
  d: Displaced;
  /** A jmp/jcc/ret: nothing may follow it in the window. */
  last: boolean;
}

export interface NotRelocatable {
  ok: false;
  reason: string;
}

const SITE_MNEMONICS = new Set(["syscall", "sysenter", "int", "int1", "int3", "into", "ud2", "ud0", "ud1"]);

/** Can insn be copied into a trampoline, and how? */
export function classify(insn: InsnInfo): Relocatable | NotRelocatable {
  if (SITE_MNEMONICS.has(insn.mnemonic)) return { ok: false, reason: "displaced-trap-or-syscall" };
  let branch: BranchKind = "none";
  let last = false;
  if (insn.isBranch) {
    if (insn.mnemonic === "ret" && !insn.ripRelative) {
      last = true;
    } else {
      branch = branchKindOf(insn.bytes);
      if (branch === "none") return { ok: false, reason: "displaced-branch" };
      last = true;
    }
  }
  let ripDisp = -1;
  if (insn.ripRelative) {
    ripDisp = ripDispOffset(insn.bytes);
    if (ripDisp < 0) return { ok: false, reason: "displaced-rip-unknown" };
  }
  return { ok: true, d: { vaddr: insn.vaddr, bytes: insn.bytes, ripDisp, branch }, last };
}

export interface Neighbours {
  /** Instructions after the site, in order (stops at the first undecodable one or after 16 bytes). */
  after: InsnInfo[];
  /** Instructions before the site, nearest first, contiguous up to the site (empty if unknown). */
  before: InsnInfo[];
}

/** Decode up to `span` bytes of instructions on each side of the site. */
export function neighbours(ctx: SiteContext, site: number, siteLen: number, span = 16): Neighbours {
  const after: InsnInfo[] = [];
  let v = site + siteLen;
  while (v < site + siteLen + span) {
    const insn = ctx.decodeAt(v);
    if (insn === null || insn.length === 0) break;
    after.push(insn);
    v += insn.length;
  }
  const before: InsnInfo[] = [];
  const fn = ctx.functionInsns(site);
  if (fn !== null) {
    const i = fn.findIndex((x) => x.vaddr === site);
    let expect = site;
    for (let j = i - 1; j >= 0 && site - (fn[j] as InsnInfo).vaddr <= span; j--) {
      const insn = fn[j] as InsnInfo;
      if (insn.vaddr + insn.length !== expect) break;
      before.push(insn);
      expect = insn.vaddr;
    }
  }
  return { after, before };
}

export interface Window {
  /** Start of the window (A) and its end (B). */
  start: number;
  end: number;
  pre: Displaced[];
  post: Displaced[];
}

export type WindowResult = { ok: true; w: Window } | { ok: false; reason: string };

/**
 * The window with `nPre` instructions before the site and `nPost` after it, checked for
 * relocatability and known targets.
 */
export function makeWindow(
  ctx: SiteContext,
  site: number,
  siteLen: number,
  nb: Neighbours,
  nPre: number,
  nPost: number,
  checkTargets = true,
): WindowResult {
  if (nPre > nb.before.length) return { ok: false, reason: "no-previous-insn" };
  if (nPost > nb.after.length) return { ok: false, reason: "no-following-insn" };
  const pre: Displaced[] = [];
  for (let i = nPre - 1; i >= 0; i--) {
    const insn = nb.before[i] as InsnInfo;
    const c = classify(insn);
    if (!c.ok) return { ok: false, reason: c.reason };
    if (c.last) return { ok: false, reason: "displaced-branch" };
    pre.push(c.d);
  }
  const post: Displaced[] = [];
  for (let i = 0; i < nPost; i++) {
    const insn = nb.after[i] as InsnInfo;
    const c = classify(insn);
    if (!c.ok) return { ok: false, reason: c.reason };
    if (c.last && i !== nPost - 1) return { ok: false, reason: "displaced-branch" };
    post.push(c.d);
  }
  const start = pre.length > 0 ? (pre[0] as Displaced).vaddr : site;
  const last = post[post.length - 1];
  const end = last !== undefined ? last.vaddr + last.bytes.length : site + siteLen;
  if (!checkTargets) return { ok: true, w: { start, end, pre, post } };
  // Instruction starts strictly inside (start, end) must not be branch targets.
  const inner = [...pre.map((d) => d.vaddr), site, ...post.map((d) => d.vaddr)].filter((a) => a > start);
  for (const a of inner) if (ctx.isKnownTarget(a)) return { ok: false, reason: "displaced-insn-is-target" };
  return { ok: true, w: { start, end, pre, post } };
}
