/*
 * signal.c — signals claimed by trap strategies (claim_signal in sysi.h).
 *
 * libsysi owns the kernel disposition of a claimed signal (the master handler below) and keeps
 * the program's own sigaction in `prog`. The program's rt_sigaction/rt_sigprocmask calls reach
 * sysi_perform(), which records/reports the program's action instead of replacing ours and
 * strips claimed signals from the masks the program sets: a trap delivered while blocked would
 * kill the process. On delivery the master asks the strategies first, then runs the program's
 * handler with the kernel's semantics (SA_SIGINFO, SA_RESETHAND, SA_NODEFER, sa_mask), or its
 * default action.
 */
#include <asm/unistd.h>
#include <errno.h>
#include <signal.h>
#include "internal.h"

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

#define KSA_RESTORER 0x04000000UL
#define MAX_CLAIMS 4
#define BIT(sig) (1UL << ((sig) - 1))

struct claim {
	int (*fn[MAX_CLAIMS])(int, void *, void *);
	int nfn;
	void (*observer)(const void *uc); /* sysi_observe_signal: runs first on every delivery */
	struct ksigaction prog; /* the program's view of the disposition */
};

uint64_t sysi_claimed_mask;
/*
 * Signals the master only watches (sysi_observe_signal): it runs first, then does what the
 * program asked, but they stay out of sysi_claimed_mask, so the program's masks keep them and a
 * program that ignores one has SIG_IGN in the kernel.
 */
uint64_t sysi_observed_mask;
static struct claim claims[65];
static volatile int sig_lock;

static int synchronous(int sig)
{
	return sig == SIGILL || sig == SIGTRAP || sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE;
}

static void master(int sig, siginfo_t *si, void *uc);

/* Install the master for sig with the program's SA_RESTART/SA_ONSTACK; the kernel's old action
 * goes to oact (size: the caller's sigset size, so the kernel checks it). */
static long install_master_old(int sig, void *oact, long size)
{
	struct ksigaction a = {
		.handler = (void *)master,
		.flags = SA_SIGINFO | SA_NODEFER | KSA_RESTORER |
			 (claims[sig].prog.flags & (SA_RESTART | SA_ONSTACK)),
		.restorer = (void *)sysi_restorer,
		.mask = 0,
	};
	return raw4(__NR_rt_sigaction, sig, &a, oact, size);
}

static long install_master(int sig)
{
	return install_master_old(sig, 0, 8);
}

int sysi_claim_signal(int sig, int (*handler)(int, void *, void *))
{
	struct claim *c;
	long r = 0;
	if (sig < 1 || sig > 64 || sig == SIGKILL || sig == SIGSTOP || !handler)
		return -EINVAL;
	sysi_lock(&sig_lock);
	c = &claims[sig];
	if (c->nfn == MAX_CLAIMS) {
		sysi_unlock(&sig_lock);
		return -ENOSPC;
	}
	if (!c->nfn) {
		r = raw4(__NR_rt_sigaction, sig, 0, &c->prog, 8);
		if (r == 0)
			r = install_master(sig);
	}
	if (r == 0) {
		c->fn[c->nfn++] = handler;
		__atomic_or_fetch(&sysi_claimed_mask, BIT(sig), __ATOMIC_RELEASE);
	}
	sysi_unlock(&sig_lock);
	return (int)r;
}

/*
 * Watch sig without owning it: observer runs first on each delivery. The count and trace hooks
 * watch SIGPIPE, which kills a writer on the return of its failed write before the hook sees
 * the EPIPE (watch_epipe accounts for it instead).
 */
int sysi_observe_signal(int sig, void (*observer)(const void *uc))
{
	struct claim *c;
	long r;
	if (sig < 1 || sig > 64 || sig == SIGKILL || sig == SIGSTOP || synchronous(sig))
		return -EINVAL;
	sysi_lock(&sig_lock);
	c = &claims[sig];
	r = c->nfn ? 0 : raw4(__NR_rt_sigaction, sig, 0, &c->prog, 8);
	if (r == 0 && !c->nfn && c->prog.handler != SIG_IGN)
		r = install_master(sig);
	if (r == 0) {
		c->observer = observer;
		__atomic_or_fetch(&sysi_observed_mask, BIT(sig), __ATOMIC_RELEASE);
	}
	sysi_unlock(&sig_lock);
	return (int)r;
}

