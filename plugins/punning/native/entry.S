/*
 * entry.S — sysi_punning_entry, the stub every punning trampoline calls through the entry slot of
 * its page (`call *slot(%rip)`). Same shape as zpoline's entry (frame by plain stores, rsp only
 * ever derived from registers, one call through a data word), minus the return-address check:
 * only our trampolines can reach this stub.
 *
 * Entry state: (%rsp) = R, the return address inside the trampoline; r11 = the site's address
 *   (the trampoline's `lea S(%rip),%r11`). rsp = the site's rsp - 128 - 8 (the trampoline stepped
 *   over the program's red zone, which is [rsp + 8, rsp + 136) here and is never written).
 *   rax = syscall number, rdi rsi rdx r10 r8 r9 = arguments; every other register but rcx is the
 *   program's, as at the site.
 * Exit state (done): `ret $PN_REDZONE` to R (after a system call its pop/lea/jmp equivalent,
 *   sysi_punning_out: LEAVE below), so rsp = the site's rsp; rax = result; rdi rsi rdx
 *   r10 r8 r9 rbx rbp r12-r15 as at entry; rcx, r11 and the arithmetic flags clobbered. The
 *   kernel clobbers rcx/r11 and keeps rflags, we do not: pushf/popf cost 5-6 ns per call, and
 *   compiled code never keeps flags live across a `syscall` (GCC and Clang treat every x86 asm
 *   statement as clobbering the flags); zpoline makes the same choice. DF must be clear at the
 *   site (the ABI guarantees it at every call; the dispatcher is C).
 * Exit state (in-context, dispatcher returned 1): returns to I = R + PN_INCONTEXT_OFF with rax and
 *   rdi rsi rdx r10 r8 r9 = the (possibly rewritten) call, rbp as at entry and rsp = the site's
 *   rsp (same `ret $PN_REDZONE`); the trampoline then runs `syscall` itself (clone with a new
 *   stack, clone3, vfork, rt_sigreturn need the site's own stack and continuation).
 * Hook call: through api->fast_hook directly when it is set and the number cannot be
 *   in-context, else through api->dispatch (which may hand the call back, see above).
 * Number: the kernel reads the low 32 bits of rax as an int ((1 << 32) | 39 is getpid, a number
 *   negative as an int is none); the stub sign-extends eax into rax first, so the hook, the
 *   counts and the in-context test see the call the kernel would run (the in-context exit and
 *   the kernel read the same low half).
 * Clobbers: rcx, r11, flags.
 * Stack: rbp = A = entry rsp - 8 holds the program's rbp at [A] (R is at A + 8); rsp = F =
 *   (A - SYSI_F_SIZE) & -16: the struct sysi_call at F, the program's argument registers above it.
 *   16-byte aligned for the dispatcher call. Uses SYSI_F_SIZE + 23 bytes below the entry rsp.
 * Signal safety: until rsp = F nothing is stored below rsp but [rsp - 8] (rbp), and after the
 *   epilogue moves rsp up, [A] is read from within 16 bytes below rsp; the kernel puts a signal
 *   frame 128 bytes below rsp, so neither is ever overwritten. Everything lives on this thread's
 *   stack: the stub is reentrant.
 * Vector state: untouched here; the dispatcher saves it when the hook needs it.
 *
 * sysi_punning_sys, the passthrough stub (api->fast_flags has SYSI_FAST_PASSTHROUGH: fast_hook
 * is the built-in passthrough hook): init.c copies it into every physical page at PN_STUB_OFF
 * and the trampolines call it there (punning.h), so a hooked call touches the trampoline's page
 * and nothing of ours or of libsysi (each page costs a page walk per syscall under PTI).
 *   Entry state: as sysi_punning_entry's (the same call, from the same trampoline).
 *   Exit state: numbers that need no runtime work (all but rt_sigaction, rt_sigprocmask,
 *     rt_sigreturn, clone, fork, vfork, clone3, execve, execveat: sysi.h
 *     sysi_passthrough_direct; mlockall, setrlimit and prlimit64, for init.c pn_dispatch,
 *     with munlockall .. adjtimex between them, which need nothing but cost 11 bytes less as a
 *     range; and all below clone3 (435), so no x32 number, nor clone3's successors: the stub
 *     must fit in 64 bytes, punning.h) are made here with the program's own rax rdi rsi rdx
 *     r10 r8 r9, then back to R by
 *     `pop %rcx; lea PN_REDZONE(%rsp),%rsp; jmp *%rcx`, so rsp = the site's rsp: rax = the
 *     kernel's result, r11 and rflags the kernel's (r11 = rflags = the flags after our
 *     compares), rcx = R (the kernel's rcx is this stub's address, no more the program's
 *     S + 2 than R is), every other register untouched. Not `ret $PN_REDZONE`: the kernel
 *     refills the return stack buffer on its way out (RSB stuffing), so the first `ret` after
 *     a syscall always mispredicts, where the indirect jmp is predicted (zpoline's entry.S
 *     RET). The others jump through the page's slot to sysi_punning_entry with the entry
 *     state unchanged but rcx.
 *   The number is tested in eax, as the kernel reads it (it ignores rax's upper half).
 *   Clobbers: rcx, r11, flags. Stack: nothing written (the call's return address only); a
 *   signal during the syscall finds rsp 136 bytes below the site's, its frame below that; a
 *   restarted call re-runs this `syscall` with rax restored by the kernel.
 *   Position independent; addresses only its own page (the slot).
 */
