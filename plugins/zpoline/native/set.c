/*
 * set.c — the return addresses (site + 2) of the patched sites, which the entry's check looks
 * up to tell a site's `call *%rax` from a NULL function-pointer call: an open-addressing hash
 * set (zpoline.h) sized to the sites, at most half full, so it takes 16-32 bytes per site
 * instead of an address-space bitmap.
 *
 * Concurrency. Additions run under libsysi's module lock (prepare_site, before the site's patch
 * is written); the entry blobs and zp_set_has read from any thread without a lock. A slot goes
 * from 0 to R in one aligned 8-byte store, so a reader sees either. A set that would pass half
 * full is replaced by one twice the size: filled first, then published, one aligned 8-byte store
 * into each entry copy's data word while the entry pages are briefly read-write-execute (threads
 * inside them keep running; libsysi patches module text the same way). The old set stays mapped:
 * a thread may still be probing it, and it holds every address added before the switch (a site
 * added later is patched after the switch, so its callers read the new word). The old sets
 * together are smaller than the current one.
 */
#include <stddef.h>
#include <stdint.h>
#include "zpoline.h"

enum {
	NR_mmap = 9, NR_mprotect = 10, NR_munmap = 11,
	PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20,
	ENOMEM = 12,
};

static const struct sysi_runtime_api *api;
static struct zp_set *cur;
static unsigned long used;

static int is_err(long r)
{
	return (unsigned long)r > -4096ul;
}

static uint64_t nslots(const struct zp_set *s)
{
	return s->mask8 / 8 + 1;
}

/*
 * Step (1): the home slot of r, as the entry computes it (lea, and, add): slot[r & (n - 1)].
 * Return addresses spread well in their low bits: measured on libc, ld.so and bun (1273 sites,
 * random load addresses), 0.32 extra probes per site on average, at most 7. A multiplicative
 * hash (imul) halved that but puts 2 more cycles of latency in every check.
 */
static uintptr_t *home(const struct zp_set *s, uintptr_t r)
{
	return (uintptr_t *)((char *)s->slot + (((uint64_t)r << 3) & s->mask8));
}

static long set_bytes(uint64_t n)
{
	unsigned long b = sizeof(struct zp_set) + (n + ZP_SET_TAIL + 1) * sizeof(uintptr_t);
	return (long)((b + ZP_PAGE - 1) & -(unsigned long)ZP_PAGE);
}

static struct zp_set *new_set(uint64_t n)
{
	long p = api->syscall6(NR_mmap, 0, set_bytes(n), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct zp_set *s;

	if (is_err(p))
		return 0;
	s = (struct zp_set *)p;
	s->mask8 = (n - 1) * 8;
	return s;
}

/* Put r into s: 1 added, 0 already there, -1 no free slot before the tail's end. */
static int put(struct zp_set *s, uintptr_t r)
{
	uintptr_t *p = home(s, r), *end = s->slot + nslots(s) + ZP_SET_TAIL;

	for (; p < end; p++) {
		if (*p == r)
			return 0;
		if (!*p) {
			__atomic_store_n(p, r, __ATOMIC_RELEASE);
			return 1;
		}
	}
	return -1;
}

/*
 * Each copy's words to s, _set before _mask: an entry reads _mask first, so it never pairs a
 * bigger mask with a smaller set (a read beyond it); the other mix finds nothing and the entry
 * asks zp_set_has. 0, or -1 when the entry pages cannot be made writable.
 */
static int publish(struct zp_set *s, const struct zp_publish *pub)
{
	int i, ok = 1;

	for (i = 0; i < pub->npages && ok; i++)
		ok = api->syscall6(NR_mprotect, (long)pub->page[i], ZP_PAGE,
				   PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0, 0) == 0;
	if (ok) {
		for (int w = 0; w < pub->nwords; w++)
			__atomic_store_n(pub->set[w], (uint64_t)(uintptr_t)s->slot, __ATOMIC_RELEASE);
		for (int w = 0; w < pub->nwords; w++)
			__atomic_store_n(pub->mask[w], s->mask8, __ATOMIC_RELEASE);
	}
	for (int k = 0; k < i; k++)
		api->syscall6(NR_mprotect, (long)pub->page[k], ZP_PAGE, PROT_READ | PROT_EXEC, 0, 0, 0);
	return ok ? 0 : -1;
}

/* A set of at least n slots holding cur's addresses and r, published; 0 or -1. */
static int grow(uint64_t n, uintptr_t r, const struct zp_publish *pub)
{
	for (;; n *= 2) {
		struct zp_set *s = new_set(n);
		int ok;

		if (!s)
			return -1;
		ok = put(s, r) > 0;
		for (uintptr_t *p = cur->slot, *e = cur->slot + nslots(cur) + ZP_SET_TAIL; ok && p < e; p++)
			ok = !*p || put(s, *p) >= 0;
		if (ok) {
			if (publish(s, pub) != 0)
				return -1;	/* s stays mapped: a copy may already point to it */
			__atomic_store_n(&cur, s, __ATOMIC_RELEASE);
			return 0;
		}
		/* a probe run longer than the tail (hardly ever at half load): twice the slots */
		api->syscall6(NR_munmap, (long)s, set_bytes(n), 0, 0, 0, 0);
	}
}

int zp_set_init(const struct sysi_runtime_api *a)
{
	api = a;
	cur = new_set(ZP_SET_FIRST);
	used = 0;
	return cur ? 0 : -ENOMEM;
}

struct zp_set *zp_set_current(void)
{
	return __atomic_load_n(&cur, __ATOMIC_ACQUIRE);
}

int zp_set_add(uintptr_t r, const struct zp_publish *pub)
{
	int k;

	if (2 * (used + 1) <= nslots(cur)) {
		k = put(cur, r);
		if (k >= 0) {
			used += (unsigned long)k;
			return 0;
		}
	} else if (zp_set_has(r)) {
		return 0;
	}
	if (grow(2 * nslots(cur), r, pub) != 0)
		return -1;
	used++;
	return 0;
}

int zp_set_has(uintptr_t r)
{
	const struct zp_set *s = zp_set_current();
	const uintptr_t *p, *end;
	uintptr_t v;

	if (!s || !r)
		return 0;
	end = s->slot + nslots(s) + ZP_SET_TAIL;
	for (p = home(s, r); p < end && (v = __atomic_load_n(p, __ATOMIC_ACQUIRE)); p++)
		if (v == r)
			return 1;
	return 0;
}
