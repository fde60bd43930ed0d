/*
 * Class 1, jump tables: a switch that gcc -O2 compiles to a jump table (an indirect `jmp *%rax`),
 * where a case body ends in an inline `syscall` and the next case label, reached only through
 * the table, is the instruction right after it. Prints one line per case, exits 0.
 */
#include <stdio.h>

static inline long sys0(long nr)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr) : "rcx", "r11", "memory");
	return r;
}

__attribute__((noinline)) static unsigned step(unsigned k, unsigned v)
{
	switch (k) {
	case 0:
		v = v * 3 + 1;
		sys0(39); /* getpid; case 1 starts right after it */
		/* fall through */
	case 1:
		v += 0x51;
		/* fall through */
	case 2:
		v ^= 0x3c;
		sys0(110); /* getppid; case 3 starts right after it */
		/* fall through */
	case 3:
		v = v * 7 + 5;
		break;
	case 4:
		v -= 9;
		sys0(39);
		/* fall through */
	case 5:
		v <<= 2;
		break;
	case 6:
		v = ~v;
		break;
	default:
		v = 0;
	}
	return v;
}

int main(void)
{
	unsigned sum = 0;
	for (unsigned k = 0; k < 8; k++) {
		unsigned v = step(k, 100 + k);
		printf("case %u: %u\n", k, v);
		sum += v;
	}
	printf("sum %u\n", sum);
	return 0;
}
