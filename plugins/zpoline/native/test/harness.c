/*
 * harness.c — unit harness of the zpoline runtime without libsysi: a fake runtime API whose
 * dispatcher (harness-dispatch.c) performs calls with an unpatched syscall, the built
 * libsysi-zpoline.so loaded with dlopen, and this program's own sites (harness-sites.S)
 * patched to `ff d0` at run time.
 *
 *   harness [SO]          run the checks; prints "ok <name>" / "FAIL <name>", exits with the
 *                         number of failures, or 77 when page 0 cannot be mapped.
 *   harness fast [SO]     the same checks with api->fast_hook set (zh_fast: rewrites c->args and
 *                         clobbers the caller-saved registers), plus the fast path's own: which
 *                         numbers reach the hook directly and what it sees in struct sysi_call.
 *   harness keep [SO]     the same checks with SYSI_FAST_KEEPS_ARGS and a fast hook that keeps
 *                         c->args (but clobbers the registers): the entry restores the
 *                         argument registers from c->args.
 *   harness keep-lies [SO] SYSI_FAST_KEEPS_ARGS with the rewriting hook: the rewritten values
 *                         reach the program's registers (registers-and-red-zone-preserved
 *                         FAILs), which shows the flag selects the entry without a save area.
 *   harness direct [SO]   the same checks with SYSI_FAST_PASSTHROUGH as well: the entry makes
 *                         the syscalls itself but for the numbers the runtime works on.
 *   harness bench [SO]    ns per call through the entry with a self-answering dispatcher
 *                         (ZH_EMPTY=1: a dispatcher that does nothing; ZH_KEEP=1: the fast
 *                         hook of `harness keep`, answering itself).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "sysi.h"

long sysi_raw6(long nr, long a, long b, long c, long d, long e, long f); /* syscall.S */
long zh_sys6(long nr, long a, long b, long c, long d, long e, long f);
long zh_regs(long nr);
long zh_vfork(void);
long zh_clone(long flags, void *stack, long (*fn)(long), long arg);
long zh_clone3(void *args, unsigned long size, long (*fn)(long), long arg);
void zh_restorer(void);
void zh_loop(long nr, long n);
void zh_floor_loop(void (*fn)(void), long n);
void zh_ret(void);
extern const uintptr_t zh_sites[];
extern volatile long zh_count, zh_last_nr;
extern volatile int zh_fake;
int zh_dispatch(struct sysi_call *c);
int zh_empty(struct sysi_call *c);
long zh_fast(struct sysi_call *c);
extern int zh_keep_args;
extern volatile long zh_fast_count;
extern struct sysi_call zh_fast_last;

static int failures;
static char debug_buf[256];

static void check(int ok, const char *name)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", name);
	fflush(stdout);
	if (!ok)
		failures++;
}

static long api_syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
	return sysi_raw6(nr, a, b, c, d, e, f);
}

static void api_die(const char *msg)
{
	fprintf(stderr, "sysi: error: %s\n", msg);
	exit(127);
}

static void api_debug(const char *msg)
{
	snprintf(debug_buf, sizeof debug_buf, "%s", msg);
	if (getenv("SYSI_DEBUG"))
		fprintf(stderr, "sysi: %s\n", msg);
}

static const char *api_getenv(const char *n)
{
	return getenv(n);
}

/* a minimal claim_signal: one SIGSEGV handler, program handlers are not chained */
static int (*claimed)(int, void *, void *);

static void on_claimed(int sig, siginfo_t *si, void *uc)
{
	if (!claimed(sig, si, uc)) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
}

static int api_claim_signal(int sig, int (*fn)(int, void *, void *))
{
	struct sigaction sa = { .sa_sigaction = on_claimed, .sa_flags = SA_SIGINFO | SA_NODEFER };
	claimed = fn;
	return sigaction(sig, &sa, 0) ? -1 : 0;
}

