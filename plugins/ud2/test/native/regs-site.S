/*
 * regs-site.S — one `syscall` site whose surroundings are observable (test/native/regs.c).
 *
 * int regs_site(const struct regs *in, struct regs *out)   [C ABI; offsets: R_* below]
 * Entry: in = the state to load, out = where to store the state after the call. Loads the
 *   vector registers (ymm0-15 when regs_avx is set, else xmm0-15), MXCSR, the x87 control
 *   word, RFLAGS (CF PF AF ZF SF DF OF AC), the 128-byte red zone below rsp and rax (number),
 *   rbx rbp r12-r15 rdi rsi rdx r10 r8 r9 from `in`; then executes the site `syscall` at
 *   regs_site_syscall (exported so the program can see whether it was patched).
 * After the site: stores rax, the same general registers, the red zone, RFLAGS, MXCSR, the
 *   x87 control word and the vector registers to `out` (the red zone before anything is
 *   pushed), then restores a C-safe state (DF and AC clear, default MXCSR/FCW, vzeroupper).
 * Exit: returns 0; callee-saved registers restored.
 * Clobbers: everything the C ABI lets a call clobber. Stack: 6 pushes, 16-byte aligned at
 *   the site is not required. Signal safety: not reentrant (out is kept in regs_out).
 */
	.equ R_RAX, 0
	.equ R_RBX, 8
	.equ R_RBP, 16
	.equ R_R12, 24
	.equ R_R13, 32
	.equ R_R14, 40
	.equ R_R15, 48
	.equ R_RDI, 56
	.equ R_RSI, 64
	.equ R_RDX, 72
	.equ R_R10, 80
	.equ R_R8, 88
	.equ R_R9, 96
	.equ R_FLAGS, 104
	.equ R_MXCSR, 112
	.equ R_FCW, 116
	.equ R_RED, 128
	.equ R_VEC, 256

	.bss
	.balign 8
regs_out:
	.quad 0
	.globl regs_avx
regs_avx:
	.long 0

	.section .rodata
	.balign 4
default_mxcsr:
	.long 0x1f80
default_fcw:
	.word 0x37f

	.text
	.globl regs_site
	.type regs_site, @function
regs_site:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsi, regs_out(%rip)
	cmpl $0, regs_avx(%rip)
	je 1f
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	vmovdqu R_VEC + 32 * \i(%rdi), %ymm\i
	.endr
	jmp 2f
1:
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	movdqu R_VEC + 32 * \i(%rdi), %xmm\i
	.endr
2:
	ldmxcsr R_MXCSR(%rdi)
	fldcw R_FCW(%rdi)
	pushq R_FLAGS(%rdi)		/* uses the red zone's top slot, filled below */
	popfq
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	mov R_RED + 8 * \i(%rdi), %rax
	mov %rax, -128 + 8 * \i(%rsp)
	.endr
	mov R_RAX(%rdi), %rax
	mov R_RBX(%rdi), %rbx
	mov R_RBP(%rdi), %rbp
	mov R_R12(%rdi), %r12
	mov R_R13(%rdi), %r13
	mov R_R14(%rdi), %r14
	mov R_R15(%rdi), %r15
	mov R_RSI(%rdi), %rsi
	mov R_RDX(%rdi), %rdx
	mov R_R10(%rdi), %r10
	mov R_R8(%rdi), %r8
	mov R_R9(%rdi), %r9
	mov R_RDI(%rdi), %rdi
	.globl regs_site_syscall
regs_site_syscall:
	syscall
	mov regs_out(%rip), %rcx	/* rcx and r11 are the kernel's after `syscall` */
	mov %rax, R_RAX(%rcx)
	mov %rbx, R_RBX(%rcx)
	mov %rbp, R_RBP(%rcx)
	mov %r12, R_R12(%rcx)
	mov %r13, R_R13(%rcx)
	mov %r14, R_R14(%rcx)
	mov %r15, R_R15(%rcx)
	mov %rdi, R_RDI(%rcx)
	mov %rsi, R_RSI(%rcx)
	mov %rdx, R_RDX(%rcx)
	mov %r10, R_R10(%rcx)
	mov %r8, R_R8(%rcx)
	mov %r9, R_R9(%rcx)
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	mov -128 + 8 * \i(%rsp), %r11
	mov %r11, R_RED + 8 * \i(%rcx)
	.endr
	pushfq
	pop %r11
	mov %r11, R_FLAGS(%rcx)
	pushq $0x202
	popfq
	stmxcsr R_MXCSR(%rcx)
	fnstcw R_FCW(%rcx)
	ldmxcsr default_mxcsr(%rip)
	fldcw default_fcw(%rip)
	cmpl $0, regs_avx(%rip)
	je 3f
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	vmovdqu %ymm\i, R_VEC + 32 * \i(%rcx)
	.endr
	vzeroupper
	jmp 4f
3:
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	movdqu %xmm\i, R_VEC + 32 * \i(%rcx)
	.endr
4:
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	xor %eax, %eax
	ret
	.size regs_site, . - regs_site

	.section .note.GNU-stack, "", @progbits
