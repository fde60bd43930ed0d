import { afterAll, describe, expect, it } from "bun:test";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readElfFile } from "../../src/elf/reader.ts";
import { fileIdentity } from "../../src/module-key.ts";
import { type LinkInfo, moduleClosure, readLdSoCache, readLinkInfo, readLinkInfoFast } from "../../src/plan/closure.ts";

const tmp = mkdtempSync(join(tmpdir(), "sysi-closure-fast-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The full ELF reader's view, or the error code it throws. */
function fullInfo(path: string): LinkInfo | string {
  try {
    const elf = readElfFile(path);
    return {
      interpreter: elf.interpreter,
      needed: elf.dynamic?.needed ?? [],
      rpath: elf.dynamic?.rpath ?? null,
      runpath: elf.dynamic?.runpath ?? null,
    };
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

function elfFiles(dir: string, limit: number): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    try {
      const st = statSync(p);
      if (!st.isFile() || st.size < 64) continue;
      const head = new Uint8Array(4);
      const fd = openSync(p, "r");
      readSync(fd, head, 0, 4, 0);
      closeSync(fd);
      if (head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) out.push(p);
    } catch {
      // unreadable: skip
    }
    if (out.length >= limit) break;
  }
  return out;
}

describe("readLinkInfoFast", () => {
  it("agrees with the full ELF reader on every ELF file in /usr/bin and the system lib dir", () => {
    const files = [...elfFiles("/usr/bin", 400), ...elfFiles("/usr/lib/x86_64-linux-gnu", 400)];
    expect(files.length).toBeGreaterThan(50);
    let fast = 0;
    for (const f of files) {
      const light = readLinkInfoFast(f);
      if (light === null) continue;
      fast++;
      expect({ f, info: light }).toEqual({ f, info: fullInfo(f) as LinkInfo });
    }
    // The header path is the common case, not the exception.
    expect(fast).toBeGreaterThan(files.length * 0.8);
  });

  it("leaves odd files to the full reader (which gives the error)", async () => {
    const cases: [string, (b: Uint8Array) => void][] = [
      ["truncated", () => {}],
      ["not-elf", (b) => b.set([0x23, 0x21], 0)],
      ["elf32", (b) => b.set([1], 4)],
      ["bad-phentsize", (b) => b.set([55], 54)],
      ["phdrs-past-end", (b) => b.set([0xff, 0xff], 56)],
    ];
    const src = readFileSync("/usr/bin/true");
    for (const [name, mutate] of cases) {
      const bytes = new Uint8Array(name === "truncated" ? src.subarray(0, 100) : src);
      mutate(bytes);
      const p = join(tmp, name);
      writeFileSync(p, bytes);
      expect(readLinkInfoFast(p)).toBeNull();
      const full = fullInfo(p);
      const got = await readLinkInfo(p).catch((e: { code?: string }) => e.code ?? "?");
      expect(got).toEqual(full);
    }
    // A directory and a missing file: FileError from the full reader.
    await expect(readLinkInfo(tmp)).rejects.toMatchObject({ code: "FILE_IS_DIRECTORY" });
    await expect(readLinkInfo(join(tmp, "missing"))).rejects.toMatchObject({ code: "FILE_NOT_FOUND" });
  });

  it("sees a changed DT_NEEDED string (no memo of file contents)", () => {
    const p = join(tmp, "true-copy");
    copyFileSync("/usr/bin/true", p);
    const before = readLinkInfoFast(p);
    expect(before?.needed).toContain("libc.so.6");
    const bytes = readFileSync(p);
    const at = bytes.indexOf(Buffer.from("libc.so.6\0"));
    expect(at).toBeGreaterThan(0);
    bytes.set(Buffer.from("libX.so.6"), at);
    writeFileSync(p, bytes);
    expect(readLinkInfoFast(p)?.needed).toContain("libX.so.6");
    expect(fullInfo(p)).toEqual(readLinkInfoFast(p) as LinkInfo);
  });
});

describe("moduleClosure", () => {
  it("throws the full reader's error for a program that is not ELF", async () => {
    const p = join(tmp, "script");
    writeFileSync(p, "#!/bin/sh\necho hi\n");
    await expect(moduleClosure(p)).rejects.toMatchObject({ code: "ELF_NOT_ELF" });
  });
});

describe("readLdSoCache", () => {
  const ldconfig = ["/sbin/ldconfig", "/usr/sbin/ldconfig"].find((p) => existsSync(p));
  it.skipIf(ldconfig === undefined || fileIdentity("/etc/ld.so.cache") === null)(
    "memoizes `ldconfig -p` per /etc/ld.so.cache identity (needs ldconfig and /etc/ld.so.cache)",
    () => {
      const root = join(tmp, "cache");
      const first = readLdSoCache(root);
      expect(first.fresh).toBe(true);
      // The oracle: ldconfig's own listing.
      const out = Bun.spawnSync([ldconfig as string, "-p"]).stdout.toString();
      for (const [soname, path] of first.map) {
        expect(out).toContain(`${soname} (`);
        expect(out).toContain(`=> ${path}`);
      }
      expect(first.map.get("libc.so.6")).toBeDefined();
      const second = readLdSoCache(root);
      expect(second.fresh).toBe(false);
      expect([...second.map]).toEqual([...first.map]);
      // A memo written for another identity of the file is not used.
      const dir = join(root, "ld-so-cache");
      const [memo] = readdirSync(dir);
      const doc = JSON.parse(readFileSync(join(dir, memo as string), "utf8"));
      writeFileSync(
        join(dir, memo as string),
        JSON.stringify({ ...doc, id: "0:0:0:0:0", entries: [["libc.so.6", "/x"]] }),
      );
      const third = readLdSoCache(root);
      expect(third.fresh).toBe(true);
      expect(third.map.get("libc.so.6")).toBe(first.map.get("libc.so.6") as string);
    },
  );
});

describe("moduleClosure with a memo", () => {
  const haveCc = Bun.spawnSync(["cc", "--version"]).exitCode === 0;
  it.skipIf(!haveCc)("reuses the result until a module it found changes or is re-pointed (needs cc)", async () => {
    const dir = join(tmp, "memo-prog");
    const lib = join(dir, "lib");
    mkdirSync(lib, { recursive: true });
    const cc = (args: string[]) => expect(Bun.spawnSync(["cc", ...args]).exitCode).toBe(0);
    writeFileSync(join(dir, "a1.c"), "int a(void){return 1;}\n");
    writeFileSync(join(dir, "a2.c"), "#include <math.h>\nint a(void){volatile double x=2; return (int)sqrt(x);}\n");
    writeFileSync(join(dir, "m.c"), "int a(void); int main(void){return a()-1;}\n");
    cc(["-shared", "-fPIC", "-o", join(lib, "liba-1.so"), join(dir, "a1.c")]);
    cc(["-shared", "-fPIC", "-o", join(lib, "liba-2.so"), join(dir, "a2.c"), "-lm"]);
    symlinkSync("liba-1.so", join(lib, "liba.so"));
    const exe = join(dir, "m");
    cc(["-o", exe, join(dir, "m.c"), `-L${lib}`, "-la", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib"]);
    const root = join(tmp, "memo-cache");
    const opts = { ldLibraryPath: "", memoRoot: root };
    const plain = await moduleClosure(exe, { ldLibraryPath: "" });
    expect(plain).toContain(realpathSync(join(lib, "liba-1.so")));
    expect(await moduleClosure(exe, opts)).toEqual(plain);
    const [memoName] = readdirSync(join(root, "closures"));
    expect(memoName).toBeDefined();
    // The memo is what answers while nothing changed (a marker put into it comes back).
    const memoPath = join(root, "closures", memoName as string);
    const doc = JSON.parse(readFileSync(memoPath, "utf8"));
    writeFileSync(memoPath, JSON.stringify({ ...doc, out: [...doc.out, "/marker"] }));
    expect(await moduleClosure(exe, opts)).toEqual([...plain, "/marker"]);
    // Re-pointing the symlink to a library that needs libm: the memo must not answer.
    rmSync(join(lib, "liba.so"));
    symlinkSync("liba-2.so", join(lib, "liba.so"));
    const after = await moduleClosure(exe, opts);
    expect(after).toEqual(await moduleClosure(exe, { ldLibraryPath: "" }));
    expect(after).toContain(realpathSync(join(lib, "liba-2.so")));
    expect(after.some((p) => /\/libm\.so/.test(p))).toBe(true);
    // Rebuilding the library in place (same name, new contents) without libm: seen too.
    cc(["-shared", "-fPIC", "-o", join(lib, "liba-2.so"), join(dir, "a1.c")]);
    const rebuilt = await moduleClosure(exe, opts);
    expect(rebuilt.some((p) => /\/libm\.so/.test(p))).toBe(false);
    expect(rebuilt).toEqual(await moduleClosure(exe, { ldLibraryPath: "" }));
    // Another LD_LIBRARY_PATH is another memo.
    expect(await moduleClosure(exe, { ldLibraryPath: "/nonexistent", memoRoot: root })).toEqual(rebuilt);
    expect(readdirSync(join(root, "closures"))).toHaveLength(2);
  });
});
