/*
 * patch.c — applying one module's validated plan: per site the first option whose strategy
 * initialised, whose old bytes match memory and whose prepare_site accepts; trampolines first.
 * The module's executable segments are made writable once per batch (RWX, so other threads
 * keep running their code) and get their original protections back afterwards.
 */
#include <asm/unistd.h>
#include <errno.h>
#include <sys/mman.h>
#include "internal.h"

#define MAX_PLAN_STRATEGIES 64

struct batch {
	const struct sysi_mod *m;
	int opened[16]; /* segment made writable */
};

static uintptr_t page_down(uintptr_t a)
{
	return a & ~(uintptr_t)4095;
}

static uintptr_t page_up(uintptr_t a)
{
	return (a + 4095) & ~(uintptr_t)4095;
}

static int open_for_write(struct batch *b, uintptr_t a, unsigned len)
{
	const struct sysi_mod *m = b->m;
	for (unsigned i = 0; i < m->nsegs; i++) {
		const struct sysi_seg *s = &m->segs[i];
		long r;
		if (!(s->prot & PROT_EXEC) || a < s->lo || a + len > s->hi)
			continue;
		if (b->opened[i])
			return 0;
		r = raw3(__NR_mprotect, page_down(s->lo), page_up(s->hi) - page_down(s->lo),
			 s->prot | PROT_WRITE | PROT_EXEC);
		if (r < 0)
			r = raw3(__NR_mprotect, page_down(s->lo), page_up(s->hi) - page_down(s->lo),
				 PROT_READ | PROT_WRITE);
		if (r < 0)
			return (int)r;
		b->opened[i] = 1;
		return 0;
	}
	return -EFAULT;
}

static void close_batch(struct batch *b)
{
	for (unsigned i = 0; i < b->m->nsegs; i++)
		if (b->opened[i]) {
			const struct sysi_seg *s = &b->m->segs[i];
			raw3(__NR_mprotect, page_down(s->lo), page_up(s->hi) - page_down(s->lo),
			     s->prot);
		}
}

/*
 * Write len bytes so that no thread executes a torn instruction: a patch inside one aligned
 * 8-byte word is one atomic compare-and-swap. Longer or word-crossing patches are written byte
 * by byte from the first byte (safe for the trap strategies, whose first new byte traps on its
 * own; multi-byte rewrites of other strategies are only safe before threads start).
 */
static void write_patch(unsigned char *a, const unsigned char *nb, unsigned len)
{
	uintptr_t w = (uintptr_t)a & ~(uintptr_t)7;
	if ((uintptr_t)a + len <= w + 8) {
		uint64_t *wp = (uint64_t *)w;
		uint64_t old = __atomic_load_n(wp, __ATOMIC_RELAXED), nv;
		do {
			nv = old;
			memcpy((unsigned char *)&nv + ((uintptr_t)a - w), nb, len);
		} while (!__atomic_compare_exchange_n(wp, &old, nv, 0, __ATOMIC_SEQ_CST,
						      __ATOMIC_RELAXED));
		return;
	}
	for (unsigned i = 0; i < len; i++)
		__atomic_store_n(a + i, nb[i], __ATOMIC_SEQ_CST);
}

static void strategy_stat(int rt, int what)
{
	struct sysi_stats_strategy *s;
	if (!sysi_stats || rt < 0 || sysi_rts[rt].stats_slot < 0)
		return;
	s = &sysi_stats->strategies[sysi_rts[rt].stats_slot];
	if (what == 0)
		__atomic_fetch_add(&s->patched, 1, __ATOMIC_RELAXED);
	else if (what == 1)
		__atomic_fetch_add(&s->fell_through, 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&s->mismatched, 1, __ATOMIC_RELAXED);
}

