/*
 * bench.c — zpoline micro-benchmark under libsysi, all configurations interleaved in one run:
 *   floor       `call *%rax` to a `ret` (an indirect call)
 *   hooked nr   a patched site, the hook answers nr 39/110/229/232 itself (no syscall)
 *   getppid     a patched site performing getppid, vs the same loop in an unplanned library
 * Prints the median over ROUNDS of ns per call. Run it with bench/run.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAGIC 0x5a9011e5l
#define ROUNDS 9

long bench_loop(long nr, long n, long a6);
long native_loop(long nr, long n, long a6);
void floor_loop(void (*fn)(void), long n);
void floor_ret(void);

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const long nrs[] = { 39, 110, 229, 232 };
	enum { NCONF = 7 };
	static const char *names[NCONF] = { "floor: call *%rax + ret", "hooked nr 39 (answered by the hook)",
		"hooked nr 110", "hooked nr 229", "hooked nr 232", "getppid through zpoline + hook",
		"getppid native (unpatched site)" };
	double t[NCONF][ROUNDS];
	long n = argc > 1 ? atol(argv[1]) : 2000000, ns = n / 50, bad = 0;
	long ppid = getppid();

	if (bench_loop(110, 1, BENCH_MAGIC) != 1110) {
		fprintf(stderr, "bench: the site is not hooked (got %ld): run it under libsysi\n",
			bench_loop(110, 1, BENCH_MAGIC));
		return 1;
	}
	for (int r = 0; r < ROUNDS; r++) {
		for (int k = 0; k < NCONF; k++) {
			int c = (k + r) % NCONF;	/* rotate the order each round */
			double t0 = now();
			long v = 0, m = n;
			if (c == 0)
				floor_loop(floor_ret, n);
			else if (c <= 4)
				v = bench_loop(nrs[c - 1], n, BENCH_MAGIC) - (nrs[c - 1] + 1000);
			else if (c == 5)
				v = bench_loop(110, m = ns, 0) - ppid;
			else
				v = native_loop(110, m = ns, 0) - ppid;
			bad += v != 0;
			t[c][r] = (now() - t0) / m;
		}
	}
	for (int k = 0; k < NCONF; k++) {
		qsort(t[k], ROUNDS, sizeof t[k][0], cmp);
		printf("%-40s %8.2f ns/call  (median of %d; min %.2f max %.2f)\n", names[k], t[k][ROUNDS / 2],
		       ROUNDS, t[k][0], t[k][ROUNDS - 1]);
	}
	printf("bad results: %ld\n", bad);
	return bad != 0;
}
