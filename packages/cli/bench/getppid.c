/*
 * getppid.c — the measured program of `sysi bench`: ns per system call in a tight loop.
 *
 *   getppid MODE [--nr N] [--expect V|ppid] [--target-ms T] [--reps K] [--n N]
 *
 * MODE
 *   inline  an inline `syscall` instruction (the site carries the global label
 *           bench_inline_site, so its bytes can be read back after the run)
 *   libc    glibc's syscall(nr)
 *   floor   a call through a volatile function pointer to a function returning a constant
 *           (the same loop shape, no system call): the indirect-call floor
 *   sig-int3, sig-ud2, sig-hlt, sig-int4
 *           the kernel's signal round trip alone, no system call and no sysi: an inline `int3`
 *           (SIGTRAP), `ud2` (SIGILL), `hlt` (#GP → SIGSEGV) or `int $4` (#OF → SIGSEGV) whose
 *           handler puts the constant in rax and steps over the instruction, then returns through
 *           rt_sigreturn
 *   sig-int3-direct, sig-ud2-direct, sig-hlt-direct, sig-int4-direct
 *           the same trap, but the handler resumes the program itself with the ud2 plugin's
 *           sysi_ud2_resume (plugins/ud2/native/resume.S: XRSTOR from the frame, registers,
 *           jump), as sysi's trap strategies do: the kernel's delivery alone plus the cheapest
 *           return, i.e. the least any trap strategy built on that instruction can cost here
 *
 * It picks N so that one repetition takes about T ms (default 75), runs one warm-up
 * repetition, then K timed repetitions (default 5), and prints one JSON line on stdout:
 *   {"mode":…,"nr":…,"n":…,"expect":…,"got":…,"bad":…,"ns":[…],"median":…,"cpu":[…],
 *    "cpu_median":…,"best":…,"blocks":…,"site":"<8 bytes at bench_inline_site>",
 *    "libc_head":"<48 bytes at syscall()>"}
 * ns: wall-clock (CLOCK_MONOTONIC, vDSO) ns per call of each whole repetition, median: theirs;
 * cpu: this thread's CPU time (CLOCK_THREAD_CPUTIME_ID, user + kernel, read twice per repetition)
 * per call, which leaves out time the thread waited for a CPU on a busy machine (and, under
 * strace, the tracer's work).
 *
 * Each repetition runs as consecutive blocks of about 1 ms: B = N / T calls (N calibrated for T
 * ms; with --n, B comes from the warm-up's measured time instead), N / B blocks, the last one
 * also taking the remainder (so no block is shorter than B calls; the total stays N). The clock
 * (CLOCK_MONOTONIC, vDSO: no system call) is read once between blocks, never inside a loop.
 * best: the smallest wall-clock ns per call over every block of every repetition; blocks: how
 * many blocks that is. A deterministic loop only gets slower from interference (another tenant
 * on the core, interrupts, frequency dips), so best estimates its cost in a quiet window, while
 * median reports what a 75 ms stretch typically costs on this machine.
 * Every result is compared with the expected value (the real parent pid read from
 * /proc/self/stat by default); `bad` counts mismatches over all calls, warm-up included.
 *
 * Build (sysi bench does it: src/bench/build.ts): cc -O2 -mno-red-zone -Wall -Wextra -o getppid getppid.c \
 *   …/@sysi/ud2/native/resume.S
 * (-mno-red-zone: a zpoline-style `call *%rax` at the site pushes a return address below rsp.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "bench.h"

#define MAX_REPS 64

extern const unsigned char bench_inline_site[];

typedef unsigned long (*loop_fn)(long n, long nr, long expect);

static long floor_answer(long nr);
static long (*volatile floor_fp)(long) = floor_answer;

__attribute__((noinline)) static long floor_answer(long nr)
{
	(void)nr;
	return SYSI_BENCH_FLOOR_VALUE;
}

/* The one inline site: noinline/noclone so the global label is emitted exactly once. */
__attribute__((noinline, noclone)) static unsigned long loop_inline(long n, long nr, long expect)
{
	unsigned long bad = 0;
	for (long i = 0; i < n; i++) {
		long r;
		__asm__ volatile(".globl bench_inline_site\nbench_inline_site: syscall"
				 : "=a"(r) : "0"(nr) : "rcx", "r11", "memory");
		bad += r != expect;
	}
	return bad;
}

__attribute__((noinline)) static unsigned long loop_libc(long n, long nr, long expect)
{
	unsigned long bad = 0;
	for (long i = 0; i < n; i++) {
		long r = syscall(nr);
		if (r == -1)
			r = -errno;
		bad += r != expect;
	}
	return bad;
}

/*
 * Trap floors: the handler answers SYSI_BENCH_FLOOR_VALUE in rax and skips `trap_len` bytes,
 * then returns (rt_sigreturn) or, with trap_direct, resumes through sysi_ud2_resume.
 */
static volatile long trap_len;
static volatile int trap_direct;

/* plugins/ud2/native/resume.S: load gregs and the XSAVE image (mask xfeatures), jump to REG_RIP */
void sysi_ud2_resume(greg_t *gregs, const void *xsave, uint64_t xfeatures) __attribute__((noreturn));

