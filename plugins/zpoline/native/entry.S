/*
 * entry.S — the zpoline entry blob. init.c copies the bytes between sysi_zpoline_blob and
 * sysi_zpoline_blob_end into the landing page (next to the landing slots, so a hooked call
 * touches page 0 + this one page of ours) and fills in the data words at its end. The code is
 * position independent and only addresses the blob itself (rip-relative).
 *
 * Entry state (sysi_zpoline_blob_entry, reached by page 0 -> landing slot -> jmp):
 *   a patched site executed `call *%rax` (ff d0) in place of `syscall` (0f 05):
 *   rax = syscall number, rdi rsi rdx r10 r8 r9 = arguments, (%rsp) = site + 2 (this slot was
 *   [rsp-8] of the program: the first 8 bytes of its red zone), every other register is the
 *   program's. rcx and r11 are dead at a site (the kernel clobbers them), but not when the
 *   caller was not a site (NULL function-pointer call), so they are saved before use.
 * Exit state (site): rax = result; rdi rsi rdx r10 r8 r9 rbx rbp r12-r15 and rsp as at the
 *   site (rsp after `ret` = the program's rsp); rcx, r11 and the arithmetic flags are
 *   clobbered (the kernel clobbers rcx/r11 too; it keeps rflags, we do not: pushf/popf would
 *   cost 6-7 ns per call and compiled code never keeps flags live across a syscall).
 *   DF must be clear (the ABI guarantees it at every call; the dispatcher is C).
 * Exit state (not a site): rsp and registers as at entry (but r11), then a load
 *   from a non-canonical address raises SIGSEGV with si_addr 0 (si_code SI_KERNEL), the
 *   closest we can get to the native fault at address 0 while page 0 is mapped.
 * Clobbers: rcx, r11, flags.
 * Hook call: through api->fast_hook directly when it is set and the number cannot be
 *   in-context, else through api->dispatch (which may hand the call back to incontext.S).
 * Stack: writes nothing in the program's red zone but the return-address slot: the frame
 *   starts 128 bytes below that slot and is aligned to 16 for the dispatcher call; uses
 *   128 + F_SIZE + 15 bytes below the slot, plus what the dispatcher uses.
 * Signal safety: a signal at any instruction finds rsp at or below the return-address slot, so
 *   the kernel's frame (placed 128 bytes below rsp) never touches the program's red zone; every
 *   state lives on this thread's stack, so the entry is reentrant.
 * Vector/x87 state: untouched here; the dispatcher saves it when the hook needs it.
 */
#include "zpoline.h"

	.text
	.p2align 6
	.global sysi_zpoline_blob
	.hidden sysi_zpoline_blob
sysi_zpoline_blob:

	.global sysi_zpoline_blob_entry
	.hidden sysi_zpoline_blob_entry
	.type sysi_zpoline_blob_entry, @function
