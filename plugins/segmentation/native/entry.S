/*
 * entry.S — the segmentation entry blob, copied by init.c to SEG_ENTRY (0x00330033), where the
 * far pointer page 0 holds for every even number sends a patched site's `lcall *(%rax)`.
 * Position independent: it addresses its data words rip-relative and the site table at its
 * fixed address SEG_TABLE (seg.h).
 *
 * Entry state: CS = 0x33 (a 64-bit segment: the call never left 64-bit mode); rax = the
 *   syscall number; rdi rsi rdx r10 r8 r9 = arguments; (%rsp) = the far call's frame: the low
 *   32 bits of R = site + 2, then 0x33 as a dword (this slot was [rsp-8] of the program: the
 *   planner patches only sites where it is dead); rcx and r11 are dead (the kernel clobbers
 *   them at a syscall). Every other register is the program's.
 * Lookup: R from the table by its low 32 bits; found, R replaces the frame, and from there on
 *   (%rsp) is a 64-bit return address as after a near call (`found`). Not found (no site of
 *   ours made this far call): #GP through a non-canonical load, SIGSEGV as for a wild far call.
 * Exit state (site): rax = result; rdi rsi rdx r10 r8 r9 rbx rbp r12-r15 and rsp as at the
 *   site (from the frame's save area, whatever the hook wrote into c->args); rcx, r11 and the
 *   arithmetic flags clobbered (the kernel clobbers rcx/r11 too). DF must be clear (ABI).
 * Stack: the frame starts 128 bytes below the return-address slot (the rest of the red zone is
 *   skipped) and is 16-byte aligned at the hook call; uses 128 + SYSI_F_SIZE + 15 bytes below
 *   the slot plus the hook's own.
 * Signal safety: a signal before `frame` is seen by init.c's seg_context at the site (the far
 *   call is made again after the handler); in the frame and the hook call it is deferred and
 *   released at the exit (sysi.h watch_context); on the `ret` and the release stub the view is
 *   R. All state is on this thread's stack: reentrant.
 */
#include "seg.h"

	.text
	.global sysi_seg_entry, sysi_seg_entry_end, sysi_seg_entry_found, sysi_seg_entry_frame
	.hidden sysi_seg_entry, sysi_seg_entry_end, sysi_seg_entry_found, sysi_seg_entry_frame
	.type sysi_seg_entry, @function
sysi_seg_entry:
	/* Step (1): the home slot of key = low32(R): (key * SEG_HASH_MUL mod 2^32) >> (32 - bits) */
	mov (%rsp), %r11d
	imul $SEG_HASH_MUL, %r11d, %ecx
	shr $(32 - SEG_TABLE_BITS), %ecx
	/* Step (2): probe: a slot whose low 32 bits are the key holds R; an empty one ends it */
1:	mov SEG_TABLE(, %rcx, 8), %r11
	cmp %r11d, (%rsp)
	je 2f
	test %r11, %r11
	jz .Lnotsite
	inc %ecx
	and $(SEG_TABLE_N - 1), %ecx
	jmp 1b
2:	test %r11, %r11
	jz .Lnotsite
	/* Step (3): R replaces the 8-byte far-call frame: a near-call return slot from here on */
	mov %r11, (%rsp)
sysi_seg_entry_found:
	/* SYSI_FAST_PASSTHROUGH: the syscall itself unless the runtime has work for it (sysi.h) */
	cmpb $0, sysi_seg_entry_direct(%rip)
	je .Lframe
	cmp $511, %rax
	ja .Lframe
	lea -SEG_NR_RT_SIGACTION(%rax), %rcx	/* rt_sigaction, rt_sigprocmask, rt_sigreturn */
	cmp $2, %rcx
	jbe .Lframe
	lea -SEG_NR_CLONE(%rax), %rcx		/* clone, fork, vfork */
	cmp $2, %rcx
	jbe .Lframe
	cmp $SEG_NR_CLONE3, %rax
	je .Lframe
	cmp $SEG_NR_EXECVE, %rax		/* execve, execveat: libsysi passes its variables on */
	je .Lframe
	cmp $SEG_NR_EXECVEAT, %rax
	je .Lframe
	syscall
	ret			/* init.c seg_context: `syscall; ret` with R on top */
