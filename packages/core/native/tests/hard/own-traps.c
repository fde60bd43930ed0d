/*
 * The program's own SIGILL (ud2), SIGTRAP (int3) and SIGSEGV (NULL read) handlers must run and
 * recover exactly as natively, whatever signal the runtime claimed. Also faults of the
 * instruction right after a `syscall` site (a page fault, a #GP): under the int4 variant they
 * report RIP = site + 2 like the site's own trap, and must still reach the program.
 *
 * What a NULL read does depends on page 0, so the expectation comes from OWN_TRAPS_PAGE0, which
 * the test sets from the host probe and the chain (packages/cli/test/e2e/hard.test.ts):
 *   unmapped  natively and under chains without zpoline: SIGSEGV, si_code SEGV_MAPERR;
 *   xonly     zpoline on a CPU with protection keys: the kernel backs PROT_EXEC alone with its
 *             execute-only key, so the read still faults, with si_code SEGV_PKUERR;
 *   readable  zpoline without protection keys: PROT_EXEC implies read, so the read does NOT
 *             fault (it reads zpoline's trampoline; the README's Security section).
 * Unset, the program works it out itself: page 0 mapped (mincore) and pkey_alloc working.
 * Each line prints the same text in every mode when the outcome is the expected one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SEGV_PKUERR
#define SEGV_PKUERR 4
#endif

enum page0 { UNMAPPED, XONLY, READABLE };

static sigjmp_buf env;
static volatile int codes[3];
/* NULL, opaque to the compiler: a visible NULL load becomes `mov 0x0,%eax; ud2` at -O2 */
static volatile int *volatile null_ptr;

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

/* the si_code a fault must carry: a page fault's, or SI_KERNEL for a #GP (no address) */
static volatile int want_code;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	codes[2] = sig == SIGSEGV && si->si_addr == 0 && si->si_code == want_code;
	siglongjmp(env, 2);
}

static enum page0 page0_expected(void)
{
	const char *e = getenv("OWN_TRAPS_PAGE0");
	unsigned char vec;
	long key;

	if (e && !*e)
		e = 0;
	if (e && !strcmp(e, "unmapped"))
		return UNMAPPED;
	if (e && !strcmp(e, "xonly"))
		return XONLY;
	if (e && !strcmp(e, "readable"))
		return READABLE;
	if (e) {
		fprintf(stderr, "own-traps: OWN_TRAPS_PAGE0=%s (use unmapped, xonly or readable)\n", e);
		exit(2);
	}
	if (syscall(SYS_mincore, 0L, 4096L, &vec) != 0 && errno == ENOMEM)
		return UNMAPPED;
	key = syscall(SYS_pkey_alloc, 0L, 0L);
	if (key < 0)
		return READABLE;
	syscall(SYS_pkey_free, key);
	return XONLY;
}

/* 1 when a NULL read (at the site, or after a syscall) did what page 0 allows */
static int null_read_ok(int faulted, enum page0 p)
{
	return p == READABLE ? !faulted : faulted && codes[2];
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
	enum page0 p0 = page0_expected();
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
	want_code = p0 == XONLY ? SEGV_PKUERR : SEGV_MAPERR;
	for (volatile int i = 0; i < 3; i++) {
		volatile int faulted = 1;
		codes[2] = 0;
		if (sigsetjmp(env, 1) == 0) {
			(void)*null_ptr;
			faulted = 0;
		}
		printf("NULL read %d as page 0 allows, ok=%d\n", i, null_read_ok(faulted, p0));
	}
	for (volatile int i = 0; i < 3; i++) {
		volatile int faulted = 1;
		codes[2] = 0;
		if (sigsetjmp(env, 1) == 0) {
			load_after_syscall(0);
			faulted = 0;
		}
		printf("NULL read after a syscall %d as page 0 allows, ok=%d\n", i, null_read_ok(faulted, p0));
	}
	want_code = SI_KERNEL;
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
