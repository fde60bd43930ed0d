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
 * Place the pinned puns a virtual page at a time: pages of one `e9 WW` pun first, then the pages
 * of several puns (placeMulti), each in a physical page where all its puns fit (fixed ones at
 * their address, `e9 WW` ones at the first free start of their window), so that one pun placed
 * early cannot tie its virtual page to a physical page the page's other puns no longer fit in.
 * False when some virtual page fits nowhere and `drop` refuses to leave it out.
 */
function placePinned(next: TrampolineSpace, pins: Pinned[], made: Made, drop: Drop): boolean {
  const byPage = new Map<number, Pinned[]>();
  for (const x of pins) byPage.set(x.vpage, [...(byPage.get(x.vpage) ?? []), x]);
  const demand = (l: Pinned[]) => l.reduce((n, x) => n + x.len, 0);
  // Pages of one `e9 WW` pun first, earliest window end first, each at the earliest start any
  // physical page has free (earliest-deadline-first over the physical pages: the windows of single
  // puns are what the packing is made of); then the pages of several or fixed puns (placeMulti).
  const multi = [...byPage.entries()].filter(([, l]) => l.length > 1 || (l[0] as Pinned).ts.length === 1);
  multi.sort((a, b) => demand(b[1]) - demand(a[1]) || a[0] - b[0]); // placeMulti's order on a tie
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
    if (best === null) {
      if (drop(x.p)) continue;
      return false;
    }
    next.placeAt(best.t, x.len, best.phys);
    next.record(x.p, best.t, x.len);
    made.set(x.p, { sol: best.sol, spans: [{ t: best.t, len: x.len }] });
  }
  return placeMulti(next, multi, made, drop);
}

/**
 * The virtual pages of several pinned puns, most constrained first (DSatur's order for graph
 * colouring: the page the fewest physical pages can still take whole goes next, the fullest on a
 * tie), each into the fullest physical page that takes it whole. A page no physical page takes
 * whole goes where most of it fits; the rest is dropped when `drop` allows, else false.
 */
function placeMulti(next: TrampolineSpace, multi: [number, Pinned[]][], made: Made, drop: Drop): boolean {
  const occ = next.phys.map((pp) => {
    const b = new Uint8Array(PAGE);
    for (const [a, e] of pp.used) b.fill(1, a, e);
    return b;
  });
  const isFree = (b: Uint8Array, off: number, len: number) => {
    for (let o = off; o < off + len; o++) if (b[o] !== 0) return false;
    return true;
  };
  /** Starts for the page's puns on physical page k (in list order), as many as fit in order. */
  const fit = (list: Pinned[], k: number): { x: Pinned; t: number }[] => {
    const b = occ[k] as Uint8Array;
    const out: { x: Pinned; t: number }[] = [];
    for (const x of list) {
      const base = x.vpage * PAGE;
      const t = x.ts.find((t) => isFree(b, t - base, x.len));
      if (t === undefined) continue;
      b.fill(1, t - base, t - base + x.len);
      out.push({ x, t });
    }
    for (const { x, t } of out) b.fill(0, t - x.vpage * PAGE, t - x.vpage * PAGE + x.len);
    return out;
  };
  const demand = (l: Pinned[]) => l.reduce((n, x) => n + x.len, 0);
  const used = (k: number) => (occ[k] as Uint8Array).reduce((n, v) => n + v, 0);
  const pages = multi.map(([, list]) => {
    list.sort((a, b) => a.ts.length - b.ts.length || (a.ts[0] as number) - (b.ts[0] as number));
    const options = new Set<number>();
    for (let k = 0; k < occ.length; k++) if (fit(list, k).length === list.length) options.add(k);
    return { list, options, demand: demand(list) };
  });
  const left = new Set(pages);
  while (left.size > 0) {
    let pick: (typeof pages)[0] | null = null;
    for (const pg of left)
      if (
        pick === null ||
        pg.options.size < pick.options.size ||
        (pg.options.size === pick.options.size && pg.demand > pick.demand)
      )
        pick = pg;
    const pg = pick as (typeof pages)[0];
    left.delete(pg);
    let k = -1;
    let chosen: { x: Pinned; t: number }[] = [];
    for (const o of pg.options) if (k < 0 || used(o) > used(k)) k = o;
    if (k >= 0) chosen = fit(pg.list, k);
    else {
      for (let o = 0; o < occ.length; o++) {
        const c = fit(pg.list, o);
        if (c.length > chosen.length) [k, chosen] = [o, c];
      }
    }
    const sols = chosen.map((c) => ({ ...c, sol: pinnedSolution(c.x, c.t) }));
    const ok = sols.filter((c) => c.sol !== null);
    const placed = new Set(ok.map((c) => c.x));
    const rest = pg.list.filter((x) => !placed.has(x));
    if (!rest.every((x) => drop(x.p, true))) return false;
    for (const x of rest) drop(x.p);
    if (ok.length === 0) continue;
    take(next, k, ok as { x: Pinned; t: number; sol: Solution }[], made);
    for (const c of ok) (occ[k] as Uint8Array).fill(1, c.t - c.x.vpage * PAGE, c.t - c.x.vpage * PAGE + c.x.len);
    for (const other of left)
      if (other.options.has(k) && fit(other.list, k).length !== other.list.length) other.options.delete(k);
  }
  return true;
}

