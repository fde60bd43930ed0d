/* SIGALRM from setitimer while the main loop makes syscalls; the handler makes syscalls too. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;
static int pfd[2];

static void on_alarm(int sig)
{
	char c = 'a';
	(void)sig;
	if (write(pfd[1], &c, 1) == 1 && read(pfd[0], &c, 1) == 1 && getpid() > 0)
		alarms++;
}

int main(void)
{
	struct sigaction sa;
	/* 2 ms: under strace a handler whose calls trap (ud2) takes most of a millisecond */
	struct itimerval it = { { 0, 2000 }, { 0, 2000 } };
	long loops = 0;
	if (pipe(pfd))
		return 1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, 0);
	setitimer(ITIMER_REAL, &it, 0);
	while (alarms < 50) {
		getppid();
		loops++;
	}
	memset(&it, 0, sizeof it);
	setitimer(ITIMER_REAL, &it, 0);
	printf("got %d alarms while looping (%s)\n", alarms >= 50 ? 50 : (int)alarms,
	       loops > 0 ? "main loop ran" : "main loop idle");
	return 0;
}
