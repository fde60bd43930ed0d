/* vfork + exec /bin/true, then the parent prints the status. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	for (volatile int i = 0; i < 3; i++) {
		int st;
		pid_t pid = vfork();
		if (pid == 0) {
			execl("/bin/true", "true", (char *)0);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			return 1;
		printf("vfork child %d: exited=%d status=%d\n", i, WIFEXITED(st), WEXITSTATUS(st));
	}
	return 0;
}
