/**
 * On-demand native builds: a strategy runtime (or libsysi) is built once per source hash into
 * `<cacheDir>/native/<hash>/<lib>`, where the hash covers the native dir's *.c *.h *.S and
 * Makefile, the sysi.h include dir's headers, the library name and the compiler's
 * `--version` first line. Concurrent builders each build into their own temp dir and rename it
 * into place; the first rename wins, the others discard theirs.
 *
 * The check runs on every `sysi run`, so its inputs are memoized under `<cacheDir>/native-ids/`
 * by file identity (module-key.ts fileIdentity: dev, inode, size, mtime, ctime): the compiler's
 * first line by the identity of the compiler binary found on PATH, and the source hash by the
 * identities of the source files (any write changes a file's ctime, so an edited source is
 * hashed again). A missing or unreadable memo only costs the spawn or the reads.
 */
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { BuildError } from "./errors.ts";
import { fileIdentity } from "./module-key.ts";
import { cacheDir } from "./plan/cache.ts";
import { writeFileAtomic } from "./safe-write.ts";
import { cacheLocation, checkTrustedFile, openCacheDir } from "./trust.ts";

export interface EnsureRuntimeOptions {
  /** Cache root (default: cacheDir()). */
  cacheDir?: string;
  /** C compiler (default: $CC or "cc"). */
  cc?: string;
  /** Directory holding sysi.h (default: @sysi/core's native/include). */
  includeDir?: string;
}

/** @sysi/core's own include directory (sysi.h). */
export const CORE_INCLUDE_DIR = join(import.meta.dir, "..", "native", "include");

const SOURCE = /(\.c|\.h|\.S)$|^Makefile$/;

function listSources(dir: string, pattern: RegExp): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isFile() && pattern.test(d.name))
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

async function run(cmd: string[], cwd?: string): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, out, err };
}

/** First line of `cc --version` (BuildError BUILD_CC_MISSING when cc cannot run). */
export async function compilerId(cc: string): Promise<string> {
  try {
    const r = await run([cc, "--version"]);
    if (r.code === 0) return r.out.split("\n")[0]?.trim() ?? cc;
  } catch {
    // spawn failed: not found / not executable
  }
  throw new BuildError("BUILD_CC_MISSING", `C compiler "${cc}" not found (needed to build the native runtime)`, {
    suggestions: ["apt-get install gcc make", "or set CC"],
  });
}

function packageName(nativeDir: string): string {
  for (const dir of [dirname(nativeDir), nativeDir]) {
    try {
      const pj = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string };
      if (pj.name) return pj.name;
    } catch {
      // no package.json here
    }
  }
  return basename(dirname(nativeDir));
}

/** The source hash naming the build directory. */
export function runtimeHash(nativeDir: string, lib: string, includeDir: string, compiler: string): string {
  const h = new Bun.CryptoHasher("sha256");
  h.update(`lib\0${lib}\0cc\0${compiler}\0`);
  for (const [dir, tag, pattern] of [
    [nativeDir, "src", SOURCE],
    [includeDir, "inc", /\.h$/],
  ] as const) {
    for (const name of listSources(dir, pattern)) {
      const data = readFileSync(join(dir, name));
      h.update(`${tag}\0${name}\0${data.length}\0`);
      h.update(data);
    }
  }
  return h.digest("hex").slice(0, 16);
}

function readMemo(path: string): string | null {
  try {
    const v = readFileSync(path, "utf8");
    return v === "" ? null : v;
  } catch {
    return null;
  }
}

function writeMemo(path: string, value: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    writeFileAtomic(path, value);
  } catch {
    // a read-only cache only costs the work next time
  }
}

function memoPath(root: string, kind: string, parts: string[]): string {
  return join(root, "native-ids", `${kind}-${Bun.hash(parts.join("\0")).toString(16)}`);
}

const compilerIds = new Map<string, Promise<string>>();

/**
 * compilerId(cc), once per process and, across processes, memoized by the identity of the
 * compiler binary (PATH lookup as spawn does it, symlinks followed — an `update-alternatives`
 * switch or a compiler upgrade changes it).
 */
export function cachedCompilerId(cc: string, root: string = cacheDir()): Promise<string> {
  const inProcess = compilerIds.get(`${root}\0${cc}`);
  if (inProcess !== undefined) return inProcess;
  const p = (async () => {
    const found = cc.includes("/") ? cc : Bun.which(cc);
    let real: string | null = null;
    try {
      real = found === null ? null : realpathSync(found);
    } catch {
      real = null;
    }
    const id = real === null ? null : fileIdentity(real);
    if (real === null || id === null) return compilerId(cc);
    const memo = memoPath(root, "cc", [cc, real, id]);
    const known = readMemo(memo);
    if (known !== null) return known;
    const first = await compilerId(cc);
    if (fileIdentity(real) === id) writeMemo(memo, first);
    return first;
  })();
  compilerIds.set(`${root}\0${cc}`, p);
  p.catch(() => compilerIds.delete(`${root}\0${cc}`));
  return p;
}

