/*
 * Class 7, indirect entries behind nop padding (see nop-entry-fn.S): both entries are called
 * only through function pointers, the syscalls before them are made too. Prints one line per
 * call and exits with status 3 through nop_entry_exit.
 */
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif
__attribute__((noreturn)) void nop_entry_exit(int status);
long nop_entry_getppid(void);
int nop_entry_a(int x);
int nop_entry_b(int x);
#ifdef __cplusplus
}
#endif

static int (*volatile entries[])(int) = { nop_entry_a, nop_entry_b };

int main(void)
{
	printf("getppid > 0: %d\n", nop_entry_getppid() > 0);
	for (int x = 0; x < 3; x++)
		printf("a(%d) = %d, b(%d) = %d\n", x, entries[0](x), x, entries[1](x));
	fflush(stdout);
	nop_entry_exit(3);
}
