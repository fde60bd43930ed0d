/*
 * start.S — sysi-exec's entry point and its one system-call primitive (no libc).
 *
 * _start
 *   entry: the kernel's initial state: rsp -> argc, argv[0..argc-1], 0, envp[..], 0, auxv;
 *          no other register is meaningful.
 *   calls: sysi_exec_main(sp) with rsp 16-byte aligned before the call (SysV); it never
 *          returns (it ends in execve or exit_group); hlt faults if it did.
 *   signal safety: no handler is ever installed.
 *
 * sysi_exec_syscall6(nr, a1, a2, a3, a4, a5, a6)
 *   entry: SysV call (rdi = nr, rsi..r9 = a1..a5, a6 at 8(%rsp)).
 *   exit: rax = the kernel's return value (-errno on failure).
 *   clobbers: rcx, r11 (the syscall instruction), rdi, rsi, rdx, r8, r9, r10.
 *   stack: uses none of its own.
 */
	.text

	.global _start
	.type _start, @function
_start:
	xor %ebp, %ebp
	mov %rsp, %rdi
	and $-16, %rsp
	call sysi_exec_main
	hlt
	.size _start, .-_start

	.global sysi_exec_syscall6
	.hidden sysi_exec_syscall6
	.type sysi_exec_syscall6, @function
sysi_exec_syscall6:
	mov %rdi, %rax
	mov %rsi, %rdi
	mov %rdx, %rsi
	mov %rcx, %rdx
	mov %r8, %r10
	mov %r9, %r8
	mov 8(%rsp), %r9
	syscall
	ret
	.size sysi_exec_syscall6, .-sysi_exec_syscall6

	.section .note.GNU-stack,"",@progbits
