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
#define _GNU_SOURCE /* dl_iterate_phdr, REG_* */
#include <asm/unistd.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <sys/uio.h>
#include <ucontext.h>
#include "internal.h"
#include "sud.h"

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

/*
 * Signals during an instrumented call (sysi.h watch_context). `wrapped`: signals whose program
 * handler the master stands in for (not claimed nor watched), installed with the program's own
 * flags and mask so the kernel's delivery semantics stay the kernel's.
 */
__thread struct sysi_sigdefer sysi_sigdefer __attribute__((tls_model("initial-exec")));
static uint64_t wrapped;
static long defer_pid; /* this process's pid, as an earlier deferral found it */
#define MAX_CODE 32
static struct {
	uintptr_t lo, hi;
} code[MAX_CODE]; /* executable ranges of libsysi, the strategy runtimes and the hook library */
static unsigned ncode;
#define MAX_WATCH 8
static int (*watchers[MAX_WATCH])(void *uc);
static unsigned nwatch;

static int code_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t a = *(const uintptr_t *)data;
	int mine = 0;
	(void)size;
	for (unsigned i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && a >= lo && a < lo + ph->p_memsz)
			mine = 1;
	}
	if (!mine)
		return 0;
	for (unsigned i = 0; i < info->dlpi_phnum && ncode < MAX_CODE; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			code[ncode].lo = info->dlpi_addr + ph->p_vaddr;
			code[ncode].hi = code[ncode].lo + ph->p_memsz;
			ncode++;
		}
	}
	return 1;
}

/* The module holding addr runs only for instrumented calls: a signal there is deferred. */
void sysi_code_add(const void *addr)
{
	uintptr_t a = (uintptr_t)addr;
	dl_iterate_phdr(code_cb, &a);
}

static int in_code(uintptr_t pc)
{
	for (unsigned i = 0; i < ncode; i++)
		if (pc >= code[i].lo && pc < code[i].hi)
			return 1;
	return 0;
}

int sysi_watch_context(int (*fn)(void *uc))
{
	if (!fn || nwatch == MAX_WATCH)
		return -EINVAL;
	watchers[nwatch++] = fn;
	return 0;
}

uint64_t sysi_defer_pending(void)
{
	return sysi_sigdefer.pending;
}

void sysi_signal_setup(void)
{
	uintptr_t tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	sysi_api.watch_context = sysi_watch_context;
	sysi_api.defer_tpoff = (long)((uintptr_t)&sysi_sigdefer.pending - tp);
	sysi_api.release = sysi_release;
	sysi_api.defer_pending = sysi_defer_pending;
	sysi_code_add((const void *)sysi_release);
	/*
	 * The pid deferral queues to, found now, before the program can install a seccomp filter
	 * that traps getpid (one made inside the master, with SIGSYS blocked, would kill it). A
	 * fork child's first deferral fails with it and looks its own up.
	 */
	sysi_runtime_work(1);
	defer_pid = raw0(__NR_getpid);
	sysi_runtime_work(0);
}

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

static int catches(const struct ksigaction *a)
{
	return a->handler != SIG_DFL && a->handler != SIG_IGN;
}

/* The master in the program's place: the program's flags and mask, our handler and restorer. */
static long install_wrapped(int sig, const struct ksigaction *prog, void *oact)
{
	struct ksigaction a = *prog;
	a.handler = (void *)master;
	a.flags |= SA_SIGINFO | KSA_RESTORER;
	a.restorer = (void *)sysi_restorer;
	return raw4(__NR_rt_sigaction, sig, &a, oact, 8);
}

/*
 * The program's sigaction or mask, read as the kernel reads it: a pointer it cannot read gives
 * -EFAULT, not a fault in sysi's code (the kernel's copy_from_user). process_vm_readv on our own
 * pid copies without faulting; where it is unusable (a seccomp filter, ENOSYS) a plain copy.
 */
static long read_prog(void *dst, const void *src, unsigned long n)
{
	struct iovec local = { dst, n }, remote = { (void *)src, n };
	long r;
	/* the read is sysi's, not the program's (strace oracles); the pid is asked every time: a
	 * cached one would name the parent in a fork child, whose memory it would then read */
	sysi_runtime_work(1);
	r = raw6(__NR_process_vm_readv, raw0(__NR_getpid), &local, 1, &remote, 1, 0);
	sysi_runtime_work(0);
	if (r == (long)n)
		return 0;
	if (r >= 0 || r == -EFAULT)
		return -EFAULT;
	memcpy(dst, src, n);
	return 0;
}

