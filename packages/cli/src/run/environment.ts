/**
 * The environment `sysi run` gives the program: the caller's, less sysi's own variables, plus
 * the ones this run sets. sysi's own are the runtime's contract (sysi.h, RUNTIME ENVIRONMENT)
 * and libsysi in LD_PRELOAD; they never come from the caller, whose copies are usually left by
 * `eval "$(sysi env …)"` (the launcher path) and would otherwise filter, redirect or count a
 * later run. The runtime's debugging knobs are the exception: the caller sets those on purpose
 * for one run, and the program's children get them with the rest.
 */

/** Variables libsysi and the strategy runtimes read that `sysi run` (or `sysi env`) sets. */
export const RUNTIME_VARS = [
  "SYSI_PLAN_DIR",
  "SYSI_PLAN_SOCK",
  "SYSI_RUNTIMES",
  "SYSI_HOOK",
  "SYSI_FILTER",
  "SYSI_STATS_FILE",
  "SYSI_STATS_ID",
  "SYSI_UNPATCHED_FILE",
  "SYSI_UNPATCHED_ID",
  "SYSI_TRACE_FILE",
  "SYSI_TRACE_FD",
  "SYSI_TRACE_JSON",
  "SYSI_TRACE_ONLY",
  "SYSI_FRONT",
  "SYSI_COMPLETE",
] as const;

/**
 * Knobs the caller may set for a run (sysi.h): passed through. SYSI_HOOK_LOW only as "0" (keep
 * the hook where dlopen puts it): `sysi env` prints SYSI_HOOK_LOW=1, which is the chain's to
 * decide (registry.ts hookLowEnv).
 */
export const RUNTIME_KNOBS = [
  "SYSI_DEBUG",
  "SYSI_MARKER",
  "SYSI_UD2_SIGRETURN",
  "SYSI_ZPOLINE_XONLY",
  "SYSI_LAZY",
] as const;

/** LD_PRELOAD without libsysi (entries are separated by colons or spaces, as ld.so reads it). */
export function preloadWithoutSysi(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const kept = value.split(/[: ]+/).filter((p) => p !== "" && !/(^|\/)libsysi\.so$/.test(p));
  return kept.length > 0 ? kept.join(":") : undefined;
}

/** The caller's environment less sysi's own variables (see the file comment). */
export function callerEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  for (const k of RUNTIME_VARS) delete out[k];
  if (out.SYSI_HOOK_LOW !== "0") delete out.SYSI_HOOK_LOW;
  const preload = preloadWithoutSysi(out.LD_PRELOAD);
  if (preload === undefined) delete out.LD_PRELOAD;
  else out.LD_PRELOAD = preload;
  return out;
}
