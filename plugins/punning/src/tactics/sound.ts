/**
 * The sound tactics: E9Patch's invariant (Duck, Gao, Roychoudhury, PLDI 2020) holds for every
 * patch they make, so they need no control-flow knowledge. Every original instruction start the
 * patch touches either keeps its bytes or begins a jump to a trampoline that runs that very
 * instruction and continues after it; `cc` filler and jump bytes go only where no instruction
 * starts. A branch to any instruction of the patched range, found by the planner or not (jump
 * tables, computed gotos, .cold parts, landing pads, a RIP a signal handler writes), still runs
 * the program's instructions in order.
 *
 *   pun    (B2)  S: e9 WW | next bytes unchanged             the rel32's upper bytes are the
 *                S: 48 e9 | next bytes unchanged             successor's; or a prefixed jmp
 *   succ   (T1)  S: e9 WW | N: e9 XX YY..                    the successor N is evicted: its own
 *                                                            jump to a trampoline running N;
 *                                                            the site's rel32 shares N's bytes
 *   neigh  (T2)  J: e9 .. X: e9 rel32 .. | S: eb (X-S-2)     a preceding instruction J (>= 5
 *                                                            bytes) is evicted: its jump runs
 *                                                            J..S and the site in one trampoline;
 *                                                            the site short-jumps to an e9 inside
 *                                                            J's old bytes, to its own trampoline
 *
 * Trampolines: the site's (pre/post windows as encode.ts) and, for succ and neigh, a second one:
 * succ's runs N relocated and jumps back after it (encode.ts buildRelocTrampoline); neigh's is
 * the plain site trampoline for direct entries at S. The runtime finds the second jump from the
 * patch bytes (native/init.c). Free bytes are chosen by solve.ts.
 */
import type { InsnInfo, SiteContext, SitePatch } from "@sysi/core/strategy";
import { buildRelocTrampoline, buildTrampoline, entryOffset, relocTrampolineLength } from "../encode.ts";
import type { TrampolineSpace } from "../pages.ts";
import {
  MAX_PHYS_PAGES,
  packAux1,
  refuse,
  type TacticName,
  type TacticOk,
  type TacticResult,
  trampolineLen,
} from "./common.ts";
import { type JumpSpec, type Layout, type Solution, solve } from "./solve.ts";
import { classify, makeWindow, type Neighbours, type Window } from "./window.ts";

/** Longest patch the plan format allows. */
const MAX_PATCH = 16;
/** REX.W: ignored by a near jmp, so `48 e9 rel32` jumps like `e9 rel32`, one byte later. */
const PREFIX = 0x48;

/** A layout over [start, end) of the original bytes, all fixed; null when not file-backed. */
function original(ctx: SiteContext, start: number, end: number): Layout | null {
  const b = ctx.elf.bytesAt(start, end - start);
  return b === null ? null : { start, bytes: Array.from(b) };
}

function setFree(l: Layout, from: number, to: number): void {
  for (let a = from; a < to; a++) l.bytes[a - l.start] = null;
}

function set(l: Layout, at: number, v: number): void {
  l.bytes[at - l.start] = v;
}

/** The site's own trampoline for window w, as a jump target (span t, entry offset). */
function siteJump(at: number, site: number, w: Window): JumpSpec {
  return {
    at,
    len: trampolineLen(w),
    entry: entryOffset(w.pre.length > 0),
    build: (t) => buildTrampoline(t, site, w.pre, w.post, w.end),
  };
}

/**
 * What repack.ts needs to solve a sound patch again: its layout (free bytes null) and jumps, in
 * solving order; `reversed` when the solution's jumps are [second, site's] (neigh).
 */
export interface Resolvable {
  site: number;
  layout: Layout;
  jumps: JumpSpec[];
  reversed: boolean;
  /** Entry offset of the site's trampoline (aux[0] holds its target minus the site). */
  entry: number;
}
export const resolvable = new WeakMap<SitePatch, Resolvable>();

