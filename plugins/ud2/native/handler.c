/*
 * handler.c — the trap handler (called by libsysi's master signal handler, see claim_signal).
 * Recognises a patched site from the frame's exception vector (trapno) and the trapping RIP,
 * builds a sysi_call from the interrupted registers and dispatches it. Complete calls resume
 * at site + 2 with the result in rax: directly from the handler (resume.S) when the frame
 * allows it, else through rt_sigreturn (always with SYSI_UD2_SIGRETURN=1 in the environment,
 * or a shadow stack; with SYSI_MARKER=1 a marker call with SYSI_MARKER_TRAP_END precedes the
 * resume);
 * in-context calls (clone with a new stack, clone3, vfork, rt_sigreturn, deferred by the hook)
 * resume at the site's gadget, which makes the real syscall with the program's own registers
 * and stack after our signal frame is gone, then jumps to site + 2.
 */
#define _GNU_SOURCE
#include <asm/unistd.h>
#include <signal.h>
#include <stdint.h>
#include <ucontext.h>
#include "ud2.h"

/* The kernel's signal frame words we check (asm/sigcontext.h, asm/ucontext.h, linux/signal.h) */
#define UC_FP_XSTATE 0x1UL
#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U
#define FPX_SW_BYTES 464 /* offset of struct _fpx_sw_bytes in the XSAVE image */
#define XSAVE_MIN 576    /* legacy area + XSAVE header */
#define XSAVE_MAX 0x100000
#define UD2_SS_AUTODISARM (1U << 31)
#define EFLAGS_TF 0x100UL
#define USER_CS 0x33
/* exception vectors as the kernel reports them in sigcontext's trapno (asm/trapnr.h) */
#define X86_TRAP_BP 3
#define X86_TRAP_OF 4
#define X86_TRAP_UD 6
#define X86_TRAP_GP 13
#define ARCH_SHSTK_STATUS 0x5005
#define ARCH_SHSTK_SHSTK 0x1UL

struct fpx_sw_bytes {
	uint32_t magic1;
	uint32_t extended_size;
	uint64_t xfeatures;
	uint32_t xstate_size;
	uint32_t padding[7];
};

/*
 * PTRACE_TRACEME in a vfork child is deferred to its next exec (or kill-family call). Once
 * traced, every trap of ours stops the process until its tracer resumes it; when the tracer is
 * the vfork parent (gdb starting a program), it sleeps in vfork until the child execs, so the
 * child's next trap would hang both. Deferred, the child makes no traced trap before the exec:
 * the flush dispatches the program's TRACEME (the hook sees it there) right before the exec,
 * which then stops with SIGTRAP for the tracer as natively. Other processes get their TRACEME
 * at once (their tracer is free to resume their traps, and a fault right after TRACEME must
 * stop them, as gdb's own ret-to-nx probe expects). The child is told by kcmp(KCMP_VM): it
 * shares its address space with its parent; where kcmp is missing, TRACEME is immediate.
 *
 * traceme_pid: the child that deferred. It lives in memory the child shares with its parent:
 * the flush clears it before the exec; if the child exits instead, the parent's next trap
 * (the parent runs again only then) finds another pid and clears it.
 */
static volatile long traceme_pid;
static uintptr_t traceme_site;
#define PTRACE_TRACEME_REQ 0
#define KCMP_VM_ 1
#define AT_FDCWD_ (-100)
#define X_OK_ 1

/* 1: every complete call returns through rt_sigreturn (sysi_ud2_resume_setup) */
static int use_sigreturn;
/* SYSI_MARKER=1: a resume without rt_sigreturn says so to strace (SYSI_MARKER_TRAP_END) */
static int marker;
/* the hook is the built-in passthrough (api->fast_flags SYSI_FAST_PASSTHROUGH) */
static int passthrough;

void sysi_ud2_resume_setup(void)
{
	const char *e = sysi_ud2_api->getenv("SYSI_UD2_SIGRETURN");
	const char *mk = sysi_ud2_api->getenv("SYSI_MARKER");
	unsigned long features = 0;
	long r;

	/* the user shadow stack holds a token for the frame that only rt_sigreturn pops */
	r = sysi_ud2_api->syscall6(__NR_arch_prctl, ARCH_SHSTK_STATUS, (long)&features, 0, 0, 0,
				   0);
	use_sigreturn = (e && e[0] == '1') || (r == 0 && (features & ARCH_SHSTK_SHSTK));
	marker = mk && mk[0] == '1';
	passthrough = sysi_ud2_api->fast_hook && (sysi_ud2_api->fast_flags & SYSI_FAST_PASSTHROUGH);
}

/*
 * Can the complete call in uc resume without rt_sigreturn? Returns the frame's XSAVE image
 * (and its feature mask in *xfeatures), or NULL.
 */
