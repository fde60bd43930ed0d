/**
 * Page statistics of a module's punning trampolines: virtual pages (distinct page addresses the
 * runtime maps) and physical pages (distinct memfd pages behind them), from the aux words alone.
 */
import type { SiteContext, SitePatch } from "@sysi/core/strategy";
import type { Site } from "@sysi/core/x86/types";
import { entryOffset, FIXED_BYTES } from "./encode.ts";
import { finishPages, PAGE, spaceFor } from "./pages.ts";

export interface PageStats {
  trampolines: number;
  "virtual-pages": number;
  "physical-pages": number;
  /** Per tactic counts among the given patches. */
  tactics: Record<string, number>;
}

/** Bytes a rel8 branch grows by when relocated (aux[1] bits 48..50: none, jmp8, jmp32, jcc8, jcc32). */
const BRANCH_GROWTH = [0, 3, 0, 4, 0];

/** Where one trampoline lives, from its patch's aux words alone (what the runtime maps). */
export interface TrampolineSpan {
  site: number;
  /** Start of the trampoline's span (link-time); the site jumps to t + entryOffset. */
  t: number;
  len: number;
  /** Virtual page number (t / PAGE) and module-local physical page. */
  vpage: number;
  phys: number;
}

export function trampolineSpan(site: number, aux: readonly bigint[]): TrampolineSpan {
  const [a0, a1] = aux as [bigint, bigint];
  const pre = Number((a1 >> 24n) & 15n);
  const post = Number((a1 >> 28n) & 15n);
  const br = Number((a1 >> 48n) & 7n);
  const t = site + Number(BigInt.asIntN(32, a0)) - entryOffset(pre > 0);
  const len = FIXED_BYTES + (pre > 0 ? pre + 2 : 0) + post + (BRANCH_GROWTH[br] ?? 0);
  return { site, t, len, vpage: Math.floor(t / PAGE), phys: Number(a1 & 0xffffffn) };
}

export function pageStats(taken: readonly { site: Site; patch: SitePatch }[]): PageStats {
  const vpages = new Set<number>();
  const ppages = new Set<number>();
  const tactics: Record<string, number> = {};
  for (const { site, patch } of taken) {
    if (patch.aux === undefined) continue;
    const span = trampolineSpan(site.vaddr, patch.aux);
    vpages.add(span.vpage);
    ppages.add(span.phys);
    const k = patch.tactic ?? "?";
    tactics[k] = (tactics[k] ?? 0) + 1;
  }
  return { trampolines: taken.length, "virtual-pages": vpages.size, "physical-pages": ppages.size, tactics };
}

/**
 * Strategy.finishModule: finishes the module's pages (pages.ts finishPages: may move free-target
 * trampolines and rewrites the physical page index in aux[1] of every punning patch, taken or
 * fallback), then returns the page statistics of the taken patches for `sysi plan --json`.
 */
export function finishModule(ctx: SiteContext, taken: readonly { site: Site; patch: SitePatch }[]): PageStats {
  finishPages(spaceFor(ctx.elf), new Set(taken.map((x) => x.patch)));
  return pageStats(taken);
}
