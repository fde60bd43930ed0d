/**
 * The syscall-site scanner: finds every `syscall` (0f 05), `sysenter` (0f 34) and `int $0x80`
 * (cd 80) instruction in a module's executable code, with its context.
 *
 * Strategy (fast and exact):
 * 1. Byte-scan the code for the opcode pairs (candidates; most sit inside other instructions).
 * 2. A candidate inside a known function (symbols + .eh_frame, innermost range) is settled by
 *    decoding that function linearly from its start (each function decoded once).
 * 3. A candidate outside every known function is settled by the linear sweep of the gap it lies
 *    in (from the last function end, symbol, data end or code-range start before it). The sweep
 *    is reproduced exactly from local decodes (DecodeEngine.sweepCover). Such a site is certain
 *    only when reach.ts proves it code: a traversal from a proven entry (ELF entry, init/fini,
 *    function starts, code pointers in data, and transitively direct call/jmp/address-taking
 *    targets in proven code) reaches it on an instruction boundary. Otherwise `uncertain`
 *    ("gap-sweep"; "boundary-conflict" when proven code puts an instruction across it).
 * 4. Cross-check: a candidate inside a function is also settled by the sweep a disassembler
 *    such as objdump does (restarting at symbols only). When the two disagree, or the function
 *    decode met invalid bytes before the candidate, every site either finds is `uncertain`.
 * Candidates inside data objects (elf.dataInText()) and outside executable sections (when the
 * file has a section table) are not code and are skipped.
 */
import type { ElfFile, ElfSegment, FunctionRange } from "../elf/types.ts";
import { ET_EXEC, SHF_EXECINSTR } from "../elf/types.ts";
import { findCandidates } from "./candidates.ts";
import { type CodeView, combineNr, DecodeEngine, type LinearDecode, lastAtOrBelow, type NrWalk } from "./decode.ts";
import { codeEntries } from "./entries.ts";
import { loadIced } from "./iced.ts";
import { RangeIndex } from "./ranges.ts";
import { CodeReach, type ReachStats } from "./reach.ts";
import { RefIndex } from "./refs.ts";
import type { ScanResult, Site, SiteKind } from "./types.ts";

export interface ScanOptions {
  /** Called as candidates are settled (throttled), and once at the end with done === total. */
  onProgress?(done: number, total: number): void;
  /**
   * Look for proof that sites outside every known function are code (reach.ts; default true).
   * Without it every such site is uncertain ("gap-sweep"). The analysis only runs when such a
   * site exists; on a module without function ranges it costs about as much as a scan.
   */
  reach?: boolean;
}

/** Why a site is uncertain. Kept out of the Site model; read it with `uncertainReason`. */
export type UncertainReason =
  | "gap-sweep" // found only by sweeping bytes outside every known function
  | "boundary-conflict" // function-start decode and symbol-restarted sweep disagree at this byte
  | "invalid-before-site"; // the function decode met invalid bytes before reaching the site

const reasons = new WeakMap<Site, UncertainReason>();

/** The reason an uncertain site from scanElf is uncertain (null for certain or foreign sites). */
export function uncertainReason(site: Site): UncertainReason | null {
  return reasons.get(site) ?? null;
}

const reachStatsOf = new WeakMap<ScanResult, ReachStats>();

/** What the reachability analysis for sites outside known functions did (null if it did not run). */
export function reachStats(result: ScanResult): ReachStats | null {
  return reachStatsOf.get(result) ?? null;
}

/** Bytes after the instruction included in Site.bytes. */
const TAIL_BYTES = 16;
/** How far back the function-vs-sweep cross-check may look before giving up (advisory only). */
const CROSS_CHECK_BACK = 1 << 15;
const STT_SECTION = 3;
const STT_FILE = 4;

/** One executable code range: a PT_LOAD with PF_X, clipped to SHF_EXECINSTR sections if any. */
interface CodeRange {
  seg: ElfSegment;
  view: CodeView;
  /** vaddrs, [start, end) */
  start: number;
  end: number;
}

