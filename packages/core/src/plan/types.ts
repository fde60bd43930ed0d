import type { Refusal, SitePatch, TrampolineRequest } from "../strategy.ts";
import type { Site } from "../x86/types.ts";

/** One strategy's answer for one site, in chain order. */
export interface SiteDecision {
  strategy: string;
  result: SitePatch | Refusal;
}

export interface PlannedSite {
  site: Site;
  /** Name of the first strategy in the chain that accepted, or null when all refused. */
  taken: string | null;
  /** Every strategy's answer, chain order (the runtime falls through accepted options in order). */
  decisions: SiteDecision[];
}

export interface PatchPlan {
  /** Plan format / planner identity. */
  version: number;
  module: { path: string; buildId: string | null; key: string; size: number };
  chain: string[];
  sites: PlannedSite[];
  trampolines: (TrampolineRequest & { strategy: string })[];
  stats: PlanStats;
}

export interface PlanStats {
  sites: number;
  patched: number;
  unpatched: number;
  /** Sites taken per strategy. */
  byStrategy: Record<string, number>;
  /** Refusal counts per strategy per reason. */
  refusals: Record<string, Record<string, number>>;
  /** Tactic counts per strategy (when strategies report one). */
  tactics: Record<string, Record<string, number>>;
  /**
   * Numbers a strategy's finishModule returned (e.g. punning's trampolines, virtual-pages,
   * physical-pages), per strategy. Additive (plan layer): absent when no strategy reported any.
   */
  reported?: Record<string, Record<string, number>>;
}