/* The frame's XSAVE feature mask (struct _fpx_sw_bytes at byte 464 of the image), 0 if none. */
static uint64_t frame_xfeatures(const ucontext_t *uc)
{
	const unsigned char *fp = (const unsigned char *)uc->uc_mcontext.fpregs;
	uint32_t magic1;
	uint64_t xfeatures;
	if (fp == NULL || ((uintptr_t)fp & 63))
		return 0;
	memcpy(&magic1, fp + 464, sizeof magic1);
	memcpy(&xfeatures, fp + 464 + 8, sizeof xfeatures);
	return magic1 == 0x46505853U ? xfeatures : 0;
}

static void on_trap(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	(void)sig;
	(void)si;
	uc->uc_mcontext.gregs[REG_RAX] = SYSI_BENCH_FLOOR_VALUE;
	uc->uc_mcontext.gregs[REG_RIP] += trap_len;
	if (trap_direct) {
		uint64_t xfeatures = frame_xfeatures(uc);
		if (xfeatures != 0) /* else the frame is not the standard one: rt_sigreturn */
			sysi_ud2_resume(uc->uc_mcontext.gregs, uc->uc_mcontext.fpregs, xfeatures);
	}
}

static void trap_setup(int sig, long len, int direct)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_trap;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	trap_len = len;
	trap_direct = direct;
	if (sigaction(sig, &sa, NULL) != 0) {
		perror("getppid: sigaction");
		exit(2);
	}
}

/*
 * One loop per trap instruction, each with the instruction inline:
 * int3 is a trap (rip is already past it: trap_len 0), ud2 a fault (rip points at it: trap_len
 * 2), hlt in user mode #GP, a fault (trap_len 1), int $4 a trap (trap_len 0).
 * rcx and r11 are clobbered, as by the `syscall` a trap strategy's site replaces
 * (sysi_ud2_resume returns through them).
 */
#define TRAP_LOOP(name, insn)                                                            \
	__attribute__((noinline)) static unsigned long name(long n, long nr, long expect) \
	{                                                                                \
		unsigned long bad = 0;                                                   \
		for (long i = 0; i < n; i++) {                                           \
			long r;                                                          \
			__asm__ volatile(insn : "=a"(r) : "0"(nr) : "rcx", "r11", "memory"); \
			bad += r != expect;                                              \
		}                                                                        \
		return bad;                                                              \
	}
TRAP_LOOP(loop_sig_int3, "int3")
TRAP_LOOP(loop_sig_ud2, "ud2")
TRAP_LOOP(loop_sig_hlt, "hlt")
TRAP_LOOP(loop_sig_int4, "int $4")

__attribute__((noinline)) static unsigned long loop_floor(long n, long nr, long expect)
{
	unsigned long bad = 0;
	for (long i = 0; i < n; i++) {
		long r = floor_fp(nr);
		bad += r != expect;
	}
	return bad;
}

static int cmp_double(const void *a, const void *b);

static double clock_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static double median_of(const double *xs, long len)
{
	double sorted[MAX_REPS];
	memcpy(sorted, xs, sizeof(double) * (size_t)len);
	qsort(sorted, (size_t)len, sizeof(double), cmp_double);
	return len % 2 ? sorted[len / 2] : (sorted[len / 2 - 1] + sorted[len / 2]) / 2;
}

static void die(const char *msg)
{
	fprintf(stderr, "getppid: error: %s\n", msg);
	exit(2);
}

/* The parent pid from /proc/self/stat ("pid (comm) S ppid …"): a route independent of getppid. */
static long proc_ppid(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("cannot open /proc/self/stat");
	ssize_t len = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (len <= 0)
		die("cannot read /proc/self/stat");
	buf[len] = 0;
	char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || p[2] == 0 || p[3] != ' ')
		die("unexpected /proc/self/stat format");
	return strtol(p + 4, NULL, 10);
}

