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
import { freedom } from "./convert.ts";
import { PAGE, PhysPage, type PlacedTrampoline, TrampolineSpace } from "./pages.ts";
import { type Solution, solve } from "./tactics/solve.ts";
import { type Resolvable, resolvable } from "./tactics/sound.ts";

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
    if (how !== undefined) apply(patch, how, bytes, spans[0] as { t: number });
  }
  return true;
}

/** Write a patch's new bytes and aux[0] (the site trampoline's target) from its spans. */
function apply(patch: SitePatch, how: Resolvable, bytes: Uint8Array, main: { t: number }): void {
  patch.patch.bytes = bytes;
  const aux = patch.aux as [bigint, bigint];
  aux[0] = BigInt.asUintN(32, BigInt(main.t + how.entry - how.site)) | (BigInt(how.site) << 32n);
}

/**
 * Solve every sound patch again into at most `cap` physical pages, the most constrained first
 * (a `48 e9` pun has one target, an `e9` pun 256 in one window of one page, succ and neigh choose
 * among many): a greedy in address order lets early patches with free targets take the page
 * offsets that later puns cannot avoid. Null when some patch does not fit.
 */
/** A single-jump patch (a pun) whose span stays in one virtual page: its candidate span starts. */
interface Pinned {
  p: SitePatch;
  how: Resolvable;
  vpage: number;
  /** Candidate span starts, in rel order; one for a `48 e9` pun, up to 256 for `e9 WW`. */
  ts: number[];
  len: number;
}

/** The candidates of a pun whose rel32 has at most its low byte free, or null. */
function pinned(p: SitePatch, how: Resolvable, space: TrampolineSpace): Pinned | null {
  if (how.jumps.length !== 1) return null;
  const j = how.jumps[0] as (typeof how.jumps)[0];
  const off = j.at + 1 - how.layout.start;
  const known = [0, 1, 2, 3].map((i) => how.layout.bytes[off + i] ?? null);
  if (known.slice(1).some((b) => b === null)) return null;
  const base = known.reduce<number>((v, b, i) => (b === null ? v : (v | ((b as number) << (8 * i))) >>> 0), 0) | 0;
  const ts: number[] = [];
  for (let ww = 0; ww < (known[0] === null ? 256 : 1); ww++) {
    const t = j.at + 5 + (base | ww) - j.entry;
    if (space.cost(t, j.len) >= 0) ts.push(t);
  }
  if (ts.length === 0) return null;
  const vpage = Math.floor((ts[0] as number) / PAGE);
  if (ts.some((t) => Math.floor(t / PAGE) !== vpage)) return null; // the window straddles pages
  return { p, how, vpage, ts, len: j.len };
}

/** The solution of a pinned pun at span start t (null when its trampoline cannot be built there). */
function pinnedSolution(x: Pinned, t: number): Solution | null {
  const j = x.how.jumps[0] as (typeof x.how.jumps)[0];
  const code = j.build(t);
  if (code === null) return null;
  const bytes = Uint8Array.from(x.how.layout.bytes.map((b) => (b === null ? 0xcc : b)));
  const rel = t + j.entry - (j.at + 5);
  new DataView(bytes.buffer).setInt32(j.at + 1 - x.how.layout.start, rel, true);
  return { bytes, jumps: [{ t, len: j.len, code, cost: 0 }], cost: 0 };
}

type Made = Map<SitePatch, { sol: Solution; spans: { t: number; len: number }[] }>;

/**
 * Place the pinned puns a virtual page at a time (the fullest first): each page goes to the first
 * physical page where all its puns fit (fixed ones at their address, `e9 WW` ones at the first free
 * start of their window), so that one pun placed early cannot tie its virtual page to a physical
 * page the page's other puns no longer fit in. False when some virtual page fits nowhere.
 */
