/** @sysi/core: the public API. Subpaths (`@sysi/core/plan/index`, …) import a part alone. */
export * from "./elf/index.ts";
export * from "./errors.ts";
export * from "./host/index.ts";
export * from "./module-key.ts";
export * from "./native-build.ts";
export * from "./plan/index.ts";
export * from "./strategy.ts";
export * from "./syscalls/index.ts";
export * from "./x86/index.ts";
