/*
 * In-context calls (vfork, clone3) under a storm of timer signals: every call must be hooked
 * exactly once, and the program's SIGALRM handler must see RIP in the program's own code.
 *
 * Under ud2 an in-context call's trap dispatches it (the count hook counts it), then resumes at
 * the site's gadget, which makes the call with the program's registers. A SIGALRM that arrives
 * during the trap is deferred and released by the trap frame's rt_sigreturn, i.e. at the
 * gadget's first instruction; the program's handler is shown RIP at the site (the call still to
 * come). Before signal.c's struct redo its return went to that site, which trapped and hooked the
 * call a second time: 2213 vforks counted for 2000 made.
 *
 * Prints how many vforks and threads it made (the count hook's vfork and clone3 must equal them,
 * as strace -f -c's do) and how many of the handler's interrupted RIPs lay outside the program's
 * code (the executable, libc, the dynamic loader, the vDSO): none natively, none under sysi.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define MAX_RIPS 65536
static unsigned long rips[MAX_RIPS];
static volatile unsigned long nsig;

static void on_alrm(int sig, siginfo_t *si, void *p)
{
	unsigned long i = nsig++;
	(void)sig;
	(void)si;
	if (i < MAX_RIPS)
		rips[i] = (unsigned long)((ucontext_t *)p)->uc_mcontext.gregs[REG_RIP];
}

static void *thread_fn(void *arg)
{
	return arg;
}

int main(int argc, char **argv);

/* the executable, libc, the dynamic loader or the vDSO: code the program itself runs */
static int programs_code(unsigned long pc)
{
	Dl_info info, exe;
	const char *f;
	if (!dladdr((void *)pc, &info) || !info.dli_fname)
		return 0;
	if (dladdr((void *)main, &exe) && info.dli_fbase == exe.dli_fbase)
		return 1;
	f = info.dli_fname;
	return strstr(f, "/libc.so") || strstr(f, "/ld-linux") || strstr(f, "linux-vdso");
}

/* static: vfork's child runs on the parent's stack until it exits */
static int vforks, threads;

int main(int argc, char **argv)
{
	int nvfork = argc > 1 ? atoi(argv[1]) : 2000, nthread = argc > 2 ? atoi(argv[2]) : 300;
	long us = argc > 3 ? atol(argv[3]) : 50; /* the timer's interval, in microseconds */
	struct itimerval on = { { 0, us }, { 0, us } }, off = { { 0, 0 }, { 0, 0 } };
	struct sigaction sa;
	static unsigned long foreign, n;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_alrm;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGALRM, &sa, 0);
	setitimer(ITIMER_REAL, &on, 0);
	for (int i = 0; i < nvfork; i = vforks) {
		pid_t p = vfork();
		if (p == 0)
			_exit(0);
		if (p > 0)
			vforks++;
	}
	for (int i = 0; i < nthread; i++) {
		pthread_t t;
		if (pthread_create(&t, 0, thread_fn, 0) == 0 && pthread_join(t, 0) == 0)
			threads++;
	}
	setitimer(ITIMER_REAL, &off, 0);
	while (waitpid(-1, 0, 0) > 0)
		;
	n = nsig < MAX_RIPS ? nsig : MAX_RIPS;
	for (unsigned long i = 0; i < n; i++)
		if (!programs_code(rips[i])) {
			Dl_info info;
			if (!foreign)
				fprintf(stderr, "foreign RIP %#lx (%s)\n", rips[i],
					dladdr((void *)rips[i], &info) && info.dli_fname ? info.dli_fname
											  : "no module");
			foreign++;
		}
	printf("vfork %d\nthreads %d\nsignals %s\nhandler RIPs outside the program's code: %lu\n", vforks,
	       threads, nsig ? "some" : "none", foreign);
	return 0;
}
