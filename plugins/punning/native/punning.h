/*
 * punning.h — shared constants of the punning strategy runtime (C and asm). The trampoline layout
 * and the aux words are defined by the planner (src/encode.ts, src/tactics/common.ts); keep both
 * in step.
 *
 * Trampoline span [P, P + len) for a site S (displaced window [S - pre, S + 2 + post)); the site
 * jumps to T = P + PN_ENTRY_OFF(pre) (aux[0] holds T - S):
 *   P:     pre instructions (relocated), eb 04 (jmp L)   only when pre > 0
 *   I:     0f 05                    syscall                   in-context return
 *          eb 12                    jmp R
 *   L:     48 8d 64 24 80           lea -0x80(%rsp),%rsp
 *          4c 8d 1d d32             lea S(%rip),%r11
 *          ff 15 d32                call *slot(%rip)          slot = page(L) + PN_SLOT_OFF
 *   R:     post instructions (relocated; a final jmp/jcc as rel32)
 *          e9 rel32                 jmp S + 2 + post          normal return
 * The stubs return to R (or I) popping R and the skipped red zone (`ret $PN_REDZONE`, or the
 * passthrough stub's `pop %rcx; lea PN_REDZONE(%rsp),%rsp; jmp *%rcx`): both return points run
 * with the site's own rsp.
 *
 * Physical page: trampolines in [0, PN_USABLE); the passthrough stub (entry.S sysi_punning_sys)
 * at PN_STUB_OFF; the address of sysi_punning_entry at PN_SLOT_OFF. With SYSI_FAST_PASSTHROUGH
 * the runtime turns each trampoline's `ff 15 d32` (call *slot(%rip)) into `90 e8 rel32` (nop;
 * call PN_STUB_OFF of the same page): same length, same R, and the hooked path touches no page
 * but the trampoline's own (the stub jumps through the slot for the numbers it leaves to the
 * runtime).
 */
#ifndef SYSI_PUNNING_H
#define SYSI_PUNNING_H

#define PN_PAGE 4096
#define PN_SLOT_OFF 4088     /* entry stub address in every physical page */
#define PN_STUB_OFF 4024     /* the passthrough stub (entry.S sysi_punning_sys), up to 64 bytes */
#define PN_USABLE 4024       /* trampolines live in [0, PN_USABLE) of a page */
#define PN_INCONTEXT_OFF -22 /* in-context return I = R + PN_INCONTEXT_OFF */
#define PN_ENTRY_OFF(pre) ((pre) ? 0 : 4) /* the site jumps to P + PN_ENTRY_OFF */
#define PN_REDZONE 128       /* the trampoline steps over the red zone; the stub's ret pops it */
#define PN_R_OFF(pre) (((pre) ? (pre) + 2 : 0) + 22) /* R - P: pre, jmp L, I, L's 18 bytes */

#include "sysi-entry.h" /* struct sysi_call offsets SYSI_C_*, the save area SYSI_F_* */

/* aux[1] fields */
#define PN_AUX_PHYS(a) ((unsigned)((a) & 0xfff))          /* the site trampoline's page */
#define PN_AUX_PHYS2(a) ((unsigned)(((a) >> 12) & 0xfff)) /* the second trampoline's page */
#define PN_AUX_TACTIC(a) ((unsigned)(((a) >> 51) & 31))
#define PN_TACTIC_SUCC 5  /* + the successor's own trampoline, entered by the e9 at site + 2 */
#define PN_TACTIC_NEIGH 6 /* + the plain site trampoline, entered by the site's eb, then an e9 */
#define PN_AUX_PRE(a) ((unsigned)(((a) >> 24) & 15))
#define PN_AUX_POST(a) ((unsigned)(((a) >> 28) & 15))
#define PN_AUX_FIX(a, i) ((unsigned)(((a) >> (32 + 8 * (i))) & 0xff))
#define PN_AUX_BRANCH(a) ((unsigned)(((a) >> 48) & 7))
#define PN_BR_NONE 0
#define PN_BR_JMP8 1
#define PN_BR_JMP32 2
#define PN_BR_JCC8 3
#define PN_BR_JCC32 4

#ifndef __ASSEMBLER__
#include <stdint.h>
#include "sysi.h"

