/*
 * zpoline.h — shared constants of the zpoline strategy runtime (C and asm).
 *
 * Memory layout set up by init (see init.c):
 *
 *   page 0        E9 layout: `e9 b0 b1 b2 b3` repeated over offsets 0..ZP_E9_END-1, where
 *                 b0..b3 are REX prefixes (0x40..0x4f), so `call *%rax` with rax = nr in
 *                 0..ZP_E9_END-1 decodes (5 - nr%5)%5 ignored REX prefixes and then the jmp
 *                 rel32 of the next group: it lands at L + (rel & 0xfff) + 5 + 5*ceil(nr/5).
 *                 Offsets ZP_E9_END..4090 are a 0x90 sled ending in a jmp to the entry (invalid
 *                 syscall numbers only), offsets 4091..4095 hold that jmp.
 *                 Fallback (no landing page at a REX-encodable address): a 0x90 sled with an
 *                 absolute `jmp *0(%rip)` at ZP_SLED_JMP1 and at ZP_SLED_JMP2.
 *   landing L     one page: `jmp entry` slots every 5 bytes, then (at ZP_CODE_OFF) a copy of the
 *                 position-independent entry blob (entry.S) and its data words.
 *   bitmap        2^44 bytes, MAP_NORESERVE: bit (a & 7) of byte (a >> 3) is set when a is the
 *                 return address (site + 2) of a patched site.
 */
#ifndef SYSI_ZPOLINE_H
#define SYSI_ZPOLINE_H

#define ZP_PAGE 4096
#define ZP_E9_END 520       /* E9 groups cover page-0 offsets 0..519 (104 groups) */
#define ZP_E9_GROUPS 104
#define ZP_CODE_OFF 0x280   /* entry blob offset inside the landing page (after the slots) */
#define ZP_SLED_JMP1 512    /* fallback layout: `ff 25 00 00 00 00` + abs64 (14 bytes) */
#define ZP_SLED_JMP2 4082
#define ZP_BITMAP_BYTES (1ul << 44) /* one bit per byte of the 47-bit user address space */
#define ZP_VSTACK_N 8       /* nesting depth of the vfork return-address stack */
#define ZP_CLONE3_BUF 512   /* bytes of the local clone_args copy */

/* Numbers the entry sends to the dispatcher even on the fast path (they may be in-context):
 * a mask of clone (56), vfork (58), rt_sigreturn (15); clone3 (435) on its own. */
#define ZP_MAYBE_INCONTEXT 0x0500000000008000 /* bits 15, 56, 58 */
#define ZP_NR_CLONE3 435

/* Red zone: [rsp-8] of the site holds the return address; the entry skips the other 120. */
#define ZP_RZ_SKIP 120

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

/*
 * The entry's frame. rbp = A = (return-address slot) - 128, [A] = the program's rbp; F = the
 * 16-byte aligned rsp passed to the dispatcher = (A - 128) & -16: the struct sysi_call at F,
 * then the program's argument registers (restored after the call, whatever the hook did to
 * c->args).
 */
#define F_RDI 80
#define F_RSI 88
#define F_RDX 96
#define F_R10 104
#define F_R8 112
#define F_R9 120
#define F_SIZE 128    /* A - F >= F_SIZE */
#define A_RETSLOT 128 /* return-address slot = A + A_RETSLOT */

/* kinds returned by sysi_zpoline_prep() for an in-context call */
#define ZP_K_PLAIN 0     /* perform from the frame, return normally */
#define ZP_K_SIGRETURN 1 /* rt_sigreturn at the program's rsp */
#define ZP_K_CLONE 2     /* clone with a new stack: R pushed on the child stack, rsi -= 8 */
#define ZP_K_CLONE3 3    /* clone3 with a new stack: local clone_args copy; R, rdi, rbp on it */
#define ZP_K_SAMESTACK 4 /* vfork and stack-sharing clone/clone3: R kept in a TLS stack */

#ifndef __ASSEMBLER__
#include <stdint.h>
#include "sysi.h"

struct sysi_zpoline_vstack {
	long depth;                /* entries in use */
	uintptr_t ret[ZP_VSTACK_N]; /* return addresses, innermost last */
};

/* entry.S: the blob copied into the landing page, with its data words */
extern const unsigned char sysi_zpoline_blob[], sysi_zpoline_blob_end[];
extern const unsigned char sysi_zpoline_blob_entry[];
extern const unsigned char sysi_zpoline_blob_dispatch[], sysi_zpoline_blob_bitmap[];
extern const unsigned char sysi_zpoline_blob_incontext[], sysi_zpoline_blob_strategy[];
extern const unsigned char sysi_zpoline_blob_hook[];

/* incontext.S */
void sysi_zpoline_incontext(void);
/* init.c: prepares an in-context call; returns ZP_K_* */
int sysi_zpoline_prep(struct sysi_call *c, unsigned char *buf, const uintptr_t *a);
#endif

#endif
