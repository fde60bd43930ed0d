/*
 * rt_sigreturn through the program's handler (glibc's __restore_rt), with the signal masks the
 * kernel saves and restores around it, and mask changes made outside any handler staying put.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile int seen, blocked_inside;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	sigset_t m, add;
	(void)sig;
	(void)si;
	(void)uc;
	sigprocmask(SIG_SETMASK, 0, &m);
	blocked_inside = sigismember(&m, SIGUSR1);
	sigemptyset(&add);
	sigaddset(&add, SIGUSR2); /* undone by rt_sigreturn, as natively */
	sigprocmask(SIG_BLOCK, &add, 0);
	seen++;
}

int main(void)
{
	struct sigaction sa;
	sigset_t m, add;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, 0);
	for (int i = 0; i < 5; i++)
		kill(getpid(), SIGUSR1);
	sigprocmask(SIG_SETMASK, 0, &m);
	printf("handled %d, SIGUSR1 blocked inside=%d, SIGUSR2 blocked after=%d\n", seen,
	       blocked_inside, sigismember(&m, SIGUSR2));
	sigemptyset(&add);
	sigaddset(&add, SIGHUP);
	sigprocmask(SIG_BLOCK, &add, 0);
	sigprocmask(SIG_SETMASK, 0, &m);
	printf("SIGHUP blocked after sigprocmask outside a handler=%d\n", sigismember(&m, SIGHUP));
	return 0;
}