/** Place a solution's spans, fill in the aux words and record both trampolines. */
function finish(
  ctx: SiteContext,
  space: TrampolineSpace,
  site: number,
  w: Window,
  layout: Layout,
  sol: Solution,
  tactic: TacticName,
  reversed: boolean,
): TacticResult {
  const [main, second] = sol.jumps as [Solution["jumps"][0], Solution["jumps"][0] | undefined];
  const old = ctx.elf.bytesAt(layout.start, layout.bytes.length);
  if (old === null) return refuse("not-file-backed");
  if (site >= 2 ** 32) return refuse("site-vaddr-too-high");
  // In the order solve() held them (the second first when the jumps were solved reversed).
  const p2first = reversed && second !== undefined ? space.placeAt(second.t, second.len) : null;
  const p1 = space.placeAt(main.t, main.len);
  const p2 = second === undefined ? null : (p2first ?? space.placeAt(second.t, second.len));
  if (p1.phys >= MAX_PHYS_PAGES || (p2 !== null && p2.phys >= MAX_PHYS_PAGES)) return refuse("too-many-pages");
  const aux1 = packAux1(p1.phys, w, site, 2, tactic, p2?.phys ?? 0);
  if (aux1 === null) return refuse("too-many-rip-fixups");
  const target = main.t + entryOffset(w.pre.length > 0);
  const out: TacticOk = {
    ok: true,
    patch: {
      patch: { vaddr: layout.start, old, bytes: sol.bytes },
      aux: [BigInt.asUintN(32, BigInt(target - site)) | (BigInt(site) << 32n), aux1],
      tactic,
    },
    t: main.t,
    length: main.len,
    target,
    code: main.code,
  };
  space.record(out.patch, main.t, main.len);
  if (second !== undefined) {
    out.second = { t: second.t, length: second.len, code: second.code };
    space.record(out.patch, second.t, second.len, undefined, 1);
  }
  space.patchEnd = layout.start + layout.bytes.length;
  return out;
}

/**
 * A sound tactic's solution before anything is placed: planSite compares the tactics' proposals
 * (a tactic that opens no new physical page wins over an earlier one that does) and commits one.
 */
export interface Proposal {
  ok: true;
  /** Jumps whose span needs a new physical page. */
  opens: number;
  commit: () => TacticResult;
}
export type ProposalResult = Proposal | { ok: false; reason: string; detail?: string };

function propose(
  ctx: SiteContext,
  space: TrampolineSpace,
  site: number,
  w: Window,
  layout: Layout,
  jumps: JumpSpec[],
  sol: Solution,
  tactic: TacticName,
  reversed = false,
): Proposal {
  return {
    ok: true,
    opens: sol.jumps.filter((j) => j.cost >= 2).length,
    commit: () => finishSolved(ctx, space, site, w, layout, jumps, sol, tactic, reversed),
  };
}

/** finish() and remember how to solve the patch again (repack.ts). */
function finishSolved(
  ctx: SiteContext,
  space: TrampolineSpace,
  site: number,
  w: Window,
  layout: Layout,
  jumps: JumpSpec[],
  sol: Solution,
  tactic: TacticName,
  reversed = false,
): TacticResult {
  const r = finish(ctx, space, site, w, layout, sol, tactic, reversed);
  if (r.ok) resolvable.set(r.patch, { site, layout, jumps, reversed, entry: entryOffset(w.pre.length > 0) });
  return r;
}

function solved(layout: Layout, jumps: JumpSpec[], space: TrampolineSpace): Solution | null {
  if (layout.start < space.patchEnd || layout.bytes.length > MAX_PATCH) return null;
  return solve(layout, jumps, space);
}

/**
 * pun (B2): only the site's two bytes change. `e9 WW` takes the successor's first three bytes as
 * the rel32's upper bytes (256 targets); `48 e9` takes four (one target).
 */
export function tacticPunSound(site: number, ctx: SiteContext, space: TrampolineSpace): ProposalResult {
  const wr = makeWindow(ctx, site, 2, { before: [], after: [] }, 0, 0, false);
  if (!wr.ok) return refuse(wr.reason);
  const w = wr.w;
  let best: { layout: Layout; jumps: JumpSpec[]; sol: Solution } | null = null;
  for (const form of ["e9", "prefix"] as const) {
    const layout = original(ctx, site, site + (form === "e9" ? 5 : 6));
    if (layout === null) continue;
    if (form === "e9") {
      set(layout, site, 0xe9);
      setFree(layout, site + 1, site + 2);
    } else {
      set(layout, site, PREFIX);
      set(layout, site + 1, 0xe9);
    }
    const jumps = [siteJump(form === "e9" ? site : site + 1, site, w)];
    const sol = solved(layout, jumps, space);
    if (sol !== null && (best === null || sol.cost < best.sol.cost)) best = { layout, jumps, sol };
    if (best !== null && best.sol.cost <= 1) break;
  }
  if (best === null) return refuse("pun-no-target");
  return propose(ctx, space, site, w, best.layout, best.jumps, best.sol, "pun");
}

/** The successor as a relocatable instruction of the site's own function, or a refusal reason. */
function successor(ctx: SiteContext, site: number, nb: Neighbours): InsnInfo | string {
  const n = nb.after[0];
  if (n === undefined) return "no-following-insn";
  // Inside a known function, only what the function's own decode reaches: bytes after its last
  // instruction may be data, which must never change. A site outside every known function is
  // certain only when a traversal from a proven entry reached it (x86/reach.ts), and such a
  // traversal follows the fall-through past a syscall: the successor is proven the same way.
  const fn = ctx.functionInsns(site);
  if (fn !== null && !fn.some((x) => x.vaddr === n.vaddr && x.length === n.length)) return "successor-outside-function";
  const c = classify(n);
  return c.ok ? n : c.reason;
}

