/*
 * entry.S — the zpoline entry blobs. Page 0's jumps land directly on a copy of one of them
 * (zpoline.h: one copy per cluster of 20 syscall numbers, each copy inside one page), so a
 * hooked call touches page 0, one page of ours and a slot of the site set (set.c). init.c
 * copies the bytes between sysi_zpoline_<kind> and sysi_zpoline_<kind>_end and fills in the
 * copy's data words (at its end) and its strategy-id immediate. The code is position
 * independent and only addresses its own copy (rip-relative).
 *
 * Five blobs, one prologue (the CHECK and FRAME macros):
 *   sysi_zpoline_fast  calls api->fast_hook directly, testing no number at all: init.c uses
 *                      it only when fast_hook is set and none of the cluster's numbers can be
 *                      in-context (clone, vfork, rt_sigreturn, clone3: sysi.h).
 *   sysi_zpoline_fastk the same for a hook that keeps c->nr and c->args (SYSI_FAST_KEEPS_ARGS):
 *                      no save area; the argument registers come back from c->args.
 *   sysi_zpoline_gen   any number: api->fast_hook for those that cannot be in-context (when
 *                      set), else api->dispatch, which may hand the call back to incontext.S.
 *                      The other clusters and init.c's SIGSEGV resume (numbers outside
 *                      0..ZP_E9_END-5, normalised to the 32 bits the kernel reads) come
 *                      here. With SYSI_FAST_PASSTHROUGH it makes the syscall itself for
 *                      the numbers that need no runtime work (sysi.h).
 *   sysi_zpoline_cnt   SYSI_FAST_COUNT (the built-in count hook, stats file): the check, then
 *                      the count in the thread's slab and the syscall itself for the numbers
 *                      sysi_count_direct() accepts, the general copy's path for the others.
 *   sysi_zpoline_sys   SYSI_FAST_PASSTHROUGH (the built-in passthrough hook): the check, then
 *                      the syscall itself; for clusters none of whose numbers need the
 *                      runtime (rt_sigaction, rt_sigprocmask, rt_sigreturn, clone, fork,
 *                      vfork, clone3). The hooked path then touches no page of libsysi.
 *
 * Entry state (all three, reached by page 0's jmp):
 *   a patched site executed `call *%rax` (ff d0) in place of `syscall` (0f 05):
 *   rax = syscall number, rdi rsi rdx r10 r8 r9 = arguments, (%rsp) = site + 2 (this slot was
 *   [rsp-8] of the program: the first 8 bytes of its red zone), every other register is the
 *   program's. rcx and r11 are dead at a site (the kernel clobbers them), but not when the
 *   caller was not a site (NULL function-pointer call), so rcx is saved before use.
 * Exit state (site): rax = result; rdi rsi rdx r10 r8 r9 rbx rbp r12-r15 and rsp as at the
 *   site (rsp after `ret` = the program's rsp) — the argument registers come back from the
 *   entry's own copy, whatever the hook wrote into c->args; rcx, r11 and the arithmetic flags
 *   are clobbered (the kernel clobbers rcx/r11 too; it keeps rflags, we do not: pushf/popf
 *   would cost 6-7 ns per call and compiled code never keeps flags live across a syscall).
 *   DF must be clear (the ABI guarantees it at every call; the hook is C).
 * Exit state (not a site): rsp and registers as at entry (but r11), then a load
 *   from a non-canonical address raises SIGSEGV with si_addr 0 (si_code SI_KERNEL), the
 *   closest we can get to the native fault at address 0 while page 0 is mapped.
 * Clobbers: rcx, r11, flags.
 * Stack: writes nothing in the program's red zone but the return-address slot: the frame
 *   starts 128 bytes below that slot and is aligned to 16 for the hook/dispatcher call; uses
 *   128 + SYSI_F_SIZE + 15 bytes below the slot, plus what the hook uses (sys blob: only the
 *   parked rcx at [slot-128]).
 * Signal safety: a signal at any instruction finds rsp at or below the return-address slot, so
 *   the kernel's frame (placed 128 bytes below rsp) never touches the program's red zone; every
 *   state lives on this thread's stack, so the entry is reentrant.
 * Vector/x87 state: untouched here; the dispatcher saves it when the hook needs it (the fast
 *   hook is general-regs-only by contract).
 * Cost notes (Zen 5, PTI): the fast path is straight-line code (every branch falls through)
 *   and page 0's jmp reaches it directly (a second jmp cost ~0.3 ns); each instruction counts
 *   once the hook is near (libsysi loads it below 64 GiB, near these pages: an indirect branch
 *   to a target 2^37 bytes away or more costs ~1 ns here, returns cost nothing extra).
 */