/*
 * A signal neither claimed nor watched: one kernel call, as the program's. A handler goes in as
 * the master with the program's flags and mask (wrapped); SIG_DFL/SIG_IGN go in as they are.
 * oact reports the program's view.
 */
static long wrap_rt_sigaction(int sig, const void *act, void *oact, uint64_t claimed)
{
	struct ksigaction a, old;
	int was;
	long r;
	sysi_lock(&sig_lock);
	was = (wrapped & BIT(sig)) != 0;
	old = claims[sig].prog;
	if (act) {
		a = *(const struct ksigaction *)act; /* read by the caller (read_prog) */
		a.mask &= ~claimed;
		r = catches(&a) ? install_wrapped(sig, &a, oact) : raw4(__NR_rt_sigaction, sig, &a, oact, 8);
		if (r == 0 || r == -EFAULT) { /* EFAULT: writing oact, after the kernel installed it */
			claims[sig].prog = a;
			if (catches(&a))
				wrapped |= BIT(sig);
			else
				wrapped &= ~BIT(sig);
		}
	} else {
		r = raw4(__NR_rt_sigaction, sig, 0, oact, 8);
	}
	sysi_unlock(&sig_lock);
	if (r == 0 && oact && was)
		memcpy(oact, &old, sizeof old);
	return r;
}

