/**
 * @sysi/core: the public API. Named entry points import a part alone: `@sysi/core/strategy`,
 * `/errors`, `/elf`, `/scan`, `/plan`, `/host`, `/syscalls`, `/testing`, `/runtime`, `/patch`
 * (and `/internal`, what the CLI's run path loads); package.json `exports` lists them.
 */
export * from "./elf/index.ts";
export * from "./errors.ts";
export * from "./host/index.ts";
export * from "./module-key.ts";
export * from "./native-build.ts";
export * from "./plan/index.ts";
export * from "./strategy.ts";
export * from "./syscalls/index.ts";
export * from "./x86/index.ts";