#include "zpoline.h"

/*
 * RET: the ways back to the site right after the blob's own syscall are `pop %rcx; jmp *%rcx`,
 * not `ret`: the kernel refills the return stack buffer on its way out (RSB stuffing, SRSO), so
 * the first `ret` after a syscall to a return address pushed before it mispredicts (46 ns on an
 * AMD Zen 5 here, never under 20: docs/architecture.md); an indirect jmp is predicted. rcx = R
 * at the site then, as after the site's own syscall. Measured here (sysi bench, passthrough,
 * inline getppid): 169 ns against native 146 before, 122 against 118 after. LEAVE keeps its
 * `ret`: after a hook that answered without a syscall the RSB is intact, and a pop/jmp there
 * leaves the site's call in it, so the program's next `ret` mispredicts (self-answer 4.1 ->
 * 4.9 ns inline, 6.3 -> 13.2 ns through libc's syscall()), so it tests c->flags' SYSI_C_MADE
 * (set by libsysi when it made the call for the hook) and leaves by pop/jmp only then, by `ret`
 * after a call the hook answered itself (LEAVE). (A program with a shadow stack would
 * see its call unbalanced: the release path already was; shadow stacks are not supported.)
 *
 * The prologue (CHECK, then FRAME). Return-address check, with rcx and r11 only (dead at a
 * site): is R = (%rsp) in the set of patched sites' return addresses (zpoline.h, set.c)? rcx is
 * parked in the one free slot first, [rsp-128] (just below the program's red zone and inside
 * the 128 bytes the kernel skips for signal frames), for the not-a-site path. rcx = R, r11 =
 * its home slot, _set + (R * 8 & _mask); a miss goes to PROBE, out of line: the next slots up
 * to an empty one, then SLOW. On a hit rcx = R.
 * Then the frame (zpoline.h): rbp = A = slot - 128 with the program's rbp at [A]; rsp = F =
 * (A - SYSI_F_SIZE) & -16, derived from registers only (no load on the rsp dependency chain);
 * struct sysi_call at F (flags 0, ret unset), the program's argument registers above it;
 * rdi = F. `p` is the blob's symbol prefix (data words, the strategy-id immediate init.c fills).
 */
	.macro CHECK p
	mov %rcx, -ZP_RZ_SKIP-8(%rsp)
	mov (%rsp), %rcx
	mov %rcx, %r11
	shl $3, %r11
	and \p\()_mask(%rip), %r11
	add \p\()_set(%rip), %r11
	cmp (%r11), %rcx
	{disp32} jne \p\()_probe		/* fixed sizes up to HOOKCALL */
	.global \p\()_hit
	.hidden \p\()_hit
\p\()_hit:				/* init.c zp_context: before it, the program's registers */
	.endm

/*
 * The rest of the lookup, out of line. PROBE: the slots after the home slot (r11) up to an
 * empty one. Then, not found through this copy's words, which set.c may be replacing (a read
 * of the new _set with the old _mask may miss; the reverse cannot happen: set.c writes _set
 * first, and this code reads _mask first), or not a site: sysi_zpoline_slow asks the current
 * set, called from just below the parked rcx (the call's return address goes below it). Then
 * a hit, or the not-a-site path.
 */
	.macro PROBE p
\p\()_probe:
	cmpq $0, (%r11)
	je \p\()_slow
	add $8, %r11
	cmp (%r11), %rcx
	jne \p\()_probe
	jmp \p\()_hit
