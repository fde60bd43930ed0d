/* A forked child calls a NULL function pointer: it must die of SIGSEGV, as natively. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	int st;
	pid_t pid;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		void (*volatile fn)(void) = 0;
		fn();
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 1;
	if (WIFSIGNALED(st))
		printf("child killed by signal %d (%s)\n", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		printf("child exited with %d\n", WEXITSTATUS(st));
	return 0;
}