function codeRanges(elf: ElfFile): CodeRange[] {
  const execSections = elf.sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0 && s.type !== 8 && s.size > 0);
  const out: CodeRange[] = [];
  for (const seg of elf.execSegments()) {
    const fileEnd = Math.min(seg.offset + seg.filesz, elf.bytes.length);
    if (fileEnd <= seg.offset) continue;
    const view: CodeView = { bytes: elf.bytes.subarray(seg.offset, fileEnd), base: seg.vaddr };
    const segEnd = seg.vaddr + (fileEnd - seg.offset);
    if (execSections.length === 0) {
      out.push({ seg, view, start: seg.vaddr, end: segEnd });
      continue;
    }
    for (const s of execSections) {
      const start = Math.max(s.addr, seg.vaddr);
      const end = Math.min(s.addr + s.size, segEnd);
      if (start < end) out.push({ seg, view, start, end });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

interface FnDecode {
  lin: LinearDecode;
  lo: number; // view offsets
  hi: number;
}

/** Scans one parsed module. Sites are sorted by vaddr. */
export async function scanElf(elf: ElfFile, opts: ScanOptions = {}): Promise<ScanResult> {
  const t0 = performance.now();
  const ranges = codeRanges(elf);
  const byKind: Record<SiteKind, number> = { syscall: 0, sysenter: 0, int80: 0 };
  let textBytes = 0;
  const cands: { range: CodeRange; c: number }[] = [];
  for (const r of ranges) {
    textBytes += r.end - r.start;
    const lo = r.start - r.view.base;
    for (const cand of findCandidates(r.view.bytes, lo, r.end - r.view.base)) cands.push({ range: r, c: cand.pos });
  }
  const total = cands.length;
  const sites = new Map<number, Site>();
  let decodedBytes = 0;
  let functionsDecoded = 0;
  let reachStats: ReachStats | null = null;

  if (total > 0) {
    const engine = new DecodeEngine(loadIced());
    let reach = null as CodeReach | null;
    try {
      const fns = new RangeIndex<FunctionRange>(elf.functions());
      const data = new RangeIndex(elf.dataInText());
      const fnStarts = new Set(fns.items.map((f) => f.start));
      // Where a symbol-driven sweep (what objdump -d does) restarts: symbols, code-range starts,
      // ends of data objects.
      const syms = elf.symbols();
      const all = new Float64Array(ranges.length + data.items.length + syms.length);
      let n = 0;
      for (const r of ranges) all[n++] = r.start;
      for (const d of data.items) all[n++] = d.end;
      for (const s of syms) if (s.type !== STT_SECTION && s.type !== STT_FILE && s.value !== 0) all[n++] = s.value;
      const restarts = all.subarray(0, n).sort();
      const restartBefore = (range: CodeRange, v: number): number => {
        const j = lastAtOrBelow(restarts, v);
        return Math.max(range.start, j >= 0 ? (restarts[j] as number) : range.start);
      };
      const fnCache = new Map<FunctionRange, FnDecode>();

      // Sites outside every known function: certain only when reach.ts proves them (built lazily,
      // the first time such a site turns up).
      const rangeStarts = Float64Array.from(ranges, (r) => r.start);
      const gapReason = (vaddr: number): UncertainReason | null => {
        if (opts.reach === false) return "gap-sweep";
        if (reach === null) {
          const inCode = (v: number) => {
            const j = lastAtOrBelow(rangeStarts, v);
            return j >= 0 && v < (ranges[j] as CodeRange).end;
          };
          const refs = () => new RefIndex(ranges, inCode, { imm: elf.type === ET_EXEC, lea: elf.type !== ET_EXEC });
          reach = new CodeReach(engine, ranges, codeEntries(elf, inCode), refs, fns, data);
        }
        const c = reach.coverAt(vaddr);
        return c === vaddr ? null : c === null ? "gap-sweep" : "boundary-conflict";
      };

      /**
       * Records the site whose instruction starts at view offset `start`. `decodes` are the
       * decodes that put an instruction there; each contributes a syscall-number walk-back.
       */
      const addSite = (
        range: CodeRange,
        start: number,
        decodes: readonly LinearDecode[],
        fn: FunctionRange | null,
        reason: UncertainReason | null,
      ): void => {
        const vaddr = range.view.base + start;
        const prev = sites.get(vaddr);
        if (prev !== undefined) {
          if (reason !== null && !prev.uncertain) {
            prev.uncertain = true;
            reasons.set(prev, reason);
          }
          return;
        }
        const end = range.end - range.view.base;
        const insn = engine.siteInsn(range.view, start, end);
        if (insn === null) return;
        const isTarget = (v: number) => fnStarts.has(v) || decodes.some((d) => d.targets.has(v));
        const walks: { walk: NrWalk; lin: LinearDecode }[] = [];
        for (const lin of decodes) {
          const idx = lastAtOrBelow(lin.starts, start);
          if (idx >= 0 && lin.starts[idx] === start)
            walks.push({ walk: engine.nrBefore(range.view, lin, idx, isTarget), lin });
        }
        const site: Site = {
          vaddr,
          offset: range.seg.offset + (vaddr - range.seg.vaddr),
          kind: insn.kind,
          length: insn.length,
          bytes: range.view.bytes.slice(start, Math.min(end, start + insn.length + TAIL_BYTES)),
          nr: combineNr(walks),
          function: fn?.name ?? null,
          functionRange: fn ? { start: fn.start, end: fn.end } : null,
          uncertain: reason !== null,
          straddlesPage: Math.floor(vaddr / 4096) !== Math.floor((vaddr + insn.length - 1) / 4096),
        };
        if (reason !== null) reasons.set(site, reason);
        sites.set(vaddr, site);
      };

      /**
       * The sweep from vaddr `restart` at view offset c: the instruction covering c, and an exact
       * decode from where the local sweeps merged to a little past c (for the walk-back).
       */
      const sweep = (range: CodeRange, restart: number, c: number, maxBack: number) => {
        const base = range.view.base;
        const r = engine.sweepCover(range.view, restart - base, c, range.end - base, maxBack);
        if (r === null) return null;
        const hi = Math.min(range.end - base, c + 64);
        decodedBytes += r.decodedBytes + (hi - r.exactFrom);
        return { cover: r.start, lin: engine.decodeLinear(range.view, r.exactFrom, hi) };
      };

      /** Start of the instruction covering c in `lin`, if the opcode pair ends it (a site candidate). */
      const siteStartIn = (lin: LinearDecode, c: number): number | null => {
        const i = lastAtOrBelow(lin.starts, c);
        if (i < 0) return null;
        const s = lin.starts[i] as number;
        return s + (lin.lens[i] as number) === c + 2 ? s : null;
      };

      let done = 0;
      for (const { range, c } of cands) {
        if (++done % 256 === 0) opts.onProgress?.(done, total);
        const v = range.view.base + c;
        if (data.find(v) !== null || data.find(v + 1) !== null) continue;
        // The sweep a disassembler does (objdump -d restarts at symbols, not at FDE starts).
        const symRestart = restartBefore(range, v);
        const fn = fns.find(v);
        if (fn === null) {
          // Gap: sweep from the last function end / symbol / data end / range start before it.
          const restart = Math.max(symRestart, fns.lastEndBefore(v));
          const gap = sweep(range, restart, c, Number.POSITIVE_INFINITY);
          if (gap === null) continue; // unreachable: an unbounded sweep always answers
          const sym = restart === symRestart ? null : sweep(range, symRestart, c, CROSS_CHECK_BACK);
          const s = siteStartIn(gap.lin, c);
          const s2 = sym === null ? null : siteStartIn(sym.lin, c);
          if (s !== null) {
            const agree = sym === null || s2 === s;
            const why = agree ? gapReason(range.view.base + s) : "gap-sweep";
            addSite(range, s, s2 === s && sym ? [gap.lin, sym.lin] : [gap.lin], null, why);
          }
          if (s2 !== null && s2 !== s && sym) addSite(range, s2, [sym.lin], null, "gap-sweep");
          continue;
        }
        let fd = fnCache.get(fn);
        if (fd === undefined) {
          const lo = Math.max(fn.start, range.start) - range.view.base;
          const hi = Math.min(fn.end, range.end) - range.view.base;
          fd = { lin: engine.decodeLinear(range.view, lo, hi), lo, hi };
          fnCache.set(fn, fd);
          decodedBytes += hi - lo;
          functionsDecoded++;
        }
        const fnSite = siteStartIn(fd.lin, c);
        const i = lastAtOrBelow(fd.lin.starts, c);
        const fnCover = i >= 0 ? (fd.lin.starts[i] as number) : -1;
        const sym = symRestart === fn.start ? null : sweep(range, symRestart, c, CROSS_CHECK_BACK);
        if (sym !== null && sym.cover !== fnCover) {
          if (fnSite !== null) addSite(range, fnSite, [fd.lin], fn, "boundary-conflict");
          const s = siteStartIn(sym.lin, c);
          if (s !== null) addSite(range, s, [sym.lin], fn, "boundary-conflict");
          continue;
        }
        if (fnSite === null) continue;
        const invalidBefore = fd.lin.firstInvalid >= 0 && fd.lin.firstInvalid < fnSite;
        addSite(range, fnSite, sym ? [fd.lin, sym.lin] : [fd.lin], fn, invalidBefore ? "invalid-before-site" : null);
      }
      opts.onProgress?.(total, total);
      if (reach !== null) reachStats = { ...reach.stats };
    } finally {
      reach?.free();
      engine.free();
    }
  } else {
    opts.onProgress?.(0, 0);
  }

  const list = [...sites.values()].sort((a, b) => a.vaddr - b.vaddr);
  let uncertain = 0;
  for (const s of list) {
    byKind[s.kind]++;
    if (s.uncertain) uncertain++;
  }
  const result: ScanResult = {
    path: elf.path,
    buildId: elf.buildId,
    sites: list,
    stats: {
      textBytes,
      decodedBytes,
      functions: functionsDecoded,
      byKind,
      uncertain,
      ms: performance.now() - t0,
    },
  };
  if (reachStats !== null) reachStatsOf.set(result, reachStats);
  return result;
}

/** Reads and scans the ELF file at `path` (throws FileError / ElfError). */
export async function scanFile(path: string, opts: ScanOptions = {}): Promise<ScanResult> {
  const { readElfFile } = await import("../elf/reader.ts");
  return scanElf(readElfFile(path), opts);
}
