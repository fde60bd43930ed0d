/*
 * probe.S — the far calls of the segmentation probe and the code they reach (probe.h).
 *
 * seg_probe_call(form, rax, newrsp): C-callable. Saves the callee-saved registers, records its
 *   rsp and its own epilogue in PR_DATA, switches to newrsp when it is not 0, loads rax and
 *   makes one far call through (%rax): form 0 `lcall *(%rax)` (ff 18, at seg_probe_site2),
 *   form 1 `rex.W lcall *(%rax)` (48 ff 18, at seg_probe_site3). The targets never return to
 *   the call: they record what they see and jump to the epilogue with the saved rsp.
 *   Entry: SysV ABI. Exit: returns 0 when a target ran; a fault ends the (child) process in
 *   probe.c's handler instead. Clobbers: what the ABI allows. Not reentrant (PR_DATA).
 * seg_probe_target64 .. _end: position-independent 64-bit target, copied to PR_T1 and PR_T2;
 *   it records `which` from its own address (PR_T1 -> 1, else 2), %cs, rsp and the two qwords
 *   the far call pushed. Entry: CS = 0x33 (a GDT selector), rsp = what the far call left.
 * seg_probe_low .. _end: copied to PR_LOW: a 32-bit (compatibility-mode) target that records
 *   %cs and jumps far to 64-bit code at PR_LOW + (2f - seg_probe_low), which records the rest.
 *   Entry: CS = the LDT selector, a 32-bit segment.
 * Signals: none expected; the child blocks nothing and a fault is the experiment's result.
 */
#include "probe.h"

	.macro RECORD
	mov %rsp, PR_DATA + PR_RSP_AFTER
	mov (%rsp), %rax
	mov %rax, PR_DATA + PR_PUSHED0
	mov 8(%rsp), %rax
	mov %rax, PR_DATA + PR_PUSHED1
	mov PR_DATA + PR_SAVED_RSP, %rsp
	jmp *PR_DATA + PR_RESUME
	.endm

	.text
	.global seg_probe_call, seg_probe_site2, seg_probe_site3
	.type seg_probe_call, @function
seg_probe_call:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, PR_DATA + PR_SAVED_RSP
	lea 9f(%rip), %rcx
	mov %rcx, PR_DATA + PR_RESUME
	mov %rsi, %rax
	test %rdx, %rdx
	jz 1f
	mov %rdx, %rsp
1:	mov %rsp, PR_DATA + PR_RSP_BEFORE
	xor %ecx, %ecx
	mov %cs, %cx
	mov %rcx, PR_DATA + PR_CALLER_CS
	test %rdi, %rdi
	jnz 3f
seg_probe_site2:
	lcall *(%rax)			/* ff 18 */
	ud2				/* never: the targets jump to 9 */
3:
seg_probe_site3:
	rex.W lcall *(%rax)		/* 48 ff 18 */
	ud2
9:	xor %eax, %eax
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret
	.size seg_probe_call, . - seg_probe_call

	.global seg_probe_target64, seg_probe_target64_end
	.type seg_probe_target64, @function
seg_probe_target64:
	lea seg_probe_target64(%rip), %rcx
	cmp $PR_T1, %rcx
	setne %cl
	movzbl %cl, %ecx
	inc %ecx
	mov %rcx, PR_DATA + PR_WHICH
	xor %ecx, %ecx
	mov %cs, %cx
	mov %rcx, PR_DATA + PR_CS
	RECORD
seg_probe_target64_end:
	.size seg_probe_target64, . - seg_probe_target64

	.global seg_probe_low, seg_probe_low_end
	.type seg_probe_low, @function
seg_probe_low:
	.code32
	/* DS is the null selector in a 64-bit process: a data access through it in
	 * compatibility mode is #GP(0); SS holds __USER_DS (flat), so go through SS */
	movl $3, %ss:PR_DATA + PR_WHICH
	xor %eax, %eax
	mov %cs, %ax
	mov %eax, %ss:PR_DATA + PR_CS
	.byte 0xea			/* ljmp $0x33, $(PR_LOW + 2f - seg_probe_low) */
	.long PR_LOW + (2f - seg_probe_low)
	.word 0x33
	.code64
2:	RECORD
seg_probe_low_end:
	.size seg_probe_low, . - seg_probe_low

	.section .note.GNU-stack, "", @progbits
