/*
 * sud.c — `sysi run --complete` (SYSI_COMPLETE=1): Syscall User Dispatch as the catch-all for
 * every system call no patch sends to the hook (JIT code, sites every strategy refused, modules
 * without a plan, the vDSO's fallbacks). docs/complete.md has the design and its limits.
 *
 * The kernel allows one contiguous region per thread plus a selector byte. The region is
 * libsysi's executable segment: every system call sysi makes for the program or for itself goes
 * through sysi_raw6, sysi_restorer or sysi_release, all in it. The selector (per thread, TLS)
 * blocks everywhere else: a `syscall` outside libsysi raises SIGSYS (si_code SYS_USER_DISPATCH),
 * which the master hands to sud_trap, which dispatches it like a patched site's call (strategy
 * "catch-all", counted and hookable) and resumes after it. Calls only a strategy's own stub can
 * make in the site's context (clone with a new stack, clone3, vfork, rt_sigreturn: the dispatcher
 * returns 1) run with the selector ALLOW, and the thread's next hooked call blocks again; with
 * SYSI_FAST_PASSTHROUGH off no strategy makes any other call outside libsysi.
 *
 * SUD is per thread and not inherited by fork or clone: a thread is armed at its first hooked
 * call (sysi_sud_enter), a fork child right after the fork, a new image by this constructor.
 */
#define _GNU_SOURCE /* REG_*, dl_iterate_phdr */
#include <asm/unistd.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <ucontext.h>
#include "sud.h"

#define PR_SET_SYSCALL_USER_DISPATCH_ 59
#define PR_SYS_DISPATCH_OFF_ 0
#define PR_SYS_DISPATCH_ON_ 1
#define SYS_USER_DISPATCH_ 2         /* si_code of a SUD SIGSYS */
#define AUDIT_ARCH_X86_64_ 0xc000003eU
#define CLONE_VM_ 0x100UL

__thread struct sysi_sud_tls sysi_sud_tls __attribute__((tls_model("initial-exec")));
int sysi_sud_on;
static int prog_any;           /* some thread armed SUD of its own: check before every hook call */
static uintptr_t region_lo, region_len;
static sysi_hook_fn fast_real; /* the fast hook sysi_sud_fast stands in front of */
static uint32_t sud_id;        /* the catch-all's strategy id (a pseudo runtime in sysi_rts) */
static int int80_slot = -1;    /* stats slot "missed:int80" */

long sysi_sud_int80(const void *gregs); /* int80.S */
long sysi_trace_int80_make(void *gregs); /* trace.c: the call made, with its trace line */

void sysi_sud_arm_thread(void)
{
	struct sysi_sud_tls *t = &sysi_sud_tls;
	long r;
	if (t->armed == 2 || !region_len)
		return;
	t->sel = SYSI_SUD_BLOCK;
	sysi_runtime_work(1);
	r = raw6(__NR_prctl, PR_SET_SYSCALL_USER_DISPATCH_, PR_SYS_DISPATCH_ON_, region_lo, region_len,
		 &t->sel, 0);
	sysi_runtime_work(0);
	t->armed = r == 0 ? 1 : 2;
	if (r != 0)
		sysi_debug("SUD: arming a thread failed: its unpatched calls are not caught");
}

void sysi_sud_atfork(void)
{
	sysi_sud_tls.armed = 0;
	sysi_sud_tls.prog_on = 0; /* the kernel dropped the program's own SUD too */
	sysi_sud_arm_thread();
}

/* Would the program's own SUD (emulated, sysi_sud_prctl) block call c? */
static int prog_blocks(const struct sysi_call *c)
{
	const struct sysi_sud_tls *t = &sysi_sud_tls;
	if (!t->prog_on || c->site + 2 - t->prog_lo < t->prog_len)
		return 0;
	return !t->prog_sel || *t->prog_sel != SYSI_SUD_ALLOW;
}

/*
 * The program's own SUD blocks c: the kernel would raise SIGSYS at the site's return point with
 * rax = the number, the call not made. The signal is queued now and delivered there (a signal
 * that comes while sysi code runs is deferred to the site, signal.c).
 */
