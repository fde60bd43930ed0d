/**
 * Repacking a module's sound trampolines once every site is planned (the work of E9Patch's
 * e9mapping): sites are planned in address order, so a span could only go around the spans
 * planned before it, and the last physical pages opened stay nearly empty. Here the emptiest
 * physical page is closed and every sound patch with a span on it is solved again (solve.ts) in
 * the pages that stay open; when all of them fit, the page is gone, and the next emptiest is
 * tried. When one does not fit, everything of that round goes back where it was.
 *
 * A patch keeps its range and its layout (which bytes are free): nothing the composite planner
 * checked changes, only the free bytes, aux[0] and where the spans lie.
 */
import type { SitePatch } from "@sysi/core/strategy";
import { PAGE, type PhysPage, type PlacedTrampoline, type TrampolineSpace } from "./pages.ts";
import { solve } from "./tactics/solve.ts";
import { resolvable } from "./tactics/sound.ts";

/** Rounds (pages emptied or tried) per module. */
const ROUNDS = 32;

function vpageOf(t: number): number {
  return Math.floor(t / PAGE);
}

/** Try to empty physical page `victim`; true when it is empty now. */
function empty(space: TrampolineSpace, victim: number): boolean {
  const onVictim = (p: PlacedTrampoline) => space.vpages.get(vpageOf(p.t)) === victim;
  const patches = [...new Set(space.placed.filter(onVictim).map((p) => p.patch))];
  if (patches.length === 0 || patches.some((p) => !resolvable.has(p))) return false;
  const mine = new Set<SitePatch>(patches);
  const old = space.placed
    .filter((p) => mine.has(p.patch))
    .map((p) => ({ ...p, phys: space.vpages.get(vpageOf(p.t)) }));
  for (const o of old) space.unplace(o.t, o.len);
  space.closed.add(victim);
  const made: { patch: SitePatch; bytes: Uint8Array; spans: { t: number; len: number }[] }[] = [];
  let ok = true;
  for (const patch of patches) {
    const how = resolvable.get(patch);
    const sol = how === undefined ? null : solve(how.layout, how.jumps, space);
    if (how === undefined || sol === null) {
      ok = false;
      break;
    }
    for (const j of sol.jumps) space.placeAt(j.t, j.len); // in the order solve() held them
    const spans = sol.jumps.map((j) => ({ t: j.t, len: j.len }));
    if (how.reversed) spans.reverse(); // [the site's, the second]
    spans.forEach((s, slot) => {
      space.record(patch, s.t, s.len, undefined, slot as 0 | 1);
    });
    made.push({ patch, bytes: sol.bytes, spans });
  }
  space.closed.delete(victim);
  if (!ok) {
    for (const m of made) for (const s of m.spans) space.unplace(s.t, s.len);
    for (const o of old) {
      space.placeAt(o.t, o.len, o.phys);
      space.record(o.patch, o.t, o.len, o.movable, o.slot);
    }
    return false;
  }
  for (const { patch, bytes, spans } of made) {
    const how = resolvable.get(patch);
    if (how === undefined) continue;
    patch.patch.bytes = bytes;
    const aux = patch.aux as [bigint, bigint];
    const main = spans[0] as { t: number };
    aux[0] = BigInt.asUintN(32, BigInt(main.t + how.entry - how.site)) | (BigInt(how.site) << 32n);
  }
  return true;
}

export function repack(space: TrampolineSpace): void {
  const tried = new Set<number>();
  for (let round = 0; round < ROUNDS; round++) {
    const inUse = [...new Set(space.vpages.values())].filter((p) => !tried.has(p));
    if (inUse.length <= 1) return;
    const bytes = (p: number) => (space.phys[p] as PhysPage).bytes();
    const victim = inUse.reduce((a, b) => (bytes(b) < bytes(a) ? b : a));
    tried.add(victim);
    empty(space, victim);
  }
}
