/*
 * complete.c — the measured program of bench/complete.ts: ns per getppid in a tight loop.
 *   complete MODE N     MODE: libc (glibc's syscall(): a planned site, patched under sysi run)
 *                             jit  (a `syscall` copied into an anonymous executable page: no
 *                                   patch reaches it; under --complete the SUD catch-all does)
 * Prints one line: "<mode> <ns per call>" (CLOCK_MONOTONIC over N calls, after N/10 warm-up).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long libc_call(void) { return syscall(SYS_getppid); }

int main(int argc, char **argv)
{
	/* mov $110,%eax; syscall; ret */
	static const unsigned char code[] = { 0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0xc3 };
	long (*f)(void) = libc_call;
	long n = argc > 2 ? atol(argv[2]) : 100000, s = 0;
	struct timespec a, b;
	if (argc < 2 || (strcmp(argv[1], "libc") && strcmp(argv[1], "jit")))
		return 2;
	if (!strcmp(argv[1], "jit")) {
		unsigned char *p = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memcpy(p, code, sizeof code);
		f = (long (*)(void))p;
	}
	for (long i = 0; i < n / 10; i++)
		s += f();
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		s += f();
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%s %.1f\n", argv[1], ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	return s == 0;
}
