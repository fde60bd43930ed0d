/*
 * dispatch.c — sysi_dispatch: what every strategy entry calls for a hooked syscall.
 * In-context kinds, SYSI_FILTER, the per-thread reentrancy guard, xsave around hooks that may
 * touch vector state, per-strategy call counters, and sysi_syscall() (with the signal-claim
 * emulation of rt_sigaction/rt_sigprocmask and the after-fork work).
 */
#include <asm/unistd.h>
#include <cpuid.h>
#include <linux/sched.h>
#include "internal.h"
#include "sud.h"
#include "vdso.h"
#include "syscall-names.h"

static __thread int guard __attribute__((tls_model("initial-exec")));
static uint64_t filter[SYSI_STATS_NSYSCALLS / 64];
static int filter_on;
/* hot data, together (SYSI_HOT_DATA) */
SYSI_HOT_DATA int sysi_fast_dispatch; /* set by sysi_dispatch_setup() */
SYSI_HOT_DATA sysi_hook_fn sysi_hook_cur = sysi_hook_passthrough;
SYSI_HOT_DATA uint32_t sysi_hook_cur_flags = SYSI_HOOK_GENERAL_REGS_ONLY | SYSI_HOOK_NO_GUARD;
static unsigned xsave_size;
static uint32_t xsave_lo, xsave_hi;

void sysi_filter_parse(void)
{
	const char *s = sysi_getenv("SYSI_FILTER"), *e;
	if (s && *s) {
		filter_on = 1;
		while (*s) {
			long nr = sysi_parse_dec(s, &e);
			if (nr < 0 || (*e && *e != ','))
				sysi_die("SYSI_FILTER must be a comma list of syscall numbers");
			if (nr < SYSI_STATS_NSYSCALLS)
				filter[nr / 64] |= 1UL << (nr % 64);
			s = *e ? e + 1 : e;
		}
	}
}

/*
 * The xsave area around a hook without SYSI_HOOK_GENERAL_REGS_ONLY (a hook library's): asked of
 * the CPU only then. cpuid traps to the hypervisor in a VM (~20 us for the two here, at every
 * instrumented program's start, for the built-in hooks too, which never need it).
 */
static void xsave_setup(void)
{
	unsigned a, b, c, d;
	__cpuid(1, a, b, c, d);
	if (c & (1u << 27)) { /* OSXSAVE */
		__asm__ volatile("xgetbv" : "=a"(xsave_lo), "=d"(xsave_hi) : "c"(0));
		__cpuid_count(0xd, 0, a, b, c, d);
		xsave_size = b;
	}
	(void)d;
}

static int sysi_hook_builtin(sysi_hook_fn h)
{
	return h == sysi_hook_passthrough || sysi_hook_is_count(h) || h == sysi_hook_trace;
}

/* SYSI_WATCH_EXEC=1: no passthrough fast path (execs reach sysi_perform without it, sysi.h). */
static int watch_exec(void)
{
	const char *v = sysi_getenv("SYSI_WATCH_EXEC");
	return v && v[0] == '1';
}

/*
 * A static program's runtime (static/static.c) wraps sysi_api.fast_hook and .dispatch here, so
 * that a thread reaches them with its own state block; libsysi.so has nothing to wrap (this
 * weak one).
 */
__attribute__((weak)) void sysi_dispatch_wrap(void)
{
}

