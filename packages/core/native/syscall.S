/*
 * syscall.S — libsysi's raw system calls. libsysi is never planned or patched, so the
 * `syscall` instructions here are never re-instrumented: hooks reach the kernel through them.
 *
 * sysi_syscall6 / sysi_raw6(nr, a1..a6)
 *   entry:   SysV call: rdi=nr rsi=a1 rdx=a2 rcx=a3 r8=a4 r9=a5, 8(%rsp)=a6
 *   exit:    rax = kernel result (negative errno on error)
 *   clobbers: rax rcx r11 (syscall) + the argument registers; no stack use beyond the
 *            return address; stack alignment irrelevant (no calls)
 *   signal safety: async-signal-safe, reentrant
 *
 * sysi_restorer: sa_restorer of libsysi's own signal handlers.
 *   entry:   %rsp points at the kernel's rt_sigframe (the handler returned into it)
 *   exit:    does not return (rt_sigreturn)
 */
	.section .text.hot.sysi, "ax", @progbits	/* with the per-call path (internal.h SYSI_HOT) */
	.global sysi_syscall6
	.type sysi_syscall6, @function
	.global sysi_raw6
	.hidden sysi_raw6
	.type sysi_raw6, @function
sysi_syscall6:
sysi_raw6:
	.cfi_startproc
	mov %rdi, %rax
	mov %rsi, %rdi
	mov %rdx, %rsi
	mov %rcx, %rdx
	mov %r8, %r10
	mov %r9, %r8
	mov 8(%rsp), %r9
	syscall
	.global sysi_raw6_ret
	.hidden sysi_raw6_ret
sysi_raw6_ret:			/* where a signal raised by the call (SIGPIPE) finds rip */
	ret
	.cfi_endproc
	.size sysi_syscall6, . - sysi_syscall6
	.size sysi_raw6, . - sysi_raw6

	.text
	.global sysi_restorer
	.hidden sysi_restorer
	.type sysi_restorer, @function
sysi_restorer:
	/* no CFI: like glibc's __restore_rt, unwinders recognise the frame by its bytes */
	nop
	mov $15, %eax /* rt_sigreturn */
	syscall
	hlt
	.size sysi_restorer, . - sysi_restorer

	.section .note.GNU-stack, "", @progbits
