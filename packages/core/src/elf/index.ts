export { goFunctionStarts } from "./go-pclntab.ts";
export * from "./reader.ts";
export * from "./types.ts";