\p\()_slow:
	lea -ZP_RZ_SKIP-8(%rsp), %rsp
	call *\p\()_slowfn(%rip)
	lea ZP_RZ_SKIP+8(%rsp), %rsp
	test %r11d, %r11d
	jnz \p\()_hit
	.endm

	.macro FRAME p, keep=0
	mov %rbp, -ZP_RZ_SKIP-8(%rsp)
	lea -ZP_RZ_SKIP-8(%rsp), %rbp
	lea -SYSI_F_SIZE(%rbp), %rsp
	and $-16, %rsp
	.if \keep
	SYSI_CALL_FILL %rsp
	.else
	SYSI_FRAME_FILL %rsp
	.endif
	sub $2, %rcx
	mov %rcx, SYSI_C_SITE(%rsp)
	movq $0x7fffffff, SYSI_C_STRAT(%rsp)	/* strategy id (low half, init.c), flags 0 (high half) */
	.global \p\()_strat
	.hidden \p\()_strat
	.set \p\()_strat, . - 4
	mov %rsp, %rdi
	.endm

/*
 * The epilogue: the program's argument registers (from the save area, or with keep=1 from
 * c->args, which a SYSI_FAST_KEEPS_ARGS hook left as they were), rsp and rbp; back to the site
 * by `ret` when the hook answered the call itself, else (SYSI_C_MADE in c->flags: libsysi made
 * the system call for it, sysi.h SYSI_CALL_MADE) by `pop %rcx; jmp *%rcx` (RET above; rcx = R
 * at the site then, as after its own syscall). One branch for both that and a deferred signal:
 * r11 = flags & MADE | the defer word.
 */
	.macro LEAVE p, keep=0
	mov SYSI_C_FLAGS(%rsp), %r11d
	.if \keep
	SYSI_CALL_ARGS %rsp
	.else
	SYSI_FRAME_RESTORE %rsp
	.endif
	lea A_RETSLOT(%rbp), %rsp
	mov (%rbp), %rbp		/* [A] is within 128 bytes below rsp: signal-safe */
	and $SYSI_C_MADE, %r11d
	mov \p\()_defer(%rip), %rcx	/* a signal deferred during the call (sysi.h watch_context)? */
	or %fs:(%rcx), %r11
	jnz \p\()_out
	ret
	.endm

/*
 * Out of LEAVE's line: a deferred signal (rcx = the defer word's offset), else a call whose
 * system call was made. Then a blob's way out through libsysi's release (sysi.h watch_context):
 * rsp = the slot holding R = site + 2, the site's return point; rcx = R and rsp = the
 * program's rsp for the release.
 */
	.macro RELEASE p
\p\()_out:
	cmpq $0, %fs:(%rcx)
	jne \p\()_leave
	pop %rcx		/* init.c zp_context: R on top, then rcx = R */
	jmp *%rcx
\p\()_leave:
	pop %rcx
	jmp *\p\()_release(%rip)
	.endm

/*
 * The hook call of a blob's hooked path, ending on a multiple of 8 bytes from the blob's start
 * (a NOP of up to 7 bytes before it; the code before it has fixed sizes): init.c puts that
 * return point \p\()_back at the start of an instruction-fetch line (align_code).
 */
	.macro HOOKCALL p
	.nops (8 - ((. + 6 - \p) & 7)) & 7
	call *\p\()_hook(%rip)		/* rax = the result */
	.global \p\()_back
	.hidden \p\()_back
\p\()_back:
	.endm

/* Not a site: rsp and every register as at entry but r11 (lost) and the flags. */
	.macro NOTSITE p
\p\()_notsite:
	mov -ZP_RZ_SKIP-8(%rsp), %rcx
	movabs 0x8000000000000000, %al	/* #GP: SIGSEGV, si_addr 0; al is not written */
	ud2
	.endm

/* A blob's data words (init.c fills them in each copy; set.c rewrites _set and _mask). */
	.macro DATA p
	.p2align 3
	.global \p\()_set, \p\()_mask, \p\()_slowfn, \p\()_hook
	.hidden \p\()_set, \p\()_mask, \p\()_slowfn, \p\()_hook
\p\()_set:	.quad 0		/* the site set's first slot, zp_set.slot */
\p\()_mask:	.quad 0		/* its mask8 */
\p\()_slowfn:	.quad 0		/* sysi_zpoline_slow */
\p\()_hook:	.quad 0		/* api->fast_hook, or 0 */
	.global \p\()_defer, \p\()_release
	.hidden \p\()_defer, \p\()_release
\p\()_defer:	.quad 0		/* api->defer_tpoff */
\p\()_release:	.quad 0		/* api->release */
	.endm

	.text
	.p2align 4
	.global sysi_zpoline_fast, sysi_zpoline_fast_end
	.hidden sysi_zpoline_fast, sysi_zpoline_fast_end
	.type sysi_zpoline_fast, @function
