/**
 * Every error @sysi/core throws is a SysiError: a stable `code`, a one-line `message`,
 * optional `suggestions` and `cause`. Library code never prints and never exits; the CLI maps
 * these to `sysi: error: …` and exit code 2.
 */
export class SysiError extends Error {
  readonly code: string;
  readonly suggestions: string[];
  constructor(code: string, message: string, options: { cause?: unknown; suggestions?: string[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SysiError";
    this.code = code;
    this.suggestions = options.suggestions ?? [];
  }
}

/** Malformed, truncated or hostile ELF input. Codes start with `ELF_`. */
export class ElfError extends SysiError {
  override name = "ElfError";
}

/** A file that cannot be read (missing, permission, directory). */
export class FileError extends SysiError {
  override name = "FileError";
}

/** Bad plan file, stale cache entry, mismatched module. Codes start with `PLAN_`. */
export class PlanError extends SysiError {
  override name = "PlanError";
}

/** Unknown strategy, bad chain, missing runtime. */
export class StrategyError extends SysiError {
  override name = "StrategyError";
}

/** Native build failures (cc missing, compile error). */
export class BuildError extends SysiError {
  override name = "BuildError";
}

export function isSysiError(e: unknown): e is SysiError {
  return (
    e instanceof SysiError || (typeof e === "object" && e !== null && (e as { name?: string }).name === "SysiError")
  );
}
