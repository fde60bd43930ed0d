/*
 * regs.c — what a hooked `syscall` must leave intact (plugins/ud2 test, any strategy): the
 * general registers but rcx/r11, the red zone, RFLAGS' arithmetic flags, DF and AC, the vector
 * registers, MXCSR and the x87 control word (regs-site.S), also while a timer signal whose
 * handler makes syscalls and clobbers registers keeps arriving; a signal mask set by a hooked
 * rt_sigprocmask and an alternate stack set by a hooked sigaltstack are the kernel's state
 * afterwards (read back from /proc/self/status and by delivering a signal).
 *
 * Usage: regs [--expect-patched]   Prints one line per check; exit 0 when all pass, 1 when a
 * check fails, 3 when --expect-patched is given and the site is still `syscall` (0f 05).
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

struct regs {
	uint64_t rax, rbx, rbp, r12, r13, r14, r15, rdi, rsi, rdx, r10, r8, r9;
	uint64_t flags;
	uint32_t mxcsr;
	uint16_t fcw;
	uint8_t pad[10];
	uint64_t red[16];
	uint8_t vec[16][32];
};

_Static_assert(__builtin_offsetof(struct regs, flags) == 104, "R_FLAGS");
_Static_assert(__builtin_offsetof(struct regs, mxcsr) == 112, "R_MXCSR");
_Static_assert(__builtin_offsetof(struct regs, red) == 128, "R_RED");
_Static_assert(__builtin_offsetof(struct regs, vec) == 256, "R_VEC");

int regs_site(const struct regs *in, struct regs *out);
extern const unsigned char regs_site_syscall[];
extern int regs_avx;

#define FL_CF 0x1UL
#define FL_PF 0x4UL
#define FL_AF 0x10UL
#define FL_ZF 0x40UL
#define FL_SF 0x80UL
#define FL_DF 0x400UL
#define FL_OF 0x800UL
#define FL_AC 0x40000UL
#define FL_CHECKED (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_DF | FL_OF | FL_AC)

static int failed;
static volatile sig_atomic_t alarms, usr1, usr2_on_alt;
static char altstack[64 * 1024] __attribute__((aligned(16)));

static void fill(struct regs *in, unsigned seed)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (seed + 1);
	uint64_t *gp = &in->rbx;
	for (int i = 0; i < 12; i++) /* rbx … r9 */
		gp[i] = x ^ (0x0101010101010101ULL * (i + 1)) ^ ((uint64_t)seed << 32);
	in->rax = SYS_getppid;
	/* CF, ZF, OF, DF and AC set, PF AF SF clear (bit 1 is always 1, IF stays 1) */
	in->flags = 0x202 | FL_CF | FL_ZF | FL_OF | FL_DF | FL_AC;
	if (seed & 1)
		in->flags = 0x202 | FL_PF | FL_AF | FL_SF;
	in->mxcsr = 0x1f80 | 0x4000 | 0x8000 | 0x40; /* round up, FZ, DAZ */
	in->fcw = 0x37f | 0xc00; /* round toward zero */
	for (int i = 0; i < 16; i++)
		in->red[i] = ~x * (i + 3) + seed;
	for (int i = 0; i < 16; i++)
		for (int j = 0; j < 32; j++)
			in->vec[i][j] = (uint8_t)(seed * 131 + i * 17 + j * 7 + 1);
}

static int check(const struct regs *in, const struct regs *out, long want, int quiet)
{
	int bad = 0;
	const char *gpn[12] = { "rbx", "rbp", "r12", "r13", "r14", "r15",
				"rdi", "rsi", "rdx", "r10", "r8",  "r9" };
	const uint64_t *a = &in->rbx, *b = &out->rbx;
	int vlen = regs_avx ? 32 : 16;

	if ((long)out->rax != want) {
		if (!quiet)
			printf("FAIL rax %ld, want %ld\n", (long)out->rax, want);
		bad = 1;
	}
	for (int i = 0; i < 12; i++)
		if (a[i] != b[i]) {
			if (!quiet)
				printf("FAIL %s %#lx, want %#lx\n", gpn[i], (unsigned long)b[i],
				       (unsigned long)a[i]);
			bad = 1;
		}
	if ((out->flags & FL_CHECKED) != (in->flags & FL_CHECKED)) {
		if (!quiet)
			printf("FAIL rflags %#lx, want %#lx (of %#lx)\n",
			       (unsigned long)(out->flags & FL_CHECKED),
			       (unsigned long)(in->flags & FL_CHECKED), FL_CHECKED);
		bad = 1;
	}
	if (memcmp(in->red, out->red, sizeof in->red)) {
		if (!quiet)
			printf("FAIL red zone changed\n");
		bad = 1;
	}
	if (out->mxcsr != in->mxcsr || out->fcw != in->fcw) {
		if (!quiet)
			printf("FAIL mxcsr %#x fcw %#x, want %#x %#x\n", out->mxcsr, out->fcw,
			       in->mxcsr, in->fcw);
		bad = 1;
	}
	for (int i = 0; i < 16; i++)
		if (memcmp(in->vec[i], out->vec[i], vlen)) {
			if (!quiet)
				printf("FAIL %cmm%d changed\n", regs_avx ? 'y' : 'x', i);
			bad = 1;
		}
	return bad;
}

