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
 * vector/x87 state) | SYSI_HOOK_NO_GUARD (makes no instrumented syscalls) | SYSI_HOOK_KEEPS_ARGS
 * (never writes c->nr or c->args).
 *
 * Build: cc -O2 -fPIC -shared -mgeneral-regs-only -ffreestanding
 *        -fno-tree-loop-distribute-patterns -Wall -Wextra -I<sysi.h dir> -I ..
 *        -o libsysi-bench-self-answer.so self-answer.c
 */
#include <stdint.h>

#include "bench.h"
#include "sysi.h"

extern char **environ;

const uint32_t sysi_hook_flags = SYSI_HOOK_GENERAL_REGS_ONLY | SYSI_HOOK_NO_GUARD | SYSI_HOOK_KEEPS_ARGS;

/* answer[nr] != 0: answered (a byte per number: one load and one compare on the hot path) */
static unsigned char answer[SYSI_BENCH_ANSWER_MAXNR];
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
	long v = -1;
	for (;; s++) {
		if (*s >= '0' && *s <= '9') {
			v = (v < 0 ? 0 : v * 10) + (*s - '0');
			if (v >= SYSI_BENCH_ANSWER_MAXNR)
				v = SYSI_BENCH_ANSWER_MAXNR; /* out of range: ignored */
		} else {
			if (v >= 0 && v < SYSI_BENCH_ANSWER_MAXNR)
				answer[v] = 1;
			v = -1;
			if (*s == 0)
				break;
		}
	}
}

void sysi_hook_init(void)
{
	const char *list = find_env(SYSI_BENCH_ANSWER_ENV);
	parse_list(list != 0 ? list : "110");
	ready = 1;
}

/* The first call when the runtime did not call sysi_hook_init: out of line. */
__attribute__((noinline, cold)) static long first_call(struct sysi_call *c)
{
	sysi_hook_init();
	return sysi_hook(c);
}

/*
 * The hot path is frameless and straight-line: before sysi_hook_init no number is answered, so
 * "not ready" is only tested on the way to a real call.
 */
long sysi_hook(struct sysi_call *c)
{
	unsigned long nr = (unsigned long)c->nr;
	if (__builtin_expect(nr < SYSI_BENCH_ANSWER_MAXNR && answer[nr], 1))
		return SYSI_BENCH_ANSWER_BASE + (long)nr;
	if (__builtin_expect(!ready, 0))
		return first_call(c);
	return sysi_syscall(c);
}
