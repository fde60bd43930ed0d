/* A `syscall` instruction starting at page offset 0xfff (it straddles two pages). */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

long straddle_getpid(void);
extern const unsigned char straddle_site[];

int main(void)
{
	printf("site page offset 0x%lx\n", (unsigned long)((uintptr_t)straddle_site & 4095));
	for (int i = 0; i < 3; i++)
		printf("straddling getpid matches: %d\n", straddle_getpid() == getpid());
	return 0;
}
