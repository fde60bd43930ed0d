/**
 * The trampolines a punning patch asks for, rebuilt from the plan alone (the aux words, the patch
 * bytes and the module's original bytes) the way native/init.c does at run time, with the
 * encode.ts builders. For checks that want the code behind every jump without trusting the
 * tactic that chose it (test/invariant.test.ts, test/encode.test.ts).
 *
 *   site        the site's trampoline: span from aux[0] (T - S) and pre; window [S - pre, S + 2 + post)
 *               (init.c pn_prepare_site → sysi_punning_build)
 *   successor   succ: the window's post instructions relocated, then a jmp back to S + 2 + post; span
 *               at the target of the e9 at S + 2 (prepare_second → sysi_punning_build_post)
 *   plain-site  neigh: the site trampoline with no pre, post or fixups; entered at the target of the
 *               e9 that the site's eb reaches (prepare_second → sysi_punning_build, aux masked)
 *
 * The runtime knows no instruction boundaries: it copies the window's bytes, fixes up to two
 * rip-relative disp32s (aux[1] fixups, by their offset only) by the distance the bytes move, and
 * re-encodes a final jmp/jcc (aux[1] branch kind) with a rel32. So the window is cut into
 * Displaced runs here: a run ends after each fixup's disp32, the final branch is a run of its own.
 */
import type { ElfFile } from "@sysi/core/elf";
import type { SitePatch } from "@sysi/core/strategy";
import {
  BRANCH_CODES,
  type BranchKind,
  branchLength,
  buildRelocTrampoline,
  buildTrampoline,
  type Displaced,
  entryOffset,
} from "./encode.ts";
import { trampolineSpan, trampolineSpans } from "./stats.ts";

export type TrampolineRole = "site" | "successor" | "plain-site";

export interface RebuiltTrampoline {
  role: TrampolineRole;
  /** Span start (link-time vaddr) and length, from stats.ts trampolineSpans. */
  t: number;
  len: number;
  /** Where the patch's jump enters the span. */
  entry: number;
  /** Module-local physical page (aux[1]). */
  phys: number;
  /** The code for [t, t + len); null where the runtime refuses the site (why in `refused`). */
  code: Uint8Array | null;
  refused?: string;
}

const TACTIC_SUCC = 5;
const TACTIC_NEIGH = 6;
/** The longest window the runtime accepts (pn_prepare_site: pre + 2 + post <= 16). */
const MAX_WINDOW = 16;
const KINDS = Object.fromEntries(Object.entries(BRANCH_CODES).map(([k, v]) => [v, k])) as Record<number, BranchKind>;

/** The aux[1] fields the runtime reads (native/punning.h PN_AUX_*). */
export interface AuxFields {
  pre: number;
  post: number;
  /** Window offsets of rip-relative disp32s (fixup fields whose offset is non-zero). */
  fixups: number[];
  branch: BranchKind | undefined;
  tactic: number;
  phys: number;
  phys2: number;
}

export function auxFields(aux1: bigint): AuxFields {
  const field = (at: bigint, mask: bigint) => Number((aux1 >> at) & mask);
  const fixups: number[] = [];
  for (let i = 0n; i < 2n; i++) {
    const off = field(32n + 8n * i, 15n);
    if (off !== 0) fixups.push(off);
  }
  return {
    pre: field(24n, 15n),
    post: field(28n, 15n),
    fixups,
    branch: KINDS[field(48n, 7n)],
    tactic: field(51n, 31n),
    phys: field(0n, 0xfffn),
    phys2: field(12n, 0xfffn),
  };
}

/**
 * Window bytes [from, to) as Displaced runs at vaddr wstart + offset, each with at most one
 * fixup (tramp.c copy: a fixup applies when its offset lies in [from, to)); null when a disp32
 * would not lie inside the run (overlapping fixups, or one crossing the end).
 */
function runs(
  win: Uint8Array,
  wstart: number,
  from: number,
  to: number,
  fixups: readonly number[],
): Displaced[] | null {
  const out: Displaced[] = [];
  let a = from;
  for (const off of [...fixups].filter((f) => f >= from && f < to).sort((x, y) => x - y)) {
    if (off < a || off + 4 > to) return null;
    out.push({ vaddr: wstart + a, bytes: win.slice(a, off + 4), ripDisp: off - a, branch: "none" });
    a = off + 4;
  }
  if (a < to) out.push({ vaddr: wstart + a, bytes: win.slice(a, to), ripDisp: -1, branch: "none" });
  return out;
}

function fits32(v: number): boolean {
  return v >= -0x8000_0000 && v <= 0x7fff_ffff;
}

/** rel32 of the e9 at `at` in the patch bytes, or null when no whole e9 lies there (init.c jump_in_patch). */
function jumpInPatch(patch: SitePatch, at: number): number | null {
  const { vaddr, bytes } = patch.patch;
  if (at < vaddr || at + 5 > vaddr + bytes.length || bytes[at - vaddr] !== 0xe9) return null;
  return new DataView(bytes.buffer, bytes.byteOffset).getInt32(at + 1 - vaddr, true);
}

