// Generates the trace hook's decoding tables (issue 17 item 1) from this machine's kernel and libc:
//   packages/core/native/trace-gen-args.h     per syscall: argument count and kind of each argument,
//                                              the result's kind, strace-style classes (C)
//   packages/core/native/trace-gen-consts.h   errno names and messages, signal names, flag and
//                                              enum constants (values from the installed headers)
//   packages/core/src/syscalls/classes.ts      the classes (%file, %desc, …) for `sysi run -e trace=`
//
// Sources: the argument lists come from the kernel's syscall tracepoint formats
// (/sys/kernel/tracing/events/syscalls/sys_enter_NAME/format: the C type and name of each argument);
// a kind is chosen from the type and name by the rules below (RULES), never per syscall by hand except
// where a name alone says what an integer means (open's flags, mmap's prot). Constant values come from
// a C program compiled against the installed headers that prints them; errno names and messages from
// glibc's strerrorname_np/strerror (what strace prints), signal names from sigabbrev_np.
//
// Usage: bun scripts/gen-trace-table.ts [--formats DIR] [--check]
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { SYSCALL_NUMBERS } from "../packages/core/src/syscalls/table.ts";

const ROOT = join(dirname(new URL(import.meta.url).pathname), "..");
const ARGS_OUT = join(ROOT, "packages/core/native/trace-gen-args.h");
const CONSTS_OUT = join(ROOT, "packages/core/native/trace-gen-consts.h");
const TS_OUT = join(ROOT, "packages/core/src/syscalls/classes.ts");
const DEFAULT_FORMATS = "/sys/kernel/tracing/events/syscalls";

export interface Field {
  type: string;
  name: string;
}

/** The argument fields of one sys_enter format file (common_* and __syscall_nr left out). */
export function parseFormat(text: string): Field[] {
  const out: Field[] = [];
  for (const m of text.matchAll(/^\s*field:([^;]+);/gm)) {
    const decl = (m[1] as string).trim();
    const nm = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)$/.exec(decl);
    if (!nm) continue;
    const name = nm[2] as string;
    if (name.startsWith("common_") || name === "__syscall_nr") continue;
    out.push({ type: (nm[1] as string).trim(), name });
  }
  return out;
}

/** Tracepoint names that differ from the syscall's (the kernel's SYSCALL_DEFINE name). */
const TRACEPOINT_ALIAS: Record<string, string> = {
  stat: "newstat",
  fstat: "newfstat",
  lstat: "newlstat",
  newfstatat: "newfstatat",
  uname: "newuname",
  sendfile: "sendfile64",
  umount2: "umount",
};

// ---- argument kinds (decode.h's enum sysi_kind, in this order)
export const KINDS = [
  "DEC", // signed int or long
  "UDEC", // unsigned
  "HEX", // unsigned, printed in hex
  "OCT", // a mode: 0644
  "PTR", // a pointer: NULL or 0x…
  "FD", // a file descriptor
  "DIRFD", // AT_FDCWD or a descriptor
  "STR", // a NUL-terminated string (paths, names)
  "BUF_IN", // bytes the call reads; the length is the next argument
  "BUF_OUT", // bytes the call writes; as many as the result says
  "IOV_IN", // struct iovec[] the call reads; the count is the next argument
  "IOV_OUT", // struct iovec[] the call fills; the result says how many bytes
  "OFLAGS", // open flags
  "PROT", // mmap/mprotect prot
  "MAPFLAGS", // mmap flags
  "SIGNUM", // a signal number
  "SIGSET", // sigset_t *
  "SIGACT", // struct sigaction *
  "SIGHOW", // SIG_BLOCK…
  "STAT", // struct stat * (filled)
  "TIMESPEC", // struct timespec *
  "SOCKADDR", // struct sockaddr * the call reads; the length is the next argument
  "SOCKADDR_OUT", // struct sockaddr * the call fills; the next argument points to the length
  "CLONEFLAGS", // clone's flags
  "ATFLAGS", // AT_* flags
  "ACCESS", // F_OK / R_OK|W_OK|X_OK
  "WHENCE", // SEEK_*
  "IOCTL", // an ioctl request
  "FCNTL", // an fcntl command
  "ARGV", // char *const argv[]
  "ENVP", // char *const envp[]: address and count
  "PIPEFD", // int[2] filled
  "FAMILY", // AF_*
  "SOCKTYPE", // SOCK_* | SOCK_CLOEXEC…
  "RLIMIT_RES", // RLIMIT_*
  "RLIMIT", // struct rlimit64 *
  "ARCH_PRCTL", // ARCH_*
  "WSTATUS", // int * wait status (filled)
  "WOPTIONS", // WNOHANG…
  "FUTEX_OP", // FUTEX_*
  "GRND", // getrandom flags
  "INTPTR", // int * filled: [n]
  "MADV", // madvise advice
  "SOCKLEVEL", // SOL_*
  "SOCKLEN_PTR", // socklen_t * in/out: [n]
  "CLOCKID", // CLOCK_*
  "POLLFD", // struct pollfd[] (the count is the next argument); revents in the result
  "STATX_FLAGS", // statx's flags: the AT_STATX_* sync type, then AT_* flags
  "STATX_MASK", // STATX_* mask
  "STATX", // struct statx * (filled)
  "FADVICE", // POSIX_FADV_*
  "MSGFLAGS", // MSG_* flags of send/recv calls
  "SOCKOPT", // a socket option's name (its level is the previous argument)
  "SOCKOPT_VAL", // a socket option's value (setsockopt: the length follows; getsockopt: filled)
  "MSGHDR", // struct msghdr * (sendmsg reads it, recvmsg fills it)
  "SOCKFLAGS", // SOCK_CLOEXEC|SOCK_NONBLOCK (accept4)
  "CPUSET", // a CPU mask: [0 1] (sched_getaffinity: as many bytes as the result says)
  "FDSET", // fd_set * of select/pselect6 (read at entry; the ready ones in the result)
  "TIMEVAL", // struct timeval * (select's timeout, read at entry)
  "PSELECT_SIG", // pselect6's {sigset_t *, size}
  "SYSINFO", // struct sysinfo * (filled)
  "SCFLAGS", // flags whose names the call gives (SC_FLAGS: eventfd2's EFD_*, msync's MS_*, …)
  "UGID", // a uid_t or gid_t: -1 as -1
  "UGIDPTR", // uid_t * / gid_t * the call fills: [0]
  "SHUT", // shutdown's SHUT_*
  "MKNOD_MODE", // mknod's mode: S_IFCHR|0644
  "MKNOD_DEV", // mknod's dev: makedev(M, m) for a device, else left out
  "EPOLL_OP", // EPOLL_CTL_*
  "GIDLIST", // gid_t[] (getgroups: as many as the result says; setgroups: the count before it)
  "EPOLL_EVENT", // struct epoll_event * (epoll_ctl: read; epoll_wait: as many as the result says)
] as const;
export type Kind = (typeof KINDS)[number];

const FD_NAMES = new Set([
  "fildes",
  "fd",
  "oldfd",
  "newfd",
  "ufd",
  "out_fd",
  "in_fd",
  "epfd",
  "fd_in",
  "fd_out",
  "fdin",
]);
const DIRFD_NAMES = new Set(["dfd", "olddfd", "newdfd", "dirfd"]);
const READ_LIKE =
  /^(read|pread64|readlink|readlinkat|getcwd|recvfrom|getrandom|readv|preadv|preadv2|process_vm_readv)$/;

