/**
 * What sysi trusts to run as the user running it. Code loaded from the cache (runtime
 * libraries), a hook library and plan files all end up executing, or writing code, in the
 * instrumented program, so each is used only when nobody else could have put it there:
 *
 *   - the file is a regular file owned by the effective user or root and not writable by group
 *     or others;
 *   - every directory above it (symlinks resolved) is owned by the effective user or root and
 *     not writable by group or others — except, outside the cache, a sticky directory such as
 *     /tmp, where nobody can rename or remove another user's entries.
 *
 * The cache directory itself must be such a directory, and writable. sysi refuses an
 * untrusted cache with one error line rather than falling back to another cache: a cache
 * someone else can write is a misconfiguration (a shared SYSI_CACHE_DIR, `sudo -E` keeping a
 * user's XDG_CACHE_HOME) that should be fixed, not silently worked around.
 */
import { accessSync, constants, lstatSync, mkdirSync, readdirSync, realpathSync, type Stats, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { FileError } from "./errors.ts";

/** Where the cache is and which setting chose it. */
export interface CacheLocation {
  path: string;
  /** "SYSI_CACHE_DIR", "XDG_CACHE_HOME" or "HOME" (~/.cache/sysi); null when given directly. */
  from: string | null;
}

/**
 * $SYSI_CACHE_DIR, else $XDG_CACHE_HOME/sysi, else ~/.cache/sysi. A relative XDG_CACHE_HOME is
 * ignored, as the XDG base directory specification asks.
 */
export function cacheLocation(env: Record<string, string | undefined> = process.env): CacheLocation {
  if (env.SYSI_CACHE_DIR) return { path: env.SYSI_CACHE_DIR, from: "SYSI_CACHE_DIR" };
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME))
    return { path: join(env.XDG_CACHE_HOME, "sysi"), from: "XDG_CACHE_HOME" };
  return { path: join(env.HOME || homedir(), ".cache", "sysi"), from: "HOME" };
}

/**
 * Characters a cache path cannot hold: LD_PRELOAD splits library paths at spaces and colons,
 * SYSI_RUNTIMES entries at commas and "#".
 */
const SEPARATORS: [RegExp, string][] = [
  [/\s/, "whitespace"],
  [/:/, 'a colon (":")'],
  [/,/, 'a comma (",")'],
  [/#/, 'a "#"'],
];

const euid = (): number => process.geteuid?.() ?? -1;

function modeString(st: Stats): string {
  return `0${(st.mode & 0o7777).toString(8)}`;
}

/** Why `st` (of `path`) is not trusted, or null. `sticky`: a sticky directory may be g/o-writable. */
function problem(path: string, st: Stats, sticky: boolean): string | null {
  const me = euid();
  if (st.uid !== 0 && st.uid !== me) return `${path} is owned by uid ${st.uid}, not by you (uid ${me}) or root`;
  if ((st.mode & 0o022) !== 0 && !(sticky && st.isDirectory() && (st.mode & 0o1000) !== 0)) {
    const who = (st.mode & 0o020) !== 0 ? ((st.mode & 0o002) !== 0 ? "group and others" : "its group") : "others";
    return `${path} is writable by ${who} (mode ${modeString(st)})`;
  }
  return null;
}

const inside = (path: string, root: string | null): boolean =>
  root !== null && (path === root || path.startsWith(root === "/" ? "/" : `${root}/`));

/** Why a directory chain down to (and including) real directory `dir` is untrusted, or null. */
function dirChainProblem(dir: string, realRoot: string | null): string | null {
  const chain: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of chain) {
    const why = problem(d, statSync(d), !inside(d, realRoot));
    if (why !== null) return why;
  }
  return null;
}

/**
 * Why `file` is not trusted (see the file comment), or null. `cacheRoot`: the cache it lies in,
 * whose directories get no sticky exception. Throws FileError FILE_STAT when it cannot be read.
 */
