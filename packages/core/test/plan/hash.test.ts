/**
 * libsysi's XXH64 (native/hash.c: the plan checksum and module hash it checks at load) against
 * Bun.hash.xxHash64 (binary.ts writes them with it), fed whole and in chunks, over lengths
 * around every branch of the algorithm (0, < 4, < 8, < 32, stripes, tails).
 */
import { afterAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xxh64 } from "../../src/plan/binary.ts";

const NATIVE = join(import.meta.dir, "../../native");
const tmp = mkdtempSync(join(tmpdir(), "sysi-hash-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cc = spawnSync("cc", ["--version"]).status === 0;

describe("XXH64", () => {
  it("matches the published test vectors", () => {
    expect(xxh64(new Uint8Array(0))).toBe(0xef46db3751d8e999n);
    expect(xxh64(new TextEncoder().encode("abc"))).toBe(0x44bc2cf5ad770999n);
  });

  it.skipIf(!cc)("is computed identically by libsysi's hash.c, whole and streamed (needs cc)", () => {
    const exe = join(tmp, "hash-check");
    const build = spawnSync(
      "cc",
      [
        "-O2",
        "-std=gnu11",
        "-Wall",
        "-Werror",
        "-I",
        NATIVE,
        "-o",
        exe,
        join(import.meta.dir, "hash-check.c"),
        join(NATIVE, "hash.c"),
      ],
      { encoding: "utf8" },
    );
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 16;
    };
    for (const len of [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 31, 32, 33, 35, 36, 63, 64, 65, 100, 1000, 4099]) {
      const data = Uint8Array.from({ length: len }, () => rnd() & 0xff);
      const file = join(tmp, `d${len}`);
      writeFileSync(file, data);
      const run = spawnSync(exe, [file], { encoding: "utf8" });
      expect(run.status).toBe(0);
      const want = xxh64(data).toString(16).padStart(16, "0");
      expect(run.stdout.trim().split("\n"), `length ${len}`).toEqual(Array(8).fill(want));
    }
  });
});
