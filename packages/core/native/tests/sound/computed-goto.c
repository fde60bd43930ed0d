/*
 * Class 2, computed goto (GNU labels as values): `goto *t[i]` is an indirect jump, and labels b
 * and c, reached through it, are the instructions right after the inline `syscall`s that end
 * the blocks before them; main has the form (`prog x` jumps straight to b). Every
 * entry is taken; prints the trace and exits 0.
 */
#include <stdio.h>

__attribute__((noinline)) static int run(int i)
{
	static void *const t[] = { &&a, &&b, &&c };
	int v = i * 10;
	goto *t[i];
a:
	v += 3;
	__asm__ volatile("syscall" : : "a"(39L) : "rcx", "r11", "memory"); /* getpid */
b:
	v *= 5;
	__asm__ volatile("syscall" : : "a"(110L) : "rcx", "r11", "memory"); /* getppid */
c:
	return v + 1;
}

int main(int argc, char **argv)
{
	(void)argv;
	for (int i = 0; i < 3; i++)
		printf("entry %d: %d\n", i, run(i));
	/* The form: `prog x` takes b */
	static void *const t[] = { &&a, &&b };
	goto *t[argc > 1];
a:
	__asm__ volatile("syscall" : : "a"(39L) : "rcx", "r11", "memory");
b:
	puts("done");
	return 0;
}
