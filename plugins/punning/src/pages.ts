/**
 * Where trampolines may live, and how they are packed into pages.
 *
 * Addresses are link-time vaddrs of the module. For ET_DYN modules the load bias is unknown at plan
 * time, so a trampoline address is really "module base + offset": every jump between a site and its
 * trampoline is relative and bias-invariant, and the runtime adds the bias (aux[0] holds T - site).
 *
 * Zones (documented in docs/strategies/punning.md):
 * - Never inside the module's own image [min vaddr, max vaddr) plus a margin that covers the usual
 *   distance of the neighbouring mappings (other libraries are mapped next to each other, top-down,
 *   within a few tens of MB; we keep ZONE_MARGIN = 256 MiB clear on both sides).
 * - ET_DYN library: below the image [min - 2 GiB + slack, min - margin) or above it
 *   [max + margin, max + 2 GiB - slack).
 * - ET_DYN executable (DF_1_PIE): below only; above a PIE executable the kernel puts the brk heap.
 * - ET_EXEC (absolute): above the image from max + 256 MiB (room for the brk heap) up to 2 GiB away
 *   from the code, or below it (never under 1 MiB: page 0 and the mmap_min_addr area stay unmapped).
 *
 * Packing (E9Patch's physical page grouping): each virtual page holding trampolines is backed by a
 * physical page of a memfd; virtual pages whose trampolines sit at non-overlapping page offsets share
 * one physical page. Placement keeps a greedy grouping as it goes (it steers puns towards offsets
 * that are free in a page already in use). When the module is planned, finishPages places the
 * free-target trampolines again after all puns, regroups every virtual page first-fit decreasing
 * (groupPages), and keeps whatever needs the fewest pages. The last SLOT_BYTES of every physical
 * page belong to the runtime: its passthrough stub at STUB_OFFSET (native/punning.h) and the address
 * of its entry stub at SLOT_OFFSET (trampolines reach it with `call *slot(%rip)`), so trampolines
 * use [0, PAGE_USABLE).
 */
import type { ElfFile } from "@sysi/core/elf";
import type { SitePatch } from "@sysi/core/strategy";

export const PAGE = 4096;
/** The runtime's part of a page: its passthrough stub (up to 64 bytes) and the entry-stub slot. */
export const SLOT_BYTES = 72;
export const PAGE_USABLE = PAGE - SLOT_BYTES;
/** Offset of the entry-stub pointer inside each physical page. */
export const SLOT_OFFSET = PAGE - 8;
/** Offset of the runtime's passthrough stub inside each physical page (native PN_STUB_OFF). */
export const STUB_OFFSET = PAGE - SLOT_BYTES;
export const ZONE_MARGIN = 0x1000_0000;
const GiB = 0x4000_0000;
/**
 * Zones end one page inside the ±2 GiB reach. Whether a span's jumps and relocated rip-relative
 * operands reach is the encoder's check (a trampoline it cannot build is never chosen), so the
 * zone need not keep a wider slack: rel32 puns whose fixed upper bytes point almost 2 GiB away
 * (libc's and ld.so's signal restorer, `0f 05 0f 1f 80`) find their target there.
 */
const REACH_SLACK = PAGE;
const ET_EXEC = 2;
/**
 * ET_EXEC: room left above the image for the brk heap before the first trampoline page. The
 * kernel starts brk within 32 MiB of the image end (arch_randomize_brk); glibc's malloc continues
 * with mmap when brk meets a mapping, so this bounds only a heap grown by brk alone. 256 MiB, as
 * ZONE_MARGIN: with 1 GiB, a pun's rel32 (upper bytes the successor's) missed the zone at 19 of 43
 * sites of a Go executable and 70 of 700 of bun's.
 */
const EXEC_BRK_ROOM = ZONE_MARGIN;
const DF_1_PIE = 0x0800_0000;
const PT_LOAD = 1;

export interface Zone {
  start: number;
  end: number;
}

export interface ModuleLayout {
  minVaddr: number;
  maxVaddr: number;
  kind: "exec" | "pie" | "lib";
  zones: Zone[];
  /** Where free-target trampolines (tactics jmp/evict/short) start: a zone edge away from the image. */
  denseBase: number;
}

