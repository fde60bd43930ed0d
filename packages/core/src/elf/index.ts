export * from "./reader.ts";
export * from "./types.ts";