long sysi_sig_rt_sigaction(long sig, const void *act, void *oact, long size)
{
	struct ksigaction a, old;
	uint64_t claimed = __atomic_load_n(&sysi_claimed_mask, __ATOMIC_ACQUIRE);
	uint64_t observed = __atomic_load_n(&sysi_observed_mask, __ATOMIC_ACQUIRE);

	/* the kernel's order: the size, then reading act, then the signal number */
	if (size != 8)
		return raw4(__NR_rt_sigaction, sig, act, oact, size);
	if (act) {
		long e = read_prog(&a, act, sizeof a);
		if (e)
			return e;
		act = &a;
	}
	if (sig >= 1 && sig <= 64 && ((claimed | observed) & BIT(sig))) {
		/*
		 * Exactly one kernel call per program call, as strace-based oracles expect, and the
		 * kernel's own errors (bad size, EFAULT on oact): a query without act, else the
		 * master reinstalled with the program's new SA_RESTART/SA_ONSTACK. oact first
		 * receives the kernel's view (the master), then the program's.
		 */
		long r;
		if (act)
			a.mask &= ~claimed;
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
	if (sig >= 1 && sig <= 64 && sig != SIGKILL && sig != SIGSTOP && size == 8)
		return wrap_rt_sigaction((int)sig, act, oact, claimed);
	return raw4(__NR_rt_sigaction, sig, act, oact, size);
}

long sysi_sig_rt_sigprocmask(long how, const void *set, void *oset, long size)
{
	struct sysi_sigdefer *d = &sysi_sigdefer;
	uint64_t m, want = 0, claimed = __atomic_load_n(&sysi_claimed_mask, __ATOMIC_ACQUIRE);
	uint64_t held = d->pending; /* blocked for sysi, not by the program */
	long r;
	if (set && size == 8) {
		long e = read_prog(&want, set, 8);
		if (e)
			return e;
		if (how != SIG_UNBLOCK && (want & claimed)) {
			m = want & ~claimed;
			set = &m;
		}
	}
	r = raw4(__NR_rt_sigprocmask, how, set, oset, size);
	if (r == 0 && held) {
		uint64_t o;
		/* the program's old mask has none of sysi's bits */
		if (oset && size == 8) {
			memcpy(&o, oset, 8);
			o &= ~held;
			memcpy(oset, &o, 8);
		}
		/*
		 * A deferred signal the program now blocks itself stays blocked: no longer sysi's to
		 * release. One the call unblocked was delivered on its return, here, in sysi's code,
		 * and deferred again: it stays pending.
		 */
		if (set && size == 8 && (how == SIG_BLOCK || how == SIG_SETMASK))
			d->pending &= ~want;
	}
	return r;
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

/*
 * watch_context's 5: the view's RIP is the program's address of the instruction the signal
 * interrupted in a copy (a trampoline's relocated instruction, or a call still to come that only
 * the copy makes hooked). When the handler's return leaves RIP as shown, the interrupted context
 * comes back with the handler's edits: each register it changed keeps its value, the others
 * take the interrupted ones (the copy's RIP, and whatever rsp/rcx the view adjusted).
 *
 * watch_context's 4: the program's handler got the view of a call still to come that the
 * strategy has already hooked (RIP at the site). When the handler leaves that view as it found
 * it, its return goes back to `rip`, where the interrupted code makes the call, instead of the
 * site, which would hook it again; a handler that edits it gets its edit.
 */
struct redo {
	greg_t rip;              /* 0: none */
	greg_t g[REG_EFL + 1];   /* the view: general registers, RIP, flags */
	int alias;               /* watch_context's 5: the view's RIP stands for the interrupted one */
	greg_t was[REG_EFL + 1]; /* then: the interrupted registers */
};

/*
 * The program's view of a signal that interrupted sysi (sysi.h watch_context). Returns 1 when
 * the signal was deferred (the master returns at once), 0 when the program's handler may run
 * with uc, which then shows the program's context.
 */
static int program_view(int sig, siginfo_t *si, void *uc, const struct ksigaction *a, int nested,
			struct redo *redo)
{
	struct sysi_sigdefer *d = &sysi_sigdefer;
	greg_t *g = ((ucontext_t *)uc)->uc_mcontext.gregs;
	uintptr_t pc = (uintptr_t)g[REG_RIP];
	uint64_t *m;
	long tid;
	int mine = 0;

	m = (uint64_t *)&((ucontext_t *)uc)->uc_sigmask;
	/*
	 * A deferred signal, released in the program's place; or any signal after the release
	 * (sysi_release_ret .. its jump): the registers are the program's or kept in d, and a
	 * deferral here would be lost when sysi_release clears pending.
	 */
	if (pc >= (uintptr_t)sysi_release_ret && pc < (uintptr_t)sysi_release_end) {
		g[REG_RIP] = g[REG_RCX] = (greg_t)d->rip;
		g[REG_R11] = g[REG_EFL];
		g[REG_RAX] = (greg_t)d->rax;
		g[REG_RDI] = (greg_t)d->rdi;
		g[REG_RSI] = (greg_t)d->rsi;
		g[REG_RDX] = (greg_t)d->rdx;
		g[REG_R10] = (greg_t)d->r10;
		*m &= ~d->pending; /* still blocked only for sysi: unblocked at the handler's return */
		d->pending = 0;
		if (sysi_marker_on)
			raw1(SYSI_MARKER_NR, SYSI_MARKER_WORK_DROP);
		return 0;
	}
	if (nwatch)
		memcpy(redo->was, g, sizeof redo->was);
	for (unsigned i = 0; i < nwatch && !mine; i++)
		mine = watchers[i](uc); /* 1: uc shows the program now; 2: deliver here as it is;
					 * 3: runtime code with a release ahead: defer;
					 * 4: as 1, a hooked call still to come (struct redo);
					 * 5: as 1, RIP an alias of the interrupted one (struct redo) */
	if (mine == 4) {
		redo->rip = (greg_t)pc;
		memcpy(redo->g, g, sizeof redo->g);
	}
	if (mine == 5) {
		redo->alias = 1;
		memcpy(redo->g, g, sizeof redo->g);
		mine = 1;
	}
	/*
	 * A fault in sysi's code is sysi's. A signal in the master's own code (nested) is deferred
	 * too: the master leaves through rt_sigreturn, which restores the interrupted mask and so
	 * releases it (delivered in the context the master returns to; pending is cleared there).
	 */
	(void)nested;
	if (mine == 1 || mine == 2 || mine == 4 || (!mine && !in_code(pc)) ||
	    (synchronous(sig) && si->si_code > 0)) {
		/*
		 * The handler runs where the program (or code with the program's registers) runs; its
		 * return does not pass sysi_release, so the signals deferred earlier and still blocked
		 * only for sysi are unblocked by its rt_sigreturn instead (a return into sysi's code
		 * defers them again). Before, they stayed blocked for good when such a handler's frame
		 * skipped the release (rtstorm: SIGRTMIN..+3 blocked under punning and zpoline).
		 */
		*m &= ~d->pending;
		d->pending = 0;
		return 0;
	}
	sysi_runtime_work(1);
	/* blocked before it is queued again: a master with SA_NODEFER (claimed and watched signals,
	 * or the program's own flag) would take it back at once, here */
	if (((sysi_claimed_mask | sysi_observed_mask) & BIT(sig)) || (a->flags & SA_NODEFER)) {
		uint64_t b = BIT(sig);
		raw4(__NR_rt_sigprocmask, SIG_BLOCK, &b, 0, 8);
	}
	tid = raw0(__NR_gettid);
	/* the pid cached from an earlier deferral, checked by the call itself (a fork or vfork
	 * child has another: an error, then once more with its own) */
	if (!defer_pid || raw4(__NR_rt_tgsigqueueinfo, defer_pid, tid, sig, si) < 0) {
		defer_pid = raw0(__NR_getpid);
		raw4(__NR_rt_tgsigqueueinfo, defer_pid, tid, sig, si);
	}
	*m |= BIT(sig); /* stays blocked after the master returns, until sysi_release */
	d->pending |= BIT(sig);
	if ((a->flags & SA_RESETHAND) && (wrapped & BIT(sig))) /* the kernel reset it: once more */
		install_wrapped(sig, a, 0);
	sysi_runtime_work(0);
	/*
	 * This frame is sysi's: the program's handler runs once, in the frame of the signal queued
	 * again, and natively there is one rt_sigreturn per handled signal (strace -c). Its
	 * rt_sigreturn is not counted, and strace oracles are told (sysi.h SYSI_MARKER_FAULT).
	 */
	if (sysi_marker_on)
		raw1(SYSI_MARKER_NR, SYSI_MARKER_FAULT);
	return 1;
}

static void call_handler(int sig, siginfo_t *si, void *uc, const struct ksigaction *a,
			 const struct redo *redo)
{
	greg_t *g = ((ucontext_t *)uc)->uc_mcontext.gregs;
	struct sysi_sigdefer *d = &sysi_sigdefer;
	int outer = d->in_master;
	char sel = sysi_sud_handler_begin(); /* --complete: its unpatched calls are caught */
	d->in_master = 0; /* the handler is the program's code */
	if (a->flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))a->handler)(sig, si, uc);
	else
		((void (*)(int))a->handler)(sig);
	d->in_master = outer;
	sysi_sud_handler_end(sel);
	if (redo->rip && !memcmp(g, redo->g, sizeof redo->g))
		g[REG_RIP] = redo->rip; /* the call, once: not the site again */
	if (redo->alias && g[REG_RIP] == redo->g[REG_RIP])
		for (int i = 0; i <= REG_EFL; i++)
			if (g[i] == redo->g[i])
				g[i] = redo->was[i]; /* back into the copy, with the handler's edits */
}

