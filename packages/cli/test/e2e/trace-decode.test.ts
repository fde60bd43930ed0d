/**
 * The trace hook's decoding of the calls real programs make most often after open/read/mmap
 * (issue 17 item 1), against `strace -f` as the oracle: statx (flags, mask, struct statx),
 * poll/ppoll (the pollfd array, revents in the result), setsockopt/getsockopt (level, option,
 * value), sendmsg/recvmsg (struct msghdr), MSG_* flags, the order of the names in a flag set,
 * SA_RESTORER and sa_restorer, SIGIO, O_LARGEFILE, fadvise64's advice. Small C programs
 * (fixtures/trace-decode) make each form, including failures and bad pointers (printed as
 * their address, the program unharmed); real commands (ls, stat, sort, wc, python3) make them
 * as they come. Each runs under `strace -f -e trace=NAMES` and `sysi run --hook trace -e
 * trace=NAMES`; the lines must be the same, in the same order, up to addresses (0xADDR), pids,
 * ephemeral ports and strace's column alignment (checked on the raw lines first).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { alignedAsStrace } from "./strace-lines.ts";

const SYSI = join(import.meta.dir, "../../bin/sysi");
const FIX = join(import.meta.dir, "fixtures/trace-decode");
const dir = mkdtempSync(join(tmpdir(), "sysi-trace-decode-"));
const cwd = join(dir, "cwd");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const why = Bun.which("strace") === null ? "needs strace" : Bun.which("cc") === null ? "needs cc" : null;
const PROGRAMS = ["flags", "callflags", "statx", "poll", "sock", "select", "epoll", "sigret"];

beforeAll(() => {
  if (why !== null) return;
  mkdirSync(join(cwd, "d", "sub"), { recursive: true });
  writeFileSync(join(cwd, "in.txt"), "b\na\nc\n");
  writeFileSync(join(cwd, "d", "x"), "x");
  for (const n of PROGRAMS) {
    const r = Bun.spawnSync(["cc", "-O1", "-Wall", "-o", join(dir, n), join(FIX, `${n}.c`)], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  }
});

/**
 * Lines without pids, exit and signal lines; addresses as 0xADDR, ports (ephemeral: each run binds
 * its own) as PORT; each first checked at strace's result column, which is then one space (the
 * prefixes and 0xADDR change the widths).
 */
function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => {
      expect({ line: l, aligned: alignedAsStrace(l) }).toEqual({ line: l, aligned: true });
      return (
        l
          .replace(/^(\d+ +|\[pid +\d+\] )/, "")
          .replace(/0x[0-9a-f]{6,}/g, "0xADDR")
          .replace(/htons\(\d+\)/g, "htons(PORT)")
          // sysinfo's values (uptime, free memory, …) are the machine's at that moment: each run has its own
          .replace(/^sysinfo\(\{.*\}\)/, (m) => m.replace(/\d+/g, "N"))
          .replace(/\)\s+= /, ") = ")
          .trimEnd()
      );
    })
    .filter((l) => l !== "" && !/^(\+\+\+ |--- SIG)/.test(l));
}

const ENV = { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: dir, LC_ALL: "C.UTF-8", TZ: "UTC" };

/** The program's trace of `calls` under strace -f and under sysi, each run in the same fresh cwd. */
function both(argv: string[], calls: string, from?: string): { strace: string[]; sysi: string[] } {
  const st = join(dir, "strace.txt");
  const sy = join(dir, "sysi.txt");
  const a = Bun.spawnSync(["strace", "-f", "-e", `trace=${calls}`, "-o", st, ...argv], {
    cwd,
    env: ENV,
    stdout: "ignore",
    stderr: "pipe",
  });
  const b = Bun.spawnSync([SYSI, "run", "--hook", "trace", "-e", `trace=${calls}`, "-o", sy, "--", ...argv], {
    cwd,
    env: { ...ENV, SYSI_CACHE_DIR: join(process.env.HOME ?? "/root", ".cache", "sysi") },
    stdout: "ignore",
    stderr: "pipe",
  });
  expect(b.stderr.toString()).toBe("");
  expect(b.exitCode).toBe(a.exitCode);
  const cut = (l: string[]) =>
    from === undefined
      ? l
      : l.slice(
          Math.max(
            0,
            l.findIndex((x) => x.includes(from)),
          ),
        );
  return { strace: cut(lines(readFileSync(st, "utf8"))), sysi: cut(lines(readFileSync(sy, "utf8"))) };
}