static const unsigned char *fast_frame(const ucontext_t *uc, uint64_t *xfeatures)
{
	const unsigned char *fp = (const unsigned char *)uc->uc_mcontext.fpregs;
	const greg_t *g = uc->uc_mcontext.gregs;
	const struct fpx_sw_bytes *sw;

	if (use_sigreturn || !(uc->uc_flags & UC_FP_XSTATE) || !fp || ((uintptr_t)fp & 63))
		return 0;
	/*
	 * A signal deferred during the call (sysi.h watch_context): rt_sigreturn restores the
	 * program's mask with the program's context, so the kernel delivers it there. The frame's
	 * mask may hold it too, when it was deferred where no release followed (resume() after this
	 * check): it is blocked only for sysi, so it goes from the mask rt_sigreturn restores.
	 */
	if (sysi_ud2_api->defer_pending && sysi_ud2_api->defer_pending()) {
		*(uint64_t *)(void *)&((ucontext_t *)uc)->uc_sigmask &= ~sysi_ud2_api->defer_pending();
		return 0;
	}
	if ((unsigned)uc->uc_stack.ss_flags & UD2_SS_AUTODISARM) /* rt_sigreturn re-arms it */
		return 0;
	if ((g[REG_EFL] & EFLAGS_TF) || (g[REG_CSGSFS] & 0xffff) != USER_CS)
		return 0;
	sw = (const struct fpx_sw_bytes *)(fp + FPX_SW_BYTES);
	if (sw->magic1 != FP_XSTATE_MAGIC1 || sw->xstate_size < XSAVE_MIN ||
	    sw->xstate_size > XSAVE_MAX || (sw->xstate_size & 3))
		return 0;
	if (*(const uint32_t *)(fp + sw->xstate_size) != FP_XSTATE_MAGIC2)
		return 0;
	*xfeatures = sw->xfeatures;
	return fp;
}

/*
 * sysi.h watch_context: a signal on the return of a site's gadget (`syscall; jmp *site+2`, made
 * with the program's registers after the trap's frame is gone): the program's view is the
 * site's return point. Gadgets are 16-byte blocks of page-aligned chunks, so pc - 2 and the
 * gadget's .quad (pc + 6) lie in pc's page.
 */
static int gadget_view(greg_t *g);

int sysi_ud2_context(void *p)
{
	greg_t *g = ((ucontext_t *)p)->uc_mcontext.gregs;
	const unsigned char *pc = (const unsigned char *)g[REG_RIP];

	/*
	 * resume.S, loading the program's context from the trap's frame: the program's view is that
	 * context (gregs from rdi, or rsp once it points at them; the FP state from the frame's image
	 * until xrstor has run). The handler's rt_sigreturn then restores it itself.
	 */
	if (pc >= (const unsigned char *)sysi_ud2_resume && pc < sysi_ud2_resume_end) {
		const greg_t *t;
		if (pc == sysi_ud2_resume_jmp) {
			g[REG_RIP] = g[REG_RCX];
			gadget_view(g); /* a passthrough resume goes to the site's gadget */
			return 1;       /* its return traps at the site again: a passthrough's */
		}
		if (pc <= sysi_ud2_resume_mv)
			t = (const greg_t *)g[REG_RDI];
		else
			t = (const greg_t *)(g[REG_RSP] + (pc == sysi_ud2_resume_popf ? 8 : 0));
		if (pc <= sysi_ud2_resume_xrstor) /* the image xrstor was to load */
			((ucontext_t *)p)->uc_mcontext.fpregs = (fpregset_t)g[REG_RSI];
		for (int i = REG_R8; i <= REG_EFL; i++)
			g[i] = t[i];
		g[REG_RCX] = g[REG_RIP];
		g[REG_R11] = g[REG_EFL];
		gadget_view(g);
		return 1;
	}
	return gadget_view(g);
}

/*
 * A RIP at a site's gadget, before or after its syscall: the program's view, or 0. Before it the
 * view is the site, and the call was hooked already (its trap dispatched it, or it is the
 * passthrough's): 4, so a handler that returns to the view unchanged resumes here and makes
 * the call once, instead of trapping and hooking it again at the site (signal.c, struct redo).
 * A signal deferred during the trap is released exactly here, by the trap frame's rt_sigreturn.
 * After it: 1, the site's return point.
 */