function pageDown(v: number): number {
  return Math.floor(v / PAGE) * PAGE;
}

function pageUp(v: number): number {
  return Math.ceil(v / PAGE) * PAGE;
}

/** Module image bounds and the zones trampolines may occupy. */
export function moduleLayout(elf: ElfFile): ModuleLayout {
  const loads = elf.segments.filter((s) => s.type === PT_LOAD && s.memsz > 0);
  const minVaddr = pageDown(Math.min(...loads.map((s) => s.vaddr)));
  const maxVaddr = pageUp(Math.max(...loads.map((s) => s.vaddr + s.memsz)));
  if (elf.type === ET_EXEC) {
    const zones: Zone[] = [{ start: maxVaddr + EXEC_BRK_ROOM, end: maxVaddr + 2 * GiB - REACH_SLACK }];
    if (minVaddr - ZONE_MARGIN > 0x10_0000) zones.unshift({ start: 0x10_0000, end: minVaddr - ZONE_MARGIN });
    return { minVaddr, maxVaddr, kind: "exec", zones, denseBase: maxVaddr + GiB };
  }
  const pie = ((elf.dynamic?.flags1 ?? 0) & DF_1_PIE) !== 0;
  const below: Zone = { start: minVaddr - 2 * GiB + REACH_SLACK, end: minVaddr - ZONE_MARGIN };
  const zones = pie ? [below] : [below, { start: maxVaddr + ZONE_MARGIN, end: maxVaddr + 2 * GiB - REACH_SLACK }];
  return { minVaddr, maxVaddr, kind: pie ? "pie" : "lib", zones, denseBase: minVaddr - GiB };
}

/** [t, t+len) lies inside one zone and inside one page's usable part. */
export function targetAllowed(layout: ModuleLayout, t: number, len: number): boolean {
  const off = t - Math.floor(t / PAGE) * PAGE; // >= 0 for the negative link-time addresses below a library too
  if (off + len > PAGE_USABLE) return false;
  for (const z of layout.zones) if (t >= z.start && t + len <= z.end) return true;
  return false;
}

/** Occupied [start, end) intervals of one physical page, kept sorted, and a byte map of them. */
export class PhysPage {
  readonly used: [number, number][] = [];
  private readonly busy = new Uint8Array(PAGE + 1);
  free(off: number, len: number): boolean {
    if (off < 0 || off + len > PAGE) return false;
    for (let i = off; i < off + len; i++) if (this.busy[i] !== 0) return false;
    return true;
  }
  take(off: number, len: number): void {
    this.used.push([off, off + len]);
    this.used.sort((x, y) => x[0] - y[0]);
    this.busy.fill(1, off, off + len);
  }
  release(off: number, len: number): void {
    const i = this.used.findIndex(([a, b]) => a === off && b === off + len);
    if (i >= 0) this.used.splice(i, 1);
    this.busy.fill(0, off, off + len);
  }
  bytes(): number {
    return this.used.reduce((n, [a, b]) => n + b - a, 0);
  }
  /** [off, off + len) would leave no gap on one side: it starts the page or touches a range. */
  snug(off: number, len: number): boolean {
    return off === 0 || this.busy[off - 1] !== 0 || this.busy[off + len] !== 0;
  }
  /** First offset >= 0 where len bytes fit, or -1. */
  firstFit(len: number): number {
    let cur = 0;
    for (const [a, b] of this.used) {
      if (a - cur >= len) return cur;
      cur = Math.max(cur, b);
    }
    return PAGE_USABLE - cur >= len ? cur : -1;
  }
}

/**
 * A free-target trampoline can move until the module is finished (repack): the `e9` at jmpAt
 * is retargeted to span start + entry, for any span start ok() accepts.
 */
export interface Movable {
  jmpAt: number;
  entry: number;
  ok: (t: number) => boolean;
}

/** A trampoline the planner handed out, with the patch whose aux words name its place. */
export interface PlacedTrampoline {
  /** Span start and length. */
  t: number;
  len: number;
  patch: SitePatch;
  /** Free-target tactics only; puns are fixed by the bytes. */
  movable?: Movable;
  /** Which trampoline of the patch: 0 the site's (aux[1] bits 0..11), 1 the second (bits 12..23). */
  slot: 0 | 1;
}

