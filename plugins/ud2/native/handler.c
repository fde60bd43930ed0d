/*
 * handler.c — the trap handler (called by libsysi's master signal handler, see claim_signal).
 * Recognises a patched site from the trapping RIP, builds a sysi_call from the interrupted
 * registers and dispatches it. Complete calls resume at site + 2 with the result in rax;
 * in-context calls (clone with a new stack, clone3, vfork, rt_sigreturn, deferred by the hook)
 * resume at the site's gadget, which makes the real syscall with the program's own registers
 * and stack after our signal frame is gone, then jumps to site + 2.
 */
#define _GNU_SOURCE
#include <asm/unistd.h>
#include <signal.h>
#include <ucontext.h>
#include "ud2.h"

int sysi_ud2_trap(int sig, void *info, void *ucontext)
{
	siginfo_t *si = info;
	ucontext_t *uc = ucontext;
	greg_t *g = uc->uc_mcontext.gregs;
	const struct sysi_ud2_site *s;
	struct sysi_call c;
	uintptr_t site;
	uint32_t want;

	if (si->si_code <= 0) /* sent by a process, not a trap */
		return 0;
	switch (sig) {
	case SIGILL:
		site = (uintptr_t)g[REG_RIP];
		want = SYSI_UD2_VARIANT_UD2;
		break;
	case SIGTRAP:
		site = (uintptr_t)g[REG_RIP] - 1; /* int3 is a trap: RIP is past it */
		want = SYSI_UD2_VARIANT_INT3;
		break;
	case SIGSEGV:
		site = (uintptr_t)g[REG_RIP];
		want = SYSI_UD2_VARIANT_HLT;
		break;
	default:
		return 0;
	}
	s = sysi_ud2_find(site);
	if (!s || s->variant != want)
		return 0;
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
		/*
		 * This handler runs with the program's mask (SA_NODEFER, empty sa_mask) and
		 * rt_sigreturn restores uc_sigmask/uc_stack: carry the program's changes over.
		 */
		if (c.nr == __NR_rt_sigprocmask && c.ret == 0)
			sysi_ud2_api->syscall6(__NR_rt_sigprocmask, SIG_BLOCK, 0,
					       (long)&uc->uc_sigmask, 8, 0, 0);
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