sysi_zpoline_fast:
	CHECK sysi_zpoline_fast
	FRAME sysi_zpoline_fast
	HOOKCALL sysi_zpoline_fast
	LEAVE sysi_zpoline_fast
	RELEASE sysi_zpoline_fast
	PROBE sysi_zpoline_fast
	NOTSITE sysi_zpoline_fast
	DATA sysi_zpoline_fast
sysi_zpoline_fast_end:
	.size sysi_zpoline_fast, . - sysi_zpoline_fast

/*
 * sysi_zpoline_fastk: sysi_zpoline_fast for a hook that keeps c->nr and c->args
 * (SYSI_FAST_KEEPS_ARGS): no save area, the argument registers come back from c->args.
 */
	.p2align 4
	.global sysi_zpoline_fastk, sysi_zpoline_fastk_end
	.hidden sysi_zpoline_fastk, sysi_zpoline_fastk_end
	.type sysi_zpoline_fastk, @function
sysi_zpoline_fastk:
	CHECK sysi_zpoline_fastk
	FRAME sysi_zpoline_fastk, 1
	HOOKCALL sysi_zpoline_fastk
	LEAVE sysi_zpoline_fastk, 1
	RELEASE sysi_zpoline_fastk
	PROBE sysi_zpoline_fastk
	NOTSITE sysi_zpoline_fastk
	DATA sysi_zpoline_fastk
sysi_zpoline_fastk_end:
	.size sysi_zpoline_fastk, . - sysi_zpoline_fastk

	.p2align 4
	.global sysi_zpoline_gen, sysi_zpoline_gen_end
	.hidden sysi_zpoline_gen, sysi_zpoline_gen_end
	.type sysi_zpoline_gen, @function
sysi_zpoline_gen:
	CHECK sysi_zpoline_gen
	/* SYSI_FAST_PASSTHROUGH: the syscall itself unless the runtime has work for it */
	cmpq $0, sysi_zpoline_gen_direct(%rip)
	{disp8} je 1f
	lea -ZP_NR_RT_SIGACTION(%rax), %r11	/* rt_sigaction, rt_sigprocmask, rt_sigreturn */
	cmp $2, %r11
	{disp8} jbe 1f
	lea -ZP_NR_CLONE(%rax), %r11		/* clone, fork, vfork */
	cmp $2, %r11
	{disp8} jbe 1f
	cmp $ZP_NR_CLONE3, %rax
	{disp8} je 1f
	cmp $ZP_NR_EXECVE, %rax		/* execve, execveat: libsysi passes its variables on */
	{disp8} je 1f
	cmp $ZP_NR_EXECVEAT, %rax
	{disp8} je 1f
	syscall
	pop %rcx		/* init.c zp_context: R on top, then rcx = R (as after the site's */
	jmp *%rcx		/* syscall); a `ret` here mispredicts (RET), see RET below */
	.global sysi_zpoline_gen_body
	.hidden sysi_zpoline_gen_body
sysi_zpoline_gen_body:			/* also sysi_zpoline_cnt's way here: rcx = R, as after CHECK */
1:	FRAME sysi_zpoline_gen
	/* the fast hook unless this number may be in-context (or there is no fast hook) */
	cmpq $0, sysi_zpoline_gen_hook(%rip)
	{disp8} je .Ldispatch
	cmp $ZP_NR_RT_SIGRETURN, %rax
	{disp8} je .Ldispatch
	cmp $ZP_NR_CLONE, %rax
	{disp8} je .Ldispatch
	cmp $ZP_NR_VFORK, %rax
	{disp8} je .Ldispatch
	cmp $ZP_NR_CLONE3, %rax
	{disp8} je .Ldispatch
	HOOKCALL sysi_zpoline_gen
.Lgen_leave:
	LEAVE sysi_zpoline_gen
.Ldispatch:
	call *sysi_zpoline_gen_dispatch(%rip)
	test %eax, %eax
	jnz .Lincontext
	mov SYSI_C_RET(%rsp), %rax
	jmp .Lgen_leave		/* one LEAVE: the copy must fit in its 532 bytes (zpoline.h) */
