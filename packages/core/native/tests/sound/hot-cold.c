/*
 * Class 3, hot/cold splitting: gcc -O2 moves the unlikely branch (it calls a cold function) into
 * `mix.cold` in .text.unlikely, whose last instruction jumps back into the hot part, to the join
 * point right after the inline `syscall` of the likely branch. The cold path is taken for
 * every third value; prints one line per value, exits 0.
 */
#include <stdio.h>

static unsigned cold_calls;

__attribute__((noinline, cold)) static unsigned rare(unsigned x)
{
	cold_calls++;
	return x * 31 + 7;
}

__attribute__((noinline)) static unsigned mix(unsigned x)
{
	unsigned v;
	if (__builtin_expect(x % 3 == 0, 0)) {
		v = rare(x);
	} else {
		v = x + 0x1234;
		__asm__ volatile("syscall" : "+r"(v) : "a"(110L) : "rcx", "r11", "memory"); /* getppid */
	}
	/* join: the cold part jumps back here */
	return v ^ (x << 3);
}

int main(void)
{
	unsigned sum = 0;
	for (unsigned x = 0; x < 7; x++) {
		unsigned v = mix(x);
		printf("mix %u: %u\n", x, v);
		sum += v;
	}
	printf("sum %u, cold calls %u\n", sum, cold_calls);
	return 0;
}
