/*
 * self-answer.c — a hook written against the public hook ABI (sysi.h) that answers some system
 * calls itself, without making them: it isolates the cost of the instrumentation path.
 *
 * Every number listed in SYSI_BENCH_ANSWER (comma list, default "110" = getppid) is answered
 * with SYSI_BENCH_ANSWER_BASE + nr; every other call is performed with sysi_syscall().
 * The list is read from the environment once (sysi_hook_init, or the first call if the runtime
 * did not call init) by a plain scan of `environ`: no libc string functions, which may touch
 * vector registers, and no system calls.
 *
 * Flags: SYSI_HOOK_GENERAL_REGS_ONLY (built with -mgeneral-regs-only, calls nothing that uses
 * vector/x87 state) | SYSI_HOOK_NO_GUARD (makes no instrumented syscalls).
 *
 * Build: cc -O2 -fPIC -shared -mgeneral-regs-only -ffreestanding
 *        -fno-tree-loop-distribute-patterns -Wall -Wextra -I<sysi.h dir> -I bench
 *        -o libsysi-bench-self-answer.so self-answer.c
 */
#include <stdint.h>

#include "bench.h"
#include "sysi.h"

extern char **environ;

const uint32_t sysi_hook_flags = SYSI_HOOK_GENERAL_REGS_ONLY | SYSI_HOOK_NO_GUARD;

#define MASK_WORDS (SYSI_BENCH_ANSWER_MAXNR / 64)

static uint64_t answer_mask[MASK_WORDS];
static volatile int ready;

static const char *find_env(const char *name)
{
	if (environ == 0)
		return 0;
	for (char **e = environ; *e != 0; e++) {
		const char *s = *e, *n = name;
		while (*n != 0 && *s == *n) {
			s++;
			n++;
		}
		if (*n == 0 && *s == '=')
			return s + 1;
	}
	return 0;
}

static void parse_list(const char *s)
{
	uint64_t mask[MASK_WORDS] = {0};
	long v = -1;
	for (;; s++) {
		if (*s >= '0' && *s <= '9') {
			v = (v < 0 ? 0 : v * 10) + (*s - '0');
			if (v >= SYSI_BENCH_ANSWER_MAXNR)
				v = SYSI_BENCH_ANSWER_MAXNR; /* out of range: ignored */
		} else {
			if (v >= 0 && v < SYSI_BENCH_ANSWER_MAXNR)
				mask[v >> 6] |= (uint64_t)1 << (v & 63);
			v = -1;
			if (*s == 0)
				break;
		}
	}
	for (int i = 0; i < MASK_WORDS; i++)
		answer_mask[i] = mask[i];
}

void sysi_hook_init(void)
{
	const char *list = find_env(SYSI_BENCH_ANSWER_ENV);
	parse_list(list != 0 ? list : "110");
	ready = 1;
}

long sysi_hook(struct sysi_call *c)
{
	if (__builtin_expect(!ready, 0))
		sysi_hook_init();
	unsigned long nr = (unsigned long)c->nr;
	if (nr < SYSI_BENCH_ANSWER_MAXNR && (answer_mask[nr >> 6] >> (nr & 63) & 1))
		return SYSI_BENCH_ANSWER_BASE + (long)nr;
	return sysi_syscall(c);
}
