/**
 * Fixed puns that crowd one page offset become successor or neighbour evictions (succ, neigh),
 * before repacking; those that still crowd it are given back to the chain's next strategy.
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
 * covering the busiest offset is planned again with succ, else neigh (tactics/sound.ts), whose
 * free rel32 bytes let repack.ts put its trampolines anywhere. A pun stays when both refuse its
 * site or when the longer range would overlap another patch or hold another site. The patch
 * object keeps its identity (the composite planner holds it); its range, bytes, aux words and
 * tactic change.
 */
import type { SiteContext, SitePatch } from "@sysi/core/strategy";
import { PAGE, type TrampolineSpace } from "./pages.ts";
import { type ProposalResult, type Resolvable, resolvable, tacticNeigh, tacticSucc } from "./tactics/sound.ts";
import { type Neighbours, neighbours } from "./tactics/window.ts";

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

/**
 * Whether a patch's range holds syscall/sysenter bytes other than its site's: another strategy
 * may have taken that site (the composite checked ranges before finish; a range grown here is
 * checked by this alone). Byte pairs, not decoded instructions: it may refuse needlessly, never
 * wrongly.
 */
function holdsOtherSite(p: SitePatch, site: number): boolean {
  const { vaddr, old } = p.patch;
  for (let i = 0; i + 1 < old.length; i++)
    if (vaddr + i !== site && old[i] === 0x0f && (old[i + 1] === 0x05 || old[i + 1] === 0x34)) return true;
  return false;
}

type SoundTactic = (site: number, ctx: SiteContext, nb: Neighbours, space: TrampolineSpace) => ProposalResult;

/** Re-plan `patch` (a fixed pun) with succ or neigh; true when it was converted. */
function replan(ctx: SiteContext, space: TrampolineSpace, patch: SitePatch, tactic: SoundTactic): boolean {
  const how = resolvable.get(patch);
  const i = space.placed.findIndex((p) => p.patch === patch);
  const old = space.placed[i];
  if (how === undefined || old === undefined) return false;
  const phys = space.vpages.get(Math.floor(old.t / PAGE));
  space.unplace(old.t, old.len);
  const savedEnd = space.patchEnd;
  space.patchEnd = Number.NEGATIVE_INFINITY; // the site's own range is free again
  let done = false;
  const r = tactic(how.site, ctx, neighbours(ctx, how.site, 2), space);
  const c = r.ok ? r.commit() : null;
  if (c?.ok) {
    // the new range (succ: up to after the successor; neigh: from the evicted predecessor) must
    // not reach into another patch's range
    const fresh = c.patch;
    const [s, e] = rangeOf(fresh);
    const overlaps =
      space.placed.some((x) => {
        const [ps, pe] = rangeOf(x.patch);
        return x.patch !== fresh && x.patch !== patch && ps < e && s < pe;
      }) || holdsOtherSite(fresh, how.site);
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
    if (replan(ctx, space, pick.patch, tacticSucc) || replan(ctx, space, pick.patch, tacticNeigh)) {
      converted++;
      for (let o = offOf(t); o < offOf(t) + len; o++) cover[o] = (cover[o] as number) - 1;
    }
  }
}

/** A site handed back to the chain's next strategy (contract 1.3 FinishResult.giveBack). */
export interface GivenBack {
  vaddr: number;
  reason: string;
  detail: string;
}

/**
 * Give back fixed puns that still crowd one page offset after spreadFixedPuns (succ and neigh
 * refused them), so the module's physical pages can meet the bound ceil(trampoline bytes / 4096)
 * + 1: only sites with a fallback (the chain's next strategy takes them), the pun over the busiest
 * offset first, until no offset is covered by more fixed spans than the bound. Their spans leave
 * the space; the caller drops them from the taken sites.
 */
export function giveBackCrowded(space: TrampolineSpace, fallback: ReadonlyMap<SitePatch, number>): GivenBack[] {
  const out: GivenBack[] = [];
  const offOf = (t: number) => t - Math.floor(t / PAGE) * PAGE;
  const isFixed = (p: SitePatch) => {
    const how = resolvable.get(p);
    return how !== undefined && how.jumps.length === 1 && p.tactic === "pun" && freedom(how) === 0;
  };
  for (;;) {
    const bytes = space.placed.reduce((n, p) => n + p.len, 0);
    const bound = Math.ceil(bytes / PAGE) + 1;
    const cover = new Int32Array(PAGE);
    const fixed = space.placed.filter((p) => isFixed(p.patch));
    for (const p of fixed) for (let o = offOf(p.t); o < offOf(p.t) + p.len; o++) cover[o] = (cover[o] as number) + 1;
    let worst = 0;
    for (let o = 1; o < PAGE; o++) if ((cover[o] as number) > (cover[worst] as number)) worst = o;
    const depth = cover[worst] as number;
    if (depth <= bound) return out;
    // among the fixed spans over the busiest offset, one with a fallback, covering the most
    // offsets above the bound (its removal helps most)
    let pick: (typeof fixed)[0] | null = null;
    let pickScore = -1;
    for (const p of fixed) {
      const o0 = offOf(p.t);
      if (!(o0 <= worst && worst < o0 + p.len) || !fallback.has(p.patch)) continue;
      let score = 0;
      for (let o = o0; o < o0 + p.len; o++) if ((cover[o] as number) > bound) score++;
      if (score > pickScore) {
        pick = p;
        pickScore = score;
      }
    }
    if (pick === null) return out;
    const site = fallback.get(pick.patch) as number;
    for (const x of space.placed.filter((y) => y.patch === pick.patch)) space.unplace(x.t, x.len);
    out.push({
      vaddr: site,
      reason: "page-bound",
      detail: `its one trampoline address is at page offset 0x${worst.toString(16)}, where ${depth} fixed trampolines of other pages meet (bound ${bound} physical pages; succ and neigh refused the site)`,
    });
  }
}
