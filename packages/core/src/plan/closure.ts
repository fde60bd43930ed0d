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
 *
 * Start-up cost matters here (`sysi run` computes the closure on every start): each module is
 * read with a few preads of its headers, dynamic section and string table (the full ELF reader
 * only for files out of the ordinary), and `ldconfig -p` runs once per /etc/ld.so.cache
 * version (its x86-64 entries are kept in the cache dir, keyed by that file's identity).
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileIdentity, preadExact as pread } from "../module-key.ts";
import { cacheDir, writeFileAtomic } from "./cache.ts";

export const DEFAULT_LIB_DIRS = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib64",
  "/usr/lib64",
  "/lib",
  "/usr/lib",
];

let ldCache: Map<string, string> | null = null;

const LD_SO_CACHE = "/etc/ld.so.cache";

function parseLdconfig(out: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of out.split("\n")) {
    const m = /^\s+(\S+) \(([^)]*)\) => (\S+)$/.exec(line);
    if (m === null || !(m[2] as string).includes("x86-64")) continue;
    if (!map.has(m[1] as string)) map.set(m[1] as string, m[3] as string);
  }
  return map;
}

function runLdconfig(): Map<string, string> {
  for (const exe of ["/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"]) {
    try {
      const r = Bun.spawnSync([exe, "-p"], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
      if (r.exitCode !== 0) continue;
      return parseLdconfig(r.stdout.toString());
    } catch {
      // not there: try the next
    }
  }
  return new Map();
}

/**
 * soname → path of the x86-64 entries of /etc/ld.so.cache, from `ldconfig -p` — or from the
 * memo under `<root>/ld-so-cache/`, keyed by the identity of /etc/ld.so.cache so that any
 * rewrite of it runs `ldconfig -p` again. `fresh` tells whether ldconfig ran.
 */
export function readLdSoCache(root: string = cacheDir()): { map: Map<string, string>; fresh: boolean } {
  const id = fileIdentity(LD_SO_CACHE);
  const memo = id === null ? null : join(root, "ld-so-cache", `${Bun.hash(`${LD_SO_CACHE}\n${id}`).toString(16)}.json`);
  if (memo !== null) {
    try {
      const doc = JSON.parse(readFileSync(memo, "utf8")) as { id?: unknown; entries?: unknown };
      if (doc.id === id && Array.isArray(doc.entries))
        return { map: new Map(doc.entries as [string, string][]), fresh: false };
    } catch {
      // no memo yet (or unreadable): ask ldconfig
    }
  }
  const map = runLdconfig();
  // Keep it only when /etc/ld.so.cache did not change while ldconfig read it.
  if (memo !== null && fileIdentity(LD_SO_CACHE) === id) {
    try {
      mkdirSync(dirname(memo), { recursive: true, mode: 0o755 });
      writeFileAtomic(memo, JSON.stringify({ id, entries: [...map] }));
    } catch {
      // a read-only cache only costs the ldconfig run next time
    }
  }
  return { map, fresh: true };
}

/** readLdSoCache() once per process. */
export function ldSoCache(): Map<string, string> {
  if (ldCache === null) ldCache = readLdSoCache().map;
  return ldCache;
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

/** What the closure needs of an ELF file: its interpreter and dynamic-section strings. */
export interface LinkInfo {
  interpreter: string | null;
  needed: string[];
  rpath: string | null;
  runpath: string | null;
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
const PAGE = 4096;
/** Largest dynamic section / string table read by the header path (else: the full reader). */
const MAX_READ = 1 << 20;

interface Seg {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

/** u64 at `o` as a number; null above 2^53 (the full reader's Infinity). */
function u64(dv: DataView, o: number): number | null {
  const hi = dv.getUint32(o + 4, true);
  return hi >= 0x20_0000 ? null : hi * 0x1_0000_0000 + dv.getUint32(o, true);
}

/** The PT_LOAD rules of the full reader (elf/reader.ts checkLoads); false: let it decide. */
function loadsOk(loads: Seg[], size: number): boolean {
  let lastVaddr = -1;
  for (const s of loads) {
    if (s.filesz > 0 && s.offset + s.filesz > size) return false;
    if (s.filesz > s.memsz || !Number.isSafeInteger(s.vaddr + s.memsz)) return false;
    if ((s.vaddr - s.offset) % PAGE !== 0 || s.vaddr < lastVaddr) return false;
    lastVaddr = s.vaddr;
  }
  let a: Seg | null = null;
  for (const b of loads) {
    if (b.memsz === 0) continue;
    if (a !== null) {
      if (b.vaddr < a.vaddr + a.memsz) return false;
      const sharePage = Math.floor((a.vaddr + a.memsz - 1) / PAGE) === Math.floor(b.vaddr / PAGE);
      if (sharePage && a.vaddr - a.offset !== b.vaddr - b.offset) return false;
    }
    a = b;
  }
  return true;
}

const utf8 = new TextDecoder();

/**
 * LinkInfo from the program headers, PT_INTERP, PT_DYNAMIC and the DT_STRTAB bytes only (a few
 * preads), giving exactly what the full reader (elf/reader.ts) gives for well-formed files.
 * Null whenever the full reader might answer differently or fail: not an x86-64 ELF64 file, bad
 * program headers or PT_LOADs, no PT_DYNAMIC (static, or a section-only dynamic table), a
 * string table outside the PT_LOADs, a string out of range, huge values.
 */
export function readLinkInfoFast(path: string): LinkInfo | null {
  let fd = -1;
  try {
    fd = openSync(path, "r");
    const st = fstatSync(fd);
    const size = st.size;
    if (!st.isFile() || size < 64 || size > 0xffff_ffff) return null;
    const eh = pread(fd, 64, 0);
    if (eh === null) return null;
    const ev = new DataView(eh.buffer);
    if (ev.getUint32(0, true) !== 0x464c_457f || eh[4] !== 2 || eh[5] !== 1 || ev.getUint16(18, true) !== 62)
      return null;
    const phoff = u64(ev, 32);
    const phnum = ev.getUint16(56, true);
    if (phoff === null || u64(ev, 24) === null || ev.getUint16(54, true) !== 56 || phnum === 0 || phnum > 1024)
      return null;
    if (phoff + phnum * 56 > size) return null;
    const ph = pread(fd, phnum * 56, phoff);
    if (ph === null) return null;
    const pv = new DataView(ph.buffer);
    const segs: Seg[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * 56;
      const vals = [8, 16, 32, 40, 48].map((k) => u64(pv, o + k));
      if (vals.some((v) => v === null)) return null;
      const [offset, vaddr, filesz, memsz] = vals as number[];
      segs.push({ type: pv.getUint32(o, true), offset, vaddr, filesz, memsz } as Seg);
    }
    const loads = segs.filter((s) => s.type === PT_LOAD);
    if (!loadsOk(loads, size)) return null;
    loads.sort((a, b) => a.vaddr - b.vaddr);
    const loadAt = (vaddr: number) => loads.find((s) => vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) ?? null;
    const inLoad = (vaddr: number, len: number) =>
      loads.some(
        (s) => vaddr >= s.vaddr && vaddr + len <= s.vaddr + s.filesz && (len > 0 || vaddr < s.vaddr + s.filesz),
      );

    let interpreter: string | null = null;
    const interp = segs.find((s) => s.type === PT_INTERP);
    if (interp !== undefined) {
      if (interp.filesz < 2 || interp.filesz > 4096 || interp.offset + interp.filesz > size) return null;
      const b = pread(fd, interp.filesz, interp.offset);
      if (b === null || b[interp.filesz - 1] !== 0) return null;
      interpreter = utf8.decode(b.subarray(0, b.indexOf(0)));
    }

    const dyn = segs.find((s) => s.type === PT_DYNAMIC);
    if (dyn === undefined || dyn.filesz > MAX_READ) return null;
    const mappedSeg = loadAt(dyn.vaddr);
    const mapped = mappedSeg === null ? null : mappedSeg.offset + (dyn.vaddr - mappedSeg.vaddr);
    const off = mapped !== null && inLoad(dyn.vaddr, dyn.filesz) ? mapped : dyn.offset;
    if (off + dyn.filesz > size) return null;
    const db = pread(fd, dyn.filesz, off);
    if (db === null) return null;
    const dv = new DataView(db.buffer);
    const needed: number[] = [];
    let rpath = -1;
    let runpath = -1;
    let strtab = -1;
    let strsz = -1;
    let soname = -1;
    for (let o = 0; o + 16 <= dyn.filesz; o += 16) {
      if (dv.getUint32(o + 4, true) !== 0) continue;
      const tag = dv.getUint32(o, true);
      if (tag === DT_NULL) break;
      const val = u64(dv, o + 8);
      if (val === null) {
        // The full reader keeps Infinity here; only the string tags matter to us.
        if (tag === DT_NEEDED || tag === DT_RPATH || tag === DT_RUNPATH || tag === DT_STRTAB || tag === DT_SONAME)
          return null;
        if (tag === DT_STRSZ) strsz = -1;
        continue;
      }
      if (tag === DT_NEEDED) needed.push(val);
      else if (tag === DT_SONAME) soname = val;
      else if (tag === DT_RPATH) rpath = val;
      else if (tag === DT_RUNPATH) runpath = val;
      else if (tag === DT_STRTAB) strtab = val;
      else if (tag === DT_STRSZ) strsz = val;
    }
    const hasStrings = needed.length > 0 || soname >= 0 || rpath >= 0 || runpath >= 0;
    if (!hasStrings) return { interpreter, needed: [], rpath: null, runpath: null };
    const strSeg = strtab >= 0 ? loadAt(strtab) : null;
    if (strSeg === null) return null;
    const strOff = strSeg.offset + (strtab - strSeg.vaddr);
    const avail = strSeg.offset + strSeg.filesz - strOff;
    const n = strsz >= 0 && strsz <= avail ? strsz : avail;
    if (n > MAX_READ) return null;
    const sb = pread(fd, n, strOff);
    if (sb === null) return null;
    const str = (rel: number): string | null => {
      if (rel >= n) return null;
      const nul = sb.indexOf(0, rel);
      return nul < 0 ? null : utf8.decode(sb.subarray(rel, nul));
    };
    const names: string[] = [];
    for (const v of needed) {
      const s = str(v);
      if (s === null) return null;
      names.push(s);
    }
    const rp = rpath >= 0 ? str(rpath) : null;
    const rup = runpath >= 0 ? str(runpath) : null;
    if ((rpath >= 0 && rp === null) || (runpath >= 0 && rup === null)) return null;
    // The full reader fails on a bad DT_SONAME string too (and then the module's needs are not followed).
    if (soname >= 0 && str(soname) === null) return null;
    return { interpreter, needed: names, rpath: rp, runpath: rup };
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** LinkInfo of `path`: the header path, else the full ELF reader (FileError / ElfError). */
export async function readLinkInfo(path: string): Promise<LinkInfo> {
  const fast = readLinkInfoFast(path);
  if (fast !== null) return fast;
  const { readElfFile } = await import("../elf/reader.ts");
  const elf = readElfFile(path);
  return {
    interpreter: elf.interpreter,
    needed: elf.dynamic?.needed ?? [],
    rpath: elf.dynamic?.rpath ?? null,
    runpath: elf.dynamic?.runpath ?? null,
  };
}

interface Loaded {
  path: string; // as found
  real: string;
  info: LinkInfo;
  origin: string;
  /** RPATH dirs of this object and its loaders, nearest first (used only if the object has no RUNPATH). */
  rpathChain: string[];
}

export interface ClosureOptions {
  /** LD_LIBRARY_PATH to honour (default: the environment's). */
  ldLibraryPath?: string;
  /**
   * Cache root for a memo of the result (`<root>/closures/`), reused while the program, the
   * interpreter and every library found — as named, symlinks followed — keep their identity
   * (dev, inode, size, mtime, ctime) and the cwd, LD_LIBRARY_PATH and /etc/ld.so.cache are the
   * same. What it cannot see (a library newly put earlier in the search path) only makes
   * `sysi run` plan that library on demand: plans are keyed by module, never by closure.
   */
  memoRoot?: string;
}

interface ClosureMemo {
  key: string;
  /** Every file the result depends on, as named when it was found, with its identity. */
  probes: [string, string][];
  out: string[];
}

/** The working directory (relative library paths resolve from it), or "" when it was removed. */
function workingDir(): string {
  try {
    return process.cwd();
  } catch {
    return "";
  }
}

/** The executable, its interpreter and its DT_NEEDED closure, realpath'ed, deduplicated, in load order. */
export async function moduleClosure(exePath: string, opts: ClosureOptions = {}): Promise<string[]> {
  if (opts.memoRoot === undefined) return (await computeClosure(exePath, opts)).out;
  const ldLibraryPath = opts.ldLibraryPath ?? process.env.LD_LIBRARY_PATH ?? "";
  const key = [resolve(exePath), workingDir(), ldLibraryPath, fileIdentity(LD_SO_CACHE) ?? "-"].join("\n");
  const memo = join(opts.memoRoot, "closures", `${Bun.hash(key).toString(16)}.json`);
  try {
    const doc = JSON.parse(readFileSync(memo, "utf8")) as ClosureMemo;
    if (doc.key === key && Array.isArray(doc.probes) && doc.probes.every(([p, id]) => fileIdentity(p) === id))
      return doc.out;
  } catch {
    // no memo (or unreadable): compute
  }
  const { out, probes } = await computeClosure(exePath, { ...opts, ldLibraryPath });
  const ids = probes.map((p) => [p, fileIdentity(p)] as [string, string | null]);
  if (ids.every(([, id]) => id !== null)) {
    try {
      mkdirSync(dirname(memo), { recursive: true, mode: 0o755 });
      writeFileAtomic(memo, JSON.stringify({ key, probes: ids as [string, string][], out } satisfies ClosureMemo));
    } catch {
      // a read-only cache only costs the computation next time
    }
  }
  return out;
}

async function computeClosure(exePath: string, opts: ClosureOptions): Promise<{ out: string[]; probes: string[] }> {
  const probes = [resolve(exePath)];
  const exe = await readLinkInfo(exePath); // FileError / ElfError for a missing or bad program
  const exeReal = realpathSync(exePath);
  const ldPath = splitPath(opts.ldLibraryPath ?? process.env.LD_LIBRARY_PATH, dirname(exeReal));
  const out: string[] = [exeReal];
  const seen = new Set<string>([exeReal]);
  const sonames = new Set<string>();
  if (exe.interpreter !== null) {
    probes.push(exe.interpreter);
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
    info: exe,
    origin: dirname(exeReal),
    rpathChain: exe.runpath ? [] : splitPath(exe.rpath, dirname(exeReal)),
  };
  const queue: Loaded[] = [root];
  while (queue.length > 0) {
    const obj = queue.shift() as Loaded;
    for (const name of obj.info.needed) {
      if (sonames.has(name)) continue;
      const found = find(name, obj, ldPath);
      if (found === null) continue;
      probes.push(resolve(found));
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
      let info: LinkInfo;
      try {
        info = await readLinkInfo(real);
      } catch {
        continue;
      }
      const origin = dirname(resolve(found));
      const own = info.runpath ? [] : splitPath(info.rpath, origin);
      queue.push({ path: found, real, info, origin, rpathChain: [...own, ...obj.rpathChain] });
    }
  }
  return { out, probes };
}

function find(name: string, obj: Loaded, ldPath: string[]): string | null {
  if (name.includes("/")) {
    const p = isAbsolute(name) ? name : resolve(name);
    return isCompatible(p) ? p : null;
  }
  const runpath = splitPath(obj.info.runpath, obj.origin);
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
