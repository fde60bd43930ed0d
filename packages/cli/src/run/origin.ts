/**
 * The process state the caller gave `sysi run`, which the program must get as a shell would
 * give it: the fds it inherits (open or closed), the ignored signals, the signal mask and
 * RLIMIT_NOFILE's soft limit (cwd, the other limits and the environment pass through Bun
 * unchanged). Bun changes some of them before any JavaScript runs: closed fds 0-2 become
 * /dev/null, fds from 4 up become close-on-exec, SIGPIPE and SIGXFSZ become ignored and the
 * soft RLIMIT_NOFILE is raised to the hard one. So bin/sysi, a POSIX sh front that runs before
 * Bun, records them in SYSI_FRONT; started as `bun bin/run.js` instead, sysi recovers what Bun
 * leaves (fromBun). sysi-exec (native/exec.c) restores them in the program's process.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** The state the program is started with. */
export interface Origin {
  /** Open fds the program inherits, ascending; every other fd is closed. */
  fds: number[];
  /** Ignored signals: bit n-1 for signal n (as SigIgn in /proc/PID/status). */
  ignored: bigint;
  /** The signal mask, same layout. */
  blocked: bigint;
  /** RLIMIT_NOFILE's soft limit; null when unknown (Bun's raised limit stays). */
  nofile: number | "inf" | null;
  /** bin/sysi recorded it before Bun started, or Bun's own state was read (fromBun). */
  source: "front" | "bun";
}

const O_ACCMODE = 0o3;
const O_RDWR = 0o2;
const O_CLOEXEC = 0o2000000;
const SIGPIPE = 13;
const SIGXFSZ = 25;

/** Bit of signal `sig` in a SigIgn/SigBlk mask. */
export const sigBit = (sig: number): bigint => 1n << BigInt(sig - 1);

/**
 * SYSI_FRONT, as bin/sysi writes it: "1 PID FDS IGN BLK NOFILE" with FDS a comma list (or "-"),
 * IGN and BLK hex masks, NOFILE a number or "unlimited". Null when malformed or recorded for
 * another process (a stray copy in the caller's environment: bin/sysi sets it just before it
 * execs Bun, whose pid is its own).
 */
export function parseFront(value: string, pid: number): Origin | null {
  const m = /^1 (\d+) (-|\d+(?:,\d+)*) ([0-9a-fA-F]{1,16}) ([0-9a-fA-F]{1,16}) (\d+|unlimited)$/.exec(value);
  if (m === null || Number(m[1]) !== pid) return null;
  const fds = m[2] === "-" ? [] : (m[2] as string).split(",").map(Number);
  return {
    fds: [...new Set(fds)].sort((a, b) => a - b),
    ignored: BigInt(`0x${m[3]}`),
    blocked: BigInt(`0x${m[4]}`),
    nofile: m[5] === "unlimited" ? "inf" : Number(m[5]),
    source: "front",
  };
}

interface FdInfo {
  flags: number;
  target: string;
}

function fdInfo(fd: number, proc = "/proc/self"): FdInfo | null {
  try {
    const text = readFileSync(`${proc}/fdinfo/${fd}`, "utf8");
    const flags = /^flags:\s*([0-7]+)$/m.exec(text);
    let target = "";
    try {
      target = readlinkSync(`${proc}/fd/${fd}`);
    } catch {
      // gone meanwhile, or not a link we can read
    }
    return { flags: flags ? Number.parseInt(flags[1] as string, 8) : 0, target };
  } catch {
    return null;
  }
}

