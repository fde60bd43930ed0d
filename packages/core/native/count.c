/*
 * count.c — the count hook: each thread counts in a slab of the stats file of its own with plain
 * increments (sysi.h STATS FILE), so a counted call costs two `incq` and no locked instruction.
 *
 * A slab's life: claimed at the thread's first counted call (or adopted: a slab owned by this
 * tid is its own from before an execve); added into the totals, zeroed and freed when the thread
 * calls exit or exit_group. What no code of the thread could do (killed by another thread's
 * exit_group, by a signal) the reader does: it adds every owned slab. A fork child starts without
 * a slab (sysi_count_atfork); a vfork child (or posix_spawn's CLONE_VM|CLONE_VFORK child) shares
 * the suspended parent's memory and TLS, and counts in the parent's slab, which it never frees
 * (owner tid != its tid).
 *
 * A slab is mapped into a process (its own MAP_SHARED mapping of that file range, sysi.h STATS
 * FILE) when one of its threads claims or reclaims it, and stays mapped for the process's later
 * threads (`mapped`; a fork child inherits mappings and table). A slab that cannot be mapped
 * (the file gone, RLIMIT_MEMLOCK after mlockall(MCL_FUTURE)) is left as it was: the thread
 * counts on the totals.
 *
 * Increments are single `incq` instructions: a signal handler's calls on the same thread cannot
 * interleave inside one. Without a slab (pool exhausted, no stats file) a call is counted with
 * atomic adds on the totals, as before slabs.
 */
#define _GNU_SOURCE /* REG_* */
#include <asm/unistd.h>
#include <ucontext.h>
#include <errno.h>
#include <time.h>
#include <stddef.h>
#include "internal.h"
#include "vdso.h"

_Static_assert(sizeof(struct sysi_stats_slab) == 28672, "slab: 7 pages");
_Static_assert(offsetof(struct sysi_stats_file, owners) == 28672, "owners at 28672");
_Static_assert(offsetof(struct sysi_stats_file, slabs) == 32768, "slabs at 32768");
_Static_assert(sizeof(struct sysi_stats_file) == 7397376, "stats file size");
_Static_assert(offsetof(struct sysi_stats_file, i386) == 7389184, "i386 totals at 7389184");

void sysi_trace_clock(int clk, long *sec, long *nsec); /* trace-vdso.c */

static __thread struct sysi_stats_slab *slab __attribute__((tls_model("initial-exec")));
/* slab i's mapping in this process, or 0 (set once, compare-and-swap: signal handlers map too) */
static struct sysi_stats_slab *mapped[SYSI_STATS_NSLABS];
/* 1: this thread found no slab: count on the totals (atomic adds) */
static __thread int slab_none __attribute__((tls_model("initial-exec")));

#define INC(x) __asm__("incq %0" : "+m"(x))

static int32_t gettid_(void)
{
	return (int32_t)raw0(__NR_gettid);
}

/* Add slab i into the totals and zero it (its owner is this thread, or dead). */
static void merge(struct sysi_stats_slab *b)
{
	struct sysi_stats_file *s = sysi_stats;
	for (int i = 0; i < SYSI_STATS_NSTRATEGIES; i++)
		if (b->strategy_calls[i]) {
			__atomic_fetch_add(&s->strategies[i].calls, b->strategy_calls[i], __ATOMIC_RELAXED);
			b->strategy_calls[i] = 0;
		}
	for (int nr = 0; nr < SYSI_STATS_NSYSCALLS; nr++) {
		struct sysi_stats_syscall *c = &b->syscalls[nr];
		if (c->calls) {
			__atomic_fetch_add(&s->syscalls[nr].calls, c->calls, __ATOMIC_RELAXED);
			c->calls = 0;
		}
		if (c->errors) {
			__atomic_fetch_add(&s->syscalls[nr].errors, c->errors, __ATOMIC_RELAXED);
			c->errors = 0;
		}
		if (b->nanos[nr]) {
			__atomic_fetch_add(&s->nanos[nr], b->nanos[nr], __ATOMIC_RELAXED);
			b->nanos[nr] = 0;
		}
	}
}