/* After the hook is loaded: can every call take the fast path of sysi_dispatch_impl()? */
void sysi_dispatch_setup(void)
{
	const uint32_t need = SYSI_HOOK_GENERAL_REGS_ONLY | SYSI_HOOK_NO_GUARD;
	if (!(sysi_hook_cur_flags & SYSI_HOOK_GENERAL_REGS_ONLY))
		xsave_setup();
	sysi_fast_dispatch = !filter_on && (sysi_hook_cur_flags & need) == need;
	sysi_api.fast_hook = sysi_fast_dispatch ? sysi_hook_cur : 0;
	sysi_api.fast_flags = 0;
	/* strategies then make every call but the runtime's own numbers themselves (execve and
	 * execveat among those: sysi_passthrough_direct); SYSI_WATCH_EXEC=1 keeps the hook call */
	if (sysi_api.fast_hook == sysi_hook_passthrough && !watch_exec())
		sysi_api.fast_flags |= SYSI_FAST_PASSTHROUGH;
	/* the built-in hooks only read *c (sysi_perform_call writes c->ret and c->flags) */
	if (sysi_api.fast_hook && (sysi_hook_builtin(sysi_hook_cur) ||
				   (sysi_hook_cur_flags & SYSI_HOOK_KEEPS_ARGS)))
		sysi_api.fast_flags |= SYSI_FAST_KEEPS_ARGS;
	sysi_sud_setup_dispatch(); /* --complete: no passthrough fast path, fast_hook wrapped */
	sysi_vdso_setup();         /* the vDSO's calls (vdso.c): a fast hook but count wrapped */
	sysi_dispatch_wrap();      /* before the strategy runtimes copy the pointers */
	/* the count hook itself (not wrapped by SUD or a static program's runtime, whose threads
	 * need their own state block first) with a stats file: entries may count in the thread's
	 * slab themselves (count.c sysi_count_fast) */
	sysi_api.count_fast = sysi_count_fast;
	sysi_api.count_watch = sysi_count_watch;
	if (sysi_api.fast_hook == sysi_hook_count && sysi_stats)
		sysi_api.fast_flags |= SYSI_FAST_COUNT;
}

SYSI_EXPORT const char *sysi_syscall_name(long nr)
{
	if (nr < 0 || nr >= SYSI_NSYSCALLS)
		return 0;
	return sysi_syscall_names[nr];
}

static int incontext(const struct sysi_call *c)
{
	switch (c->nr) {
	case __NR_clone:
		/* the child would run on another stack, or share ours */
		return c->args[1] != 0 || (c->args[0] & (CLONE_VM | CLONE_VFORK));
	case __NR_clone3:
	case __NR_vfork:
	case __NR_rt_sigreturn:
		return 1;
	}
	return 0;
}

static void after_fork_child(void)
{
	sysi_stat_add(sysi_stats->forks, 1);
	sysi_count_atfork();
	sysi_modules_atfork();
	sysi_runtimes_atfork();
	if (sysi_sud_on) /* SUD is not inherited */
		sysi_sud_atfork();
	if (sysi_vdso_on)
		sysi_vdso_atfork();
}

/* Perform c now (never for in-context calls). */
SYSI_HOT long sysi_perform(struct sysi_call *c)
{
	long r;
	/* every rt_sigaction (the master stands in for each program handler, signal.c); masks
	 * only while trap strategies claim signals */
	if (c->nr == __NR_rt_sigaction ||
	    (c->nr == __NR_rt_sigprocmask && (sysi_claimed_mask | sysi_observed_mask))) {
		if (c->nr == __NR_rt_sigaction)
			return sysi_sig_rt_sigaction(c->args[0], (const void *)c->args[1],
						     (void *)c->args[2], c->args[3]);
		if (c->nr == __NR_rt_sigprocmask)
			return sysi_sig_rt_sigprocmask(c->args[0], (const void *)c->args[1],
						       (void *)c->args[2], c->args[3]);
	}
	/* an exec whose image will not load libsysi is reported first (escape.c) */
	if (__builtin_expect(c->nr == __NR_execve || c->nr == __NR_execveat, 0))
		return sysi_escape_exec(c);
	/* --complete: the program's own SUD is emulated on top of sysi's (sud.c); else it replaces
	 * sysi's on the vDSO on this thread (vdso.c) */
	if (__builtin_expect(c->nr == __NR_prctl && c->args[0] == 59, 0)) {
		if (sysi_sud_on)
			return sysi_sud_prctl(c);
		if (sysi_vdso_on)
			return sysi_vdso_prctl(c);
	}
	r = sysi_raw6(c->nr, c->args[0], c->args[1], c->args[2], c->args[3], c->args[4],
		      c->args[5]);
#ifdef SYSI_STATIC_RUNTIME
	/* a copy run by `sysi run` names the original program (static/exe.c) */
	if (__builtin_expect(c->nr == __NR_readlink || c->nr == __NR_readlinkat, 0))
		return sysi_static_readlink(c, r);
#endif
	if (r == 0 && (c->nr == __NR_fork || c->nr == __NR_clone))
		after_fork_child();
	return r;
}

SYSI_HOT long sysi_perform_call(struct sysi_call *c)
{
	if (c->flags & SYSI_CALL_INCONTEXT) {
		c->flags |= SYSI_CALL_DEFERRED;
		return 0;
	}
	c->flags |= SYSI_CALL_MADE; /* the entry's way back (sysi.h) */
	c->ret = sysi_perform(c);
	return c->ret;
}

