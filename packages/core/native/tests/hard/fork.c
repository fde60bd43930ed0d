/* fork + wait: the child writes and exits with a status the parent prints. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	for (int i = 0; i < 3; i++) {
		int st;
		pid_t pid;
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			printf("child %d running\n", i);
			fflush(stdout);
			_exit(10 + i);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			return 1;
		printf("parent: child %d exit status %d\n", i, WEXITSTATUS(st));
	}
	return 0;
}
