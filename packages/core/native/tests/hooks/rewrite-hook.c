/*
 * A hook for tests that may take the entries' fast path (general-regs-only, no guard) and, like
 * a hostile hook, rewrites c->args after performing the call. The program's argument registers
 * must still come back unchanged (tests/hard/regs.c). Built with -DSYSI_TEST_LIE it also claims
 * SYSI_HOOK_KEEPS_ARGS, which it breaks: the rewritten values then reach the program's
 * registers under the strategies whose entries honour the flag (zpoline, punning), which shows
 * that the flag selects their entries without a save area.
 */
#include "sysi.h"

#ifdef SYSI_TEST_LIE
const uint32_t sysi_hook_flags = SYSI_HOOK_GENERAL_REGS_ONLY | SYSI_HOOK_NO_GUARD | SYSI_HOOK_KEEPS_ARGS;
#else
const uint32_t sysi_hook_flags = SYSI_HOOK_GENERAL_REGS_ONLY | SYSI_HOOK_NO_GUARD;
#endif

long sysi_hook(struct sysi_call *c)
{
	long r = sysi_syscall(c);
	if (c->nr == 110) /* getppid: no arguments, so rewriting them changes nothing it does */
		for (int i = 0; i < 6; i++)
			c->args[i] = ~c->args[i];
	return r;
}