static int (*dispatch_fn)(struct sysi_call *) = zh_dispatch;

/* watch_context: the harness delivers no signal in zpoline's code, so nothing to ask */
static int api_watch_context(int (*fn)(void *ucontext))
{
	(void)fn;
	return 0;
}

long zh_defer_tpoff(void);       /* harness-dispatch.c */
void sysi_release(void);          /* syscall.S: the exit taken when a signal was deferred */

static struct sysi_runtime_api api_dispatching = {
	.abi_version = SYSI_ABI_VERSION,
	.dispatch = zh_dispatch,
	.syscall6 = api_syscall6,
	.die = api_die,
	.debug = api_debug,
	.getenv = api_getenv,
	.claim_signal = api_claim_signal,
	.watch_context = api_watch_context,
	.release = sysi_release,
};

static const struct sysi_strategy_ops *load(const char *so, const struct sysi_runtime_api *api)
{
	void *h = dlopen(so, RTLD_NOW);
	if (!h) {
		fprintf(stderr, "harness: %s\n", dlerror());
		exit(2);
	}
	sysi_strategy_entry_fn entry = (sysi_strategy_entry_fn)dlsym(h, "sysi_zpoline_entry");
	const struct sysi_strategy_ops *ops = entry();
	int r = ops->init(api, 3);
	if (r) {
		printf("skip: init returned %d (page 0 not mappable?)\n", r);
		exit(77);
	}
	return ops;
}

static void patch(const struct sysi_strategy_ops *ops)
{
	for (int i = 0; zh_sites[i]; i++) {
		uint8_t *p = (uint8_t *)zh_sites[i];
		uintptr_t pg = (uintptr_t)p & ~4095ul;
		struct sysi_site s = { .addr = (uintptr_t)p, .patch_addr = (uintptr_t)p, .patch_len = 2,
				       .nr = -1, .strategy = 3 };
		if (p[0] != 0x0f || p[1] != 0x05) {
			fprintf(stderr, "harness: site %d is not a syscall\n", i);
			exit(2);
		}
		if (ops->prepare_site(&s)) {
			if (i == 0) {	/* the runtime maps page 0 for its first site */
				printf("skip: prepare_site refused the first site (page 0 not mappable?)\n");
				exit(77);
			}
			fprintf(stderr, "harness: cannot patch site %d\n", i);
			exit(2);
		}
		mprotect((void *)pg, 8192, PROT_READ | PROT_WRITE | PROT_EXEC);
		p[0] = 0xff;
		p[1] = 0xd0;
		mprotect((void *)pg, 8192, PROT_READ | PROT_EXEC);
	}
}

static volatile long child_flag;
static char child_stack[65536] __attribute__((aligned(16)));

static long child_fn(long arg)
{
	child_flag = arg;
	return 0;
}

static void clobber_stack(int depth)
{
	volatile char buf[512];
	memset((char *)buf, 0xee, sizeof buf);
	if (depth)
		clobber_stack(depth - 1);
}

static volatile int sig_count;
static volatile uintptr_t segv_addr = 1;
static volatile int segv_code;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)si; (void)uc;
	sig_count++;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	segv_addr = (uintptr_t)si->si_addr;
	segv_code = si->si_code;
	_exit(42);
}