/* The SIGALRM handler makes syscalls (through libc) and clobbers what it may. */
static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
	(void)getppid();
	__asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n\tpcmpeqd %%xmm7, %%xmm7\n\tpcmpeqd %%xmm15, %%xmm15"
			 ::: "xmm0", "xmm7", "xmm15");
	__asm__ volatile("std\n\tcld" ::: "cc");
}

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

static void on_usr2(int sig)
{
	char here;
	(void)sig;
	usr2_on_alt = &here >= altstack && &here < altstack + sizeof altstack / 2;
}

/* SigBlk of /proc/self/status, or ~0 when unreadable */
static uint64_t sigblk(void)
{
	char buf[4096], *p;
	int fd = open("/proc/self/status", O_RDONLY);
	ssize_t n;
	if (fd < 0)
		return ~0ULL;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return ~0ULL;
	buf[n] = 0;
	p = strstr(buf, "\nSigBlk:");
	return p ? strtoull(p + 8, 0, 16) : ~0ULL;
}

static void report(const char *what, int bad)
{
	printf("%s %s\n", bad ? "FAIL" : "ok", what);
	failed |= bad;
}

int main(int argc, char **argv)
{
	static struct regs in, out;
	unsigned a, b, c, d;
	long ppid = getppid();
	int bad;

	if (argc > 1 && !strcmp(argv[1], "--expect-patched") && regs_site_syscall[0] == 0x0f &&
	    regs_site_syscall[1] == 0x05) {
		printf("the site is not patched\n");
		return 3;
	}
	setvbuf(stdout, 0, _IONBF, 0);
	__cpuid(1, a, b, c, d);
	if ((c & (1u << 27)) && (c & (1u << 28))) { /* OSXSAVE, AVX: and the OS enabled ymm */
		unsigned lo, hi;
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		regs_avx = (lo & 6) == 6;
	}
	(void)a, (void)b, (void)d;

	/* 1. one call, every register checked */
	fill(&in, 0);
	memset(&out, 0, sizeof out);
	regs_site(&in, &out);
	bad = check(&in, &out, ppid, 0);
	report(regs_avx ? "registers, flags, red zone, ymm, mxcsr, fcw" :
			  "registers, flags, red zone, xmm, mxcsr, fcw", bad);

	/* 2. many calls while SIGALRM (handler: a syscall, clobbered xmm/DF) keeps arriving */
	{
		struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
		struct itimerval it = { { 0, 50 }, { 0, 50 } };
		int n = 0;
		sigaction(SIGALRM, &sa, 0);
		setitimer(ITIMER_REAL, &it, 0);
		bad = 0;
		for (unsigned i = 0; i < 20000 && !bad; i++, n++) {
			fill(&in, i);
			regs_site(&in, &out);
			bad = check(&in, &out, ppid, 0);
		}
		memset(&it, 0, sizeof it);
		setitimer(ITIMER_REAL, &it, 0);
		signal(SIGALRM, SIG_IGN);
		report("20000 calls under a 50 us SIGALRM timer", bad || alarms == 0);
	}

	/* 3. the mask set by a (hooked) rt_sigprocmask is the kernel's mask afterwards */
	{
		struct sigaction sa = { .sa_handler = on_usr1 };
		sigset_t s;
		uint64_t blk;
		sigaction(SIGUSR1, &sa, 0);
		sigemptyset(&s);
		sigaddset(&s, SIGUSR1);
		syscall(SYS_rt_sigprocmask, SIG_BLOCK, &s, 0, 8);
		blk = sigblk();
		kill(getpid(), SIGUSR1);
		bad = blk == ~0ULL || !(blk & (1ULL << (SIGUSR1 - 1))) || usr1 != 0;
		syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &s, 0, 8);
		bad |= usr1 != 1 || (sigblk() & (1ULL << (SIGUSR1 - 1)));
		report("rt_sigprocmask: SIGUSR1 blocked, pending, delivered on unblock", bad);
	}

	/*
	 * 4. the alternate stack set by a (hooked) sigaltstack is the kernel's afterwards: first
	 * the upper half, then the lower (rt_sigreturn would put back the upper half, which the
	 * trap's frame recorded; a first stack set would survive it: the frame's size 0 is refused)
	 */
	{
		size_t half = sizeof altstack / 2;
		stack_t hi = { .ss_sp = altstack + half, .ss_size = half }, old;
		stack_t lo = { .ss_sp = altstack, .ss_size = half };
		struct sigaction sa = { .sa_handler = on_usr2, .sa_flags = SA_ONSTACK };
		sigaction(SIGUSR2, &sa, 0);
		bad = syscall(SYS_sigaltstack, &hi, 0) != 0;
		bad |= syscall(SYS_sigaltstack, &lo, 0) != 0;
		bad |= syscall(SYS_sigaltstack, 0, &old) != 0 || old.ss_sp != altstack;
		kill(getpid(), SIGUSR2);
		bad |= !usr2_on_alt;
		report("sigaltstack: the next handler runs on the new stack", bad);
	}
	return failed;
}
