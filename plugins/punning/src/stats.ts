/**
 * Page statistics of a module's punning trampolines: virtual pages (distinct page addresses the
 * runtime maps) and physical pages (distinct memfd pages behind them), from the aux words alone.
 */
import type { SiteContext, SitePatch } from "@sysi/core/strategy";
import type { Site } from "@sysi/core/x86/types";
import { PAGE } from "./pages.ts";

export interface PageStats {
  trampolines: number;
  "virtual-pages": number;
  "physical-pages": number;
  /** Per tactic counts among the given patches. */
  tactics: Record<string, number>;
}

export function pageStats(taken: readonly { site: Site; patch: SitePatch }[]): PageStats {
  const vpages = new Set<number>();
  const ppages = new Set<number>();
  const tactics: Record<string, number> = {};
  for (const { site, patch } of taken) {
    if (patch.aux === undefined) continue;
    const t = site.vaddr + Number(BigInt.asIntN(32, patch.aux[0]));
    vpages.add(Math.floor(t / PAGE));
    ppages.add(Number(patch.aux[1] & 0xffffffn));
    const k = patch.tactic ?? "?";
    tactics[k] = (tactics[k] ?? 0) + 1;
  }
  return { trampolines: taken.length, "virtual-pages": vpages.size, "physical-pages": ppages.size, tactics };
}

/**
 * Strategy.finishModule: nothing to rewrite (placements are final when planSite returns, so
 * fallback options are complete too); returns the page statistics for `sysi plan --json`.
 */
export function finishModule(_ctx: SiteContext, taken: readonly { site: Site; patch: SitePatch }[]): PageStats {
  return pageStats(taken);
}
