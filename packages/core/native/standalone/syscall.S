/*
 * syscall.S — the stub's only way into the kernel (it runs before libc is initialised).
 * long sysi_stub_syscall(long nr, long a, long b, long c)
 * long sysi_stub_syscall4(long nr, long a, long b, long c, long d)
 * Entry: SysV call, rdi = nr, rsi/rdx/rcx/r8 = arguments 1-4. Exit: rax = the kernel's result
 * (-errno on error). Clobbers rcx, r11 (the syscall instruction), rax, r10. Stack alignment: not used.
 * Signal safety: none needed (one instruction).
 */
	.text
	.global sysi_stub_syscall
	.hidden sysi_stub_syscall
	.type sysi_stub_syscall, @function
sysi_stub_syscall:
	mov %rdi, %rax
	mov %rsi, %rdi
	mov %rdx, %rsi
	mov %rcx, %rdx
	syscall
	ret
	.size sysi_stub_syscall, . - sysi_stub_syscall

	.global sysi_stub_syscall4
	.hidden sysi_stub_syscall4
	.type sysi_stub_syscall4, @function
sysi_stub_syscall4:
	mov %r8, %r10
	jmp sysi_stub_syscall
	.size sysi_stub_syscall4, . - sysi_stub_syscall4
	.section .note.GNU-stack, "", @progbits
