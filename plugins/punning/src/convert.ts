/**
 * Fixed puns that crowd one page offset become successor evictions (succ), before repacking.
 *
 * A pun whose rel32 bytes are all the program's (`48 e9` + the next four bytes, or `e9 WW` whose
 * window holds one usable start) has exactly one trampoline address: its virtual page and page
 * offset are fixed. Spans of different virtual pages at the same offset can never share a
 * physical page, so the number of fixed spans covering the busiest offset is a floor under the
 * module's physical pages, whatever repack.ts does. In the bun executable (ET_EXEC, most sites
 * followed by `48 3d 01 f0 ff ff`) 437 of 438 puns are fixed and up to 11 of them cover one
 * offset, against a bound of ceil(trampoline bytes / 4096) + 1 = 7 pages.
 *
 * Here, while some offset is covered by more fixed spans than the bound allows, the fixed pun
 * covering the busiest offset is planned again with succ (tactics/sound.ts), whose free rel32
 * bytes let repack.ts put both its trampolines anywhere. A pun stays when succ refuses its site
 * or when succ's longer range would overlap another patch. The patch object keeps its identity
 * (the composite planner holds it); its range, bytes, aux words and tactic change.
 */
import type { SiteContext, SitePatch } from "@sysi/core/strategy";
import { PAGE, type TrampolineSpace } from "./pages.ts";
import { type Resolvable, resolvable, tacticSucc } from "./tactics/sound.ts";
import { neighbours } from "./tactics/window.ts";

/** Free rel32 bytes of a patch's jumps: 0 for a pun with one possible target. */
export function freedom(how: Resolvable): number {
  const free = new Set<number>();
  for (const j of how.jumps)
    for (let a = j.at + 1; a < j.at + 5; a++) if (how.layout.bytes[a - how.layout.start] === null) free.add(a);
  return free.size;
}

function rangeOf(p: SitePatch): [number, number] {
  return [p.patch.vaddr, p.patch.vaddr + p.patch.bytes.length];
}

/** Re-plan `patch` (a fixed pun) with succ; true when it was converted. */
function toSucc(ctx: SiteContext, space: TrampolineSpace, patch: SitePatch): boolean {
  const how = resolvable.get(patch);
  const i = space.placed.findIndex((p) => p.patch === patch);
  const old = space.placed[i];
  if (how === undefined || old === undefined) return false;
  const phys = space.vpages.get(Math.floor(old.t / PAGE));
  space.unplace(old.t, old.len);
  const savedEnd = space.patchEnd;
  space.patchEnd = Number.NEGATIVE_INFINITY; // the site's own range is free again
  let done = false;
  const r = tacticSucc(how.site, ctx, neighbours(ctx, how.site, 2), space);
  const c = r.ok ? r.commit() : null;
  if (c?.ok) {
    // succ's range [site, after the successor) must not reach into another patch's range
    const fresh = c.patch;
    const [s, e] = rangeOf(fresh);
    const overlaps = space.placed.some((x) => {
      const [ps, pe] = rangeOf(x.patch);
      return x.patch !== fresh && x.patch !== patch && ps < e && s < pe;
    });
    if (overlaps) {
      for (const x of space.placed.filter((y) => y.patch === fresh)) space.unplace(x.t, x.len);
    } else {
      patch.patch = fresh.patch;
      patch.aux = fresh.aux;
      patch.tactic = fresh.tactic;
      for (const x of space.placed) if (x.patch === fresh) x.patch = patch;
      resolvable.set(patch, resolvable.get(fresh) as Resolvable);
      done = true;
    }
  }
  space.patchEnd = savedEnd;
  if (!done) {
    space.placeAt(old.t, old.len, phys);
    space.record(patch, old.t, old.len, old.movable, old.slot);
  }
  return done;
}

/** Convert fixed puns at over-full page offsets to succ; returns how many were converted. */
export function spreadFixedPuns(ctx: SiteContext, space: TrampolineSpace): number {
  const bytes = space.placed.reduce((n, p) => n + p.len, 0);
  const bound = Math.ceil(bytes / PAGE) + 1;
  const cover = new Int32Array(PAGE);
  const fixed = space.placed.filter((p) => {
    const how = resolvable.get(p.patch);
    return how !== undefined && how.jumps.length === 1 && p.patch.tactic === "pun" && freedom(how) === 0;
  });
  const offOf = (t: number) => t - Math.floor(t / PAGE) * PAGE;
  for (const p of fixed) for (let o = offOf(p.t); o < offOf(p.t) + p.len; o++) cover[o] = (cover[o] as number) + 1;
  const worst = (p: { t: number; len: number }) => {
    let m = 0;
    for (let o = offOf(p.t); o < offOf(p.t) + p.len; o++) m = Math.max(m, cover[o] as number);
    return m;
  };
  let converted = 0;
  const tried = new Set<SitePatch>();
  for (;;) {
    let pick: (typeof fixed)[0] | null = null;
    let pickWorst = bound;
    for (const p of fixed) {
      if (tried.has(p.patch)) continue;
      const w = worst(p);
      if (w > pickWorst) {
        pick = p;
        pickWorst = w;
      }
    }
    if (pick === null) return converted;
    tried.add(pick.patch);
    const { t, len } = pick;
    if (toSucc(ctx, space, pick.patch)) {
      converted++;
      for (let o = offOf(t); o < offOf(t) + len; o++) cover[o] = (cover[o] as number) - 1;
    }
  }
}
