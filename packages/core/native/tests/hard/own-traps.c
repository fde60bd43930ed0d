/*
 * The program's own SIGILL (ud2), SIGTRAP (int3) and SIGSEGV (NULL read) handlers must run and
 * recover exactly as natively, whatever signal the runtime claimed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf env;
static volatile int codes[3];

static void on_ill(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	codes[0] = si->si_code == ILL_ILLOPN && sig == SIGILL;
	siglongjmp(env, 1);
}

static void on_trap(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	codes[1] = sig == SIGTRAP && si->si_signo == SIGTRAP;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	codes[2] = sig == SIGSEGV && si->si_addr == 0;
	siglongjmp(env, 2);
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO;
	sigaction(sig, &sa, 0);
}

int main(void)
{
	struct sigaction old;
	sigset_t m;
	install(SIGILL, on_ill);
	install(SIGTRAP, on_trap);
	install(SIGSEGV, on_segv);
	sigaction(SIGILL, 0, &old);
	printf("SIGILL handler reported back: %s\n", old.sa_sigaction == on_ill ? "ours" : "other");
	for (volatile int i = 0; i < 3; i++) {
		codes[0] = 0;
		if (sigsetjmp(env, 1) == 0)
			__asm__ volatile("ud2");
		printf("ud2 %d recovered, si_code ok=%d\n", i, codes[0]);
	}
	for (volatile int i = 0; i < 3; i++) {
		codes[1] = 0;
		__asm__ volatile("int3");
		printf("int3 %d handled, ok=%d\n", i, codes[1]);
	}
	for (volatile int i = 0; i < 3; i++) {
		codes[2] = 0;
		if (sigsetjmp(env, 1) == 0)
			(void)*(volatile int *)0;
		printf("NULL read %d recovered, ok=%d\n", i, codes[2]);
	}
	sigprocmask(SIG_SETMASK, 0, &m);
	printf("after recovery: SIGILL blocked=%d SIGSEGV blocked=%d\n", sigismember(&m, SIGILL),
	       sigismember(&m, SIGSEGV));
	return 0;
}
