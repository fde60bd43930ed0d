/*
 * trap-probe: the round trip of each trap the ud2 strategy can write over a `syscall`
 * (ud2, int3, hlt, int $4), on this host, with a bare handler: the kernel's delivery, a handler
 * that steps over the instruction, and rt_sigreturn. No sysi, no syscall in the loop.
 *
 * Prints one JSON line: {"ud2":NS,"int3":NS,"hlt":NS,"int4":NS,"blocks":K,"n":N}, each NS the
 * smallest ns per round trip over K blocks of N traps; the traps take turns block by block, so
 * load on the machine spreads over all of them alike. Exit 0, or 1 with a line on stderr.
 *
 * plugins/ud2/src/trap-choice.ts builds it once per host and caches the result.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

static volatile long skip;

static void on_trap(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	(void)sig;
	(void)si;
	uc->uc_mcontext.gregs[REG_RIP] += skip;
}

/* one loop per trap, the instruction inline (rcx, r11: as the `syscall` it replaces clobbers) */
#define TRAP_LOOP(name, insn)                                                     \
	__attribute__((noinline)) static void name(long n)                        \
	{                                                                         \
		for (long i = 0; i < n; i++)                                      \
			__asm__ volatile(insn ::: "rax", "rcx", "r11", "memory"); \
	}
TRAP_LOOP(loop_ud2, "ud2")
TRAP_LOOP(loop_int3, "int3")
TRAP_LOOP(loop_hlt, "hlt")
TRAP_LOOP(loop_int4, "int $4")

struct trap {
	const char *name;
	void (*loop)(long);
	int sig;
	/* bytes the handler steps over: ud2 and hlt fault (rip at the insn); int3, int $4 trap */
	long skip;
	double best;
};

static struct trap traps[] = {
	{ "ud2", loop_ud2, SIGILL, 2, 0 },
	{ "int3", loop_int3, SIGTRAP, 0, 0 },
	{ "hlt", loop_hlt, SIGSEGV, 1, 0 },
	{ "int4", loop_int4, SIGSEGV, 0, 0 },
};

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200;
	long blocks = argc > 2 ? atol(argv[2]) : 7;
	struct sigaction sa;
	if (n < 1 || blocks < 1) {
		fputs("trap-probe: usage: trap-probe [N per block] [blocks]\n", stderr);
		return 1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_trap;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (int s = 0; s < 3; s++) {
		int sig = s == 0 ? SIGILL : s == 1 ? SIGTRAP : SIGSEGV;
		if (sigaction(sig, &sa, NULL) != 0) {
			perror("trap-probe: sigaction");
			return 1;
		}
	}
	/* warm-up: one short block each (page faults, the signal frame's first use) */
	for (unsigned t = 0; t < sizeof traps / sizeof traps[0]; t++) {
		skip = traps[t].skip;
		traps[t].loop(n / 4 + 1);
	}
	for (long b = 0; b < blocks; b++) {
		for (unsigned t = 0; t < sizeof traps / sizeof traps[0]; t++) {
			skip = traps[t].skip;
			double t0 = now_ns();
			traps[t].loop(n);
			double ns = (now_ns() - t0) / (double)n;
			if (b == 0 || ns < traps[t].best)
				traps[t].best = ns;
		}
	}
	printf("{\"ud2\":%.1f,\"int3\":%.1f,\"hlt\":%.1f,\"int4\":%.1f,\"blocks\":%ld,\"n\":%ld}\n", traps[0].best,
	       traps[1].best, traps[2].best, traps[3].best, blocks, n);
	return 0;
}
