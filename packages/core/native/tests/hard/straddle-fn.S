/*
 * long straddle_getpid(void): getpid through a `syscall` at page offset 0xfff.
 * entry/exit: SysV call, rax = pid. clobbers: rax rcx r11. stack: untouched.
 * signal safety: async-signal-safe. Layout (objdump -d): mov at 0x...ffa, syscall at 0x...fff.
 */
	.text
	.balign 4096
	.skip 4090
	.global straddle_getpid
	.type straddle_getpid, @function
straddle_getpid:
	mov $39, %eax /* getpid, 5 bytes: 0xffa..0xffe */
	.global straddle_site
straddle_site:
	syscall       /* 0xfff..0x1000 */
	ret
	.size straddle_getpid, . - straddle_getpid
	.section .note.GNU-stack, "", @progbits
