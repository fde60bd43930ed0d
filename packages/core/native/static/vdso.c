/*
 * vdso.c — the static runtime's side of ../vdso.c (the vDSO's own system calls, shared with
 * libsysi.so): static.c's names for it. The constructors armed the first thread and registered
 * the "vdso" strategy (sysi_vdso_setup, sysi_vdso_register); a thread is armed when it takes its
 * own state block (own_block); a fork child and the program's own SUD prctl are handled in the
 * dispatcher (dispatch.c sysi_perform), which every hooked fork, clone and prctl reaches.
 */
#include "../vdso.h"

/* static.c's wrappers watch prctl, fork and clone while it is set: they have nothing to do
 * (sysi_perform does it), so it stays 0 */
int sysi_static_vdso_on;

/* After the runtime's constructors, before the program's entry (static.c): done by then. */
void sysi_static_vdso_start(void)
{
}

/* A thread with its own state block (static.c own_block, inside a runtime-work bracket). */
void sysi_static_vdso_thread(void)
{
	sysi_vdso_thread();
}

/* After a prctl, fork or clone (static.c's wrappers, never while sysi_static_vdso_on is 0). */
void sysi_static_vdso_after(const struct sysi_call *c, long ret)
{
	(void)c;
	(void)ret;
}
