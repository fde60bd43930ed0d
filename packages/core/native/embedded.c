/*
 * embedded.c — a program written by `sysi patch` carries its runtime settings and plans in a
 * PT_NOTE (owner "SYSI", type NT_SYSI_PATCH; the descriptor's layout is in @sysi/core's
 * src/patch/embed.ts). The settings take precedence over the environment (sysi_getenv), and a
 * module's plan is looked up there before SYSI_PLAN_DIR (modules.c). The notes are found once,
 * in the program headers of the modules loaded at that time, the first time either is asked for.
 */
#define _GNU_SOURCE /* dl_iterate_phdr, RTLD_DEFAULT */
#include <dlfcn.h>
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

/*
 * Descriptors found at the first lookup: [0] the main program's (or 0), then those of patched
 * shared libraries loaded with it (`sysi patch` on a library keeps its code as it was and
 * carries its own plan, and its dependencies', in its note). A library's settings are used only
 * when neither the main program nor the environment (sysi run, sysi env) gives SYSI_RUNTIMES,
 * and every library's must then be the same (else one line and exit: the process has one chain
 * and one hook). Plans are looked up in all of them.
 */
#define MAX_DESCS 16
static const unsigned char *descs[MAX_DESCS];
static uint64_t desc_sizes[MAX_DESCS];
static const char *desc_names[MAX_DESCS];
static unsigned ndescs = 1;
static int usable[MAX_DESCS]; /* a library's plans are used: its settings are those in force */
static const unsigned char *desc; /* the descriptor whose settings are in force, or 0 */
static uint64_t desc_size;
static int looked;
static int from_library; /* the settings in force are a patched library's */

static void scan_notes(const unsigned char *p, const unsigned char *end, unsigned slot)
{
	while (p + 12 <= end) {
		uint32_t namesz = *(const uint32_t *)p, descsz = *(const uint32_t *)(p + 4);
		uint32_t type = *(const uint32_t *)(p + 8);
		const unsigned char *name = p + 12, *d = name + ((namesz + 3) & ~3u);
		if (namesz > 64 || d > end || descsz > (uint64_t)(end - d))
			return;
		if (type == NT_SYSI_PATCH && namesz == 5 && !memcmp(name, "SYSI", 5)) {
			descs[slot] = d;
			desc_sizes[slot] = descsz;
			return;
		}
		p = d + ((descsz + 3) & ~3u);
	}
}

static int each_module(struct dl_phdr_info *info, size_t size, void *data)
{
	int *first = data;
	unsigned slot = *first ? 0 : ndescs;
	(void)size;
	*first = 0;
	if (slot == MAX_DESCS)
		return 1;
	for (unsigned i = 0; i < info->dlpi_phnum && !descs[slot]; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_NOTE)
			scan_notes((const unsigned char *)(info->dlpi_addr + ph->p_vaddr),
				   (const unsigned char *)(info->dlpi_addr + ph->p_vaddr + ph->p_memsz), slot);
	}
	if (slot && descs[slot]) {
		desc_names[slot] = info->dlpi_name ? info->dlpi_name : "";
		ndescs++;
	}
	return 0;
}

static int valid(const unsigned char *d, uint64_t size)
{
	const struct embed_header *h = (const void *)d;
	return h && size >= sizeof *h && !memcmp(h->magic, EMBED_MAGIC, 8) && h->version == 1 &&
	       h->total_size == size && h->config_size <= size - sizeof *h;
}

/* The settings of the first patched library, which every other one must share. */
static void library_settings(void)
{
	unsigned i, first = 0;
	for (i = 1; i < ndescs; i++) {
		const struct embed_header *h = (const void *)descs[i];
		if (!valid(descs[i], desc_sizes[i]))
			continue;
		if (!first) {
			first = i;
			continue;
		}
		const struct embed_header *f = (const void *)descs[first];
		if (h->config_size != f->config_size || memcmp(h + 1, f + 1, h->config_size)) {
			static char msg[512];
			const char *a = "patched libraries with different settings (chain, hook or filter): ";
			size_t la = sysi_strlen(a), lb = sysi_strlen(desc_names[i]);
			if (la + lb >= sizeof msg)
				lb = sizeof msg - la - 1;
			memcpy(msg, a, la);
			memcpy(msg + la, desc_names[i], lb);
			msg[la + lb] = 0;
			sysi_die(msg);
		}
	}
	if (first) {
		desc = descs[first];
		desc_size = desc_sizes[first];
		from_library = 1;
	}
}

