import { afterAll, describe, expect, it } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileError } from "./errors.ts";
import { cacheLocation, checkTrustedDir, checkTrustedFile, openCacheDir, untrustedReason } from "./trust.ts";

const tmp = mkdtempSync(join(tmpdir(), "sysi-trust-unit-"));
chmodSync(tmp, 0o755); // uid 65534 reaches its directory in here
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const ROOT = process.getuid?.() === 0;
let n = 0;
const fresh = (): string => {
  const d = join(tmp, `d${++n}`);
  mkdirSync(d, { mode: 0o755 });
  return d;
};

/** The FileError `fn` throws: its code and message. */
function thrown(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FileError);
    return { code: (e as FileError).code, message: (e as FileError).message };
  }
  throw new Error("did not throw");
}

describe("cacheLocation", () => {
  it("prefers SYSI_CACHE_DIR, then XDG_CACHE_HOME/sysi, then ~/.cache/sysi, and says which", () => {
    expect(cacheLocation({ SYSI_CACHE_DIR: "/a", XDG_CACHE_HOME: "/b", HOME: "/h" })).toEqual({
      path: "/a",
      from: "SYSI_CACHE_DIR",
    });
    expect(cacheLocation({ XDG_CACHE_HOME: "/b", HOME: "/h" })).toEqual({ path: "/b/sysi", from: "XDG_CACHE_HOME" });
    expect(cacheLocation({ HOME: "/h" })).toEqual({ path: "/h/.cache/sysi", from: "HOME" });
  });
  it("ignores a relative XDG_CACHE_HOME, as the XDG specification asks", () => {
    expect(cacheLocation({ XDG_CACHE_HOME: "rel", HOME: "/h" })).toEqual({ path: "/h/.cache/sysi", from: "HOME" });
  });
});

describe("openCacheDir", () => {
  it("creates a missing cache directory (0755 whatever the umask) and returns it", () => {
    const c = join(fresh(), "a", "cache");
    const old = process.umask(0o002);
    try {
      expect(openCacheDir({ path: c, from: "SYSI_CACHE_DIR" })).toBe(c);
    } finally {
      process.umask(old);
    }
    expect(untrustedReason(join(c, ".."), null)).toBe(`${join(c, "..")} is not a regular file`);
  });

  const bad: [string, string, RegExp][] = [
    ["relative", "rel/cache", /^the cache directory must be an absolute path: SYSI_CACHE_DIR=rel\/cache$/],
    ["space", "/tmp/a b", /contains whitespace: LD_PRELOAD and SYSI_RUNTIMES cannot name libraries there$/],
    ["colon", "/tmp/a:b", /contains a colon/],
    ["comma", "/tmp/a,b", /contains a comma/],
    ["hash", "/tmp/a#b", /contains a "#"/],
  ];
  for (const [what, path, re] of bad) {
    it(`refuses a ${what} in the path without touching the file system`, () => {
      const e = thrown(() => openCacheDir({ path, from: "SYSI_CACHE_DIR" }));
      expect(e.message).toMatch(re);
    });
  }

  it("refuses a file, and a directory it cannot create", () => {
    const f = join(fresh(), "file");
    writeFileSync(f, "");
    expect(thrown(() => openCacheDir({ path: f, from: null })).code).toBe("CACHE_NOT_DIR");
    expect(thrown(() => openCacheDir({ path: join(f, "sub"), from: null })).code).toBe("CACHE_UNUSABLE");
  });

  it("refuses a directory writable by group or others, with the mode", () => {
    const c = fresh();
    chmodSync(c, 0o775);
    const e = thrown(() => openCacheDir({ path: c, from: "SYSI_CACHE_DIR" }));
    expect(e.code).toBe("CACHE_UNTRUSTED");
    expect(e.message).toBe(
      `refusing the cache directory ${c} (from SYSI_CACHE_DIR): ${c} is writable by its group (mode 0775), so someone else could put code there that sysi would run as you`,
    );
  });

  it("refuses a sticky world-writable cache directory (no /tmp exception inside the cache)", () => {
    const c = fresh();
    chmodSync(c, 0o1777);
    expect(thrown(() => openCacheDir({ path: c, from: null })).message).toMatch(
      /writable by group and others \(mode 01777\)/,
    );
  });

  it("accepts a cache below a sticky world-writable directory such as /tmp", () => {
    const sticky = fresh();
    chmodSync(sticky, 0o1777);
    const c = join(sticky, "cache");
    expect(openCacheDir({ path: c, from: null })).toBe(c);
  });

  it("refuses an entry of the cache directory someone else may write", () => {
    const c = fresh();
    mkdirSync(join(c, "plans"), { mode: 0o777 });
    chmodSync(join(c, "plans"), 0o777);
    expect(thrown(() => openCacheDir({ path: c, from: null })).message).toContain(
      `${c}/plans is writable by group and others`,
    );
  });

  it.skipIf(!ROOT)("refuses a cache directory, or an entry of it, another user owns (needs root)", () => {
    const c = fresh();
    chownSync(c, 65534, 65534);
    expect(thrown(() => openCacheDir({ path: c, from: "XDG_CACHE_HOME" })).message).toBe(
      `refusing the cache directory ${c} (from XDG_CACHE_HOME): ${c} is owned by uid 65534, not by you (uid 0) or root, so someone else could put code there that sysi would run as you`,
    );
    const d = fresh();
    symlinkSync("/tmp", join(d, "link"));
    Bun.spawnSync(["chown", "-h", "65534:65534", join(d, "link")]);
    expect(thrown(() => openCacheDir({ path: d, from: null })).message).toContain("is a symlink owned by uid 65534");
  });

  it.skipIf(!ROOT)("refuses a read-only cache directory (as uid 65534; needs root)", () => {
    const c = fresh();
    chownSync(c, 65534, 65534);
    chmodSync(c, 0o555);
    const r = Bun.spawnSync(
      [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        process.execPath,
        "-e",
        `import { openCacheDir } from ${JSON.stringify(join(import.meta.dir, "trust.ts"))}; try { openCacheDir({ path: ${JSON.stringify(c)}, from: null }); } catch (e) { console.log(e.code, e.message); }`,
      ],
      { stdout: "pipe", stderr: "pipe", cwd: "/" },
    );
    expect(r.stdout.toString()).toBe(`CACHE_READ_ONLY the cache directory ${c} is not writable: EACCES\n`);
  });
});