#include <asm/unistd.h>
#include "punning.h"

	/* numbers that may be in-context, below 64 (clone3 is checked on its own) */
	.equ PN_MAYBE_INCONTEXT, (1 << __NR_clone) | (1 << __NR_vfork) | (1 << __NR_rt_sigreturn)

	.equ A_RET, 8			/* R relative to A */

/*
 * Back to the trampoline (rsp = A + 8: R, then the skipped red zone), unless a signal was
 * deferred on this thread while the call ran (sysi.h watch_context): then through
 * sysi_punning_leave, which hands the program's context to libsysi's release. After a system
 * call (the count stub's own, or libsysi's for the hook: SYSI_C_MADE in c->flags, sysi.h
 * SYSI_CALL_MADE) by sysi_punning_out's `pop %rcx; lea; jmp *%rcx`, not `ret $PN_REDZONE`: the
 * kernel refills the return stack buffer on its way out (RSB stuffing, SRSO), so the first
 * `ret` after a syscall to a return address pushed before it mispredicts (~46 ns on an AMD
 * Zen 5 here; zpoline's entry.S RET). After a call the hook answered itself the return stack
 * is intact and `ret` is right: a pop/jmp would leave the trampoline's call in it, and the
 * program's next `ret` would mispredict (zpoline measured 4.1 -> 4.9 ns per self-answered call).
 *
 * LEAVE (after the hook; r11 = c->flags, loaded while rsp = F): one branch for a deferred
 * signal or a call made, r11 = flags & MADE | the defer word; `ret $PN_REDZONE` otherwise.
 * LEAVE_MADE (after the count stub's syscall): sysi_punning_out.
 */
	.macro LEAVE
	and $SYSI_C_MADE, %r11d
	mov sysi_punning_defer_off(%rip), %rcx
	or %fs:(%rcx), %r11
	jnz sysi_punning_out
	ret $PN_REDZONE			/* pop R and the skipped red zone */
	.endm

	.macro LEAVE_MADE
	mov sysi_punning_defer_off(%rip), %rcx
	jmp sysi_punning_out
	.endm

/*
 * The stub, twice: sysi_punning_entry keeps the program's argument registers in the save area
 * whatever the hook does; sysi_punning_entryk (keep=1, for a fast hook that keeps c->nr and
 * c->args: SYSI_FAST_KEEPS_ARGS) fills only struct sysi_call and, on the fast path, restores
 * them from c->args; on the dispatcher's path it fills the save area first (rdi from c->args[0],
 * the others still in their registers) and restores from there, as the other does.
 */
	.macro ENTRY name, keep
	.global \name
	.hidden \name
	.type \name, @function
	.p2align 5
\name:
	movslq %eax, %rax		/* the number as the kernel reads it (see above) */
	mov %rbp, -8(%rsp)
	lea -8(%rsp), %rbp		/* A */
	lea -SYSI_F_SIZE(%rbp), %rsp
	and $-16, %rsp			/* F */
	.if \keep
	SYSI_CALL_FILL %rsp
	.else
	SYSI_FRAME_FILL %rsp
	.endif
	mov %r11, SYSI_C_SITE(%rsp)
	mov sysi_punning_strategy(%rip), %ecx	/* strategy id (low half), flags 0 (high half) */
	mov %rcx, SYSI_C_STRAT(%rsp)
	mov %rsp, %rdi
	/*
	 * Fast path (sysi_runtime_api.fast_hook): call the hook itself, unless this number may be
	 * in-context (clone, vfork, rt_sigreturn below 64; clone3) or is setrlimit/prlimit64/
	 * mlockall (init.c pn_dispatch ends the lazy pages' reservations before a finite RLIMIT_AS
	 * and before mlockall).
	 */
	mov sysi_punning_hook(%rip), %rcx
	test %rcx, %rcx
	jz .Ldispatch\@
	cmp $__NR_clone3, %rax
	je .Ldispatch\@
	cmp $__NR_setrlimit, %rax	/* init.c before_rlimit */
	je .Ldispatch\@
	cmp $__NR_prlimit64, %rax
	je .Ldispatch\@
	cmp $__NR_mlockall, %rax	/* init.c before_mlockall */
	je .Ldispatch\@
	cmp $63, %rax
	ja .Lfast\@
	mov $PN_MAYBE_INCONTEXT, %r11
	bt %rax, %r11
	jc .Ldispatch\@