/* Slab i, mapped into this process on first use; 0 when it cannot be mapped. */
static struct sysi_stats_slab *slab_at(int i)
{
	struct sysi_stats_slab *b = __atomic_load_n(&mapped[i], __ATOMIC_ACQUIRE), *none = 0;
	if (b)
		return b;
	b = sysi_stats_map(offsetof(struct sysi_stats_file, slabs[i]), sizeof *b);
	if (b && !__atomic_compare_exchange_n(&mapped[i], &none, b, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		raw2(__NR_munmap, b, sizeof *b); /* a signal handler mapped it meanwhile */
		b = none;
	}
	return b;
}

/* The index of this process's mapping b, or -1. */
static int index_of(const struct sysi_stats_slab *b)
{
	for (int i = 0; i < SYSI_STATS_NSLABS; i++)
		if (__atomic_load_n(&mapped[i], __ATOMIC_ACQUIRE) == b)
			return i;
	return -1;
}

/* Take over the slabs of dead threads (pool exhausted); the index of one now free, or -1. */
static int reclaim(void)
{
	struct sysi_stats_file *s = sysi_stats;
	int got = -1;
	for (int i = 0; i < SYSI_STATS_NSLABS; i++) {
		struct sysi_stats_slab_owner *o = &s->owners[i];
		int32_t tid = __atomic_load_n(&o->tid, __ATOMIC_ACQUIRE), pid = o->pid;
		if (tid <= 0 || raw3(__NR_tgkill, pid, tid, 0) != -ESRCH)
			continue;
		if (!__atomic_compare_exchange_n(&o->tid, &tid, -1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue;
		struct sysi_stats_slab *b = slab_at(i);
		if (!b) { /* cannot merge it here: it stays the dead thread's, for the reader */
			__atomic_store_n(&o->tid, tid, __ATOMIC_RELEASE);
			continue;
		}
		merge(b);
		__atomic_store_n(&o->tid, 0, __ATOMIC_RELEASE);
		if (got < 0)
			got = i;
	}
	return got;
}

/*
 * This thread's slab: adopt its own (from before an execve), claim a free one, or reclaim; its
 * index in *idx. A claimed slab that cannot be mapped stays this thread's (freed at its death
 * by a reclaim or added by the reader): 0.
 */
static struct sysi_stats_slab *claim(int *idx)
{
	struct sysi_stats_file *s = sysi_stats;
	int32_t tid = gettid_(), pid = (int32_t)raw0(__NR_getpid);
	for (int round = 0; round < 2; round++) {
		int start = round ? reclaim() : 0;
		if (start < 0)
			break;
		for (int k = 0; k < SYSI_STATS_NSLABS; k++) {
			int i = (start + k) % SYSI_STATS_NSLABS;
			struct sysi_stats_slab_owner *o = &s->owners[i];
			int32_t t = __atomic_load_n(&o->tid, __ATOMIC_ACQUIRE), zero = 0;
			if (t == tid && o->pid == pid) {
				*idx = i; /* ours, before an execve */
				return slab_at(i);
			}
			if (t == 0 && __atomic_compare_exchange_n(&o->tid, &zero, tid, 0, __ATOMIC_ACQ_REL,
								  __ATOMIC_ACQUIRE)) {
				o->pid = pid;
				*idx = i;
				return slab_at(i);
			}
		}
	}
	return 0;
}

/* Free this thread's slab into the totals (exit, exit_group): only a slab it owns. */
static void release(void)
{
	struct sysi_stats_slab *b = slab;
	struct sysi_stats_slab_owner *o;
	int i;
	if (!b || (i = index_of(b)) < 0)
		return;
	o = &sysi_stats->owners[i];
	if (__atomic_load_n(&o->tid, __ATOMIC_ACQUIRE) != gettid_())
		return; /* a vfork child in its parent's slab */
	slab = 0;
	merge(b);
	__atomic_store_n(&o->tid, 0, __ATOMIC_RELEASE);
}

/* A fork child: the slab pointer it inherited is its parent's. */
void sysi_count_atfork(void)
{
	slab = 0;
	slab_none = 0;
}

/* Without a slab: the totals, with atomic adds (the hook before slabs). */
static long count_shared(struct sysi_call *c)
{
	struct sysi_stats_syscall *s;
	long r;
	int mine;
	s = sysi_stats_counter(c->nr); /* stats.c: its slot, its x32 slot, or other */
	__atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED);
	sysi_count_strategy(c);
	r = sysi_perform_watched(c, &mine);
	if (mine && !(c->flags & SYSI_CALL_DEFERRED) && r < 0 && r >= -4095)
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
	return r;
}

static void count_strategy(struct sysi_stats_slab *b, const struct sysi_call *c)
{
	int slot;
	if (c->strategy < sysi_nrts && (slot = sysi_rts[c->strategy].stats_slot) >= 0)
		INC(b->strategy_calls[slot]);
}

/* The calls the fast path leaves: no slab yet, numbers outside the table, exit, exit_group. */
__attribute__((noinline, cold)) static long count_slow(struct sysi_call *c)
{
	struct sysi_stats_slab *b;
	long r;
	int mine;
	sysi_vdso_enter(); /* a new thread's first counted call comes here (vdso.c) */
	if (!sysi_stats)
		return sysi_perform_call(c);
	if (!slab && !slab_none) {
		int i = -1;
		/* its gettid, getpid, tgkill, open, mmap are not the program's (SYSI_MARKER) */
		sysi_runtime_work(1);
		b = claim(&i);
		sysi_runtime_work(0);
		if (slab) { /* a signal handler claimed one meanwhile */
			if (b && b != slab)
				__atomic_store_n(&sysi_stats->owners[i].tid, 0, __ATOMIC_RELEASE);
		} else {
			slab = b;
			slab_none = !b;
		}
	}
	b = slab;
	if (!b || (unsigned long)c->nr >= SYSI_STATS_NSYSCALLS)
		return count_shared(c);
	/* counted before the call: execve, exit and exit_group do not come back */
	INC(b->syscalls[c->nr].calls);
	count_strategy(b, c);
	if (c->nr == __NR_exit || c->nr == __NR_exit_group) {
		sysi_runtime_work(1);
		release();
		sysi_runtime_work(0);
	}
	r = sysi_perform_watched(c, &mine);
	if (mine && !(c->flags & SYSI_CALL_DEFERRED) && r < 0 && r >= -4095) {
		if (slab == b)
			INC(b->syscalls[c->nr].errors);
		else /* released (an exit that failed) */
			__atomic_fetch_add(&sysi_stats->syscalls[c->nr].errors, 1, __ATOMIC_RELAXED);
	}
	return r;
}

/*
 * Numbers the fast path leaves to count_slow: those sysi_perform handles itself (dispatch.c:
 * rt_sigaction, rt_sigprocmask, execve, execveat, prctl, fork and clone children), the in-context
 * ones (rt_sigreturn, clone, vfork, clone3), exit and exit_group (the slab is freed).
 */
#define B(nr) (1UL << ((nr) % 64))
static const uint64_t special[SYSI_STATS_NSYSCALLS / 64] = {
	[0] = B(__NR_rt_sigaction) | B(__NR_rt_sigprocmask) | B(__NR_rt_sigreturn) | B(__NR_clone) |
	      B(__NR_fork) | B(__NR_vfork) | B(__NR_execve) | B(__NR_exit),
	[__NR_prctl / 64] = B(__NR_prctl),
	[__NR_exit_group / 64] = B(__NR_exit_group),
	[__NR_execveat / 64] = B(__NR_execveat),
	[__NR_clone3 / 64] = B(__NR_clone3),
};
_Static_assert(__NR_prctl / 64 == 2 && __NR_exit_group / 64 == 3 && __NR_execveat / 64 == 5 &&
		       __NR_clone3 / 64 == 6,
	       "one word per number");

/* a static program's copy run by `sysi run`: sysi_perform gives these the original's name
 * (static/exe.c); libsysi.so has none */
#ifdef SYSI_STATIC_RUNTIME
#define STATIC_SLOW(nr) ((nr) == __NR_readlink || (nr) == __NR_readlinkat)
#else
#define STATIC_SLOW(nr) 0
#endif

/*
 * The count hook. The fast path makes the call itself, with its own `syscall` (the return point
 * sysi_count_sys_ret, which the SIGPIPE watch knows as it knows sysi_raw6_ret): on this kind of
 * core every `ret` after a system call costs (the kernel's return-stack mitigations), and the
 * call through sysi_perform_watched, sysi_perform_call, sysi_perform and sysi_raw6 returned four
 * times more than the passthrough path (measured: +20 ns per call over passthrough, most of
 * the count hook's cost). noinline, noclone: the label exists once.
 */
SYSI_HOT __attribute__((noinline, noclone)) long sysi_hook_count(struct sysi_call *c)
{
	struct sysi_stats_slab *b = slab;
	struct sysi_call *outer;
	unsigned long nr = (unsigned long)c->nr;
	long r;
	if (__builtin_expect(!b || nr >= SYSI_STATS_NSYSCALLS || ((special[nr / 64] >> (nr % 64)) & 1) ||
			     STATIC_SLOW(nr), 0))
		return count_slow(c);
	INC(b->syscalls[nr].calls);
	count_strategy(b, c);
	outer = sysi_inflight; /* a signal handler's call inside another's */
	sysi_inflight = c;
	c->flags |= SYSI_CALL_MADE; /* the entry's way back (sysi.h) */
	{
		register long r10 __asm__("r10") = c->args[3];
		register long r8 __asm__("r8") = c->args[4];
		register long r9 __asm__("r9") = c->args[5];
		__asm__ volatile("syscall\n"
				 ".global sysi_count_sys_ret\n"
				 ".hidden sysi_count_sys_ret\n"
				 "sysi_count_sys_ret:"
				 : "=a"(r)
				 : "a"(nr), "D"(c->args[0]), "S"(c->args[1]), "d"(c->args[2]), "r"(r10),
				   "r"(r8), "r"(r9)
				 : "rcx", "r11", "memory");
	}
	c->ret = r;
	if (__builtin_expect((unsigned long)r >= -4095UL, 0) && sysi_inflight == c)
		INC(b->syscalls[nr].errors); /* else the SIGPIPE watch counted it (hooks.c) */
	sysi_inflight = outer;
	return r;
}

/*
 * sysi_runtime_api.count_fast (sysi.h SYSI_FAST_COUNT): where a strategy entry counts calls of
 * its own, as the fast path above does. -1 when this process has no such path (another hook,
 * no stats file, a strategy without a stats slot, or sysi_count_direct() not the complement of
 * `special`: the two lists must name the same numbers).
 */
int sysi_count_fast(uint32_t strategy, struct sysi_count_fast *out)
{
	uintptr_t tp;
	int slot;
	if (!sysi_stats || sysi_api.fast_hook != sysi_hook_count || strategy >= sysi_nrts ||
	    (slot = sysi_rts[strategy].stats_slot) < 0)
		return -1;
	for (unsigned long nr = 0; nr < SYSI_STATS_NSYSCALLS; nr++)
		if (sysi_count_direct(nr) == (int)((special[nr / 64] >> (nr % 64)) & 1))
			return -1;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	out->slab_tpoff = (long)((uintptr_t)&slab - tp);
	out->strategy_off = (long)offsetof(struct sysi_stats_slab, strategy_calls[slot]);
	out->totals = (uintptr_t)&sysi_stats->syscalls[0];
	return 0;
}

static uint64_t now_ns(void)
{
	long sec, nsec;
	sysi_trace_clock(CLOCK_MONOTONIC, &sec, &nsec);
	return (uint64_t)sec * 1000000000u + (uint64_t)nsec;
}

/* SYSI_COUNT_TIME=1: the count hook, and the call's wall-clock time in the slab's nanos. */
long sysi_hook_count_timed(struct sysi_call *c)
{
	unsigned long nr = (unsigned long)c->nr;
	uint64_t t0, dt;
	long r;
	if (!sysi_stats || nr >= SYSI_STATS_NSYSCALLS || nr == __NR_exit || nr == __NR_exit_group)
		return sysi_hook_count(c); /* nothing comes back to time, or no table slot */
	t0 = now_ns();
	r = sysi_hook_count(c);
	dt = now_ns() - t0;
	if (r == 0 && (nr == __NR_fork || nr == __NR_clone))
		return r; /* a fork child: the parent times the call */
	if (slab && !(c->flags & SYSI_CALL_DEFERRED))
		__asm__("addq %1, %0" : "+m"(slab->nanos[nr]) : "r"(dt));
	else if (!(c->flags & SYSI_CALL_DEFERRED))
		__atomic_fetch_add(&sysi_stats->nanos[nr], dt, __ATOMIC_RELAXED);
	return r;
}

long sysi_sud_int80(const void *gregs); /* int80.S */

/*
 * An int $0x80 call the catch-all trapped (sud.c, --complete), made as it was (int80.S). Under
 * the count hook it is counted in the i386 totals (stats.c), as strace -c counts it in its table
 * "for 32 bit mode": before the call (exit, exit_group and a successful execve do not come
 * back), its error after it (the parent's: a fork child returns 0). Other hooks only make it.
 */
long sysi_count_int80(void *gregs)
{
	const greg_t *g = gregs;
	struct sysi_stats_syscall *s = 0;
	long r;
	if (sysi_hook_is_count(sysi_hook_cur))
		s = sysi_stats_i386_counter((long)(unsigned)g[REG_RAX]);
	if (s)
		__atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED);
	r = sysi_sud_int80(gregs);
	if (s && r < 0 && r >= -4095)
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
	return r;
}