/* Map the plan's trampolines; clear ok[] for strategies whose trampolines cannot be placed. */
static void map_tramps(const struct sysi_mod *m, const struct sysi_plan *p, const int *rt, int *ok)
{
	uintptr_t *pages;
	unsigned npages = 0, cap = p->h->ntrampolines * 2 + 2;
	if (!p->h->ntrampolines)
		return;
	pages = sysi_map_pages(cap * sizeof *pages);
	if (!pages) {
		for (uint32_t i = 0; i < p->h->nstrategies; i++)
			ok[i] = 0;
		return;
	}
	for (uint32_t i = 0; i < p->h->ntrampolines; i++) {
		const struct sysi_plan_tramp *t = &p->tramps[i];
		uintptr_t a = m->bias + t->vaddr;
		int fail = t->vaddr == 0 || rt[t->strategy] < 0 || a < m->bias;
		for (uintptr_t pg = page_down(a); !fail && pg < a + t->size; pg += 4096) {
			unsigned k;
			long r;
			for (k = 0; k < npages && pages[k] != pg; k++)
				;
			if (k < npages)
				continue;
			if (npages == cap) {
				fail = 1;
				break;
			}
			r = raw6(__NR_mmap, pg, 4096, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (r != (long)pg) {
				if (r >= 0 || r < -4095)
					raw2(__NR_munmap, r, 4096);
				fail = 1;
				break;
			}
			pages[npages++] = pg;
		}
		if (fail) {
			ok[t->strategy] = 0;
			continue;
		}
		memcpy((void *)a, p->map + p->h->blob_off + t->blob_off, t->size);
	}
	for (unsigned k = 0; k < npages; k++)
		raw3(__NR_mprotect, pages[k], 4096, PROT_READ | PROT_EXEC);
	sysi_unmap(pages, cap * sizeof *pages);
}

void sysi_apply_plan(const struct sysi_mod *m, struct sysi_plan *p, int threaded, struct sysi_left *left)
{
	const struct sysi_plan_header *h = p->h;
	int rt[MAX_PLAN_STRATEGIES], ok[MAX_PLAN_STRATEGIES];
	struct batch b = { .m = m };
	unsigned patched = 0;

	(void)threaded;
	if (h->nstrategies > MAX_PLAN_STRATEGIES)
		return;
	for (uint32_t i = 0; i < h->nstrategies; i++) {
		rt[i] = sysi_runtime_by_name(p->strings + p->strategies[i].name);
		ok[i] = rt[i] >= 0;
	}
	map_tramps(m, p, rt, ok);
	for (uint32_t i = 0; i < h->nsites; i++) {
		const struct sysi_plan_site *s = &p->sites[i];
		int done = 0;
		for (uint32_t j = 0; j < s->noptions && !done; j++) {
			const struct sysi_plan_option *o = &p->options[s->first_option + j];
			unsigned char *a = (unsigned char *)(m->bias + o->vaddr);
			struct sysi_site site;
			int r = rt[o->strategy];
			if (!ok[o->strategy]) {
				strategy_stat(r, 1);
				continue;
			}
			if (memcmp(a, o->old_bytes, o->len)) {
				strategy_stat(r, 2);
				continue;
			}
			site.addr = m->bias + s->vaddr;
			site.patch_addr = (uintptr_t)a;
			site.patch_len = o->len;
			site.nr = s->nr;
			site.aux[0] = o->aux[0];
			site.aux[1] = o->aux[1];
			site.strategy = (uint32_t)r;
			site.module = 0;
			site.bytes = o->new_bytes;
			sysi_rts[r].busy = 1;
			if (sysi_rts[r].ops->prepare_site(&site) != 0) {
				strategy_stat(r, 1);
				continue;
			}
			if (open_for_write(&b, (uintptr_t)a, o->len) < 0) {
				strategy_stat(r, 1);
				continue;
			}
			write_patch(a, o->new_bytes, o->len);
			strategy_stat(r, 0);
			patched++;
			done = 1;
		}
		if (!done && sysi_stats)
			sysi_stat_add(sysi_stats->sites_unpatched, 1);
		if (!done && s->noptions)
			left->fell++;
		else if (!done && !(s->flags & SYSI_SITE_UNCERTAIN)) /* not known to be code */
			left->refused++;
	}
	close_batch(&b);
	if (sysi_debug_on) {
		char msg[64];
		*sysi_fmt_udec(msg, patched) = 0;
		sysi_debugf2("sites patched in this module: ", msg);
	}
}
