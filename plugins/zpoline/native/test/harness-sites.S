/*
 * harness-sites.S — syscall sites for the unit harness (harness.c patches the ones listed in
 * zh_sites to `ff d0` at run time). The unpatched raw syscall of the fake dispatcher is
 * libsysi's own sysi_raw6 (packages/core/native/syscall.S, assembled into the harness).
 *
 * Entry/exit: SysV calls unless stated. Clobbers: caller-saved registers. Stack: 16-byte
 * aligned at calls. Signal safety: as the kernel's syscall (they are plain syscall wrappers).
 */
	.text

/* long zh_sys6(nr, a1..a6): patched */
	.global zh_sys6
	.type zh_sys6, @function
zh_sys6:
	mov %rdi, %rax
	mov %rsi, %rdi
	mov %rdx, %rsi
	mov %rcx, %rdx
	mov %r8, %r10
	mov %r9, %r8
	mov 8(%rsp), %r9
site_sys6:
	syscall
	ret
	.size zh_sys6, . - zh_sys6

/*
 * long zh_regs(long nr): loads patterns into every register the kernel preserves and into
 * the red zone [rsp-128, rsp-8), runs a patched site, returns a bit mask of what changed
 * (bit i = register i of the list below, bit 16 = red zone).
 */
	.global zh_regs
	.type zh_regs, @function
zh_regs:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rdi, %rax
	mov $-128, %rcx
1:	mov %rcx, %rdx
	xor $0x5a5a5a5a, %rdx
	mov %rdx, (%rsp, %rcx)
	add $8, %rcx
	jnz 1b
	mov $0x1111, %rbx
	mov $0x2222, %rbp
	mov $0x3333, %r12
	mov $0x4444, %r13
	mov $0x5555, %r14
	mov $0x6666, %r15
	mov $0x7777, %rdi
	mov $0x8888, %rsi
	mov $0x9999, %rdx
	mov $0xaaaa, %r10
	mov $0xbbbb, %r8
	mov $0xcccc, %r9
site_regs:
	syscall
	xor %eax, %eax
	cmp $0x1111, %rbx
	setne %al
	.macro chk reg, val, bit
	xor %ecx, %ecx
	cmp \val, \reg
	setne %cl
	shl $\bit, %ecx
	or %ecx, %eax
	.endm
	chk %rbp, $0x2222, 1
	chk %r12, $0x3333, 2
	chk %r13, $0x4444, 3
	chk %r14, $0x5555, 4
	chk %r15, $0x6666, 5
	chk %rdi, $0x7777, 6
	chk %rsi, $0x8888, 7
	chk %rdx, $0x9999, 8
	chk %r10, $0xaaaa, 9
	chk %r8, $0xbbbb, 10
	chk %r9, $0xcccc, 11
	/* red zone below the return-address slot: [rsp-128, rsp-8) */
	mov $-128, %rcx
2:	mov %rcx, %rdx
	xor $0x5a5a5a5a, %rdx
	cmp %rdx, (%rsp, %rcx)
	jne 3f
	add $8, %rcx
	cmp $-8, %rcx
	jne 2b
	jmp 4f
3:	or $0x10000, %eax
4:	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret
	.size zh_regs, . - zh_regs

/* pid_t zh_vfork(void): glibc's shape (the return address lives in rdi across the call) */
	.global zh_vfork
	.type zh_vfork, @function
zh_vfork:
	pop %rdi
	mov $58, %eax
site_vfork:
	syscall
	push %rdi
	ret
	.size zh_vfork, . - zh_vfork

/* long zh_clone(flags, stack, fn, arg): glibc's clone shape; the child runs fn(arg), exits */
	.global zh_clone
	.type zh_clone, @function
zh_clone:
	and $-16, %rsi
	sub $16, %rsi
	mov %rcx, 8(%rsi)
	mov %rdx, (%rsi)
	mov $56, %eax
	xor %edx, %edx
	xor %r10d, %r10d
	xor %r8d, %r8d
site_clone:
	syscall
	test %rax, %rax
	jz 1f
	ret
1:	xor %ebp, %ebp
	pop %rax
	pop %rdi
	call *%rax
	mov %rax, %rdi
	mov $60, %eax
	syscall
	hlt
	.size zh_clone, . - zh_clone

/* long zh_clone3(args, size, fn, arg): glibc's clone3 shape */
	.global zh_clone3
	.type zh_clone3, @function
zh_clone3:
	mov %rcx, %r8
	mov $435, %eax
site_clone3:
	syscall
	test %rax, %rax
	jz 1f
	ret
1:	xor %ebp, %ebp
	and $-16, %rsp
	mov %r8, %rdi
	call *%rdx
	mov %rax, %rdi
	mov $60, %eax
	syscall
	hlt
	.size zh_clone3, . - zh_clone3

/* sa_restorer: rt_sigreturn through a patched site */
	.global zh_restorer
	.type zh_restorer, @function
zh_restorer:
	mov $15, %eax
site_restorer:
	syscall
	hlt
	.size zh_restorer, . - zh_restorer

/* void zh_loop(long nr, long n): n calls of a patched site with rax = nr (benchmark) */
	.global zh_loop
	.type zh_loop, @function
zh_loop:
	mov %rsi, %r8
	mov %rdi, %r9
	.p2align 4
1:	mov %r9, %rax
site_loop:
	syscall
	dec %r8
	jnz 1b
	ret
	.size zh_loop, . - zh_loop

/* void zh_floor_loop(void (*fn)(void), long n): n calls of fn through %rax (benchmark floor) */
	.global zh_floor_loop
	.type zh_floor_loop, @function
zh_floor_loop:
	mov %rsi, %r8
	.p2align 4
1:	mov %rdi, %rax
	call *%rax
	dec %r8
	jnz 1b
	ret
	.size zh_floor_loop, . - zh_floor_loop

	.global zh_ret
	.type zh_ret, @function
zh_ret:
	ret
	.size zh_ret, . - zh_ret

/* the sites to patch, 0-terminated */
	.section .data.rel.ro, "aw"
	.p2align 3
	.global zh_sites
zh_sites:
	.quad site_sys6, site_loop, site_regs, site_vfork, site_clone, site_clone3, site_restorer, 0

	.section .note.GNU-stack, "", @progbits