/* a child calls fp(); returns the wait status; with_handler: exit 42 from a SIGSEGV handler */
static int call_in_child(void (*volatile fp)(void), int with_handler, uintptr_t *addr)
{
	int fd[2];
	if (pipe(fd))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		if (with_handler) {
			struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
			sigaction(SIGSEGV, &sa, 0);
			dup2(fd[1], 100);
		}
		fp();
		_exit(0);
	}
	close(fd[1]);
	close(fd[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	(void)addr;
	return st;
}

static void on_segv_report(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	uintptr_t a = (uintptr_t)si->si_addr;
	_exit(a == 0 ? 42 : 43);
}

struct clone_args_v0 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

/* May number nr be in-context (sysi.h: the fast hook never sees these)? */
static int maybe_incontext(long nr)
{
	return nr == SYS_rt_sigreturn || nr == SYS_clone || nr == SYS_vfork || nr == SYS_clone3;
}

/* The fast path's own checks (api->fast_hook = zh_fast). */
static void fast_checks(void)
{
	long c0 = zh_count, f0 = zh_fast_count;
	long r = zh_sys6(SYS_getpid, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66);
	check(r == getpid() && zh_fast_count == f0 + 1 && zh_count == c0, "fast-getpid-skips-dispatcher");
	check(zh_fast_last.nr == SYS_getpid && zh_fast_last.args[0] == 0x11 &&
	      zh_fast_last.args[1] == 0x22 && zh_fast_last.args[2] == 0x33 &&
	      zh_fast_last.args[3] == 0x44 && zh_fast_last.args[4] == 0x55 &&
	      zh_fast_last.args[5] == 0x66 && zh_fast_last.site == zh_sites[0] &&
	      zh_fast_last.strategy == 3 && zh_fast_last.flags == 0,
	      "fast-hook-sees-nr-args-site-strategy-flags");
	/* every number: the fast hook (nr + 2000) or the dispatcher (nr + 1000), never the fast
	 * hook for an in-context number; the common ones all take the fast path */
	int bad = 0, fast = 0;
	zh_fake = 1;
	for (long nr = 0; nr <= 4095; nr++) {
		long v = zh_sys6(nr, 0, 0, 0, 0, 0, 0);
		if (v == nr + 2000 && !maybe_incontext(nr))
			fast++;
		else if (v != nr + 1000)
			bad++;
	}
	long common[] = { SYS_read, SYS_write, SYS_getpid, SYS_getppid, SYS_futex, 229, 232, 334 };
	for (unsigned i = 0; i < sizeof common / sizeof common[0]; i++)
		if (zh_sys6(common[i], 0, 0, 0, 0, 0, 0) != common[i] + 2000)
			bad++;
	zh_fake = 0;
	printf("# fast path for %d of the numbers 0..4095\n", fast);
	check(bad == 0 && fast >= 480, "fast-path-for-every-number-but-in-context-slots");
}

/* SYSI_FAST_PASSTHROUGH: the entry makes the syscall itself (neither zh_fast nor zh_dispatch) */
static void direct_checks(void)
{
	static const long nrs[] = { SYS_getpid, SYS_getppid, SYS_getuid, SYS_getgid, SYS_geteuid,
				    SYS_getegid, SYS_gettid, SYS_getpgrp, SYS_sched_yield };
	long c0 = zh_count, f0 = zh_fast_count;
	int bad = 0;
	for (unsigned i = 0; i < sizeof nrs / sizeof nrs[0]; i++)
		if (zh_sys6(nrs[i], 0, 0, 0, 0, 0, 0) != syscall(nrs[i]))
			bad++;
	for (long nr = 1000; nr <= 4095; nr += 13)	/* invalid: hlt, the SIGSEGV claim, the general blob */
		if (zh_sys6(nr, 0, 0, 0, 0, 0, 0) != -38)
			bad++;
	check(bad == 0 && zh_fast_count == f0 && zh_count == c0, "direct-syscalls-skip-hook-and-dispatcher");
	uint64_t old = 0;
	long r = zh_sys6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&old, 8, 0, 0);
	check(r == 0 && zh_fast_count == f0 + 1 && zh_fast_last.nr == SYS_rt_sigprocmask,
	      "rt_sigprocmask-still-reaches-the-hook");
}

