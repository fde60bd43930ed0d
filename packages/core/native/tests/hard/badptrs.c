/*
 * Bad pointers to the calls the runtimes read or write memory for themselves: clone3's struct
 * clone_args (zpoline copies it to move the child's return address), setrlimit/prlimit64
 * (punning reads the new RLIMIT_AS), execve's argv/envp (libsysi re-adds its environment), and a
 * clone whose new stack is not writable (zpoline writes the child's return address there).
 * Natively the kernel fails the call with EFAULT, or the child faults on its stack: the
 * instrumented program must see the same, never fault in the runtime. The pointer is the first
 * non-canonical address, so it is bad whatever is mapped (page 0 included).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD ((void *)(1UL << 47))

static void p(const char *n, long r)
{
	printf("%s: %ld %s\n", n, r, r >= 0 ? "" : errno == EFAULT ? "EFAULT" : errno == EINVAL ? "EINVAL" : "other");
}

int main(void)
{
	long pid;
	int st = 0;
	char *hole;
	setvbuf(stdout, 0, _IONBF, 0);
	p("clone3 args", syscall(SYS_clone3, BAD, 88));
	p("setrlimit", syscall(SYS_setrlimit, RLIMIT_AS, BAD));
	p("prlimit64 new", syscall(SYS_prlimit64, 0, RLIMIT_AS, BAD, 0));
	p("prlimit64 old", syscall(SYS_prlimit64, 0, RLIMIT_AS, 0, BAD));
	p("execve argv", syscall(SYS_execve, "/bin/true", BAD, BAD));
	p("execve envp", syscall(SYS_execve, "/bin/true", 0, BAD));
	p("sigaltstack", syscall(SYS_sigaltstack, BAD, 0));
	/* a child on a stack it cannot use (an unmapped page): it dies with SIGSEGV, the parent
	 * carries on */
	hole = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hole == MAP_FAILED || munmap(hole, 4096))
		return 1;
	pid = syscall(SYS_clone, SIGCHLD, hole + 4096, 0, 0, 0);
	if (pid == 0)
		syscall(SYS_exit, 3); /* not reached: the wrapper's ret faults first */
	if (pid > 0 && waitpid(pid, &st, 0) == pid)
		printf("clone bad stack: child %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
		       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	else
		p("clone bad stack", pid);
	{
		/* the same through clone3 (struct clone_args: flags, ..., exit_signal at 32, stack
		 * at 40, stack_size at 48) */
		unsigned long args[11] = { 0 };
		args[4] = SIGCHLD;
		args[5] = (unsigned long)hole;
		args[6] = 4096;
		pid = syscall(SYS_clone3, args, 88);
		if (pid == 0)
			syscall(SYS_exit, 3);
		if (pid > 0 && waitpid(pid, &st, 0) == pid)
			printf("clone3 bad stack: child %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
			       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		else
			p("clone3 bad stack", pid);
	}
	return 0;
}