.Lfast\@:
	call *%rcx
	.if \keep
	mov SYSI_C_FLAGS(%rsp), %r11d	/* for LEAVE */
	SYSI_CALL_ARGS %rsp
	.else
.Lrestore\@:
	mov SYSI_C_FLAGS(%rsp), %r11d	/* for LEAVE */
	SYSI_FRAME_RESTORE %rsp
	.endif
	lea A_RET(%rbp), %rsp
	mov (%rbp), %rbp		/* [rsp - 8]: signal-safe, see above */
	LEAVE

.Ldispatch\@:
	.if \keep
	mov SYSI_C_A0(%rsp), %rcx
	mov %rcx, SYSI_F_RDI(%rsp)
	mov %rsi, SYSI_F_RSI(%rsp)
	mov %rdx, SYSI_F_RDX(%rsp)
	mov %r10, SYSI_F_R10(%rsp)
	mov %r8, SYSI_F_R8(%rsp)
	mov %r9, SYSI_F_R9(%rsp)
	.endif
	call *sysi_punning_dispatch(%rip)
	test %eax, %eax
	jnz .Lincontext\@
	mov SYSI_C_RET(%rsp), %rax
	.if \keep
	mov SYSI_C_FLAGS(%rsp), %r11d	/* for LEAVE */
	SYSI_FRAME_RESTORE %rsp
	lea A_RET(%rbp), %rsp
	mov (%rbp), %rbp
	LEAVE
	.else
	jmp .Lrestore\@
	.endif

.Lincontext\@:
	jmp sysi_punning_incontext
	.size \name, . - \name
	.endm

	.text
	ENTRY sysi_punning_entry, 0
	ENTRY sysi_punning_entryk, 1

/*
 * sysi_punning_count, the count stub (api->fast_flags SYSI_FAST_COUNT: the built-in count hook
 * with a stats file, sysi.h): init.c points every page's slot at it. The numbers
 * sysi_count_direct() accepts, but setrlimit, prlimit64 and mlockall (init.c pn_dispatch), are
 * counted in the thread's slab and made here with the program's own registers: no frame, no C
 * call. The others (and every call of a thread without a slab yet) jump through
 * sysi_punning_count_next to the entry stub, with its entry state (rcx clobbered, r11 = the
 * site untouched).
 *   Entry state: as sysi_punning_entry's. Exit state: as the passthrough stub's, but by
 *   `ret $PN_REDZONE` (LEAVE): rcx the kernel's.
 *   nr is kept at [rsp - 8] across the syscall (a signal frame goes below rsp - 128).
 *   Counts: calls and the strategy's calls before the syscall, errors after it, from the slab
 *   %fs holds then (none: a fork child of a signal handler that returns here: `lock incq` on
 *   the totals).
 *   Signals: it lies in the runtime's code, where libsysi defers every signal (init.c
 *   pn_context maps only the final `ret $PN_REDZONE`, after every count), so the way out checks
 *   the defer word (LEAVE); the SIGPIPE watch (libsysi, count_watch) knows
 *   sysi_punning_count_ret and _skip: it counts an EPIPE itself and moves the context to _skip.
 *   Clobbers: rcx, r11, flags. Stack: [rsp - 8] only.
 */
	.equ PN_COUNT_LEFT_LO, (1 << __NR_rt_sigaction) | (1 << __NR_rt_sigprocmask) | (1 << __NR_rt_sigreturn) | (1 << __NR_clone) | (1 << __NR_fork) | (1 << __NR_vfork) | (1 << __NR_execve) | (1 << __NR_exit)

	.global sysi_punning_count, sysi_punning_count_ret, sysi_punning_count_skip
	.hidden sysi_punning_count, sysi_punning_count_ret, sysi_punning_count_skip
	.type sysi_punning_count, @function
	.p2align 5
