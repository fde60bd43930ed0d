/*
 * start.S — sysi_static_start: the entry point `sysi patch` gives a statically linked program
 * (e_entry). Sets up the libc-free runtime (static.c: environment, this thread's state, the
 * runtime's constructors: plans applied), then jumps to the program's own entry with the
 * initial process state the kernel made.
 *
 * Entry state (the kernel's, x86-64 ELF ABI): rsp -> argc, argv[], 0, envp[], 0, auxv[];
 *   16-byte aligned; rdx = a function for atexit (0 from Linux); every other register 0.
 * Exit state (at the program's entry): rsp and rdx as at entry, every other general
 *   register 0, as the kernel leaves them; RFLAGS as after xor (DF clear).
 * Clobbers: nothing the program sees. Stack: the runtime runs below the initial stack pointer
 *   (the words at and above rsp are never written). Signal safety: no handler exists yet.
 */
	.text
	.global sysi_static_start
	.hidden sysi_static_start
	.type sysi_static_start, @function
sysi_static_start:
	mov %rsp, %rdi		/* the initial stack: argc, argv, envp, auxv */
	push %rdx		/* rsp now 8 mod 16 */
	sub $8, %rsp		/* 16-aligned for the call */
	call sysi_static_init
	add $8, %rsp
	pop %rdx
	xor %eax, %eax
	xor %ecx, %ecx
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %ebx, %ebx
	xor %ebp, %ebp
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
	jmp *sysi_static_entry(%rip)
	.size sysi_static_start, . - sysi_static_start

	.section .note.GNU-stack, "", @progbits