describe("trusted files", () => {
  it("trusts a file of yours that only you can write, below trusted directories", () => {
    const d = fresh();
    const f = join(d, "lib.so");
    writeFileSync(f, "x", { mode: 0o755 });
    expect(untrustedReason(f, d)).toBeNull();
    expect(() => checkTrustedFile("runtime library", f, d)).not.toThrow();
  });

  it("refuses a group- or other-writable file, and a writable directory above it", () => {
    const d = fresh();
    const f = join(d, "lib.so");
    writeFileSync(f, "x");
    chmodSync(f, 0o664);
    expect(untrustedReason(f, d)).toBe(`${f} is writable by its group (mode 0664)`);
    chmodSync(f, 0o644);
    chmodSync(d, 0o757);
    expect(untrustedReason(f, null)).toBe(`${d} is writable by others (mode 0757)`);
    const e = thrown(() => checkTrustedFile("hook library", f));
    expect(e.code).toBe("UNTRUSTED_FILE");
    expect(e.message).toBe(`refusing the hook library ${f}: ${d} is writable by others (mode 0757)`);
  });

  it("follows symlinks and checks where they lead", () => {
    const d = fresh();
    const target = join(fresh(), "real.so");
    writeFileSync(target, "x");
    chmodSync(target, 0o666);
    symlinkSync(target, join(d, "lib.so"));
    expect(untrustedReason(join(d, "lib.so"), d)).toBe(
      `${join(d, "lib.so")} (${target}) is writable by group and others (mode 0666)`,
    );
  });

  it("checks a directory chain: sticky directories count only outside the cache", () => {
    const sticky = fresh();
    chmodSync(sticky, 0o1777);
    const inner = join(sticky, "plans");
    mkdirSync(inner, { mode: 0o755 });
    expect(() => checkTrustedDir("plan directory", inner, null)).not.toThrow();
    expect(() => checkTrustedDir("plan directory", inner, sticky)).toThrow(/is writable by group and others/);
  });

  it.skipIf(!ROOT)("refuses a file another user owns (needs root)", () => {
    const d = fresh();
    const f = join(d, "plan");
    writeFileSync(f, "x");
    chownSync(f, 65534, 65534);
    expect(untrustedReason(f, d)).toBe(`${f} is owned by uid 65534, not by you (uid 0) or root`);
  });
});
