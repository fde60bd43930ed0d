/**
 * Where a hook library lands. With zpoline heading the chain its entries live below 4 GiB, so
 * `sysi run` sets SYSI_HOOK_LOW=1 and libsysi loads the hook .so below 64 GiB at a random address;
 * with punning first, or SYSI_HOOK_LOW=0 from the caller, dlopen places it as usual. The oracle is
 * libsysi's own report of the address it resolved `sysi_hook` at (SYSI_DEBUG=1: "hook at 0x…").
 */
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { hookLowEnv } from "../src/registry.ts";
import { CLI_ROOT, makeSysiHome, sysi, TRUE_BIN } from "./helpers.ts";

const ROOT = join(CLI_ROOT, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "sysi-hook-low-"));
const home = makeSysiHome();
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  home.cleanup();
});

const HOOK = join(dir, "hook.so");
const hasCc = Bun.which("cc") !== null;
const build = hasCc
  ? Bun.spawnSync(
      [
        "cc",
        "-O2",
        "-fPIC",
        "-shared",
        "-mgeneral-regs-only",
        "-ffreestanding",
        "-I",
        join(ROOT, "packages", "core", "native", "include"),
        "-I",
        join(CLI_ROOT, "bench"),
        "-o",
        HOOK,
        join(CLI_ROOT, "bench", "hooks", "self-answer.c"),
      ],
      { stderr: "pipe" },
    )
  : null;
// with cc, a build failure fails the tests (it once skipped them silently: the sources moved)
if (build !== null && build.exitCode !== 0) throw new Error(`cc self-answer.c failed:\n${build.stderr.toString()}`);
const built = build !== null;
const page0 = (await probeHost()).check("page0")?.ok === true;
const LOW_CEIL = 1n << 36n;

/** Run /bin/true under `chain` with the test hook; the address libsysi resolved sysi_hook at. */
async function hookAddress(chain: string, extra: Record<string, string> = {}): Promise<bigint> {
  const r = await sysi(["run", "-s", chain, "--hook", HOOK, "--", TRUE_BIN], {
    ...home.env,
    SYSI_DEBUG: "1",
    ...extra,
  });
  expect(r.code).toBe(0);
  const m = /hook at (0x[0-9a-f]+)/.exec(r.stderr);
  if (m?.[1] === undefined) throw new Error(`no "hook at" line in: ${r.stderr}`);
  return BigInt(m[1]);
}

describe("hookLowEnv", () => {
  const entry = (lowHook: boolean | undefined) => ({
    entry: { strategy: { runtime: { nativeDir: "", lib: "", entry: "", lowHook } } },
  });
  type Chain = Parameters<typeof hookLowEnv>[0];
  it('"1" when the first strategy wants a low hook, nothing otherwise', () => {
    expect(hookLowEnv([entry(true), entry(undefined)] as unknown as Chain, {})).toBe("1");
    expect(hookLowEnv([entry(undefined), entry(true)] as unknown as Chain, {})).toBeUndefined();
    expect(hookLowEnv([] as unknown as Chain, {})).toBeUndefined();
  });
  it("leaves a value from the caller's environment alone", () => {
    expect(hookLowEnv([entry(true)] as unknown as Chain, { SYSI_HOOK_LOW: "0" })).toBeUndefined();
  });
});

describe("hook library placement under sysi run", () => {
  it.skipIf(!built || !page0)(
    "zpoline first: below 64 GiB, at a different address each run (needs cc and page 0)",
    async () => {
      const seen = new Set<bigint>();
      for (let i = 0; i < 4; i++) {
        const a = await hookAddress("zpoline,ud2");
        expect(a).toBeLessThan(LOW_CEIL);
        expect(a).toBeGreaterThan(1n << 32n);
        seen.add(a);
      }
      // 4 draws out of 2^23 page positions: equal twice only if the placement is not random
      expect(seen.size).toBeGreaterThan(1);
    },
    120000,
  );
  it.skipIf(!built || !page0)(
    "SYSI_HOOK_LOW=0 from the caller keeps dlopen's placement (needs cc and page 0)",
    async () => {
      expect(await hookAddress("zpoline,ud2", { SYSI_HOOK_LOW: "0" })).toBeGreaterThan(LOW_CEIL);
    },
    120000,
  );
  it.skipIf(!built)(
    "punning first: where dlopen puts it (needs cc)",
    async () => {
      expect(await hookAddress("punning,ud2")).toBeGreaterThan(LOW_CEIL);
    },
    120000,
  );
});
