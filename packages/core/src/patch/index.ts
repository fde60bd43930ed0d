export * from "./build.ts";
export * from "./classify.ts";
export * from "./elf-writer.ts";
export * from "./embed.ts";
export * from "./standalone.ts";
export * from "./static-cache.ts";
export * from "./static-runtime.ts";
export * from "./static-writer.ts";
