/**
 * Lazy, synchronous access to iced-x86 (CJS + a 784 KB wasm module, ~30 ms to load): nothing is
 * loaded until a decoder is actually needed, and importing @sysi/core stays cheap.
 */
import { createRequire } from "node:module";
import type * as IcedTypes from "iced-x86";

export type Iced = typeof IcedTypes;

let cached: Iced | null = null;

export function loadIced(): Iced {
  if (cached === null) cached = createRequire(import.meta.url)("iced-x86") as Iced;
  return cached;
}
