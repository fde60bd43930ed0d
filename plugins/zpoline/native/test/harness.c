/*
 * harness.c — unit harness of the zpoline runtime without libsysi: a fake runtime API whose
 * dispatcher (harness-dispatch.c) performs calls with an unpatched syscall, the built
 * libsysi-zpoline.so loaded with dlopen, and this program's own sites (harness-sites.S)
 * patched to `ff d0` at run time.
 *
 *   harness [SO]          run the checks; prints "ok <name>" / "FAIL <name>", exits with the
 *                         number of failures, or 77 when page 0 cannot be mapped.
 *   harness bench [SO]    ns per call through the entry with a self-answering dispatcher
 *                         (ZH_EMPTY=1: a dispatcher that does nothing; ZH_SLOTRET=1: every
 *                         landing slot is a `ret`, i.e. the cost of page 0's jump alone).
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

long zh_raw6(long nr, long a, long b, long c, long d, long e, long f);
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
	return zh_raw6(nr, a, b, c, d, e, f);
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

static const struct sysi_runtime_api api_dispatching = {
	.abi_version = SYSI_ABI_VERSION,
	.dispatch = zh_dispatch,
	.syscall6 = api_syscall6,
	.die = api_die,
	.debug = api_debug,
	.getenv = api_getenv,
	.claim_signal = api_claim_signal,
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
		if (p[0] != 0x0f || p[1] != 0x05 || ops->prepare_site(&s)) {
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

static int run_checks(const char *so)
{
	const struct sysi_strategy_ops *ops = load(so, &api_dispatching);
	patch(ops);
	printf("# %s\n", debug_buf);

	/* basic call */
	long c0 = zh_count;
	check(zh_sys6(SYS_getpid, 0, 0, 0, 0, 0, 0) == getpid() && zh_count == c0 + 1, "getpid-through-entry");
	check(zh_sys6(SYS_getppid, 0, 0, 0, 0, 0, 0) == getppid(), "getppid-through-entry");
	/* every entry offset decodes to the entry with rax intact */
	zh_fake = 1;
	int bad = 0;
	for (long nr = 0; nr <= 4091; nr++)
		if (zh_sys6(nr, 0, 0, 0, 0, 0, 0) != nr + 1000)
			bad++;
	zh_fake = 0;
	check(bad == 0, "every-nr-0..4091-reaches-the-dispatcher");
	check(zh_sys6(1000, 0, 0, 0, 0, 0, 0) == -38, "invalid-nr-enosys");
	check(zh_sys6(100000, 0, 0, 0, 0, 0, 0) == -38, "nr-100000-outside-page0-enosys");
	check(zh_sys6(-1, 0, 0, 0, 0, 0, 0) == -38, "nr-minus-1-enosys");
	long x32 = zh_sys6(0x40000000 | 39, 0, 0, 0, 0, 0, 0);
	check(x32 == -38 || x32 == getpid(), "x32-nr-as-the-kernel-answers");
	/* registers and the red zone */
	long m = zh_regs(SYS_getpid);
	if (m)
		printf("# changed mask %#lx\n", m);
	check(m == 0, "registers-and-red-zone-preserved");
	/* rt_sigreturn through a patched restorer */
	struct { void *h; unsigned long flags; void *restorer; uint64_t mask; } ksa = {
		(void *)on_usr1, SA_SIGINFO | 0x04000000 /* SA_RESTORER */, (void *)zh_restorer, 0 };
	zh_raw6(SYS_rt_sigaction, SIGUSR1, (long)&ksa, 0, 8, 0, 0);
	zh_raw6(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1, 0, 0, 0);
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
		zh_raw6(SYS_exit, 7, 0, 0, 0, 0, 0);
	}
	st = 0;
	waitpid((pid_t)pid, &st, 0);
	check(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 7, "vfork-child-clobbers-stack");
	/* vfork twice in a row (the TLS return stack is balanced) */
	for (int i = 0; i < 3; i++) {
		pid = zh_vfork();
		if (pid == 0)
			zh_raw6(SYS_exit, i, 0, 0, 0, 0, 0);
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
	const struct sysi_strategy_ops *ops = load(so, getenv("ZH_EMPTY") ? &api_empty : &api_dispatching);
	patch(ops);
	printf("# %s\n", debug_buf);
	static const long nrs[] = { 39, 110, 229, 232 };
	if (getenv("ZH_SLOTRET")) {	/* experiment: every landing slot is a `ret` */
		uint8_t *l = (uint8_t *)0x40404000;
		mprotect(l, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
		for (int k = 0; k < 104; k++)
			l[0x45 + 5 * k] = 0xc3;
		mprotect(l, 4096, PROT_READ | PROT_EXEC);
	}
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
	if (argc > 1 && !strcmp(argv[1], "bench"))
		return run_bench(argc > 2 ? argv[2] : so);
	return run_checks(argc > 1 ? argv[1] : so) ? 1 : 0;
}
