/**
 * Page statistics of a module's punning trampolines: virtual pages (distinct page addresses the
 * runtime maps) and physical pages (distinct memfd pages behind them), from the aux words alone.
 */

import type { Site } from "@sysi/core/scan";
import type { SiteContext, SitePatch } from "@sysi/core/strategy";
import { type GivenBack, giveBackCrowded, spreadFixedPuns } from "./convert.ts";
import { entryOffset, FIXED_BYTES } from "./encode.ts";
import { finishPages, PAGE, spaceFor } from "./pages.ts";
import { repack } from "./repack.ts";

export interface PageStats {
  trampolines: number;
  /** Bytes of trampoline code (both trampolines of succ/neigh patches). */
  "trampoline-bytes": number;
  "virtual-pages": number;
  "physical-pages": number;
  /** mmap calls the runtime makes: runs of adjacent virtual pages on consecutive physical pages. */
  mappings: number;
  /** Per tactic counts among the given patches. */
  tactics: Record<string, number>;
  /**
   * Sites taken by a tactic that overwrites instruction starts on the planner's word that
   * nothing enters them (jmp, punx, short, evict: only when named in `-s punning:tactics=`).
   */
  "unsafe-tactic-sites": number;
}

const UNSAFE = new Set(["jmp", "punx", "short", "evict"]);

/** Bytes a rel8 branch grows by when relocated (aux[1] bits 48..50: none, jmp8, jmp32, jcc8, jcc32). */
const BRANCH_GROWTH = [0, 3, 0, 4, 0];
const TACTIC_SUCC = 5;
const TACTIC_NEIGH = 6;

/** Where one trampoline lives, from its patch alone (what the runtime maps). */
export interface TrampolineSpan {
  site: number;
  /** Start of the trampoline's span (link-time); the site jumps to t + entryOffset. */
  t: number;
  len: number;
  /** Virtual page number (t / PAGE) and module-local physical page. */
  vpage: number;
  phys: number;
}

/** The site's own trampoline, from the aux words alone. */
export function trampolineSpan(site: number, aux: readonly bigint[]): TrampolineSpan {
  const [a0, a1] = aux as [bigint, bigint];
  const pre = Number((a1 >> 24n) & 15n);
  const post = Number((a1 >> 28n) & 15n);
  const br = Number((a1 >> 48n) & 7n);
  const t = site + Number(BigInt.asIntN(32, a0)) - entryOffset(pre > 0);
  const len = FIXED_BYTES + (pre > 0 ? pre + 2 : 0) + post + (BRANCH_GROWTH[br] ?? 0);
  return { site, t, len, vpage: Math.floor(t / PAGE), phys: Number(a1 & 0xfffn) };
}

function rel32At(b: Uint8Array, i: number): number {
  return new DataView(b.buffer, b.byteOffset).getInt32(i, true);
}

/**
 * Every trampoline of a patch, as the runtime finds them (native/init.c): the site's from aux,
 * and for succ the successor's (the e9 at site + 2), for neigh the plain site trampoline (the eb
 * at the site, then the e9 it reaches), each from the patch bytes.
 */
export function trampolineSpans(site: number, patch: SitePatch): TrampolineSpan[] {
  const aux = patch.aux as [bigint, bigint];
  const main = trampolineSpan(site, aux);
  const tactic = Number((aux[1] >> 51n) & 31n);
  const b = patch.patch.bytes;
  const off = (a: number) => a - patch.patch.vaddr;
  const phys = Number((aux[1] >> 12n) & 0xfffn);
  const post = Number((aux[1] >> 28n) & 15n);
  const br = Number((aux[1] >> 48n) & 7n);
  if (tactic === TACTIC_SUCC) {
    const at = site + 2;
    const t = at + 5 + rel32At(b, off(at) + 1);
    const len = post + (BRANCH_GROWTH[br] ?? 0) + 5;
    return [main, { site, t, len, vpage: Math.floor(t / PAGE), phys }];
  }
  if (tactic === TACTIC_NEIGH) {
    const at = site + 2 + (((b[off(site) + 1] as number) << 24) >> 24);
    const t = at + 5 + rel32At(b, off(at) + 1) - entryOffset(false);
    return [main, { site, t, len: FIXED_BYTES, vpage: Math.floor(t / PAGE), phys }];
  }
  return [main];
}

export function pageStats(taken: readonly { site: Site; patch: SitePatch }[]): PageStats {
  const vpages = new Map<number, number>();
  const ppages = new Set<number>();
  const tactics: Record<string, number> = {};
  let bytes = 0;
  let trampolines = 0;
  for (const { site, patch } of taken) {
    if (patch.aux === undefined) continue;
    for (const span of trampolineSpans(site.vaddr, patch)) {
      vpages.set(span.vpage, span.phys);
      ppages.add(span.phys);
      bytes += span.len;
      trampolines++;
    }
    const k = patch.tactic ?? "?";
    tactics[k] = (tactics[k] ?? 0) + 1;
  }
  let mappings = 0;
  let prev: [number, number] | null = null;
  for (const [vp, p] of [...vpages].sort((a, b) => a[0] - b[0])) {
    if (prev === null || vp !== prev[0] + 1 || p !== prev[1] + 1) mappings++;
    prev = [vp, p];
  }
  return {
    trampolines,
    "trampoline-bytes": bytes,
    "virtual-pages": vpages.size,
    "physical-pages": ppages.size,
    mappings,
    tactics,
    "unsafe-tactic-sites": Object.entries(tactics).reduce((n, [k, v]) => n + (UNSAFE.has(k) ? v : 0), 0),
  };
}
/**
 * Strategy.finishModule: repacks the sound trampolines (repack.ts), finishes the module's pages
 * (pages.ts finishPages: may move free-target
 * trampolines and rewrites the physical page index in aux[1] of every punning patch, taken or
 * fallback), then returns the page statistics of the taken patches for `sysi plan --json`.
 */
export function finishModule(
  ctx: SiteContext,
  taken: readonly { site: Site; patch: SitePatch; fallback?: string }[],
): PageStats & { giveBack: GivenBack[] } {
  const space = spaceFor(ctx.elf);
  spreadFixedPuns(ctx, space);
  const withFallback = new Map(taken.filter((x) => x.fallback !== undefined).map((x) => [x.patch, x.site.vaddr]));
  const giveBack = giveBackCrowded(space, withFallback);
  const bytes = space.placed.reduce((n, p) => n + p.len, 0);
  for (const p of repack(space, new Set(withFallback.keys())))
    giveBack.push({
      vaddr: withFallback.get(p) as number,
      reason: "page-bound",
      detail: `its trampolines fit no page offset left free in the ${Math.ceil(bytes / PAGE) + 1} physical pages of the bound`,
    });
  const gone = new Set(giveBack.map((g) => g.vaddr));
  const kept = taken.filter((x) => !gone.has(x.site.vaddr));
  finishPages(space, new Set(kept.map((x) => x.patch)));
  return { ...pageStats(kept), giveBack };
}