.Lincontext:
	jmp *sysi_zpoline_gen_incontext(%rip)	/* incontext.S, with rsp = F, rbp = A */
	RELEASE sysi_zpoline_gen
	PROBE sysi_zpoline_gen
	NOTSITE sysi_zpoline_gen
	DATA sysi_zpoline_gen
	.global sysi_zpoline_gen_dispatch, sysi_zpoline_gen_incontext, sysi_zpoline_gen_direct
	.hidden sysi_zpoline_gen_dispatch, sysi_zpoline_gen_incontext, sysi_zpoline_gen_direct
sysi_zpoline_gen_dispatch:	.quad 0		/* api->dispatch */
sysi_zpoline_gen_incontext:	.quad 0		/* sysi_zpoline_incontext */
sysi_zpoline_gen_direct:	.quad 0		/* 1: api->fast_flags has SYSI_FAST_PASSTHROUGH */
sysi_zpoline_gen_end:
	.size sysi_zpoline_gen, . - sysi_zpoline_gen

/*
 * The count blob (api->fast_flags SYSI_FAST_COUNT: the built-in count hook with a stats file,
 * sysi.h): after the check, the numbers of this copy that sysi_count_direct() accepts are
 * counted in the thread's slab and made here, with the site's own registers, like the sys
 * blob: no frame, no C call. Only page 0's jumps of its own cluster reach a count copy (numbers
 * from elsewhere go to cluster 0's copy, the general blob), so rax is one of its 20 numbers.
 * The others of them (the count hook must see them: _left) and every call of a thread without
 * a slab yet go to the general copy's path after its CHECK (sysi_zpoline_gen_body in cluster
 * 0's copy) with rcx = R, as a hit leaves it.
 *   nr lives at [S-128] (S: the slot holding R; the parked rcx is dead after a hit) across
 *   the syscall: below the program's red zone, above any signal frame (placed below rsp-128).
 *   Counts: calls and the strategy's calls before the syscall (execve, exit are never made
 *   here), errors after it, from the slab %fs holds then (none: a fork child of a signal
 *   handler that returns here: `lock incq` on the totals).
 *   Signals: init.c zp_context defers every signal from the hit to the `ret` (the counts are
 *   made: nothing may run the call twice), so the way out checks the defer word; the SIGPIPE
 *   watch (libsysi, count_watch) knows _ret and _skip: it counts an EPIPE itself and moves
 *   the context to _skip.
 */
	.p2align 4
	.global sysi_zpoline_cnt, sysi_zpoline_cnt_end
	.hidden sysi_zpoline_cnt, sysi_zpoline_cnt_end
	.type sysi_zpoline_cnt, @function
sysi_zpoline_cnt:
	CHECK sysi_zpoline_cnt
	mov sysi_zpoline_cnt_left(%rip), %r11	/* bit nr % 64: nr is left to the hook */
	bt %rax, %r11				/* rax is one of this copy's 20 numbers */
	jc .Lcnt_general
	mov sysi_zpoline_cnt_cf+SYSI_CF_TPOFF(%rip), %r11
	mov %fs:(%r11), %r11			/* this thread's slab */
	test %r11, %r11
	jz .Lcnt_general
	mov %rax, -ZP_RZ_SKIP-8(%rsp)		/* nr, for after the syscall */
	mov %rax, %rcx
	shl $4, %rcx
	incq SYSI_SLAB_CALLS(%r11, %rcx)
	add sysi_zpoline_cnt_cf+SYSI_CF_STRAT(%rip), %r11
	incq (%r11)
	syscall
	.global sysi_zpoline_cnt_ret
	.hidden sysi_zpoline_cnt_ret
sysi_zpoline_cnt_ret:
	cmp $-4095, %rax
	jae .Lcnt_error
	.global sysi_zpoline_cnt_skip
	.hidden sysi_zpoline_cnt_skip
sysi_zpoline_cnt_skip:
	mov sysi_zpoline_cnt_defer(%rip), %rcx	/* a signal deferred meanwhile? */
	cmpq $0, %fs:(%rcx)
	jne sysi_zpoline_cnt_leave
	pop %rcx		/* RET */
	jmp *%rcx
.Lcnt_error:
	mov -ZP_RZ_SKIP-8(%rsp), %r11
	shl $4, %r11
	mov sysi_zpoline_cnt_cf+SYSI_CF_TPOFF(%rip), %rcx
	mov %fs:(%rcx), %rcx
	test %rcx, %rcx
	jz 1f
	incq SYSI_SLAB_ERRORS(%rcx, %r11)
	jmp sysi_zpoline_cnt_skip
