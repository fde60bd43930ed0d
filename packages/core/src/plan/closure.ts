/**
 * The modules a program maps at start: the executable, its PT_INTERP, and the DT_NEEDED closure,
 * resolved the way glibc's ld.so does in the common cases:
 *
 *   name with "/"  → that path (relative to the cwd);
 *   else           → DT_RPATH of the needing object and of its loaders (only when the needing
 *                    object has no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH of the needing
 *                    object, /etc/ld.so.cache (`ldconfig -p`), then the default directories.
 *
 * $ORIGIN/${ORIGIN}, $LIB and $PLATFORM are expanded. Candidates that are not ELF64 x86-64 are
 * skipped (as ld.so skips incompatible libraries). Breadth-first, like ld.so's load order; the
 * result is realpath'ed and deduplicated. A DT_NEEDED that cannot be found is left out (ld.so
 * would fail; `sysi run` then reports the program's own error).
 */
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { readElfFile } from "../elf/reader.ts";
import type { ElfFile } from "../elf/types.ts";

export const DEFAULT_LIB_DIRS = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib64",
  "/usr/lib64",
  "/lib",
  "/usr/lib",
];

let ldCache: Map<string, string> | null = null;

/** soname → path of the x86-64 entries of /etc/ld.so.cache (from `ldconfig -p`, parsed once). */
export function ldSoCache(): Map<string, string> {
  if (ldCache !== null) return ldCache;
  const map = new Map<string, string>();
  for (const exe of ["/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"]) {
    const r = spawnSync(exe, ["-p"], { encoding: "utf8", maxBuffer: 64 << 20 });
    if (r.status !== 0 || typeof r.stdout !== "string") continue;
    for (const line of r.stdout.split("\n")) {
      const m = /^\s+(\S+) \(([^)]*)\) => (\S+)$/.exec(line);
      if (m === null || !(m[2] as string).includes("x86-64")) continue;
      if (!map.has(m[1] as string)) map.set(m[1] as string, m[3] as string);
    }
    break;
  }
  ldCache = map;
  return map;
}

/** Is `path` a readable ELF64 little-endian x86-64 file? (reads 20 bytes) */
function isCompatible(path: string): boolean {
  let fd = -1;
  try {
    fd = openSync(path, "r");
    const b = new Uint8Array(20);
    if (readSync(fd, b, 0, 20, 0) !== 20) return false;
    return b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46 && b[4] === 2 && b[5] === 1 && b[18] === 62;
  } catch {
    return false;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

function expand(dir: string, origin: string): string {
  return dir
    .replace(/\$\{ORIGIN\}|\$ORIGIN(?![A-Za-z0-9_])/g, origin)
    .replace(/\$\{LIB\}|\$LIB(?![A-Za-z0-9_])/g, "lib/x86_64-linux-gnu")
    .replace(/\$\{PLATFORM\}|\$PLATFORM(?![A-Za-z0-9_])/g, "x86_64");
}

function splitPath(list: string | null | undefined, origin: string): string[] {
  if (!list) return [];
  return list
    .split(/[:;]/)
    .map((d) => (d === "" ? "." : expand(d, origin)))
    .filter((d) => d !== "");
}

interface Loaded {
  path: string; // as found
  real: string;
  elf: ElfFile;
  origin: string;
  /** RPATH dirs of this object and its loaders, nearest first (used only if the object has no RUNPATH). */
  rpathChain: string[];
}

export interface ClosureOptions {
  /** LD_LIBRARY_PATH to honour (default: the environment's). */
  ldLibraryPath?: string;
}

/** The executable, its interpreter and its DT_NEEDED closure, realpath'ed, deduplicated, in load order. */
export async function moduleClosure(exePath: string, opts: ClosureOptions = {}): Promise<string[]> {
  const exe = readElfFile(exePath); // FileError / ElfError for a missing or bad program
  const exeReal = realpathSync(exePath);
  const ldPath = splitPath(opts.ldLibraryPath ?? process.env.LD_LIBRARY_PATH, dirname(exeReal));
  const out: string[] = [exeReal];
  const seen = new Set<string>([exeReal]);
  const sonames = new Set<string>();
  if (exe.interpreter !== null) {
    try {
      const interp = realpathSync(exe.interpreter);
      if (!seen.has(interp)) {
        seen.add(interp);
        out.push(interp);
      }
      sonames.add(exe.interpreter.split("/").pop() as string);
    } catch {
      // missing interpreter: the exec would fail anyway
    }
  }
  const root: Loaded = {
    path: exeReal,
    real: exeReal,
    elf: exe,
    origin: dirname(exeReal),
    rpathChain: exe.dynamic?.runpath ? [] : splitPath(exe.dynamic?.rpath, dirname(exeReal)),
  };
  const queue: Loaded[] = [root];
  while (queue.length > 0) {
    const obj = queue.shift() as Loaded;
    for (const name of obj.elf.dynamic?.needed ?? []) {
      if (sonames.has(name)) continue;
      const found = find(name, obj, ldPath);
      if (found === null) continue;
      sonames.add(name);
      let real: string;
      try {
        real = realpathSync(found);
      } catch {
        continue;
      }
      if (seen.has(real)) continue;
      seen.add(real);
      out.push(real);
      let elf: ElfFile;
      try {
        elf = readElfFile(real);
      } catch {
        continue;
      }
      const origin = dirname(resolve(found));
      const own = elf.dynamic?.runpath ? [] : splitPath(elf.dynamic?.rpath, origin);
      queue.push({ path: found, real, elf, origin, rpathChain: [...own, ...obj.rpathChain] });
    }
  }
  return out;
}

function find(name: string, obj: Loaded, ldPath: string[]): string | null {
  if (name.includes("/")) {
    const p = isAbsolute(name) ? name : resolve(name);
    return isCompatible(p) ? p : null;
  }
  const runpath = splitPath(obj.elf.dynamic?.runpath, obj.origin);
  const dirs: string[] = [];
  if (runpath.length === 0) dirs.push(...obj.rpathChain);
  dirs.push(...ldPath, ...runpath);
  for (const d of dirs) {
    const p = join(d, name);
    if (isCompatible(p)) return p;
  }
  // DF_1_NODEFLIB (0x800) would skip the cache and default dirs; rare, not handled.
  const cached = ldSoCache().get(name);
  if (cached !== undefined && isCompatible(cached)) return cached;
  for (const d of DEFAULT_LIB_DIRS) {
    const p = join(d, name);
    if (isCompatible(p)) return p;
  }
  return null;
}