long sysi_sig_rt_sigaction(long sig, const void *act, void *oact, long size)
{
	struct ksigaction a, old;
	uint64_t claimed = __atomic_load_n(&sysi_claimed_mask, __ATOMIC_ACQUIRE);
	uint64_t observed = __atomic_load_n(&sysi_observed_mask, __ATOMIC_ACQUIRE);

	if (sig >= 1 && sig <= 64 && ((claimed | observed) & BIT(sig))) {
		/*
		 * Exactly one kernel call per program call, as strace-based oracles expect, and the
		 * kernel's own errors (bad size, EFAULT on oact): a query without act, else the
		 * master reinstalled with the program's new SA_RESTART/SA_ONSTACK. oact first
		 * receives the kernel's view (the master), then the program's.
		 */
		long r;
		if (act) {
			memcpy(&a, act, sizeof a);
			a.mask &= ~claimed;
		}
		sysi_lock(&sig_lock);
		old = claims[sig].prog;
		if (act) {
			claims[sig].prog = a;
			if (!(claimed & BIT(sig)) && a.handler == SIG_IGN) /* watched only: ignore it */
				r = raw4(__NR_rt_sigaction, sig, &a, oact, size);
			else
				r = install_master_old((int)sig, oact, size);
			/* EFAULT here is writing oact, after the kernel installed the action */
			if (r < 0 && r != -EFAULT)
				claims[sig].prog = old;
		} else {
			r = raw4(__NR_rt_sigaction, sig, 0, oact, size);
		}
		sysi_unlock(&sig_lock);
		if (r < 0)
			return r;
		if (oact)
			memcpy(oact, &old, sizeof old);
		return 0;
	}
	if (act && size == 8) {
		memcpy(&a, act, sizeof a);
		if (a.mask & claimed) {
			a.mask &= ~claimed;
			act = &a;
		}
	}
	return raw4(__NR_rt_sigaction, sig, act, oact, size);
}

long sysi_sig_rt_sigprocmask(long how, const void *set, void *oset, long size)
{
	uint64_t m, claimed = __atomic_load_n(&sysi_claimed_mask, __ATOMIC_ACQUIRE);
	if (set && size == 8 && how != SIG_UNBLOCK) {
		memcpy(&m, set, 8);
		if (m & claimed) {
			m &= ~claimed;
			set = &m;
		}
	}
	return raw4(__NR_rt_sigprocmask, how, set, oset, size);
}

static int default_ignores(int sig)
{
	return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT;
}

static void default_action(int sig)
{
	struct ksigaction dfl = { .handler = SIG_DFL };
	uint64_t m = BIT(sig);
	if (default_ignores(sig))
		return;
	sysi_runtime_work(1); /* the kernel would do all this without a syscall */
	raw4(__NR_rt_sigaction, sig, &dfl, 0, 8);
	raw4(__NR_rt_sigprocmask, SIG_UNBLOCK, &m, 0, 8);
	raw3(__NR_tgkill, raw0(__NR_getpid), raw0(__NR_gettid), sig);
	/* still alive (stopped and continued, or pending elsewhere): take the signal back */
	install_master(sig);
	sysi_runtime_work(0);
}

static void master(int sig, siginfo_t *si, void *uc)
{
	struct claim *c = &claims[sig];
	struct ksigaction a;
	uint64_t m;

	if (c->observer)
		c->observer(uc);
	for (int i = 0; i < c->nfn; i++)
		if (c->fn[i](sig, si, uc))
			return;
	a = c->prog;
	if (a.handler == SIG_IGN) {
		/* the kernel forces synchronous faults through SIG_IGN: default action */
		if (synchronous(sig) && si->si_code > 0)
			default_action(sig);
		return;
	}
	if (a.handler == SIG_DFL) {
		default_action(sig);
		return;
	}
	if (a.flags & SA_RESETHAND) {
		c->prog.handler = SIG_DFL;
		c->prog.flags &= ~(unsigned long)SA_SIGINFO;
	}
	m = a.mask;
	if (!(a.flags & SA_NODEFER))
		m |= BIT(sig);
	m &= ~__atomic_load_n(&sysi_claimed_mask, __ATOMIC_ACQUIRE);
	if (m) { /* the kernel's part of delivery, not the program's call */
		sysi_runtime_work(1);
		raw4(__NR_rt_sigprocmask, SIG_BLOCK, &m, 0, 8);
		sysi_runtime_work(0);
	}
	if (a.flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))a.handler)(sig, si, uc);
	else
		((void (*)(int))a.handler)(sig);
	/*
	 * Returning restores the interrupted context and mask (rt_sigreturn via sysi_restorer):
	 * the program's handler returned, so this rt_sigreturn stands for the program's own.
	 */
	sysi_count_sigreturn();
}
