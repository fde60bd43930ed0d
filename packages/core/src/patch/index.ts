export * from "./build.ts";
export * from "./elf-writer.ts";
export * from "./embed.ts";
