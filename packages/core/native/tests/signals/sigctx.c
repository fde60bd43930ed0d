/* sigctx.c — a handler for a signal delivered on the return of an instrumented kill() edits
 * registers, RIP and the mask in its ucontext; the edits take effect at rt_sigreturn. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static volatile long seen_rax, seen_r12;
extern char after_kill[], resume_here[];

static void on_usr1(int sig, siginfo_t *si, void *p)
{
	ucontext_t *uc = p;
	(void)sig;
	seen_rax = uc->uc_mcontext.gregs[REG_RAX];
	seen_r12 = uc->uc_mcontext.gregs[REG_R12];
	printf("handler: si_code %d from self %d, rip at after_kill %d\n", si->si_code,
	       si->si_pid == getpid(), uc->uc_mcontext.gregs[REG_RIP] == (greg_t)after_kill);
	uc->uc_mcontext.gregs[REG_R12] = 0x1234;       /* callee-saved: the program checks it */
	uc->uc_mcontext.gregs[REG_RBX] = 0x5678;
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)resume_here; /* skip the "not skipped" marker */
	sigaddset(&uc->uc_sigmask, SIGUSR2);           /* blocked after return */
}

int main(void)
{
	struct sigaction sa;
	sigset_t now;
	long r12 = 0, rbx = 0, marker = 0;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, 0);
	__asm__ volatile(
		"mov $1, %%r12\n\t"
		"mov $2, %%rbx\n\t"
		"xor %2, %2\n\t"
		"syscall\n"
		"after_kill:\n\t"
		"mov $1, %2\n"      /* skipped when the handler moved RIP */
		"resume_here:\n\t"
		"mov %%r12, %0\n\t"
		"mov %%rbx, %1\n\t"
		: "=r"(r12), "=r"(rbx), "=r"(marker)
		: "a"((long)SYS_kill), "D"((long)getpid()), "S"((long)SIGUSR1)
		: "rcx", "r11", "r12", "rbx", "memory");
	sigprocmask(SIG_BLOCK, 0, &now);
	printf("kill returned %ld to the handler; r12 %#lx (handler saw %#lx) rbx %#lx; skipped %s; SIGUSR2 blocked %d\n",
	       seen_rax, r12, seen_r12, rbx, marker ? "no" : "yes", sigismember(&now, SIGUSR2));
	return 0;
}
