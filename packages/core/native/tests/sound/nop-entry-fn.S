/*
 * Class 7, indirect entries behind nop padding, as hand-written asm lays them out (no CFI, so
 * once the binary is stripped nothing says where a function starts):
 *
 * int nop_entry_a(int x): returns 3x + 1. Reached only through a function pointer; it starts
 *   right after the 2 bytes of nop padding that follow the exit_group `syscall` ending
 *   nop_entry_exit.
 * int nop_entry_b(int x): returns x ^ 0x55. Reached only through a function pointer; it starts
 *   with 5 nops (the -fpatchable-function-entry=5 shape) right after `syscall; ret; nop; nop`
 *   ending nop_entry_getppid, so the padding and its nops read as one run of dead padding.
 * void nop_entry_exit(int status): exit_group(status); never returns.
 * long nop_entry_getppid(void): getppid().
 *
 * entry/exit: SysV calls. clobbers: rax rcx r11 (and rdi in nop_entry_exit). stack: untouched.
 * signal safety: async-signal-safe.
 */
	.text
	.balign 16
	.global nop_entry_exit
	.type nop_entry_exit, @function
nop_entry_exit:
	mov $231, %eax /* exit_group */
	syscall
	.size nop_entry_exit, . - nop_entry_exit
	nop
	nop
	.global nop_entry_a
	.type nop_entry_a, @function
nop_entry_a:
	lea 1(%rdi,%rdi,2), %eax
	ret
	.size nop_entry_a, . - nop_entry_a

	.balign 16
	.global nop_entry_getppid
	.type nop_entry_getppid, @function
nop_entry_getppid:
	mov $110, %eax /* getppid */
	syscall
	ret
	.size nop_entry_getppid, . - nop_entry_getppid
	nop
	nop
	.global nop_entry_b
	.type nop_entry_b, @function
nop_entry_b:
	nop
	nop
	nop
	nop
	nop
	mov %edi, %eax
	xor $0x55, %eax
	ret
	.size nop_entry_b, . - nop_entry_b
	.section .note.GNU-stack, "", @progbits
