import { describe, expect, it } from "bun:test";
import { straceOracle } from "./strace-oracle.ts";

// Shapes copied from real `strace -f -qq -o` output of instrumented runs (strace 6.1).
const TEXT = `100 execve("/bin/x", ["x"], 0x7ffd /* 3 vars */) = 0
100 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
100 syscall_0x5157(0, 0, 0, 0, 0, 0)  = -1 ENOSYS (Function not implemented)
100 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f4768106351} ---
100 write(1, "a) = -1 EBADF\\n", 14) = 14
100 rt_sigreturn({mask=[]})           = 14
100 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f4768106351} ---
100 rt_sigprocmask(SIG_BLOCK, [HUP], [], 8) = 0
100 rt_sigprocmask(SIG_BLOCK, NULL, [HUP], 8) = 0
100 rt_sigreturn({mask=[HUP]})        = 0
100 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f4768106351} ---
100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>
101 rt_sigreturn({mask=[]} <unfinished ...>
100 <... clone resumed>, child_tidptr=0x7f476802fa10) = 101
100 rt_sigreturn({mask=[]})           = 101
101 <... rt_sigreturn resumed>)       = 0
101 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f476810638b} ---
101 openat(AT_FDCWD, "/nope", O_RDONLY) = -1 ENOENT (No such file or directory)
101 rt_sigreturn({mask=[]})           = -1 ENOENT (No such file or directory)
101 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f476810638b} ---
101 exit_group(0)                     = ?
100 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f4768105bd1} ---
100 wait4(101,  <unfinished ...>
100 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=101, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
100 <... wait4 resumed>NULL, 0, NULL) = 101
100 rt_sigreturn({mask=[]})           = 101
100 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f4768105bd1} ---
100 read(0,  <unfinished ...>
100 <... read resumed>0x7ffd, 10)     = ? ERESTARTSYS (To be restarted if SA_RESTART is set)
100 read(0, "", 10)                   = 0
100 rt_sigreturn({mask=[]})           = 0
100 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f4768105bd1} ---
100 syscall_0x186a0(0, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
100 rt_sigreturn({mask=[]})           = -1 ENOSYS (Function not implemented)
`;

describe("straceOracle", () => {
  const r = straceOracle(TEXT);

  it("counts only after the marker and skips the runtime's own calls and sigreturns", () => {
    expect(r.byName.openat).toEqual({ calls: 1, errors: 1 }); // the child's; the loader's is before the marker
    expect(r.byName.rt_sigprocmask).toEqual({ calls: 1, errors: 0 }); // the NULL-set sync is the runtime's
    expect(r.byName.rt_sigreturn).toBeUndefined();
    expect(r.byName.execve).toBeUndefined();
  });

  it("reads results at the end of the line, not inside string arguments", () => {
    expect(r.byName.write).toEqual({ calls: 1, errors: 0 });
  });

  it("follows children from the clone that created them, inheriting the runtime frame", () => {
    expect(r.byName.clone).toEqual({ calls: 1, errors: 0 });
    expect(r.byName.exit_group).toEqual({ calls: 1, errors: 0 });
    expect(r.pids).toEqual([100, 101]);
  });

  it("ignores signals without a handler and restarted calls' first attempt", () => {
    expect(r.byName.wait4).toEqual({ calls: 1, errors: 0 });
    expect(r.byName.read).toEqual({ calls: 1, errors: 0 });
  });

  it("names unknown numbers as strace does", () => {
    expect(r.byName.syscall_0x186a0).toEqual({ calls: 1, errors: 1 });
    expect(r.total).toBe(8);
  });
});

