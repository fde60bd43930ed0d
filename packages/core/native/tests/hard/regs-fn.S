/*
 * The register and red-zone checks of regs.c, each around one inline `syscall` (getppid).
 *
 * long regs_site(uint64_t out[13]): loads a distinct pattern into rbx rbp r12-r15 rdi rsi rdx
 *   r10 r8 r9, makes the syscall, stores those twelve registers and then rax into out[0..12]
 *   (out is kept on the stack meanwhile and read back through r11, which the kernel clobbers).
 *   Touches no memory below rsp, so zpoline may take this site.
 * long regs_redzone(void): fills the 128-byte red zone [rsp-128, rsp) with a pattern, makes
 *   the syscall, returns how many of the 16 qwords changed (0 natively). zpoline refuses this
 *   function (it uses its red zone); the next strategy of the chain takes it.
 * Entry/exit: SysV calls; callee-saved registers restored. Clobbers: rax rcx rdx rsi rdi r8-r11.
 * Stack: 16-byte aligned calls, nothing else. Signal safety: async-signal-safe.
 */
	.text
	.global regs_site
	.type regs_site, @function
regs_site:
	push %rbp
	push %rbx
	push %r12
	push %r13
	push %r14
	push %r15
	push %rdi
	movabs $0x1111111111111101, %rbx
	movabs $0x2222222222222202, %rbp
	movabs $0x3333333333333303, %r12
	movabs $0x4444444444444404, %r13
	movabs $0x5555555555555505, %r14
	movabs $0x6666666666666606, %r15
	movabs $0x7777777777777707, %rdi
	movabs $0x8888888888888808, %rsi
	movabs $0x9999999999999909, %rdx
	movabs $0xaaaaaaaaaaaaaa0a, %r10
	movabs $0xbbbbbbbbbbbbbb0b, %r8
	movabs $0xcccccccccccccc0c, %r9
	mov $110, %eax		/* getppid */
	syscall
	mov (%rsp), %r11
	mov %rbx, 0(%r11)
	mov %rbp, 8(%r11)
	mov %r12, 16(%r11)
	mov %r13, 24(%r11)
	mov %r14, 32(%r11)
	mov %r15, 40(%r11)
	mov %rdi, 48(%r11)
	mov %rsi, 56(%r11)
	mov %rdx, 64(%r11)
	mov %r10, 72(%r11)
	mov %r8, 80(%r11)
	mov %r9, 88(%r11)
	mov %rax, 96(%r11)
	pop %rdi
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	pop %rbp
	ret
	.size regs_site, . - regs_site

	.global regs_redzone
	.type regs_redzone, @function
regs_redzone:
	mov $16, %ecx
1:	movabs $0x5a5a5a5a5a5a5a00, %rax
	or %rcx, %rax
	mov %rax, -136(%rsp,%rcx,8)	/* [rsp-128 .. rsp-8] */
	dec %ecx
	jnz 1b
	mov $110, %eax		/* getppid */
	syscall
	xor %edx, %edx
	mov $16, %ecx
2:	movabs $0x5a5a5a5a5a5a5a00, %rax
	or %rcx, %rax
	cmp %rax, -136(%rsp,%rcx,8)
	je 3f
	inc %edx
3:	dec %ecx
	jnz 2b
	mov %rdx, %rax
	ret
	.size regs_redzone, . - regs_redzone
	.section .note.GNU-stack, "", @progbits
