/*
 * sysi-entry.h — the frame that strategy entries written in assembly build for a hooked call
 * (zpoline's and punning's entries use it; third-party entries may). Include it from a .S file
 * (with the C preprocessor) or from C.
 *
 * The frame at F (16-byte aligned when the hook or dispatcher is called):
 *   F + 0 .. SYSI_C_SIZE    struct sysi_call (sysi.h): nr, args[6], site, strategy/flags, ret
 *                           (flags: SYSI_C_MADE after the hook when the runtime made the
 *                           system call for it, sysi.h SYSI_CALL_MADE)
 *   F + SYSI_F_RDI ..       the program's argument registers rdi rsi rdx r10 r8 r9, restored
 *                           after the hook whatever it wrote into c->args
 *   F + SYSI_F_SIZE         end of the frame
 *
 * Assembler macros (argument: the register that holds F):
 *   SYSI_FRAME_FILL f       c->nr = rax, c->args = rdi rsi rdx r10 r8 r9, and the same six
 *                           registers into the save area (site, strategy and flags are the
 *                           entry's business)
 *   SYSI_FRAME_RESTORE f    rdi rsi rdx r10 r8 r9 from the save area
 *   SYSI_CALL_FILL f        c->nr and c->args only (no save area: for a hook that keeps them,
 *                           SYSI_FAST_KEEPS_ARGS in sysi.h)
 *   SYSI_CALL_ARGS f        rdi rsi rdx r10 r8 r9 from c->args (after such a hook: the program's)
 *   SYSI_CALL_LOAD f        rax and rdi rsi rdx r10 r8 r9 from c->nr and c->args (the possibly
 *                           rewritten call, for an entry that performs it itself)
 * They touch memory at f and the named registers only; no flags, no stack.
 */
#ifndef SYSI_ENTRY_H
#define SYSI_ENTRY_H

/* struct sysi_call field offsets */
#define SYSI_C_NR 0
#define SYSI_C_A0 8
#define SYSI_C_A1 16
#define SYSI_C_A2 24
#define SYSI_C_A3 32
#define SYSI_C_A4 40
#define SYSI_C_A5 48
#define SYSI_C_SITE 56
#define SYSI_C_STRAT 64 /* strategy id (low half), flags (high half): one 8-byte store */
#define SYSI_C_FLAGS 68 /* flags alone (a 4-byte load) */
#define SYSI_C_MADE 0x4 /* SYSI_CALL_MADE in flags: a system call was made for the call */
#define SYSI_C_RET 72
#define SYSI_C_SIZE 80

/* the save area of the program's argument registers, above the struct */
#define SYSI_F_RDI 80
#define SYSI_F_RSI 88
#define SYSI_F_RDX 96
#define SYSI_F_R10 104
#define SYSI_F_R8 112
#define SYSI_F_R9 120
#define SYSI_F_SIZE 128

/* the count fast path (sysi.h SYSI_FAST_COUNT): struct sysi_count_fast, and in a slab the
 * per-syscall counters (struct sysi_stats_syscall, 16 bytes: calls, then errors) */
#define SYSI_CF_TPOFF 0
#define SYSI_CF_STRAT 8
#define SYSI_CF_TOTALS 16
#define SYSI_CF_SIZE 24
#define SYSI_SLAB_CALLS 256
#define SYSI_SLAB_ERRORS 264

#ifdef __ASSEMBLER__

	.macro SYSI_CALL_FILL f
	mov %rax, SYSI_C_NR(\f)
	mov %rdi, SYSI_C_A0(\f)
	mov %rsi, SYSI_C_A1(\f)
	mov %rdx, SYSI_C_A2(\f)
	mov %r10, SYSI_C_A3(\f)
	mov %r8, SYSI_C_A4(\f)
	mov %r9, SYSI_C_A5(\f)
	.endm

	.macro SYSI_FRAME_FILL f
	SYSI_CALL_FILL \f
	mov %rdi, SYSI_F_RDI(\f)
	mov %rsi, SYSI_F_RSI(\f)
	mov %rdx, SYSI_F_RDX(\f)
	mov %r10, SYSI_F_R10(\f)
	mov %r8, SYSI_F_R8(\f)
	mov %r9, SYSI_F_R9(\f)
	.endm

	.macro SYSI_FRAME_RESTORE f
	mov SYSI_F_RDI(\f), %rdi
	mov SYSI_F_RSI(\f), %rsi
	mov SYSI_F_RDX(\f), %rdx
	mov SYSI_F_R10(\f), %r10
	mov SYSI_F_R8(\f), %r8
	mov SYSI_F_R9(\f), %r9
	.endm

	.macro SYSI_CALL_ARGS f
	mov SYSI_C_A0(\f), %rdi
	mov SYSI_C_A1(\f), %rsi
	mov SYSI_C_A2(\f), %rdx
	mov SYSI_C_A3(\f), %r10
	mov SYSI_C_A4(\f), %r8
	mov SYSI_C_A5(\f), %r9
	.endm

	.macro SYSI_CALL_LOAD f
	mov SYSI_C_NR(\f), %rax
	SYSI_CALL_ARGS \f
	.endm

#else /* C: the offsets above must match struct sysi_call */

#include <stddef.h>
#include "sysi.h"

_Static_assert(offsetof(struct sysi_call, nr) == SYSI_C_NR, "sysi_call.nr");
_Static_assert(offsetof(struct sysi_call, args) == SYSI_C_A0, "sysi_call.args");
_Static_assert(offsetof(struct sysi_call, site) == SYSI_C_SITE, "sysi_call.site");
_Static_assert(offsetof(struct sysi_call, strategy) == SYSI_C_STRAT, "sysi_call.strategy");
_Static_assert(offsetof(struct sysi_call, flags) == SYSI_C_STRAT + 4, "sysi_call.flags");
_Static_assert(offsetof(struct sysi_call, flags) == SYSI_C_FLAGS && SYSI_C_MADE == SYSI_CALL_MADE,
	       "sysi_call.flags, SYSI_CALL_MADE");
_Static_assert(offsetof(struct sysi_call, ret) == SYSI_C_RET, "sysi_call.ret");
_Static_assert(sizeof(struct sysi_call) == SYSI_C_SIZE, "sizeof sysi_call");
_Static_assert(offsetof(struct sysi_count_fast, slab_tpoff) == SYSI_CF_TPOFF, "count_fast.slab_tpoff");
_Static_assert(offsetof(struct sysi_count_fast, strategy_off) == SYSI_CF_STRAT, "count_fast.strategy_off");
_Static_assert(offsetof(struct sysi_count_fast, totals) == SYSI_CF_TOTALS, "count_fast.totals");
_Static_assert(sizeof(struct sysi_count_fast) == SYSI_CF_SIZE, "sizeof count_fast");
_Static_assert(offsetof(struct sysi_stats_slab, syscalls) == SYSI_SLAB_CALLS, "slab.syscalls");
_Static_assert(sizeof(struct sysi_stats_syscall) == 16 &&
		       offsetof(struct sysi_stats_syscall, errors) == SYSI_SLAB_ERRORS - SYSI_SLAB_CALLS,
	       "slab.syscalls[].errors");

#endif
#endif
