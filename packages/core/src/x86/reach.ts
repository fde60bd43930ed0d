/**
 * Evidence that bytes outside every known function are instructions: a demand-driven, bounded
 * recursive traversal.
 *
 * An address is *proven code* when a traversal from a *proven entry* reaches it on an
 * instruction boundary. A traversal from entry t decodes t, follows fall-through (also past
 * calls and syscalls) and direct jcc/jmp targets, and stops at ret, indirect jmp, int3, ud2, hlt.
 * It is discarded (proves nothing) when it meets an invalid instruction, a data object, a direct
 * branch into non-code, an instruction that straddles a known function start, or two of its own
 * instructions that overlap: any of these means the entry was not really code.
 *
 * Proven entries: the strong roots and data pointers of entries.ts, and (transitively) every
 * target of a `call`/`jmp rel32`, `mov/push $imm32` or `lea disp(%rip)` that is itself an
 * instruction in proven code. Inside a known function (symbol, .eh_frame) the scanner's rule
 * applies instead: the linear decode from the function start, up to its first invalid byte.
 *
 * The search runs backwards from the address asked about: the nearest roots and pointers first;
 * then also the nearest targets proposed by refs.ts (built on first need), and for such an entry,
 * the references to it, each proven the same way (depth-limited, memoized). Every decode and
 * search step counts against a budget; when it runs out, what is not proven yet stays unproven.
 * The candidate order and limits only decide how much is found and how fast: nothing here makes
 * an address certain that no traversal from a proven entry reached.
 */
import type { Decoder, Instruction } from "iced-x86";
import type { FunctionRange } from "../elf/types.ts";
import { type DecodeEngine, type LinearDecode, lastAtOrBelow } from "./decode.ts";
import type { CodeEntries } from "./entries.ts";
import type { Iced } from "./iced.ts";
import type { RangeIndex } from "./ranges.ts";
import { REF_CALL, REF_IMM, REF_JMP, type RefIndex, type RefRange } from "./refs.ts";

export interface ReachOptions {
  /** Instructions the whole analysis may decode (a deterministic bound on its time). */
  budget?: number;
}

export interface ReachStats {
  decodedInsns: number;
  traversals: number;
  /** Proof-search steps (cover and entry queries). */
  steps: number;
  /** The budget ran out: some answers may be "unproven" only for lack of time. */
  exhausted: boolean;
}

/**
 * What one traversal reached, as straight-line blocks [start, end) sorted by start (vaddrs);
 * the instructions inside a block are recovered from the per-byte cache.
 */
interface Traversal {
  range: RefRange | null;
  blocks: Float64Array; // start0, end0, start1, end1, …
  /** Direct branch and call targets (vaddrs). */
  targets: number[];
  bad: boolean;
}

const DEFAULT_BUDGET = 2_000_000;
/** Bytes decoded per chunk decoder (plus 15 so that an instruction starting in it fits). */
const CHUNK = 1 << 16;
const MAX_CHUNKS = 64;
const MAX_TRAVERSAL = 100_000;
/** Per address: candidate entries tried (nearest first; roots and others counted apart) and how far back. */
const ROOT_TRIES = 12;
const CALL_TRIES = 4;
const JMP_TRIES = 0;
const MAX_DIST = 1 << 20;
/** Per entry: references tried; and the depth of the caller chain. */
const MAX_REFS = 16;
const MAX_DEPTH = 8;
/** Order in which references to an entry are tried, by REF_* kind: jumps last (then by address). */
const REF_ORDER = [0, 1, 0, 0];

// Instruction kinds (cached per vaddr, packed with the length).
const S_BAD = 5; // invalid, or straddles a known function start, or touches a data object
const S_NEXT = 0; // continue with the next instruction
const S_BRANCH = 1; // direct jcc/loop/xbegin: the target, and continue
const S_JMP = 2; // direct jmp: the target, and stop
const S_STOP = 3; // ret, indirect jmp, int3, ud2, hlt
const S_CALL = 4; // direct call: the target, and continue