// Runtime work after the start marker (dlopen patching) bracketed by markers 1 and 2, per thread.
const WORK = `200 execve("/bin/y", ["y"], 0x7ffd /* 3 vars */) = 0
200 syscall_0x5157(0, 0, 0, 0, 0, 0)  = -1 ENOSYS (Function not implemented)
200 rt_sigaction(SIGALRM, {sa_handler=0x401136, sa_mask=[], sa_flags=SA_RESTORER, sa_restorer=0x7f1}, NULL, 8) = 0
200 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f2, parent_tid=0x7f2, exit_signal=0, stack=0x7f3, stack_size=0x7fff00, tls=0x7f4} => {parent_tid=[201]}, 88) = 201
200 openat(AT_FDCWD, "/usr/lib/libm.so.6", O_RDONLY|O_CLOEXEC) = 3
200 syscall_0x5157(0x1, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
200 socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 4
201 read(5, "x", 1)                   = 1
200 connect(4, {sa_family=AF_UNIX, sun_path="/tmp/s"}, 110 <unfinished ...>
201 write(6, "y", 1 <unfinished ...>
200 <... connect resumed>)            = 0
201 <... write resumed>)              = 1
200 --- SIGALRM {si_signo=SIGALRM, si_code=SI_KERNEL} ---
200 write(1, "tick\\n", 5)             = 5
200 rt_sigreturn({mask=[]})           = 4
200 open("/tmp/p/k.plan", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)
200 syscall_0x5157(0x2, 0, 0, 0, 0, 0 <unfinished ...>
201 syscall_0x5157(0x1, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
200 <... syscall_0x5157 resumed>)     = -1 ENOSYS (Function not implemented)
201 mprotect(0x7f5, 4096, PROT_READ|PROT_EXEC) = 0
200 close(3)                          = 0
201 syscall_0x5157(0x2, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
201 close(5)                          = 0
`;

describe("straceOracle, program signal handlers", () => {
  it("never counts the rt_sigreturn of a program handler as an error (strace shows the restored rax)", () => {
    const text = `200 syscall_0x5157(0, 0, 0, 0, 0, 0)  = -1 ENOSYS (Function not implemented)
200 rt_sigaction(SIGPIPE, {sa_handler=0x401000, sa_mask=[], sa_flags=SA_RESTORER, sa_restorer=0x402000}, NULL, 8) = 0
200 write(1, "x", 1)                    = -1 EPIPE (Broken pipe)
200 --- SIGPIPE {si_signo=SIGPIPE, si_code=SI_USER, si_pid=200, si_uid=0} ---
200 rt_sigreturn({mask=[]})             = -1 EPIPE (Broken pipe)
200 exit_group(2)                       = ?
`;
    const r = straceOracle(text);
    expect(r.byName.write).toEqual({ calls: 1, errors: 1 });
    expect(r.byName.rt_sigreturn).toEqual({ calls: 1, errors: 0 });
  });
});

describe("straceOracle, runtime-work brackets", () => {
  const r = straceOracle(WORK);

  it("skips a thread's lines between WORK_BEGIN and WORK_END, unfinished ones included", () => {
    expect(r.byName.socket).toBeUndefined();
    expect(r.byName.connect).toBeUndefined();
    expect(r.byName.open).toBeUndefined();
    expect(r.byName.mprotect).toBeUndefined();
    expect(r.byName.openat).toEqual({ calls: 1, errors: 0 }); // the real dlopen's, before the bracket
    expect(r.byName.close).toEqual({ calls: 2, errors: 0 }); // after each thread's WORK_END
  });

  it("counts other threads during a bracket and a program handler inside one", () => {
    expect(r.byName.read).toEqual({ calls: 1, errors: 0 });
    expect(r.byName.write).toEqual({ calls: 2, errors: 0 }); // thread 201's and the SIGALRM handler's
    expect(r.byName.rt_sigreturn).toEqual({ calls: 1, errors: 0 });
    expect(r.byName.syscall_0x5157).toBeUndefined();
    expect(r.total).toBe(9);
  });
});

// A trap handler that resumes the program itself (ud2's resume.S) ends the frame with a marker
// whose first argument is SYSI_MARKER_TRAP_END (3) instead of rt_sigreturn.
const RESUMED = `200 syscall_0x5157(0, 0, 0, 0, 0, 0)  = -1 ENOSYS (Function not implemented)
200 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f4768106351} ---
200 getppid()                         = 1
200 syscall_0x5157(0x3, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
200 getpid()                          = 200
200 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f4768106351} ---
200 rt_sigprocmask(SIG_BLOCK, [HUP], [], 8) = 0
200 rt_sigprocmask(SIG_BLOCK, NULL, [HUP], 8) = 0
200 syscall_0x5157(0x3, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
200 getppid()                         = 1
200 --- SIGILL {si_signo=SIGILL, si_code=ILL_ILLOPN, si_addr=0x7f4768106351} ---
200 exit_group(0)                     = ?
`;

