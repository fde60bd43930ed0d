import { afterAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuildError } from "../../src/errors.ts";
import { ensureRuntime } from "../../src/native-build.ts";

const tmp = mkdtempSync(join(tmpdir(), "sysi-native-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const haveCc = spawnSync("cc", ["--version"]).status === 0 && spawnSync("make", ["--version"]).status === 0;

const MAKEFILE = `CC ?= cc
OUT ?= build
all: $(OUT)/libthrow.so
$(OUT)/libthrow.so: throw.c
\t$(CC) -shared -fPIC -I$(SYSI_INCLUDE) -o $@ throw.c
`;

function nativeDir(name: string, body: string): string {
  const pkg = join(tmp, name);
  const dir = join(pkg, "native");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: `@test/${name}` }));
  writeFileSync(join(dir, "Makefile"), MAKEFILE);
  writeFileSync(join(dir, "throw.c"), body);
  return dir;
}

const GOOD = '#include "sysi.h"\nint sysi_throw_abi(void) { return SYSI_ABI_VERSION; }\n';

describe("ensureRuntime", () => {
  it.skipIf(!haveCc)(
    "builds once into the cache and reuses it; a source change rebuilds (needs cc, make)",
    async () => {
      const cache = join(tmp, "cache1");
      const dir = nativeDir("good", GOOD);
      const so = await ensureRuntime(dir, "libthrow.so", { cacheDir: cache });
      expect(so.startsWith(join(cache, "native"))).toBe(true);
      const nm = spawnSync("nm", ["-D", so], { encoding: "utf8" });
      expect(nm.stdout).toContain("sysi_throw_abi");
      const mtime = statSync(so).mtimeMs;
      expect(await ensureRuntime(dir, "libthrow.so", { cacheDir: cache })).toBe(so);
      expect(statSync(so).mtimeMs).toBe(mtime);
      writeFileSync(join(dir, "throw.c"), `${GOOD}int sysi_throw_more(void) { return 2; }\n`);
      const so2 = await ensureRuntime(dir, "libthrow.so", { cacheDir: cache });
      expect(so2).not.toBe(so);
      expect(spawnSync("nm", ["-D", so2], { encoding: "utf8" }).stdout).toContain("sysi_throw_more");
    },
  );

  it.skipIf(!haveCc)(
    "is safe against concurrent builders: one result, no temp dirs left (needs cc, make)",
    async () => {
      const cache = join(tmp, "cache2");
      const dir = nativeDir("conc", GOOD);
      const paths = await Promise.all([1, 2, 3, 4].map(() => ensureRuntime(dir, "libthrow.so", { cacheDir: cache })));
      expect(new Set(paths).size).toBe(1);
      expect(readdirSync(join(cache, "native"))).toHaveLength(1);
    },
  );

  it.skipIf(!haveCc)("reports a compile error in one line naming the package (needs cc, make)", async () => {
    const dir = nativeDir("bad", "int f(void) { return undeclared_thing; }\n");
    const err = await ensureRuntime(dir, "libthrow.so", { cacheDir: join(tmp, "cache3") }).catch((e) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err.code).toBe("BUILD_FAILED");
    expect(err.message).toContain("@test/bad");
    expect(err.message).toContain("undeclared_thing");
    expect(err.message).not.toContain("\n");
    expect(readdirSync(join(tmp, "cache3", "native"))).toEqual([]);
  });

  it("fails with BUILD_CC_MISSING when the compiler does not exist", async () => {
    const dir = nativeDir("nocc", GOOD);
    const err = await ensureRuntime(dir, "libthrow.so", {
      cacheDir: join(tmp, "cache4"),
      cc: join(tmp, "no-such-cc"),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err.code).toBe("BUILD_CC_MISSING");
  });
});
