/*
 * plan.c — finding, mapping and validating a binary plan (sysi.h SYSI PLAN FORMAT): owner and
 * mode, checksum, the module's identity (build-id, file size, the bytes the options expect),
 * every offset and count. A plan that fails any check is rejected whole: never partially applied.
 */
#include <asm/unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "internal.h"

/* A regular file owned by the effective user or root, not writable by group or others. */
static int trusted(const struct stat *st)
{
	long euid = raw0(__NR_geteuid);
	return S_ISREG(st->st_mode) && (st->st_uid == 0 || (long)st->st_uid == euid) &&
	       !(st->st_mode & (S_IWGRP | S_IWOTH));
}

int sysi_plan_open(const char *dir, const char *key, struct sysi_plan *p)
{
	char path[4200], *e;
	struct stat st;
	long fd, m;

	if (sysi_strlen(dir) + sysi_strlen(key) + 8 > sizeof path)
		return -ENOENT;
	e = sysi_stpcpy(path, dir);
	*e++ = '/';
	e = sysi_stpcpy(e, key);
	sysi_stpcpy(e, ".plan");
	fd = raw3(__NR_open, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd == -ELOOP)
		return -EACCES;
	if (fd < 0)
		return -ENOENT;
	if (raw2(__NR_fstat, fd, &st) < 0 || !trusted(&st)) {
		raw1(__NR_close, fd);
		return -EACCES;
	}
	if (st.st_size < (long)sizeof(struct sysi_plan_header)) {
		raw1(__NR_close, fd);
		return -EINVAL;
	}
	m = raw6(__NR_mmap, 0, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	raw1(__NR_close, fd);
	if (m < 0 && m > -4096)
		return -EINVAL;
	p->map = (const unsigned char *)m;
	p->size = (size_t)st.st_size;
	p->h = (const void *)m;
	return 0;
}

void sysi_plan_close(struct sysi_plan *p)
{
	if (p->map && !p->borrowed)
		raw2(__NR_munmap, p->map, p->size);
	p->map = 0;
}

/* [off, off + n*size) inside [0, total) and off 8-aligned */
static int table_ok(uint64_t off, uint64_t n, uint64_t size, uint64_t total)
{
	if (off & 7 || off > total)
		return 0;
	return n <= (total - off) / size;
}

static int string_ok(const struct sysi_plan *p, uint32_t off)
{
	const char *s = p->strings;
	if (off >= p->h->strings_size)
		return 0;
	for (uint64_t i = off; i < p->h->strings_size; i++)
		if (!s[i])
			return 1;
	return 0;
}

static int in_exec_segment(const struct sysi_mod *m, uint64_t vaddr, uint64_t len)
{
	uint64_t a = m->bias + vaddr;
	if (a < vaddr) /* wrapped */
		return 0;
	for (unsigned i = 0; i < m->nsegs; i++)
		if ((m->segs[i].prot & PROT_EXEC) && a >= m->segs[i].lo && a + len <= m->segs[i].hi)
			return 1;
	return 0;
}

/* The header's build-id is the one the module key starts with ("<hex>-<size>"), or none. */
static int build_id_ok(const struct sysi_plan_header *h, const char *key)
{
	const char *x = "0123456789abcdef";
	if (key[0] == 'p' && key[17] == 0)
		return h->build_id_len == 0;
	for (uint32_t i = 0; i < h->build_id_len; i++)
		if (key[2 * i] != x[h->build_id[i] >> 4] || key[2 * i + 1] != x[h->build_id[i] & 15])
			return 0;
	return h->build_id_len > 0 && key[2 * h->build_id_len] == '-';
}

/* module_hash: the bytes the options expect, hashed from the module's memory (unpatched). */
static int module_bytes_ok(const struct sysi_plan *p, const struct sysi_mod *m)
{
	struct sysi_xxh64 x;
	sysi_xxh64_init(&x);
	for (uint32_t i = 0; i < p->h->noptions; i++)
		sysi_xxh64_update(&x, (const void *)(m->bias + p->options[i].vaddr), p->options[i].len);
	return sysi_xxh64_final(&x) == p->h->module_hash;
}

int sysi_plan_validate(struct sysi_plan *p, const struct sysi_mod *m)
{
	const struct sysi_plan_header *h = p->h;
	uint64_t sz = p->size;

	if (memcmp(h->magic, SYSI_PLAN_MAGIC, 8) || h->version != SYSI_PLAN_VERSION ||
	    h->header_size != sizeof *h || h->file_size != sz)
		return -EINVAL;
	/* every byte after the checksum field, before any other field is trusted */
	if (sysi_xxh64(p->map + 24, sz - 24) != h->checksum)
		return -EINVAL;
	if (h->reserved != 0 || h->build_id_len > sizeof h->build_id || h->nstrategies > 64 ||
	    h->module_size != m->file_size || !build_id_ok(h, m->key))
		return -EINVAL;
	if (!table_ok(h->strategies_off, h->nstrategies, sizeof *p->strategies, sz) ||
	    !table_ok(h->sites_off, h->nsites, sizeof *p->sites, sz) ||
	    !table_ok(h->options_off, h->noptions, sizeof *p->options, sz) ||
	    !table_ok(h->tramps_off, h->ntrampolines, sizeof *p->tramps, sz) ||
	    h->strings_off > sz || h->strings_size > sz - h->strings_off ||
	    h->blob_off > sz || h->blob_size > sz - h->blob_off)
		return -EINVAL;
	p->strategies = (const void *)(p->map + h->strategies_off);
	p->sites = (const void *)(p->map + h->sites_off);
	p->options = (const void *)(p->map + h->options_off);
	p->tramps = (const void *)(p->map + h->tramps_off);
	p->strings = (const char *)(p->map + h->strings_off);
	if (!string_ok(p, h->module_path) || !string_ok(p, h->chain))
		return -EINVAL;
	for (uint32_t i = 0; i < h->nstrategies; i++)
		if (!string_ok(p, p->strategies[i].name))
			return -EINVAL;
	for (uint32_t i = 0; i < h->noptions; i++) {
		const struct sysi_plan_option *o = &p->options[i];
		if (o->strategy >= h->nstrategies || o->len < 1 || o->len > 16 ||
		    !in_exec_segment(m, o->vaddr, o->len))
			return -EINVAL;
	}
	for (uint32_t i = 0; i < h->nsites; i++) {
		const struct sysi_plan_site *s = &p->sites[i];
		if (s->first_option > h->noptions || s->noptions > h->noptions - s->first_option)
			return -EINVAL;
		if (i && s->vaddr <= p->sites[i - 1].vaddr)
			return -EINVAL;
		for (uint32_t j = 0; j < s->noptions; j++) {
			const struct sysi_plan_option *o = &p->options[s->first_option + j];
			if (s->vaddr < o->vaddr || s->vaddr + 2 > o->vaddr + o->len)
				return -EINVAL;
		}
	}
	for (uint32_t i = 0; i < h->ntrampolines; i++) {
		const struct sysi_plan_tramp *t = &p->tramps[i];
		if (t->strategy >= h->nstrategies || t->blob_off > h->blob_size ||
		    t->size > h->blob_size - t->blob_off || !string_ok(p, t->kind))
			return -EINVAL;
	}
	/* last: every option lies in an executable segment (checked above) */
	if (!module_bytes_ok(p, m))
		return -EINVAL;
	return 0;
}

static int memchr_nl(const char *s, long n)
{
	for (long i = 0; i < n; i++)
		if (s[i] == '\n')
			return 1;
	return 0;
}

/* Ask the plan server for `path`'s plan: 0 when it says the plan file now exists. */
int sysi_plan_ask_server(const char *sock, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[4200], resp[256], *e;
	long fd, n, got = 0;

	if (sysi_strlen(sock) >= sizeof sa.sun_path || sysi_strlen(path) + 8 > sizeof req)
		return -1;
	sysi_stpcpy(sa.sun_path, sock);
	fd = raw3(__NR_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (raw3(__NR_connect, fd, &sa, sizeof sa) < 0) {
		raw1(__NR_close, fd);
		return -1;
	}
	e = sysi_stpcpy(req, "PLAN ");
	e = sysi_stpcpy(e, path);
	*e++ = '\n';
	for (char *q = req; q < e; q += n) {
		n = raw3(__NR_write, fd, q, e - q);
		if (n == -EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			raw1(__NR_close, fd);
			return -1;
		}
	}
	while (got < (long)sizeof resp - 1) {
		n = raw3(__NR_read, fd, resp + got, sizeof resp - 1 - got);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
		if (memchr_nl(resp, got))
			break;
	}
	raw1(__NR_close, fd);
	resp[got] = 0;
	return got >= 3 && !sysi_strncmp(resp, "OK\n", 3) ? 0 : -1;
}