/** Calls whose flags argument (`flags`, or the name given) has a flag set of its own (trace-args.c picks it by the call). */
const SC_FLAG_ARG: Record<string, string> = { fallocate: "mode", flock: "cmd" };
const SC_FLAGS: Record<string, string> = {
  splice: "splice",
  tee: "splice",
  vmsplice: "splice",
  sync_file_range: "sfr",
  fallocate: "falloc",
  flock: "lock",
  pidfd_open: "pidfd",
  faccessat2: "faccessat",
  eventfd2: "efd",
  epoll_create1: "epoll",
  inotify_init1: "inotify",
  timerfd_create: "tfd",
  memfd_create: "mfd",
  mlockall: "mcl",
  msync: "ms",
  renameat2: "rename",
  signalfd4: "sfd",
  mlock2: "mlock",
};

/** The kind of one argument, from the syscall's name and the argument's C type and name. */
export function kindOf(sc: string, f: Field, i: number, fields: Field[]): Kind {
  const t = f.type;
  const n = f.name;
  const ptr = t.includes("*");
  const next = fields[i + 1];
  // pointers to data whose shape the type names
  if (ptr) {
    if (/sockopt$/.test(sc) && n === "optval") return "SOCKOPT_VAL";
    if (/^sched_[gs]etaffinity$/.test(sc) && n === "user_mask_ptr") return "CPUSET";
    if (/^fd_set \*$/.test(t)) return "FDSET";
    if (/struct epoll_event \*/.test(t)) return "EPOLL_EVENT";
    if (/^[gs]etgroups$/.test(sc) && n === "grouplist") return "GIDLIST";
    if (/^epoll_pwait2?$/.test(sc) && n === "sigmask") return "SIGSET";
    if (/^(uid_t|gid_t) \*$/.test(t) && /^getres[ug]id$/.test(sc)) return "UGIDPTR";
    if (sc === "signalfd4" && n === "user_mask") return "SIGSET";
    if (sc === "select" && /timeval \*$/.test(t)) return "TIMEVAL";
    if (sc === "pselect6" && n === "sig") return "PSELECT_SIG";
    if (/struct sysinfo \*/.test(t)) return "SYSINFO";
    if (sc === "socketpair" && n === "usockvec") return "PIPEFD";
    if (/^(sendto|send)$/.test(sc) && n === "buff" && next !== undefined) return "BUF_IN";
    if (/char \*const \*/.test(t)) return n === "envp" ? "ENVP" : "ARGV";
    if (/\bchar \*$/.test(t)) {
      if (t.startsWith("const")) {
        if (n === "buf" || n === "ubuf" || n === "buff") return next !== undefined ? "BUF_IN" : "STR";
        return "STR";
      }
      if (READ_LIKE.test(sc)) return "BUF_OUT";
      return "PTR";
    }
    if (/void \*$/.test(t)) {
      if (sc === "getrandom") return "BUF_OUT";
      if (t.startsWith("const") && (n === "buff" || n === "buf") && next !== undefined) return "BUF_IN";
      if (!t.startsWith("const") && (sc === "recvfrom" || sc === "recv") && n === "ubuf") return "BUF_OUT";
      return "PTR";
    }
    if (/struct iovec \*/.test(t)) return /read/.test(sc) ? "IOV_OUT" : "IOV_IN";
    if (/struct stat \*/.test(t)) return "STAT";
    if (/struct __kernel_timespec \*/.test(t)) return "TIMESPEC";
    if (/struct sigaction \*/.test(t)) return "SIGACT";
    if (/sigset_t \*/.test(t) && (sc.startsWith("rt_sig") || sc === "ppoll") && sc !== "rt_sigtimedwait")
      return "SIGSET";
    if (/struct pollfd \*/.test(t)) return "POLLFD";
    if (/struct statx \*/.test(t)) return "STATX";
    if (/struct user_msghdr \*/.test(t) && /^(sendmsg|recvmsg)$/.test(sc)) return "MSGHDR";
    if (/struct sockaddr \*/.test(t)) return next?.type.includes("*") ? "SOCKADDR_OUT" : "SOCKADDR";
    if (/struct rlimit(64)? \*/.test(t)) return "RLIMIT";
    if (sc === "wait4" && n === "stat_addr") return "WSTATUS";
    if ((sc === "pipe" || sc === "pipe2") && n === "fildes") return "PIPEFD";
    if (/^int \*$/.test(t) && /len$/.test(n)) return "SOCKLEN_PTR";
    return "PTR";
  }
  // integers whose meaning the syscall and the name give
  if (n === (SC_FLAG_ARG[sc] ?? "flags") && sc in SC_FLAGS) return "SCFLAGS";
  if (/^(uid_t|gid_t)$/.test(t)) return "UGID";
  if (sc === "shutdown" && n === "how") return "SHUT";
  if (/^mknod(at)?$/.test(sc) && n === "mode") return "MKNOD_MODE";
  if (sc === "epoll_ctl" && n === "op") return "EPOLL_OP";
  if (/^mknod(at)?$/.test(sc) && n === "dev") return "MKNOD_DEV";
  if (FD_NAMES.has(n) || (n === "fd" && /long/.test(t))) return "FD";
  if (DIRFD_NAMES.has(n)) return "DIRFD";
  if (/^(open|openat|pipe2|dup3)$/.test(sc) && n === "flags") return "OFLAGS";
  if (sc === "rseq" && (n === "rseq_len" || n === "sig")) return "HEX";
  if (sc === "mode" || (/(open|creat|mkdir|chmod|mknod)/.test(sc) && n === "mode") || (sc === "umask" && n === "mask"))
    return "OCT";
  if ((sc === "mmap" || sc === "mprotect" || sc === "pkey_mprotect") && n === "prot") return "PROT";
  if (sc === "mmap" && n === "flags") return "MAPFLAGS";
  if (sc === "mmap" && n === "off") return "HEX";
  if (sc === "clone" && n === "clone_flags") return "CLONEFLAGS";
  if (/^(kill|tkill|tgkill|rt_sigaction|rt_sigqueueinfo|rt_tgsigqueueinfo|pidfd_send_signal)$/.test(sc) && n === "sig")
    return "SIGNUM";
  if (sc === "rt_sigprocmask" && n === "how") return "SIGHOW";
  if (/at2?$/.test(sc) && /^(flag|flags)$/.test(n) && fields.some((g) => DIRFD_NAMES.has(g.name)) && sc !== "openat")
    return "ATFLAGS";
  if (sc === "statx" && n === "flags") return "STATX_FLAGS";
  if (sc === "statx" && n === "mask") return "STATX_MASK";
  if (sc === "timerfd_create" && n === "clockid") return "CLOCKID";
  if (sc === "fadvise64" && n === "advice") return "FADVICE";
  if (sc === "accept4" && n === "flags") return "SOCKFLAGS";
  if (/^(send|recv|sendto|recvfrom|sendmsg|recvmsg|sendmmsg|recvmmsg)$/.test(sc) && n === "flags") return "MSGFLAGS";
  if (/sockopt$/.test(sc) && n === "optname") return "SOCKOPT";
  if (/^(access|faccessat|faccessat2)$/.test(sc) && n === "mode") return "ACCESS";
  if (sc === "lseek" && n === "whence") return "WHENCE";
  if (sc === "ioctl" && n === "cmd") return "IOCTL";
  if (sc === "fcntl" && n === "cmd") return "FCNTL";
  if ((sc === "socket" || sc === "socketpair") && n === "family") return "FAMILY";
  if ((sc === "socket" || sc === "socketpair") && n === "type") return "SOCKTYPE";
  if (/rlimit/.test(sc) && n === "resource") return "RLIMIT_RES";
  if (sc === "arch_prctl" && n === "option") return "ARCH_PRCTL";
  if ((sc === "wait4" || sc === "waitid") && n === "options") return "WOPTIONS";
  if (sc === "futex" && n === "op") return "FUTEX_OP";
  if (sc === "getrandom" && n === "flags") return "GRND";
  if (sc === "madvise" && n === "behavior") return "MADV";
  if (n === "which_clock") return "CLOCKID";
  if (/sockopt$/.test(sc) && n === "level") return "SOCKLEVEL";
  if (/^(addr|start|brk|new_addr|shmaddr|uaddr|tls|newsp|stack)$/.test(n) && /long/.test(t)) return "PTR";
  if (/^(flags|flag)$/.test(n) && /unsigned/.test(t)) return "HEX";
  if (/unsigned|size_t|u32|u64|umode_t|uid_t|gid_t|key_t|aio_context_t/.test(t)) return "UDEC";
  return "DEC";
}