/*
 * A static program's runtime (static/static.c) gives the thread its own state block here,
 * before any thread-local access; libsysi.so has none to give (this weak one).
 */
__attribute__((weak)) void sysi_thread_enter(void)
{
}

static __attribute__((noinline)) void master_body(int sig, siginfo_t *si, void *uc);

static void master(int sig, siginfo_t *si, void *uc)
{
	sysi_thread_enter();
	master_body(sig, si, uc); /* its thread-local addresses are computed after the call */
}

static __attribute__((noinline)) void master_body(int sig, siginfo_t *si, void *uc)
{
	struct claim *c = &claims[sig];
	struct sysi_sigdefer *d = &sysi_sigdefer;
	struct ksigaction a;
	struct redo redo;
	uint64_t m;
	int nested = d->in_master;

	d->in_master = 1;
	if (c->observer)
		c->observer(uc);
	for (int i = 0; i < c->nfn; i++) {
		int mine;
		d->in_master = 0; /* a trap strategy's handler runs an instrumented call */
		mine = c->fn[i](sig, si, uc);
		d->in_master = 1;
		if (mine)
			goto out;
	}
	a = c->prog;
	if (a.handler == SIG_IGN) {
		/* the kernel forces synchronous faults through SIG_IGN: default action */
		if (synchronous(sig) && si->si_code > 0)
			default_action(sig);
		goto out;
	}
	if (a.handler == SIG_DFL) {
		default_action(sig);
		goto out;
	}
	redo.rip = 0;
	redo.alias = 0;
	if (program_view(sig, si, uc, &a, nested, &redo))
		goto out;
	if (!((sysi_claimed_mask | sysi_observed_mask) & BIT(sig))) {
		/* wrapped: the kernel applied the program's flags and mask itself */
		if (a.flags & SA_RESETHAND) {
			c->prog.handler = SIG_DFL;
			c->prog.flags &= ~(unsigned long)SA_SIGINFO;
			__atomic_and_fetch(&wrapped, ~BIT(sig), __ATOMIC_RELAXED);
		}
		call_handler(sig, si, uc, &a, &redo);
		sysi_count_sigreturn(uc);
		goto out;
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
	call_handler(sig, si, uc, &a, &redo);
	/*
	 * Returning restores the interrupted context and mask (rt_sigreturn via sysi_restorer):
	 * the program's handler returned, so this rt_sigreturn stands for the program's own.
	 */
	sysi_count_sigreturn(uc);
out:
	d->in_master = nested;
}