/** A per-byte table over a large range, allocated in 64 KiB pages as they are first written. */
class Paged {
  private readonly pages: (Uint8Array | Uint16Array | undefined)[];
  constructor(
    size: number,
    private readonly wide: boolean,
  ) {
    this.pages = new Array(Math.ceil(size / 65536));
  }
  get(off: number): number {
    const pg = this.pages[off >>> 16];
    return pg === undefined ? 0 : (pg[off & 0xffff] as number);
  }
  set(off: number, v: number): void {
    let pg = this.pages[off >>> 16];
    if (pg === undefined) {
      pg = this.wide ? new Uint16Array(65536) : new Uint8Array(65536);
      this.pages[off >>> 16] = pg;
    }
    pg[off & 0xffff] = v;
  }
  clear(): void {
    for (const pg of this.pages) pg?.fill(0);
  }
}

interface Chunk {
  d: Decoder;
  /** vaddr of the decoder's position 0 */
  vaddr: number;
  /** vaddrs this chunk answers for: [vaddr, own) */
  own: number;
}

export class CodeReach {
  readonly stats: ReachStats = { decodedInsns: 0, traversals: 0, steps: 0, exhausted: false };
  private readonly iced: Iced;
  private readonly ins: Instruction;
  private readonly budget: number;
  private readonly chunks = new Map<string, Chunk>();
  private cur: Chunk | null = null;
  private expect = -1;
  /** Length of the instruction decode() decoded last. */
  private len = 0;
  /** Per range, per byte: 0 = not decoded yet, else (kind | length << 3) + 1 of the instruction there. */
  private readonly cache = new Map<RefRange, Paged>();
  private readonly targetOf = new Map<number, number>();
  private readonly stamps = new Map<RefRange, Paged>();
  private epoch = 0;
  private readonly travs = new Map<number, Traversal>();
  private readonly fnDecodes = new Map<FunctionRange, LinearDecode>();
  private readonly proven = new Map<number, boolean>();
  private readonly inProgress = new Set<number>();
  private readonly covers = new Map<number, number | null>();
  private refIndex: RefIndex | null = null;

  constructor(
    private readonly engine: DecodeEngine,
    private readonly ranges: readonly RefRange[],
    private readonly entries: CodeEntries,
    private readonly makeRefs: () => RefIndex,
    private readonly fns: RangeIndex<FunctionRange>,
    private readonly data: RangeIndex<{ start: number; end: number }>,
    opts: ReachOptions = {},
  ) {
    this.iced = engine.iced;
    this.ins = new this.iced.Instruction();
    this.budget = opts.budget ?? DEFAULT_BUDGET;
  }

  free(): void {
    for (const c of this.chunks.values()) c.d.free();
    this.chunks.clear();
    this.cur = null;
    this.ins.free();
  }

  /** The reference index, built on first need (roots alone often settle a module with few gaps). */
  private get refs(): RefIndex {
    if (this.refIndex === null) this.refIndex = this.makeRefs();
    return this.refIndex;
  }

  /** Start of the instruction covering vaddr v in proven code, or null when nothing proves it. */
  coverAt(v: number): number | null {
    return this.cover(v, 0);
  }

  // ---- decoding ---------------------------------------------------------------------------

  private rangeOf(v: number): RefRange | null {
    const r0 = this.ranges[0];
    if (r0 !== undefined && r0.start <= v && v < r0.end) return r0; // the big one, usually
    for (const r of this.ranges) if (r.start <= v && v < r.end) return r;
    return null;
  }

  private inCode(v: number): boolean {
    return this.rangeOf(v) !== null;
  }

