/**
 * What every tactic produces: the site's byte patch plus a trampoline placement, encoded into the
 * SitePatch the composite planner records. The runtime rebuilds the trampoline from the aux words
 * and the original bytes (native/tramp.c), so the plan carries no trampoline code.
 *
 * aux[0] bits 0..31 = T - S (signed 32-bit): the jump target in the trampoline relative to the site
 *                   (bias-invariant; the span starts at T - entryOffset, encode.ts);
 *        bits 32..63 = S, the site's link-time vaddr (the runtime derives the load bias from it,
 *        which names the module: physical page indexes are per module).
 * aux[1] bits:
 *    0..11  module-local physical page index of the site's trampoline
 *   12..23  module-local physical page index of the second trampoline (tactics succ, neigh)
 *   24..27  pre:  bytes of displaced instructions before the site
 *   28..31  post: bytes of displaced instructions after the site (original encoding)
 *   32..35  rip fixup 1: offset of a disp32 inside the window (0 = none)
 *   36..39  rip fixup 1: end of that instruction inside the window, minus 1
 *   40..47  rip fixup 2 (same layout)
 *   48..50  final branch kind (encode.ts BRANCH_CODES)
 *   51..55  tactic id (TACTIC_IDS)
 */
import type { SitePatch } from "@sysi/core/strategy";
import { BRANCH_CODES, buildTrampoline, type Displaced, entryOffset, trampolineLength } from "../encode.ts";
import type { Movable, Placement, TrampolineSpace } from "../pages.ts";
import type { Window } from "./window.ts";

export type TacticName = "jmp" | "pun" | "short" | "evict" | "succ" | "neigh" | "punx";
export const TACTIC_IDS: Record<TacticName, number> = {
  jmp: 1,
  pun: 2,
  short: 3,
  evict: 4,
  succ: 5,
  neigh: 6,
  punx: 7,
};
/** Physical page indexes are 12-bit fields of aux[1]. */
export const MAX_PHYS_PAGES = 4096;

export interface TacticOk {
  ok: true;
  patch: SitePatch;
  /** Start of the trampoline's span and its length (for packing statistics and tests). */
  t: number;
  length: number;
  /** Where the site jumps to (t + entryOffset). */
  target: number;
  code: Uint8Array;
  /** Set for free-target tactics (jmp, evict, short); puns are fixed by the bytes. */
  movable?: Movable;
  /** The second trampoline of tactics succ and neigh (its jump is in the patch bytes). */
  second?: { t: number; length: number; code: Uint8Array };
}

export interface TacticRefusal {
  ok: false;
  reason: string;
  detail?: string;
}

export type TacticResult = TacticOk | TacticRefusal;

export function refuse(reason: string, detail?: string): TacticRefusal {
  return detail === undefined ? { ok: false, reason } : { ok: false, reason, detail };
}

/** aux[1] for a window, or null when it cannot be described (more than two rip fixups). */
export function packAux1(
  phys: number,
  w: Window,
  site: number,
  siteLen: number,
  tactic: TacticName,
  phys2 = 0,
): bigint | null {
  const pre = site - w.start;
  const post = w.end - (site + siteLen);
  if (phys >= MAX_PHYS_PAGES || phys2 >= MAX_PHYS_PAGES) return null;
  let v = BigInt(phys) | (BigInt(phys2) << 12n) | (BigInt(pre) << 24n) | (BigInt(post) << 28n);
  let fix = 0;
  const all: Displaced[] = [...w.pre, ...w.post];
  for (const d of all) {
    if (d.ripDisp < 0) continue;
    if (fix === 2) return null;
    const off = d.vaddr + d.ripDisp - w.start;
    const end = d.vaddr + d.bytes.length - w.start;
    v |= BigInt(off | ((end - 1) << 4)) << BigInt(32 + 8 * fix);
    fix++;
  }
  const last = w.post[w.post.length - 1];
  if (last !== undefined) v |= BigInt(BRANCH_CODES[last.branch]) << 48n;
  v |= BigInt(TACTIC_IDS[tactic]) << 51n;
  return v;
}

export function trampolineLen(w: Window): number {
  return trampolineLength(w.pre, w.post);
}

/** Assemble the SitePatch from the patch range and bytes, the placement and the window. */
export function sitePatch(
  file: Uint8Array,
  patchStart: number,
  bytes: Uint8Array,
  placement: Placement,
  site: number,
  siteLen: number,
  w: Window,
  tactic: TacticName,
  code: Uint8Array,
  movable?: Movable,
): TacticResult {
  const aux1 = packAux1(placement.phys, w, site, siteLen, tactic);
  if (aux1 === null) return refuse("too-many-rip-fixups");
  if (site >= 2 ** 32) return refuse("site-vaddr-too-high");
  const target = placement.t + entryOffset(w.pre.length > 0);
  const delta = BigInt.asUintN(32, BigInt(target - site)) | (BigInt(site) << 32n);
  const out: TacticOk = {
    ok: true,
    patch: {
      patch: { vaddr: patchStart, old: file.slice(), bytes },
      aux: [delta, aux1],
      tactic,
    },
    t: placement.t,
    length: code.length,
    target,
    code,
  };
  if (movable !== undefined) out.movable = movable;
  return out;
}

/**
 * Choose a free trampoline span for a window whose site jump can reach anywhere (rel32 free);
 * `target` is where the site jumps.
 */
export function placeFree(
  space: TrampolineSpace,
  site: number,
  w: Window,
): { p: Placement; code: Uint8Array; target: number; movable: (jmpAt: number) => Movable } | null {
  const len = trampolineLen(w);
  const ok = (t: number) => Math.abs(t - site) < 0x7fff_0000 && buildTrampoline(t, site, w.pre, w.post, w.end) !== null;
  const p = space.placeFree(len, ok);
  if (p === null) return null;
  const code = buildTrampoline(p.t, site, w.pre, w.post, w.end);
  const entry = entryOffset(w.pre.length > 0);
  if (code === null) return null;
  return { p, code, target: p.t + entry, movable: (jmpAt) => ({ jmpAt, entry, ok }) };
}
