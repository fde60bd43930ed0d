/**
 * @sysi/core/runtime: the native runtimes — built on demand into the cache (ensureRuntime, from
 * a strategy's `native/` directory and core's native/include) — and the statistics file they
 * write (the count hook's per-syscall and per-strategy counts).
 */
export * from "../native-build.ts";
export * from "./stats-file.ts";
