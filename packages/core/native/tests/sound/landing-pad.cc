/*
 * Class 4, C++ landing pads, two layouts g++ -O2 produces:
 * - guarded(): a call that may throw right before an inline `syscall` in a try block; the catch
 *   handler, moved to `guarded.cold`, jumps back into the hot part to the join point right after
 *   the syscall.
 * - finish(): the try block is followed by the program's final exit_group `syscall`; the landing
 *   pad the unwinder enters is the instruction right after it.
 * Prints one line per value and exits with the number of caught exceptions.
 */
#include <cstdio>
#include <stdexcept>

static unsigned caught;

__attribute__((noinline)) static unsigned check(unsigned x)
{
	if (x % 3 == 1)
		throw std::runtime_error("odd one");
	return x * 5;
}

__attribute__((noinline)) static unsigned guarded(unsigned x)
{
	unsigned v;
	try {
		v = check(x);
		__asm__ volatile("syscall" : "+r"(v) : "a"(39L) : "rcx", "r11", "memory"); /* getpid */
	} catch (const std::runtime_error &) {
		caught++;
		v = 1000 + x;
	}
	/* join: the landing pad jumps back here */
	return v * 3 + x;
}

[[noreturn]] __attribute__((noinline)) static void finish(unsigned x)
{
	try {
		check(x);
	} catch (const std::runtime_error &) {
		caught++;
	}
	std::fflush(stdout);
	__asm__ volatile("syscall" : : "a"(231L), "D"((long)caught) : "rcx", "r11", "memory"); /* exit_group */
	__builtin_unreachable();
	/* the landing pad of the try block follows */
}

int main()
{
	unsigned sum = 0;
	for (unsigned x = 0; x < 6; x++) {
		unsigned v = guarded(x);
		std::printf("guarded %u: %u\n", x, v);
		sum += v;
	}
	std::printf("sum %u, caught %u\n", sum, caught);
	finish(7);
}