// ---- results
export const RETS = ["DEC", "HEX", "FD", "NONE", "OCT"] as const;
export type Ret = (typeof RETS)[number];
export function retOf(sc: string): Ret {
  if (/^(mmap|brk|mremap|shmat)$/.test(sc)) return "HEX";
  if (/^(exit|exit_group|rt_sigreturn)$/.test(sc)) return "NONE";
  if (sc === "umask") return "OCT";
  return "DEC";
}

// ---- classes, as strace's manual defines them (strace(1), -e trace=%CLASS)
export const CLASSES = ["file", "desc", "network", "process", "signal", "memory", "ipc", "creds"] as const;
const PATH_NAMES = /^(filename|pathname|path|oldname|newname|dev_name|dir_name|specialfile|library|name)$/;
const FD_RETURNING =
  /^(open|openat|openat2|creat|socket|socketpair|accept|accept4|pipe|pipe2|dup|dup2|dup3|eventfd|eventfd2|epoll_create|epoll_create1|memfd_create|memfd_secret|signalfd|signalfd4|timerfd_create|inotify_init|inotify_init1|fanotify_init|perf_event_open|userfaultfd|pidfd_open|pidfd_getfd|io_uring_setup|open_by_handle_at|open_tree|fsopen|fsmount|fspick|mq_open|bpf)$/;
const NETWORK =
  /^(socket|socketpair|bind|connect|listen|accept|accept4|getsockname|getpeername|sendto|recvfrom|sendmsg|recvmsg|sendmmsg|recvmmsg|shutdown|setsockopt|getsockopt)$/;
const PROCESS =
  /^(clone|clone3|fork|vfork|execve|execveat|exit|exit_group|wait4|waitid|kill|tkill|tgkill|rt_sigqueueinfo|rt_tgsigqueueinfo|pidfd_send_signal|pidfd_open|unshare|seccomp)$/;
const SIGNAL =
  /^(rt_sigaction|rt_sigprocmask|rt_sigreturn|rt_sigpending|rt_sigsuspend|rt_sigtimedwait|rt_sigqueueinfo|rt_tgsigqueueinfo|sigaltstack|signalfd|signalfd4|kill|tkill|tgkill|pause|pidfd_send_signal)$/;
const MEMORY =
  /^(mmap|munmap|mprotect|pkey_mprotect|brk|mremap|madvise|process_madvise|mlock|mlock2|munlock|mlockall|munlockall|msync|mincore|remap_file_pages|mbind|set_mempolicy|get_mempolicy|migrate_pages|move_pages|shmat|shmdt)$/;
const IPC = /^(msgget|msgsnd|msgrcv|msgctl|semget|semop|semtimedop|semctl|shmget|shmat|shmdt|shmctl)$/;
const CREDS =
  /^(getuid|geteuid|getgid|getegid|setuid|setgid|setreuid|setregid|setresuid|setresgid|getresuid|getresgid|setfsuid|setfsgid|getgroups|setgroups|capget|capset|prctl)$/;

export function classesOf(sc: string, fields: Field[], kinds: Kind[]): string[] {
  const out: string[] = [];
  // strace also counts getcwd among the file calls (it returns a path)
  if (fields.some((f, i) => kinds[i] === "STR" && PATH_NAMES.test(f.name)) || /^(execve|execveat|getcwd)$/.test(sc))
    out.push("file");
  if (kinds.some((k) => k === "FD" || k === "DIRFD") || FD_RETURNING.test(sc) || sc === "close_range") out.push("desc");
  if (NETWORK.test(sc)) out.push("network");
  if (PROCESS.test(sc)) out.push("process");
  if (SIGNAL.test(sc)) out.push("signal");
  if (MEMORY.test(sc)) out.push("memory");
  if (IPC.test(sc)) out.push("ipc");
  if (CREDS.test(sc)) out.push("creds");
  return out;
}