static void prog_sigsys(struct sysi_call *c)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = SIGSYS;
	si.si_code = SYS_USER_DISPATCH_;
	si.si_call_addr = (void *)(c->site + 2);
	si.si_syscall = (int)c->nr;
	si.si_arch = AUDIT_ARCH_X86_64_;
	sysi_sud_tls.emulated = (uintptr_t)si.si_call_addr; /* sud_trap: the program's signal */
	sysi_runtime_work(1);
	raw4(__NR_rt_tgsigqueueinfo, raw0(__NR_getpid), raw0(__NR_gettid), SIGSYS, &si);
	sysi_runtime_work(0);
	c->flags = 0;
	c->ret = c->nr;
}

/* api->fast_hook under SUD: block again (after an in-context call), arm a new thread, then the hook. */
SYSI_HOT static long sysi_sud_fast(struct sysi_call *c)
{
	sysi_sud_enter();
	if (__builtin_expect(prog_any, 0) && prog_blocks(c)) {
		prog_sigsys(c);
		return c->ret;
	}
	return fast_real(c);
}

int sysi_sud_dispatch(struct sysi_call *c, int (*plain)(struct sysi_call *))
{
	int r;
	sysi_sud_enter();
	if (__builtin_expect(prog_any, 0) && prog_blocks(c)) {
		prog_sigsys(c);
		return 0;
	}
	r = plain(c);
	if (r) {
		/* the entry makes the call itself, outside libsysi: let it through once */
		sysi_sud_tls.sel = SYSI_SUD_ALLOW;
		/* a child of clone, clone3 or vfork is not armed; one sharing this TLS (vfork,
		 * posix_spawn's CLONE_VM|CLONE_VFORK) or copying it (no CLONE_VM) finds it armed:
		 * the next hooked call arms whichever thread or process makes it */
		if (c->nr == __NR_vfork || c->nr == __NR_clone3 || c->nr == __NR_clone)
			sysi_sud_tls.armed = 0;
	}
	return r;
}

/*
 * The program's own prctl(PR_SET_SYSCALL_USER_DISPATCH): made as asked (the kernel's checks and
 * result), remembered, and sysi's dispatch armed again on this thread; sysi's catch-all then
 * raises the program's SIGSYS where the program's settings say (prog_blocks).
 */
long sysi_sud_prctl(struct sysi_call *c)
{
	struct sysi_sud_tls *t = &sysi_sud_tls;
	long r = raw6(__NR_prctl, c->args[0], c->args[1], c->args[2], c->args[3], c->args[4],
		      c->args[5]);
	if (r != 0)
		return r;
	if (c->args[1] == PR_SYS_DISPATCH_ON_) {
		t->prog_lo = (uintptr_t)c->args[2];
		t->prog_len = (uintptr_t)c->args[3];
		t->prog_sel = (const volatile char *)c->args[4];
		t->prog_on = 1;
		__atomic_store_n(&prog_any, 1, __ATOMIC_RELAXED);
	} else {
		t->prog_on = 0;
	}
	t->armed = 0;
	sysi_sud_arm_thread();
	return r;
}

