/*
 * sysi.h — the C ABI of sysi: hook functions, strategy runtimes, and the binary plan format.
 *
 * Three audiences:
 *   1. Hook authors: implement `sysi_hook` in a shared library (see SYSI HOOK ABI).
 *   2. Strategy runtimes (plugins/<name>/native): export an entry returning sysi_strategy_ops.
 *   3. libsysi itself and the TypeScript plan writer (packages/core/src/plan/binary.ts), which
 *      must agree on the SYSI PLAN FORMAT byte for byte.
 *
 * Everything here is x86-64 Linux only. All structs use fixed-width fields, little endian.
 */
#ifndef SYSI_H
#define SYSI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SYSI_ABI_VERSION 2

/* ------------------------------------------------------------------ SYSI HOOK ABI */

/* One intercepted system call, as the hook sees it. */
struct sysi_call {
	long nr;              /* syscall number (may be rewritten by the hook) */
	long args[6];         /* rdi, rsi, rdx, r10, r8, r9 (may be rewritten by the hook) */
	uintptr_t site;       /* run-time address of the patched instruction */
	uint32_t strategy;    /* strategy id: sysi_strategy_name(strategy) gives its name */
	uint32_t flags;       /* SYSI_CALL_* */
	long ret;             /* result, once performed (internal: written by sysi_syscall) */
};

/* flags */
#define SYSI_CALL_INCONTEXT 0x1u /* clone with new stack, clone3, vfork, rt_sigreturn: the
				   * real call can only run in the site's own context; calling
				   * sysi_syscall() defers it and returns 0 (see below) */
#define SYSI_CALL_DEFERRED 0x2u  /* set by sysi_syscall() on an INCONTEXT call */
#define SYSI_CALL_MADE 0x4u      /* set by sysi_syscall() (and the runtime's other ways of
				   * performing c) when it made the system call: a hint for
				   * entries, whose first `ret` after a syscall mispredicts (the
				   * kernel refills the return stack buffer on its way out), to
				   * return by an indirect jump then, and by `ret` after a call the
				   * hook answered itself (the return stack is intact then) */

/*
 * The hook. Called for every hooked syscall that passes the filter, on the program's stack,
 * with the program's signal mask, from any thread: it must be reentrant and async-signal-safe.
 * It returns the syscall's result (a negative errno for errors). To perform the (possibly
 * rewritten) real call it calls sysi_syscall(c). Not calling it skips/emulates the call.
 *
 * For SYSI_CALL_INCONTEXT calls, sysi_syscall(c) only marks the call deferred and returns 0;
 * the runtime performs it after the hook returns, and the hook's return value is ignored.
 * Not calling sysi_syscall() on such a call makes it return the hook's value (emulation).
 */
long sysi_hook(struct sysi_call *c);

/*
 * Optional: a hook library may export `const uint32_t sysi_hook_flags` with these bits.
 *   SYSI_HOOK_GENERAL_REGS_ONLY — the hook never touches vector/x87 state (built with
 *       -mgeneral-regs-only and calls nothing that does): the runtime skips xsave/xrstor.
 *   SYSI_HOOK_NO_GUARD — the hook makes no instrumented syscalls (only sysi_syscall or raw
 *       syscalls): the runtime does not need its per-thread reentrancy guard.
 *   SYSI_HOOK_KEEPS_ARGS — the hook never writes c->nr or c->args (it observes, filters or
 *       answers calls, and performs other calls with sysi_syscall6 or a struct of its own):
 *       an entry may then restore the program's argument registers from *c instead of keeping
 *       a copy of its own (6 stores fewer per call). A hook that sets it and rewrites c->args
 *       leaks the rewritten values into the program's registers, which the kernel never does.
 * Without the guard flag, syscalls made while the hook runs on the same thread (through
 * patched libc) bypass the hook and are performed directly.
 */
#define SYSI_HOOK_GENERAL_REGS_ONLY 0x1u
#define SYSI_HOOK_NO_GUARD 0x2u
#define SYSI_HOOK_KEEPS_ARGS 0x4u

/* Optional: `void sysi_hook_init(void)` runs once per process before the first call. */

/* Helpers exported by libsysi for hooks and strategy runtimes. */
long sysi_syscall(struct sysi_call *c);                 /* perform c (see above) */
long sysi_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6); /* raw, never hooked */
const char *sysi_strategy_name(uint32_t strategy);      /* "zpoline", "ud2", … or "?" */
const char *sysi_syscall_name(long nr);                 /* "read", … or NULL */
/* The dispatcher itself (the same function as sysi_runtime_api.dispatch), for entries that
 * link against libsysi directly. */
int sysi_dispatch(struct sysi_call *c);

/* ------------------------------------------------------------------ STRATEGY RUNTIMES */

