/**
 * Instruction-level queries over one module, for planners building their SiteContext:
 * decode one instruction, decode the enclosing function (cached), and whether an address is a
 * known control-flow target (function start or direct branch target inside a decoded function).
 */
import type { Decoder, Instruction } from "iced-x86";
import type { ElfFile, FunctionRange } from "../elf/types.ts";
import type { InsnInfo } from "../strategy.ts";
import { type Iced, loadIced } from "./iced.ts";
import { RangeIndex } from "./ranges.ts";

export interface InsnReader {
  /** The instruction at vaddr; null if invalid or not inside an executable segment's file image. */
  decodeAt(vaddr: number): InsnInfo | null;
  /** The innermost known function containing vaddr, decoded linearly from its start; null if none. */
  functionInsns(vaddr: number): InsnInfo[] | null;
  /** Function starts, and direct jump/call targets inside the function containing vaddr (decoded on demand). */
  isKnownTarget(vaddr: number): boolean;
  /** Releases the decoder objects (the reader can still be used afterwards; it reallocates). */
  free(): void;
}

const MAX_INSN = 15;

/** `{ base, disp }` when the instruction's memory operand is based on rsp or rbp, else null. */
export function stackMemOperand(insn: InsnInfo): { base: "rsp" | "rbp"; disp: number } | null {
  if ((insn.memBase === "rsp" || insn.memBase === "rbp") && insn.memDisp !== undefined) {
    return { base: insn.memBase, disp: insn.memDisp };
  }
  return null;
}

export function createInsnReader(elf: ElfFile): InsnReader {
  const segs = elf
    .execSegments()
    .map((s) => {
      const end = Math.min(s.offset + s.filesz, elf.bytes.length);
      return { start: s.vaddr, end: s.vaddr + Math.max(0, end - s.offset), bytes: elf.bytes.subarray(s.offset, end) };
    })
    .filter((s) => s.end > s.start);
  let fns: RangeIndex<FunctionRange> | null = null;
  let fnStarts: Set<number> | null = null;
  const functions = () => {
    if (fns === null) {
      fns = new RangeIndex(elf.functions());
      fnStarts = new Set(fns.items.map((f) => f.start));
    }
    return fns;
  };
  const cache = new Map<number, InsnInfo[]>();
  const targets = new Set<number>();
  let iced: Iced | null = null;
  let ins: Instruction | null = null;

  const segAt = (v: number) => segs.find((s) => s.start <= v && v < s.end) ?? null;

  const info = (I: Iced, x: Instruction, vaddr: number, bytes: Uint8Array): InsnInfo => {
    const out: InsnInfo = {
      vaddr,
      length: x.length,
      bytes: bytes.slice(0, x.length),
      isBranch: x.flowControl !== I.FlowControl.Next,
      ripRelative: x.isIpRelMemoryOperand,
      mnemonic: (I.Mnemonic[x.mnemonic] ?? "invalid").toLowerCase(),
    };
    for (let i = 0; i < x.opCount; i++) {
      if (x.opKind(i) !== I.OpKind.Memory) continue;
      const base = x.memoryBase;
      const disp = BigInt.asIntN(64, x.memoryDisplacement);
      if (base !== I.Register.None) out.memBase = (I.Register[base] ?? "").toLowerCase();
      // For rip-relative operands iced stores the absolute target; give the raw displacement.
      out.memDisp = x.isIpRelMemoryOperand ? Number(disp - BigInt(vaddr + x.length)) : Number(disp);
      break;
    }
    return out;
  };

  const withDecoder = <T>(bytes: Uint8Array, ip: number, f: (I: Iced, d: Decoder, x: Instruction) => T): T => {
    if (iced === null) iced = loadIced();
    if (ins === null) ins = new iced.Instruction();
    const d = new iced.Decoder(64, bytes, iced.DecoderOptions.None);
    d.ip = BigInt(ip);
    try {
      return f(iced, d, ins);
    } finally {
      d.free();
    }
  };

  const functionInsns = (vaddr: number): InsnInfo[] | null => {
    const fn = functions().find(vaddr);
    if (fn === null) return null;
    const hit = cache.get(fn.start);
    if (hit !== undefined) return hit;
    const seg = segAt(fn.start);
    if (seg === null) return null;
    const bytes = seg.bytes.subarray(fn.start - seg.start, Math.min(fn.end, seg.end) - seg.start);
    const list = withDecoder(bytes, fn.start, (I, d, x) => {
      const out: InsnInfo[] = [];
      const FC = I.FlowControl;
      while (d.canDecode) {
        const p = d.position;
        d.decodeOut(x);
        const v = fn.start + p;
        out.push(info(I, x, v, bytes.subarray(p)));
        if (x.code === I.Code.INVALID) {
          // Same rule as the scanner: step one byte past invalid bytes.
          out[out.length - 1] = { ...(out[out.length - 1] as InsnInfo), length: 1, bytes: bytes.slice(p, p + 1) };
          d.position = p + 1;
          d.ip = BigInt(v + 1);
          continue;
        }
        const fc = x.flowControl;
        if (
          (fc === FC.UnconditionalBranch || fc === FC.ConditionalBranch || fc === FC.Call) &&
          x.op0Kind === I.OpKind.NearBranch64
        ) {
          targets.add(Number(x.nearBranch64));
        }
      }
      return out;
    });
    cache.set(fn.start, list);
    return list;
  };

  return {
    decodeAt(vaddr) {
      const seg = segAt(vaddr);
      if (seg === null) return null;
      const bytes = seg.bytes.subarray(vaddr - seg.start, Math.min(seg.end, vaddr + MAX_INSN) - seg.start);
      return withDecoder(bytes, vaddr, (I, d, x) => {
        d.decodeOut(x);
        return x.code === I.Code.INVALID ? null : info(I, x, vaddr, bytes);
      });
    },
    functionInsns,
    isKnownTarget(vaddr) {
      functions();
      if (fnStarts?.has(vaddr)) return true;
      functionInsns(vaddr);
      return targets.has(vaddr);
    },
    free() {
      ins?.free();
      ins = null;
    },
  };
}
