/*
 * The program's own SIGILL (ud2), SIGTRAP (int3) and SIGSEGV (NULL read) handlers must run and
 * recover exactly as natively, whatever signal the runtime claimed. Also faults of the
 * instruction right after a `syscall` site (a page fault, a #GP): under the int4 variant they
 * report RIP = site + 2 like the site's own trap, and must still reach the program.
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

/* 1: a page fault at address 0; 0: a #GP (the kernel reports SI_KERNEL and no address) */
static volatile int want_page_fault;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	/*
	 * SEGV_PKUERR, not SEGV_MAPERR, when zpoline has mapped page 0 execute-only through a
	 * protection key (SEGV_ACCERR where it is mapped without read permission otherwise)
	 */
	int code_ok = want_page_fault ? si->si_code == SEGV_MAPERR || si->si_code == SEGV_ACCERR ||
						si->si_code == SEGV_PKUERR
				      : si->si_code == SI_KERNEL;
	codes[2] = sig == SIGSEGV && si->si_addr == 0 && code_ok;
	siglongjmp(env, 2);
}

/* A syscall site (getppid) whose next instruction loads from addr. */
__attribute__((noinline)) static long load_after_syscall(unsigned long addr)
{
	long r;
	unsigned long v;
	__asm__ volatile("syscall\n\tmovq (%2), %1"
			 : "=a"(r), "=r"(v)
			 : "r"(addr), "0"(110L)
			 : "rcx", "r11", "memory");
	return r + (long)v;
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
	want_page_fault = 1;
	for (volatile int i = 0; i < 3; i++) {
		codes[2] = 0;
		if (sigsetjmp(env, 1) == 0)
			(void)*(volatile int *)0;
		printf("NULL read %d recovered, ok=%d\n", i, codes[2]);
	}
	for (volatile int i = 0; i < 3; i++) {
		codes[2] = 0;
		if (sigsetjmp(env, 1) == 0)
			load_after_syscall(0);
		printf("NULL read after a syscall %d recovered, ok=%d\n", i, codes[2]);
	}
	want_page_fault = 0;
	for (volatile int i = 0; i < 3; i++) {
		codes[2] = 0;
		if (sigsetjmp(env, 1) == 0)
			load_after_syscall(0x8000000000000000UL); /* non-canonical */
		printf("non-canonical read after a syscall %d recovered, ok=%d\n", i, codes[2]);
	}
	sigprocmask(SIG_SETMASK, 0, &m);
	printf("after recovery: SIGILL blocked=%d SIGSEGV blocked=%d\n", sigismember(&m, SIGILL),
	       sigismember(&m, SIGSEGV));
	return 0;
}
