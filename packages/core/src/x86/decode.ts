/**
 * Decoding primitives over one code range (iced-x86): a linear decode of a function, the exact
 * instruction boundary a linear sweep has at a given byte (without sweeping everything before
 * it), and the syscall number set by the instructions just before a site.
 *
 * Sweep rule everywhere: decode one instruction; on invalid bytes step one byte forward. The
 * boundaries of a sweep therefore depend only on where it starts, which is what lets
 * `sweepCover` reproduce a full sweep from a few local ones (see there).
 */
import type { Decoder, Instruction, InstructionInfoFactory } from "iced-x86";
import type { Iced } from "./iced.ts";
import type { SiteKind } from "./types.ts";

/** File bytes of one code range: `bytes[i]` lies at vaddr `base + i`. */
export interface CodeView {
  bytes: Uint8Array;
  base: number;
}

export const F_INVALID = 1;
/** flowControl is not Next: jump, call, ret, int, syscall, ud2, … */
export const F_FLOW = 2;

/** Instructions of a linear decode, in address order. Offsets are relative to the view. */
export interface LinearDecode {
  starts: number[];
  lens: number[];
  flags: number[];
  /** vaddrs of direct jump/call targets seen. */
  targets: Set<number>;
  /** View offset of the first invalid instruction, or -1. */
  firstInvalid: number;
  /** View offset where decoding stopped (exclusive). */
  end: number;
}

export interface SweepCover {
  /** View offset of the instruction start whose bytes cover the queried byte. */
  start: number;
  /** From this view offset on, the local decode provably equals the full sweep. */
  exactFrom: number;
  decodedBytes: number;
}

/**
 * Result of a syscall-number walk-back: the number; `{ blockedAt }` when an instruction at that
 * view offset ends the search (branch, call, known target, other write to rax); "exhausted" when
 * the decode began before anything was found.
 */
export type NrWalk = number | { blockedAt: number } | "exhausted";

/**
 * Combines walk-backs over different decodes of the same site (e.g. from a function start and
 * from a symbol-restarted sweep). A block counts unless another decode covers that offset and has
 * no instruction starting there (the blocking instruction is then an artefact of a misaligned
 * decode). The result is a number only when nothing blocks and all numbers found agree.
 */
export function combineNr(walks: readonly { walk: NrWalk; lin: LinearDecode }[]): number | null {
  let nr: number | null = null;
  for (const { walk, lin } of walks) {
    if (walk === "exhausted") continue;
    if (typeof walk === "number") {
      if (nr !== null && nr !== walk) return null;
      nr = walk;
      continue;
    }
    const b = walk.blockedAt;
    const contradicted = walks.some(({ lin: o }) => {
      if (o === lin || o.starts.length === 0 || (o.starts[0] as number) > b || o.end <= b) return false;
      return o.starts[lastAtOrBelow(o.starts, b)] !== b;
    });
    if (!contradicted) return null;
  }
  return nr;
}

/** Maximum x86 instruction length. */
const MAX_INSN = 15;

export class DecodeEngine {
  readonly iced: Iced;
  private readonly ins: Instruction;
  private info: InstructionInfoFactory | null = null;
  private readonly writesRax: Set<number>;
  private readonly writeAccess: Set<number>;

  constructor(iced: Iced) {
    this.iced = iced;
    this.ins = new iced.Instruction();
    const R = iced.Register;
    this.writesRax = new Set([R.RAX, R.EAX, R.AX, R.AL, R.AH]);
    const A = iced.OpAccess;
    this.writeAccess = new Set([A.Write, A.CondWrite, A.ReadWrite, A.ReadCondWrite]);
  }

  free(): void {
    this.ins.free();
    this.info?.free();
    this.info = null;
  }

  private decoder(bytes: Uint8Array): Decoder {
    const d = new this.iced.Decoder(64, bytes, this.iced.DecoderOptions.None);
    d.ip = 0n;
    return d;
  }

  /** Linear decode of view bytes [from, to). Branch targets are computed from `view.base`. */
  decodeLinear(view: CodeView, from: number, to: number): LinearDecode {
    const { Code, FlowControl: FC, OpKind } = this.iced;
    const out: LinearDecode = { starts: [], lens: [], flags: [], targets: new Set(), firstInvalid: -1, end: to };
    if (to <= from) return out;
    const d = this.decoder(view.bytes.subarray(from, to));
    const ins = this.ins;
    const origin = view.base + from;
    try {
      while (d.canDecode) {
        const p = d.position;
        d.decodeOut(ins);
        let next = d.position;
        let flags = 0;
        if (ins.code === Code.INVALID) {
          flags = F_INVALID;
          if (out.firstInvalid < 0) out.firstInvalid = from + p;
          next = p + 1;
          d.position = next;
          d.ip = BigInt(next);
        } else {
          const fc = ins.flowControl;
          if (fc !== FC.Next) {
            flags = F_FLOW;
            if (
              (fc === FC.UnconditionalBranch ||
                fc === FC.ConditionalBranch ||
                fc === FC.Call ||
                fc === FC.XbeginXabortXend) &&
              ins.op0Kind === OpKind.NearBranch64
            ) {
              out.targets.add(origin + (ins.nearBranch32 | 0));
            }
          }
        }
        out.starts.push(from + p);
        out.lens.push(next - p);
        out.flags.push(flags);
      }
    } finally {
      d.free();
    }
    return out;
  }

  /** Next instruction start after the one at decoder position p (invalid → p + 1). */
  private step(d: Decoder, p: number): number {
    d.position = p;
    d.decodeOut(this.ins);
    return this.ins.code === this.iced.Code.INVALID ? p + 1 : d.position;
  }