function placePinned(next: TrampolineSpace, pins: Pinned[], made: Made): boolean {
  const byPage = new Map<number, Pinned[]>();
  for (const x of pins) byPage.set(x.vpage, [...(byPage.get(x.vpage) ?? []), x]);
  const demand = (l: Pinned[]) => l.reduce((n, x) => n + x.len, 0);
  // Pages of several puns first, the fullest first; then pages of one pun, earliest window end
  // first, each at the earliest start any physical page has free (earliest-deadline-first over
  // the physical pages: the windows of single puns are what the packing is made of).
  const multi = [...byPage.entries()].filter(([, l]) => l.length > 1 || (l[0] as Pinned).ts.length === 1);
  multi.sort((a, b) => demand(b[1]) - demand(a[1]) || a[0] - b[0]);
  const single = [...byPage.values()]
    .filter((l) => l.length === 1 && (l[0] as Pinned).ts.length > 1)
    .map((l) => l[0] as Pinned);
  const last = (x: Pinned) => (x.ts[x.ts.length - 1] as number) - x.vpage * PAGE + x.len;
  single.sort((a, b) => last(a) - last(b) || a.vpage - b.vpage);
  for (const x of single) {
    let best: { phys: number; t: number; sol: Solution } | null = null;
    for (let phys = 0; phys < next.phys.length; phys++) {
      const pp = next.phys[phys] as PhysPage;
      for (const t of x.ts) {
        if (best !== null && t >= best.t) break;
        if (!pp.free(t - x.vpage * PAGE, x.len)) continue;
        const sol = pinnedSolution(x, t);
        if (sol === null) continue;
        best = { phys, t, sol };
        break;
      }
    }
    if (best === null) return false;
    next.placeAt(best.t, x.len, best.phys);
    next.record(x.p, best.t, x.len);
    made.set(x.p, { sol: best.sol, spans: [{ t: best.t, len: x.len }] });
  }
  for (const [, list] of multi) {
    list.sort((a, b) => a.ts.length - b.ts.length || (a.ts[0] as number) - (b.ts[0] as number));
    let done = false;
    for (let phys = 0; phys < next.phys.length && !done; phys++) {
      const trial = new PhysPage();
      for (const [a, b] of (next.phys[phys] as PhysPage).used) trial.take(a, b - a);
      const chosen: { x: Pinned; t: number; sol: Solution }[] = [];
      for (const x of list) {
        let got: { t: number; sol: Solution } | null = null;
        // a start next to a span already there first (it leaves the larger holes whole)
        for (const snug of [true, false]) {
          for (const t of x.ts) {
            const off = t - x.vpage * PAGE;
            if (!trial.free(off, x.len) || (snug && !trial.snug(off, x.len))) continue;
            const sol = pinnedSolution(x, t);
            if (sol === null) continue;
            got = { t, sol };
            break;
          }
          if (got !== null) break;
        }
        if (got === null) break;
        trial.take(got.t - x.vpage * PAGE, x.len);
        chosen.push({ x, ...got });
      }
      if (chosen.length !== list.length) continue;
      for (const c of chosen) {
        next.placeAt(c.t, c.x.len, phys);
        next.record(c.x.p, c.t, c.x.len); // unplace() keeps a virtual page while a record is on it
        made.set(c.x.p, { sol: c.sol, spans: [{ t: c.t, len: c.x.len }] });
      }
      done = true;
    }
    if (!done) return false;
  }
  return true;
}

function solveCapped(
  space: TrampolineSpace,
  patches: readonly SitePatch[],
  cap: number,
): { next: TrampolineSpace; made: Made } | null {
  const next = new TrampolineSpace(space.layout);
  for (let i = 0; i < cap; i++) next.phys.push(new PhysPage());
  next.capped = true;
  const made: Made = new Map();
  const pins: Pinned[] = [];
  const rest: { p: SitePatch; i: number; f: number }[] = [];
  patches.forEach((p, i) => {
    const how = resolvable.get(p) as Resolvable;
    const x = pinned(p, how, next);
    if (x !== null) pins.push(x);
    else rest.push({ p, i, f: freedom(how) });
  });
  if (!placePinned(next, pins, made)) return null;
  rest.sort((a, b) => a.f - b.f || a.i - b.i);
  for (const { p } of rest) {
    const how = resolvable.get(p) as Resolvable;
    const sol = solve(how.layout, how.jumps, next);
    if (sol === null) return null;
    for (const j of sol.jumps) next.placeAt(j.t, j.len); // in the order solve() held them
    const spans = sol.jumps.map((j) => ({ t: j.t, len: j.len }));
    if (how.reversed) spans.reverse(); // [the site's, the second]
    spans.forEach((sp, slot) => {
      next.record(p, sp.t, sp.len, undefined, slot as 0 | 1);
    });
    made.set(p, { sol, spans });
  }
  return { next, made };
}

/**
 * Repack toward the byte minimum (issue 11: ceil(trampoline bytes / 4096) + 1 physical pages):
 * try caps from that bound up to one below the pages in use; the first that fits replaces the
 * placement. Every patch keeps its range and layout; only free bytes, aux[0] and spans change.
 */
export function repackCapped(space: TrampolineSpace): void {
  const patches = [...new Set(space.placed.map((p) => p.patch))];
  if (patches.length === 0 || patches.some((p) => !resolvable.has(p))) return;
  const inUse = new Set(space.vpages.values()).size;
  const bytes = space.placed.reduce((n, p) => n + p.len, 0);
  for (let cap = Math.ceil(bytes / PAGE) + 1; cap < inUse; cap++) {
    const r = solveCapped(space, patches, cap);
    if (r === null) continue;
    const phys = r.next.phys.filter((pp) => pp.bytes() > 0);
    if (phys.length !== r.next.phys.length) {
      // drop pages left empty, renumbering the virtual pages' physical pages
      const renum = new Map<number, number>();
      r.next.phys.forEach((pp, i) => {
        if (pp.bytes() > 0) renum.set(i, renum.size);
      });
      for (const [vp, p] of r.next.vpages) r.next.vpages.set(vp, renum.get(p) as number);
      r.next.phys = phys;
    }
    r.next.capped = false;
    space.adopt(r.next);
    space.placed.length = 0;
    for (const p of patches) {
      const m = r.made.get(p) as Made extends Map<SitePatch, infer V> ? V : never;
      m.spans.forEach((sp, slot) => {
        space.record(p, sp.t, sp.len, undefined, slot as 0 | 1);
      });
      apply(p, resolvable.get(p) as Resolvable, m.sol.bytes, m.spans[0] as { t: number });
    }
    return;
  }
}

export function repack(space: TrampolineSpace): void {
  repackCapped(space);
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