static int gadget_view(greg_t *g)
{
	const unsigned char *pc = (const unsigned char *)g[REG_RIP];
	const struct sysi_ud2_site *s;
	uint64_t next;

	if (((uintptr_t)pc & (SYSI_UD2_GADGET_SIZE - 1)) == 0 && pc[0] == 0x0f && pc[1] == 0x05 &&
	    pc[2] == 0xff && pc[3] == 0x25) { /* the gadget's syscall is still to be made */
		next = *(const uint64_t *)(pc + 8);
		s = sysi_ud2_find((uintptr_t)next - 2);
		if (!s || s->gadget != (uintptr_t)pc)
			return 0;
		g[REG_RIP] = (greg_t)(next - 2); /* the site, before its call */
		return 4;
	}
	if (((uintptr_t)pc & (SYSI_UD2_GADGET_SIZE - 1)) != 2 || pc[-2] != 0x0f || pc[-1] != 0x05 ||
	    pc[0] != 0xff || pc[1] != 0x25)
		return 0;
	next = *(const uint64_t *)(pc + 6);
	s = sysi_ud2_find((uintptr_t)next - 2);
	if (!s || s->gadget != (uintptr_t)(pc - 2))
		return 0;
	g[REG_RIP] = g[REG_RCX] = (greg_t)next;
	return 1;
}

/* Resume the program at gregs[REG_RIP] from the frame (fast_frame said yes); never returns. */
__attribute__((noreturn)) static void resume(greg_t *g, const unsigned char *fp, uint64_t xfeatures)
{
	if (marker) /* strace oracles close the trap's frame here, not at rt_sigreturn */
		sysi_ud2_api->syscall6(SYSI_MARKER_NR, SYSI_MARKER_TRAP_END, 0, 0, 0, 0, 0);
	sysi_ud2_resume(g, fp, xfeatures);
}

/* Under SYSI_MARKER=1: bracket the handler's own syscalls for strace oracles (begin 1, end 0). */
static void own_work(int begin)
{
	if (marker)
		sysi_ud2_api->syscall6(SYSI_MARKER_NR,
				       begin ? SYSI_MARKER_WORK_BEGIN : SYSI_MARKER_WORK_END, 0, 0, 0, 0, 0);
}

static long getpid_raw(void)
{
	long pid;
	own_work(1);
	pid = sysi_ud2_api->syscall6(__NR_getpid, 0, 0, 0, 0, 0, 0);
	own_work(0);
	return pid;
}

/* Perform the deferred PTRACE_TRACEME now, through the hook (from the site that asked). */
static void traceme_flush(void)
{
	struct sysi_call t;
	t.nr = __NR_ptrace;
	t.args[0] = PTRACE_TRACEME_REQ;
	t.args[1] = t.args[2] = t.args[3] = t.args[4] = t.args[5] = 0;
	t.site = traceme_site;
	t.strategy = sysi_ud2_id;
	t.flags = 0;
	t.ret = 0;
	traceme_pid = 0;
	sysi_ud2_api->dispatch(&t);
	/*
	 * The trap's own call (the exec) follows in this same signal frame: strace oracles count
	 * only a frame's first call as the program's, so end the frame for them here.
	 */
	if (marker)
		sysi_ud2_api->syscall6(SYSI_MARKER_NR, SYSI_MARKER_TRAP_END, 0, 0, 0, 0, 0);
}

/* Does process pid share its address space with its parent (a vfork child)? */
static int in_vfork_child(long pid)
{
	long ppid, r;
	own_work(1);
	ppid = sysi_ud2_api->syscall6(__NR_getppid, 0, 0, 0, 0, 0, 0);
	r = sysi_ud2_api->syscall6(__NR_kcmp, pid, ppid, KCMP_VM_, 0, 0, 0);
	own_work(0);
	return r == 0;
}

/*
 * Before call nr of the vfork child with a deferred TRACEME: flush it when nr is an exec that will
 * likely succeed (an execve whose path is not executable fails without it, and a failed exec
 * after TRACEME would leave the process traced with its traps stopping: execvp tries each
 * directory of PATH) or a kill-family call (a process that stops itself for its tracer).
 */
static void traceme_before(const greg_t *g)
{
	long nr = g[REG_RAX];
	if (nr == __NR_execve) {
		long r;
		own_work(1);
		r = sysi_ud2_api->syscall6(__NR_faccessat, AT_FDCWD_, g[REG_RDI], X_OK_, 0, 0, 0);
		own_work(0);
		if (r != 0)
			return;
	} else if (nr != __NR_execveat && nr != __NR_kill && nr != __NR_tkill && nr != __NR_tgkill)
		return;
	traceme_flush();
}

