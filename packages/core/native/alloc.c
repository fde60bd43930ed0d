/* alloc.c — page-granular memory from raw mmap; libsysi never frees what it hands out. */
#include <asm/unistd.h>
#include <sys/mman.h>
#include "internal.h"

void *sysi_map_pages(size_t n)
{
	long p = raw6(__NR_mmap, 0, (n + 4095) & ~4095UL, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p < 0 && p > -4096)
		return 0;
	return (void *)p;
}

void sysi_unmap(void *p, size_t n)
{
	raw2(__NR_munmap, p, (n + 4095) & ~4095UL);
}

static volatile int alloc_lock;
static unsigned char *cur, *lim;

void *sysi_alloc(size_t n)
{
	void *r;
	n = (n + 15) & ~15UL;
	if (n > 65536)
		return sysi_map_pages(n);
	sysi_lock(&alloc_lock);
	if (!cur || (size_t)(lim - cur) < n) {
		cur = sysi_map_pages(262144);
		lim = cur ? cur + 262144 : 0;
	}
	r = cur;
	if (cur)
		cur += n;
	sysi_unlock(&alloc_lock);
	return r;
}
