export * from "./binary.ts";
export * from "./cache.ts";
export * from "./closure.ts";
export * from "./composite.ts";
export * from "./json.ts";
export type * from "./types.ts";
