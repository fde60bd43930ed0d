/*
 * NULL pointer arguments: the kernel reads or writes address 0 for the program and fails with
 * EFAULT, unless page 0 is mapped and readable, which zpoline's page 0 is on a CPU without
 * protection keys (README, Security): then a read gets page 0's bytes (chdir(NULL) gives
 * ENAMETOOLONG, a write(NULL, 8) writes 8 bytes). Writes to address 0 fail in every case: page 0
 * is never writable.
 *
 * What to expect comes from NULL_ARGS_PAGE0 (set by the test from the host probe and what the
 * chain did):
 *   unmapped  natively, and whenever zpoline patched nothing (it maps page 0 for its first site);
 *   xonly     zpoline on a CPU with protection keys: page 0 execute-only, reads fault: EFAULT;
 *   readable  zpoline without protection keys: reads from address 0 succeed.
 * Unset, the program works it out itself: page 0 mapped (mincore) and pkey_alloc working.
 * Each line prints the same text in every mode when the outcome is the expected one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

enum page0 { UNMAPPED, XONLY, READABLE };

static enum page0 page0_expected(void)
{
	const char *e = getenv("NULL_ARGS_PAGE0");
	unsigned char vec;
	long key;

	if (e && !*e)
		e = 0;
	if (e && !strcmp(e, "unmapped"))
		return UNMAPPED;
	if (e && !strcmp(e, "xonly"))
		return XONLY;
	if (e && !strcmp(e, "readable"))
		return READABLE;
	if (e) {
		fprintf(stderr, "nullargs: NULL_ARGS_PAGE0=%s (use unmapped, xonly or readable)\n", e);
		exit(2);
	}
	if (syscall(SYS_mincore, 0L, 4096L, &vec) != 0 && errno == ENOMEM)
		return UNMAPPED;
	key = syscall(SYS_pkey_alloc, 0L, 0L);
	if (key < 0)
		return READABLE;
	syscall(SYS_pkey_free, key);
	return XONLY;
}

/* A call that reads from address 0: EFAULT unless page 0 is readable. */
static void reads(const char *what, long r, enum page0 p)
{
	int efault = r == -1 && errno == EFAULT;
	printf("%s reads address 0 as page 0 allows, ok=%d\n", what, p == READABLE ? !efault : efault);
}

/* A call that writes to address 0: EFAULT in every case. */
static void writes(const char *what, long r)
{
	printf("%s: %s\n", what, r == -1 ? strerrorname_np(errno) : "succeeded");
}

int main(void)
{
	enum page0 p0 = page0_expected();
	int fd[2];
	char *volatile null = 0;

	if (pipe(fd) != 0)
		return 1;
	errno = 0;
	reads("chdir(NULL)", chdir(null), p0);
	errno = 0;
	reads("chroot(NULL)", syscall(SYS_chroot, null), p0);
	errno = 0;
	reads("setrlimit(RLIMIT_NOFILE, NULL)", syscall(SYS_setrlimit, RLIMIT_NOFILE, null), p0);
	errno = 0;
	reads("write(pipe, NULL, 8)", write(fd[1], null, 8), p0);
	/*
	 * setdomainname(NULL, 63): strace's own test for it set the machine's NIS domain name to
	 * page 0's bytes under a readable page 0. Only inside a UTS namespace of its own, so that a
	 * read of page 0 cannot rename the machine.
	 */
	errno = 0;
	if (unshare(CLONE_NEWUTS) == 0) {
		errno = 0;
		reads("setdomainname(NULL, 63)", syscall(SYS_setdomainname, null, 63L), p0);
	} else {
		printf("setdomainname(NULL, 63) not tried: no UTS namespace of its own (%s)\n", strerrorname_np(errno));
	}
	errno = 0;
	writes("uname(NULL)", syscall(SYS_uname, null));
	errno = 0;
	writes("getcwd(NULL, 64)", syscall(SYS_getcwd, null, 64L));
	errno = 0;
	writes("read(pipe, NULL, 8)", write(fd[1], "12345678", 8) == 8 ? read(fd[0], null, 8) : -2);
	return 0;
}
