/**
 * Tactic (c) "short": `eb rel8` at the site to dead padding a few bytes on, where the `e9 rel32`
 * to the trampoline is written. The padding must follow an unconditional jmp/ret after the site
 * (so nothing falls into it) and hold no branch target; the bytes between stay as they are. The
 * whole patch [site, padding + 5) must fit in 16 bytes. Nothing is displaced: the trampoline jumps
 * back to the instruction after the site.
 */
import type { InsnInfo, SiteContext } from "@sysi/core/strategy";
import { jmpRel8, jmpRel32 } from "../encode.ts";
import type { TrampolineSpace } from "../pages.ts";
import { placeFree, refuse, sitePatch, type TacticResult } from "./common.ts";
import { MAX_PATCH } from "./jmp.ts";
import { makeWindow, type Neighbours } from "./window.ts";

const PADDING = new Set(["nop", "int3"]);

export function tacticShort(
  site: number,
  siteLen: number,
  ctx: SiteContext,
  nb: Neighbours,
  space: TrampolineSpace,
): TacticResult {
  // Step (1): find the first unconditional jmp/ret after the site, then padding after it.
  const i = nb.after.findIndex((x) => x.mnemonic === "ret" || x.mnemonic === "jmp");
  if (i < 0) return refuse("no-padding");
  let pad = -1;
  let padLen = 0;
  for (let j = i + 1; j < nb.after.length; j++) {
    const x = nb.after[j] as InsnInfo;
    if (!PADDING.has(x.mnemonic) || ctx.isKnownTarget(x.vaddr)) break;
    if (pad < 0) pad = x.vaddr;
    padLen += x.length;
  }
  if (pad < 0 || padLen < 5) return refuse("no-padding");
  const end = pad + 5;
  if (end - site > MAX_PATCH) return refuse("padding-too-far");
  // Step (2): a trampoline for the site alone, placed freely.
  const wr = makeWindow(ctx, site, siteLen, nb, 0, 0);
  if (!wr.ok) return refuse(wr.reason);
  const placed = placeFree(space, site, wr.w);
  if (placed === null) return refuse("no-trampoline-space");
  // Step (3): eb at the site, e9 at the padding, everything between unchanged.
  const old = ctx.elf.bytesAt(site, end - site);
  if (old === null) return refuse("not-file-backed");
  const bytes = old.slice();
  bytes.set(jmpRel8(site, pad), 0);
  bytes.set(jmpRel32(pad, placed.target), pad - site);
  return sitePatch(old, site, bytes, placed.p, site, siteLen, wr.w, "short", placed.code, placed.movable(pad));
}