/* A site as libsysi hands it to a strategy runtime (run-time addresses). */
struct sysi_site {
	uintptr_t addr;       /* the syscall instruction */
	uintptr_t patch_addr; /* start of the byte patch (== addr unless the strategy rewrites more) */
	uint32_t patch_len;   /* bytes in the patch, <= 16 */
	int32_t nr;           /* syscall number when known statically, else -1 */
	uint64_t aux[2];      /* strategy-defined words from the plan */
	uint32_t strategy;    /* this strategy's id */
	uint32_t module;      /* module index (for diagnostics) */
	/* The patch_len bytes that will be written at patch_addr if prepare_site accepts (e.g. a
	 * strategy whose patch holds several jumps finds their targets here). Appended in ABI 1:
	 * a runtime built against an older sysi.h never reads it. */
	const unsigned char *bytes;
};

struct sysi_count_fast;

/* What libsysi offers a strategy runtime. */
struct sysi_runtime_api {
	uint32_t abi_version; /* SYSI_ABI_VERSION */
	/*
	 * The dispatcher. Fill c->nr, c->args, c->site, c->strategy (flags 0; the dispatcher sets
	 * SYSI_CALL_INCONTEXT itself). Returns 0 when the call is complete and c->ret holds the
	 * result, or 1 when the entry must perform c->nr/c->args itself in the site's context
	 * (clone/clone3/vfork/rt_sigreturn, or a hook that deferred) and return its result.
	 */
	int (*dispatch)(struct sysi_call *c);
	long (*syscall6)(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
	/* Writes one "sysi: error: …" line to fd 2 and exits the process with status 127. */
	void (*die)(const char *msg);
	/* Writes one "sysi: <msg>" line to fd 2 when SYSI_DEBUG is set. */
	void (*debug)(const char *msg);
	/* Environment lookup that does not depend on libc state. */
	const char *(*getenv)(const char *name);
	/* Trampoline placement: map `len` bytes of `code` executable at exactly `addr`
	 * (MAP_FIXED_NOREPLACE); returns 0 or -errno (e.g. -EEXIST when taken). */
	int (*map_code)(uintptr_t addr, const void *code, uint64_t len);
	/*
	 * Signal ownership for trap strategies. libsysi installs one master handler for `sig`
	 * (SA_SIGINFO|SA_ONSTACK|SA_NODEFER as appropriate) and keeps the program's own handler for
	 * it: the program's rt_sigaction/rt_sigprocmask calls go through the dispatcher, which
	 * records the program's handler instead of replacing ours and never lets the program block
	 * a claimed signal. On delivery the master calls `handler` first; when it returns 0 (not
	 * ours) the program's handler (or default action) runs as it would natively.
	 * `ucontext` is a ucontext_t *. Returns 0 or -errno.
	 */
	int (*claim_signal)(int sig, int (*handler)(int sig, void *siginfo, void *ucontext));
	/*
	 * The fast path, set before any runtime's init: the hook itself when every call may skip
	 * the dispatcher (no SYSI_FILTER, and the hook needs neither the reentrancy guard nor an
	 * xsave: built-in hooks, or both SYSI_HOOK_* flags), else NULL. An entry may call it
	 * directly instead of dispatch() for every number but clone, clone3, vfork and
	 * rt_sigreturn, with c->flags = 0 and the rest of c filled as for dispatch(); its return
	 * value is the result. Saves an indirect call per syscall.
	 */
	long (*fast_hook)(struct sysi_call *c);
	/*
	 * SYSI_FAST_* bits about fast_hook, set with it. SYSI_FAST_PASSTHROUGH: fast_hook is the
	 * built-in passthrough hook (it performs every call unchanged and records nothing), so an
	 * entry may make the system call itself, without building a struct sysi_call or calling
	 * anything, for every number but rt_sigaction, rt_sigprocmask, rt_sigreturn, clone, fork,
	 * vfork and clone3 (they need the runtime: signal claims, after-fork work, in-context),
	 * execve and execveat (libsysi gives each exec its hidden variables back and checks it).
	 * Saves the hooked path its pages of libsysi (a page walk each per call under PTI).
	 * SYSI_FAST_KEEPS_ARGS: fast_hook never writes c->nr or c->args (the built-in hooks, or a
	 * hook library with SYSI_HOOK_KEEPS_ARGS), so after it returns c->args still hold the
	 * program's argument registers: an entry may restore them from there.
	 */
	uint32_t fast_flags;
	/*
	 * Signals that arrive while sysi code runs for an instrumented call (appended in ABI 1: a
	 * runtime built against an older sysi.h never reads them). libsysi's master handles every
	 * signal the program catches, so that the program's handler sees the program's context at
	 * the site's return point, and its edits to the ucontext take effect:
	 * - watch_context(fn): fn(ucontext) is asked first; when the interrupted RIP is in the
	 *   runtime's own code at a point where every register is the program's (a `syscall` it makes
	 *   with them, e.g. a passthrough stub or gadget), fn rewrites RIP (and RSP) to the
	 *   program's view at the site's return point and returns 1; 2 when the RIP is runtime code
	 *   that leaves to the program without the release below (deliver there, do not defer);
	 *   3 when it is runtime code outside libsysi, the runtime's and the hook's libraries
	 *   (e.g. code it copied) whose way out passes the release: defer as below; 4 as 1, for a
	 *   call still to come that the hook has already seen (fn shows RIP at the site): when the
	 *   program's handler leaves the registers as it found them, its return resumes the
	 *   interrupted RIP (which makes the call) rather than the site (which would hook it
	 *   again); 5 as 1, when the RIP fn shows is the program's address of what the runtime
	 *   runs elsewhere (an instruction it relocated, or a call still to come that only its
	 *   copy makes hooked): when the program's handler returns with RIP as shown, the
	 *   interrupted context comes back with the handler's edits (each register it changed
	 *   keeps its value, the others take the interrupted ones); else 0.
	 * - Otherwise, when the RIP is sysi's code (libsysi, a runtime, the hook library), the master
	 *   defers the signal: re-queued to the thread with its siginfo and kept blocked, and the
	 *   thread's word at %fs:defer_tpoff becomes nonzero. An entry that finds it nonzero when it
	 *   is about to return to the program jumps to release instead, with every register the
	 *   program's, rsp = the program's rsp and rcx = the RIP to return to (the site's return
	 *   point): release restores the mask there, so the kernel delivers the signal in the
	 *   program's context, then continues at rcx. A trap strategy that finds defer_pending()
	 *   nonzero (the deferred signals, as a mask: bit sig - 1) returns through rt_sigreturn,
	 *   which does the same; those bits are blocked only on sysi's account, never in a mask it
	 *   reports or carries over as the program's.
	 */
	int (*watch_context)(int (*fn)(void *ucontext));
	long defer_tpoff;
	void (*release)(void);
	uint64_t (*defer_pending)(void);
	/*
	 * The count fast path (appended in ABI 2: a runtime built against an older sysi.h never
	 * reads them), for fast_flags SYSI_FAST_COUNT: fast_hook is the built-in count hook with a
	 * stats file, so an entry may count and make a call itself, without a struct sysi_call or
	 * a C call, for every number sysi_count_direct() accepts, and must leave the others to
	 * fast_hook (or dispatch). The fast path, with every register the program's:
	 *   s = *(%fs:slab_tpoff), this thread's slab (0: none yet: leave the call to fast_hook,
	 *       which claims one); [s + SYSI_SLAB_CALLS + 16 * nr] += 1 (calls) and
	 *       [s + strategy_off] += 1, each one plain `incq`; keep nr where a signal frame does
	 *       not reach; `syscall`; when the result is an error (-4095..-1 as unsigned compare),
	 *       s again from %fs (a fork child in a signal handler returns here with none) and
	 *       [s + SYSI_SLAB_CALLS + 16 * nr + 8] += 1, or without a slab `lock incq`
	 *       [totals + 16 * nr + 8]; then the defer check of watch_context, as after a hook.
	 *   A signal anywhere in it must be deferred (watch_context's 3, or the runtime's code in
	 *   a runtime .so), never rewritten to the site: the call counted before the `syscall`
	 *   would be counted again.
	 * count_fast(strategy, out) fills *out for this strategy; 0, or -1 when there is no count
	 * fast path (then fast_flags has no SYSI_FAST_COUNT either).
	 * count_watch(ret, skip, nr_off): the fast path's point right after its `syscall` is ret,
	 * with nr at [rsp + nr_off] there; skip: where it continues when it counts no error. The
	 * SIGPIPE watch (a failed write's SIGPIPE may kill the process before the entry counts
	 * the EPIPE) counts it itself there and moves the context to skip. 0, or -1 (table full).
	 */
	int (*count_fast)(uint32_t strategy, struct sysi_count_fast *out);
	int (*count_watch)(uintptr_t ret, uintptr_t skip, long nr_off);
};
#define SYSI_FAST_PASSTHROUGH 0x1u
#define SYSI_FAST_KEEPS_ARGS 0x2u
#define SYSI_FAST_COUNT 0x4u

/* sysi_runtime_api.count_fast: what a count fast path reads (the offsets: sysi-entry.h
 * SYSI_CF_*, for entries in assembly) */
struct sysi_count_fast {
	long slab_tpoff;   /* %fs:slab_tpoff: this thread's struct sysi_stats_slab *, or 0 */
	long strategy_off; /* the byte offset in a slab of this strategy's calls counter */
	uintptr_t totals;  /* the stats file's syscalls[0] (struct sysi_stats_syscall) */
};

/*
 * Under SYSI_FAST_COUNT: may an entry count and make call nr itself (1), or must it leave it
 * to fast_hook (0)? 0 for numbers sysi_passthrough_direct() refuses, for execve (59), exit
 * (60), prctl (157), exit_group (231), execveat (322), and for numbers above 1023 or negative.
 */
static inline int sysi_count_direct(unsigned long nr)
{
	switch (nr) {
	case 13: case 14: case 15: case 56: case 57: case 58: case 59: case 60: case 157:
	case 231: case 322: case 435:
		return 0;
	default:
		return nr <= 1023;
	}
}

/*
 * Under SYSI_FAST_PASSTHROUGH: may an entry make call nr itself (1), or must it go through the
 * runtime (0)? 0 for rt_sigaction (13), rt_sigprocmask (14), rt_sigreturn (15), clone (56),
 * fork (57), vfork (58), execve (59), execveat (322), clone3 (435) and for x32 or unknown
 * numbers (above 511).
 */
static inline int sysi_passthrough_direct(unsigned long nr)
{
	switch (nr) {
	case 13: case 14: case 15: case 56: case 57: case 58: case 59: case 322: case 435:
		return 0;
	default:
		return nr <= 511;
	}
}

struct sysi_strategy_ops {
	uint32_t abi_version; /* SYSI_ABI_VERSION */
	const char *name;     /* must equal the TypeScript strategy's name */
	/*
	 * Once per process, before any of this strategy's sites is patched. Returns 0, or a
	 * negative errno: then each of its sites falls to the site's next option in the plan.
	 */
	int (*init)(const struct sysi_runtime_api *api, uint32_t strategy_id);
	/*
	 * Per site, before libsysi writes the patch. Returns 0 to accept, non-zero to refuse (the
	 * site then falls to its next option). Must not write the site itself.
	 */
	int (*prepare_site)(const struct sysi_site *site);
	/*
	 * After all patches of a module batch are written, for a batch in which this runtime's
	 * prepare_site was called (so again after a dlopen that brought it sites, not otherwise).
	 */
	void (*ready)(void);
	/* A child process after fork (e.g. to reset per-process state); may be NULL. */
	void (*atfork_child)(void);
};

/* The symbol named by the TypeScript strategy's runtime.entry has this type. */
typedef const struct sysi_strategy_ops *(*sysi_strategy_entry_fn)(void);

/* ------------------------------------------------------------------ RUNTIME ENVIRONMENT */
/*
 * libsysi.so is loaded with LD_PRELOAD (first in the list). Its constructor reads:
 *   SYSI_PLAN_DIR    directory of binary plans for the active chain, one per module, named
 *                    "<modkey>.plan" (see MODULE KEY).
 *   SYSI_PLAN_SOCK   optional unix stream socket of the plan server (the running `sysi run`):
 *                    on a plan miss, or a plan it refuses (SYSI PLAN FORMAT: corrupt, stale,
 *                    untrusted), the runtime sends "PLAN <absolute module path>\n" and reads
 *                    one line: "OK\n" (the plan file now exists in SYSI_PLAN_DIR) or
 *                    "ERR <message>\n" / "NONE\n" (no plan: the module stays unpatched, counted).
 *   SYSI_RUNTIMES    comma list of "<abs path of strategy runtime .so>#<entry symbol>".
 *   SYSI_HOOK        "passthrough" | "count" | "trace" | absolute path of a hook .so |
 *                    "[static]/hook": a hook linked into a static program's runtime
 *                    (`sysi patch --hook HOOK.c`, docs/patch.md).
 *   SYSI_COUNT_TIME  "1": the count hook also measures each call's wall-clock time (the vDSO's
 *                    CLOCK_MONOTONIC before and after: ~2 clock reads per call), summed per
 *                    syscall in the stats file's nanos (`sysi run -w`). Unset: no clock read.
 *   SYSI_HOOK_LOW    "1": load a hook .so below 64 GiB, at a random page below a random span
 *                    of up to 32 GiB under that ceiling (2^23 positions), next to zpoline's
 *                    entries: their call to the hook is then near, not 2^37 bytes away or more
 *                    (~0.6-0.9 ns per call on Zen 5). The CLI sets it when a strategy whose
 *                    runtime has lowHook (zpoline) heads the chain and the caller's environment
 *                    does not already set it. Unset or "0": where dlopen puts it. While dlopen
 *                    runs, the address space above 64 GiB is reserved (PROT_NONE), so a program
 *                    that maps fixed addresses there at that moment (before main) would collide.
 *   SYSI_FILTER      optional comma list of syscall numbers that reach the hook (others are
 *                    performed directly).
 *   SYSI_STATS_FILE  optional path of the shared statistics file (see STATS FILE), created and
 *                    sized by `sysi run`; every process of the tree maps it MAP_SHARED. `sysi run`
 *                    names an unlinked file it holds open, /proc/<its pid>/fd/<n>: the program
 *                    cannot delete or replace it, nor can a cleaner of /tmp.
 *   SYSI_STATS_ID    optional "<st_dev>:<st_ino>" (decimal) of that file: a process that finds
 *                    another file at the path (it outlived sysi, whose pid was reused) does not
 *                    map it.
 *   SYSI_UNPATCHED_FILE  optional path of an existing file (created by `sysi run`) that gets
 *                    one line per module image whose system-call sites are not all patched,
 *                    appended with one write (O_APPEND) by whichever process loaded it:
 *                      "sites R F PATH"  R sites the plan gives no option (every strategy
 *                                        refused; SYSI_SITE_UNCERTAIN ones not counted), F
 *                                        sites whose every option failed at run time (fell
 *                                        through), in decimal; R + F > 0;
 *                      "noplan PATH"     no usable plan (none found, or corrupt): the whole
 *                                        module runs uninstrumented;
 *                      "exec KIND TID PATH"  an execve/execveat (seen by the runtime before the
 *                                        kernel) whose new image will not (or, go, must
 *                                        not) load libsysi, KIND one of setid, caps, static,
 *                                        foreign, go (escape.c says what each means), TID the
 *                                        calling thread, PATH the file's real path;
 *                      "execfail TID"    that thread's last exec line is void: the call came
 *                                        back (failed), nothing was executed.
 *                      "environ ERRNO"   the kernel refused to point this process image's
 *                                        /proc/PID/environ at the program's environment
 *                                        (prctl PR_SET_MM, env.c): it still shows sysi's
 *                                        variables; ERRNO in decimal.
 *                    PATH is the module's real path.
 *   SYSI_WATCH_EXEC  "1": no SYSI_FAST_PASSTHROUGH: under the built-in passthrough hook every
 *                    call goes through the hook, as under the others. Not needed for execs:
 *                    every strategy's passthrough path sends execve/execveat to the runtime
 *                    (sysi_passthrough_direct), which gives them sysi's hidden variables
 *                    back (SYSI_HIDE) and checks them (the exec lines above).
 *   SYSI_HIDE        optional comma list of the variables sysi set: libsysi's constructor copies
 *                    them (and SYSI_HIDE) privately, takes them and its LD_PRELOAD entry out of
 *                    the environment (in place), and adds them back to the environment of every
 *                    execve/execveat that reaches it, with LD_PRELOAD = libsysi[:the program's
 *                    value] (env.c). Unset: nothing is hidden.
 *   SYSI_PROGRAM_LD_PRELOAD  with SYSI_HIDE: the LD_PRELOAD the program sees (unset: none).
 *   SYSI_EXE_COPY, SYSI_EXE, SYSI_EXECFN  a static program's patched copy run by `sysi run`
 *                    (static/exe.c, read by the static runtime only): the copy's real path, the
 *                    original's real path and the path the caller gave. A readlink result naming
 *                    the copy names the original instead; AT_EXECFN, when the kernel's is the
 *                    copy's path, names SYSI_EXECFN.
 *   SYSI_UNPATCHED_ID  optional "<st_dev>:<st_ino>" of that file, as SYSI_STATS_ID.
 *   SYSI_TRACE_FD    "<fd>:<st_dev>:<st_ino>": trace hook output on that inherited fd (`sysi
 *                    run` places it above the program's soft RLIMIT_NOFILE where it can), if it
 *                    is still that file; "-1": no output. The fd does not exist for the program:
 *                    close, dup, fcntl and ioctl on it fail with EBADF, close_range skips it, and
 *                    a dup2/dup3 onto its number moves the trace to another fd first (processes
 *                    started after that find another file there and trace nothing). Takes
 *                    precedence over SYSI_TRACE_FILE.
 *   SYSI_TRACE_ONLY  optional comma list of syscall numbers: the trace hook writes lines for
 *                    these only (`sysi run -e` with the trace hook: SYSI_FILTER then also lets
 *                    through the calls that could close the trace's fd).
 *   SYSI_TRACE_FILE  trace hook output (opened O_WRONLY|O_APPEND|O_CREAT); default fd 2.
 *   SYSI_TRACE_JSON  "1": the trace hook writes JSON lines.
 *   SYSI_MARKER      "1": after setup, make one raw syscall number SYSI_MARKER_NR (returns
 *                    -ENOSYS) so strace-based tests see where instrumentation starts.
 *                    Its first argument says what it marks (other arguments 0):
 *                      SYSI_MARKER_START       this process image's instrumentation starts;
 *                      SYSI_MARKER_WORK_BEGIN  the runtime's own work begins on this thread
 *                                              (patching modules after dlopen: plan server,
 *                                              plan files, mprotect, strategy runtimes; the
 *                                              master signal handler's own calls): its raw
 *                                              syscalls are not the program's and never reach
 *                                              the hook;
 *                      SYSI_MARKER_WORK_END    that work ends (program syscalls follow);
 *                      SYSI_MARKER_TRAP_END    a trap strategy's handler resumes the program
 *                                              without rt_sigreturn: the signal frame of the
 *                                              trap it handled ends here (made only in
 *                                              marker mode);
 *                      SYSI_MARKER_WORK_DROP   in the frame of a signal that interrupted
 *                                              the runtime's work: that work ended where the
 *                                              signal came (a deferred signal released,
 *                                              signal.c), the frame returns to the program.
 *                      SYSI_MARKER_FAULT       first in the frame of a fault the runtime
 *                                              resolves (punning maps a trampoline page on
 *                                              first use): the frame is the runtime's.
 *                    A signal handler of the program that runs inside a bracket is the
 *                    program's again until its rt_sigreturn.
 *   SYSI_DEBUG       "1": diagnostics on fd 2.
 *   SYSI_UD2_SIGRETURN "1": the ud2 runtime ends every trap with rt_sigreturn, as the kernel
 *                    would, instead of restoring the interrupted context itself (its default
 *                    for complete calls: ~0.8 µs less per trap).
 */
#define SYSI_MARKER_NR 0x5157
#define SYSI_MARKER_START 0
#define SYSI_MARKER_WORK_BEGIN 1
#define SYSI_MARKER_WORK_END 2
#define SYSI_MARKER_TRAP_END 3
#define SYSI_MARKER_WORK_DROP 4 /* in a signal frame that interrupted runtime work: the work
				 * ended there (a deferred signal's release, signal.c); the
				 * frame's rt_sigreturn returns to the program's code */
#define SYSI_MARKER_FAULT 5 /* first in a runtime fault's frame: none of its calls are the program's */

/* ------------------------------------------------------------------ STATS FILE */
/*
 * SYSI_STATS_FILE names a file of exactly sizeof(struct sysi_stats_file) bytes, created
 * zero-filled (header set; sparse) by `sysi run` (packages/core/src/runtime/stats-file.ts). Every
 * process of the tree maps it MAP_SHARED, so the totals cover fork and execve: only the parts it
 * uses, each a mapping of its own (the header with the totals and owners, the x32 and i386
 * totals, and a slab when one of its threads claims it; stats.c): 56 KiB, and 28 KiB per slab
 * in use, added to a process's mapped size instead of the whole file's 7 MiB (mlockall checks it against
 * RLIMIT_MEMLOCK). libsysi writes the header itself when it finds the file all zero. Readers in other processes see a strategy
 * slot once its `state` is SYSI_STATS_SLOT_READY.
 *
 * The count hook (count.c) counts each thread's calls in a slab of its own, with plain
 * (non-atomic, single-instruction: signal-safe) increments: a thread claims a free slab at its
 * first counted call (owners[i].tid 0 -> its tid, compare-and-swap); at exit or exit_group the
 * thread adds its slab into the totals (atomic adds), zeroes it and frees it. Slabs of threads
 * that never ran that code (killed by another thread's exit_group, by a signal, or gone through
 * execve) stay owned: a READER ADDS EVERY SLAB WHOSE OWNER IS NOT 0 to the totals. A claimer
 * that finds no free slab takes over the slabs of dead threads (tgkill(pid, tid, 0) = ESRCH;
 * tid -1 while it merges them); a thread that finds none counts with atomic adds on the totals.
 * Everything else (other, x32, i386, strategy slots' calls from the trace hook, sigreturns, EPIPE
 * errors) is added atomically to the totals.
 */
#define SYSI_STATS_MAGIC "SYSISTA"     /* 8 bytes with the NUL */
#define SYSI_STATS_VERSION 4
#define SYSI_STATS_NSYSCALLS 1024      /* per-syscall slots for nr 0..1023 */
#define SYSI_STATS_NSTRATEGIES 16
#define SYSI_STATS_NAME_MAX 32         /* strategy name bytes, NUL included */
#define SYSI_STATS_SLOT_FREE 0
#define SYSI_STATS_SLOT_CLAIMED 1      /* a process is writing the name */
#define SYSI_STATS_SLOT_READY 2
#define SYSI_STATS_NSLABS 256         /* per-thread count slabs */
#define SYSI_STATS_NX32 1024          /* x32 slots: nr 0x40000000 + 0..1023 */
#define SYSI_STATS_NI386 512          /* i386 slots: `int $0x80` calls of nr 0..511 */

struct sysi_stats_syscall { /* 16 bytes */
	uint64_t calls;            /* calls that reached the count hook */
	uint64_t errors;           /* of those, results in [-4095, -1] */
};

struct sysi_stats_strategy { /* 80 bytes */
	uint32_t state;            /* SYSI_STATS_SLOT_* */
	uint32_t reserved;         /* 0 */
	char name[SYSI_STATS_NAME_MAX]; /* strategy name, NUL-terminated */
	uint64_t calls;            /* hooked calls through this strategy's sites, counted by the
				    * count and trace hooks (0 under passthrough and user hooks) */
	uint64_t patched;          /* sites patched with this strategy's option */
	uint64_t fell_through;     /* sites whose option of this strategy was refused at run time
				    * (strategy init failed, prepare_site refused, trampoline map failed) */
	uint64_t mismatched;       /* options skipped because memory differed from old_bytes */
	uint64_t reserved2;        /* 0 */
};

struct sysi_stats_slab_owner { /* 16 bytes */
	int32_t tid;               /* 0: free; -1: being merged; else the owning thread */
	int32_t pid;               /* its process (thread group) */
	uint64_t reserved;         /* 0 */
};

struct sysi_stats_slab { /* 28672 bytes (7 pages): one thread's counts, added to the totals */
	uint64_t strategy_calls[SYSI_STATS_NSTRATEGIES]; /* as strategies[i].calls */
	uint64_t reserved[16];     /* 0 */
	struct sysi_stats_syscall syscalls[SYSI_STATS_NSYSCALLS]; /* at 256 */
	uint64_t nanos[SYSI_STATS_NSYSCALLS]; /* at 16640 */
	uint8_t pad[3840];         /* 0 */
};

struct sysi_stats_file {
	char magic[8];             /* SYSI_STATS_MAGIC */
	uint32_t version;          /* SYSI_STATS_VERSION */
	uint32_t size;             /* sizeof(struct sysi_stats_file) == 7397376 */
	uint64_t processes;        /* process images set up by libsysi (one per exec) */
	uint64_t forks;            /* child processes that returned from fork/clone without CLONE_VM
				    * through the dispatcher */
	uint64_t modules_planned;  /* modules whose plan was applied */
	uint64_t modules_unplanned;/* modules without a plan (none in SYSI_PLAN_DIR nor from the server) */
	uint64_t plans_corrupt;    /* plan files rejected by validation (never applied) */
	uint64_t sites_unpatched;  /* planned sites left unpatched (every option refused/mismatched) */
	uint64_t reserved[2];      /* the trace hook's shared output words (trace-out.c): [0] the
				    * output lock's holder (int32 tid) and the tid whose line is
				    * open (int32); [1] calls with their entry part out; 0 else */
	struct sysi_stats_syscall other; /* syscalls with nr outside 0..1023 and no x32 slot */
	struct sysi_stats_syscall syscalls[SYSI_STATS_NSYSCALLS];
	struct sysi_stats_strategy strategies[SYSI_STATS_NSTRATEGIES];
	/* v2: */
	uint64_t nanos[SYSI_STATS_NSYSCALLS]; /* wall-clock ns inside the calls, per nr (count hook
					       * with SYSI_COUNT_TIME=1; 0 without) */
	uint64_t other_nanos;      /* the same for `other` */
	uint8_t pad[2712];         /* 0; owners start at 28672 */
	struct sysi_stats_slab_owner owners[SYSI_STATS_NSLABS];
	struct sysi_stats_slab slabs[SYSI_STATS_NSLABS]; /* at 32768 */
	/* v3: */
	struct sysi_stats_syscall x32[SYSI_STATS_NX32]; /* at 7372800: x32 calls 0x40000000 + i that
							 * strace names (its x32 table, "#64"
							 * names included); totals only */
	/* v4: */
	struct sysi_stats_syscall i386[SYSI_STATS_NI386]; /* at 7389184: `int $0x80` calls of the
							   * i386 numbers strace names (count hook,
							   * --complete's catch-all); totals only */
}; /* 7397376 bytes */

/* ------------------------------------------------------------------ MODULE KEY */
/*
 * A plan file is named after its module's key:
 *   - the lowercase hex NT_GNU_BUILD_ID, "-", and the module file's size in decimal bytes when
 *     the module has a build-id, e.g. "4f3a…9c-2125328" (a stripped copy shares the build-id
 *     but not the size, and gets its own plan);
 *   - else "p" + 16 lowercase hex digits of FNV-1a 64 (offset 0xcbf29ce484222325, prime
 *     0x100000001b3) over the bytes of  realpath + "\n" + st_size + "\n" + st_mtime  (decimal
 *     seconds), e.g. "p0123456789abcdef".
 */

/* ------------------------------------------------------------------ SYSI PLAN FORMAT */
/*
 * One plan file per module per strategy chain, written by packages/core/src/plan/binary.ts.
 * Layout: header, then the tables at the offsets it names (each 8-byte aligned), all within
 * file_size. Addresses are link-time vaddrs; the runtime adds the module's load bias.
 *
 * Integrity and identity (libsysi refuses the whole plan when any of these fails, and the CLI
 * plans the module again):
 *   - checksum: XXH64 (seed 0) of the bytes [24, file_size), i.e. everything after the
 *     checksum field; magic, version and header_size are checked by value;
 *   - the module: build-id (the key names it too), module_size (its file's st_size) and
 *     module_hash, XXH64 (seed 0) of the old_bytes of every option in table order (the first
 *     len bytes of each): the original bytes of every range the plan may patch, which the
 *     runtime hashes again from the module's memory before writing anything;
 *   - the plan file itself is a regular file owned by the process's effective user or root
 *     and not writable by group or others.
 */
#define SYSI_PLAN_MAGIC "SYSIPLN" /* 8 bytes with the NUL */
#define SYSI_PLAN_VERSION 2

struct sysi_plan_header {
	char magic[8];             /* SYSI_PLAN_MAGIC */
	uint32_t version;          /* SYSI_PLAN_VERSION */
	uint32_t header_size;      /* sizeof(struct sysi_plan_header) == 176 */
	uint64_t checksum;         /* XXH64 (seed 0) of bytes [24, file_size) */
	uint64_t file_size;        /* total bytes of the plan file */
	uint32_t nstrategies;      /* entries of struct sysi_plan_strategy */
	uint32_t nsites;           /* entries of struct sysi_plan_site, sorted by vaddr */
	uint32_t noptions;         /* entries of struct sysi_plan_option */
	uint32_t ntrampolines;     /* entries of struct sysi_plan_tramp */
	uint64_t strategies_off;   /* file offsets of the tables */
	uint64_t sites_off;
	uint64_t options_off;
	uint64_t tramps_off;
	uint64_t strings_off;      /* NUL-terminated strings, referenced by offset */
	uint64_t strings_size;
	uint64_t blob_off;         /* trampoline code bytes */
	uint64_t blob_size;
	uint32_t build_id_len;     /* 0 when the module has no NT_GNU_BUILD_ID */
	uint32_t module_path;      /* string offset: the module's path when planned */
	uint8_t build_id[32];      /* first build_id_len bytes valid */
	uint32_t chain;            /* string offset: the chain, e.g. "zpoline,ud2" */
	uint32_t reserved;         /* 0 */
	uint64_t module_size;      /* the module file's size in bytes when planned */
	uint64_t module_hash;      /* XXH64 (seed 0) of every option's old_bytes, in table order */
};

struct sysi_plan_strategy {
	uint32_t name;             /* string offset */
	uint32_t reserved;         /* 0 */
};

#define SYSI_SITE_UNCERTAIN 0x1u /* never set on patched sites; reserved */
#define SYSI_SITE_STRADDLES 0x2u /* the instruction crosses a page boundary */

struct sysi_plan_site { /* 24 bytes */
	uint64_t vaddr;            /* the syscall instruction */
	int32_t nr;                /* syscall number when known statically, else -1 */
	uint32_t flags;            /* SYSI_SITE_* */
	uint32_t first_option;     /* index into the option table */
	uint32_t noptions;         /* options in chain order; the runtime takes the first that works */
};

struct sysi_plan_option { /* 64 bytes */
	uint32_t strategy;         /* index into the strategy table */
	uint8_t len;               /* patch length, 1..16 */
	uint8_t reserved[3];       /* 0 */
	uint64_t vaddr;            /* start of the patch */
	uint8_t old_bytes[16];     /* expected bytes (first len valid); mismatch = skip, never write */
	uint8_t new_bytes[16];     /* bytes written */
	uint64_t aux[2];           /* strategy-defined */
};

struct sysi_plan_tramp { /* 32 bytes */
	uint64_t vaddr;            /* where the code must be mapped (0 = anywhere) */
	uint64_t blob_off;         /* offset of its code within the blob */
	uint64_t size;             /* bytes of code */
	uint32_t strategy;         /* owner, index into the strategy table */
	uint32_t kind;             /* string offset: strategy-defined kind */
};

#ifdef __cplusplus
}
#endif
#endif
