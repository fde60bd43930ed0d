import { afterAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuildError } from "../../src/errors.ts";
import { cachedCompilerId, cachedRuntimeHash, ensureRuntime, runtimeHash } from "../../src/native-build.ts";

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

describe("memoized build inputs", () => {
  /** A fake compiler: prints `<version>` for --version and counts its runs in `<dir>/runs`. */
  function fakeCc(dir: string, version: string): string {
    mkdirSync(dir, { recursive: true });
    const cc = join(dir, "fakecc");
    writeFileSync(cc, `#!/bin/sh\necho run >> "${dir}/runs"\necho "${version}"\necho second line\n`);
    chmodSync(cc, 0o755);
    return cc;
  }
  const runs = (dir: string) => readFileSync(join(dir, "runs"), "utf8").split("\n").filter(Boolean).length;
  /** cachedCompilerId in a fresh process (no in-process memo). */
  function idInChild(cc: string, root: string): string {
    const src = join(import.meta.dir, "../../src/native-build.ts");
    const r = spawnSync(
      process.execPath,
      [
        "-e",
        `const m = await import(${JSON.stringify(src)}); process.stdout.write(await m.cachedCompilerId(${JSON.stringify(cc)}, ${JSON.stringify(root)}));`,
      ],
      { encoding: "utf8" },
    );
    expect(r.status).toBe(0);
    return r.stdout;
  }

  it("runs the compiler once per compiler binary, and again when the binary changes", async () => {
    const dir = join(tmp, "fakecc");
    const root = join(tmp, "cc-memo");
    const cc = fakeCc(dir, "fakecc 1.0");
    utimesSync(cc, 1_600_000_000, 1_600_000_000);
    expect(await cachedCompilerId(cc, root)).toBe("fakecc 1.0");
    expect(await cachedCompilerId(cc, root)).toBe("fakecc 1.0");
    expect(runs(dir)).toBe(1);
    expect(idInChild(cc, root)).toBe("fakecc 1.0");
    expect(runs(dir)).toBe(1);
    // Same size, same mtime, new contents: the ctime still tells.
    const before = statSync(cc, { bigint: true });
    writeFileSync(cc, readFileSync(cc, "utf8").replace("1.0", "2.0"));
    utimesSync(cc, 1_600_000_000, 1_600_000_000);
    const after = statSync(cc, { bigint: true });
    expect([after.size, after.mtimeNs, after.ino]).toEqual([before.size, before.mtimeNs, before.ino]);
    expect(idInChild(cc, root)).toBe("fakecc 2.0");
    expect(runs(dir)).toBe(2);
  });

  it("hashes the sources once per version of them; an edit that keeps size and mtime is seen", () => {
    const dir = nativeDir("memo", GOOD);
    const inc = join(import.meta.dir, "../../native/include");
    const root = join(tmp, "src-memo");
    const file = join(dir, "throw.c");
    utimesSync(file, 1_600_000_000, 1_600_000_000);
    const h1 = cachedRuntimeHash(dir, "libthrow.so", inc, "cc 1", root);
    expect(h1).toBe(runtimeHash(dir, "libthrow.so", inc, "cc 1"));
    expect(readdirSync(join(root, "native-ids")).length).toBe(1);
    expect(cachedRuntimeHash(dir, "libthrow.so", inc, "cc 1", root)).toBe(h1);
    expect(cachedRuntimeHash(dir, "libthrow.so", inc, "cc 2", root)).toBe(runtimeHash(dir, "libthrow.so", inc, "cc 2"));
    const before = statSync(file, { bigint: true });
    writeFileSync(file, GOOD.replace("return SYSI_ABI_VERSION", "return SYSI_ABI_VERSION+0").slice(0, GOOD.length));
    utimesSync(file, 1_600_000_000, 1_600_000_000);
    const after = statSync(file, { bigint: true });
    expect([after.size, after.mtimeNs, after.ino]).toEqual([before.size, before.mtimeNs, before.ino]);
    const h2 = cachedRuntimeHash(dir, "libthrow.so", inc, "cc 1", root);
    expect(h2).not.toBe(h1);
    expect(h2).toBe(runtimeHash(dir, "libthrow.so", inc, "cc 1"));
  });
});