/* The catch-all: a SIGSYS from SUD (si_code SYS_USER_DISPATCH, raised by the kernel here). */
static int sud_trap(int sig, void *info, void *ucontext)
{
	siginfo_t *si = info;
	ucontext_t *uc = ucontext;
	greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t ret = (uintptr_t)si->si_call_addr;
	const unsigned char *p = (const unsigned char *)ret - 2;
	struct sysi_call c;

	(void)sig;
	/* seccomp's SIGSYS, one sent by a process, or the program's own SUD emulated: the program's */
	if (si->si_code != SYS_USER_DISPATCH_ || (uintptr_t)g[REG_RIP] != ret)
		return 0;
	if (si->si_arch != AUDIT_ARCH_X86_64_) {
		/* int $0x80: the 32-bit ABI, which no hook sees; made as it was, counted as missed
		 * (the trace hook prints its line, the count hook counts it: both named from the
		 * i386 table) */
		if (int80_slot >= 0)
			sysi_stat_add(sysi_stats->strategies[int80_slot].calls, 1);
		g[REG_RAX] = sysi_hook_cur == sysi_hook_trace ? sysi_trace_int80_make(g) : sysi_count_int80(g);
		return 1;
	}
	if (p[0] != 0x0f || p[1] != 0x05) {
		/* not a `syscall` there now: the program's own SIGSYS (emulated), or bytes rewritten
		 * meanwhile; rewritten by sud-lazy.c after the kernel ran the old ones: ours */
		if (sysi_sud_tls.emulated == ret || !sysi_sud_lazy_has(ret - 2)) {
			sysi_sud_tls.emulated = 0;
			return 0;
		}
	}
	c.nr = (int)g[REG_RAX]; /* as the kernel reads it */
	c.site = ret - 2;
	if (sysi_sud_tls.prog_on && prog_blocks(&c))
		return 0; /* the program's own SUD blocks it: its handler, as natively */
	sysi_sud_args(&c, g);
	c.strategy = sud_id;
	c.flags = 0;
	c.ret = 0;
	if (sysi_dispatch_impl(&c) == 0) {
		g[REG_RAX] = c.ret;
		/* rt_sigreturn restores uc_sigmask and uc_stack: carry the program's changes over */
		if (c.nr == __NR_rt_sigprocmask && c.ret == 0) {
			raw4(__NR_rt_sigprocmask, SIG_BLOCK, 0, &uc->uc_sigmask, 8);
			*(uint64_t *)(void *)&uc->uc_sigmask &= ~sysi_defer_pending();
		} else if (c.nr == __NR_sigaltstack && c.ret == 0) {
			raw2(__NR_sigaltstack, 0, &uc->uc_stack);
		}
		if (p[0] == 0x0f && p[1] == 0x05)
			sysi_sud_lazy(c.site, sysi_rts[sud_id].stats_slot);
		return 1;
	}
	/* in context (clone with a new stack, clone3, vfork, rt_sigreturn): the dispatcher let the
	 * selector allow it; the program's own `syscall` makes it again, with the hook's arguments */
	g[REG_RAX] = c.nr;
	g[REG_RDI] = c.args[0];
	g[REG_RSI] = c.args[1];
	g[REG_RDX] = c.args[2];
	g[REG_R10] = c.args[3];
	g[REG_R8] = c.args[4];
	g[REG_R9] = c.args[5];
	g[REG_RIP] = (greg_t)(ret - 2);
	return 1;
}

static int region_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t a = (uintptr_t)data;
	(void)size;
	for (unsigned i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && a >= lo && a < lo + ph->p_memsz) {
			region_lo = lo;
			region_len = ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

static const struct sysi_strategy_ops catch_all_ops = {
	.abi_version = SYSI_ABI_VERSION,
	.name = "catch-all",
};

void sysi_sud_setup_dispatch(void)
{
	const char *v = sysi_getenv("SYSI_COMPLETE");
	sysi_sud_on = v && v[0] == '1';
	if (!sysi_sud_on)
		return;
	/* strategies make no call of their own outside libsysi (sysi_passthrough_direct) */
	sysi_api.fast_flags &= ~SYSI_FAST_PASSTHROUGH;
	if (sysi_api.fast_hook) {
		fast_real = sysi_api.fast_hook;
		sysi_api.fast_hook = sysi_sud_fast;
	}
}

/* After sysi_init (priority 101): the region, the catch-all's stats slot, SIGSYS, this thread. */
__attribute__((constructor(102))) static void sysi_sud_init(void)
{
	struct sysi_rt *rt;
	if (!sysi_sud_on)
		return;
	dl_iterate_phdr(region_cb, (void *)(uintptr_t)sysi_raw6);
	if (!region_len || (uintptr_t)sysi_restorer - region_lo >= region_len ||
	    (uintptr_t)sysi_release - region_lo >= region_len)
		sysi_die("--complete: libsysi's system calls are not in one executable segment");
	if (sysi_nrts >= SYSI_MAX_RUNTIMES)
		sysi_die("--complete: too many strategy runtimes");
	rt = &sysi_rts[sysi_nrts];
	rt->ops = &catch_all_ops;
	rt->base_probe = (uintptr_t)sysi_raw6; /* libsysi: never planned */
	rt->ok = 1;
	rt->stats_slot = sysi_stats_slot(catch_all_ops.name);
	sud_id = sysi_nrts++;
	int80_slot = sysi_stats_slot("missed:int80");
	sysi_runtime_work(1);
	if (sysi_claim_signal(SIGSYS, sud_trap) < 0)
		sysi_die("--complete: cannot claim SIGSYS");
	sysi_runtime_work(0);
	sysi_sud_lazy_setup();
	sysi_sud_tls.armed = 0;
	sysi_sud_arm_thread();
	if (sysi_sud_tls.armed != 1)
		sysi_die("--complete: Syscall User Dispatch is not available (Linux 5.11+, "
			 "CONFIG_GENERIC_ENTRY)");
}
