/**
 * The byte solver behind the sound tactics (E9Patch's B2/T1/T2 without control-flow knowledge).
 *
 * A layout is a patch range [start, end) in which every byte is either fixed (an original byte
 * that stays, or a forced opcode such as `e9`/`eb`) or free (a byte inside an evicted instruction,
 * after its first byte). Each jump is an `e9` at `at` whose rel32 is the four bytes after it: some
 * fixed, some free, some shared with another jump's rel32. The solver picks values for the free
 * bytes so that every jump lands on a trampoline span that the module's trampoline space can take
 * (pages.ts cost), preferring spans in virtual pages already in use, then offsets free in a
 * physical page already in use. Free bytes no jump reads become `cc`.
 *
 * Legend: `at` the e9's address, `rel` its rel32, `t` the span start, `entry` where in the span
 * the jump lands (t + entry = at + 5 + rel).
 */
import type { TrampolineSpace } from "../pages.ts";

export interface JumpSpec {
  at: number;
  len: number;
  entry: number;
  /** The trampoline for a span starting at t, or null when a relocated displacement does not fit. */
  build: (t: number) => Uint8Array | null;
}

export interface Layout {
  start: number;
  /** Byte values over [start, start + bytes.length): a number is fixed, null is free. */
  bytes: (number | null)[];
}

export interface SolvedJump {
  t: number;
  len: number;
  code: Uint8Array;
  cost: number;
}

export interface Solution {
  bytes: Uint8Array;
  jumps: SolvedJump[];
  cost: number;
}

/** Candidates evaluated per jump before the solver settles for the best one seen. */
const BUDGET = 3000;
/** For the last jump, whose bytes earlier jumps mostly decided. */
const BUDGET_LAST = 600;
/** A solution this cheap (all spans snug in pages in use, or one new virtual page) ends the search. */
const GOOD = 0.5;
/** Acceptable candidates kept for the last jump, and for each earlier jump to build on. */
const KEEP_LAST = 6;
const KEEP_EARLY = 64;
/** 64 KiB blocks tried around each anchor when both high rel bytes are free. */
const SPREAD = 24;

interface Candidate {
  rel: number;
  t: number;
  cost: number;
}

function u8(v: number, i: number): number {
  return (v >>> (8 * i)) & 0xff;
}

function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  return a < b + blen && b < a + alen;
}

/**
 * Candidate rel32 values for a jump whose rel bytes are `known` (null = free), tried in a useful
 * order: spans near the virtual pages already in use first (`anchors`, as rel values), then the
 * rest of each 64 KiB block.
 */
function* rels(known: (number | null)[], anchors: number[]): Generator<number> {
  const free = [0, 1, 2, 3].filter((i) => known[i] === null);
  const base = known.reduce<number>((v, b, i) => (b === null ? v : (v | ((b as number) << (8 * i))) >>> 0), 0);
  if (free.length === 0) {
    yield base | 0;
    return;
  }
  const highFree = free.filter((i) => i >= 2);
  const lowFree = free.filter((i) => i < 2);
  // High part: the free bytes among 2..3, from the anchors' values outwards.
  const highs: number[] = [];
  const seenHigh = new Set<number>();
  const addHigh = (v: number) => {
    let h = 0;
    for (const i of highFree) h |= u8(v, i) << (8 * i);
    if (!seenHigh.has(h)) {
      seenHigh.add(h);
      highs.push(h);
    }
  };
  if (highFree.length === 0) addHigh(0);
  else {
    for (const a of anchors) addHigh(a);
    const step = highFree.includes(2) ? 0x1_0000 : 0x100_0000;
    for (let k = 1; k <= SPREAD; k++)
      for (const a of anchors.slice(0, 4)) for (const s of [k, -k]) addHigh(a + s * step);
  }
  // Low part: every value of the free bytes among 0..1 (both free: 16-byte steps, coarse first).
  const lows: number[] = [];
  if (lowFree.length === 0) lows.push(0);
  else if (lowFree.length === 1) for (let x = 0; x < 256; x++) lows.push(x << (8 * (lowFree[0] as number)));
  else {
    const seen = new Set<number>();
    for (const stride of [0x400, 0x100, 0x40, 0x10])
      for (let x = 0; x < 0x1_0000; x += stride) if (!seen.has(x)) seen.add(x) && lows.push(x);
  }
  // Both low bytes free: round robin, a chunk of low values for every high value, then the next
  // chunk, so that a budget cut still saw many 64 KiB blocks. One free low byte: its whole
  // 256-byte window per high value (the window decides how well the span packs).
  const CHUNK = lowFree.length === 2 ? 32 : 256;
  for (let from = 0; from < lows.length; from += CHUNK)
    for (const h of highs) {
      const v = (base | h) >>> 0;
      for (let i = from; i < Math.min(from + CHUNK, lows.length); i++) yield v | (lows[i] as number) | 0;
    }
}