/** from: the lines from the first that holds this on (the loader's calls come before the runtime's start) */
const CASES: { name: string; argv: () => string[]; calls: string; from?: string }[] = [
  {
    name: "flag sets in strace's order, SA_RESTORER, SIGIO, O_LARGEFILE, fadvise64 advice",
    argv: () => [join(dir, "flags")],
    from: '"/nonexistent/x"',
    calls:
      "openat,fcntl,mmap,mprotect,newfstatat,statx,socket,accept4,wait4,getrandom,pipe2,faccessat,rt_sigaction,kill,fadvise64",
  },
  {
    name: "flag sets of their own calls: faccessat2, eventfd2, epoll_create1, inotify_init1, timerfd_create, memfd_create, mlockall, msync, renameat2, signalfd4, mlock2",
    argv: () => [join(dir, "callflags")],
    calls:
      "faccessat2,eventfd2,epoll_create1,inotify_init1,timerfd_create,memfd_create,mlockall,msync,renameat2,signalfd4,mlock2,unlinkat,linkat,fchownat,utimensat",
  },
  { name: "statx: flags, mask, struct statx, failures", argv: () => [join(dir, "statx"), "in.txt"], calls: "statx" },
  { name: "poll and ppoll: pollfd arrays, revents, timeouts", argv: () => [join(dir, "poll")], calls: "poll,ppoll" },
  {
    name: "setsockopt, getsockopt, sendmsg, recvmsg, sendto, recvfrom",
    argv: () => [join(dir, "sock")],
    calls: "setsockopt,getsockopt,sendmsg,recvmsg,sendto,recvfrom",
  },
  {
    name: "select and pselect6: fd sets at entry, the ready ones and (Timeout) in the result; socketpair; sysinfo",
    argv: () => [join(dir, "select")],
    calls: "select,pselect6,socketpair,sysinfo",
  },
  {
    name: "epoll_ctl, epoll_wait, epoll_pwait: ops, struct epoll_event, the events returned",
    argv: () => [join(dir, "epoll")],
    calls: "epoll_ctl,epoll_wait,epoll_pwait",
  },
  {
    name: "rt_sigreturn after a program's handler: the mask it restores, the rax it restores (0, -1 EINTR)",
    argv: () => [join(dir, "sigret")],
    calls: "rt_sigreturn",
  },
  { name: "ls -la: statx", argv: () => ["ls", "-la", "d"], calls: "statx,socket" },
  { name: "stat: statx", argv: () => ["stat", "in.txt", "d", "/dev/null"], calls: "statx" },
  { name: "sort: sigaction flags", argv: () => ["sort", "in.txt"], calls: "rt_sigaction,fadvise64" },
  { name: "wc and cat: fadvise64", argv: () => ["sh", "-c", "wc -l in.txt; cat in.txt"], calls: "fadvise64,fcntl" },
  {
    name: "cp and nproc: ioctl FICLONE (both its names), sched_getaffinity's CPU set",
    argv: () => ["sh", "-c", "rm -f out.txt; cp in.txt out.txt; nproc"],
    calls: "ioctl,sched_getaffinity",
  },
  {
    name: "python3: poll, socket options",
    argv: () => [
      "python3",
      "-c",
      "import select, socket, os\n" +
        "r, w = os.pipe(); os.write(w, b'x')\n" +
        "p = select.poll(); p.register(r, select.POLLIN); p.register(w, select.POLLOUT); p.poll(0)\n" +
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n" +
        "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)\n",
    ],
    calls: "poll,setsockopt,getsockopt,socket",
  },
];

describe("decoded trace lines = strace -f's", () => {
  for (const c of CASES)
    test.skipIf(why !== null)(`${c.name}${why ? ` (skipped: ${why})` : ""}`, () => {
      const { strace, sysi } = both(c.argv(), c.calls, c.from);
      expect(strace.length).toBeGreaterThan(0);
      expect(sysi).toEqual(strace);
    });
});
