/* clone3 with a new stack (CLONE_VM|CLONE_VFORK): the child runs on its own stack, writes, exits. */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

long clone3_run(struct clone_args *a, unsigned long size, void (*fn)(void));

static void child(void)
{
	static const char msg[] = "clone3 child on its own stack\n";
	write(1, msg, sizeof msg - 1);
}

int main(void)
{
	size_t sz = 1 << 16;
	void *stack = mmap(0, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct clone_args a;
	int st;
	long pid;

	memset(&a, 0, sizeof a);
	a.flags = CLONE_VM | CLONE_VFORK;
	a.exit_signal = SIGCHLD;
	a.stack = (uintptr_t)stack;
	a.stack_size = sz;
	setvbuf(stdout, 0, _IONBF, 0);
	for (int i = 0; i < 3; i++) {
		pid = clone3_run(&a, sizeof a, child);
		if (pid < 0) {
			printf("clone3 failed: %ld\n", pid);
			return 1;
		}
		if (waitpid((pid_t)pid, &st, 0) != pid || !WIFEXITED(st)) {
			printf("bad wait\n");
			return 1;
		}
		printf("parent: child %d exited with %d\n", i, WEXITSTATUS(st));
	}
	return 0;
}
