/*
 * resume.S — sysi_ud2_resume: end a trap whose call is complete without rt_sigreturn. Called
 * by sysi_ud2_trap (handler.c) from the trap's signal handler; it loads the interrupted
 * context from the kernel's signal frame itself and jumps to it, which saves the kernel
 * round trip of rt_sigreturn (~0.8 µs of a ~3 µs trap on Zen 5).
 *
 * What rt_sigreturn would do and why it is not needed here (handler.c checks each point
 * before calling): the blocked mask — libsysi's master runs with SA_NODEFER and an empty
 * sa_mask, so delivery did not change it, and a hooked rt_sigprocmask left it as the program
 * asked; the alternate stack — rt_sigreturn re-applies uc_stack, which differs from the
 * current one only after SS_AUTODISARM (refused) or a hooked sigaltstack (whose result must
 * stand); the shadow stack (refused when enabled);
 * CS/SS (refused unless the 64-bit user CS); restart_block (irrelevant: the trap interrupted
 * no system call).
 *
 * Entry state (C ABI, never returns):
 *   rdi = uc->uc_mcontext.gregs of the trap's frame, with the result in REG_RAX and site + 2
 *         in REG_RIP; 8-byte aligned (the kernel aligns the frame)
 *   rsi = uc->uc_mcontext.fpregs: the kernel's XSAVE image of the interrupted context
 *         (standard format, 64-byte aligned, magic words checked by the caller)
 *   rdx = its _fpx_sw_bytes.xfeatures: the feature mask rt_sigreturn restores with
 *   rsp = the handler's stack, below the frame
 * Exit state (at gregs[REG_RIP]): every general register, rsp and the x87/SSE/AVX/... and
 *   PKRU state as in the frame, except rcx = the return RIP and r11 = the saved RFLAGS, which
 *   is what the `syscall` instruction leaves in them (the ABI lists both as clobbered);
 *   RFLAGS from the frame, as far as popfq at CPL 3 sets it (CF PF AF ZF SF DF OF AC NT ID;
 *   the caller refuses a frame with TF, as a debugger's single step would fire here).
 * Clobbers: everything (all restored from the frame).
 * Stack: no alignment needed (nothing is called). From the first load on, rsp points at the
 *   frame's gregs: everything below (uc_stack, the restorer slot, the handler's stack) is dead;
 *   popfq's slot is the quadword just below. The program's stack is never written: its rsp is
 *   loaded last, and the jump follows.
 * Signal safety: a signal arriving here gets a frame >= 128 bytes below rsp (or on the
 *   alternate stack), so below the gregs and the XSAVE image (the kernel placed the image
 *   above the frame) while any of them is still to be read; once rsp is the program's, only
 *   rcx (the target) and r11 are live, both registers, so a frame written over the old one
 *   changes nothing. Reentrant (no memory of its own).
 */

/* glibc's gregs order (sys/ucontext.h REG_*), in bytes */
	.equ G_R8, 0 * 8
	.equ G_R9, 1 * 8
	.equ G_R10, 2 * 8
	.equ G_R11, 3 * 8
	.equ G_R12, 4 * 8
	.equ G_R13, 5 * 8
	.equ G_R14, 6 * 8
	.equ G_R15, 7 * 8
	.equ G_RDI, 8 * 8
	.equ G_RSI, 9 * 8
	.equ G_RBP, 10 * 8
	.equ G_RBX, 11 * 8
	.equ G_RDX, 12 * 8
	.equ G_RAX, 13 * 8
	.equ G_RCX, 14 * 8
	.equ G_RSP, 15 * 8
	.equ G_RIP, 16 * 8
	.equ G_EFL, 17 * 8

	.text
	.global sysi_ud2_resume
	.hidden sysi_ud2_resume
	.type sysi_ud2_resume, @function
sysi_ud2_resume:
	mov %rdx, %rax
	shr $32, %rdx
	.global sysi_ud2_resume_xrstor, sysi_ud2_resume_mv, sysi_ud2_resume_popf, sysi_ud2_resume_jmp
	.hidden sysi_ud2_resume_xrstor, sysi_ud2_resume_mv, sysi_ud2_resume_popf, sysi_ud2_resume_jmp
	/* handler.c sysi_ud2_context maps a signal at each point below to the program's context */
sysi_ud2_resume_xrstor:
	xrstor64 (%rsi)			/* edx:eax = the frame's xfeatures */
sysi_ud2_resume_mv:
	mov %rdi, %rsp			/* the frame is the stack now */
	mov G_EFL(%rsp), %r11
	btr $16, %r11			/* RF: set in a fault's image, clear after `syscall` */
	push %r11
sysi_ud2_resume_popf:
	popfq
	mov G_R8(%rsp), %r8
	mov G_R9(%rsp), %r9
	mov G_R10(%rsp), %r10
	mov G_R12(%rsp), %r12
	mov G_R13(%rsp), %r13
	mov G_R14(%rsp), %r14
	mov G_R15(%rsp), %r15
	mov G_RDI(%rsp), %rdi
	mov G_RSI(%rsp), %rsi
	mov G_RBP(%rsp), %rbp
	mov G_RBX(%rsp), %rbx
	mov G_RDX(%rsp), %rdx
	mov G_RAX(%rsp), %rax
	mov G_RIP(%rsp), %rcx		/* rcx = return RIP, as after `syscall` */
	mov G_RSP(%rsp), %rsp		/* the program's stack: nothing below is read again */
sysi_ud2_resume_jmp:
	jmp *%rcx
	.global sysi_ud2_resume_end
	.hidden sysi_ud2_resume_end
sysi_ud2_resume_end:
	.size sysi_ud2_resume, . - sysi_ud2_resume

	.section .note.GNU-stack, "", @progbits
