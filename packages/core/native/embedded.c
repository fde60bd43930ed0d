/*
 * embedded.c — a program written by `sysi patch` carries its runtime settings and plans in a
 * PT_NOTE (owner "SYSI", type NT_SYSI_PATCH; the descriptor's layout is in @sysi/core's
 * src/patch/embed.ts). The settings take precedence over the environment (sysi_getenv), and a
 * module's plan is looked up there before SYSI_PLAN_DIR (modules.c). The note is found once,
 * in the main program's program headers, the first time either is asked for.
 */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include <errno.h>
#include <asm/unistd.h>
#include <link.h>
#include <sys/mman.h>
#include "internal.h"

#define NT_SYSI_PATCH 0x53595349u
#define EMBED_MAGIC "SYSIPAT"

struct embed_header {
	char magic[8];        /* "SYSIPAT\0" */
	uint32_t version;     /* 1 */
	uint32_t config_size; /* bytes of "NAME=value\0" strings, padded to 8 */
	uint32_t nplans;      /* plan records that follow the config */
	uint32_t reserved;    /* 0 */
	uint64_t total_size;  /* of the descriptor */
};

struct embed_plan {
	uint32_t key_size;  /* the key and its NUL, padded to 8 */
	uint32_t reserved;  /* 0 */
	uint64_t plan_size; /* the plan follows the key, padded to 8 */
};

static const unsigned char *desc; /* the descriptor, or 0 */
static uint64_t desc_size;
static int looked;

static void scan_notes(const unsigned char *p, const unsigned char *end)
{
	while (p + 12 <= end) {
		uint32_t namesz = *(const uint32_t *)p, descsz = *(const uint32_t *)(p + 4);
		uint32_t type = *(const uint32_t *)(p + 8);
		const unsigned char *name = p + 12, *d = name + ((namesz + 3) & ~3u);
		if (namesz > 64 || d > end || descsz > (uint64_t)(end - d))
			return;
		if (type == NT_SYSI_PATCH && namesz == 5 && !memcmp(name, "SYSI", 5)) {
			desc = d;
			desc_size = descsz;
			return;
		}
		p = d + ((descsz + 3) & ~3u);
	}
}

static int first_module(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	for (unsigned i = 0; i < info->dlpi_phnum && !desc; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_NOTE)
			scan_notes((const unsigned char *)(info->dlpi_addr + ph->p_vaddr),
				   (const unsigned char *)(info->dlpi_addr + ph->p_vaddr + ph->p_memsz));
	}
	return 1; /* the main program comes first: stop */
}

static const struct embed_header *header(void)
{
	const struct embed_header *h;
	if (!looked) {
		dl_iterate_phdr(first_module, 0);
		looked = 1;
	}
	h = (const void *)desc;
	if (!h || desc_size < sizeof *h || memcmp(h->magic, EMBED_MAGIC, 8) || h->version != 1 ||
	    h->total_size != desc_size || h->config_size > desc_size - sizeof *h)
		return 0;
	return h;
}

int sysi_embedded(void)
{
	return header() != 0;
}

const char *sysi_embedded_getenv(const char *name)
{
	const struct embed_header *h = header();
	const char *s, *end;
	size_t n = sysi_strlen(name);
	if (!h)
		return 0;
	s = (const char *)(h + 1);
	end = s + h->config_size;
	while (s < end && *s) {
		const char *e = s;
		while (e < end && *e)
			e++;
		if (e == end)
			return 0;
		if ((size_t)(e - s) > n && !sysi_strncmp(s, name, n) && s[n] == '=')
			return s + n + 1;
		s = e + 1;
	}
	return 0;
}

/*
 * The file holds each site's first option already written. Put the original bytes back (the
 * options' old bytes, wherever memory holds that option's new bytes), so that the plan is
 * validated and applied exactly as at load time: the strategies build their trampolines from
 * the original instructions, and a strategy that cannot start here falls through to the next.
 * Only the module's own executable segments are written, before any of its code has run.
 */
static void unpatch(const struct sysi_mod *m, const unsigned char *plan, uint64_t size)
{
	const struct sysi_plan_header *h = (const void *)plan;
	const struct sysi_plan_option *o;
	int opened[16] = { 0 };

	if (memcmp(h->magic, SYSI_PLAN_MAGIC, 8) || h->options_off > size || (h->options_off & 7) ||
	    h->noptions > (size - h->options_off) / sizeof *o)
		return;
	o = (const void *)(plan + h->options_off);
	for (uint32_t i = 0; i < h->noptions; i++, o++) {
		uintptr_t a = m->bias + o->vaddr;
		unsigned k;
		if (o->len < 1 || o->len > 16 || a < m->bias)
			continue;
		for (k = 0; k < m->nsegs; k++)
			if ((m->segs[k].prot & PROT_EXEC) && a >= m->segs[k].lo && a + o->len <= m->segs[k].hi)
				break;
		if (k == m->nsegs || memcmp((const void *)a, o->new_bytes, o->len))
			continue;
		if (!opened[k]) {
			uintptr_t lo = m->segs[k].lo & ~4095ul, hi = (m->segs[k].hi + 4095) & ~4095ul;
			if (raw3(__NR_mprotect, lo, hi - lo, PROT_READ | PROT_WRITE | PROT_EXEC) < 0 &&
			    raw3(__NR_mprotect, lo, hi - lo, PROT_READ | PROT_WRITE) < 0)
				continue;
			opened[k] = 1;
		}
		memcpy((void *)a, o->old_bytes, o->len);
	}
	for (unsigned k = 0; k < m->nsegs && k < 16; k++)
		if (opened[k]) {
			uintptr_t lo = m->segs[k].lo & ~4095ul, hi = (m->segs[k].hi + 4095) & ~4095ul;
			raw3(__NR_mprotect, lo, hi - lo, m->segs[k].prot);
		}
}

int sysi_embedded_plan(const struct sysi_mod *m, struct sysi_plan *p)
{
	const struct embed_header *h = header();
	const unsigned char *q, *end;
	if (!h)
		return -ENOENT;
	q = (const unsigned char *)(h + 1) + h->config_size;
	end = desc + desc_size;
	for (uint32_t i = 0; i < h->nplans; i++) {
		const struct embed_plan *r = (const void *)q;
		const char *k = (const char *)(r + 1);
		const unsigned char *plan;
		if ((uint64_t)(end - q) < sizeof *r || r->key_size > (uint64_t)(end - q) - sizeof *r ||
		    (r->key_size & 7) || !r->key_size)
			return -ENOENT;
		plan = (const unsigned char *)k + r->key_size;
		if (r->plan_size > (uint64_t)(end - plan))
			return -ENOENT;
		if (k[r->key_size - 1] == 0 && !sysi_strcmp(k, m->key)) {
			if (r->plan_size < sizeof(struct sysi_plan_header))
				return -EINVAL;
			if (!sysi_strcmp(m->name, "")) /* the patched program itself */
				unpatch(m, plan, r->plan_size);
			p->map = plan;
			p->size = r->plan_size;
			p->h = (const void *)plan;
			p->borrowed = 1;
			return 0;
		}
		q = plan + ((r->plan_size + 7) & ~7ul);
	}
	return -ENOENT;
}
