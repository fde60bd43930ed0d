/**
 * @sysi/punning — E9Patch-style instruction punning: each `syscall`/`sysenter` becomes a jump to a
 * per-site trampoline that enters the shared dispatcher. Wiring only; see plan.ts.
 */

import { fileURLToPath } from "node:url";
import type { Strategy, StrategyFactory } from "@sysi/core/strategy";
import { checkOptions, planSite } from "./plan.ts";
import { finishModule } from "./stats.ts";

export { moduleLayout, resetSpace, spaceFor } from "./pages.ts";
export { DEFAULT_TACTICS, parseTactics, planSite, planSiteDetailed } from "./plan.ts";
export { pageStats } from "./stats.ts";

export const PLAN_VERSION = "7";

const factory: StrategyFactory = () => {
  const s: Strategy = {
    name: "punning",
    summary: "E9Patch-style jumps (plain, punned, short, evicting) to per-site trampolines on shared pages",
    requires: [],
    planVersion: PLAN_VERSION,
    planSite,
    finishModule,
    checkOptions,
    runtime: {
      nativeDir: fileURLToPath(new URL("../native", import.meta.url)),
      lib: "libsysi-punning.so",
      entry: "sysi_punning_ops",
    },
  };
  return s;
};

export default factory;
