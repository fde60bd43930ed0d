/*
 * punning.h — shared constants of the punning strategy runtime (C and asm). The trampoline layout
 * and the aux words are defined by the planner (src/encode.ts, src/tactics/common.ts); keep both
 * in step.
 *
 * Trampoline at T (for a site S, displaced window [S - pre, S + 2 + post)):
 *   T:     pre instructions (relocated)
 *          48 8d 64 24 80           lea -0x80(%rsp),%rsp
 *          ff 15 d32                call *slot(%rip)          slot = page(T') + PN_SLOT_OFF
 *   R:     48 8d a4 24 80 00 00 00  lea 0x80(%rsp),%rsp       normal return
 *   R+8:   eb 0e                    jmp R+24
 *   R+10:  i32 S - R
 *   R+14:  48 8d a4 24 80 00 00 00  lea 0x80(%rsp),%rsp       in-context return
 *   R+22:  0f 05                    syscall
 *   R+24:  post instructions (relocated; a final jmp/jcc as rel32)
 *          e9 rel32                 jmp S + 2 + post
 */
#ifndef SYSI_PUNNING_H
#define SYSI_PUNNING_H

#define PN_PAGE 4096
#define PN_SLOT_OFF 4088     /* entry stub address in every physical page */
#define PN_USABLE 4080       /* trampolines live in [0, PN_USABLE) of a page */
#define PN_SITE_OFF 10       /* i32 S - R at R + PN_SITE_OFF */
#define PN_INCONTEXT_OFF 14  /* in-context return at R + PN_INCONTEXT_OFF */

/* struct sysi_call field offsets (sysi.h) */
#define C_NR 0
#define C_A0 8
#define C_A1 16
#define C_A2 24
#define C_A3 32
#define C_A4 40
#define C_A5 48
#define C_SITE 56
#define C_STRAT 64
#define C_RET 72
#define C_SIZE 80

/* aux[1] fields */
#define PN_AUX_PHYS(a) ((unsigned)((a) & 0xffffff))
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
extern uint32_t sysi_punning_strategy;
extern int (*sysi_punning_dispatch)(struct sysi_call *c);

/* tramp.c: build the trampoline for a site at t into out (>= 128 bytes); returns its length or -1 */
int sysi_punning_build(unsigned char *out, uintptr_t t, uintptr_t site, const unsigned char *window,
		       uint64_t aux1);
#endif

#endif
