/**
 * Tactic (a) "jmp": the site and the whole instructions after it give at least 5 bytes, so a plain
 * `e9 rel32` at the site reaches a trampoline anywhere; the following instructions are displaced
 * into the trampoline (relocated) and the jump back lands after them.
 */
import type { SiteContext } from "@sysi/core/strategy";
import { jmpRel32 } from "../encode.ts";
import type { TrampolineSpace } from "../pages.ts";
import { placeFree, refuse, sitePatch, type TacticResult } from "./common.ts";
import { makeWindow, type Neighbours } from "./window.ts";

/** Longest patch the plan format allows. */
export const MAX_PATCH = 16;

export function tacticJmp(
  site: number,
  siteLen: number,
  ctx: SiteContext,
  nb: Neighbours,
  space: TrampolineSpace,
): TacticResult {
  // Step (1): the fewest following instructions that make the window >= 5 bytes.
  let len = siteLen;
  let nPost = 0;
  while (len < 5 && nPost < nb.after.length) len += (nb.after[nPost++] as { length: number }).length;
  if (len < 5) return refuse("window-too-short");
  if (len > MAX_PATCH) return refuse("window-too-long");
  const wr = makeWindow(ctx, site, siteLen, nb, 0, nPost);
  if (!wr.ok) return refuse(wr.reason);
  const w = wr.w;
  // Step (2): any address in the zones (rel32 is entirely ours).
  const placed = placeFree(space, site, w);
  if (placed === null) return refuse("no-trampoline-space");
  // Step (3): e9 rel32 at the site, int3 over the rest of the displaced bytes.
  const old = ctx.elf.bytesAt(site, w.end - site);
  if (old === null) return refuse("not-file-backed");
  const bytes = new Uint8Array(old.length).fill(0xcc);
  bytes.set(jmpRel32(site, placed.target), 0);
  return sitePatch(old, site, bytes, placed.p, site, siteLen, w, "jmp", placed.code, placed.movable(site));
}
