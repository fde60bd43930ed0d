/*
 * sites.S — benchmark loops. bench_loop is in the executable (planned and patched by sysi);
 * native_loop is in libzpbench-native.so, which is never planned (the native baseline).
 *
 * long bench_loop(long nr, long n, long a6) / native_loop(...): n times `mov nr,%eax;
 *   syscall` with r9 = a6; returns the last result. Clobbers caller-saved registers.
 * void floor_loop(void (*fn)(void), long n): n indirect calls through %rax.
 * Stack: no pushes. Signal safety: plain syscalls.
 */
	.text
	.macro LOOP name
	.global \name
	.type \name, @function
\name:
	mov %rsi, %r8			/* n (the kernel and the entry preserve r8, r9, rdi) */
	mov %rdx, %r9			/* sixth argument */
	.p2align 4
1:	mov %rdi, %rax
	syscall
	dec %r8
	jnz 1b
	ret
	.size \name, . - \name
	.endm

#ifdef NATIVE
	LOOP native_loop
#else
	LOOP bench_loop

	.global floor_loop
	.type floor_loop, @function
floor_loop:
	mov %rsi, %r8
	.p2align 4
1:	mov %rdi, %rax
	call *%rax
	dec %r8
	jnz 1b
	ret
	.size floor_loop, . - floor_loop

	.global floor_ret
	.type floor_ret, @function
floor_ret:
	ret
	.size floor_ret, . - floor_ret
#endif
	.section .note.GNU-stack, "", @progbits