export interface Placement {
  /** Trampoline address (link-time). */
  t: number;
  /** Module-local physical page index. */
  phys: number;
}

/** Per-module trampoline space: virtual pages, their physical pages, and the dense cursor. */
export class TrampolineSpace {
  readonly layout: ModuleLayout;
  phys: PhysPage[] = [];
  /** virtual page number → physical page index (the grouping made while placing) */
  vpages = new Map<number, number>();
  /** Every trampoline of a successful SitePatch, in planning order (record()). */
  readonly placed: PlacedTrampoline[] = [];
  private denseNext: number;

  constructor(layout: ModuleLayout) {
    this.layout = layout;
    this.denseNext = layout.denseBase;
  }

  /**
   * Cost of placing len bytes at t (fixed target), packing first: 0 = fits an existing virtual
   * page next to a span already there, 0.5 = a new virtual page on an existing physical page, next
   * to a span there; 1 and 1.5 the same leaving a gap on both sides (fragmentation); 2 = a new
   * physical page; -1 = impossible.
   */
  cost(t: number, len: number): number {
    if (!targetAllowed(this.layout, t, len)) return -1;
    const vp = Math.floor(t / PAGE);
    const off = t - vp * PAGE;
    const p = this.vpages.get(vp);
    if (p !== undefined) {
      const pp = this.phys[p] as PhysPage;
      if (this.closed.has(p)) return -1;
      return pp.free(off, len) ? (pp.snug(off, len) ? 0 : 1) : -1;
    }
    let c = this.closed.size > 0 || this.capped ? -1 : 2; // while repacking (repack.ts), no new ones
    for (const [i, pp] of this.phys.entries()) {
      if (this.closed.has(i) || !pp.free(off, len)) continue;
      if (pp.snug(off, len)) return 0.5;
      c = 1.5;
    }
    return c;
  }

  /** Reserve len bytes at the fixed address t (cost(t, len) must be >= 0). */
  placeAt(t: number, len: number, phys?: number): Placement {
    const vp = Math.floor(t / PAGE);
    const off = t - vp * PAGE;
    let p = this.vpages.get(vp) ?? phys;
    if (p !== undefined) this.vpages.set(vp, p);
    else {
      const open = (i: number) => !this.closed.has(i);
      p = this.phys.findIndex((pp, i) => open(i) && pp.free(off, len) && pp.snug(off, len));
      if (p < 0) p = this.phys.findIndex((pp, i) => open(i) && pp.free(off, len));
      if (p < 0) {
        p = this.phys.length;
        this.phys.push(new PhysPage());
      }
      this.vpages.set(vp, p);
    }
    const pp = this.phys[p] as PhysPage;
    if (!pp.free(off, len)) throw new Error(`punning: trampoline at 0x${t.toString(16)} overlaps another`);
    pp.take(off, len);
    return { t, phys: p };
  }

  /** Physical pages no new span may use (repack.ts empties them). */
  readonly closed = new Set<number>();
  /** No physical page beyond those in `phys` (repack.ts solves into a fixed number of pages). */
  capped = false;

  /** Give back a span placed at t (repack.ts); its virtual page goes when nothing else is on it. */
  unplace(t: number, len: number): void {
    const vp = Math.floor(t / PAGE);
    const p = this.vpages.get(vp);
    if (p === undefined) return;
    (this.phys[p] as PhysPage).release(t - vp * PAGE, len);
    const i = this.placed.findIndex((x) => x.t === t && x.len === len);
    if (i >= 0) this.placed.splice(i, 1);
    if (!this.placed.some((x) => Math.floor(x.t / PAGE) === vp)) this.vpages.delete(vp);
  }

  /** Take over another space's pages (finishPages, after placing again). */
  adopt(other: TrampolineSpace): void {
    this.phys = other.phys;
    this.vpages = other.vpages;
    this.denseNext = other.denseNext;
  }

  /** Remember a trampoline that ended in a SitePatch (finishPages may move it and regroup). */
  record(patch: SitePatch, t: number, len: number, movable?: Movable, slot: 0 | 1 = 0): void {
    this.placed.push(movable === undefined ? { t, len, patch, slot } : { t, len, patch, movable, slot });
  }

