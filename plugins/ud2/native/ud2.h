/*
 * ud2.h — the ud2 strategy runtime: patched sites trap (ud2 → SIGILL, int3 → SIGTRAP,
 * hlt → #GP → SIGSEGV, int $4 → #OF → SIGSEGV) and the handler emulates the syscall through
 * libsysi's dispatcher.
 */
#ifndef SYSI_UD2_H
#define SYSI_UD2_H

#include <stdint.h>
#include "sysi.h"

/* aux[0] of a plan option: the trap variant (must match plugins/ud2/src/encode.ts) */
#define SYSI_UD2_VARIANT_UD2 0 /* 0f 0b */
#define SYSI_UD2_VARIANT_INT3 1 /* cc 90, RIP reported at site + 1 */
#define SYSI_UD2_VARIANT_HLT 2 /* f4 90, #GP in user mode */
#define SYSI_UD2_VARIANT_INT4 3 /* cd 04, #OF (a trap: RIP reported at site + 2) */
#define SYSI_UD2_NVARIANTS 4

/* Gadget run for in-context calls: syscall; jmp *0(%rip); .quad site + 2 */
#define SYSI_UD2_GADGET_SIZE 16

struct sysi_ud2_site {
	uintptr_t addr;   /* 0 = empty slot */
	uintptr_t gadget; /* address of this site's gadget */
	uint32_t variant;
	uint32_t reserved;
};

extern const struct sysi_runtime_api *sysi_ud2_api;
extern const int sysi_ud2_variant_signal[SYSI_UD2_NVARIANTS]; /* the signal each variant raises */
extern uint32_t sysi_ud2_id;

/* sites.c: the site table (written under libsysi's module lock, read lock-free) */
int sysi_ud2_add_site(uintptr_t addr, uint32_t variant);
const struct sysi_ud2_site *sysi_ud2_find(uintptr_t addr);
void sysi_ud2_seal(void);

/* handler.c */
int sysi_ud2_context(void *ucontext);
int sysi_ud2_trap(int sig, void *info, void *ucontext);
void sysi_ud2_resume_setup(void); /* after sysi_ud2_api is set */

/* resume.S: jump to the context in gregs/fpregs (a trap's frame) without rt_sigreturn */
__attribute__((noreturn)) void sysi_ud2_resume(void *gregs, const void *fpregs, uint64_t xfeatures);
extern const unsigned char sysi_ud2_resume_xrstor[], sysi_ud2_resume_mv[], sysi_ud2_resume_popf[],
	sysi_ud2_resume_jmp[], sysi_ud2_resume_end[];

#endif
