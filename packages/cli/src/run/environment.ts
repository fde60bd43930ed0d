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
  "SYSI_ENV_ORDER",
  "SYSI_HIDE",
  "SYSI_PROGRAM_LD_PRELOAD",
  "SYSI_EXE_COPY",
  "SYSI_EXE",
  "SYSI_EXECFN",
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

/**
 * LD_PRELOAD without libsysi (entries are separated by colons or spaces, as ld.so reads it): the
 * value itself when it does not name libsysi.
 */
export function preloadWithoutSysi(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const entries = value.split(/[: ]+/).filter((p) => p !== "");
  const kept = entries.filter((p) => !/(^|\/)libsysi\.so$/.test(p));
  if (kept.length === entries.length) return value;
  return kept.length > 0 ? kept.join(":") : undefined;
}

/**
 * The caller's environment less sysi's own variables (see the file comment), in the caller's
 * order: bin/sysi runs under a shell that exports its variables in an order of its own, so it
 * passes the caller's order of names in SYSI_ENV_ORDER (space-separated).
 */
export function callerEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of (env.SYSI_ENV_ORDER ?? "").split(" ")) {
    const v = env[k];
    if (k !== "" && v !== undefined && !(k in out)) out[k] = v;
  }
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !(k in out)) out[k] = v;
  for (const k of RUNTIME_VARS) delete out[k];
  if (out.SYSI_HOOK_LOW !== "0") delete out.SYSI_HOOK_LOW;
  const preload = preloadWithoutSysi(out.LD_PRELOAD);
  if (preload === undefined) delete out.LD_PRELOAD;
  else out.LD_PRELOAD = preload;
  return out;
}

/**
 * The environment the program is started with: `env` (the caller's, then what sysi set), plus
 * what libsysi needs to hide sysi's variables from the program (native/env.c): SYSI_HIDE names
 * the variables sysi set and the runtime's knobs the caller passed (they are sysi's too, and
 * reach every exec with the rest: a child started with `env -i` keeps SYSI_MARKER), not
 * LD_PRELOAD, which libsysi always treats as sysi's; SYSI_PROGRAM_LD_PRELOAD carries the
 * caller's own LD_PRELOAD, which the program gets back.
 */
export function programEnv(caller: Record<string, string>, env: Record<string, string>): Record<string, string> {
  const knob = (k: string) => (RUNTIME_KNOBS as readonly string[]).includes(k) || k === "SYSI_HOOK_LOW";
  const own = Object.keys(env).filter((k) => k !== "LD_PRELOAD" && (caller[k] !== env[k] || knob(k)));
  const out: Record<string, string> = { ...env, SYSI_HIDE: own.join(",") };
  if (caller.LD_PRELOAD !== undefined) out.SYSI_PROGRAM_LD_PRELOAD = caller.LD_PRELOAD;
  return out;
}
