import { afterAll, describe, expect, it } from "bun:test";
import {
  closeSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileError } from "./errors.ts";
import { createExclusive, writeFileAtomic } from "./safe-write.ts";

const tmp = mkdtempSync(join(tmpdir(), "sysi-safe-write-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(tmp, `d${++n}`);
  mkdirSync(d);
  return d;
};

describe("createExclusive", () => {
  it("creates a new file with an unpredictable name, never the same twice", () => {
    const d = fresh();
    const names = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { fd, path } = createExclusive(d, "out", 0o600);
      closeSync(fd);
      expect(path).toMatch(new RegExp(`^${d}/\\.out\\.[0-9a-f]{24}\\.tmp$`));
      expect(lstatSync(path).mode & 0o777).toBe(0o600);
      names.add(path);
    }
    expect(names.size).toBe(20);
  });
});

describe("writeFileAtomic", () => {
  it("replaces a symlink at the target, never writing where it points", () => {
    const d = fresh();
    const victim = join(fresh(), "victim");
    writeFileSync(victim, "secret\n", { mode: 0o600 });
    const target = join(d, "out");
    symlinkSync(victim, target);
    writeFileAtomic(target, "new\n");
    expect(readFileSync(victim, "utf8")).toBe("secret\n");
    expect(lstatSync(target).isFile()).toBe(true);
    expect(readFileSync(target, "utf8")).toBe("new\n");
    expect(readdirSync(d)).toEqual(["out"]); // no temp file left
  });

  it("writes the given mode (less the umask)", () => {
    const d = fresh();
    const old = process.umask(0o022);
    try {
      writeFileAtomic(join(d, "a"), "x", 0o666);
      writeFileAtomic(join(d, "b"), "x");
    } finally {
      process.umask(old);
    }
    expect(lstatSync(join(d, "a")).mode & 0o777).toBe(0o644);
    expect(lstatSync(join(d, "b")).mode & 0o777).toBe(0o644);
  });

  it("fails with FileError FILE_WRITE and leaves nothing behind", () => {
    const d = fresh();
    mkdirSync(join(d, "dir"));
    let err: unknown;
    try {
      writeFileAtomic(join(d, "dir"), "x"); // rename over a directory
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FileError);
    expect((err as FileError).code).toBe("FILE_WRITE");
    expect((err as FileError).message).toBe(`cannot write ${join(d, "dir")}: EISDIR`);
    expect(readdirSync(d)).toEqual(["dir"]);
  });
});