/* 5000 more (fake) sites: the set grows several times, republished while sites run */
static void grow_set(const struct sysi_strategy_ops *ops)
{
	int bad = 0;
	for (long i = 0; i < 5000; i++) {
		struct sysi_site s = { .addr = 0x10000000 + 6 * (uintptr_t)i, .patch_len = 2, .nr = -1,
				       .strategy = 3 };
		s.patch_addr = s.addr;
		bad += ops->prepare_site(&s) != 0;
		if (i % 1000 == 0)
			bad += zh_sys6(SYS_getppid, 0, 0, 0, 0, 0, 0) != getppid();
	}
	check(bad == 0, "site-set-grows-to-5000-sites");
}

static int run_checks(const char *so, const struct sysi_runtime_api *api)
{
	const struct sysi_strategy_ops *ops = load(so, api);
	patch(ops);
	printf("# %s\n", debug_buf);
	grow_set(ops);
	if (api->fast_flags & SYSI_FAST_PASSTHROUGH)
		direct_checks();
	else if (api->fast_hook)
		fast_checks();

	/* basic call (through the fast hook, the dispatcher, or made by the entry itself) */
	long c0 = zh_count + zh_fast_count;
	long seen = api->fast_flags & SYSI_FAST_PASSTHROUGH ? 0 : 1;	/* direct: no hook */
	check(zh_sys6(SYS_getpid, 0, 0, 0, 0, 0, 0) == getpid() && zh_count + zh_fast_count == c0 + seen,
	      "getpid-through-entry");
	check(zh_sys6(SYS_getppid, 0, 0, 0, 0, 0, 0) == getppid(), "getppid-through-entry");
	/* every entry offset decodes to the entry with rax intact (fast_checks for the fast path) */
	int bad = 0;
	if (!api->fast_hook) {
		zh_fake = 1;
		for (long nr = 0; nr <= 4095; nr++)
			if (zh_sys6(nr, 0, 0, 0, 0, 0, 0) != nr + 1000)
				bad++;
		zh_fake = 0;
		check(bad == 0, "every-nr-0..4095-reaches-the-dispatcher");
	}
	check(zh_sys6(1000, 0, 0, 0, 0, 0, 0) == -38, "invalid-nr-enosys");
	check(zh_sys6(100000, 0, 0, 0, 0, 0, 0) == -38, "nr-100000-outside-page0-enosys");
	check(zh_sys6(-1, 0, 0, 0, 0, 0, 0) == -38, "nr-minus-1-enosys");
	long x32 = zh_sys6(0x40000000 | 39, 0, 0, 0, 0, 0, 0);
	check(x32 == sysi_raw6(0x40000000 | 39, 0, 0, 0, 0, 0, 0), "x32-nr-as-the-kernel-answers");
	/* every number the kernel reads as its low 32 bits, as natively (zpoline.h, zp_segv) */
	static const long odd[] = { 4092, 4093, 4094, 4095, 4096, 0x7fffffff, (long)0x80000000,
				    -2, -4096, (long)INT32_MIN, 0x40000000, 0x40000200, 0x80000027,
				    0x40404000, (1L << 32) | 1000, (long)(1UL << 63) | 9999 };
	bad = 0;
	for (unsigned i = 0; i < sizeof odd / sizeof odd[0]; i++)
		if (zh_sys6(odd[i], 0, 0, 0, 0, 0, 0) != sysi_raw6(odd[i], 0, 0, 0, 0, 0, 0))
			bad++;
	check(bad == 0, "out-of-range-nrs-enosys-as-natively");
	check(zh_sys6((1L << 32) | SYS_getpid, 0, 0, 0, 0, 0, 0) == getpid(),
	      "high-bits-nr-runs-low-32-getpid");
	check(zh_sys6((long)(1UL << 63) | SYS_getppid, 0, 0, 0, 0, 0, 0) == getppid(),
	      "bit-63-nr-runs-low-32-getppid");
	/* the hook sees the number the kernel runs (the fake answers nr + 1000 or nr + 2000) */
	zh_fake = 1;
	long fr = zh_sys6((1L << 32) | SYS_getppid, 0, 0, 0, 0, 0, 0);
	long sr = zh_sys6(4095, 0, 0, 0, 0, 0, 0);
	zh_fake = 0;
	check(api->fast_flags & SYSI_FAST_PASSTHROUGH ? fr == getppid() && sr == -38
	      : (fr == SYS_getppid + 1000 || fr == SYS_getppid + 2000) && (sr == 5095 || sr == 6095),
	      "hook-sees-the-low-32-bits-as-int");
	/* registers and the red zone */
	long m = zh_regs(SYS_getpid);
	if (m)
		printf("# changed mask %#lx\n", m);
	check(m == 0, "registers-and-red-zone-preserved");
	/* rt_sigreturn through a patched restorer */
	struct { void *h; unsigned long flags; void *restorer; uint64_t mask; } ksa = {
		(void *)on_usr1, SA_SIGINFO | 0x04000000 /* SA_RESTORER */, (void *)zh_restorer, 0 };
	sysi_raw6(SYS_rt_sigaction, SIGUSR1, (long)&ksa, 0, 8, 0, 0);
	sysi_raw6(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1, 0, 0, 0);
	check(sig_count == 1 && zh_last_nr == 15, "rt_sigreturn-through-patched-restorer");
	check(zh_regs(SYS_getpid) == 0, "registers-after-sigreturn");
	/* clone with a new stack */
	child_flag = 0;
	long pid = zh_clone(CLONE_VM | SIGCHLD, child_stack + sizeof child_stack, child_fn, 7);
	int st = 0;
	waitpid((pid_t)pid, &st, 0);
	check(pid > 0 && child_flag == 7 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "clone-new-stack");
	/* clone3 with a new stack */
	child_flag = 0;
	struct clone_args_v0 ca = { .flags = CLONE_VM, .exit_signal = SIGCHLD,
				    .stack = (uintptr_t)child_stack, .stack_size = sizeof child_stack };
	pid = zh_clone3(&ca, sizeof ca, child_fn, 9);
	st = 0;
	waitpid((pid_t)pid, &st, 0);
	check(pid > 0 && child_flag == 9 && WIFEXITED(st) && ca.stack_size == sizeof child_stack,
	      "clone3-new-stack");
	/* clone3 without a stack (fork-like) */
	struct clone_args_v0 cf = { .exit_signal = SIGCHLD };
	pid = zh_clone3(&cf, sizeof cf, child_fn, 0);
	if (pid == 0)
		_exit(5);	/* not reached: the child runs child_fn on its copy of our stack */
	st = 0;
	waitpid((pid_t)pid, &st, 0);
	check(pid > 0 && WIFEXITED(st), "clone3-fork-like");
	/* vfork: the child clobbers the stack below the parent's rsp, then exits */
	pid = zh_vfork();
	if (pid == 0) {
		clobber_stack(8);
		sysi_raw6(SYS_exit, 7, 0, 0, 0, 0, 0);
	}
	st = 0;
	waitpid((pid_t)pid, &st, 0);
	check(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 7, "vfork-child-clobbers-stack");
	/* vfork twice in a row (the TLS return stack is balanced) */
	bad = 0;
	for (int i = 0; i < 3; i++) {
		pid = zh_vfork();
		if (pid == 0)
			sysi_raw6(SYS_exit, i, 0, 0, 0, 0, 0);
		waitpid((pid_t)pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != i)
			bad++;
	}
	check(bad == 0, "vfork-repeated");
	/* a NULL function-pointer call dies with SIGSEGV, si_addr 0 */
	st = call_in_child((void (*)(void))0, 0, 0);
	check(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "null-call-dies-sigsegv");
	{
		pid_t p = fork();
		if (p == 0) {
			struct sigaction sa = { .sa_sigaction = on_segv_report, .sa_flags = SA_SIGINFO };
			sigaction(SIGSEGV, &sa, 0);
			void (*volatile fp)(void) = 0;
			fp();
			_exit(0);
		}
		waitpid(p, &st, 0);
		check(WIFEXITED(st) && WEXITSTATUS(st) == 42, "null-call-si-addr-0");
	}
	st = call_in_child((void (*)(void))(uintptr_t)39, 0, 0);
	check(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "call-to-page0-offset-39-dies-sigsegv");
	(void)on_segv;
	(void)segv_addr;
	(void)segv_code;
	(void)dispatch_fn;
	return failures;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* the floor: an indirect call of a C function through a pointer, like the dispatcher call */
static int (*volatile floor_fn)(struct sysi_call *) = zh_empty;

static int run_bench(const char *so)
{
	static struct sysi_runtime_api api_empty;
	api_empty = api_dispatching;
	api_empty.dispatch = zh_empty;
	if (getenv("ZH_KEEP")) {	/* the fast path of a hook that keeps c->args (fastk blob) */
		api_empty.fast_hook = zh_fast;
		api_empty.fast_flags = SYSI_FAST_KEEPS_ARGS;
		zh_keep_args = 1;
	}
	const struct sysi_strategy_ops *ops =
		load(so, getenv("ZH_EMPTY") || getenv("ZH_KEEP") ? &api_empty : &api_dispatching);
	patch(ops);
	printf("# %s\n", debug_buf);
	static const long nrs[] = { 39, 110, 229, 232 };
	const long n = 2000000;
	double best[5] = { 1e9, 1e9, 1e9, 1e9, 1e9 };
	struct sysi_call c = { 0 };
	zh_fake = 1;
	for (int round = 0; round < 9; round++) {
		for (int k = 0; k < 5; k++) {
			double t0 = now_ns();
			if (k == 4)
				zh_floor_loop(zh_ret, n);
			else
				zh_loop(nrs[k], n);
			double ns = (now_ns() - t0) / n;
			if (ns < best[k])
				best[k] = ns;
		}
	}
	zh_fake = 0;
	for (int k = 0; k < 4; k++)
		printf("entry+fake-dispatch nr %ld: %.2f ns/call (min of 9 x %ld)\n", nrs[k], best[k], n);
	printf("floor (call *%%rax + ret): %.2f ns/call\n", best[4]);
	(void)floor_fn;
	(void)c;
	return 0;
}

int main(int argc, char **argv)
{
	const char *so = "build/libsysi-zpoline.so";
	api_dispatching.defer_tpoff = zh_defer_tpoff();
	if (argc > 1 && !strcmp(argv[1], "bench"))
		return run_bench(argc > 2 ? argv[2] : so);
	if (argc > 1 && !strcmp(argv[1], "fast")) {
		static struct sysi_runtime_api api_fast;
		api_fast = api_dispatching;
		api_fast.fast_hook = zh_fast;
		return run_checks(argc > 2 ? argv[2] : so, &api_fast) ? 1 : 0;
	}
	if (argc > 1 && (!strcmp(argv[1], "keep") || !strcmp(argv[1], "keep-lies"))) {
		static struct sysi_runtime_api api_keep;
		api_keep = api_dispatching;
		api_keep.fast_hook = zh_fast;
		api_keep.fast_flags = SYSI_FAST_KEEPS_ARGS;
		zh_keep_args = !strcmp(argv[1], "keep");
		return run_checks(argc > 2 ? argv[2] : so, &api_keep) ? 1 : 0;
	}
	if (argc > 1 && !strcmp(argv[1], "direct")) {
		static struct sysi_runtime_api api_direct;
		api_direct = api_dispatching;
		api_direct.fast_hook = zh_fast;
		api_direct.fast_flags = SYSI_FAST_PASSTHROUGH;
		return run_checks(argc > 2 ? argv[2] : so, &api_direct) ? 1 : 0;
	}
	return run_checks(argc > 1 ? argv[1] : so, &api_dispatching) ? 1 : 0;
}