static long parse_long(const char *s, const char *what)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno != 0 || *s == 0 || *end != 0) {
		fprintf(stderr, "getppid: error: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void hex(const unsigned char *p, int len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: getppid inline|libc|floor|sig-{int3,ud2,hlt,int4}[-direct] [--nr N] [--expect V|ppid] [--target-ms T] [--reps K] [--n N]");
	const char *mode = argv[1];
	loop_fn loop;
	if (strcmp(mode, "inline") == 0)
		loop = loop_inline;
	else if (strcmp(mode, "libc") == 0)
		loop = loop_libc;
	else if (strcmp(mode, "floor") == 0)
		loop = loop_floor;
	else if (strncmp(mode, "sig-", 4) == 0) {
		size_t len = strlen(mode);
		int direct = len > 7 && strcmp(mode + len - 7, "-direct") == 0;
		size_t base = direct ? len - 7 : len;
		if (base == 8 && strncmp(mode, "sig-int3", 8) == 0) {
			loop = loop_sig_int3;
			trap_setup(SIGTRAP, 0, direct);
		} else if (base == 7 && strncmp(mode, "sig-ud2", 7) == 0) {
			loop = loop_sig_ud2;
			trap_setup(SIGILL, 2, direct);
		} else if (base == 7 && strncmp(mode, "sig-hlt", 7) == 0) {
			loop = loop_sig_hlt;
			trap_setup(SIGSEGV, 1, direct);
		} else if (base == 8 && strncmp(mode, "sig-int4", 8) == 0) {
			loop = loop_sig_int4;
			trap_setup(SIGSEGV, 0, direct);
		} else
			die("trap modes are sig-int3, sig-ud2, sig-hlt, sig-int4, each optionally with -direct");
	} else
		die("mode must be inline, libc, floor or a trap mode (sig-int3, sig-ud2, sig-hlt, sig-int4[-direct])");
	/* Loops that make no system call: they answer SYSI_BENCH_FLOOR_VALUE. */
	int no_syscall = loop != loop_inline && loop != loop_libc;

	long nr = SYS_getppid, n = 0, reps = 5;
	double target_ms = 75;
	const char *expect_arg = NULL;
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			die("option without a value");
		const char *opt = argv[i], *val = argv[++i];
		if (strcmp(opt, "--nr") == 0)
			nr = parse_long(val, "--nr");
		else if (strcmp(opt, "--expect") == 0)
			expect_arg = val;
		else if (strcmp(opt, "--target-ms") == 0)
			target_ms = (double)parse_long(val, "--target-ms");
		else if (strcmp(opt, "--reps") == 0)
			reps = parse_long(val, "--reps");
		else if (strcmp(opt, "--n") == 0)
			n = parse_long(val, "--n");
		else
			die("unknown option");
	}
	if (reps < 1 || reps > MAX_REPS)
		die("--reps must be 1..64");
	if (target_ms < 1)
		die("--target-ms must be >= 1");

	long expect;
	if (no_syscall && expect_arg == NULL)
		expect = SYSI_BENCH_FLOOR_VALUE;
	else if (expect_arg == NULL || strcmp(expect_arg, "ppid") == 0) {
		if (nr != SYS_getppid && !no_syscall)
			die("--expect is required when --nr is not getppid");
		expect = proc_ppid();
	} else
		expect = parse_long(expect_arg, "--expect");

	/* One call outside the loops, to report what the site really returns. */
	long got = no_syscall ? floor_fp(nr) : syscall(nr);
	if (!no_syscall && got == -1)
		got = -errno;

	unsigned long bad = 0;
	int calibrated = n <= 0;
	if (calibrated) {
		/* Calibrate: double until a run takes >= 10 ms (or T/2), then scale to T. */
		double floor_ms = target_ms / 2 < 10 ? target_ms / 2 : 10;
		long m = 16;
		for (;;) {
			double t0 = now_ns();
			bad += loop(m, nr, expect);
			double ms = (now_ns() - t0) / 1e6;
			if (ms >= floor_ms) {
				n = (long)((double)m * target_ms / ms);
				break;
			}
			m *= 2;
		}
		if (n < 1)
			n = 1;
	}

	double w0 = now_ns();
	bad += loop(n, nr, expect); /* warm-up */
	double warm_ms = (now_ns() - w0) / 1e6;

	/* Block length in calls: about 1 ms (see the header). */
	double per_ms = calibrated ? (double)n / target_ms : (warm_ms > 0 ? (double)n / warm_ms : (double)n);
	long block = per_ms < 1 ? 1 : per_ms > (double)n ? n : (long)per_ms;
	long nblocks = n / block;

	double ns[MAX_REPS], cpu[MAX_REPS], best = 1e300;
	for (long r = 0; r < reps; r++) {
		double c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		double t0 = now_ns(), tb = t0;
		for (long b = 0; b < nblocks; b++) {
			long len = b + 1 < nblocks ? block : n - b * block;
			bad += loop(len, nr, expect);
			double te = now_ns();
			double per = (te - tb) / (double)len;
			if (per < best)
				best = per;
			tb = te;
		}
		double c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		ns[r] = (tb - t0) / (double)n;
		cpu[r] = (c1 - c0) / (double)n;
	}

	char site[17], libc_head[97];
	hex(bench_inline_site, 8, site);
	hex((const unsigned char *)(void *)syscall, 48, libc_head);

	printf("{\"mode\":\"%s\",\"nr\":%ld,\"n\":%ld,\"expect\":%ld,\"got\":%ld,\"bad\":%lu,\"ns\":[",
	       mode, nr, n, expect, got, bad);
	for (long r = 0; r < reps; r++)
		printf("%s%.3f", r ? "," : "", ns[r]);
	printf("],\"median\":%.3f,\"cpu\":[", median_of(ns, reps));
	for (long r = 0; r < reps; r++)
		printf("%s%.3f", r ? "," : "", cpu[r]);
	printf("],\"cpu_median\":%.3f,\"best\":%.3f,\"blocks\":%ld,\"site\":\"%s\",\"libc_head\":\"%s\"}\n",
	       median_of(cpu, reps), best, reps * nblocks, site, libc_head);
	return fflush(stdout) == 0 ? 0 : 1;
}
