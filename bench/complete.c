/*
 * complete.c — the measured program of bench/complete.ts: ns per getppid in a tight loop.
 *   complete MODE N [FILE]   MODE:
 *     libc   glibc's syscall(): a planned site, patched under sysi run
 *     jit    a `syscall` copied into an anonymous executable page: no patch reaches it; under
 *            --complete the SUD catch-all does, every time (JIT code is never patched)
 *     file   the same bytes written to FILE and mapped PROT_READ|PROT_EXEC MAP_PRIVATE (not by
 *            the loader: no plan): under --complete the catch-all takes its first call and
 *            patches the site lazily (sud-lazy.c), the others take the strategy's path
 *     page0  no loop: prints "page0 ok" when page 0 can be mapped here, else "page0 <errno>"
 * Prints one line: "<mode> <ns per call>" (CLOCK_MONOTONIC over N calls, after N/10 warm-up).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static long libc_call(void) { return syscall(SYS_getppid); }

/* mov $110,%eax; syscall; ret */
static const unsigned char code[] = { 0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0xc3 };

static void *file_code(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	void *p;
	if (fd < 0 || write(fd, code, sizeof code) != sizeof code)
		return 0;
	p = mmap(0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	close(fd);
	return p == MAP_FAILED ? 0 : p;
}

int main(int argc, char **argv)
{
	long (*f)(void) = libc_call;
	long n = argc > 2 ? atol(argv[2]) : 100000, s = 0;
	const char *mode = argc > 1 ? argv[1] : "";
	struct timespec a, b;
	if (!strcmp(mode, "page0")) {
		void *p = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		printf("page0 %s\n", p == 0 ? "ok" : strerror(p == MAP_FAILED ? errno : EEXIST));
		return 0;
	}
	if (!strcmp(mode, "jit")) {
		unsigned char *p = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memcpy(p, code, sizeof code);
		f = (long (*)(void))p;
	} else if (!strcmp(mode, "file")) {
		void *p = argc > 3 ? file_code(argv[3]) : 0;
		if (!p)
			return 2;
		f = (long (*)(void))p;
	} else if (strcmp(mode, "libc")) {
		return 2;
	}
	for (long i = 0; i < n / 10; i++)
		s += f();
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		s += f();
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%s %.1f\n", mode, ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	return s == 0;
}