export function untrustedReason(file: string, cacheRoot: string | null = null): string | null {
  let real: string;
  let realRoot: string | null;
  try {
    real = realpathSync(file);
    realRoot = cacheRoot === null ? null : realpathSync(cacheRoot);
  } catch (e) {
    throw new FileError("FILE_STAT", `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      cause: e,
    });
  }
  const st = lstatSync(real);
  if (!st.isFile()) return `${file} is not a regular file`;
  return dirChainProblem(dirname(real), realRoot) ?? problem(real === file ? file : `${file} (${real})`, st, false);
}

/** Throw FileError UNTRUSTED_FILE when `file` is not trusted (what names it, e.g. "hook library"). */
export function checkTrustedFile(what: string, file: string, cacheRoot: string | null = null): void {
  const why = untrustedReason(file, cacheRoot);
  if (why !== null) {
    throw new FileError("UNTRUSTED_FILE", `refusing the ${what} ${file}: ${why}`, {
      suggestions: ["only files that you or root own and nobody else can write are loaded"],
    });
  }
}

/**
 * Throw FileError UNTRUSTED_DIR unless directory `dir` and every directory above it are
 * trusted (no sticky exception inside `cacheRoot`).
 */
export function checkTrustedDir(what: string, dir: string, cacheRoot: string | null = null): void {
  let why: string | null;
  try {
    why = dirChainProblem(realpathSync(dir), cacheRoot === null ? null : realpathSync(cacheRoot));
  } catch (e) {
    throw new FileError("FILE_STAT", `cannot read ${dir}: ${errCode(e)}`, { cause: e });
  }
  if (why !== null) {
    throw new FileError("UNTRUSTED_DIR", `refusing the ${what} ${dir}: ${why}`, {
      suggestions: ["set SYSI_CACHE_DIR to a directory of your own"],
    });
  }
}

const openedCaches = new Map<string, string>();

function cacheError(code: string, message: string, loc: CacheLocation): FileError {
  return new FileError(code, message, {
    suggestions: [`set SYSI_CACHE_DIR to a directory of your own${loc.from === "SYSI_CACHE_DIR" ? "" : " instead"}`],
  });
}

/**
 * The cache directory, ready to use (created when missing): an absolute path LD_PRELOAD can
 * name, a directory, trusted (see the file comment; its own entries too), writable. Each
 * failure is a FileError with a one-line message naming the setting it came from. Checked once
 * per process and directory.
 */
export function openCacheDir(loc: CacheLocation = cacheLocation()): string {
  const root = loc.path;
  const known = openedCaches.get(root);
  if (known !== undefined) return known;
  const from = loc.from === null ? "" : ` (from ${loc.from})`;
  const named = `${root}${from}`;
  if (!isAbsolute(root)) {
    const given = loc.from === null ? JSON.stringify(root) : `${loc.from}=${root}`;
    throw cacheError("CACHE_RELATIVE", `the cache directory must be an absolute path: ${given}`, loc);
  }
  for (const [re, what] of SEPARATORS) {
    if (re.test(root)) {
      throw cacheError(
        "CACHE_BAD_PATH",
        `the cache directory ${JSON.stringify(root)}${from} contains ${what}: LD_PRELOAD and SYSI_RUNTIMES cannot name libraries there`,
        loc,
      );
    }
  }
  let st: Stats;
  try {
    st = statSync(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT" && (e as NodeJS.ErrnoException).code !== "ENOTDIR") {
      throw cacheError("CACHE_UNUSABLE", `cannot use the cache directory ${named}: ${errCode(e)}`, loc);
    }
    try {
      mkdirSync(root, { recursive: true, mode: 0o755 });
      st = statSync(root);
    } catch (e2) {
      throw cacheError("CACHE_UNUSABLE", `cannot create the cache directory ${named}: ${errCode(e2)}`, loc);
    }
  }
  if (!st.isDirectory()) throw cacheError("CACHE_NOT_DIR", `the cache directory ${named} is not a directory`, loc);
  const real = realpathSync(root);
  let why = dirChainProblem(real, real);
  if (why === null) {
    for (const name of readdirSync(real)) {
      const entry = lstatSync(join(real, name));
      // a symlink's own mode means nothing: whoever owns it chose its target
      why = entry.isSymbolicLink()
        ? entry.uid === 0 || entry.uid === euid()
          ? null
          : `${join(real, name)} is a symlink owned by uid ${entry.uid}, not by you (uid ${euid()}) or root`
        : problem(join(real, name), entry, false);
      if (why !== null) break;
    }
  }
  if (why !== null) {
    throw cacheError(
      "CACHE_UNTRUSTED",
      `refusing the cache directory ${named}: ${why}, so someone else could put code there that sysi would run as you`,
      loc,
    );
  }
  try {
    accessSync(real, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw cacheError("CACHE_READ_ONLY", `the cache directory ${named} is not writable: ${errCode(e)}`, loc);
  }
  openedCaches.set(root, root);
  return root;
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}
