/*
 * A user hook for tests: no sysi_hook_flags (so libsysi saves xstate around it and guards
 * reentrancy), uses SSE, calls patched libc inside the hook (must bypass the hook), and
 * emulates syscall 100000 by returning 7000 + the number of sysi_hook_init calls.
 */
#include <unistd.h>
#include "sysi.h"

static int inits;
static volatile double acc;

void sysi_hook_init(void)
{
	inits++;
}

long sysi_hook(struct sysi_call *c)
{
	acc = acc * 0.5 + (double)c->nr; /* vector registers in use */
	getppid();                       /* instrumented libc: must not re-enter the hook */
	if (c->nr == 100000)
		return 7000 + inits;
	return sysi_syscall(c);
}