  private chunkFor(r: RefRange, v: number): Chunk {
    const i = Math.floor((v - r.start) / CHUNK);
    const key = `${r.start}:${i}`;
    let c = this.chunks.get(key);
    if (c === undefined) {
      const vaddr = r.start + i * CHUNK;
      const lo = vaddr - r.view.base;
      const hi = Math.min(r.end - r.view.base, lo + CHUNK + 15);
      const d = new this.iced.Decoder(64, r.view.bytes.subarray(lo, hi), this.iced.DecoderOptions.None);
      c = { d, vaddr, own: Math.min(r.end, vaddr + CHUNK) };
      if (this.chunks.size >= MAX_CHUNKS) {
        const [oldKey, old] = this.chunks.entries().next().value as [string, Chunk];
        old.d.free();
        this.chunks.delete(oldKey);
        if (this.cur === old) this.cur = null;
      }
    } else this.chunks.delete(key); // re-insert: most recently used last
    this.chunks.set(key, c);
    return c;
  }

  /** Decodes the instruction at vaddr v (inside range r) into this.ins; its kind (S_*), or S_BAD. */
  private decode(r: RefRange, v: number): number {
    let c = this.cur;
    if (c === null || v !== this.expect || v < c.vaddr || v >= c.own) {
      c = this.chunkFor(r, v);
      this.cur = c;
      c.d.position = v - c.vaddr;
      c.d.ip = BigInt(v - c.vaddr);
    }
    const ins = this.ins;
    c.d.decodeOut(ins);
    this.stats.decodedInsns++;
    const { Code, FlowControl: FC, OpKind } = this.iced;
    // Few wasm calls per instruction: flow control and length; the code only when it matters.
    const fc = ins.flowControl;
    if (fc === FC.Exception && ins.code === Code.INVALID) {
      this.expect = -1;
      return S_BAD;
    }
    this.len = ins.length;
    this.expect = v + this.len;
    switch (fc) {
      case FC.Next: {
        const b = r.view.bytes[v - r.view.base] as number;
        return b === 0xf4 && ins.code === Code.Hlt ? S_STOP : S_NEXT;
      }
      case FC.Call:
      case FC.UnconditionalBranch:
      case FC.ConditionalBranch:
      case FC.XbeginXabortXend:
        if (ins.op0Kind === OpKind.NearBranch64) {
          this.targetOf.set(v, c.vaddr + (ins.nearBranch32 | 0));
          return fc === FC.Call ? S_CALL : fc === FC.UnconditionalBranch ? S_JMP : S_BRANCH;
        }
        // syscall/sysenter (Call without a target), xabort/xend, far forms
        return fc === FC.UnconditionalBranch ? S_STOP : S_NEXT;
      case FC.IndirectCall:
        return S_NEXT;
      case FC.Interrupt: // int3 and int1 are traps/padding; int $n returns
        return ins.code === Code.Int3 || ins.code === Code.Int1 ? S_STOP : S_NEXT;
      default: // Return, IndirectBranch, Exception (ud0/ud1/ud2)
        return S_STOP;
    }
  }

  /** The instruction at v (inside r): kind | length << 3, decoded on first use. */
  private insnAt(r: RefRange, v: number): number {
    let cache = this.cache.get(r);
    if (cache === undefined) {
      cache = new Paged(r.end - r.start, false);
      this.cache.set(r, cache);
    }
    const hit = cache.get(v - r.start);
    if (hit !== 0) return hit - 1;
    let k = this.decode(r, v);
    const len = k === S_BAD ? 1 : this.len;
    if (
      k !== S_BAD &&
      (this.crossesStrong(v, len) || this.data.find(v) !== null || this.data.find(v + len - 1) !== null)
    )
      k = S_BAD;
    const packed = k | (len << 3);
    cache.set(v - r.start, packed + 1);
    return packed;
  }

  /** The instruction [v, v + len) has a known function start strictly inside it. */
  private crossesStrong(v: number, len: number): boolean {
    const s = this.entries.strong;
    const j = lastAtOrBelow(s, v + len - 1);
    return j >= 0 && (s[j] as number) > v;
  }

