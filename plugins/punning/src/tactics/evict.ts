/**
 * Tactic (d) "evict": the neighbour instruction(s) before the site are evicted with it. The jump is
 * written at the first evicted instruction A (a branch to A still works: it reaches the same
 * trampoline, which runs A first); the site itself must not be a branch target.
 */
import type { SiteContext } from "@sysi/core/strategy";
import { jmpRel32 } from "../encode.ts";
import type { TrampolineSpace } from "../pages.ts";
import { placeFree, refuse, sitePatch, type TacticResult } from "./common.ts";
import { MAX_PATCH } from "./jmp.ts";
import { makeWindow, type Neighbours, type Window } from "./window.ts";

export function tacticEvict(
  site: number,
  siteLen: number,
  ctx: SiteContext,
  nb: Neighbours,
  space: TrampolineSpace,
): TacticResult {
  if (nb.before.length === 0) return refuse("no-previous-insn");
  let reason = "window-too-short";
  let w: Window | null = null;
  // Step (1): the smallest window with >= 1 instruction before the site and >= 5 bytes.
  search: for (let nPre = 1; nPre <= Math.min(3, nb.before.length); nPre++) {
    for (let nPost = 0; nPost <= Math.min(3, nb.after.length); nPost++) {
      const wr = makeWindow(ctx, site, siteLen, nb, nPre, nPost);
      if (!wr.ok) {
        reason = wr.reason;
        if (nPost === 0) break search; // the pre part itself is unusable: more pre cannot help
        break;
      }
      const len = wr.w.end - wr.w.start;
      if (len > MAX_PATCH) {
        reason = "window-too-long";
        break;
      }
      if (len >= 5) {
        w = wr.w;
        break search;
      }
    }
  }
  if (w === null) return refuse(reason);
  // Step (2): free placement; Step (3): e9 at A, int3 over the rest.
  const placed = placeFree(space, site, w);
  if (placed === null) return refuse("no-trampoline-space");
  const old = ctx.elf.bytesAt(w.start, w.end - w.start);
  if (old === null) return refuse("not-file-backed");
  const bytes = new Uint8Array(old.length).fill(0xcc);
  bytes.set(jmpRel32(w.start, placed.target), 0);
  return sitePatch(old, w.start, bytes, placed.p, site, siteLen, w, "evict", placed.code, placed.movable(w.start));
}
