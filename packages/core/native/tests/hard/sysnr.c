/*
 * Every system-call number gets the kernel's answer, inline and through libc's syscall(): the
 * kernel reads the low 32 bits of rax as an int, so a number with bits set above bit 31 whose
 * low half is a syscall runs that syscall ((1 << 32) | 39 is getpid), and every other number
 * (>= the table size, negative as an int, the x32 bit 0x40000000 on a kernel without x32)
 * fails with ENOSYS. strace names x32 numbers from its x32 table: 0x40000000 | 39 is getpid,
 * | 512 rt_sigaction (x32's own), | 13 rt_sigaction#64 (a 64-bit-only number), | 600 none. zpoline's `call *%rax` goes to address rax for such numbers, and its
 * runtime recovers from the fault: so the second pass blocks SIGSEGV and installs a handler of
 * its own, which must change nothing (natively no fault happens at all). Last, handlers for
 * SIGUSR1, SIGILL and SIGTRAP installed through rt_sigaction with bit 32 of the number set are
 * the program's: sigaction() reports them, and the program's calls go on as natively (a runtime
 * that took the number for an unknown call would let it reach the kernel around its own signal
 * bookkeeping, and a trap strategy's traps would land in the program's handler).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const unsigned long nrs[] = {
	4092, 4093, 4094, 4095, 4096, 100000, 0x7fffffff,
	(unsigned long)-1L, (unsigned long)(long)INT_MIN, (unsigned long)-4096L,
	0xffffffffUL, 0x80000000UL | SYS_getpid,
	(1UL << 32) | SYS_getpid, (1UL << 63) | SYS_getppid, 0xffffffff00000000UL | SYS_getppid,
	(1UL << 47) | SYS_getpid, 0x40000000UL, 0x40000000UL | SYS_getpid, 0x40000000UL | 512,
	0x40000000UL | 547, (1UL << 32) | 0x40000000UL | SYS_getpid, 512, 547, 1023, 1024,
	0x40000000UL | SYS_rt_sigaction, 0x40000000UL | 600, 0x40000000UL | 1023, 0x40000000UL | 1024,
};

/* one syscall instruction, the number in a register: no static number at this site */
__attribute__((noinline)) static long raw(unsigned long nr)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr) : "rcx", "r11", "memory");
	return r;
}

static const char *what(long r, int err)
{
	static char buf[64];
	if (r == getpid())
		return "getpid";
	if (r == getppid())
		return "getppid";
	if (!err && r < 0 && r > -4096)
		err = (int)-r;
	if (err)
		snprintf(buf, sizeof buf, "%s", strerrorname_np(err));
	else
		snprintf(buf, sizeof buf, "%ld", r);
	return buf;
}

static void on_usr1(int sig)
{
	(void)sig;
}

static void on_trap(int sig)
{
	(void)sig;
	static const char msg[] = "the program's SIGILL/SIGTRAP handler ran\n";
	write(1, msg, sizeof msg - 1);
	_exit(1);
}

/* rt_sigaction(sig, handler) with bit 32 of the number set: the kernel runs rt_sigaction */
static long high_sigaction(int sig, void (*handler)(int))
{
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		unsigned long mask;
	} ka = { handler, 0, 0, 0 };
	register long sigsetsize __asm__("r10") = 8;
	long r;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"((1UL << 32) | SYS_rt_sigaction), "D"(sig), "S"(&ka), "d"(0),
			   "r"(sigsetsize)
			 : "rcx", "r11", "memory");
	return r;
}

static void on_segv(int sig)
{
	(void)sig;
	static const char msg[] = "the program's SIGSEGV handler ran\n";
	write(1, msg, sizeof msg - 1);
	_exit(1);
}

int main(void)
{
	sigset_t segv;
	int same = 1;

	for (unsigned i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
		long r = raw(nrs[i]), l;
		printf("%#18lx inline %-8s", nrs[i], what(r, 0));
		errno = 0;
		l = syscall((long)nrs[i]);
		printf(" libc %s\n", what(l, l == -1 ? errno : 0));
	}
	fflush(stdout);
	signal(SIGSEGV, on_segv);
	sigemptyset(&segv);
	sigaddset(&segv, SIGSEGV);
	sigprocmask(SIG_BLOCK, &segv, 0);
	for (unsigned i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
		char a[64];
		long l;
		snprintf(a, sizeof a, "%s", what(raw(nrs[i]), 0));
		errno = 0;
		l = syscall((long)nrs[i]);
		same &= !strcmp(a, what(l, l == -1 ? errno : 0));
	}
	printf("SIGSEGV blocked, a handler installed: %s\n", same ? "the same answers" : "DIFFERENT");
	{
		struct sigaction old;
		long r = high_sigaction(SIGUSR1, on_usr1);
		r |= high_sigaction(SIGILL, on_trap) | high_sigaction(SIGTRAP, on_trap);
		sigaction(SIGUSR1, 0, &old);
		printf("rt_sigaction with bit 32 set: %ld, sigaction() reports %s", r,
		       old.sa_handler == on_usr1 ? "its handler" : "another handler");
		sigaction(SIGILL, 0, &old);
		printf(", %s for SIGILL, pid %s\n", old.sa_handler == on_trap ? "its" : "another",
		       getpid() > 0 ? "known" : "unknown");
	}
	return 0;
}
