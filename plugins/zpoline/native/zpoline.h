/*
 * zpoline.h — shared constants of the zpoline strategy runtime (C and asm).
 *
 * Memory layout, set up when the first site is prepared (init.c: nothing is mapped while
 * zpoline patches nothing):
 *
 *   page 0        E9 layout: `e9 b0 b1 b2 b3` repeated over offsets 0..ZP_E9_END-1, where
 *                 b0..b3 are REX prefixes (0x40..0x4f), so `call *%rax` with rax = nr in
 *                 0..ZP_E9_END-5 decodes (5 - nr%5)%5 ignored REX prefixes and then the jmp
 *                 rel32 of group k = ceil(nr/5), which lands at 5k + 5 + rel_k.
 *                 Groups come in clusters of ZP_CLUSTER_GROUPS: cluster j (groups 4j..4j+3,
 *                 numbers 20j-4..20j+15) has rel_{4j} = 0x4f | (0x40 + 2(j%7)) << 8 |
 *                 (B2 + j/7) << 16 | B3 << 24 and rel_{4j+i} = rel_{4j} - 5i (low byte
 *                 0x4f, 0x4a, 0x45, 0x40: REX still), so its four groups all land on
 *                 E_j = 20j + 5 + rel_{4j}: a copy of an entry blob (entry.S), no second jump.
 *                 Offsets ZP_E9_END..4095 are `hlt` (f4): an entry at nr >= ZP_E9_END - 4
 *                 (REX prefixes, then hlt) raises #GP with rip = nr, which init.c's SIGSEGV
 *                 claim resumes at E_0 like every number outside page 0 (no kernel number is
 *                 that high: the kernel answers ENOSYS).
 *   entry pages   ZP_ENTRY_PAGES pages, page r at B3 << 24 | (B2 + r) << 16 | 0x4000, holding
 *                 the copies E_j of clusters 7r..7r+6 (at offset 0x54 + 140r + 532(j%7): each
 *                 copy inside its page), `hlt` between them. E_j is the fast blob (no
 *                 dispatcher, no number test) when api->fast_hook is set and none of the
 *                 cluster's numbers may be in-context; with SYSI_FAST_COUNT the count blob,
 *                 and a spare copy of the general blob in the last ZP_SPARE_SPACE bytes of
 *                 the last entry page, where the count copies send the calls they leave to
 *                 the hook and the SIGSEGV claim resumes; with SYSI_FAST_PASSTHROUGH, the sys blob
 *                 (the syscall itself) when none of them needs the runtime; else the general
 *                 one. Each copy carries its own data words.
 *   site set      the return addresses (site + 2) of the patched sites, an open-addressing
 *                 hash set (set.c) sized to them: the home slot of R is slot[R & (n - 1)],
 *                 byte offset R * 8 & mask8, then linear probing up to an empty (0) slot.
 *                 Each entry copy holds slot and mask8 in data words; a bigger set is
 *                 published by rewriting them (set.c).
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
#define ZP_HLT 0xf4            /* page 0 after the groups, and the entry pages between copies */
#define ZP_SET_TAIL 63          /* probing never wraps: it may run this far past the last slot */
#define ZP_SET_FIRST 256        /* slots of the first set: one page with the tail */
#define ZP_VSTACK_N 8       /* nesting depth of the vfork return-address stack */
#define ZP_CLONE3_BUF 512   /* bytes of the local clone_args copy */
#define ZP_SPARE_SPACE 640  /* SYSI_FAST_COUNT: the spare general copy in the last entry page's last
			     * bytes (the general blob, aligned), after cluster 25's copy */

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
#define ZP_NR_EXECVE 59
#define ZP_NR_EXECVEAT 322

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

/* The set of return addresses (set.c); the entry blobs read mask8 and slot[] too. */
struct zp_set {
	uint64_t mask8;    /* (nslots - 1) * 8, nslots a power of two */
	uintptr_t slot[];  /* nslots + ZP_SET_TAIL slots, 0 = empty, then one 0 */
};

/* Where a set is published: each entry copy's _set and _mask words, on the entry pages. */
struct zp_publish {
	uint64_t *set[ZP_CLUSTERS + 1], *mask[ZP_CLUSTERS + 1]; /* + the spare general copy */
	int nwords;
	uintptr_t page[ZP_ENTRY_PAGES];
	int npages;
};

/* set.c; all but zp_set_has run under libsysi's module lock (prepare_site) */
int zp_set_init(const struct sysi_runtime_api *a);
struct zp_set *zp_set_current(void);
int zp_set_add(uintptr_t r, const struct zp_publish *pub);
int zp_set_has(uintptr_t r); /* any thread, signal handlers */

/* entry.S: the blobs copied into the entry pages, their data words and strategy immediates */
#define ZP_BLOB(p)                                                                             \
	extern const unsigned char p[], p##_end[], p##_set[], p##_mask[], p##_slowfn[], p##_hook[], \
		p##_defer[], p##_release[], p##_hit[]
ZP_BLOB(sysi_zpoline_fast);
ZP_BLOB(sysi_zpoline_fastk);
ZP_BLOB(sysi_zpoline_gen);
ZP_BLOB(sysi_zpoline_sys);
ZP_BLOB(sysi_zpoline_cnt);
extern const unsigned char sysi_zpoline_cnt_general[], sysi_zpoline_cnt_left[];
extern const unsigned char sysi_zpoline_cnt_cf[], sysi_zpoline_cnt_ret[], sysi_zpoline_cnt_skip[];
extern const unsigned char sysi_zpoline_gen_body[];
extern const unsigned char sysi_zpoline_fast_strat[], sysi_zpoline_fastk_strat[];
extern const unsigned char sysi_zpoline_fast_back[], sysi_zpoline_fastk_back[];
extern const unsigned char sysi_zpoline_gen_back[];
extern const unsigned char sysi_zpoline_gen_dispatch[], sysi_zpoline_gen_incontext[];
extern const unsigned char sysi_zpoline_gen_strat[], sysi_zpoline_gen_direct[];

/* incontext.S */
void sysi_zpoline_incontext(void);
extern const unsigned char sysi_zpoline_incontext_end[];
/* entry.S: the check's last resort (called by the blobs, not from C) */
void sysi_zpoline_slow(void);
extern const unsigned char sysi_zpoline_slow_end[];
/* init.c: prepares an in-context call; returns ZP_K_* */
int sysi_zpoline_prep(struct sysi_call *c, unsigned char *buf, const uintptr_t *a);
#endif

#endif
