/*
 * squat.c — test helper preloaded before libsysi's constructor runs: maps PROT_NONE pages at
 * libc base + each offset in SQUAT_OFFSETS (comma list, hex), so punning finds them taken.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int find_libc(struct dl_phdr_info *i, size_t n, void *out)
{
	(void)n;
	if (i->dlpi_name && strstr(i->dlpi_name, "libc.so.6")) {
		*(uintptr_t *)out = i->dlpi_addr;
		return 1;
	}
	return 0;
}

__attribute__((constructor)) static void squat(void)
{
	const char *s = getenv("SQUAT_OFFSETS");
	uintptr_t base = 0;
	if (!s || !dl_iterate_phdr(find_libc, &base))
		return;
	while (*s) {
		char *e;
		long off = strtol(s, &e, 16);
		mmap((void *)(base + off), 4096, PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		s = *e ? e + 1 : e;
	}
}
