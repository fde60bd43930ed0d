/*
 * entry.S — sysi_punning_entry, the stub every punning trampoline calls through the entry slot of
 * its page (`call *slot(%rip)`).
 *
 * Entry state: (%rsp) = R, the return address inside the trampoline; the site's i32 offset is at
 *   R + PN_SITE_OFF (site = R + i32). rsp = the site's rsp - 128 - 8 (the trampoline stepped over
 *   the red zone). rax = syscall number, rdi rsi rdx r10 r8 r9 = arguments; every other register
 *   and the flags are the program's, as at the site.
 * Exit state (done): returns to R with rax = result; rdi rsi rdx r10 r8 r9 rbx rbp r12-r15, rsp
 *   and the flags as at entry; rcx and r11 clobbered (the kernel clobbers them too).
 * Exit state (in-context, dispatcher returned 1): returns to R + PN_INCONTEXT_OFF with rax and
 *   rdi rsi rdx r10 r8 r9 = the (possibly rewritten) call, all else as at entry; the trampoline
 *   then restores rsp and runs `syscall` itself (clone with a new stack, clone3, vfork,
 *   rt_sigreturn need the site's own stack and continuation).
 * Clobbers: rcx, r11.
 * Stack: 8 pushes, then aligned down to 16 for the struct sysi_call (C_SIZE, a multiple of 16) and
 *   the dispatcher call. DF is cleared for the C call and restored with the flags.
 * Signal safety: everything lives below the red zone on the thread's own stack; a signal at any
 *   instruction sees a consistent stack; the stub is reentrant.
 * Vector state: untouched here; the dispatcher saves it when the hook needs it.
 */
#include "punning.h"

	.equ F_RBX, 0
	.equ F_R9, 8
	.equ F_R8, 16
	.equ F_R10, 24
	.equ F_RDX, 32
	.equ F_RSI, 40
	.equ F_RDI, 48
	.equ F_FLAGS, 56
	.equ F_RET, 64

	.text
	.global sysi_punning_entry
	.hidden sysi_punning_entry
	.type sysi_punning_entry, @function
	.p2align 4
sysi_punning_entry:
	pushfq
	push %rdi
	push %rsi
	push %rdx
	push %r10
	push %r8
	push %r9
	push %rbx
	mov %rsp, %rbx			/* rbx = F (frame above) */
	and $-16, %rsp
	sub $C_SIZE, %rsp
	mov %rax, C_NR(%rsp)
	mov %rdi, C_A0(%rsp)
	mov %rsi, C_A1(%rsp)
	mov %rdx, C_A2(%rsp)
	mov %r10, C_A3(%rsp)
	mov %r8, C_A4(%rsp)
	mov %r9, C_A5(%rsp)
	mov F_RET(%rbx), %rcx
	movslq PN_SITE_OFF(%rcx), %r11
	add %rcx, %r11
	mov %r11, C_SITE(%rsp)
	mov sysi_punning_strategy(%rip), %ecx	/* strategy id (low half), flags 0 (high half) */
	mov %rcx, C_STRAT(%rsp)
	movq $0, C_RET(%rsp)
	mov %rsp, %rdi
	cld
	call *sysi_punning_dispatch(%rip)
	test %eax, %eax
	jnz .Lincontext
	mov C_RET(%rsp), %rax
	mov %rbx, %rsp
	pop %rbx
	pop %r9
	pop %r8
	pop %r10
	pop %rdx
	pop %rsi
	pop %rdi
	popfq
	ret

.Lincontext:
	mov C_NR(%rsp), %rax
	mov C_A0(%rsp), %rdi
	mov C_A1(%rsp), %rsi
	mov C_A2(%rsp), %rdx
	mov C_A3(%rsp), %r10
	mov C_A4(%rsp), %r8
	mov C_A5(%rsp), %r9
	mov %rbx, %rsp
	pop %rbx
	lea F_FLAGS - F_R9(%rsp), %rsp	/* drop the saved argument registers */
	addq $PN_INCONTEXT_OFF, 8(%rsp)	/* flags are restored just below */
	popfq
	ret
	.size sysi_punning_entry, . - sysi_punning_entry

	.section .note.GNU-stack, "", @progbits
