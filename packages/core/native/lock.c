/* lock.c — a spin lock that yields through a raw syscall (no libc, usable after fork). */
#include <asm/unistd.h>
#include "internal.h"

void sysi_lock(volatile int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		raw0(__NR_sched_yield);
}

void sysi_unlock(volatile int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}