/**
 * succ (T1): the successor N gets its own `e9` to a trampoline that runs N; the site's `e9`
 * rel32 is [WW, e9, N's free bytes...], so its upper bytes are ours to choose (or, with the
 * prefixed site jump `48 e9`, [e9, N's bytes...]).
 */
export function tacticSucc(site: number, ctx: SiteContext, nb: Neighbours, space: TrampolineSpace): ProposalResult {
  const n = successor(ctx, site, nb);
  if (typeof n === "string") return refuse(n);
  const wr = makeWindow(ctx, site, 2, nb, 0, 1, false);
  if (!wr.ok) return refuse(wr.reason);
  const w = wr.w;
  const nEnd = n.vaddr + n.length;
  const d = w.post[0];
  if (d === undefined) return refuse("no-following-insn");
  const reloc: JumpSpec = {
    at: n.vaddr,
    len: relocTrampolineLength(w.post),
    entry: 0,
    build: (t) => buildRelocTrampoline(t, w.post, nEnd),
  };
  let best: { layout: Layout; jumps: JumpSpec[]; sol: Solution } | null = null;
  for (const form of ["e9", "prefix"] as const) {
    const siteAt = form === "e9" ? site : site + 1;
    const layout = original(ctx, site, Math.max(nEnd, n.vaddr + 5, siteAt + 5));
    if (layout === null) continue;
    set(layout, site, form === "e9" ? 0xe9 : PREFIX);
    if (form === "e9") setFree(layout, site + 1, site + 2);
    else set(layout, site + 1, 0xe9);
    set(layout, n.vaddr, 0xe9);
    setFree(layout, n.vaddr + 1, nEnd);
    const jumps = [siteJump(siteAt, site, w), reloc];
    const sol = solved(layout, jumps, space);
    if (sol !== null && (best === null || sol.cost < best.sol.cost)) best = { layout, jumps, sol };
    if (best !== null && best.sol.cost <= 1) break;
  }
  if (best === null) return refuse("succ-no-target");
  return propose(ctx, space, site, w, best.layout, best.jumps, best.sol, "succ");
}

/**
 * neigh (T2): a preceding instruction J of >= 5 bytes, within a 16-byte patch, is evicted: J's
 * `e9` goes to the site's trampoline with J..S as its pre window (fall-through costs nothing
 * extra), and the site becomes `eb` to an `e9` written inside J's old bytes, whose trampoline
 * is the plain site trampoline (for entries at S itself or at any instruction between J and S,
 * which keep their bytes).
 */
export function tacticNeigh(site: number, ctx: SiteContext, nb: Neighbours, space: TrampolineSpace): ProposalResult {
  let reason = "no-previous-insn";
  const plain = makeWindow(ctx, site, 2, nb, 0, 0, false);
  if (!plain.ok) return refuse(plain.reason);
  for (let nPre = 1; nPre <= Math.min(4, nb.before.length); nPre++) {
    const j = nb.before[nPre - 1] as InsnInfo;
    if (site + 2 - j.vaddr > MAX_PATCH) break;
    const wr = makeWindow(ctx, site, 2, nb, nPre, 0, false);
    if (!wr.ok) {
      reason = wr.reason;
      break; // more instructions before cannot make the window relocatable
    }
    if (j.length < 5) {
      reason = "neighbour-too-short";
      continue;
    }
    const w = wr.w;
    for (let x = j.vaddr + 1; x < j.vaddr + j.length; x++) {
      const end = Math.max(site + 2, j.vaddr + 5, x + 5);
      const layout = original(ctx, j.vaddr, end);
      if (layout === null) return refuse("not-file-backed");
      set(layout, j.vaddr, 0xe9);
      setFree(layout, j.vaddr + 1, j.vaddr + j.length);
      set(layout, x, 0xe9);
      set(layout, site, 0xeb);
      set(layout, site + 1, (x - (site + 2)) & 0xff);
      // A rel32 byte over S's eb/rel8 is a fixed byte like any other. The site's own jump has
      // the fewer free bytes: solve it first. Its free bytes are also J's rel32 high bytes, so the
      // candidates it keeps can all put J out of reach; then J first: its choice fixes X's rel32.
      const jumps = [siteJump(x, site, plain.w), siteJump(j.vaddr, site, w)];
      const sol = solved(layout, jumps, space);
      if (sol !== null) {
        sol.jumps.reverse(); // [J's trampoline (the site's, with J..S before it), the plain one]
        return propose(ctx, space, site, w, layout, jumps, sol, "neigh", true);
      }
      const jFirst = [jumps[1] as JumpSpec, jumps[0] as JumpSpec];
      const sol2 = solved(layout, jFirst, space);
      if (sol2 !== null) return propose(ctx, space, site, w, layout, jFirst, sol2, "neigh");
      reason = "neigh-no-target";
    }
  }
  return refuse(reason);
}
