/**
 * Plan versions, part of every plan-cache key. Kept apart from composite.ts so that looking up
 * the cache does not load the planner (and the x86 decoder behind it).
 */

/** Plan format version (sysi.h SYSI_PLAN_VERSION). */
export const PLAN_FORMAT_VERSION = 2;
/** Bump when the composite planner's output changes for the same strategies. */
export const COMPOSITE_VERSION = "2"; // 2: Go programs' .gopclntab function starts (x86/entries.ts)
