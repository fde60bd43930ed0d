/*
 * Class 5, a function in another section: the last function of .text ends in an inline
 * exit_group `syscall` (it never returns, so nothing follows it), and the next bytes (after at
 * most 3 bytes of gap) are the .fini section: `_fini`, which ld.so calls through DT_FINI at exit.
 * `_fini` has no FDE and a zero-size symbol, so stripped or not, no planner knows it is a
 * function start. A destructor (.fini_array) runs before it.
 * Prints, runs the destructor, exits 0 through exit() (so `_fini` runs).
 */
#include <stdio.h>

__attribute__((noreturn, noinline)) static void quit(int status);

__attribute__((destructor)) static void bye(void)
{
	puts("destructor");
}

int main(int argc, char **argv)
{
	(void)argv;
	puts("main");
	if (argc > 2)
		quit(argc); /* not taken: main returns, and exit() runs the destructor and _fini */
	return 0;
}

/* Defined last: gcc emits it at the end of .text, right before .fini. */
__attribute__((noreturn, noinline)) static void quit(int status)
{
	fflush(stdout);
	__asm__ volatile("syscall" : : "a"(231L), "D"((long)status) : "rcx", "r11", "memory"); /* exit_group */
	__builtin_unreachable();
}
