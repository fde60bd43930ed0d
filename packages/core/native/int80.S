/*
 * int80.S — sysi_sud_int80(gregs): make a trapped `int $0x80` call again from libsysi (sud.c: the
 * 32-bit ABI, which no hook sees, is made as it was and counted as missed).
 *   entry:   rdi = the trap's gregs (glibc REG_* order): eax ebx ecx edx esi edi ebp read from it
 *   exit:    rax = the kernel's result, sign-extended from eax as the 32-bit ABI returns it
 *   clobbers: rcx rdx rsi rdi r8-r11 (caller-saved); rbx and rbp saved and restored
 *   stack:   two pushes, no calls; signal safety: reentrant, no memory of its own
 */
	.equ G_RDI, 8 * 8
	.equ G_RSI, 9 * 8
	.equ G_RBP, 10 * 8
	.equ G_RBX, 11 * 8
	.equ G_RDX, 12 * 8
	.equ G_RAX, 13 * 8
	.equ G_RCX, 14 * 8

	.text
	.global sysi_sud_int80
	.hidden sysi_sud_int80
	.type sysi_sud_int80, @function
sysi_sud_int80:
	.cfi_startproc
	push %rbx
	.cfi_adjust_cfa_offset 8
	push %rbp
	.cfi_adjust_cfa_offset 8
	mov %rdi, %r8
	mov G_RAX(%r8), %eax
	mov G_RBX(%r8), %ebx
	mov G_RCX(%r8), %ecx
	mov G_RDX(%r8), %edx
	mov G_RSI(%r8), %esi
	mov G_RDI(%r8), %edi
	mov G_RBP(%r8), %ebp
	int $0x80
	movslq %eax, %rax
	pop %rbp
	.cfi_adjust_cfa_offset -8
	pop %rbx
	.cfi_adjust_cfa_offset -8
	ret
	.cfi_endproc
	.size sysi_sud_int80, . - sysi_sud_int80

	.section .note.GNU-stack, "", @progbits
