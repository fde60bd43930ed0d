/**
 * The shared statistics file of a `sysi run` process tree (sysi.h, STATS FILE): created here
 * (sparse), filled by every instrumented process through MAP_SHARED atomics and per-thread
 * slabs, read back here: the totals plus every slab whose owner is not 0.
 *
 *   header (80) | other (16) | syscalls[1024] (16 each) | strategies[16] (80 each)       17760
 *   | nanos[1024] (8 each) | other nanos (8) | pad to 28672
 *   | slab owners[256] (16 each: tid i32, pid i32, reserved)                              32768
 *   | slabs[256] (28672 each: strategy calls[16] (8 each), reserved 128,
 *                 syscalls[1024] (16 each), nanos[1024] (8 each), pad)                7372800
 *   | x32[1024] (16 each: the calls 0x40000000 + i strace names, totals only)          7389184
 *   | i386[512] (16 each: the int $0x80 calls of i386 number i, totals only)     = 7397376 bytes
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { FileError, SysiError } from "../errors.ts";
import { createExclusive, writeAll } from "../safe-write.ts";
import { SYSCALL_I386_NAMES, SYSCALL_NUMBERS, SYSCALL_X32_NAMES } from "../syscalls/table.ts";

export const STATS_MAGIC = "SYSISTA";
export const STATS_VERSION = 4;
export const STATS_NSYSCALLS = 1024;
export const STATS_NSTRATEGIES = 16;
export const STATS_NAME_MAX = 32;
export const STATS_NSLABS = 256;
export const STATS_NX32 = 1024;
export const STATS_NI386 = 512;
/** The x32 syscall bit: x32 call n has number X32_BIT + n. */
const X32_BIT = 0x40000000;
const SYSCALL_SIZE = 16;
const STRATEGY_SIZE = 80;
const SLAB_SIZE = 28672;
/** Offsets inside one slab. */
const SLAB = { strategies: 0, syscalls: 256, nanos: 256 + STATS_NSYSCALLS * SYSCALL_SIZE } as const;
const OFF = {
  magic: 0,
  version: 8,
  size: 12,
  processes: 16,
  forks: 24,
  modulesPlanned: 32,
  modulesUnplanned: 40,
  plansCorrupt: 48,
  sitesUnpatched: 56,
  other: 80,
  syscalls: 96,
  strategies: 96 + STATS_NSYSCALLS * SYSCALL_SIZE,
  nanos: 17760,
  otherNanos: 17760 + STATS_NSYSCALLS * 8,
  owners: 28672,
  slabs: 32768,
  x32: 32768 + STATS_NSLABS * SLAB_SIZE,
  i386: 32768 + STATS_NSLABS * SLAB_SIZE + STATS_NX32 * SYSCALL_SIZE,
} as const;
export const STATS_FILE_SIZE = OFF.i386 + STATS_NI386 * SYSCALL_SIZE;

const STATE_READY = 2;

export interface SyscallCount {
  nr: number;
  /** Kernel name, or null for a number the table does not know. */
  name: string | null;
  calls: number;
  errors: number;
  /** Wall-clock ns inside the calls (the count hook under SYSI_COUNT_TIME=1, else 0). */
  nanos?: number;
}

export interface StrategyCounts {
  /** Dispatcher entries through this strategy's sites. */
  calls: number;
  /** Sites patched with this strategy's option. */
  patched: number;
  /** Sites whose option of this strategy was refused at run time (init, prepare_site, trampolines). */
  fellThrough: number;
  /** Options skipped because memory differed from the plan's old bytes. */
  mismatched: number;
}

export interface StatsSnapshot {
  version: number;
  /** Syscalls with at least one call, by number (nr 0..1023). */
  syscalls: SyscallCount[];
  /**
   * x32 calls (nr 0x40000000 + n) with at least one call, named as strace 6.1 names them in its
   * table "for x32 mode" (`getpid`, `rt_sigaction#64`).
   */
  x32: SyscallCount[];
  /**
   * `int $0x80` calls (counted by the count hook under --complete) with at least one call, by
   * i386 number and name, as strace 6.1 counts them in its table "for 32 bit mode".
   */
  i386: SyscallCount[];
  /** Calls with a number outside 0..1023 and no x32 name, and unnamed i386 numbers, bucketed. */
  other: { calls: number; errors: number; nanos?: number };
  strategies: Record<string, StrategyCounts>;
  modules: { planned: number; unplanned: number; corrupt: number };
  /** Planned sites left unpatched at run time. */
  sitesUnpatched: number;
  /** Process images libsysi set up (one per exec). */
  processes: number;
  /** Children that returned from fork/clone (without CLONE_VM) through the dispatcher. */
  forks: number;
}

