/**
 * @sysi/core/internal: what the CLI's `sysi run` path needs without loading the planner or the
 * scanner (each module loaded costs start-up time on every run): the plan cache, the binary
 * plan format, module closures, atomic writes, trusted cache directories, module identity
 * keys. Not part of the strategy contract, no stability promise for plugins; the plan
 * functions are public through `@sysi/core/plan`.
 */
export * from "./module-key.ts";
export * from "./plan/binary.ts";
export * from "./plan/cache.ts";
export * from "./plan/closure.ts";
export * from "./safe-write.ts";
export * from "./trust.ts";