  /**
   * Where the instruction covering view offset `c` starts, in a linear sweep that starts at
   * view offset `restart` (≤ c) and ends at `end` — exactly, without decoding from `restart`.
   *
   * Why it is exact: for any W ≥ restart + 14, the sweep has an instruction that starts in
   * [W-14, W] (none is longer than 15 bytes), and from there on it is the sweep from that
   * start. So if the 15 sweeps starting at W-14 … W all put the same instruction over `c`, so
   * does the full one. They usually merge within a few instructions; when they do not agree,
   * W moves back (×8) until it reaches `restart`, where a single sweep is the answer — or,
   * when that would mean looking back more than `maxBack` bytes, the answer is null.
   */
  sweepCover(
    view: CodeView,
    restart: number,
    c: number,
    end: number,
    maxBack = Number.POSITIVE_INFINITY,
  ): SweepCover | null {
    let decodedBytes = 0;
    for (let back = 64; ; back *= 8) {
      if (back > maxBack && c - back - (MAX_INSN - 1) > restart) return null;
      const lo = Math.max(c - back - (MAX_INSN - 1), restart);
      const hi = Math.min(end, c + MAX_INSN + 1);
      const cRel = c - lo;
      const d = this.decoder(view.bytes.subarray(lo, hi));
      decodedBytes += hi - lo;
      try {
        const seen = new Set<number>();
        let p = 0;
        for (;;) {
          seen.add(p);
          const n = this.step(d, p);
          if (n > cRel) break;
          p = n;
        }
        const cover = p;
        if (lo === restart) return { start: lo + cover, exactFrom: lo, decodedBytes };
        let exact = 0;
        let agree = true;
        for (let s = 1; s < MAX_INSN && agree; s++) {
          let q = s;
          const path: number[] = [];
          for (;;) {
            if (seen.has(q)) break;
            path.push(q);
            const n = this.step(d, q);
            if (n > cRel) {
              agree = q === cover;
              break;
            }
            q = n;
          }
          for (const x of path) seen.add(x);
          if (q > exact) exact = q;
        }
        if (agree) return { start: lo + cover, exactFrom: lo + exact, decodedBytes };
      } finally {
        d.free();
      }
    }
  }

  /**
   * Kind and length of the instruction starting at view offset `start` when it is a
   * syscall-class instruction, else null.
   */
  siteInsn(view: CodeView, start: number, end: number): { kind: SiteKind; length: number } | null {
    const d = this.decoder(view.bytes.subarray(start, Math.min(end, start + MAX_INSN)));
    try {
      d.decodeOut(this.ins);
      const { Code } = this.iced;
      const code = this.ins.code;
      const length = this.ins.length;
      if (code === Code.Syscall) return { kind: "syscall", length };
      if (code === Code.Sysenter) return { kind: "sysenter", length };
      if (code === Code.Int_imm8 && this.ins.immediate8 === 0x80) return { kind: "int80", length };
      return null;
    } finally {
      d.free();
    }
  }

  /**
   * Syscall number from a `mov $imm,%eax`/`%rax` before instruction `idx` of `lin`, in the same
   * basic block: walk back; stop at a branch, call, invalid byte, known target or any other
   * write to rax/eax/ax/al/ah ("blocked"), or at the start of the decode ("exhausted").
   */
  nrBefore(view: CodeView, lin: LinearDecode, idx: number, isTarget: (vaddr: number) => boolean): NrWalk {
    const startAt = lin.starts[idx];
    if (startAt === undefined || isTarget(view.base + startAt)) return { blockedAt: startAt ?? -1 };
    const { Mnemonic, OpKind, Register } = this.iced;
    for (let j = idx - 1; j >= 0 && j >= idx - 64; j--) {
      const s = lin.starts[j] as number;
      if (((lin.flags[j] as number) & (F_FLOW | F_INVALID)) !== 0) return { blockedAt: s };
      const d = this.decoder(view.bytes.subarray(s, s + (lin.lens[j] as number)));
      const ins = this.ins;
      try {
        d.decodeOut(ins);
        if (ins.mnemonic === Mnemonic.Mov && ins.op0Kind === OpKind.Register && ins.opCount === 2) {
          const r = ins.op0Register;
          const k1 = ins.op1Kind;
          const isImm = k1 === OpKind.Immediate32 || k1 === OpKind.Immediate32to64 || k1 === OpKind.Immediate64;
          if (isImm && r === Register.EAX) return Number(BigInt.asUintN(32, ins.immediate(1)));
          if (isImm && r === Register.RAX) {
            const v = Number(BigInt.asIntN(64, ins.immediate(1)));
            return Number.isSafeInteger(v) ? v : { blockedAt: s };
          }
        }
        if (this.writesRaxFamily(ins)) return { blockedAt: s };
      } finally {
        d.free();
      }
      if (isTarget(view.base + s)) return { blockedAt: s };
    }
    return "exhausted";
  }

  private writesRaxFamily(ins: Instruction): boolean {
    if (this.info === null) this.info = new this.iced.InstructionInfoFactory();
    const info = this.info.info(ins);
    let hit = false;
    for (const u of info.usedRegisters()) {
      if (!hit && this.writesRax.has(u.register) && this.writeAccess.has(u.access)) hit = true;
      u.free();
    }
    info.free();
    return hit;
  }
}

/** Index of the last element of sorted `xs` that is ≤ v, or -1. */
export function lastAtOrBelow(xs: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] as number) <= v) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}