  /** End of the last patch range a sound tactic claimed (sites are planned in address order). */
  patchEnd = Number.NEGATIVE_INFINITY;

  /**
   * Place len bytes anywhere `ok(t)` accepts: first in a free gap of an existing virtual page, else
   * on a new dense virtual page (which reuses a physical page with room at that offset when possible).
   */
  placeFree(len: number, ok: (t: number) => boolean): Placement | null {
    for (const [vp, p] of this.vpages) {
      const off = (this.phys[p] as PhysPage).firstFit(len);
      if (off < 0) continue;
      const t = vp * PAGE + off;
      if (targetAllowed(this.layout, t, len) && ok(t)) return this.placeAt(t, len);
    }
    for (let tries = 0; tries < 64; tries++) {
      const vp = Math.floor(this.denseNext / PAGE);
      this.denseNext = (vp + 1) * PAGE;
      if (this.vpages.has(vp)) continue;
      const t = vp * PAGE;
      if (!targetAllowed(this.layout, t, len) || !ok(t)) return null;
      return this.placeAt(t, len);
    }
    return null;
  }
}

const spaces = new WeakMap<ElfFile, TrampolineSpace>();

/** The module's trampoline space (one per ElfFile object, created on first use). */
export function spaceFor(elf: ElfFile): TrampolineSpace {
  let s = spaces.get(elf);
  if (s === undefined) {
    s = new TrampolineSpace(moduleLayout(elf));
    spaces.set(elf, s);
  }
  return s;
}

/** Forget a module's space (tests re-plan the same ElfFile). */
export function resetSpace(elf: ElfFile): void {
  spaces.delete(elf);
}

/** Used [start, end) byte ranges of each virtual page (page number → sorted, merged ranges). */
export function usedRanges(placed: readonly { t: number; len: number }[]): Map<number, [number, number][]> {
  const by = new Map<number, [number, number][]>();
  for (const { t, len } of placed) {
    const vp = Math.floor(t / PAGE);
    const off = t - vp * PAGE;
    const r = by.get(vp) ?? [];
    by.set(vp, r);
    r.push([off, off + len]);
  }
  for (const r of by.values()) {
    r.sort((a, b) => a[0] - b[0]);
    let w = 0;
    for (const iv of r) {
      const last = r[w - 1];
      if (last !== undefined && iv[0] <= last[1]) last[1] = Math.max(last[1], iv[1]);
      else r[w++] = iv;
    }
    r.length = w;
  }
  return by;
}

/**
 * E9Patch's physical page grouping as one pass: virtual pages in tiers (tier 0 first), within a
 * tier the fullest first; each goes to the first physical page where none of its used ranges
 * overlaps a range already there, else to a new one. Returns virtual page → physical page.
 */
export function groupPages(ranges: Map<number, [number, number][]>, tier: (vp: number) => number): Map<number, number> {
  const used = (r: [number, number][]) => r.reduce((n, [a, b]) => n + b - a, 0);
  const order = [...ranges.keys()].sort(
    (a, b) =>
      tier(a) - tier(b) ||
      used(ranges.get(b) as [number, number][]) - used(ranges.get(a) as [number, number][]) ||
      a - b,
  );
  const phys: PhysPage[] = [];
  const out = new Map<number, number>();
  for (const vp of order) {
    const r = ranges.get(vp) as [number, number][];
    let p = phys.findIndex((pp) => r.every(([a, b]) => pp.free(a, b - a)));
    if (p < 0) {
      p = phys.length;
      phys.push(new PhysPage());
    }
    for (const [a, b] of r) (phys[p] as PhysPage).take(a, b - a);
    out.set(vp, p);
  }
  return out;
}

interface Grouping {
  /** virtual page → physical page */
  map: Map<number, number>;
  /** Physical pages behind the virtual pages of taken sites, and behind all of them. */
  hot: number;
  all: number;
}

function better(a: Grouping, b: Grouping): boolean {
  return a.hot < b.hot || (a.hot === b.hot && a.all < b.all);
}

/**
 * The better of two groupings of a space's virtual pages: the one made while placing, and
 * first-fit decreasing with the pages of taken sites first (so the pages the runtime maps for the
 * plan's first choices come first). Fewer pages behind taken sites wins, then fewer in all.
 */