sysi_punning_count:
	movslq %eax, %rax		/* the number as the kernel reads it */
	cmp $63, %rax
	ja 2f
	mov $PN_COUNT_LEFT_LO, %rcx
	bt %rax, %rcx
	jc .Lcount_general
	jmp 3f
2:	cmp $1023, %rax			/* above the table, or negative */
	ja .Lcount_general
	cmp $__NR_prctl, %eax
	je .Lcount_general
	cmp $__NR_exit_group, %eax
	je .Lcount_general
	cmp $__NR_execveat, %eax
	je .Lcount_general
	cmp $__NR_clone3, %eax
	je .Lcount_general
	cmp $__NR_setrlimit, %eax	/* init.c before_rlimit */
	je .Lcount_general
	cmp $__NR_prlimit64, %eax
	je .Lcount_general
	cmp $__NR_mlockall, %eax	/* init.c before_mlockall */
	je .Lcount_general
3:	mov sysi_punning_count_cf+SYSI_CF_TPOFF(%rip), %rcx
	mov %fs:(%rcx), %rcx		/* this thread's slab */
	test %rcx, %rcx
	jz .Lcount_general
	mov %rax, -8(%rsp)		/* nr, for after the syscall */
	mov %rax, %r11
	shl $4, %r11
	incq SYSI_SLAB_CALLS(%rcx, %r11)
	add sysi_punning_count_cf+SYSI_CF_STRAT(%rip), %rcx
	incq (%rcx)
	syscall
sysi_punning_count_ret:
	cmp $-4095, %rax
	jae .Lcount_error
sysi_punning_count_skip:
	LEAVE_MADE
.Lcount_error:
	mov -8(%rsp), %r11
	shl $4, %r11
	mov sysi_punning_count_cf+SYSI_CF_TPOFF(%rip), %rcx
	mov %fs:(%rcx), %rcx
	test %rcx, %rcx
	jz 1f
	incq SYSI_SLAB_ERRORS(%rcx, %r11)
	jmp sysi_punning_count_skip
1:	add sysi_punning_count_cf+SYSI_CF_TOTALS(%rip), %r11
	lock incq 8(%r11)
	jmp sysi_punning_count_skip
.Lcount_general:
	jmp *sysi_punning_count_next(%rip)
	.size sysi_punning_count, . - sysi_punning_count

	.data
	.p2align 3
	.global sysi_punning_count_cf, sysi_punning_count_next
	.hidden sysi_punning_count_cf, sysi_punning_count_next
sysi_punning_count_cf:		.quad 0, 0, 0	/* struct sysi_count_fast (api->count_fast) */
sysi_punning_count_next:	.quad 0		/* the entry stub the others go to */
	.text

/*
 * sysi_punning_out: LEAVE's way back after a system call, or with a signal deferred (rcx = the
 * defer word's offset). Entry: rsp = A + 8 (R, then the red zone), every register the
 * program's but rcx/r11. `pop %rcx; lea PN_REDZONE(%rsp), %rsp; jmp *%rcx`: the `ret
 * $PN_REDZONE` without the return stack's misprediction (rsp = the site's rsp, rcx = R, as
 * LEAVE's `ret` leaves them but rcx). A signal at the pop, the lea or the jmp (init.c
 * pn_context knows each) is shown at R's return point.
 */
	.global sysi_punning_out, sysi_punning_out_pop, sysi_punning_out_lea, sysi_punning_out_jmp
	.hidden sysi_punning_out, sysi_punning_out_pop, sysi_punning_out_lea, sysi_punning_out_jmp
	.type sysi_punning_out, @function
	.p2align 4
sysi_punning_out:
	cmpq $0, %fs:(%rcx)
	jne sysi_punning_leave
sysi_punning_out_pop:
	pop %rcx				/* R */
sysi_punning_out_lea:
	lea PN_REDZONE(%rsp), %rsp		/* the site's rsp */
sysi_punning_out_jmp:
	jmp *%rcx
	.size sysi_punning_out, . - sysi_punning_out

/*
 * The in-context exit of both stubs (the dispatcher handed the call back): the call in rax and
 * the argument registers, back to I = R + PN_INCONTEXT_OFF. No release here: init.c pn_context
 * delivers a signal in this range as it is.
 */
	.global sysi_punning_incontext, sysi_punning_incontext_end
	.hidden sysi_punning_incontext, sysi_punning_incontext_end
	.type sysi_punning_incontext, @function
