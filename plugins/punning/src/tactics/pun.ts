/**
 * Tactic "punx" (unsafe): `e9` at the site with the free low byte(s) of rel32 taken from the site (and
 * any displaced 1-2 byte instructions after it) and the upper byte(s) being the bytes that follow,
 * left unchanged. Only the targets those fixed bytes allow are possible; each must lie in a zone
 * (pages.ts) and fit a page without overlapping trampolines already there.
 */
import type { SiteContext } from "@sysi/core/strategy";
import { buildTrampoline, entryOffset } from "../encode.ts";
import type { TrampolineSpace } from "../pages.ts";
import { refuse, sitePatch, type TacticResult, trampolineLen } from "./common.ts";
import { makeWindow, type Neighbours, type Window } from "./window.ts";

/** How many candidate values of the free bytes we evaluate when there are two or three of them. */
const MAX_CANDIDATES = 4096;

function candidates(free: number, fixed: number[]): number[] {
  // rel32 = free low bytes | fixed high bytes << 8*free
  let high = 0;
  for (let i = fixed.length - 1; i >= 0; i--) high = high * 256 + (fixed[i] as number);
  const span = 256 ** free;
  const base = high * span;
  const step = Math.max(1, Math.floor(span / MAX_CANDIDATES));
  const out: number[] = [];
  for (let x = 0; x < span; x += step) out.push((base + x) | 0); // | 0: as a signed int32
  return out;
}

export function tacticPun(
  site: number,
  siteLen: number,
  ctx: SiteContext,
  nb: Neighbours,
  space: TrampolineSpace,
): TacticResult {
  const tail = ctx.elf.bytesAt(site, 5);
  if (tail === null) return refuse("not-file-backed");
  let reason = "pun-no-target";
  // Step (1): windows of 2..4 bytes: the site alone, then with 1-2 byte followers displaced.
  for (let nPost = 0; nPost <= nb.after.length; nPost++) {
    const wr = makeWindow(ctx, site, siteLen, nb, 0, nPost);
    if (!wr.ok) {
      if (nPost === 0) reason = wr.reason; // else keep why the shorter window failed
      break;
    }
    const w: Window = wr.w;
    const len = w.end - site;
    if (len >= 5) break;
    const free = len - 1;
    const fixed = Array.from(tail.subarray(len, 5));
    const tlen = trampolineLen(w);
    // Step (2): every target the fixed bytes allow; keep the cheapest placement. The span starts
    // entryOffset bytes before the target (the in-context block precedes the entry).
    const back = entryOffset(w.pre.length > 0);
    let best: { t: number; cost: number } | null = null;
    for (const rel of candidates(free, fixed)) {
      const t = site + 5 + rel - back;
      const cost = space.cost(t, tlen);
      if (cost < 0 || (best !== null && cost >= best.cost)) continue;
      if (buildTrampoline(t, site, w.pre, w.post, w.end) === null) continue;
      best = { t, cost };
      if (cost === 0) break;
    }
    if (best === null) {
      reason = "pun-no-target";
      continue;
    }
    // Step (3): the patch is e9 + free bytes; the fixed bytes stay as they are (old == new).
    const p = space.placeAt(best.t, tlen);
    const code = buildTrampoline(p.t, site, w.pre, w.post, w.end) as Uint8Array;
    const bytes = tail.slice();
    const rel = best.t + back - (site + 5);
    bytes[0] = 0xe9;
    for (let i = 0; i < free; i++) bytes[1 + i] = (rel >>> (8 * i)) & 0xff;
    return sitePatch(tail, site, bytes, p, site, siteLen, w, "punx", code);
  }
  return refuse(reason);
}