// ---- constants: names only; the values come from the headers
// A flag set's names are listed in the order strace prints them (checked against strace -f by
// packages/cli/test/e2e/trace-decode.test.ts): a set's names are matched in this order, each
// taking its bits out of the value. `headers` are compiled on their own (kernel headers clash with
// libc's); `alt` headers give the names the first ones lack.
interface ConstSet {
  headers: string[];
  alt?: string[];
  names: string[];
}
const FLAG_SETS: Record<string, ConstSet> = {
  oflags: {
    // the kernel's values: libc's O_LARGEFILE is 0 on x86-64, the kernel's 0100000
    headers: ["asm/fcntl.h"],
    names: [
      "O_WRONLY",
      "O_RDWR",
      "O_CREAT",
      "O_EXCL",
      "O_NOCTTY",
      "O_TRUNC",
      "O_APPEND",
      "O_NONBLOCK",
      "O_SYNC",
      "O_DSYNC",
      "O_DIRECT",
      "O_LARGEFILE",
      "O_NOFOLLOW",
      "O_NOATIME",
      "O_CLOEXEC",
      "O_PATH",
      "O_TMPFILE",
      "O_DIRECTORY",
      "FASYNC",
    ],
  },
  prot: {
    headers: ["sys/mman.h", "linux/mman.h"],
    names: ["PROT_READ", "PROT_WRITE", "PROT_EXEC", "PROT_SEM", "PROT_GROWSDOWN", "PROT_GROWSUP"],
  },
  mapflags: {
    headers: ["sys/mman.h", "linux/mman.h"],
    names: [
      "MAP_SHARED",
      "MAP_PRIVATE",
      "MAP_SHARED_VALIDATE",
      "MAP_FIXED",
      "MAP_ANONYMOUS",
      "MAP_32BIT",
      "MAP_NORESERVE",
      "MAP_POPULATE",
      "MAP_NONBLOCK",
      "MAP_GROWSDOWN",
      "MAP_DENYWRITE",
      "MAP_EXECUTABLE",
      "MAP_LOCKED",
      "MAP_STACK",
      "MAP_HUGETLB",
      "MAP_SYNC",
      "MAP_FIXED_NOREPLACE",
      "MAP_UNINITIALIZED",
    ],
  },
  cloneflags: {
    headers: ["sched.h"],
    names: [
      "CLONE_VM",
      "CLONE_FS",
      "CLONE_FILES",
      "CLONE_SIGHAND",
      "CLONE_PIDFD",
      "CLONE_PTRACE",
      "CLONE_VFORK",
      "CLONE_PARENT",
      "CLONE_THREAD",
      "CLONE_NEWNS",
      "CLONE_SYSVSEM",
      "CLONE_SETTLS",
      "CLONE_PARENT_SETTID",
      "CLONE_CHILD_CLEARTID",
      "CLONE_UNTRACED",
      "CLONE_CHILD_SETTID",
      "CLONE_NEWCGROUP",
      "CLONE_NEWUTS",
      "CLONE_NEWIPC",
      "CLONE_NEWUSER",
      "CLONE_NEWPID",
      "CLONE_NEWNET",
      "CLONE_IO",
    ],
  },
  atflags: {
    // AT_STATX_* are statx's sync type (put_statx_flags); newfstatat leaves them unnamed
    headers: ["fcntl.h"],
    names: [
      "AT_SYMLINK_NOFOLLOW",
      "AT_REMOVEDIR",
      "AT_SYMLINK_FOLLOW",
      "AT_NO_AUTOMOUNT",
      "AT_EMPTY_PATH",
      "AT_RECURSIVE",
    ],
  },
  access: { headers: ["unistd.h"], names: ["R_OK", "W_OK", "X_OK"] },
  socktypeflags: { headers: ["sys/socket.h"], names: ["SOCK_CLOEXEC", "SOCK_NONBLOCK"] },
  woptions: {
    headers: ["sys/wait.h"],
    names: ["WNOHANG", "WEXITED", "WSTOPPED", "WCONTINUED", "WNOWAIT", "__WCLONE", "__WALL", "__WNOTHREAD"],
  },
  grnd: { headers: ["sys/random.h"], names: ["GRND_NONBLOCK", "GRND_RANDOM", "GRND_INSECURE"] },
  saflags: {
    // SA_RESTORER is the kernel's (libc leaves it out); SA_INTERRUPT is libc's
    headers: ["asm/signal.h"],
    alt: ["signal.h"],
    names: [
      "SA_RESTORER",
      "SA_ONSTACK",
      "SA_RESTART",
      "SA_INTERRUPT",
      "SA_NODEFER",
      "SA_RESETHAND",
      "SA_SIGINFO",
      "SA_NOCLDSTOP",
      "SA_NOCLDWAIT",
    ],
  },
  // SC_FLAGS' sets
  faccessat: { headers: ["fcntl.h"], names: ["AT_SYMLINK_NOFOLLOW", "AT_EACCESS", "AT_EMPTY_PATH"] },
  efd: { headers: ["sys/eventfd.h"], names: ["EFD_SEMAPHORE", "EFD_CLOEXEC", "EFD_NONBLOCK"] },
  epoll: { headers: ["sys/epoll.h"], names: ["EPOLL_CLOEXEC"] },
  epollevents: {
    headers: ["sys/epoll.h"],
    names: [
      "EPOLLIN",
      "EPOLLPRI",
      "EPOLLOUT",
      "EPOLLERR",
      "EPOLLHUP",
      "EPOLLNVAL",
      "EPOLLRDNORM",
      "EPOLLRDBAND",
      "EPOLLWRNORM",
      "EPOLLWRBAND",
      "EPOLLMSG",
      "EPOLLRDHUP",
      "EPOLLEXCLUSIVE",
      "EPOLLWAKEUP",
      "EPOLLONESHOT",
      "EPOLLET",
    ],
  },
  inotify: { headers: ["sys/inotify.h"], names: ["IN_NONBLOCK", "IN_CLOEXEC"] },
  tfd: {
    headers: ["sys/timerfd.h"],
    names: ["TFD_TIMER_ABSTIME", "TFD_TIMER_CANCEL_ON_SET", "TFD_CLOEXEC", "TFD_NONBLOCK"],
  },
  mfd: { headers: ["sys/mman.h"], names: ["MFD_CLOEXEC", "MFD_ALLOW_SEALING", "MFD_HUGETLB"] },
  mcl: { headers: ["sys/mman.h"], names: ["MCL_CURRENT", "MCL_FUTURE", "MCL_ONFAULT"] },
  ms: { headers: ["sys/mman.h"], names: ["MS_SYNC", "MS_ASYNC", "MS_INVALIDATE"] },
  rename: { headers: ["stdio.h"], names: ["RENAME_NOREPLACE", "RENAME_EXCHANGE", "RENAME_WHITEOUT"] },
  sfd: { headers: ["sys/signalfd.h"], names: ["SFD_CLOEXEC", "SFD_NONBLOCK"] },
  mlock: { headers: ["sys/mman.h"], names: ["MLOCK_ONFAULT"] },
  splice: { headers: ["fcntl.h"], names: ["SPLICE_F_MOVE", "SPLICE_F_NONBLOCK", "SPLICE_F_MORE", "SPLICE_F_GIFT"] },
  sfr: {
    headers: ["fcntl.h"],
    names: ["SYNC_FILE_RANGE_WAIT_BEFORE", "SYNC_FILE_RANGE_WRITE", "SYNC_FILE_RANGE_WAIT_AFTER"],
  },
  falloc: {
    headers: ["linux/falloc.h"],
    names: [
      "FALLOC_FL_KEEP_SIZE",
      "FALLOC_FL_PUNCH_HOLE",
      "FALLOC_FL_NO_HIDE_STALE",
      "FALLOC_FL_COLLAPSE_RANGE",
      "FALLOC_FL_ZERO_RANGE",
      "FALLOC_FL_INSERT_RANGE",
      "FALLOC_FL_UNSHARE_RANGE",
    ],
  },
  lock: { headers: ["sys/file.h"], names: ["LOCK_SH", "LOCK_EX", "LOCK_NB", "LOCK_UN"] },
  pidfd: { headers: ["sys/pidfd.h"], names: ["PIDFD_NONBLOCK"] },
  statxmask: {
    headers: ["linux/stat.h"],
    names: [
      "STATX_ALL",
      "STATX_BASIC_STATS",
      "STATX_TYPE",
      "STATX_MODE",
      "STATX_NLINK",
      "STATX_UID",
      "STATX_GID",
      "STATX_ATIME",
      "STATX_MTIME",
      "STATX_CTIME",
      "STATX_INO",
      "STATX_SIZE",
      "STATX_BLOCKS",
      "STATX_BTIME",
      "STATX_MNT_ID",
      "STATX_DIOALIGN",
    ],
  },
  statxattr: {
    headers: ["linux/stat.h"],
    names: [
      "STATX_ATTR_COMPRESSED",
      "STATX_ATTR_IMMUTABLE",
      "STATX_ATTR_APPEND",
      "STATX_ATTR_NODUMP",
      "STATX_ATTR_ENCRYPTED",
      "STATX_ATTR_AUTOMOUNT",
      "STATX_ATTR_MOUNT_ROOT",
      "STATX_ATTR_VERITY",
      "STATX_ATTR_DAX",
    ],
  },
  pollevents: {
    headers: ["asm/poll.h"],
    names: [
      "POLLIN",
      "POLLPRI",
      "POLLOUT",
      "POLLERR",
      "POLLHUP",
      "POLLNVAL",
      "POLLRDNORM",
      "POLLRDBAND",
      "POLLWRNORM",
      "POLLWRBAND",
      "POLLMSG",
      "POLLREMOVE",
      "POLLRDHUP",
    ],
  },
  msgflags: {
    headers: ["sys/socket.h"],
    names: [
      "MSG_OOB",
      "MSG_PEEK",
      "MSG_DONTROUTE",
      "MSG_CTRUNC",
      "MSG_PROXY",
      "MSG_TRUNC",
      "MSG_DONTWAIT",
      "MSG_EOR",
      "MSG_WAITALL",
      "MSG_FIN",
      "MSG_SYN",
      "MSG_CONFIRM",
      "MSG_RST",
      "MSG_ERRQUEUE",
      "MSG_NOSIGNAL",
      "MSG_MORE",
      "MSG_WAITFORONE",
      "MSG_BATCH",
      "MSG_ZEROCOPY",
      "MSG_FASTOPEN",
      "MSG_CMSG_CLOEXEC",
    ],
  },
};
const ENUM_SETS: Record<string, ConstSet> = {
  whence: { headers: ["unistd.h"], names: ["SEEK_SET", "SEEK_CUR", "SEEK_END", "SEEK_DATA", "SEEK_HOLE"] },
  sighow: { headers: ["signal.h"], names: ["SIG_BLOCK", "SIG_UNBLOCK", "SIG_SETMASK"] },
  family: {
    headers: ["sys/socket.h"],
    names: [
      "AF_UNSPEC",
      "AF_UNIX",
      "AF_INET",
      "AF_INET6",
      "AF_NETLINK",
      "AF_PACKET",
      "AF_BLUETOOTH",
      "AF_ALG",
      "AF_VSOCK",
    ],
  },
  socktype: {
    headers: ["sys/socket.h"],
    names: ["SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET", "SOCK_DCCP", "SOCK_PACKET"],
  },
  rlimit: {
    headers: ["sys/resource.h"],
    names: [
      "RLIMIT_CPU",
      "RLIMIT_FSIZE",
      "RLIMIT_DATA",
      "RLIMIT_STACK",
      "RLIMIT_CORE",
      "RLIMIT_RSS",
      "RLIMIT_NPROC",
      "RLIMIT_NOFILE",
      "RLIMIT_MEMLOCK",
      "RLIMIT_AS",
      "RLIMIT_LOCKS",
      "RLIMIT_SIGPENDING",
      "RLIMIT_MSGQUEUE",
      "RLIMIT_NICE",
      "RLIMIT_RTPRIO",
      "RLIMIT_RTTIME",
    ],
  },
  archprctl: {
    headers: ["asm/prctl.h"],
    names: [
      "ARCH_SET_GS",
      "ARCH_SET_FS",
      "ARCH_GET_FS",
      "ARCH_GET_GS",
      "ARCH_GET_CPUID",
      "ARCH_SET_CPUID",
      "ARCH_CET_STATUS",
    ],
  },
  fcntl: {
    headers: ["fcntl.h"],
    names: [
      "F_DUPFD",
      "F_GETFD",
      "F_SETFD",
      "F_GETFL",
      "F_SETFL",
      "F_GETLK",
      "F_SETLK",
      "F_SETLKW",
      "F_SETOWN",
      "F_GETOWN",
      "F_SETSIG",
      "F_GETSIG",
      "F_SETOWN_EX",
      "F_GETOWN_EX",
      "F_OFD_GETLK",
      "F_OFD_SETLK",
      "F_OFD_SETLKW",
      "F_SETLEASE",
      "F_GETLEASE",
      "F_NOTIFY",
      "F_DUPFD_CLOEXEC",
      "F_SETPIPE_SZ",
      "F_GETPIPE_SZ",
      "F_ADD_SEALS",
      "F_GET_SEALS",
    ],
  },
  // a request with two names prints both, "BTRFS_IOC_CLONE or FICLONE" (the set keeps duplicates)
  ioctl: {
    headers: ["sys/ioctl.h", "termios.h", "linux/fs.h", "linux/btrfs.h"],
    names: [
      "TCGETS",
      "TCSETS",
      "TCSETSW",
      "TCSETSF",
      "TCGETA",
      "TCSETA",
      "TCSBRK",
      "TCXONC",
      "TCFLSH",
      "TIOCEXCL",
      "TIOCNXCL",
      "TIOCSCTTY",
      "TIOCGPGRP",
      "TIOCSPGRP",
      "TIOCOUTQ",
      "TIOCSTI",
      "TIOCGWINSZ",
      "TIOCSWINSZ",
      "TIOCMGET",
      "TIOCMSET",
      "FIONREAD",
      "TIOCLINUX",
      "TIOCCONS",
      "FIONBIO",
      "TIOCNOTTY",
      "TIOCGSID",
      "TIOCGPTN",
      "TIOCSPTLCK",
      "FIONCLEX",
      "FIOCLEX",
      "FIOASYNC",
      "FS_IOC_GETFLAGS",
      "FS_IOC_SETFLAGS",
      "BTRFS_IOC_CLONE",
      "FICLONE",
    ],
  },
  futexop: {
    headers: ["linux/futex.h"],
    names: [
      "FUTEX_WAIT",
      "FUTEX_WAKE",
      "FUTEX_FD",
      "FUTEX_REQUEUE",
      "FUTEX_CMP_REQUEUE",
      "FUTEX_WAKE_OP",
      "FUTEX_LOCK_PI",
      "FUTEX_UNLOCK_PI",
      "FUTEX_TRYLOCK_PI",
      "FUTEX_WAIT_BITSET",
      "FUTEX_WAKE_BITSET",
      "FUTEX_WAIT_REQUEUE_PI",
      "FUTEX_CMP_REQUEUE_PI",
      "FUTEX_LOCK_PI2",
    ],
  },
  madv: {
    headers: ["sys/mman.h"],
    names: [
      "MADV_NORMAL",
      "MADV_RANDOM",
      "MADV_SEQUENTIAL",
      "MADV_WILLNEED",
      "MADV_DONTNEED",
      "MADV_FREE",
      "MADV_REMOVE",
      "MADV_DONTFORK",
      "MADV_DOFORK",
      "MADV_MERGEABLE",
      "MADV_UNMERGEABLE",
      "MADV_HUGEPAGE",
      "MADV_NOHUGEPAGE",
      "MADV_DONTDUMP",
      "MADV_DODUMP",
      "MADV_WIPEONFORK",
      "MADV_KEEPONFORK",
      "MADV_COLD",
      "MADV_PAGEOUT",
    ],
  },
  clockid: {
    headers: ["time.h"],
    names: [
      "CLOCK_REALTIME",
      "CLOCK_MONOTONIC",
      "CLOCK_PROCESS_CPUTIME_ID",
      "CLOCK_THREAD_CPUTIME_ID",
      "CLOCK_MONOTONIC_RAW",
      "CLOCK_REALTIME_COARSE",
      "CLOCK_MONOTONIC_COARSE",
      "CLOCK_BOOTTIME",
      "CLOCK_REALTIME_ALARM",
      "CLOCK_BOOTTIME_ALARM",
      "CLOCK_TAI",
    ],
  },
  soclevel: {
    headers: ["sys/socket.h", "netinet/in.h", "netinet/tcp.h", "netinet/udp.h"],
    names: [
      "SOL_SOCKET",
      "SOL_IP",
      "SOL_TCP",
      "SOL_UDP",
      "SOL_IPV6",
      "SOL_ICMPV6",
      "SOL_RAW",
      "SOL_PACKET",
      "SOL_NETLINK",
    ],
  },
  shut: { headers: ["sys/socket.h"], names: ["SHUT_RD", "SHUT_WR", "SHUT_RDWR"] },
  epollop: { headers: ["sys/epoll.h"], names: ["EPOLL_CTL_ADD", "EPOLL_CTL_DEL", "EPOLL_CTL_MOD"] },
  statxsync: {
    headers: ["fcntl.h"],
    names: ["AT_STATX_SYNC_AS_STAT", "AT_STATX_FORCE_SYNC", "AT_STATX_DONT_SYNC"],
  },
  fadvice: {
    headers: ["fcntl.h"],
    names: [
      "POSIX_FADV_NORMAL",
      "POSIX_FADV_RANDOM",
      "POSIX_FADV_SEQUENTIAL",
      "POSIX_FADV_WILLNEED",
      "POSIX_FADV_DONTNEED",
      "POSIX_FADV_NOREUSE",
    ],
  },
  // socket options by level (SOL_SOCKET's from the kernel's header: SO_RCVTIMEO_OLD, as strace names it)
  so: {
    headers: ["asm/socket.h"],
    names: [
      "SO_DEBUG",
      "SO_REUSEADDR",
      "SO_TYPE",
      "SO_ERROR",
      "SO_DONTROUTE",
      "SO_BROADCAST",
      "SO_SNDBUF",
      "SO_RCVBUF",
      "SO_KEEPALIVE",
      "SO_OOBINLINE",
      "SO_NO_CHECK",
      "SO_PRIORITY",
      "SO_LINGER",
      "SO_BSDCOMPAT",
      "SO_REUSEPORT",
      "SO_PASSCRED",
      "SO_PEERCRED",
      "SO_RCVLOWAT",
      "SO_SNDLOWAT",
      "SO_RCVTIMEO_OLD",
      "SO_SNDTIMEO_OLD",
      "SO_SECURITY_AUTHENTICATION",
      "SO_SECURITY_ENCRYPTION_TRANSPORT",
      "SO_SECURITY_ENCRYPTION_NETWORK",
      "SO_BINDTODEVICE",
      "SO_ATTACH_FILTER",
      "SO_DETACH_FILTER",
      "SO_PEERNAME",
      "SO_TIMESTAMP_OLD",
      "SO_ACCEPTCONN",
      "SO_PEERSEC",
      "SO_SNDBUFFORCE",
      "SO_PASSSEC",
      "SO_TIMESTAMPNS_OLD",
      "SO_RCVBUFFORCE",
      "SO_MARK",
      "SO_TIMESTAMPING_OLD",
      "SO_PROTOCOL",
      "SO_DOMAIN",
      "SO_RXQ_OVFL",
      "SO_WIFI_STATUS",
      "SO_PEEK_OFF",
      "SO_NOFCS",
      "SO_LOCK_FILTER",
      "SO_SELECT_ERR_QUEUE",
      "SO_BUSY_POLL",
      "SO_MAX_PACING_RATE",
      "SO_BPF_EXTENSIONS",
      "SO_INCOMING_CPU",
      "SO_ATTACH_BPF",
      "SO_ATTACH_REUSEPORT_CBPF",
      "SO_ATTACH_REUSEPORT_EBPF",
      "SO_CNX_ADVICE",
      "SO_MEMINFO",
      "SO_INCOMING_NAPI_ID",
      "SO_COOKIE",
      "SO_PEERGROUPS",
      "SO_ZEROCOPY",
      "SO_TXTIME",
      "SO_BINDTOIFINDEX",
      "SO_TIMESTAMP_NEW",
      "SO_TIMESTAMPNS_NEW",
      "SO_TIMESTAMPING_NEW",
      "SO_RCVTIMEO_NEW",
      "SO_SNDTIMEO_NEW",
      "SO_DETACH_REUSEPORT_BPF",
      "SO_PREFER_BUSY_POLL",
      "SO_BUSY_POLL_BUDGET",
      "SO_NETNS_COOKIE",
      "SO_BUF_LOCK",
      "SO_RESERVE_MEM",
      "SO_TXREHASH",
      "SO_RCVMARK",
    ],
  },
  tcpopt: {
    headers: ["netinet/tcp.h"],
    names: [
      "TCP_NODELAY",
      "TCP_MAXSEG",
      "TCP_CORK",
      "TCP_KEEPIDLE",
      "TCP_KEEPINTVL",
      "TCP_KEEPCNT",
      "TCP_SYNCNT",
      "TCP_LINGER2",
      "TCP_DEFER_ACCEPT",
      "TCP_WINDOW_CLAMP",
      "TCP_INFO",
      "TCP_QUICKACK",
      "TCP_CONGESTION",
      "TCP_MD5SIG",
      "TCP_THIN_LINEAR_TIMEOUTS",
      "TCP_THIN_DUPACK",
      "TCP_USER_TIMEOUT",
      "TCP_REPAIR",
      "TCP_REPAIR_QUEUE",
      "TCP_QUEUE_SEQ",
      "TCP_REPAIR_OPTIONS",
      "TCP_FASTOPEN",
      "TCP_TIMESTAMP",
      "TCP_NOTSENT_LOWAT",
      "TCP_CC_INFO",
      "TCP_SAVE_SYN",
      "TCP_SAVED_SYN",
      "TCP_REPAIR_WINDOW",
      "TCP_FASTOPEN_CONNECT",
      "TCP_ULP",
      "TCP_MD5SIG_EXT",
      "TCP_FASTOPEN_KEY",
      "TCP_FASTOPEN_NO_COOKIE",
      "TCP_ZEROCOPY_RECEIVE",
      "TCP_INQ",
      "TCP_TX_DELAY",
    ],
  },
  ipopt: {
    headers: ["netinet/in.h"],
    names: [
      "IP_TOS",
      "IP_TTL",
      "IP_HDRINCL",
      "IP_OPTIONS",
      "IP_RECVOPTS",
      "IP_RETOPTS",
      "IP_PKTINFO",
      "IP_PKTOPTIONS",
      "IP_MTU_DISCOVER",
      "IP_RECVERR",
      "IP_RECVTTL",
      "IP_RECVTOS",
      "IP_MTU",
      "IP_FREEBIND",
      "IP_IPSEC_POLICY",
      "IP_XFRM_POLICY",
      "IP_PASSSEC",
      "IP_TRANSPARENT",
      "IP_ORIGDSTADDR",
      "IP_MINTTL",
      "IP_NODEFRAG",
      "IP_CHECKSUM",
      "IP_BIND_ADDRESS_NO_PORT",
      "IP_RECVFRAGSIZE",
      "IP_MULTICAST_IF",
      "IP_MULTICAST_TTL",
      "IP_MULTICAST_LOOP",
      "IP_ADD_MEMBERSHIP",
      "IP_DROP_MEMBERSHIP",
      "IP_UNBLOCK_SOURCE",
      "IP_BLOCK_SOURCE",
      "IP_ADD_SOURCE_MEMBERSHIP",
      "IP_DROP_SOURCE_MEMBERSHIP",
      "IP_MSFILTER",
      "IP_MULTICAST_ALL",
      "IP_UNICAST_IF",
    ],
  },
  ipv6opt: {
    headers: ["netinet/in.h"],
    names: [
      "IPV6_ADDRFORM",
      "IPV6_2292PKTINFO",
      "IPV6_2292HOPOPTS",
      "IPV6_2292DSTOPTS",
      "IPV6_2292RTHDR",
      "IPV6_2292PKTOPTIONS",
      "IPV6_CHECKSUM",
      "IPV6_2292HOPLIMIT",
      "IPV6_NEXTHOP",
      "IPV6_AUTHHDR",
      "IPV6_UNICAST_HOPS",
      "IPV6_MULTICAST_IF",
      "IPV6_MULTICAST_HOPS",
      "IPV6_MULTICAST_LOOP",
      "IPV6_JOIN_GROUP",
      "IPV6_LEAVE_GROUP",
      "IPV6_ROUTER_ALERT",
      "IPV6_MTU_DISCOVER",
      "IPV6_MTU",
      "IPV6_RECVERR",
      "IPV6_V6ONLY",
      "IPV6_JOIN_ANYCAST",
      "IPV6_LEAVE_ANYCAST",
      "IPV6_IPSEC_POLICY",
      "IPV6_XFRM_POLICY",
      "IPV6_RECVPKTINFO",
      "IPV6_PKTINFO",
      "IPV6_RECVHOPLIMIT",
      "IPV6_HOPLIMIT",
      "IPV6_RECVHOPOPTS",
      "IPV6_HOPOPTS",
      "IPV6_RTHDRDSTOPTS",
      "IPV6_RECVRTHDR",
      "IPV6_RTHDR",
      "IPV6_RECVDSTOPTS",
      "IPV6_DSTOPTS",
      "IPV6_RECVPATHMTU",
      "IPV6_PATHMTU",
      "IPV6_DONTFRAG",
      "IPV6_RECVTCLASS",
      "IPV6_TCLASS",
      "IPV6_AUTOFLOWLABEL",
      "IPV6_ADDR_PREFERENCES",
      "IPV6_MINHOPCOUNT",
      "IPV6_ORIGDSTADDR",
      "IPV6_TRANSPARENT",
      "IPV6_UNICAST_IF",
    ],
  },
  scm: {
    headers: ["sys/socket.h"],
    names: ["SCM_RIGHTS", "SCM_CREDENTIALS", "SCM_SECURITY"],
  },
};