function bestGrouping(space: TrampolineSpace, taken: ReadonlySet<SitePatch>): Grouping {
  const ranges = usedRanges(space.placed);
  const hot = new Set<number>();
  for (const p of space.placed) if (taken.has(p.patch)) hot.add(Math.floor(p.t / PAGE));
  const all = new Set(ranges.keys());
  const count = (m: Map<number, number>, only: Set<number>) =>
    new Set([...m].filter(([vp]) => only.has(vp)).map(([, p]) => p)).size;
  const make = (map: Map<number, number>): Grouping => ({ map, hot: count(map, hot), all: count(map, all) });
  const placing = make(new Map([...ranges.keys()].map((vp) => [vp, space.vpages.get(vp) ?? -1])));
  const ffd = make(groupPages(ranges, (vp) => (hot.has(vp) ? 0 : 1)));
  return better(ffd, placing) ? ffd : placing;
}

/**
 * Place the module's trampolines again with every pun first: puns keep their addresses (fixed by
 * the bytes), then the free-target trampolines fill the gaps the puns left, in planning order, as
 * placeFree does. During planning a free-target trampoline could only fill gaps of puns planned
 * before it. Returns the new space, or null when a trampoline finds no place.
 */
function replaced(space: TrampolineSpace): { space: TrampolineSpace; at: number[] } | null {
  const next = new TrampolineSpace(space.layout);
  const at: number[] = [];
  for (const r of space.placed) {
    if (r.movable !== undefined) continue;
    if (next.cost(r.t, r.len) < 0) return null;
    next.placeAt(r.t, r.len);
  }
  for (const r of space.placed) {
    if (r.movable === undefined) {
      at.push(r.t);
      continue;
    }
    const p = next.placeFree(r.len, r.movable.ok);
    if (p === null) return null;
    at.push(p.t);
  }
  space.placed.forEach((r, i) => {
    next.record(r.patch, at[i] as number, r.len, r.movable, r.slot);
  });
  return { space: next, at };
}

/** Point a free-target patch at a trampoline span starting at t: the e9's rel32 and aux[0]. */
function retarget(r: PlacedTrampoline, t: number): void {
  const m = r.movable as Movable;
  const aux = r.patch.aux as bigint[];
  const site = Number((aux[0] as bigint) >> 32n);
  const target = t + m.entry;
  const p = r.patch.patch;
  const i = m.jmpAt - p.vaddr;
  if (p.bytes[i] !== 0xe9) throw new Error(`punning: no jmp at 0x${m.jmpAt.toString(16)}`);
  new DataView(p.bytes.buffer, p.bytes.byteOffset).setInt32(i + 1, target - (m.jmpAt + 5), true);
  aux[0] = BigInt.asUintN(32, BigInt(target - site)) | (BigInt(site) << 32n);
  r.t = t;
}

/**
 * Finish a module's trampoline pages (Strategy.finishModule): place again with every pun first
 * when that needs fewer physical pages (moving free-target trampolines: their jumps and aux[0]
 * are rewritten), then write the better grouping (bestGrouping) into bits 0..11 of aux[1] of
 * every recorded patch, taken or fallback (bits 12..23 for a second trampoline). `taken` are the
 * patches the plan takes first.
 */
export function finishPages(space: TrampolineSpace, taken: ReadonlySet<SitePatch>): void {
  if (space.placed.length === 0) return;
  let g = bestGrouping(space, taken);
  const again = replaced(space);
  if (again !== null) {
    const g2 = bestGrouping(again.space, taken);
    if (better(g2, g)) {
      space.placed.forEach((r, i) => {
        if (r.movable !== undefined && r.t !== again.at[i]) retarget(r, again.at[i] as number);
      });
      space.adopt(again.space);
      g = g2;
    }
  }
  for (const { t, patch, slot } of space.placed) {
    const aux = patch.aux as bigint[];
    const p = g.map.get(Math.floor(t / PAGE)) as number;
    const shift = slot === 1 ? 12n : 0n;
    aux[1] = ((aux[1] as bigint) & ~(0xfffn << shift)) | (BigInt(p) << shift);
  }
}