describe("straceOracle, traps resumed without rt_sigreturn", () => {
  const r = straceOracle(RESUMED);
  it("closes the trap's frame at SYSI_MARKER_TRAP_END: later program calls count", () => {
    expect(r.byName.getppid).toEqual({ calls: 2, errors: 0 }); // the emulated one and the plain one
    expect(r.byName.getpid).toEqual({ calls: 1, errors: 0 }); // outside any frame
    expect(r.byName.rt_sigprocmask).toEqual({ calls: 1, errors: 0 }); // the second is the runtime's
    expect(r.byName.exit_group).toEqual({ calls: 1, errors: 0 });
    expect(r.total).toBe(5);
  });
});

// Punning maps a trampoline page on the first jump into it (plugins/punning/native/lazy.c): the
// fault's frame starts with a marker whose first argument is SYSI_MARKER_FAULT (5); its mremap
// and rt_sigreturn are the runtime's, with or without a program SIGSEGV handler installed, also
// after bracketed runtime work (a static program's master takes the thread's block first).
const FAULTS = (handler: boolean) => `400 syscall_0x5157(0, 0, 0, 0, 0, 0)  = -1 ENOSYS (Function not implemented)
${handler ? "400 rt_sigaction(SIGSEGV, {sa_handler=0x401000, sa_mask=[], sa_flags=SA_RESTORER, sa_restorer=0x402000}, NULL, 8) = 0\n" : ""}400 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_ACCERR, si_addr=0x7f0012345000} ---
${handler ? "" : "400 syscall_0x5157(0x1, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)\n400 gettid() = 400\n400 syscall_0x5157(0x2, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)\n"}400 syscall_0x5157(0x5, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
400 mremap(0x7f0100003000, 0, 4096, MREMAP_MAYMOVE|MREMAP_FIXED, 0x7f0012345000) = 0x7f0012345000
400 rt_sigreturn({mask=[]})           = 0
400 getppid()                         = 1
400 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_ACCERR, si_addr=0x10} ---
${handler ? '400 write(2, "segv", 4)             = 4\n400 rt_sigreturn({mask=[]})           = 0\n' : "400 +++ killed by SIGSEGV +++\n"}`;

describe("straceOracle, faults the runtime resolves (SYSI_MARKER_FAULT)", () => {
  for (const handler of [false, true])
    it(`none of the fault frame's calls count, later ones do (program SIGSEGV handler: ${handler})`, () => {
      const r = straceOracle(FAULTS(handler));
      expect(r.byName.mremap).toBeUndefined();
      expect(r.byName.getppid).toEqual({ calls: 1, errors: 0 });
      // the program's own fault runs its handler: its write and rt_sigreturn are the program's
      expect(r.byName.rt_sigreturn).toEqual(handler ? { calls: 1, errors: 0 } : undefined);
      expect(r.byName.write).toEqual(handler ? { calls: 1, errors: 0 } : undefined);
      expect(r.total).toBe(handler ? 4 : 1);
    });
});

// A SIGCHLD delivered in the same return to user space as a lazy-page fault (seen in count.test's
// punning,ud2 pipeline, 3 of 26 runs): the kernel stacks both frames and the SIGCHLD one runs
// first, inside the runtime's fault handler, before its FAULT marker: the master defers it
// (bracketed work), its frame closes, and then the fault frame's marker comes. The deferred
// SIGCHLD is delivered again after the fault and runs the program's handler.
const NESTED = `500 syscall_0x5157(0, 0, 0, 0, 0, 0)  = -1 ENOSYS (Function not implemented)
500 rt_sigaction(SIGCHLD, {sa_handler=0x401000, sa_mask=[], sa_flags=SA_RESTORER, sa_restorer=0x402000}, NULL, 8) = 0
500 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_ACCERR, si_addr=0x7fc86fd3fb8d} ---
500 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=501, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
500 syscall_0x5157(0x1, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
500 gettid()                          = 500
500 rt_tgsigqueueinfo(500, 500, SIGCHLD, {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=501, si_uid=0, si_status=0, si_utime=0, si_stime=0}) = 0
500 syscall_0x5157(0x2, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
500 rt_sigreturn({mask=[CHLD]})       = 0
500 syscall_0x5157(0x5, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
500 mremap(0x7fc8ae402000, 0, 4096, MREMAP_MAYMOVE|MREMAP_FIXED, 0x7fc86fd3f000) = 0x7fc86fd3f000
500 rt_sigreturn({mask=[]})           = 13877
500 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=501, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
500 rt_sigreturn({mask=[]})           = 13877
500 exit_group(0)                     = ?
`;