sysi_punning_incontext:
	SYSI_CALL_LOAD %rsp
	addq $PN_INCONTEXT_OFF, A_RET(%rbp)
	lea A_RET(%rbp), %rsp
	mov (%rbp), %rbp
	ret $PN_REDZONE
sysi_punning_incontext_end:
	.size sysi_punning_incontext, . - sysi_punning_incontext

/*
 * sysi_punning_leave: a complete call returns to the program through libsysi's release (a
 * signal was deferred while it ran). Entry: rsp = A + 8 (R, then the red zone), every register
 * the program's but rcx/r11. Leaves rsp = the site's rsp and rcx = the site's return point:
 * S + 2 (S from the trampoline's `lea S(%rip),%r11`, whose end is 6 bytes before R), which runs
 * the same instructions as R under the sound tactics; R itself when S + 2 holds filler (an
 * unsafe tactic displaced what followed the site).
 */
	.global sysi_punning_leave
	.hidden sysi_punning_leave
	.type sysi_punning_leave, @function
sysi_punning_leave:
	pop %rcx				/* R */
	lea PN_REDZONE(%rsp), %rsp		/* the site's rsp */
	movslq -10(%rcx), %r11
	lea -6(%rcx,%r11), %r11			/* S */
	cmpb $0xcc, 2(%r11)
	je 1f
	lea 2(%r11), %rcx			/* S + 2 */
1:	jmp *sysi_punning_release(%rip)
	.size sysi_punning_leave, . - sysi_punning_leave

	.if __NR_rt_sigprocmask != __NR_rt_sigaction + 1 || __NR_rt_sigreturn != __NR_rt_sigaction + 2
	.error "rt_sigaction, rt_sigprocmask, rt_sigreturn are not consecutive"
	.endif
	.if __NR_fork != __NR_clone + 1 || __NR_vfork != __NR_clone + 2 || __NR_execve != __NR_clone + 3
	.error "clone, fork, vfork, execve are not consecutive"
	.endif
	.if __NR_setrlimit - __NR_mlockall != 9 || __NR_clone3 < __NR_execveat || __NR_clone3 > 511
	.error "the passthrough stub's ranges do not hold"
	.endif

	.section .rodata
	.global sysi_punning_sys, sysi_punning_sys_end
	.hidden sysi_punning_sys, sysi_punning_sys_end
	.type sysi_punning_sys, @object
	.p2align 4
sysi_punning_sys:
	lea -__NR_rt_sigaction(%rax), %ecx	/* rt_sigaction, rt_sigprocmask, rt_sigreturn */
	cmp $2, %ecx
	jbe 1f
	sub $__NR_clone - __NR_rt_sigaction, %ecx	/* clone, fork, vfork; execve (libsysi) */
	cmp $__NR_execve - __NR_clone, %ecx
	jbe 1f
	sub $__NR_mlockall - __NR_clone, %ecx	/* mlockall .. setrlimit (init.c pn_dispatch) */
	cmp $__NR_setrlimit - __NR_mlockall, %ecx
	jbe 1f
	cmp $__NR_prlimit64, %eax		/* init.c before_rlimit */
	je 1f
	cmp $__NR_execveat, %eax		/* libsysi */
	je 1f
	cmp $__NR_clone3 - 1, %eax		/* clone3 and above: x32 numbers, negative ones */
	ja 1f
	syscall
	/* back to R without `ret` (see the comment at the top); init.c pn_context maps a signal
	 * at each of these three points, and at the jump to the entry */
	.global sysi_punning_sys_ret, sysi_punning_sys_step, sysi_punning_sys_out
	.hidden sysi_punning_sys_ret, sysi_punning_sys_step, sysi_punning_sys_out
sysi_punning_sys_ret:
	pop %rcx				/* R */
sysi_punning_sys_step:
	lea PN_REDZONE(%rsp), %rsp		/* the site's rsp (lea: the flags stay the kernel's) */
sysi_punning_sys_out:
	jmp *%rcx
	.global sysi_punning_sys_slow
	.hidden sysi_punning_sys_slow
sysi_punning_sys_slow:
1:	.byte 0xff, 0x25			/* jmp *slot(%rip): sysi_punning_entry */
	.long PN_SLOT_OFF - PN_STUB_OFF - (. + 4 - sysi_punning_sys)
sysi_punning_sys_end:
	.size sysi_punning_sys, . - sysi_punning_sys
	/* init.c checks that it fits in [PN_STUB_OFF, PN_SLOT_OFF) (gas cannot: relaxed jumps) */

	.section .note.GNU-stack, "", @progbits
