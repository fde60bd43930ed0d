/*
 * incontext.S — performs a call the dispatcher handed back (it returned 1): clone with a new
 * stack, clone3, vfork, rt_sigreturn, or a call a hook deferred. Runs in the .so's text.
 *
 * Entry state: jumped to from the entry blob with rsp = F (zpoline.h: struct sysi_call at F,
 *   the program's argument registers above it), rbp = A (the program's rbp at [A], the slot
 *   holding R = site + 2 at A + A_RETSLOT), rsp 16-byte aligned; rbx r12-r15 are the
 *   program's.
 * Exit state: like a native `syscall` at the site, continuing at R with the program's rsp and
 *   rbp; the argument registers hold c->args (the program's values unless a hook rewrote
 *   them; PLAIN and the CLONE3 parent restore the program's), rax = result, rcx/r11/flags
 *   clobbered. Per kind (sysi_zpoline_prep, init.c):
 *   PLAIN      syscall from our frame, then the normal epilogue.
 *   SIGRETURN  rsp = the program's rsp (R dropped), syscall; does not return.
 *   CLONE      prep wrote R at [rsi-8] of the child stack and passed rsi-8: parent (rsp =
 *              the slot) and child (rsp = rsi-8) both do rsi += 8 and `ret` to R.
 *   CLONE3     prep copied clone_args into our frame with stack_size - 24 and wrote, from the
 *              child's top down, R, the program's rdi and rbp: the child pops rbp and rdi and
 *              returns to R; the parent (rax != 0) leaves through the normal epilogue.
 *   SAMESTACK  vfork (and stack-sharing clone/clone3): the child shares the parent's stack
 *              and overwrites the slot below the program's rsp, so R is popped into a
 *              per-thread stack (TLS, initial-exec) before the syscall, rsp is exactly the
 *              program's, and after it both jump through the TLS copy: the child (rax = 0)
 *              reads the top entry without popping (the memory is shared with the suspended
 *              parent), the parent pops it. A signal handler or a vfork in the child nests
 *              above the entry and pops its own, so the discipline holds.
 * Clobbers: rcx, r11, flags (and the argument registers, see above).
 * Stack: ZP_CLONE3_BUF bytes below F for the clone_args copy; calls prep 16-byte aligned.
 * Signal safety: reentrant (frame and TLS only); rsp never points into the red zone.
 */
#include "zpoline.h"

	.text
	.global sysi_zpoline_incontext
	.hidden sysi_zpoline_incontext
	.type sysi_zpoline_incontext, @function
sysi_zpoline_incontext:
	sub $ZP_CLONE3_BUF, %rsp
	lea ZP_CLONE3_BUF(%rsp), %rdi	/* struct sysi_call * */
	mov %rsp, %rsi			/* clone_args buffer */
	mov %rbp, %rdx			/* A */
	call sysi_zpoline_prep
	mov %eax, %r11d
	lea ZP_CLONE3_BUF(%rsp), %rcx	/* F */
	SYSI_CALL_LOAD %rcx
	cmp $ZP_K_CLONE3, %r11d
	je .Lclone3
	cmp $ZP_K_PLAIN, %r11d
	je .Lplain
	/* the other kinds run at the program's rsp (or the slot) with the program's rbp */
	lea A_RETSLOT(%rbp), %rcx
	mov (%rbp), %rbp
	cmp $ZP_K_SIGRETURN, %r11d
	je .Lsigreturn
	cmp $ZP_K_CLONE, %r11d
	je .Lclone
	jmp .Lsamestack

.Lplain:
	syscall
.Lepilogue:
	lea ZP_CLONE3_BUF(%rsp), %rcx
	SYSI_FRAME_RESTORE %rcx
	lea A_RETSLOT(%rbp), %rsp
	mov (%rbp), %rbp		/* within 128 bytes below rsp: signal-safe */
	ret

.Lsigreturn:
	lea 8(%rcx), %rsp		/* the program's rsp: the kernel finds its frame there */
	syscall
	ud2

.Lclone:
	mov %rcx, %rsp
	syscall
	lea 8(%rsi), %rsi		/* parent and child: the program's rsi */
	ret				/* parent: its slot; child: [rsi-8] = R */

.Lclone3:
	syscall
	test %rax, %rax
	jnz .Lepilogue			/* parent, or an error */
	pop %rbp			/* child: rsp = top - 24 */
	pop %rdi
	ret

.Lsamestack:
	mov %rcx, %rsp
	movq sysi_zpoline_vstack@GOTTPOFF(%rip), %rcx
	mov %fs:(%rcx), %r11		/* depth */
	cmp $ZP_VSTACK_N, %r11
	jae .Lvdeep
	popq %fs:8(%rcx, %r11, 8)	/* ret[depth] = R; rsp = the program's */
	lea 1(%r11), %r11
	mov %r11, %fs:(%rcx)
	syscall
	movq sysi_zpoline_vstack@GOTTPOFF(%rip), %rcx
	mov %fs:(%rcx), %r11
	test %rax, %rax
	jz .Lvchild
	lea -1(%r11), %r11
	mov %r11, %fs:(%rcx)
	jmp *%fs:8(%rcx, %r11, 8)	/* parent: pop ret[depth-1] */
.Lvchild:
	jmp *%fs:(%rcx, %r11, 8)	/* child: ret[depth-1], left in place */
.Lvdeep:
	mov $-11, %rax			/* -EAGAIN: nested deeper than ZP_VSTACK_N */
	ret
	.global sysi_zpoline_incontext_end
	.hidden sysi_zpoline_incontext_end
sysi_zpoline_incontext_end:			/* init.c zp_context: a signal here is not deferred */
	.size sysi_zpoline_incontext, . - sysi_zpoline_incontext

	.section .note.GNU-stack, "", @progbits
