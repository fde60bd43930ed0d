/*
 * syscall.S — libsysi's raw system calls. libsysi is never planned or patched, so the
 * `syscall` instructions here are never re-instrumented: hooks reach the kernel through them.
 *
 * sysi_syscall6 / sysi_raw6(nr, a1..a6)
 *   entry:   SysV call: rdi=nr rsi=a1 rdx=a2 rcx=a3 r8=a4 r9=a5, 8(%rsp)=a6
 *   exit:    rax = kernel result (negative errno on error); returns by `pop %rcx; jmp *%rcx`
 *            (see __x86_return_thunk)
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
	pop %rcx		/* ret, without its misprediction (below) */
	.cfi_adjust_cfa_offset -8
	.cfi_register 16, 2	/* rip in rcx */
	jmp *%rcx
	.cfi_endproc
	.size sysi_syscall6, . - sysi_syscall6
	.size sysi_raw6, . - sysi_raw6

/*
 * __x86_return_thunk: the return of the per-call path's C functions (internal.h SYSI_HOT, gcc's
 * function_return("thunk-extern") turns their `ret` into a jump here). The first returns into
 * frames made before a `syscall` are mispredicted, and on this host's kernel the first costs
 * ~46 ns (measured: a leaf `syscall; ret` 161 ns per call, `syscall; pop; jmp *` 116, an inline
 * `syscall` 115); an indirect jump is predicted from its own history and costs nothing here.
 *   entry:   rsp at the return address (the thunk is jumped to, not called)
 *   exit:    at the return address with rsp past it, as `ret` would
 *   clobbers: r11 (caller-saved and never a return register in the SysV ABI)
 */
	.section .text.hot.sysi, "ax", @progbits
	.global __x86_return_thunk
	.hidden __x86_return_thunk
	.type __x86_return_thunk, @function
__x86_return_thunk:
	.cfi_startproc
	pop %r11
	.cfi_adjust_cfa_offset -8
	.cfi_register 16, 11	/* rip in r11 */
	jmp *%r11
	.cfi_endproc
	.size __x86_return_thunk, . - __x86_return_thunk

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

/*
 * sysi_release: how an entry leaves to the program when signals were deferred on this thread
 * (signal.c, sysi.h watch_context). Restores the mask the interrupted code ran with, so the
 * kernel delivers the deferred signals right here, in the program's context; signal.c's master
 * maps sysi_release_ret back to the RIP in rcx and the registers kept below.
 *   entry:   every register the program's but rcx/r11; rcx = the RIP to continue at;
 *            rsp = the program's rsp (nothing is written to the stack)
 *   exit:    jumps to that RIP with rax rdi rsi rdx r10 r8 r9 and the rest as at entry (rcx and
 *            r11 clobbered, as a syscall leaves them); sysi_sigdefer.pending = 0
 *   signal safety: the kernel's frame goes below the program's red zone, as for a syscall of
 *            the program's own
 */
	.equ D_PENDING, 0	/* struct sysi_sigdefer (internal.h) */
	.equ D_MASK, 8
	.equ D_RIP, 16
	.equ D_RAX, 24
	.equ D_RDI, 32
	.equ D_RSI, 40
	.equ D_RDX, 48
	.equ D_R10, 56
	.equ MARKER_NR, 0x5157	/* sysi.h SYSI_MARKER_NR, WORK_BEGIN 1, WORK_END 2 */

	.text
	.global sysi_release
	.hidden sysi_release
	.type sysi_release, @function
sysi_release:
	mov %rcx, %r11
	movq sysi_sigdefer@gottpoff(%rip), %rcx
	mov %r11, %fs:D_RIP(%rcx)
	mov %rax, %fs:D_RAX(%rcx)
	mov %rdi, %fs:D_RDI(%rcx)
	mov %rsi, %fs:D_RSI(%rcx)
	mov %rdx, %fs:D_RDX(%rcx)
	mov %r10, %fs:D_R10(%rcx)
	cmpl $0, sysi_marker_on(%rip)
	je 1f
	mov $MARKER_NR, %eax	/* the runtime's own work: strace oracles skip the mask call */
	mov $1, %edi
	syscall
1:	movq sysi_sigdefer@gottpoff(%rip), %rsi
	add %fs:0, %rsi		/* the thread pointer: &sysi_sigdefer */
	add $D_PENDING, %rsi	/* the signals sysi blocked: unblocked, the rest of the mask kept */
	mov $1, %edi		/* SIG_UNBLOCK */
	xor %edx, %edx
	mov $8, %r10d
	mov $14, %eax		/* rt_sigprocmask */
	syscall
	.global sysi_release_ret
	.hidden sysi_release_ret
sysi_release_ret:		/* deferred signals are delivered here (signal.c maps it) */
	cmpl $0, sysi_marker_on(%rip)
	je 2f
	mov $MARKER_NR, %eax
	mov $2, %edi
	syscall
2:	movq sysi_sigdefer@gottpoff(%rip), %rcx
	movq $0, %fs:D_PENDING(%rcx)
	mov %fs:D_RAX(%rcx), %rax
	mov %fs:D_RDI(%rcx), %rdi
	mov %fs:D_RSI(%rcx), %rsi
	mov %fs:D_RDX(%rcx), %rdx
	mov %fs:D_R10(%rcx), %r10
	jmp *%fs:D_RIP(%rcx)
	.global sysi_release_end
	.hidden sysi_release_end
sysi_release_end:		/* [sysi_release_ret, here): signal.c shows the program's context */
	.size sysi_release, . - sysi_release

	.section .note.GNU-stack, "", @progbits
