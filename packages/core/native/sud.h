/*
 * sud.h — `sysi run --complete` (SYSI_COMPLETE=1): the Syscall User Dispatch catch-all
 * (sud.c, docs/complete.md). The per-thread state the hot path touches, inline.
 */
#ifndef SYSI_SUD_H
#define SYSI_SUD_H

#include "internal.h"

#define SYSI_SUD_ALLOW 0 /* SYSCALL_DISPATCH_FILTER_ALLOW */
#define SYSI_SUD_BLOCK 1 /* SYSCALL_DISPATCH_FILTER_BLOCK */

struct sysi_sud_tls {
	volatile char sel;     /* the selector the kernel reads for this thread */
	char armed;            /* 0 not armed (new thread, fork child), 1 armed, 2 arming failed */
	char prog_on;          /* the program armed SUD of its own on this thread (emulated) */
	char reserved[5];
	uintptr_t emulated;    /* si_call_addr of the program's SIGSYS prog_sigsys queued, or 0 */
	uintptr_t prog_lo;     /* the program's allowed region and selector */
	uintptr_t prog_len;
	const volatile char *prog_sel;
};
extern __thread struct sysi_sud_tls sysi_sud_tls __attribute__((tls_model("initial-exec")));
extern int sysi_sud_on; /* SYSI_COMPLETE=1 (set by sysi_sud_setup_dispatch) */

void sysi_sud_arm_thread(void);

/* Entering sysi for a hooked call: program code blocks again; a thread not yet armed is armed. */
static inline void sysi_sud_enter(void)
{
	if (__builtin_expect(sysi_sud_tls.armed != 1, 0))
		sysi_sud_arm_thread();
	else
		sysi_sud_tls.sel = SYSI_SUD_BLOCK;
}

/* dispatch.c: from sysi_dispatch_setup (reads SYSI_COMPLETE, wraps fast_hook) */
void sysi_sud_setup_dispatch(void);
/* dispatch.c: sysi_dispatch_impl under SUD, around the plain dispatcher */
int sysi_sud_dispatch(struct sysi_call *c, int (*plain)(struct sysi_call *));

#ifdef REG_RDI /* <ucontext.h> with _GNU_SOURCE */
/* A dispatched call's arguments, from the SIGSYS context (the kernel rolled the call back) */
static inline void sysi_sud_args(struct sysi_call *c, const greg_t *g)
{
	c->args[0] = g[REG_RDI];
	c->args[1] = g[REG_RSI];
	c->args[2] = g[REG_RDX];
	c->args[3] = g[REG_R10];
	c->args[4] = g[REG_R8];
	c->args[5] = g[REG_R9];
}
#endif
/* dispatch.c sysi_perform: the program's own prctl(PR_SET_SYSCALL_USER_DISPATCH, …) */
long sysi_sud_prctl(struct sysi_call *c);
/* dispatch.c: a fork child (SUD is not inherited) */
void sysi_sud_atfork(void);

/* modules.c: the module lock, for lazy patching (sud.c) without waiting: 1 taken, 0 busy */
int sysi_modules_trylock(void);
void sysi_modules_unlock(void);

/* sud-lazy.c: lazy patching of catch-all sites (SYSI_LAZY) */
void sysi_sud_lazy_setup(void);                 /* from sysi_sud_init, after the runtimes */
void sysi_sud_lazy(uintptr_t site, int stats_slot); /* after a completed catch-all call */
int sysi_sud_lazy_has(uintptr_t site);          /* site was patched lazily (any thread) */

/* signal.c: a program signal handler runs with the selector blocking, whatever it was */
static inline char sysi_sud_handler_begin(void)
{
	char s = sysi_sud_tls.sel;
	if (sysi_sud_on)
		sysi_sud_tls.sel = SYSI_SUD_BLOCK;
	return s;
}

static inline void sysi_sud_handler_end(char s)
{
	if (sysi_sud_on)
		sysi_sud_tls.sel = s;
}

#endif