function take(next: TrampolineSpace, phys: number, chosen: { x: Pinned; t: number; sol: Solution }[], made: Made) {
  for (const c of chosen) {
    next.placeAt(c.t, c.x.len, phys);
    next.record(c.x.p, c.t, c.x.len); // unplace() keeps a virtual page while a record is on it
    made.set(c.x.p, { sol: c.sol, spans: [{ t: c.t, len: c.x.len }] });
  }
}

/**
 * Whether a patch that fits nowhere may be left out (given back to the chain's next strategy);
 * `ask` only asks, else the answer is final and the patch is counted as dropped.
 */
type Drop = (p: SitePatch, ask?: boolean) => boolean;
const NO_DROP: Drop = () => false;

function solveCapped(
  space: TrampolineSpace,
  patches: readonly SitePatch[],
  cap: number,
  drop: Drop = NO_DROP,
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
  rest.sort((a, b) => a.f - b.f || a.i - b.i);
  if (!placePinned(next, pins, made, drop)) return null;
  for (const { p } of rest) {
    const how = resolvable.get(p) as Resolvable;
    const sol = solve(how.layout, how.jumps, next);
    if (sol === null) {
      if (drop(p)) continue;
      return null;
    }
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
  for (let cap = boundOf(space); cap < inUse; cap++) {
    const r = solveCapped(space, patches, cap);
    if (r === null) continue;
    adoptSolution(space, patches, r);
    return;
  }
}

/** The bound of issue 11 for the trampolines placed now: ceil(bytes / 4096) + 1. */
function boundOf(space: TrampolineSpace): number {
  return Math.ceil(space.placed.reduce((n, p) => n + p.len, 0) / PAGE) + 1;
}

function physInUse(space: TrampolineSpace): number {
  return new Set(space.vpages.values()).size;
}

/**
 * Meet the bound by leaving patches out, when repacking alone did not: solve into exactly the
 * bound's pages, leaving out the `droppable` patches (sites the chain's next strategy takes) that
 * fit nowhere, if they are few (at most DROP_SHARE of the patches), then try each of them again
 * among what was placed after it. The patches left out, their spans gone; none when it fails.
 */
function repackDropping(space: TrampolineSpace, droppable: ReadonlySet<SitePatch>): SitePatch[] {
  const patches = [...new Set(space.placed.map((p) => p.patch))];
  if (patches.length === 0 || patches.some((p) => !resolvable.has(p))) return [];
  const limit = Math.max(1, Math.floor(patches.length * DROP_SHARE));
  const dropped = new Set<SitePatch>();
  const drop: Drop = (p, ask) => {
    if (!droppable.has(p) || dropped.size >= limit) return false;
    if (!ask) dropped.add(p);
    return true;
  };
  const rd = solveCapped(space, patches, boundOf(space), drop);
  if (rd === null) return [];
  for (const p of [...dropped]) {
    const how = resolvable.get(p) as Resolvable;
    const sol = solve(how.layout, how.jumps, rd.next);
    if (sol === null) continue;
    for (const j of sol.jumps) rd.next.placeAt(j.t, j.len);
    const spans = sol.jumps.map((j) => ({ t: j.t, len: j.len }));
    if (how.reversed) spans.reverse();
    rd.made.set(p, { sol, spans });
    dropped.delete(p);
  }
  adoptSolution(
    space,
    patches.filter((p) => !dropped.has(p)),
    rd,
  );
  return [...dropped];
}

/** Largest share of a module's patches repackCapped may give back to meet the bound. */
const DROP_SHARE = 0.02;

function adoptSolution(
  space: TrampolineSpace,
  patches: readonly SitePatch[],
  r: { next: TrampolineSpace; made: Made },
): void {
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
}

/**
 * Repack: capped (repackCapped), then emptying the emptiest pages; when the module still needs
 * more physical pages than the bound, leave out a few `droppable` patches (repackDropping) and
 * empty again. Returns the patches left out (to be given back to the chain's next strategy).
 */
export function repack(space: TrampolineSpace, droppable: ReadonlySet<SitePatch> = new Set()): SitePatch[] {
  repackCapped(space);
  emptyRounds(space);
  if (physInUse(space) <= boundOf(space) || droppable.size === 0) return [];
  const dropped = repackDropping(space, droppable);
  if (dropped.length > 0) emptyRounds(space);
  return dropped;
}

function emptyRounds(space: TrampolineSpace): void {
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