static int same_settings(const unsigned char *a, uint64_t asz, const unsigned char *b, uint64_t bsz)
{
	const struct embed_header *x = (const void *)a, *y = (const void *)b;
	return valid(a, asz) && valid(b, bsz) && x->config_size == y->config_size &&
	       !memcmp(x + 1, y + 1, x->config_size);
}

static const struct embed_header *header(void)
{
	if (!looked) {
		int first = 1;
		looked = 1;
		dl_iterate_phdr(each_module, &first);
		if (descs[0]) {
			desc = descs[0];
			desc_size = desc_sizes[0];
		} else if (!sysi_getenv("SYSI_RUNTIMES")) { /* looked: the environment's only */
			library_settings();
		}
		/* under the environment's settings (sysi run) libraries are planned as any other */
		for (unsigned i = 1; i < ndescs; i++)
			usable[i] = desc && same_settings(descs[i], desc_sizes[i], desc, desc_size);
		usable[0] = 1;
	}
	return valid(desc, desc_size) ? (const void *)desc : 0;
}

/* Threads of this process (the entries of /proc/self/task), or -1. */
static int count_threads(void)
{
	char buf[1024];
	int n = 0;
	long fd = raw3(__NR_openat, -100 /* AT_FDCWD */, "/proc/self/task", 0200000 /* O_DIRECTORY */), r;
	if (fd < 0)
		return -1;
	while ((r = raw3(__NR_getdents64, fd, buf, sizeof buf)) > 0)
		for (long o = 0; o < r;) {
			const unsigned char *e = (const unsigned char *)buf + o;
			unsigned short reclen = *(const unsigned short *)(e + 16);
			if (e[19] != '.')
				n++;
			o += reclen;
		}
	raw1(__NR_close, fd);
	return r < 0 ? -1 : n;
}

/*
 * Should this copy of the runtime stay off? Yes when another copy of libsysi comes first in the
 * global scope (a patched library's libsysi and a patched program's, or sysi run's, from
 * another build: the first one runs and applies every note's plans), and when the settings come
 * from a patched library loaded while other threads run (dlopen in a threaded program: their
 * signal masks and the code they are in cannot be checked). A library's code in the file is
 * its original code, so staying off leaves it correct, not instrumented.
 */
const char *sysi_embedded_off(void)
{
	void *first = dlsym(RTLD_DEFAULT, "sysi_dispatch");
	Dl_info a, b;
	if (first && dladdr(first, &a) && dladdr((void *)count_threads, &b) && a.dli_fbase != b.dli_fbase)
		return "another copy of the sysi runtime is loaded: this one stays off";
	if (header() && from_library && count_threads() != 1) {
		static const char msg[] = "sysi: a patched library was loaded into a running threaded "
					  "program: nothing is instrumented (docs/patch.md)\n";
		raw3(__NR_write, 2, msg, sizeof msg - 1); /* coverage lost: said, never silent */
		return "patched library loaded after threads started";
	}
	return 0;
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

static int plan_in(const unsigned char *d, uint64_t dsize, const struct sysi_mod *m, struct sysi_plan *p)
{
	const struct embed_header *h = (const void *)d;
	const unsigned char *q, *end;
	if (!valid(d, dsize))
		return -ENOENT;
	q = (const unsigned char *)(h + 1) + h->config_size;
	end = d + dsize;
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
			if (!sysi_strcmp(m->name, "") && d == descs[0]) /* the patched program itself */
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

int sysi_embedded_plan(const struct sysi_mod *m, struct sysi_plan *p)
{
	header();
	for (unsigned i = 0; i < ndescs; i++) {
		int r = descs[i] && usable[i] ? plan_in(descs[i], desc_sizes[i], m, p) : -ENOENT;
		if (r != -ENOENT)
			return r;
	}
	return -ENOENT;
}
