/**
 * Entry for `bun bench/run.ts [flags]`: runs `sysi bench [flags]` in this process through oclif,
 * so the script and the command are the same code (flags, registry, output).
 */
import { resolve } from "node:path";
import { flush, handle, run, settings } from "@oclif/core";

export async function benchMain(argv: readonly string[]): Promise<void> {
  settings.enableAutoTranspile = false;
  const root = resolve(import.meta.dir, "../..");
  try {
    await run(["bench", ...argv], root);
    await flush();
  } catch (e) {
    await handle(e as Error);
  }
}