  /** Per-byte visit stamps of range r (the current traversal's epoch marks its instructions). */
  private stampsOf(r: RefRange): Paged {
    let st = this.stamps.get(r);
    if (st === undefined) {
      st = new Paged(r.end - r.start, true);
      this.stamps.set(r, st);
    }
    return st;
  }

  /** Traversal from entry t (memoized); see the module comment. */
  private traverse(t: number): Traversal {
    const hit = this.travs.get(t);
    if (hit !== undefined) return hit;
    this.stats.traversals++;
    if (++this.epoch > 0xffff) {
      for (const st of this.stamps.values()) st.clear();
      this.epoch = 1;
    }
    const epoch = this.epoch;
    const r = this.rangeOf(t);
    const blocks: number[] = [];
    const targets: number[] = [];
    let bad = r === null;
    let count = 0;
    const stack = [t];
    const stamp = r === null ? null : this.stampsOf(r);
    walk: while (!bad && r !== null && stamp !== null && stack.length > 0) {
      const from = stack.pop() as number;
      let p = from;
      for (;;) {
        if (p < r.start || p >= r.end) {
          if (!this.inCode(p)) bad = true; // fell or jumped out of code: not code after all
          break;
        }
        if (stamp.get(p - r.start) === epoch) break;
        if (++count > MAX_TRAVERSAL || this.stats.decodedInsns >= this.budget) {
          // Incomplete: what was reached is still reached from t.
          if (this.stats.decodedInsns >= this.budget) this.stats.exhausted = true;
          if (p > from) blocks.push(from, p);
          break walk;
        }
        const packed = this.insnAt(r, p);
        const k = packed & 7;
        if (k === S_BAD) {
          bad = true;
          break walk;
        }
        stamp.set(p - r.start, epoch);
        if (k === S_BRANCH || k === S_JMP || k === S_CALL) {
          const tg = this.targetOf.get(p) as number;
          if (!this.inCode(tg)) {
            bad = true;
            break walk;
          }
          targets.push(tg);
          // Jumps to other entries (tail calls) are those entries' business.
          if (k === S_BRANCH || (k === S_JMP && !this.isRoot(tg))) stack.push(tg);
        }
        p += packed >> 3;
        if (k === S_JMP || k === S_STOP) break;
      }
      if (p > from) blocks.push(from, p);
    }
    // Sort the blocks by start; overlapping blocks mean two decodes of the same bytes disagree.
    const n = blocks.length / 2;
    const order = Array.from({ length: n }, (_, i) => i).sort(
      (a, b) => (blocks[2 * a] as number) - (blocks[2 * b] as number),
    );
    const sorted = new Float64Array(2 * n);
    order.forEach((i, j) => {
      sorted[2 * j] = blocks[2 * i] as number;
      sorted[2 * j + 1] = blocks[2 * i + 1] as number;
    });
    for (let j = 0; j + 1 < n && !bad; j++)
      if ((sorted[2 * j + 1] as number) > (sorted[2 * j + 2] as number)) bad = true;
    const tr: Traversal = { range: r, blocks: sorted, targets, bad };
    this.travs.set(t, tr);
    return tr;
  }

  // ---- proof search -------------------------------------------------------------------------

