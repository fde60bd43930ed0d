/*
 * zpoline.h — shared constants of the zpoline strategy runtime (C and asm).
 *
 * Memory layout set up by init (see init.c):
 *
 *   page 0        E9 layout: `e9 b0 b1 b2 b3` repeated over offsets 0..ZP_E9_END-1, where
 *                 b0..b3 are REX prefixes (0x40..0x4f), so `call *%rax` with rax = nr in
 *                 0..ZP_E9_END-1 decodes (5 - nr%5)%5 ignored REX prefixes and then the jmp
 *                 rel32 of group k = ceil(nr/5), which lands at 5k + 5 + rel_k.
 *                 Groups come in clusters of ZP_CLUSTER_GROUPS: cluster j (groups 4j..4j+3,
 *                 numbers 20j-4..20j+15) has rel_{4j} = 0x4f | (0x40 + 2(j%7)) << 8 |
 *                 (B2 + j/7) << 16 | B3 << 24 and rel_{4j+i} = rel_{4j} - 5i (low byte
 *                 0x4f, 0x4a, 0x45, 0x40: REX still), so its four groups all land on
 *                 E_j = 20j + 5 + rel_{4j}: a copy of an entry blob (entry.S), no second jump.
 *                 Offsets ZP_E9_END..4090 are a 0x90 sled ending in a jmp to E_0 (invalid
 *                 syscall numbers only), offsets 4091..4095 hold that jmp.
 *                 Fallback (no entry pages at REX-encodable addresses): a 0x90 sled with an
 *                 absolute `jmp *0(%rip)` at ZP_SLED_JMP1 and at ZP_SLED_JMP2, to one copy.
 *   entry pages   ZP_ENTRY_PAGES pages, page r at B3 << 24 | (B2 + r) << 16 | 0x4000, holding
 *                 the copies E_j of clusters 7r..7r+6 (at offset 0x54 + 140r + 532(j%7): each
 *                 copy inside its page). E_j is the fast blob (no dispatcher, no number test)
 *                 when api->fast_hook is set and none of the cluster's numbers may be
 *                 in-context; with SYSI_FAST_PASSTHROUGH, the sys blob (the syscall itself)
 *                 when none of them needs the runtime; else the general one. Each copy
 *                 carries its own data words.
 *   bitmap        2^44 bytes, MAP_NORESERVE: bit (a & 7) of byte (a >> 3) is set when a is the
 *                 return address (site + 2) of a patched site.
 */
#ifndef SYSI_ZPOLINE_H
#define SYSI_ZPOLINE_H

#define ZP_PAGE 4096
#define ZP_CODE_ALIGN 64 /* a copy's code starts on an instruction-fetch line (init.c) */
#define ZP_E9_END 520       /* E9 groups cover page-0 offsets 0..519 (104 groups) */
#define ZP_E9_GROUPS 104
#define ZP_CLUSTER_GROUPS 4     /* page-0 groups per entry copy */
#define ZP_CLUSTERS 26          /* ZP_E9_GROUPS / ZP_CLUSTER_GROUPS */
#define ZP_CLUSTERS_PER_PAGE 7
#define ZP_ENTRY_PAGES 4        /* ceil(ZP_CLUSTERS / ZP_CLUSTERS_PER_PAGE) */
#define ZP_SLED_JMP1 512    /* fallback layout: `ff 25 00 00 00 00` + abs64 (14 bytes) */
#define ZP_SLED_JMP2 4082
#define ZP_BITMAP_BYTES (1ul << 44) /* one bit per byte of the 47-bit user address space */
#define ZP_BITMAP_HINT (2ul << 44)  /* 32 TiB: the bitmap's preferred address (init.c) */
#define ZP_VSTACK_N 8       /* nesting depth of the vfork return-address stack */
#define ZP_CLONE3_BUF 512   /* bytes of the local clone_args copy */

/* Numbers that may be in-context (sysi.h fast_hook): never through the fast hook; with
 * rt_sigaction, rt_sigprocmask and fork, never performed by the entry itself
 * (SYSI_FAST_PASSTHROUGH). */
#define ZP_NR_RT_SIGACTION 13
#define ZP_NR_RT_SIGPROCMASK 14
#define ZP_NR_RT_SIGRETURN 15
#define ZP_NR_CLONE 56
#define ZP_NR_FORK 57
#define ZP_NR_VFORK 58
#define ZP_NR_CLONE3 435

/* Red zone: [rsp-8] of the site holds the return address; the entry skips the other 120. */
#define ZP_RZ_SKIP 120

#include "sysi-entry.h" /* struct sysi_call offsets SYSI_C_*, the save area SYSI_F_* */

/*
 * The entry's frame. rbp = A = (return-address slot) - 128, [A] = the program's rbp; F = the
 * 16-byte aligned rsp passed to the dispatcher = (A - 128) & -16: the struct sysi_call at F,
 * then the program's argument registers (restored after the call, whatever the hook did to
 * c->args).
 */
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

/* entry.S: the blobs copied into the entry pages, their data words and strategy immediates */
extern const unsigned char sysi_zpoline_fast[], sysi_zpoline_fast_end[];
extern const unsigned char sysi_zpoline_fast_bitmap[], sysi_zpoline_fast_hook[];
extern const unsigned char sysi_zpoline_fast_strat[];
extern const unsigned char sysi_zpoline_fastk[], sysi_zpoline_fastk_end[];
extern const unsigned char sysi_zpoline_fastk_bitmap[], sysi_zpoline_fastk_hook[];
extern const unsigned char sysi_zpoline_fastk_strat[];
extern const unsigned char sysi_zpoline_gen[], sysi_zpoline_gen_end[];
extern const unsigned char sysi_zpoline_gen_bitmap[], sysi_zpoline_gen_hook[];
extern const unsigned char sysi_zpoline_gen_dispatch[], sysi_zpoline_gen_incontext[];
extern const unsigned char sysi_zpoline_gen_strat[], sysi_zpoline_gen_direct[];
extern const unsigned char sysi_zpoline_sys[], sysi_zpoline_sys_end[], sysi_zpoline_sys_bitmap[];

/* incontext.S */
void sysi_zpoline_incontext(void);
/* init.c: prepares an in-context call; returns ZP_K_* */
int sysi_zpoline_prep(struct sysi_call *c, unsigned char *buf, const uintptr_t *a);
#endif

#endif
