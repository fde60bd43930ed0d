/**
 * The risky host probes, run in a throwaway child (`bun probe-child.ts`) so that the CLI's own
 * process never maps page 0, owns an LDT, turns on Syscall User Dispatch or holds a pkey.
 *
 * Prints one JSON line (a ChildProbe) per probe as soon as it finishes, so a probe that kills the
 * process leaves the earlier results readable. It only probes this process: it never changes a
 * system setting, and everything it sets up it tears down again (or the process exit does).
 */

import { dlopen, ptr, read } from "bun:ffi";
import { writeSync } from "node:fs";
import { SYS, type SyscallName } from "../syscalls/index.ts";
import type { ChildProbe } from "./types.ts";

/** Debian/Ubuntu multiarch first, then other layouts, then the loader's own search. */
const LIBC_PATHS = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6", "/usr/lib/libc.so.6", "libc.so.6"];

// Kernel ABI constants (uapi headers), by name.
const PROT_READ = 0x1;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const MAP_FIXED_NOREPLACE = 0x100000;
const PR_GET_SECCOMP = 21;
const PR_SET_SYSCALL_USER_DISPATCH = 59;
const PR_SYS_DISPATCH_OFF = 0;
const PR_SYS_DISPATCH_ON = 1;
const SYSCALL_DISPATCH_FILTER_ALLOW = 0;
const LDT_READ = 0; // modify_ldt func 0: read the LDT
const LDT_WRITE = 0x11; // modify_ldt func 0x11: write one entry (new mode)
const LDT_ENTRY_SIZE = 8;
const DESC_L_BIT = 1 << 21; // L (64-bit code) bit in the descriptor's high dword

const SYMBOLS = {
  syscall: { args: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], returns: "i64" },
  __errno_location: { args: [], returns: "ptr" },
} as const;

function openLibc() {
  let last: unknown;
  for (const path of LIBC_PATHS) {
    try {
      return dlopen(path, SYMBOLS);
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`cannot dlopen libc (${LIBC_PATHS.join(", ")}): ${last instanceof Error ? last.message : last}`);
}

const libc = openLibc();

type Arg = number | bigint;

/** Raw syscall through libc's syscall(): the result, or -errno on failure. */
function sys(name: SyscallName, ...args: Arg[]): bigint {
  const a = (i: number): bigint => BigInt(args[i] ?? 0);
  const r = libc.symbols.syscall(BigInt(SYS[name]), a(0), a(1), a(2), a(3), a(4), a(5)) as bigint;
  if (r !== -1n) return r;
  const loc = libc.symbols.__errno_location();
  return loc === null ? -1n : -BigInt(read.i32(loc, 0));
}

/** modify_ldt returns an `int` the kernel truncates to unsigned; read it back as signed 32-bit. */
function sysInt(name: SyscallName, ...args: Arg[]): number {
  return Number(BigInt.asIntN(32, sys(name, ...args)));
}

function emit(p: ChildProbe): void {
  writeSync(1, `${JSON.stringify(p)}\n`);
}

function probeSeccomp(): ChildProbe {
  const mode = sysInt("prctl", PR_GET_SECCOMP);
  if (mode < 0) return { id: "seccomp", ok: false, errno: mode, failed: "prctl(PR_GET_SECCOMP)" };
  return { id: "seccomp", ok: true, errno: 0, info: { mode } };
}

function probePage0(): ChildProbe {
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
  const r = sys("mmap", 0, 4096, PROT_READ, flags, -1, 0);
  if (r < 0n && r > -4096n) return { id: "page0", ok: false, errno: Number(r), failed: "mmap" };
  sys("munmap", r, 4096);
  if (r !== 0n) {
    // A kernel that ignores MAP_FIXED_NOREPLACE treats the address as a hint.
    return { id: "page0", ok: false, errno: 0, failed: "mmap", info: { got: `0x${r.toString(16)}` } };
  }
  return { id: "page0", ok: true, errno: 0 };
}

function probePkeys(): ChildProbe {
  const key = sysInt("pkey_alloc", 0, 0);
  if (key < 0) return { id: "pkeys", ok: false, errno: key, failed: "pkey_alloc" };
  sysInt("pkey_free", key);
  return { id: "pkeys", ok: true, errno: 0, info: { key } };
}

function probeSud(): ChildProbe {
  // The selector stays ALLOW the whole time: every syscall runs normally while dispatch is on.
  const selector = new Uint8Array(4096);
  selector[0] = SYSCALL_DISPATCH_FILTER_ALLOW;
  const on = sysInt("prctl", PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, ptr(selector));
  if (on < 0) return { id: "sud", ok: false, errno: on, failed: "prctl(PR_SET_SYSCALL_USER_DISPATCH, ON)" };
  const off = sysInt("prctl", PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
  if (off < 0) return { id: "sud", ok: false, errno: off, failed: "prctl(PR_SET_SYSCALL_USER_DISPATCH, OFF)" };
  return { id: "sud", ok: true, errno: 0 };
}

function probeModifyLdt(): ChildProbe {
  const buf = new Uint8Array(LDT_ENTRY_SIZE * 16);
  const before = sysInt("modify_ldt", LDT_READ, ptr(buf), buf.length);
  if (before < 0) return { id: "modify_ldt", ok: false, errno: before, failed: "modify_ldt(0)" };
  // struct user_desc: entry_number, base_addr, limit, then the flag bits
  // seg_32bit:1 contents:2 read_exec_only:1 limit_in_pages:1 seg_not_present:1 useable:1 lm:1.
  const desc = new Uint32Array(4);
  desc[0] = 0; // entry 0 of this (throwaway) process's LDT
  desc[1] = 0; // base
  desc[2] = 0xfffff; // limit (pages)
  desc[3] = (2 << 1) | (1 << 4) | (1 << 7); // contents=MODIFY_LDT_CONTENTS_CODE, limit_in_pages, lm=1
  const w = sysInt("modify_ldt", LDT_WRITE, ptr(desc), 16);
  if (w < 0) return { id: "modify_ldt", ok: false, errno: w, failed: "modify_ldt(0x11)", info: { readBytes: before } };
  const back = new Uint8Array(LDT_ENTRY_SIZE);
  const n = sysInt("modify_ldt", LDT_READ, ptr(back), back.length);
  if (n < LDT_ENTRY_SIZE)
    return { id: "modify_ldt", ok: false, errno: Math.min(n, 0), failed: "modify_ldt(0) after write" };
  const high = new DataView(back.buffer).getUint32(4, true);
  return { id: "modify_ldt", ok: true, errno: 0, info: { readBytes: before, lBitCleared: (high & DESC_L_BIT) === 0 } };
}

for (const probe of [probeSeccomp, probePage0, probePkeys, probeSud, probeModifyLdt]) {
  emit(probe());
}