  /** Start of the instruction of traversal tr that covers x, or null. */
  private coverIn(tr: Traversal, x: number): number | null {
    const b = tr.blocks;
    let lo = 0;
    let hi = b.length / 2 - 1;
    let j = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((b[2 * mid] as number) <= x) {
        j = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const r = tr.range;
    if (j < 0 || r === null || (b[2 * j + 1] as number) <= x) return null;
    const cache = this.cache.get(r) as Paged;
    let p = b[2 * j] as number;
    for (;;) {
      const next = p + ((cache.get(p - r.start) - 1) >> 3);
      if (next > x) return p;
      p = next;
    }
  }

  private isRoot(t: number): boolean {
    const strong = this.entries.strong;
    const i = lastAtOrBelow(strong, t);
    if (i >= 0 && strong[i] === t) return true;
    const pointers = this.entries.pointers();
    const j = lastAtOrBelow(pointers, t);
    return j >= 0 && pointers[j] === t;
  }

  /** Inside a known function: the scanner's linear decode from its start (clean up to x). */
  private fnCover(fn: FunctionRange, x: number): number | null {
    const r = this.rangeOf(fn.start);
    if (r === null) return null;
    let lin = this.fnDecodes.get(fn);
    if (lin === undefined) {
      const lo = fn.start - r.view.base;
      const hi = Math.min(fn.end, r.end) - r.view.base;
      lin = this.engine.decodeLinear(r.view, lo, hi);
      this.stats.decodedInsns += lin.starts.length;
      this.fnDecodes.set(fn, lin);
    }
    const xo = x - r.view.base;
    if (lin.firstInvalid >= 0 && lin.firstInvalid <= xo) return null;
    const i = lastAtOrBelow(lin.starts, xo);
    if (i < 0) return null;
    const s = lin.starts[i] as number;
    return s + (lin.lens[i] as number) > xo ? r.view.base + s : null;
  }

  /**
   * t follows int3 padding or a ret, or is 16-byte aligned after a nop: how compilers lay out
   * function starts. Only orders the search (a jump-only target that looks like this is likely a
   * function reached by tail calls); it proves nothing.
   */
  private looksLikeStart(t: number): boolean {
    const r = this.rangeOf(t);
    if (r === null || t <= r.start) return false;
    const prev = r.view.bytes[t - 1 - r.view.base] as number;
    return prev === 0xcc || prev === 0xc3 || (t % 16 === 0 && (prev === 0x90 || prev === 0x00));
  }

  /**
   * Candidate entries in [x - MAX_DIST, x], nearest first: strong roots; from level 1 on also
   * data pointers; from level 2 on also proposed reference targets.
   */
  private *candidates(x: number, level: number): Generator<number> {
    const strong = this.entries.strong;
    const pointers = level >= 1 ? this.entries.pointers() : new Float64Array(0);
    const withRefs = level >= 2;
    const min = x - MAX_DIST;
    let i = lastAtOrBelow(strong, x);
    let j = lastAtOrBelow(pointers, x);
    let k = withRefs ? this.refs.targetAtOrBelow(x, min) : -1;
    for (;;) {
      const a = i >= 0 ? (strong[i] as number) : -1;
      const b = j >= 0 ? (pointers[j] as number) : -1;
      const v = Math.max(a, b, k);
      if (v < 0 || v < min) return;
      yield v;
      if (a === v) i--;
      if (b === v) j--;
      if (k === v) k = v > min ? this.refs.targetAtOrBelow(v - 1, min) : -1;
    }
  }

  /** Counts one unit of search work against the budget; false once it has run out. */
  private work(): boolean {
    if (++this.stats.steps > this.budget / 16 || this.stats.decodedInsns >= this.budget) this.stats.exhausted = true;
    return !this.stats.exhausted;
  }

  private cover(x: number, depth: number): number | null {
    const memo = this.covers.get(x);
    if (memo !== undefined) return memo;
    if (!this.work()) return null;
    const fn = this.fns.find(x);
    if (fn !== null) {
      const c = this.fnCover(fn, x);
      this.covers.set(x, c);
      return c;
    }
    // Traversals from the nearest candidates that reach x: roots and proven entries answer at
    // once; other candidates need a proven reference (tried after the walk).
    const reaching: { t: number; c: number }[] = [];
    // First strong roots, then also data pointers (no reference index needed), then every candidate:
    // tries per class are roots/proven entries, called/address-taken targets, jump-only targets
    // (mostly branch targets inside a function: they rarely lead anywhere, so they get none).
    let answer: number | null = null;
    for (let level = 0; level <= 2 && answer === null; level++) {
      const withRefs = level === 2;
      const left = [ROOT_TRIES, withRefs ? CALL_TRIES : 0, withRefs ? JMP_TRIES : 0];
      for (const t of this.candidates(x, level)) {
        if (this.stats.exhausted || (left[0] as number) + (left[1] as number) + (left[2] as number) === 0) break;
        const known = this.isRoot(t) || this.proven.get(t) === true;
        const cls = known ? 0 : this.refs.kindsTo(t) !== 1 << REF_JMP || this.looksLikeStart(t) ? 1 : 2;
        if ((left[cls] as number) === 0) continue;
        left[cls] = (left[cls] as number) - 1;
        const tr = this.traverse(t);
        if (tr.bad) continue;
        const c = this.coverIn(tr, x);
        if (c === null) continue;
        if (known) {
          this.markProven(t);
          answer = c;
          break;
        }
        if (!reaching.some((q) => q.t === t)) reaching.push({ t, c });
      }
    }
    for (let i = 0; answer === null && i < reaching.length; i++) {
      const { t, c } = reaching[i] as { t: number; c: number };
      if (this.entryProven(t, depth)) answer = c;
    }
    if (answer !== null || !this.stats.exhausted) this.covers.set(x, answer);
    return answer;
  }

  /** Records t as proven and, when its traversal is clean, every direct target of it. */
  private markProven(t: number): void {
    if (this.proven.get(t) === true) return;
    this.proven.set(t, true);
    const tr = this.travs.get(t);
    if (tr === undefined || tr.bad) return;
    for (const g of tr.targets) this.proven.set(g, true);
  }

  private entryProven(t: number, depth: number): boolean {
    if (this.isRoot(t)) return true;
    const memo = this.proven.get(t);
    if (memo !== undefined) return memo;
    if (this.inProgress.has(t) || depth >= MAX_DEPTH || !this.work()) return false;
    this.inProgress.add(t);
    let ok = false;
    let tried = 0;
    // Calls and address-taking first: jumps to t are mostly from inside the same function.
    const refs = this.refs
      .refsTo(t)
      .sort((a, b) => (REF_ORDER[a.kind] as number) - (REF_ORDER[b.kind] as number) || a.src - b.src);
    for (const ref of refs) {
      if (this.stats.exhausted || ++tried > MAX_REFS) break;
      if (this.refHolds(ref.src, ref.kind, t, depth + 1)) {
        ok = true;
        break;
      }
    }
    this.inProgress.delete(t);
    if (ok) this.markProven(t);
    else if (!this.stats.exhausted) this.proven.set(t, false);
    return ok;
  }

  /** The proposed reference at src is an instruction of proven code that refers to t. */
  private refHolds(src: number, kind: number, t: number, depth: number): boolean {
    const c = this.cover(src, depth);
    if (c === null) return false;
    if (kind === REF_CALL || kind === REF_JMP) return c === src; // the opcode starts the instruction
    // imm32 / rip-relative disp32 field: the instruction at c must end right after it and be a
    // mov/push of that immediate, or a lea of that rip-relative address.
    const r = this.rangeOf(c);
    if (r === null || c >= src) return false;
    this.expect = -1;
    if (this.decode(r, c) === S_BAD || c + this.len !== src + 4) return false;
    const { Mnemonic, OpKind, Register } = this.iced;
    const ins = this.ins;
    if (kind === REF_IMM) {
      if (ins.mnemonic !== Mnemonic.Mov && ins.mnemonic !== Mnemonic.Push) return false;
      const op = ins.opCount - 1;
      const k = ins.opKind(op);
      const immKind = k === OpKind.Immediate32 || k === OpKind.Immediate32to64;
      // The operand's value as the CPU sees it (sign-extended for push and movq): equal to t.
      return immKind && Number(BigInt.asUintN(64, ins.immediate(op))) === t;
    }
    return ins.mnemonic === Mnemonic.Lea && ins.memoryBase === Register.RIP;
  }
}
