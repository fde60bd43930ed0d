import { afterAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readElfFile } from "../../src/elf/reader.ts";
import { FileError } from "../../src/errors.ts";
import {
  fnv1a64,
  fnv1a64Slow,
  moduleKey,
  quickBuildId,
  quickModuleKey,
  readModuleRanges,
} from "../../src/module-key.ts";

const tmp = mkdtempSync(join(tmpdir(), "sysi-modkey-"));
const NO_BYTES = new Uint8Array(0);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("fnv1a64", () => {
  it("matches the published FNV-1a 64 test vectors", () => {
    expect(fnv1a64("").toString(16)).toBe("cbf29ce484222325");
    expect(fnv1a64("a").toString(16)).toBe("af63dc4c8601ec8c");
    expect(fnv1a64("foobar").toString(16)).toBe("85944171f73967e8");
  });
  it("matches the BigInt reference on random bytes", () => {
    for (let n = 0; n < 50; n++) {
      const b = crypto.getRandomValues(new Uint8Array(n * 7));
      expect(fnv1a64(b)).toBe(fnv1a64Slow(b));
    }
  });
});

describe("moduleKey", () => {
  it("is the build-id and the file size when the module has one", () => {
    expect(moduleKey("/nonexistent", { buildId: "ABCDEF0123", bytes: new Uint8Array(77) })).toBe("abcdef0123-77");
  });
  it("hashes realpath, size and mtime seconds otherwise (python oracle)", () => {
    const f = join(tmp, "lib.so");
    writeFileSync(f, "x".repeat(1234));
    utimesSync(f, 1700000000.75, 1700000123.9);
    const link = join(tmp, "link.so");
    symlinkSync(f, link);
    const py = spawnSync(
      "python3",
      [
        "-c",
        `import os,sys
p=os.path.realpath(sys.argv[1]); st=os.stat(p)
h=0xcbf29ce484222325
for b in f"{p}\\n{st.st_size}\\n{int(st.st_mtime)}".encode(): h=((h^b)*0x100000001b3)&0xffffffffffffffff
print("p%016x"%h)`,
        link,
      ],
      { encoding: "utf8" },
    );
    expect(py.status).toBe(0);
    expect(moduleKey(link, { buildId: null, bytes: NO_BYTES })).toBe(py.stdout.trim());
    expect(moduleKey(link, { buildId: null, bytes: NO_BYTES })).toMatch(/^p[0-9a-f]{16}$/);
  });
  it("throws FileError for a missing file without build-id", () => {
    expect(() => moduleKey(join(tmp, "missing"), { buildId: null, bytes: NO_BYTES })).toThrow(FileError);
  });
});

describe("quickBuildId", () => {
  const files = [
    "/usr/bin/ls",
    "/usr/bin/true",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    "/usr/bin/python3",
    process.execPath,
  ].filter((f) => existsSync(f));
  it("agrees with the ELF reader's build-id, reading only headers and notes", () => {
    let found = 0;
    for (const f of files) {
      const q = quickBuildId(f);
      if (q !== null) found++;
      expect(q ?? readElfFile(f).buildId).toBe(readElfFile(f).buildId);
    }
    expect(found).toBeGreaterThan(0);
  });
  it("names the same key as the ELF reader's build-id and the file's size", () => {
    for (const f of files) {
      const q = quickModuleKey(f);
      if (q !== null) expect(q.key).toBe(moduleKey(f, readElfFile(f)));
    }
  });
  it("returns null for non-ELF and missing files", () => {
    const f = join(tmp, "text");
    writeFileSync(f, "hello, not an ELF file at all, but long enough to have 64 bytes of header......");
    expect(quickBuildId(f)).toBeNull();
    expect(quickBuildId(join(tmp, "missing"))).toBeNull();
  });
});

describe("readModuleRanges", () => {
  it("reads the file bytes behind vaddr ranges, as the ELF reader maps them", () => {
    const f = "/usr/bin/true";
    const elf = readElfFile(f);
    const seg = elf.execSegments()[0];
    if (seg === undefined) throw new Error("no executable segment");
    const ranges = [0, 5, 100, 64].map((d, i) => ({ vaddr: seg.vaddr + d * 13, len: 1 + i * 5 }));
    const got = readModuleRanges(f, ranges);
    const want = Buffer.concat(ranges.map((r) => elf.bytesAt(r.vaddr, r.len) as Uint8Array));
    expect(Buffer.from(got as Uint8Array)).toEqual(want);
  });
  it("returns null for a range outside the file's loaded image", () => {
    expect(readModuleRanges("/usr/bin/true", [{ vaddr: 0x7fff_0000_0000, len: 2 }])).toBeNull();
    expect(readModuleRanges(join(tmp, "missing"), [])).toBeNull();
  });
});