/* entry.S */
void sysi_punning_entry(void);
void sysi_punning_entryk(void); /* the same for a SYSI_FAST_KEEPS_ARGS hook (entry.S) */
extern uint32_t sysi_punning_strategy;
extern int (*sysi_punning_dispatch)(struct sysi_call *c);
extern long (*sysi_punning_hook)(struct sysi_call *c); /* api->fast_hook, or 0 */
extern const unsigned char sysi_punning_sys[], sysi_punning_sys_end[]; /* copied to PN_STUB_OFF */
extern const unsigned char sysi_punning_sys_ret[]; /* after the stub's syscall: pop %rcx */
extern const unsigned char sysi_punning_sys_step[]; /* then lea PN_REDZONE(%rsp),%rsp */
extern const unsigned char sysi_punning_sys_out[];  /* then jmp *%rcx (to R) */
extern const unsigned char sysi_punning_sys_slow[]; /* its jmp through the slot to the entry */
void sysi_punning_count(void); /* SYSI_FAST_COUNT: the count stub (entry.S) */
extern const unsigned char sysi_punning_count_ret[], sysi_punning_count_skip[];
extern struct sysi_count_fast sysi_punning_count_cf;
extern void (*sysi_punning_count_next)(void); /* where it sends the calls it does not count */
extern const unsigned char sysi_punning_incontext[], sysi_punning_incontext_end[]; /* entry.S */
extern long sysi_punning_defer_off;             /* api->defer_tpoff (entry.S LEAVE) */
extern void (*sysi_punning_release)(void);       /* api->release */

/* tramp.c: build the trampoline whose entry is t into out (>= 128 bytes), for the span starting at
 * t - PN_ENTRY_OFF(pre); returns its length or -1 */
int sysi_punning_build(unsigned char *out, uintptr_t t, uintptr_t site, const unsigned char *window,
		       uint64_t aux1);
/* tramp.c: the trampoline of the window's post instructions alone (tactic succ), for the span
 * starting at p: them relocated, then a jmp back to site + 2 + post; its length or -1 */
int sysi_punning_build_post(unsigned char *out, uintptr_t p, uintptr_t site, const unsigned char *window,
			    uint64_t aux1);
/* tramp.c: make the trampoline built into out for span start p call the page's passthrough stub
 * (`90 e8 rel32` in place of `ff 15 d32`); 0, or -1 when the bytes are not the expected call */
int sysi_punning_direct(unsigned char *out, uintptr_t p, unsigned pre);

/* lazy.c: the process's virtual trampoline pages, and pages mapped on first use. A page's value
 * is its physical page's executable alias, | PN_PAGE_MAPPED once mapped; PN_PAGE_FAILED when the
 * page could not be had. */
#define PN_PAGE_MAPPED 1
#define PN_PAGE_FAILED 2
void sysi_punning_lazy_init(const struct sysi_runtime_api *api, int eager);
/* the value put for page (its physical page's executable alias, tagged), or 0 */
uintptr_t sysi_punning_page_get(uintptr_t page);
/* record page's value (a page-aligned alias: mapped by the SIGSEGV claim on first use); 0 or -1 */
int sysi_punning_page_put(uintptr_t page, uintptr_t src);
/* 1 when page lies in a range reserved for lazy pages (reserved now if it can be), else 0 */
int sysi_punning_reserve(uintptr_t page);
/* ready(): drop the batch's view of the address space */
void sysi_punning_lazy_batch_end(void);
/* map every page still waiting for its first use (before a vfork-like clone) */
void sysi_punning_materialize(void);
/* the lock a batch holds while it reserves and records pages (take 1, drop 0) */
void sysi_punning_lazy_lock(int take);
/* no reservations from now on: map every page waiting, unmap the rest of each reservation */
void sysi_punning_lazy_off(void);
/*
 * spans.c: one per trampoline built, [start, end), for the program's view of a signal there
 * (init.c pn_context). Relocated program instructions keep their lengths (tramp.c): the pre
 * copy at start is the program's [site - pre, site], the post copy at post_at is its
 * [site + 2, site + 2 + npost] (npost: up to the final branch, re-encoded, or the jmp back).
 */
struct pn_span {
	uintptr_t start, end;
	uintptr_t site;   /* S */
	uintptr_t intact; /* the program's bytes from here to the window's end are its own */
	uint8_t pre;      /* pre instructions at start (0: none) */
	uint8_t post_at;  /* offset of the post copy */
	uint8_t npost;    /* post bytes before the final branch */
	uint8_t r_entry;  /* S + 2 is the patched code's return point (no filler there) */
	uintptr_t entry;  /* the patch's first byte when it is a jump (the program enters there), or 0 */
};
int sysi_punning_span_add(const struct sysi_runtime_api *api, const struct pn_span *s);
const struct pn_span *sysi_punning_span_find(uintptr_t pc);
/* SYSI_MARKER=1: the runtime's own calls on the program's thread begin (1) or end (0) */
void sysi_punning_own_work(int begin);
#endif

#endif