1:	add sysi_zpoline_cnt_cf+SYSI_CF_TOTALS(%rip), %r11
	lock incq 8(%r11)
	jmp sysi_zpoline_cnt_skip
.Lcnt_general:
	mov (%rsp), %rcx			/* R, as CHECK leaves it */
	jmp *sysi_zpoline_cnt_general(%rip)
	RELEASE sysi_zpoline_cnt
	PROBE sysi_zpoline_cnt
	NOTSITE sysi_zpoline_cnt
	DATA sysi_zpoline_cnt
	.global sysi_zpoline_cnt_general, sysi_zpoline_cnt_left, sysi_zpoline_cnt_cf
	.hidden sysi_zpoline_cnt_general, sysi_zpoline_cnt_left
	.hidden sysi_zpoline_cnt_cf
sysi_zpoline_cnt_general:	.quad 0		/* sysi_zpoline_gen_body in cluster 0's copy */
sysi_zpoline_cnt_left:	.quad 0		/* bit nr % 64 for this copy's numbers nr (20j-4 ..
					 * 20j+15: distinct mod 64) that sysi_count_direct()
					 * refuses */
sysi_zpoline_cnt_cf:	.quad 0, 0, 0	/* struct sysi_count_fast (api->count_fast) */
sysi_zpoline_cnt_end:
	.size sysi_zpoline_cnt, . - sysi_zpoline_cnt

/*
 * The passthrough blob (api->fast_flags SYSI_FAST_PASSTHROUGH, for clusters whose numbers all
 * need no runtime work): after the check, the site's own registers go to the kernel as they
 * are; `ret` leaves the result in rax. No frame: the only stack write is the parked rcx at
 * [rsp-128], and a signal during the syscall finds its frame below that.
 */
	.p2align 4
	.global sysi_zpoline_sys, sysi_zpoline_sys_end
	.hidden sysi_zpoline_sys, sysi_zpoline_sys_end
	.type sysi_zpoline_sys, @function
sysi_zpoline_sys:
	CHECK sysi_zpoline_sys
	syscall
	pop %rcx		/* init.c zp_context: R on top, then rcx = R (as after the site's */
	jmp *%rcx		/* syscall); a `ret` here mispredicts (RET), see RET below */
	PROBE sysi_zpoline_sys
	NOTSITE sysi_zpoline_sys
	DATA sysi_zpoline_sys
sysi_zpoline_sys_end:
	.size sysi_zpoline_sys, . - sysi_zpoline_sys

/*
 * sysi_zpoline_slow — the entry check's last resort (PROBE): is rcx = R a site's return
 * address in the current set (zp_set_has, C built -mgeneral-regs-only)?
 * Entry: called from a blob with rsp = S - 128 (S: the slot holding R; [S-128] the parked
 *   rcx), so its return address is at S - 136, below everything the blob keeps.
 * Exit: r11 = 1 when R is a site, else 0; rcx = R; every other register as at entry but the
 *   flags.
 * Stack: rsp aligned down to 16, the caller-saved registers pushed, zp_set_has's frame.
 * Signal safety: reentrant (zp_set_has reads the set without a lock).
 */
	.text
	.global sysi_zpoline_slow
	.hidden sysi_zpoline_slow
	.type sysi_zpoline_slow, @function
sysi_zpoline_slow:
	mov %rsp, %r11
	and $-16, %rsp
	push %r11
	push %rcx
	push %rax
	push %rdi
	push %rsi
	push %rdx
	push %r8
	push %r9
	push %r10
	sub $8, %rsp			/* 10 words: rsp 16-aligned at the call */
	mov %rcx, %rdi
	call zp_set_has
	mov %eax, %r11d
	add $8, %rsp
	pop %r10
	pop %r9
	pop %r8
	pop %rdx
	pop %rsi
	pop %rdi
	pop %rax
	pop %rcx
	pop %rsp
	ret
	.global sysi_zpoline_slow_end
	.hidden sysi_zpoline_slow_end
sysi_zpoline_slow_end:
	.size sysi_zpoline_slow, . - sysi_zpoline_slow

	.section .note.GNU-stack, "", @progbits