/** rel values that would put a span of `len` right at the start of each page already in use. */
function anchorRels(space: TrampolineSpace, j: JumpSpec): number[] {
  const out: number[] = [];
  for (const vp of space.vpages.keys()) {
    const rel = vp * 4096 + j.entry - (j.at + 5);
    if (rel >= -0x8000_0000 && rel <= 0x7fff_ffff) out.push(rel | 0);
  }
  const dense = space.layout.denseBase + j.entry - (j.at + 5);
  if (dense >= -0x8000_0000 && dense <= 0x7fff_ffff) out.push(dense | 0);
  // Also the middle of every zone, so that a module whose pages are elsewhere still finds room.
  for (const z of space.layout.zones) {
    const mid = Math.floor((z.start + z.end) / 2 / 4096) * 4096 + j.entry - (j.at + 5);
    if (mid >= -0x8000_0000 && mid <= 0x7fff_ffff) out.push(mid | 0);
  }
  return out;
}

/**
 * Solve a layout: null when some jump finds no span. Spans of one solution never overlap each
 * other; nothing stays reserved in the space: the caller places the result's spans, in order.
 */
export function solve(layout: Layout, jumps: readonly JumpSpec[], space: TrampolineSpace): Solution | null {
  const bytes = layout.bytes.slice();
  const end = layout.start + bytes.length;
  for (const j of jumps) if (j.at < layout.start || j.at + 5 > end || bytes[j.at - layout.start] !== 0xe9) return null;
  const chosen: SolvedJump[] = [];
  let best: Solution | null = null;

  const step = (k: number, cost: number): boolean => {
    if (best !== null && cost >= best.cost) return false;
    if (k === jumps.length) {
      const out = Uint8Array.from(bytes.map((b) => (b === null ? 0xcc : b)));
      best = { bytes: out, jumps: chosen.slice(), cost };
      return cost <= GOOD;
    }
    const j = jumps[k] as JumpSpec;
    const off = j.at + 1 - layout.start;
    const known = [0, 1, 2, 3].map((i) => bytes[off + i] as number | null);
    const last = k === jumps.length - 1;
    const keepN = last ? KEEP_LAST : KEEP_EARLY;
    const budget = last ? BUDGET_LAST : BUDGET;
    const found: Candidate[] = [];
    let zeros = 0;
    let n = 0;
    for (const rel of rels(known, anchorRels(space, j))) {
      if (++n > budget) break;
      const t = j.at + 5 + rel - j.entry;
      if (chosen.some((c) => overlaps(c.t, c.len, t, j.len))) continue;
      const c = space.cost(t, j.len);
      if (c < 0) continue;
      found.push({ rel, t, cost: c });
      if (c === 0 && ++zeros >= (last ? 1 : 8)) break;
    }
    // Cheapest first (stable: enumeration order); for an earlier jump at most two per 64 KiB
    // block, since the next jump's bytes are what the block decides.
    found.sort((a, b) => a.cost - b.cost);
    const perBlock = new Map<number, number>();
    const keep: Candidate[] = [];
    for (const c of found) {
      if (keep.length >= keepN) break;
      const block = c.rel >>> 16;
      const m = perBlock.get(block) ?? 0;
      if (!last && m >= 2) continue;
      perBlock.set(block, m + 1);
      keep.push(c);
    }
    for (const cand of keep) {
      const code = j.build(cand.t);
      if (code === null) continue;
      const saved = known.slice();
      for (let i = 0; i < 4; i++) bytes[off + i] = u8(cand.rel, i);
      chosen.push({ t: cand.t, len: j.len, code, cost: cand.cost });
      // Held while the later jumps are solved, so that their spans never overlap this one in
      // the physical page its virtual page gets; the caller places the result in this order.
      if (!last) space.placeAt(cand.t, j.len);
      const done = step(k + 1, cost + cand.cost);
      if (!last) space.unplace(cand.t, j.len);
      chosen.pop();
      for (let i = 0; i < 4; i++) bytes[off + i] = saved[i] as number | null;
      if (done) return true;
    }
    return false;
  };
  step(0, 0);
  return best;
}
