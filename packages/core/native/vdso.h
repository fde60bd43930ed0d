/*
 * vdso.h — the vDSO's own system calls (vdso.c, docs/patch.md "The vDSO's system calls"): what
 * the dispatcher, the count hook and the static runtime call, and the per-thread check, inline.
 */
#ifndef SYSI_VDSO_H
#define SYSI_VDSO_H

#include "internal.h"

extern int sysi_vdso_on; /* armed on the constructor's thread: every thread is armed in turn */
/* 0 not armed (a new thread, a fork child), 1 armed, 2 the program's own SUD (or arming failed) */
extern __thread char sysi_vdso_armed __attribute__((tls_model("initial-exec")));

void sysi_vdso_setup(void);    /* dispatch.c sysi_dispatch_setup: arm this thread, claim SIGSYS */
void sysi_vdso_register(void); /* init.c, after the strategy runtimes: the "vdso" stats slot */
void sysi_vdso_thread(void);   /* arm this thread (the caller brackets it as runtime work) */
void sysi_vdso_late(void);     /* arm this thread, bracketed (sysi_vdso_enter) */
void sysi_vdso_atfork(void);   /* dispatch.c: a fork child (SUD is not inherited) */
long sysi_vdso_prctl(struct sysi_call *c); /* dispatch.c: the program's own SUD prctl */

/*
 * A thread entering the runtime for a hooked call: not armed yet (a new thread: SUD is not
 * inherited by clone) is armed now, before it returns to code that may call the vDSO. Called
 * where every thread's first hooked call passes: the dispatcher, the fast hook's wrapper, the
 * count hook's slow path (a new thread has no slab yet: count.c).
 */
static inline void sysi_vdso_enter(void)
{
	if (__builtin_expect(sysi_vdso_on, 0) && __builtin_expect(!sysi_vdso_armed, 0))
		sysi_vdso_late();
}

#endif