SYSI_HOT SYSI_EXPORT long sysi_syscall(struct sysi_call *c)
{
	return sysi_perform_call(c);
}

static long hook_xsave(struct sysi_call *c)
{
	unsigned char area[xsave_size + 64];
	unsigned char *x = (unsigned char *)(((uintptr_t)area + 63) & ~(uintptr_t)63);
	long r;
	memset(x + 512, 0, 64); /* XSAVE header: xrstor faults on stray XCOMP_BV bits */
	__asm__ volatile("xsave64 (%0)" : : "r"(x), "a"(xsave_lo), "d"(xsave_hi) : "memory");
	r = sysi_hook_cur(c);
	__asm__ volatile("xrstor64 (%0)" : : "r"(x), "a"(xsave_lo), "d"(xsave_hi) : "memory");
	return r;
}

static int direct(struct sysi_call *c)
{
	if (c->flags & SYSI_CALL_INCONTEXT)
		return 1;
	c->flags |= SYSI_CALL_MADE;
	c->ret = sysi_perform(c);
	return 0;
}

/* The whole dispatcher, for every hook and every call. */
static int dispatch_slow(struct sysi_call *c)
{
	uint32_t hf = sysi_hook_cur_flags;
	long r;

	c->flags = incontext(c) ? SYSI_CALL_INCONTEXT : 0;
	if (filter_on && ((unsigned long)c->nr >= SYSI_STATS_NSYSCALLS ||
			  !(filter[c->nr / 64] & (1UL << (c->nr % 64)))))
		return direct(c);
	if (!(hf & SYSI_HOOK_NO_GUARD)) {
		if (guard)
			return direct(c);
		guard = 1;
	}
	if (!(hf & SYSI_HOOK_GENERAL_REGS_ONLY) && xsave_size)
		r = hook_xsave(c);
	else
		r = sysi_hook_cur(c);
	if (!(hf & SYSI_HOOK_NO_GUARD))
		guard = 0;
	if (c->flags & SYSI_CALL_DEFERRED)
		return 1;
	c->ret = r;
	return 0;
}

/* Syscall numbers below 64 that may be in-context (incontext() decides): clone, vfork,
 * rt_sigreturn; clone3 (435) is tested on its own. */
#define MAYBE_INCONTEXT ((1UL << __NR_clone) | (1UL << __NR_vfork) | (1UL << __NR_rt_sigreturn))

/*
 * The entry point of every strategy (sysi_runtime_api.dispatch). The fast path serves hooks
 * that need neither the reentrancy guard nor an xsave (the built-in hooks, and user hooks with
 * both SYSI_HOOK_* flags) when no SYSI_FILTER is set: one flag test, a compare on the number,
 * and the hook call. Calls per strategy are counted by the count and trace hooks
 * (sysi_count_strategy), not here: an atomic add on the shared stats page per call cost more
 * than the rest of this path together.
 */
SYSI_HOT static int dispatch_plain(struct sysi_call *c)
{
	unsigned long nr = (unsigned long)c->nr;

	if (__builtin_expect(sysi_fast_dispatch, 1) && nr != __NR_clone3 &&
	    (nr >= 64 || !((MAYBE_INCONTEXT >> nr) & 1))) {
		c->flags = 0;
		c->ret = sysi_hook_cur(c);
		return 0;
	}
	return dispatch_slow(c);
}

SYSI_HOT int sysi_dispatch_impl(struct sysi_call *c)
{
	if (__builtin_expect(sysi_sud_on, 0)) /* --complete (sud.c) */
		return sysi_sud_dispatch(c, dispatch_plain);
	sysi_vdso_enter(); /* a thread's first hooked call arms it (vdso.c) */
	return dispatch_plain(c);
}

/* Count c against its strategy on the shared stats page (for hooks that keep statistics). */
SYSI_HOT void sysi_count_strategy(const struct sysi_call *c)
{
	int slot;
	if (!sysi_stats || c->strategy >= sysi_nrts)
		return;
	slot = sysi_rts[c->strategy].stats_slot;
	if (slot >= 0)
		__atomic_fetch_add(&sysi_stats->strategies[slot].calls, 1, __ATOMIC_RELAXED);
}

SYSI_EXPORT int sysi_dispatch(struct sysi_call *c)
{
	return sysi_dispatch_impl(c);
}
