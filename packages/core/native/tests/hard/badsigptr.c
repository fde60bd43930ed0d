/*
 * Bad pointers to rt_sigaction and rt_sigprocmask: the kernel fails them with EFAULT (its
 * copy_from_user), checking the size first, then reading the struct, then the signal number or
 * `how`. The runtime reads the program's sigaction and mask itself (it keeps the program's view
 * of claimed signals): it must give the same errors, never fault in its own code. Signals
 * claimed by trap strategies (SIGILL, SIGTRAP, SIGSEGV) take another path than the others.
 * Each line prints the raw result; the output is the same natively and instrumented.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *err(long r)
{
	static char b[32];
	if (r == 0)
		return "0";
	if (r == -1 && errno == EFAULT)
		return "EFAULT";
	if (r == -1 && errno == EINVAL)
		return "EINVAL";
	snprintf(b, sizeof b, "%ld errno %d", r, errno);
	return b;
}

struct ksa {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long mask;
};

static void on_sig(int s)
{
	(void)s;
}

int main(void)
{
	static const int sigs[] = { SIGIO, SIGUSR1, SIGILL, SIGTRAP, SIGSEGV, SIGSYS, SIGCHLD };
	/* a page followed by an unmapped one: a struct that starts 8 bytes before the end */
	char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long set = 1UL << (SIGUSR2 - 1), old;
	struct ksa sa, got;
	if (p == MAP_FAILED || munmap(p + 4096, 4096))
		return 1;
	for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		int s = sigs[i];
		printf("sig %2d: act=8 %s", s, err(syscall(SYS_rt_sigaction, s, (void *)8, 0, 8)));
		printf(", act=page end %s", err(syscall(SYS_rt_sigaction, s, p + 4096 - 8, 0, 8)));
		printf(", act=8 size 7 %s", err(syscall(SYS_rt_sigaction, s, (void *)8, 0, 7)));
		printf(", oact=8 %s", err(syscall(SYS_rt_sigaction, s, 0, (void *)8, 8)));
		/* still the program's own disposition afterwards */
		memset(&got, 0x55, sizeof got);
		printf(", query %s", err(syscall(SYS_rt_sigaction, s, 0, &got, 8)));
		printf(" %s\n", got.handler == SIG_DFL ? "SIG_DFL" : "other");
	}
	/* a handler installed while the old action cannot be written: the kernel installs it */
	memset(&sa, 0, sizeof sa);
	sa.handler = on_sig;
	/* never delivered: no restorer needed */
	printf("SIGUSR1 act ok, oact=8: %s", err(syscall(SYS_rt_sigaction, SIGUSR1, &sa, (void *)8, 8)));
	memset(&got, 0, sizeof got);
	syscall(SYS_rt_sigaction, SIGUSR1, 0, &got, 8);
	printf(", then installed: %s\n", got.handler == (void *)on_sig ? "yes" : "no");
	printf("sig 0, act=8: %s\n", err(syscall(SYS_rt_sigaction, 0, (void *)8, 0, 8)));
	printf("sig 65, act=8: %s\n", err(syscall(SYS_rt_sigaction, 65, (void *)8, 0, 8)));
	printf("SIGKILL, act=8: %s\n", err(syscall(SYS_rt_sigaction, SIGKILL, (void *)8, 0, 8)));
	printf("sigprocmask set=8: %s\n", err(syscall(SYS_rt_sigprocmask, SIG_BLOCK, (void *)8, 0, 8)));
	printf("sigprocmask set=page end: %s\n",
	       err(syscall(SYS_rt_sigprocmask, SIG_BLOCK, p + 4096 - 4, 0, 8)));
	printf("sigprocmask how=99 set=8: %s\n", err(syscall(SYS_rt_sigprocmask, 99, (void *)8, 0, 8)));
	printf("sigprocmask how=99 set ok: %s\n", err(syscall(SYS_rt_sigprocmask, 99, &set, 0, 8)));
	printf("sigprocmask set=8 size 4: %s\n", err(syscall(SYS_rt_sigprocmask, SIG_BLOCK, (void *)8, 0, 4)));
	printf("sigprocmask oset=8: %s\n", err(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, (void *)8, 8)));
	old = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, 0, &old, 8);
	printf("mask has SIGUSR2: %s\n", (old & set) ? "yes" : "no");
	return 0;
}