/**
 * Compile and run C programs printing `c set name value` for every constant (one program per
 * header group: the kernel's asm/ headers clash with libc's), and errno and signal names.
 */
function readConstants(): string {
  const groups = new Map<string, [string, string][]>(); // headers -> [set, name]
  const main = ["stdio.h", "string.h", "signal.h", "errno.h"];
  groups.set(main.join(" "), []);
  for (const [set, s] of [...Object.entries(FLAG_SETS), ...Object.entries(ENUM_SETS)])
    for (const hs of s.alt === undefined ? [s.headers] : [s.headers, s.alt]) {
      const key = hs.join(" ");
      groups.set(key, [...(groups.get(key) ?? []), ...s.names.map((n): [string, string] => [set, n])]);
    }
  const dir = mkdtempSync(join(tmpdir(), "gen-trace-"));
  try {
    let out = "";
    for (const [i, [key, names]] of [...groups].entries()) {
      const lines: string[] = ["#define _GNU_SOURCE", "#include <stdio.h>", "#include <string.h>"];
      for (const h of key.split(" ")) lines.push(`#include <${h}>`);
      lines.push("int main(void) {");
      // "c": a value from the set's own headers, "a": from its alt headers (used only when "c" has none)
      for (const [set, n] of names) {
        const tag = key === (FLAG_SETS[set] ?? ENUM_SETS[set])?.headers.join(" ") ? "c" : "a";
        lines.push(`#ifdef ${n}`, `\tprintf("${tag} ${set} ${n} %llu\\n", (unsigned long long)(${n}));`, "#endif");
      }
      if (i === 0)
        lines.push(
          '\tfor (int e = 1; e < 4096; e++) { const char *n = strerrorname_np(e); if (n) printf("e %d %s %s\\n", e, n, strerror(e)); }',
          '\tfor (int s = 1; s < 32; s++) { const char *n = sigabbrev_np(s); if (n) printf("s %d %s\\n", s, n); }',
        );
      lines.push("\treturn 0;", "}");
      const src = join(dir, `c${i}.c`);
      writeFileSync(src, lines.join("\n"));
      execFileSync("cc", ["-o", join(dir, `c${i}`), src], { stdio: ["ignore", "ignore", "inherit"] });
      out += execFileSync(join(dir, `c${i}`), { encoding: "utf8" });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function cstr(s: string): string {
  return JSON.stringify(s);
}

function renderConsts(raw: string): string {
  const sets = new Map<string, Map<string, bigint>>();
  const alts = new Map<string, bigint>(); // "set name" -> value from the alt headers
  const errnos: [number, string, string][] = [];
  const sigs: [number, string][] = [];
  for (const line of raw.split("\n")) {
    const p = line.split(" ");
    if (p[0] === "c") {
      const m = sets.get(p[1] as string) ?? new Map<string, bigint>();
      m.set(p[2] as string, BigInt(p[3] as string));
      sets.set(p[1] as string, m);
    } else if (p[0] === "a") {
      alts.set(`${p[1]} ${p[2]}`, BigInt(p[3] as string));
    } else if (p[0] === "e") {
      errnos.push([Number(p[1]), p[2] as string, p.slice(3).join(" ")]);
    } else if (p[0] === "s") {
      sigs.push([Number(p[1]), p[2] as string]);
    }
  }
  const out: string[] = [
    "/* GENERATED FILE, do not edit. Regenerate with: bun scripts/gen-trace-table.ts",
    " * Constant values from the installed headers (a compiled program prints them); errno names and",
    " * messages from glibc's strerrorname_np/strerror, signal names from sigabbrev_np. */",
    "#ifndef SYSI_DECODE_CONSTS_H",
    "#define SYSI_DECODE_CONSTS_H",
    "",
    "struct sysi_xlat { const char *name; unsigned long val; };",
    "",
  ];
  const dedupe = (l: [string, bigint][]) => {
    const seen = new Set<bigint>();
    return l.filter(([, v]) => {
      if (seen.has(v)) return false;
      seen.add(v);
      return true;
    });
  };
  for (const [set, def] of [...Object.entries(FLAG_SETS), ...Object.entries(ENUM_SETS)]) {
    // in the order of the set's names (strace's), each with its value from the headers
    const own = sets.get(set);
    let list = def.names.flatMap((n): [string, bigint][] => {
      const v = own?.get(n) ?? alts.get(`${set} ${n}`);
      return v === undefined ? [] : [[n, v]];
    });
    // flags: names without a bit of their own (O_RDONLY 0) are left out
    if (set in FLAG_SETS) list = list.filter(([, v]) => v !== 0n);
    list = def === FLAG_SETS.oflags || def === ENUM_SETS.ioctl ? list : dedupe(list);
    out.push(`static const struct sysi_xlat sysi_x_${set}[] = {`);
    for (const [n, v] of list) out.push(`\t{ ${cstr(n)}, 0x${v.toString(16)}UL },`);
    out.push("\t{ 0, 0 },", "};", "");
  }
  const maxErr = Math.max(...errnos.map((e) => e[0]));
  out.push(`#define SYSI_NERRNO ${maxErr + 1}`);
  out.push("static const char *const sysi_errno_names[SYSI_NERRNO] = {");
  for (const [e, n] of errnos) out.push(`\t[${e}] = ${cstr(n)},`);
  out.push("};", "static const char *const sysi_errno_msgs[SYSI_NERRNO] = {");
  for (const [e, , m] of errnos) out.push(`\t[${e}] = ${cstr(m)},`);
  out.push("};", "", "static const char *const sysi_signal_names[32] = {");
  // signal 29 is SIGIO and SIGPOLL: glibc abbreviates it POLL, strace (and the kernel's asm/signal.h,
  // where SIGPOLL is defined as SIGIO) names it SIGIO
  for (const [s, n] of sigs) out.push(`\t[${s}] = ${cstr(`SIG${n === "POLL" ? "IO" : n}`)},`);
  out.push("};", "", "#endif", "");
  return out.join("\n");
}

interface Entry {
  nr: number;
  name: string;
  fields: Field[] | null;
  kinds: Kind[];
  ret: Ret;
  classes: string[];
}

function collect(formats: string): Entry[] {
  const out: Entry[] = [];
  for (const [name, nr] of Object.entries(SYSCALL_NUMBERS)) {
    const tp = TRACEPOINT_ALIAS[name] ?? name;
    const file = join(formats, `sys_enter_${tp}`, "format");
    const fields = existsSync(file) ? parseFormat(readFileSync(file, "utf8")) : null;
    const kinds = fields ? fields.map((f, i) => kindOf(name, f, i, fields)) : [];
    out.push({ nr, name, fields, kinds, ret: retOf(name), classes: classesOf(name, fields ?? [], kinds) });
  }
  return out.sort((a, b) => a.nr - b.nr);
}

const INT32 = /^(const )?(int|unsigned int|unsigned|pid_t|uid_t|gid_t|u32|key_t|timer_t|mqd_t|clockid_t|qid_t|rwf_t)$/;
const is32 = (f: Field) => INT32.test(f.type);
const isSigned32 = (f: Field) => is32(f) && !/unsigned|u32|uid_t|gid_t|rwf_t/.test(f.type);
function mask(e: Entry, test: (f: Field) => boolean): string {
  let m = 0;
  for (const [i, f] of (e.fields ?? []).entries()) if (test(f)) m |= 1 << i;
  return `0x${m.toString(16)}`;
}

function renderArgs(entries: Entry[], formats: string): string {
  const missing = entries.filter((e) => e.fields === null).map((e) => e.name);
  const out = [
    "/* GENERATED FILE, do not edit. Regenerate with: bun scripts/gen-trace-table.ts",
    ` * Source: ${formats}/sys_enter_NAME/format (the kernel's syscall tracepoints), kinds chosen by the`,
    " * rules of scripts/gen-trace-table.ts. nargs -1: no tracepoint on the generating kernel (printed raw):",
    ` * ${missing.join(" ") || "none"}. */`,
    "#ifndef SYSI_DECODE_ARGS_H",
    "#define SYSI_DECODE_ARGS_H",
    "",
    `enum sysi_kind { ${KINDS.map((k) => `K_${k}`).join(", ")} };`,
    `enum sysi_ret { ${RETS.map((k) => `R_${k}`).join(", ")} };`,
    `enum sysi_class { ${CLASSES.map((c, i) => `C_${c.toUpperCase()} = ${1 << i}`).join(", ")} };`,
    "",
    "struct sysi_sc_desc {",
    "\tsigned char nargs;      /* -1: unknown (six raw arguments) */",
    "\tunsigned char ret;      /* enum sysi_ret */",
    "\tunsigned short classes; /* enum sysi_class bits */",
    "\tunsigned char kinds[6]; /* enum sysi_kind per argument */",
    "\tunsigned char int32;    /* bit i: argument i has a 32-bit type (the upper half is not the program's) */",
    "\tunsigned char signed32; /* bit i: that 32-bit type is signed */",
    "};",
    "",
    "static const struct sysi_sc_desc sysi_sc_descs[] = {",
  ];
  for (const e of entries) {
    const cls = e.classes.map((c) => `C_${c.toUpperCase()}`).join(" | ") || "0";
    const kinds = e.kinds.length ? e.kinds.map((k) => `K_${k}`).join(", ") : "0";
    const args = e.fields ? e.fields.map((f) => `${f.type} ${f.name}`).join(", ") : "?";
    out.push(
      `\t[${e.nr}] = { ${e.fields ? e.fields.length : -1}, R_${e.ret}, ${cls}, { ${kinds} }, ${mask(e, is32)}, ${mask(e, isSigned32)} }, /* ${e.name}(${args}) */`,
    );
  }
  out.push("};", "", "#define SYSI_NDESCS (sizeof sysi_sc_descs / sizeof sysi_sc_descs[0])", "", "#endif", "");
  return out.join("\n");
}

function renderClasses(entries: Entry[], formats: string): string {
  const lines = [
    "// GENERATED FILE, do not edit. Regenerate with: bun scripts/gen-trace-table.ts",
    `// Source: ${formats} (argument names and types) and the class rules of scripts/gen-trace-table.ts.`,
    "",
    "/** strace-style syscall classes (`-e trace=%file`), each the x86-64 names it holds. */",
    "export const SYSCALL_CLASSES: Record<string, readonly string[]> = {",
  ];
  for (const c of CLASSES) {
    const names = entries.filter((e) => e.classes.includes(c)).map((e) => e.name);
    lines.push(`  ${c}: ${JSON.stringify(names.join(" "))}.split(" "),`);
  }
  lines.push("};", "");
  return lines.join("\n");
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function main(argv: string[]): number {
  let formats = DEFAULT_FORMATS;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--check") check = true;
    else if (a === "--formats" && argv[i + 1] !== undefined) formats = argv[++i] as string;
    else {
      process.stderr.write(
        `gen-trace-table: unknown argument ${a}\nusage: bun scripts/gen-trace-table.ts [--formats DIR] [--check]\n`,
      );
      return 2;
    }
  }
  if (!existsSync(formats) || readdirSync(formats).length === 0) {
    process.stderr.write(`gen-trace-table: no syscall tracepoint formats in ${formats} (tracefs mounted? root?)\n`);
    return 2;
  }
  const entries = collect(formats);
  const outputs: [string, string][] = [
    [ARGS_OUT, renderArgs(entries, formats)],
    [CONSTS_OUT, renderConsts(readConstants())],
    // as the repository's formatter writes it (biome ci checks the file)
    [
      TS_OUT,
      execFileSync("bunx", ["biome", "format", `--stdin-file-path=${TS_OUT}`], {
        input: renderClasses(entries, formats),
        encoding: "utf8",
      }),
    ],
  ];
  if (check) {
    const stale = outputs.filter(([p, t]) => !existsSync(p) || readFileSync(p, "utf8") !== t).map(([p]) => p);
    for (const p of stale) process.stderr.write(`gen-trace-table: ${p} is out of date\n`);
    return stale.length === 0 ? 0 : 1;
  }
  for (const [p, t] of outputs) writeAtomic(p, t);
  const known = entries.filter((e) => e.fields !== null).length;
  process.stdout.write(`gen-trace-table: ${known} of ${entries.length} syscalls with argument lists\n`);
  return 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