let names: (string | null)[] | null = null;

/** Syscall name of `nr` (x86-64), or null. */
export function syscallName(nr: number): string | null {
  if (names === null) {
    names = [];
    for (const [name, n] of Object.entries(SYSCALL_NUMBERS)) names[n] = name;
  }
  return names[nr] ?? null;
}

/**
 * A zero-filled stats file with its header, written atomically: an exclusive temp file with an
 * unpredictable name (never a planted symlink), then rename.
 */
export function createStatsFile(path: string): void {
  const buf = new Uint8Array(OFF.strategies);
  const dv = new DataView(buf.buffer);
  buf.set(new TextEncoder().encode(STATS_MAGIC), OFF.magic);
  dv.setUint32(OFF.version, STATS_VERSION, true);
  dv.setUint32(OFF.size, STATS_FILE_SIZE, true);
  let tmp: string | null = null;
  try {
    const made = createExclusive(dirname(path), basename(path).slice(0, 64), 0o644);
    tmp = made.path;
    try {
      writeAll(made.fd, buf);
      ftruncateSync(made.fd, STATS_FILE_SIZE); // the rest: zero, sparse
    } finally {
      closeSync(made.fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    if (tmp !== null) rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileError("FILE_WRITE", `cannot create stats file ${path}: ${code ?? String(e)}`, { cause: e });
  }
}

function u64(dv: DataView, off: number): number {
  return Number(dv.getBigUint64(off, true));
}

/** Parse a stats file's bytes (see readStatsFile). */
export function parseStatsFile(bytes: Uint8Array): StatsSnapshot {
  if (bytes.byteLength !== STATS_FILE_SIZE) {
    throw new SysiError("STATS_FILE_BAD", `stats file has ${bytes.byteLength} bytes, expected ${STATS_FILE_SIZE}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = new TextDecoder().decode(bytes.subarray(0, 7));
  const version = dv.getUint32(OFF.version, true);
  if (magic !== STATS_MAGIC || bytes[7] !== 0 || version !== STATS_VERSION) {
    throw new SysiError("STATS_FILE_BAD", "stats file has a bad magic or version");
  }
  if (dv.getUint32(OFF.size, true) !== STATS_FILE_SIZE) {
    throw new SysiError("STATS_FILE_BAD", "stats file header names a different size");
  }
  // the totals plus every owned slab (sysi.h STATS FILE: threads that never freed theirs)
  const calls = new Float64Array(STATS_NSYSCALLS);
  const errors = new Float64Array(STATS_NSYSCALLS);
  const nanos = new Float64Array(STATS_NSYSCALLS);
  const stratCalls = new Float64Array(STATS_NSTRATEGIES);
  const add = (into: Float64Array, nr: number, off: number) => {
    into[nr] = (into[nr] ?? 0) + u64(dv, off);
  };
  const addSyscalls = (base: number, nanosBase: number) => {
    for (let nr = 0; nr < STATS_NSYSCALLS; nr++) {
      add(calls, nr, base + nr * SYSCALL_SIZE);
      add(errors, nr, base + nr * SYSCALL_SIZE + 8);
      add(nanos, nr, nanosBase + nr * 8);
    }
  };
  addSyscalls(OFF.syscalls, OFF.nanos);
  for (let i = 0; i < STATS_NSLABS; i++) {
    if (dv.getInt32(OFF.owners + i * 16, true) === 0) continue;
    const base = OFF.slabs + i * SLAB_SIZE;
    addSyscalls(base + SLAB.syscalls, base + SLAB.nanos);
    for (let k = 0; k < STATS_NSTRATEGIES; k++) add(stratCalls, k, base + SLAB.strategies + k * 8);
  }
  const syscalls: SyscallCount[] = [];
  for (let nr = 0; nr < STATS_NSYSCALLS; nr++) {
    const n = calls[nr] ?? 0;
    if (n > 0) syscalls.push({ nr, name: syscallName(nr), calls: n, errors: errors[nr] ?? 0, nanos: nanos[nr] ?? 0 });
  }
  const x32: SyscallCount[] = [];
  for (let i = 0; i < STATS_NX32; i++) {
    const n = u64(dv, OFF.x32 + i * SYSCALL_SIZE);
    const name = SYSCALL_X32_NAMES[i] ?? null;
    if (n > 0) x32.push({ nr: X32_BIT + i, name, calls: n, errors: u64(dv, OFF.x32 + i * SYSCALL_SIZE + 8) });
  }
  const i386: SyscallCount[] = [];
  for (let nr = 0; nr < STATS_NI386; nr++) {
    const n = u64(dv, OFF.i386 + nr * SYSCALL_SIZE);
    const name = SYSCALL_I386_NAMES[nr] ?? null;
    if (n > 0) i386.push({ nr, name, calls: n, errors: u64(dv, OFF.i386 + nr * SYSCALL_SIZE + 8) });
  }
  const strategies: Record<string, StrategyCounts> = {};
  for (let i = 0; i < STATS_NSTRATEGIES; i++) {
    const off = OFF.strategies + i * STRATEGY_SIZE;
    if (dv.getUint32(off, true) !== STATE_READY) continue;
    const raw = bytes.subarray(off + 8, off + 8 + STATS_NAME_MAX);
    const end = raw.indexOf(0);
    const name = new TextDecoder().decode(raw.subarray(0, end < 0 ? raw.length : end));
    strategies[name] = {
      calls: u64(dv, off + 40) + (stratCalls[i] ?? 0),
      patched: u64(dv, off + 48),
      fellThrough: u64(dv, off + 56),
      mismatched: u64(dv, off + 64),
    };
  }
  return {
    version,
    syscalls,
    x32,
    i386,
    other: { calls: u64(dv, OFF.other), errors: u64(dv, OFF.other + 8), nanos: u64(dv, OFF.otherNanos) },
    strategies,
    modules: {
      planned: u64(dv, OFF.modulesPlanned),
      unplanned: u64(dv, OFF.modulesUnplanned),
      corrupt: u64(dv, OFF.plansCorrupt),
    },
    sitesUnpatched: u64(dv, OFF.sitesUnpatched),
    processes: u64(dv, OFF.processes),
    forks: u64(dv, OFF.forks),
  };
}

/** Read a stats file written by libsysi. Throws FileError (unreadable) or SysiError STATS_FILE_BAD. */
export function readStatsFile(path: string): StatsSnapshot {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new FileError("FILE_READ", `cannot read stats file ${path}: ${(e as NodeJS.ErrnoException).code}`, {
      cause: e,
    });
  }
  return parseStatsFile(bytes);
}

/**
 * A stats file that only this process reaches: created in `dir`, opened read-write and
 * unlinked at once, so neither the program nor a cleaner of /tmp can delete or replace it.
 * The instrumented processes open it as /proc/<this pid>/fd/<fd> (SYSI_STATS_FILE), checking
 * its identity (SYSI_STATS_ID, fileIdOf); read it back with readStatsFd. Returns the fd.
 */
export function openPrivateStatsFile(dir: string): number {
  const path = join(dir, `stats-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  createStatsFile(path);
  try {
    return openSync(path, "r+");
  } catch (e) {
    throw new FileError("FILE_READ", `cannot open stats file ${path}: ${(e as NodeJS.ErrnoException).code}`, {
      cause: e,
    });
  } finally {
    rmSync(path, { force: true });
  }
}

/** "dev:ino" of an open fd, as libsysi compares it (SYSI_STATS_ID, SYSI_TRACE_FD). */
export function fileIdOf(fd: number): string {
  const st = fstatSync(fd, { bigint: true });
  return `${st.dev}:${st.ino}`;
}

/** readStatsFile for an fd (openPrivateStatsFile): the whole file from offset 0. */
export function readStatsFd(fd: number): StatsSnapshot {
  let bytes: Uint8Array;
  try {
    const size = Number(fstatSync(fd).size);
    const buf = new Uint8Array(Math.min(size, STATS_FILE_SIZE + 1));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    bytes = buf.subarray(0, got);
  } catch (e) {
    throw new FileError("FILE_READ", `cannot read stats file: ${(e as NodeJS.ErrnoException).code}`, { cause: e });
  }
  return parseStatsFile(bytes);
}
