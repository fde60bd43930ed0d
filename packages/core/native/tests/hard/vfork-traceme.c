/*
 * A debugger's start of a program (gdb's fork_inferior): vfork, PTRACE_TRACEME in the child,
 * exec, while the parent, the tracer, sleeps in vfork until the exec. The child must make no
 * trap that stops it before the exec (the parent could never resume it: both would hang), and
 * the exec must stop it with SIGTRAP for the tracer, as natively. Every later stop (a trap
 * strategy's signal in the instrumented program) is passed on to it.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	int st;
	volatile int first = 1, exec_stop = 0; /* volatile: vfork returns twice in this frame */
	pid_t pid = vfork();
	if (pid < 0) {
		perror("vfork");
		return 1;
	}
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
			_exit(126);
		/* a failed attempt first, as execvp's PATH search makes */
		execl("/nonexistent/true", "true", (char *)0);
		execl("/bin/true", "true", (char *)0);
		_exit(127);
	}
	for (;;) {
		if (waitpid(pid, &st, 0) < 0) {
			perror("waitpid");
			return 1;
		}
		if (WIFEXITED(st)) {
			printf("child exited with %d; stopped by the exec's SIGTRAP first: %d\n",
			       WEXITSTATUS(st), exec_stop);
			return 0;
		}
		if (WIFSIGNALED(st)) {
			printf("child killed by signal %d\n", WTERMSIG(st));
			return 1;
		}
		if (WIFSTOPPED(st)) {
			int sig = WSTOPSIG(st);
			if (first)
				exec_stop = sig == SIGTRAP;
			/* the exec's SIGTRAP is the tracer's; every other signal goes on to the child */
			ptrace(PTRACE_CONT, pid, 0, first && sig == SIGTRAP ? 0 : sig);
			first = 0;
		}
	}
}