function statusMask(status: string, key: "SigIgn" | "SigBlk"): bigint {
  const m = new RegExp(`^${key}:\\s*([0-9a-fA-F]+)$`, "m").exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

/**
 * What is left of the caller's state in Bun's own process, for a start without bin/sysi:
 *  - fds 0-2: Bun opens /dev/null (O_RDWR|O_CLOEXEC) on the first closed one and dup2s it onto
 *    the later ones. An inherited fd is never close-on-exec, so a close-on-exec fd 0-2 is that
 *    /dev/null, and a later O_RDWR /dev/null one of 0-2 its copy: both were closed.
 *  - fd 3: Bun leaves it alone; Bun's own fds are close-on-exec.
 *  - fds from 4 up: Bun made them close-on-exec like its own, so they are lost.
 *  - ignored signals: SigIgn less SIGPIPE and SIGXFSZ, which Bun ignores itself (assumed not
 *    ignored by the caller: the default a shell gives); signals Bun catches lose an inherited
 *    SIG_IGN. The mask passes through Bun. RLIMIT_NOFILE's soft limit is unknown.
 */
export function fromBun(proc = "/proc/self"): Origin {
  const fds: number[] = [];
  let bunNull = false;
  for (const fd of [0, 1, 2, 3]) {
    const info = fdInfo(fd, proc);
    if (info === null) continue;
    if ((info.flags & O_CLOEXEC) !== 0) {
      if (fd <= 2) bunNull = true;
      continue;
    }
    if (fd <= 2 && bunNull && info.target === "/dev/null" && (info.flags & O_ACCMODE) === O_RDWR) continue;
    fds.push(fd);
  }
  let status = "";
  try {
    status = readFileSync(`${proc}/status`, "utf8");
  } catch {
    // no /proc: nothing ignored, nothing blocked
  }
  return {
    fds,
    ignored: statusMask(status, "SigIgn") & ~(sigBit(SIGPIPE) | sigBit(SIGXFSZ)),
    blocked: statusMask(status, "SigBlk"),
    nofile: null,
    source: "bun",
  };
}

/**
 * The caller's state: SYSI_FRONT when bin/sysi recorded it for this process (its fds still
 * open here), else fromBun(). SYSI_FRONT is removed from `env` either way: it is sysi's own.
 */
export function readOrigin(env: Record<string, string | undefined> = process.env, pid = process.pid): Origin {
  const front = env.SYSI_FRONT;
  delete env.SYSI_FRONT;
  const parsed = front === undefined ? null : parseFront(front, pid);
  if (parsed === null) return fromBun();
  let open: Set<number> | null = null;
  try {
    open = new Set(readdirSync("/proc/self/fd").map(Number));
  } catch {
    // no /proc: trust the record
  }
  return { ...parsed, fds: parsed.fds.filter((fd) => open === null || open.has(fd)) };
}

/** The hard RLIMIT_NOFILE (Bun never changes it), or "inf"; 1024 when it cannot be read. */
export function nofileHard(proc = "/proc/self"): number | "inf" {
  try {
    const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync(`${proc}/limits`, "utf8"));
    if (m?.[1] === "unlimited") return "inf";
    if (m?.[1] !== undefined && /^\d+$/.test(m[1])) return Number(m[1]);
  } catch {
    // no /proc
  }
  return 1024;
}

/**
 * The fd number sysi's own output (the trace) gets in the program: the first number above the
 * program's range of fds (its soft RLIMIT_NOFILE, below which close-all loops stop and open()
 * never reaches) when the hard limit leaves room there; else the top of a range sysi cannot
 * leave (soft = hard, or a limit too large to put a table of that size in every process),
 * never one of the program's own.
 */
export function hiddenFd(soft: number | "inf" | null, hard: number | "inf", taken: readonly number[]): number {
  const used = new Set(taken);
  const s = soft === "inf" ? Number.POSITIVE_INFINITY : soft;
  const h = hard === "inf" ? Number.POSITIVE_INFINITY : hard;
  const above = s !== null && s < h && s <= 65536;
  let fd = above ? s : Math.min(s ?? h, 1024) - 1;
  const step = above ? 1 : -1;
  while (used.has(fd)) fd += step;
  return fd;
}

/** sysi-exec's SPEC (native/exec.c) for `origin`, sysi's pid and sysi's output fd move. */
export function execSpec(origin: Origin, ppid: number, move?: { from: number; to: number }): string {
  const hex = (v: bigint) => v.toString(16);
  const parts = [`ppid=${ppid}`];
  if (origin.fds.length > 0) parts.push(`keep=${origin.fds.join(",")}`);
  if (move !== undefined) parts.push(`move=${move.from}:${move.to}`);
  parts.push(`ign=${hex(origin.ignored)}`, `blk=${hex(origin.blocked)}`);
  if (origin.nofile !== null) parts.push(`nofile=${origin.nofile}`);
  return parts.join(" ");
}
