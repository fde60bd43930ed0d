/* An invalid syscall number fails with ENOSYS (not a crash), through libc and inline. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	long r, raw;
	errno = 0;
	r = syscall(100000);
	printf("syscall(100000) = %ld errno=%s\n", r, errno == ENOSYS ? "ENOSYS" : "other");
	__asm__ volatile("syscall" : "=a"(raw) : "a"(100001L) : "rcx", "r11", "memory");
	printf("inline syscall 100001 = %ld\n", raw);
	return 0;
}
