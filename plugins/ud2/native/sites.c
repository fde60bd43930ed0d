/*
 * sites.c — the ud2 runtime's site table and in-context gadgets.
 * Open addressing keyed by the site address. prepare_site inserts (under libsysi's module
 * lock, before the site is patched); the signal handler reads without locks. Growing builds a
 * new table and publishes it with a release store; old tables are never freed, so a reader
 * holding one still sees valid (complete up to its publication) data.
 */
#include <asm/unistd.h>
#include <sys/mman.h>
#include "ud2.h"

struct table {
	uint64_t mask; /* capacity - 1 */
	uint64_t used;
	struct sysi_ud2_site e[];
};

static struct table *tab;
static unsigned char *chunk;  /* current gadget chunk (RW until sealed) */
static uint64_t chunk_used;
#define CHUNK_SIZE 65536

/* populate: fault every page in now (one call), for memory that is all touched at once */
static void *pages(uint64_t n, int populate)
{
	long p = sysi_ud2_api->syscall6(__NR_mmap, 0, (long)((n + 4095) & ~4095UL),
					PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
	return p < 0 && p > -4096 ? 0 : (void *)p;
}

static uint64_t hash(uintptr_t a)
{
	return (a * 0x9e3779b97f4a7c15ULL) >> 17;
}

static void put(struct table *t, const struct sysi_ud2_site *s)
{
	uint64_t i = hash(s->addr) & t->mask;
	while (t->e[i].addr && t->e[i].addr != s->addr)
		i = (i + 1) & t->mask;
	if (!t->e[i].addr)
		t->used++;
	t->e[i].gadget = s->gadget;
	t->e[i].variant = s->variant;
	__atomic_store_n(&t->e[i].addr, s->addr, __ATOMIC_RELEASE); /* readers see complete entries */
}

/*
 * The first table has 2048 slots: 1024 sites before it grows (libc alone has ~530, ld.so ~50),
 * so a typical start-up fills one table instead of filling one and copying it into the next.
 * Hashing spreads the entries over every page of a table, and the lookup before each insert
 * reads a page before it is written (two faults per page on demand): a table is faulted in
 * whole when it is made (MAP_POPULATE, one call).
 */
#define TABLE_FIRST 2048

static int grow(void)
{
	uint64_t cap = tab ? (tab->mask + 1) * 2 : TABLE_FIRST;
	struct table *n = pages(sizeof *n + cap * sizeof n->e[0], 1);
	if (!n)
		return -1;
	n->mask = cap - 1;
	if (tab)
		for (uint64_t i = 0; i <= tab->mask; i++)
			if (tab->e[i].addr)
				put(n, &tab->e[i]);
	__atomic_store_n(&tab, n, __ATOMIC_RELEASE);
	return 0;
}

static void seal_chunk(void)
{
	if (chunk) {
		sysi_ud2_api->syscall6(__NR_mprotect, (long)chunk, CHUNK_SIZE, PROT_READ | PROT_EXEC,
				       0, 0, 0);
		chunk = 0;
	}
}

static uintptr_t new_gadget(uintptr_t site)
{
	unsigned char *g;
	uint64_t next = site + 2;
	if (!chunk || chunk_used + SYSI_UD2_GADGET_SIZE > CHUNK_SIZE) {
		seal_chunk();
		chunk = pages(CHUNK_SIZE, 0);
		chunk_used = 0;
		if (!chunk)
			return 0;
	}
	g = chunk + chunk_used;
	chunk_used += SYSI_UD2_GADGET_SIZE;
	g[0] = 0x0f; /* syscall */
	g[1] = 0x05;
	g[2] = 0xff; /* jmp *0(%rip) */
	g[3] = 0x25;
	g[4] = g[5] = g[6] = g[7] = 0;
	for (int i = 0; i < 8; i++) /* .quad site + 2 */
		g[8 + i] = (unsigned char)(next >> (8 * i));
	return (uintptr_t)g;
}

int sysi_ud2_add_site(uintptr_t addr, uint32_t variant)
{
	struct sysi_ud2_site s = { .addr = addr, .variant = variant };
	const struct sysi_ud2_site *old = sysi_ud2_find(addr);
	if (old && old->variant == variant)
		return 0; /* re-planned (module loaded again at the same place) */
	if ((!tab || (tab->used + 1) * 2 > tab->mask + 1) && grow() < 0)
		return -1;
	s.gadget = new_gadget(addr);
	if (!s.gadget)
		return -1;
	put(tab, &s);
	return 0;
}

const struct sysi_ud2_site *sysi_ud2_find(uintptr_t addr)
{
	struct table *t = __atomic_load_n(&tab, __ATOMIC_ACQUIRE);
	uint64_t i;
	if (!t)
		return 0;
	for (i = hash(addr) & t->mask;; i = (i + 1) & t->mask) {
		uintptr_t a = __atomic_load_n(&t->e[i].addr, __ATOMIC_ACQUIRE);
		if (!a)
			return 0;
		if (a == addr)
			return &t->e[i];
	}
	return 0;
}

void sysi_ud2_seal(void)
{
	seal_chunk();
}
