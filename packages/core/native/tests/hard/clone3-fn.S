/*
 * long clone3_run(struct clone_args *a, unsigned long size, void (*fn)(void))
 * entry: SysV call. exit: parent gets the child's tid (or -errno) in rax.
 * The child starts on a->stack with rax = 0, calls fn, then exit(3) via a raw syscall.
 * clobbers: rax rcx r11 r9. stack: the child aligns its new stack to 16 before the call.
 * signal safety: n/a (test program).
 */
	.text
	.global clone3_run
	.type clone3_run, @function
clone3_run:
	mov %rdx, %r9
	mov $435, %eax /* clone3 */
	syscall
	test %rax, %rax
	jnz 1f
	and $-16, %rsp
	call *%r9
	mov $60, %eax /* exit */
	mov $3, %edi
	syscall
	hlt
1:	ret
	.size clone3_run, . - clone3_run
	.section .note.GNU-stack, "", @progbits