sysi_zpoline_blob_entry:
	/*
	 * Return-address check, with rcx and r11 only (dead at a site): bit (R & 63) of qword
	 * (R >> 6) of the bitmap. rcx is parked in the one free slot first, [rsp-128] (just
	 * below the program's red zone and inside the 128 bytes the kernel skips for signal
	 * frames), for the not-a-site path.
	 */
	mov %rcx, -ZP_RZ_SKIP-8(%rsp)
	mov (%rsp), %rcx
	mov %rcx, %r11
	shr $47, %r11
	jnz .Lnotsite
	mov %rcx, %r11
	shr $3, %r11
	and $-8, %r11
	add data_bitmap(%rip), %r11
	mov (%r11), %r11
	bt %rcx, %r11
	jnc .Lnotsite
	/*
	 * A site. The frame (zpoline.h): rbp = A = slot - 128 with the program's rbp at [A];
	 * rsp = F = (A - 128) & -16. rsp is only ever derived from registers (no load on the
	 * rsp dependency chain: `pop %rsp` here costs ~3 ns per call).
	 */
	mov %rbp, -ZP_RZ_SKIP-8(%rsp)
	lea -ZP_RZ_SKIP-8(%rsp), %rbp
	lea -F_SIZE(%rbp), %rsp
	and $-16, %rsp
	mov %rdi, F_RDI(%rsp)
	mov %rsi, F_RSI(%rsp)
	mov %rdx, F_RDX(%rsp)
	mov %r10, F_R10(%rsp)
	mov %r8, F_R8(%rsp)
	mov %r9, F_R9(%rsp)
	mov %rax, C_NR(%rsp)
	mov %rdi, C_A0(%rsp)
	mov %rsi, C_A1(%rsp)
	mov %rdx, C_A2(%rsp)
	mov %r10, C_A3(%rsp)
	mov %r8, C_A4(%rsp)
	mov %r9, C_A5(%rsp)
	sub $2, %rcx
	mov %rcx, C_SITE(%rsp)
	mov data_strategy(%rip), %rcx	/* strategy id (low half), flags 0 (high half) */
	mov %rcx, C_STRAT(%rsp)
	mov %rsp, %rdi
	/*
	 * Fast path (sysi_runtime_api.fast_hook): call the hook itself, unless this number may
	 * be in-context (clone, vfork, rt_sigreturn below 64; clone3).
	 */
	mov data_hook(%rip), %rcx
	test %rcx, %rcx
	jz .Ldispatch
	cmp $ZP_NR_CLONE3, %rax
	je .Ldispatch
	cmp $63, %rax
	ja .Lfast
	mov $ZP_MAYBE_INCONTEXT, %r11
	bt %rax, %r11
	jc .Ldispatch
.Lfast:
	call *%rcx
.Lrestore:
	mov F_RDI(%rsp), %rdi
	mov F_RSI(%rsp), %rsi
	mov F_RDX(%rsp), %rdx
	mov F_R10(%rsp), %r10
	mov F_R8(%rsp), %r8
	mov F_R9(%rsp), %r9
	lea A_RETSLOT(%rbp), %rsp
	mov (%rbp), %rbp		/* [A] is within 128 bytes below rsp: signal-safe */
	ret

.Ldispatch:
	call *data_dispatch(%rip)
	test %eax, %eax
	jnz .Lincontext
	mov C_RET(%rsp), %rax
	jmp .Lrestore

.Lincontext:
	jmp *data_incontext(%rip)	/* incontext.S, with rsp = F, rbp = A */

.Lnotsite:
	/* rsp and every register as at entry but r11 (lost) and the flags */
	mov -ZP_RZ_SKIP-8(%rsp), %rcx
	movabs 0x8000000000000000, %al	/* #GP: SIGSEGV, si_addr 0; al is not written */
	ud2
	.size sysi_zpoline_blob_entry, . - sysi_zpoline_blob_entry

	.p2align 3
	.global sysi_zpoline_blob_dispatch
	.hidden sysi_zpoline_blob_dispatch
sysi_zpoline_blob_dispatch:
data_dispatch:	.quad 0		/* api->dispatch */
	.global sysi_zpoline_blob_bitmap
	.hidden sysi_zpoline_blob_bitmap
sysi_zpoline_blob_bitmap:
data_bitmap:	.quad 0		/* the return-address bitmap */
	.global sysi_zpoline_blob_incontext
	.hidden sysi_zpoline_blob_incontext
sysi_zpoline_blob_incontext:
data_incontext:	.quad 0		/* sysi_zpoline_incontext */
	.global sysi_zpoline_blob_strategy
	.hidden sysi_zpoline_blob_strategy
sysi_zpoline_blob_strategy:
data_strategy:	.quad 0		/* strategy id */
	.global sysi_zpoline_blob_hook
	.hidden sysi_zpoline_blob_hook
sysi_zpoline_blob_hook:
data_hook:	.quad 0		/* api->fast_hook, or 0 */

	.global sysi_zpoline_blob_end
	.hidden sysi_zpoline_blob_end
sysi_zpoline_blob_end:

	.section .note.GNU-stack, "", @progbits
