/*
 * probe.h — fixed addresses and data offsets shared by probe.c and probe.S (the segmentation
 * probe: `sysi segmentation probe`). Every experiment runs in a forked child, so a fault or a
 * wild jump ends only that child.
 *
 *   PR_DATA      one RW page: the words the far-call targets record and the far pointers
 *   PR_LOW       one RWX page below 4 GiB: the 32-bit (compatibility-mode) LDT target and its
 *                64-bit way back (`ljmp $0x33`), which must itself lie below 4 GiB
 *   PR_LOWSTACK  a stack below 4 GiB (PR_LOWSTACK_TOP is its top)
 *   PR_T1        0x00330033: where the page-0 pattern `33 00 33 00 …` sends a far call read as
 *                m16:32 (selector 0x33, offset 0x00330033); a copy of the 64-bit target
 *   PR_T2        0x3300330033: where the same far pointer sends a far call read as m16:64 (the
 *                pointer at PR_FP_GDT is built so that both readings are valid)
 * Absolute addresses below 2 GiB, so the targets address PR_DATA with a sign-extended disp32.
 */
#ifndef SEG_PROBE_H
#define SEG_PROBE_H

#define PR_DATA 0x10000000
#define PR_LOW 0x10001000
#define PR_LOWSTACK 0x10100000
#define PR_LOWSTACK_TOP 0x10200000
#define PR_T1 0x00330033
#define PR_T2 0x3300330033

/* words at PR_DATA + offset */
#define PR_SAVED_RSP 0  /* the caller's rsp, restored by a target */
#define PR_RESUME 8     /* where a target jumps back to (seg_probe_call's epilogue) */
#define PR_RSP_BEFORE 16 /* rsp right before the far call */
#define PR_RSP_AFTER 24 /* rsp in the target (after its way back for the LDT target) */
#define PR_PUSHED0 32   /* the qword at that rsp */
#define PR_PUSHED1 40   /* the qword above it */
#define PR_WHICH 48     /* which target ran: 1 PR_T1, 2 PR_T2, 3 the LDT target */
#define PR_CS 56        /* %cs read inside the target */
#define PR_FP_LDT 64    /* m16:32 far pointer to the LDT target (offset PR_LOW, selector 0xf) */
#define PR_CALLER_CS 96 /* %cs of seg_probe_call (what a far call pushes as CS) */
#define PR_FP_GDT 80    /* 33 00 33 00 33 00 00 00 33 00: m16:32 -> 0x33:PR_T1, m16:64 -> 0x33:PR_T2 */

#define PR_LDT_SEL 0x0f /* LDT entry 1, TI = 1, RPL 3 */

#endif