int sysi_ud2_trap(int sig, void *info, void *ucontext)
{
	siginfo_t *si = info;
	ucontext_t *uc = ucontext;
	greg_t *g = uc->uc_mcontext.gregs;
	const struct sysi_ud2_site *s;
	const unsigned char *fp;
	uint64_t xfeatures;
	struct sysi_call c;
	uintptr_t site;
	uint32_t want;

	if (si->si_code <= 0) /* sent by a process, not a trap */
		return 0;
	/*
	 * The exception vector (sigcontext's trapno) tells our traps from other signals at the same
	 * RIP: e.g. a #GP or page fault of the instruction after an int4 site also reports RIP =
	 * site + 2 with SIGSEGV.
	 */
	switch (g[REG_TRAPNO]) {
	case X86_TRAP_UD:
		site = (uintptr_t)g[REG_RIP];
		want = SYSI_UD2_VARIANT_UD2;
		break;
	case X86_TRAP_BP:
		site = (uintptr_t)g[REG_RIP] - 1; /* int3 is a trap: RIP is past it */
		want = SYSI_UD2_VARIANT_INT3;
		break;
	case X86_TRAP_GP:
		site = (uintptr_t)g[REG_RIP];
		want = SYSI_UD2_VARIANT_HLT;
		break;
	case X86_TRAP_OF:
		site = (uintptr_t)g[REG_RIP] - 2; /* int $4 is a trap: RIP is past its 2 bytes */
		want = SYSI_UD2_VARIANT_INT4;
		break;
	default:
		return 0;
	}
	if (sig != sysi_ud2_variant_signal[want])
		return 0;
	s = sysi_ud2_find(site);
	if (!s || s->variant != want)
		return 0;
	/*
	 * The kernel reads the low 32 bits of rax as an int: (1 << 32) | 39 is getpid, and a number
	 * that is negative as an int or has the x32 bit is no 64-bit call. The call is dispatched
	 * under that number, so hooks, counts and the runtime's own work (rt_sigaction, clone,
	 * rt_sigreturn) see the call the kernel would run.
	 */
	g[REG_RAX] = (greg_t)(int)g[REG_RAX];
	if (g[REG_RAX] == __NR_ptrace && g[REG_RDI] == PTRACE_TRACEME_REQ) {
		long pid = getpid_raw();
		if (in_vfork_child(pid)) {
			/* deferred (see traceme_pid); the call succeeds now, as it would */
			traceme_site = site;
			traceme_pid = pid;
			g[REG_RAX] = 0;
			g[REG_RIP] = (greg_t)(site + 2);
			fp = fast_frame(uc, &xfeatures);
			if (fp)
				resume(g, fp, xfeatures);
			return 1;
		}
	}
	if (traceme_pid) {
		if (traceme_pid == getpid_raw())
			traceme_before(g);
		else /* the child exited without an exec: this is its parent */
			traceme_pid = 0;
	}
	/*
	 * The built-in passthrough hook (SYSI_FAST_PASSTHROUGH) records nothing: for the numbers
	 * that need no runtime work, resume at the site's gadget, which makes the call with the
	 * program's own registers after the signal frame is gone (a syscall made inside the
	 * handler costs about twice a plain one here).
	 */
	if (passthrough && sysi_passthrough_direct((unsigned long)g[REG_RAX])) {
		fp = fast_frame(uc, &xfeatures);
		if (fp) {
			g[REG_RIP] = (greg_t)s->gadget;
			resume(g, fp, xfeatures);
		}
	}
	c.nr = g[REG_RAX];
	c.args[0] = g[REG_RDI];
	c.args[1] = g[REG_RSI];
	c.args[2] = g[REG_RDX];
	c.args[3] = g[REG_R10];
	c.args[4] = g[REG_R8];
	c.args[5] = g[REG_R9];
	c.site = site;
	c.strategy = sysi_ud2_id;
	c.flags = 0;
	c.ret = 0;
	if (sysi_ud2_api->dispatch(&c) == 0) {
		g[REG_RAX] = c.ret;
		g[REG_RIP] = (greg_t)(site + 2);
		fp = fast_frame(uc, &xfeatures);
		if (fp)
			resume(g, fp, xfeatures);
		/*
		 * This handler runs with the program's mask (SA_NODEFER, empty sa_mask) and
		 * rt_sigreturn restores uc_sigmask/uc_stack: carry the program's changes over.
		 */
		if (c.nr == __NR_rt_sigprocmask && c.ret == 0) {
			sysi_ud2_api->syscall6(__NR_rt_sigprocmask, SIG_BLOCK, 0,
					       (long)&uc->uc_sigmask, 8, 0, 0);
			/* signals deferred meanwhile are blocked for sysi, not by the program */
			if (sysi_ud2_api->defer_pending)
				*(uint64_t *)(void *)&uc->uc_sigmask &= ~sysi_ud2_api->defer_pending();
		}
		else if (c.nr == __NR_sigaltstack && c.ret == 0)
			sysi_ud2_api->syscall6(__NR_sigaltstack, 0, (long)&uc->uc_stack, 0, 0, 0,
					       0);
		return 1;
	}
	g[REG_RAX] = c.nr;
	g[REG_RDI] = c.args[0];
	g[REG_RSI] = c.args[1];
	g[REG_RDX] = c.args[2];
	g[REG_R10] = c.args[3];
	g[REG_R8] = c.args[4];
	g[REG_R9] = c.args[5];
	g[REG_RIP] = (greg_t)s->gadget;
	return 1;
}