/**
 * Every trampoline of a punning patch with its address and code, as the runtime builds them.
 * A refused trampoline (code null) means the runtime would refuse the whole site.
 */
export function rebuildTrampolines(elf: ElfFile, site: number, patch: SitePatch): RebuiltTrampoline[] {
  if (patch.aux === undefined) return [];
  const aux1 = patch.aux[1];
  const f = auxFields(aux1);
  const wstart = site - f.pre;
  const back = site + 2 + f.post;
  const win = elf.bytesAt(wstart, f.pre + 2 + f.post);
  const blen = f.branch === undefined ? 0 : branchLength(f.branch);
  const refuse = (why: string) => ({ code: null, refused: why });

  // The window's post instructions as the runtime relocates them (tramp.c emit_post).
  const post = (): Displaced[] | string => {
    if (win === null) return "window-not-file-backed";
    if (f.branch === undefined) return "bad-branch-kind";
    if (blen > f.post) return "branch-longer-than-post";
    const body = runs(win, wstart, f.pre + 2, f.pre + 2 + f.post - blen, f.fixups);
    if (body === null) return "bad-fixup";
    if (f.branch !== "none") {
      const at = f.pre + 2 + f.post - blen;
      body.push({ vaddr: wstart + at, bytes: win.slice(at, at + blen), ripDisp: -1, branch: f.branch });
    }
    return body;
  };

  // The site trampoline of pn_prepare_site / sysi_punning_build.
  const siteCode = (t: number, pre: Displaced[], postD: Displaced[], to: number) => {
    const hasPre = pre.length > 0;
    // lea S(%rip),%r11 ends after [pre, jmp L], I, lea over the red zone and itself (encode.ts).
    const leaEnd = t + pre.reduce((n, d) => n + d.bytes.length, 0) + (hasPre ? 2 : 0) + 4 + 5 + 7;
    if (!fits32(site - leaEnd)) return refuse("site-out-of-reach");
    const code = buildTrampoline(t, site, pre, postD, to);
    if (code === null || !fits32(to - (t + code.length))) return refuse("displacement-too-far");
    return { code };
  };

  // The second jump, read from the patch bytes as init.c prepare_second does.
  const { vaddr, bytes } = patch.patch;
  let secondJump = true;
  if (f.tactic === TACTIC_SUCC) secondJump = jumpInPatch(patch, site + 2) !== null;
  if (f.tactic === TACTIC_NEIGH) {
    const eb = site >= vaddr && site + 2 <= vaddr + bytes.length && bytes[site - vaddr] === 0xeb;
    secondJump = eb && jumpInPatch(patch, site + 2 + (((bytes[site + 1 - vaddr] as number) << 24) >> 24)) !== null;
  }
  const spans = secondJump ? trampolineSpans(site, patch) : [trampolineSpan(site, patch.aux)];
  const out: RebuiltTrampoline[] = [];
  const main = spans[0] as (typeof spans)[0];
  const entry = main.t + entryOffset(f.pre > 0);
  const mainBase = { role: "site" as const, t: main.t, len: main.len, phys: main.phys, entry };
  const postD = post();
  const pre = win === null ? null : runs(win, wstart, 0, f.pre, f.fixups);
  if (f.pre + 2 + f.post > MAX_WINDOW) out.push({ ...mainBase, ...refuse("window-too-long") });
  else if (typeof postD === "string") out.push({ ...mainBase, ...refuse(postD) });
  else if (pre === null) out.push({ ...mainBase, ...refuse("bad-fixup") });
  else out.push({ ...mainBase, ...siteCode(main.t, pre, postD, back) });

  if (f.tactic !== TACTIC_SUCC && f.tactic !== TACTIC_NEIGH) return out;
  const second = spans[1];
  const role = f.tactic === TACTIC_SUCC ? ("successor" as const) : ("plain-site" as const);
  if (second === undefined) {
    const why = role === "successor" ? "no-successor-jump" : "no-plain-site-jump";
    out.push({ role, t: Number.NaN, len: 0, phys: f.phys2, entry: Number.NaN, ...refuse(why) });
  } else if (role === "successor") {
    const base = { role, t: second.t, len: second.len, phys: second.phys, entry: second.t };
    if (typeof postD === "string") out.push({ ...base, ...refuse(postD) });
    else {
      const code = buildRelocTrampoline(second.t, postD, back);
      out.push({ ...base, ...(code === null ? refuse("displacement-too-far") : { code }) });
    }
  } else {
    const base = { role, t: second.t, len: second.len, phys: second.phys, entry: second.t + entryOffset(false) };
    out.push({ ...base, ...siteCode(second.t, [], [], site + 2) });
  }
  return out;
}
