/*
 * seg.h — shared constants of the segmentation strategy runtime (C and asm).
 *
 * A patched site holds `lcall *(%rax)` (ff 18) where it held `syscall` (0f 05). Memory layout,
 * set up when the first site is prepared (init.c):
 *
 *   page 0        33 00 33 00 … (read-only, not executable): for an even rax in 0..4090 the
 *                 6 bytes at rax are the far pointer m16:32 0x0033:0x00330033, i.e. selector
 *                 0x33 (the GDT's 64-bit user code segment, __USER_CS) and offset 0x00330033.
 *                 An odd rax reads selector 0x3300 (#GP), rax > 4090 crosses into page 1 (#PF):
 *                 both fault at the far call with nothing pushed, and init.c's SIGSEGV claim
 *                 performs the call (fault path).
 *   SEG_ENTRY     0x00330033: a copy of entry.S's blob, on the page SEG_ENTRY_PAGE (read-only
 *                 and executable once filled). The far call pushed 8 bytes: the low 32 bits of
 *                 the return address R = site + 2 and CS (0x33) zero-extended to 32 bits.
 *   SEG_TABLE     the return addresses of the patched sites, keyed by their low 32 bits: an
 *                 open-addressing table of SEG_TABLE_N 8-byte slots (0 = empty), home slot
 *                 (low32 * SEG_HASH_MUL mod 2^32) >> (32 - SEG_TABLE_BITS), linear probing
 *                 (wrapping). Two sites with the same low 32 bits cannot both be patched: the
 *                 second is refused (prepare_site) and falls to its next option.
 *   gadgets       for sites whose number the planner did not know (variant `any`), 16 bytes
 *                 `syscall; jmp *0(%rip); .quad R`: the fault path runs in-context calls
 *                 (clone with a new stack, clone3, vfork, rt_sigreturn) there, with the
 *                 program's registers and stack once the signal frame is gone.
 */
#ifndef SYSI_SEG_H
#define SYSI_SEG_H

#define SEG_PAGE 4096
#define SEG_ENTRY 0x00330033
#define SEG_ENTRY_PAGE 0x00330000
#define SEG_TABLE 0x00331000
#define SEG_TABLE_BITS 16
#define SEG_TABLE_N (1 << SEG_TABLE_BITS)
#define SEG_TABLE_MAX (SEG_TABLE_N / 2) /* sites at most: load factor 1/2 */
#define SEG_HASH_MUL 0x9e3779b1
#define SEG_RZ_SKIP 120 /* the red zone below the return-address slot the entry steps over */
#define SEG_GADGET_SIZE 16

/* aux[1] of a plan option: the planner did not know the site's number (variant `any`) */
#define SEG_AUX_ANY 1

/* numbers the entry does not hand to the fast hook (sysi.h) */
#define SEG_NR_RT_SIGACTION 13
#define SEG_NR_RT_SIGPROCMASK 14
#define SEG_NR_RT_SIGRETURN 15
#define SEG_NR_CLONE 56
#define SEG_NR_FORK 57
#define SEG_NR_VFORK 58
#define SEG_NR_CLONE3 435
#define SEG_NR_EXECVE 59
#define SEG_NR_EXECVEAT 322

#include "sysi-entry.h"

#ifndef __ASSEMBLER__
#include <stdint.h>
#include "sysi.h"

/* entry.S: the blob copied to SEG_ENTRY, its labels and data words */
extern const unsigned char sysi_seg_entry[], sysi_seg_entry_end[], sysi_seg_entry_found[],
	sysi_seg_entry_frame[], sysi_seg_entry_strat[], sysi_seg_entry_hook[],
	sysi_seg_entry_dispatch[], sysi_seg_entry_defer[], sysi_seg_entry_release[],
	sysi_seg_entry_direct[];
/* entry.S: rt_sigreturn at the program's rsp (the fault path's in-context rt_sigreturn) */
extern const unsigned char sysi_seg_sigreturn[];
#endif

#endif