describe("straceOracle, a signal stacked on a runtime fault", () => {
  it("the fault's FAULT marker still marks its frame after the stacked frame closes", () => {
    const r = straceOracle(NESTED);
    expect(r.byName.mremap).toBeUndefined();
    expect(r.byName.gettid).toBeUndefined();
    expect(r.byName.rt_tgsigqueueinfo).toBeUndefined();
    // the deferring frame's rt_sigreturn (the master stands in for the program's handler) and
    // the program handler's own; never the fault frame's
    expect(r.byName.rt_sigreturn).toEqual({ calls: 2, errors: 0 });
  });
});

describe("straceOracle, calls interrupted by a signal", () => {
  const head = (flags: string) => `300 syscall_0x5157(0, 0, 0, 0, 0, 0)  = -1 ENOSYS (Function not implemented)
300 rt_sigaction(SIGCHLD, {sa_handler=0x401000, sa_mask=[], sa_flags=${flags}, sa_restorer=0x402000}, NULL, 8) = 0
`;
  const chld = "300 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=301, si_uid=0, si_status=0} ---";

  it("counts an ERESTARTNOHAND call whose signal runs a handler as an EINTR error (gdb's sigsuspend)", () => {
    const r = straceOracle(`${head("SA_RESTORER|SA_RESTART")}300 rt_sigsuspend([], 8 <unfinished ...>
300 <... rt_sigsuspend resumed>)      = ? ERESTARTNOHAND (To be restarted if no handler)
${chld}
300 rt_sigreturn({mask=[CHLD]})       = -1 EINTR (Interrupted system call)
`);
    expect(r.byName.rt_sigsuspend).toEqual({ calls: 1, errors: 1 });
    expect(r.byName.rt_sigreturn).toEqual({ calls: 1, errors: 0 });
  });

  it("counts an ERESTARTSYS call as EINTR only when the handler lacks SA_RESTART", () => {
    const body = `300 read(0,  <unfinished ...>
300 <... read resumed>0x7ffd, 10)     = ? ERESTARTSYS (To be restarted if SA_RESTART is set)
${chld}
300 rt_sigreturn({mask=[]})           = 0
`;
    expect(straceOracle(`${head("SA_RESTORER")}${body}300 exit_group(0) = ?\n`).byName.read).toEqual({
      calls: 1,
      errors: 1,
    });
    // restarted: strace shows the call again, which counts once
    expect(straceOracle(`${head("SA_RESTORER|SA_RESTART")}${body}300 read(0, "", 10) = 0\n`).byName.read).toEqual({
      calls: 1,
      errors: 0,
    });
  });

  it("counts a call the process was killed in, without an error (timeout killing sleep)", () => {
    const r = straceOracle(`300 syscall_0x5157(0, 0, 0, 0, 0, 0)  = -1 ENOSYS (Function not implemented)
300 clock_nanosleep(CLOCK_REALTIME, 0, {tv_sec=5, tv_nsec=0},  <unfinished ...>
300 <... clock_nanosleep resumed>{tv_sec=4, tv_nsec=715271397}) = ? ERESTART_RESTARTBLOCK (Interrupted by signal)
300 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=299, si_uid=0} ---
300 +++ killed by SIGTERM +++
`);
    expect(r.byName.clock_nanosleep).toEqual({ calls: 1, errors: 0 });
  });

  it("never counts an interruption by a signal without a handler, nor ERESTARTNOINTR", () => {
    const r = straceOracle(`300 syscall_0x5157(0, 0, 0, 0, 0, 0)  = -1 ENOSYS (Function not implemented)
300 nanosleep({tv_sec=1, tv_nsec=0}, 0x7ffd) = ? ERESTART_RESTARTBLOCK (Interrupted by signal)
300 --- SIGSTOP {si_signo=SIGSTOP, si_code=SI_USER, si_pid=1, si_uid=0} ---
300 restart_syscall(<... resuming interrupted nanosleep ...>) = 0
300 rt_sigaction(SIGCHLD, {sa_handler=0x401000, sa_mask=[], sa_flags=SA_RESTORER, sa_restorer=0x402000}, NULL, 8) = 0
300 clone(child_stack=NULL, flags=SIGCHLD) = ? ERESTARTNOINTR (To be restarted)
${chld}
300 rt_sigreturn({mask=[]})           = 56
300 clone(child_stack=NULL, flags=SIGCHLD) = 301
`);
    expect(r.byName.nanosleep).toEqual({ calls: 1, errors: 0 });
    expect(r.byName.clone).toEqual({ calls: 1, errors: 0 });
  });
});
