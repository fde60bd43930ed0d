/*
 * harness-dispatch.c — the fake libsysi dispatcher of the unit harness. Built like a runtime:
 * it is called from the entry without any vector state saved, so it must not touch it.
 */
#pragma GCC target("general-regs-only")
#include "sysi.h"

long sysi_raw6(long nr, long a, long b, long c, long d, long e, long f); /* syscall.S */

/*
 * libsysi's signal-deferral word (internal.h struct sysi_sigdefer): syscall.S's sysi_release
 * reads and clears it; the harness never defers, so pending stays 0.
 */
__thread struct {
	uint64_t pending, mask, rip, rax, rdi, rsi, rdx, r10;
	int in_master;
} sysi_sigdefer __attribute__((tls_model("initial-exec")));

/* libsysi's init.c: runtime work is bracketed by strace markers once set; never in the harness */
int sysi_marker_on;

/* the %fs offset of sysi_sigdefer.pending, as libsysi's signal.c gives it in api->defer_tpoff */
long zh_defer_tpoff(void)
{
	uintptr_t tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return (long)((uintptr_t)&sysi_sigdefer.pending - tp);
}

volatile long zh_count;     /* calls seen */
volatile long zh_last_nr;   /* last nr seen */
volatile int zh_fake;       /* answer every call with nr + 1000, performing nothing */

int zh_dispatch(struct sysi_call *c)
{
	zh_count++;
	zh_last_nr = c->nr;
	if (zh_fake) {
		c->ret = c->nr + 1000;
		return 0;
	}
	switch (c->nr) {
	case 15: case 58: case 435:
		c->flags |= SYSI_CALL_INCONTEXT;
		return 1;
	case 56:
		if (c->args[1]) {
			c->flags |= SYSI_CALL_INCONTEXT;
			return 1;
		}
		break;
	}
	c->ret = sysi_raw6(c->nr, c->args[0], c->args[1], c->args[2], c->args[3], c->args[4],
			 c->args[5]);
	return 0;
}

/* the floor of the benchmark: a function called through a pointer that does nothing */
int zh_empty(struct sysi_call *c)
{
	return c->nr == -12345;
}

/*
 * The fast hook (sysi_runtime_api.fast_hook) of `harness fast`: records the call, then, like a
 * hostile hook, rewrites c->args (unless zh_keep_args: `harness keep`, a hook that keeps them)
 * and clobbers every caller-saved register before it returns; with zh_fake it answers
 * nr + 2000 without performing anything.
 */
volatile long zh_fast_count;
struct sysi_call zh_fast_last;
int zh_keep_args;

long zh_fast(struct sysi_call *c)
{
	long r;
	zh_fast_count++;
	zh_fast_last = *c;
	if (zh_fake)
		r = c->nr + 2000;
	else
		r = sysi_raw6(c->nr, c->args[0], c->args[1], c->args[2], c->args[3], c->args[4],
			    c->args[5]);
	if (!zh_keep_args)
		for (int i = 0; i < 6; i++)
			c->args[i] = ~c->args[i];
	__asm__ volatile("mov $-1, %%rdi\n\tmov $-1, %%rsi\n\tmov $-1, %%rdx\n\tmov $-1, %%rcx\n\t"
			 "mov $-1, %%r8\n\tmov $-1, %%r9\n\tmov $-1, %%r10\n\tmov $-1, %%r11"
			 : : : "rdi", "rsi", "rdx", "rcx", "r8", "r9", "r10", "r11");
	return r;
}