.Lframe:
sysi_seg_entry_frame:
	/* the frame: rbp = A = slot - 128, [A] = the program's rbp, rsp = F = (A - size) & -16 */
	mov %rbp, -SEG_RZ_SKIP-8(%rsp)
	lea -SEG_RZ_SKIP-8(%rsp), %rbp
	lea -SYSI_F_SIZE(%rbp), %rsp
	and $-16, %rsp
	SYSI_FRAME_FILL %rsp
	mov 128(%rbp), %rcx
	sub $2, %rcx
	mov %rcx, SYSI_C_SITE(%rsp)
	movq $0x7fffffff, SYSI_C_STRAT(%rsp)	/* strategy id (low half, init.c), flags 0 */
	.global sysi_seg_entry_strat
	.hidden sysi_seg_entry_strat
	.set sysi_seg_entry_strat, . - 4
	mov %rsp, %rdi
	/* the fast hook, unless the number may be in-context or there is none */
	mov sysi_seg_entry_hook(%rip), %rcx
	test %rcx, %rcx
	jz .Ldispatch
	cmp $SEG_NR_RT_SIGRETURN, %rax
	je .Ldispatch
	cmp $SEG_NR_CLONE, %rax
	je .Ldispatch
	cmp $SEG_NR_VFORK, %rax
	je .Ldispatch
	cmp $SEG_NR_CLONE3, %rax
	je .Ldispatch
	call *%rcx		/* rax = the result */
	jmp .Lleave
.Ldispatch:
	call *sysi_seg_entry_dispatch(%rip)
	test %eax, %eax
	jnz .Lhere
	mov SYSI_C_RET(%rsp), %rax
.Lleave:
	SYSI_FRAME_RESTORE %rsp
	lea SEG_RZ_SKIP+8(%rbp), %rsp
	mov (%rbp), %rbp		/* [A] is within 128 bytes below rsp: signal-safe */
	mov sysi_seg_entry_defer(%rip), %rcx	/* a signal deferred during the call? */
	cmpq $0, %fs:(%rcx)
	jne .Lrelease
	ret
.Lrelease:
	pop %rcx		/* R, and rsp = the program's */
	jmp *sysi_seg_entry_release(%rip)
.Lhere:
	/*
	 * The dispatcher handed the call back (an in-context call). The planner takes no site of
	 * clone, vfork (even) nor rt_sigreturn, clone3 (odd: the fault path), so this is a call
	 * that needs no stack of its own: perform it from the frame.
	 */
	SYSI_CALL_LOAD %rsp
	syscall
	jmp .Lleave
.Lnotsite:
	movabs 0x8000000000000000, %al	/* #GP: SIGSEGV as for a far call of no site */
	ud2
	.p2align 3
	.global sysi_seg_entry_hook, sysi_seg_entry_dispatch, sysi_seg_entry_defer
	.global sysi_seg_entry_release, sysi_seg_entry_direct
	.hidden sysi_seg_entry_hook, sysi_seg_entry_dispatch, sysi_seg_entry_defer
	.hidden sysi_seg_entry_release, sysi_seg_entry_direct
sysi_seg_entry_hook:	.quad 0		/* api->fast_hook, or 0 */
sysi_seg_entry_dispatch:	.quad 0	/* api->dispatch */
sysi_seg_entry_defer:	.quad 0		/* api->defer_tpoff */
sysi_seg_entry_release:	.quad 0		/* api->release */
sysi_seg_entry_direct:	.quad 0		/* 1: SYSI_FAST_PASSTHROUGH */
sysi_seg_entry_end:
	.size sysi_seg_entry, . - sysi_seg_entry

/*
 * sysi_seg_sigreturn — the fault path's in-context rt_sigreturn at a site without a gadget:
 * the handler sets rsp to the program's and rax to 15 and resumes here.
 */
	.global sysi_seg_sigreturn
	.hidden sysi_seg_sigreturn
	.type sysi_seg_sigreturn, @function
sysi_seg_sigreturn:
	syscall
	ud2
	.size sysi_seg_sigreturn, . - sysi_seg_sigreturn

	.section .note.GNU-stack, "", @progbits
