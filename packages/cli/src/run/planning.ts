/** Planning for `sysi run`: the program's module closure up front, anything else on demand. */
import { isSysiError } from "@sysi/core/errors";
import { chainKey, PlanCache } from "@sysi/core/internal";
import type { ChainEntry } from "@sysi/core/plan";
import type { HostFacts } from "@sysi/core/strategy";
import { chainEntries, type ResolvedChain } from "../registry.ts";
import type { PlanAnswer } from "./plan-server.ts";

export { chainEntries };

export interface PlannedModules {
  planDir: string;
  modules: { path: string; planPath: string; hit: boolean; ms: number }[];
}

/**
 * Plan the executable, its interpreter and its DT_NEEDED closure (null exe: nothing ahead).
 * `replan` first drops the chain's cached plans (`sysi run --replan`).
 */
export async function planModules(
  exe: string | null,
  chain: ChainEntry[],
  host: HostFacts,
  opts: { replan?: boolean } = {},
): Promise<PlannedModules> {
  const cache = new PlanCache();
  if (opts.replan === true) cache.dropPlans(chain, host);
  const planDir = cache.planDir(chainKey(chain, host));
  if (exe === null) return { planDir, modules: [] };
  const { moduleClosure } = await import("@sysi/core/internal");
  const paths = await moduleClosure(exe, { memoRoot: cache.root });
  const planned = await cache.ensureMany(paths, chain, host);
  return {
    planDir,
    modules: planned.map((m) => ({ path: m.path, planPath: m.planPath, hit: m.hit, ms: Math.round(m.ms) })),
  };
}

/** The plan server's answer for a module the runtime found without a plan. */
export async function planOnDemand(
  path: string,
  run: { chain: ResolvedChain; host: { facts(): HostFacts } },
): Promise<PlanAnswer> {
  try {
    await new PlanCache().getOrPlan(path, chainEntries(run.chain), run.host.facts());
    return { ok: true };
  } catch (e) {
    if (isSysiError(e)) return { ok: false, none: true, message: e.message };
    return { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
}
