/*
 * harness-dispatch.c — the fake libsysi dispatcher of the unit harness. Built like a runtime:
 * it is called from the entry without any vector state saved, so it must not touch it.
 */
#pragma GCC target("general-regs-only")
#include "sysi.h"

long zh_raw6(long nr, long a, long b, long c, long d, long e, long f);

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
	c->ret = zh_raw6(c->nr, c->args[0], c->args[1], c->args[2], c->args[3], c->args[4],
			 c->args[5]);
	return 0;
}

/* the floor of the benchmark: a function called through a pointer that does nothing */
int zh_empty(struct sysi_call *c)
{
	return c->nr == -12345;
}