/** The identities of the files runtimeHash() reads, in its order; null if one cannot be stat'ed. */
function sourceIdentities(nativeDir: string, includeDir: string): string[] | null {
  const out: string[] = [];
  for (const [dir, tag, pattern] of [
    [nativeDir, "src", SOURCE],
    [includeDir, "inc", /\.h$/],
  ] as const) {
    out.push(`${tag}\0${dir}`);
    for (const name of listSources(dir, pattern)) {
      const id = fileIdentity(join(dir, name));
      if (id === null) return null;
      out.push(`${name}\0${id}`);
    }
  }
  return out;
}

/** runtimeHash(), memoized by the identities of the source files (see the file comment). */
export function cachedRuntimeHash(
  nativeDir: string,
  lib: string,
  includeDir: string,
  compiler: string,
  root: string = cacheDir(),
): string {
  const ids = sourceIdentities(nativeDir, includeDir);
  if (ids === null) return runtimeHash(nativeDir, lib, includeDir, compiler);
  const memo = memoPath(root, "src", [lib, compiler, ...ids]);
  const known = readMemo(memo);
  if (known !== null && /^[0-9a-f]{16}$/.test(known)) return known;
  const hash = runtimeHash(nativeDir, lib, includeDir, compiler);
  // Keep it only if no source changed while it was read.
  const after = sourceIdentities(nativeDir, includeDir);
  if (after !== null && after.join("\n") === ids.join("\n")) writeMemo(memo, hash);
  return hash;
}

/** First compiler/linker/make error line of a build log (or its first line). */
function firstError(log: string): string {
  const lines = log.split("\n").map((l) => l.trim());
  return lines.find((l) => /\berror\b/i.test(l)) ?? lines.find((l) => l !== "") ?? "no output";
}

/** Remove group and other write permission from everything under `dir` (a build's output). */
function dropGroupOtherWrite(dir: string): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) continue;
    if ((st.mode & 0o022) !== 0) chmodSync(p, st.mode & 0o7755);
    if (st.isDirectory()) dropGroupOtherWrite(p);
  }
}

/**
 * Build (once) and return the absolute path of `lib` built from `nativeDir`. The cache must be
 * trusted (trust.ts openCacheDir) and so must the library found or built there: FileError
 * otherwise, never a library someone else could have written.
 */
export async function ensureRuntime(nativeDir: string, lib: string, opts: EnsureRuntimeOptions = {}): Promise<string> {
  const cc = opts.cc ?? process.env.CC ?? "cc";
  const includeDir = opts.includeDir ?? CORE_INCLUDE_DIR;
  if (!existsSync(join(nativeDir, "Makefile"))) {
    throw new BuildError("BUILD_FAILED", `${packageName(nativeDir)}: no Makefile in ${nativeDir}`);
  }
  const base = openCacheDir(opts.cacheDir === undefined ? cacheLocation() : { path: opts.cacheDir, from: null });
  const compiler = await cachedCompilerId(cc, base);
  const root = join(base, "native");
  const hash = cachedRuntimeHash(nativeDir, lib, includeDir, compiler, base);
  const final = join(root, hash);
  const target = join(final, lib);
  if (existsSync(target)) {
    checkTrustedFile("runtime library", target, base);
    return target;
  }

  mkdirSync(root, { recursive: true, mode: 0o755 });
  const tmp = join(root, `${hash}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(tmp, { mode: 0o755 });
  try {
    const r = await run(["make", "-s", "-C", nativeDir, `OUT=${tmp}`, `CC=${cc}`, `SYSI_INCLUDE=${includeDir}`]);
    if (r.code !== 0) {
      throw new BuildError(
        "BUILD_FAILED",
        `building ${packageName(nativeDir)} failed: ${firstError(`${r.err}\n${r.out}`)}`,
      );
    }
    if (!existsSync(join(tmp, lib))) {
      throw new BuildError("BUILD_FAILED", `building ${packageName(nativeDir)} produced no ${lib}`);
    }
    dropGroupOtherWrite(tmp); // whatever the umask: trust.ts refuses group/other-writable code
    chmodSync(tmp, 0o755);
    try {
      renameSync(tmp, final);
    } catch (e) {
      // Another builder renamed first (ENOTEMPTY/EEXIST): use theirs.
      if (!existsSync(target)) {
        throw new BuildError(
          "BUILD_FAILED",
          `cannot install ${lib} into ${final}: ${(e as NodeJS.ErrnoException).code}`,
          {
            cause: e,
          },
        );
      }
    }
    checkTrustedFile("runtime library", target, base);
    return target;
  } catch (e) {
    if (e instanceof Error && (e.name === "BuildError" || e.name === "FileError")) throw e;
    throw new BuildError("BUILD_FAILED", `building ${packageName(nativeDir)} failed: ${String(e)}`, { cause: e });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
