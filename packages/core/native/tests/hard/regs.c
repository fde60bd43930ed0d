/*
 * Registers and red zone across a hooked syscall (regs-fn.S): every register but rax, rcx and
 * r11 keeps its value, rax holds the result, and the 128 bytes below rsp are untouched, as the
 * kernel guarantees. Prints "regs ok" / "red zone ok", or which register or how many red-zone
 * qwords changed; exits 0 either way (the harness compares the output with the native run's).
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

long regs_site(uint64_t out[13]);
long regs_redzone(void);

int main(void)
{
	static const char *names[12] = { "rbx", "rbp", "r12", "r13", "r14", "r15",
					 "rdi", "rsi", "rdx", "r10", "r8",  "r9" };
	static const uint64_t want[12] = {
		0x1111111111111101, 0x2222222222222202, 0x3333333333333303, 0x4444444444444404,
		0x5555555555555505, 0x6666666666666606, 0x7777777777777707, 0x8888888888888808,
		0x9999999999999909, 0xaaaaaaaaaaaaaa0a, 0xbbbbbbbbbbbbbb0b, 0xcccccccccccccc0c,
	};
	uint64_t out[13];
	int bad = 0;
	for (int round = 0; round < 3; round++) { /* the first call may take a slower path */
		regs_site(out);
		for (int i = 0; i < 12; i++)
			if (out[i] != want[i]) {
				if (!bad++ || round == 0)
					printf("%s changed: %#llx\n", names[i], (unsigned long long)out[i]);
			}
		if ((long)out[12] != (long)getppid()) {
			bad++;
			printf("rax = %lld, not the parent pid\n", (long long)out[12]);
		}
	}
	if (!bad)
		printf("regs ok\n");
	long rz = 0;
	for (int round = 0; round < 3; round++)
		rz += regs_redzone();
	if (rz)
		printf("red zone: %ld qwords changed\n", rz);
	else
		printf("red zone ok\n");
	return 0;
}
