/* modkey.c — the module key (sysi.h MODULE KEY): build-id note in memory and file size, else a
 * path hash. */
#include <asm/unistd.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include "internal.h"

static int build_id(const Elf64_Phdr *ph, unsigned n, uintptr_t bias, char *key, size_t keysz)
{
	for (unsigned i = 0; i < n; i++) {
		const unsigned char *p, *end;
		if (ph[i].p_type != PT_NOTE)
			continue;
		p = (const unsigned char *)(bias + ph[i].p_vaddr);
		end = p + ph[i].p_memsz;
		while (p + sizeof(Elf64_Nhdr) <= end) {
			const Elf64_Nhdr *nh = (const void *)p;
			const unsigned char *name = p + sizeof *nh;
			const unsigned char *desc = name + ((nh->n_namesz + 3) & ~3u);
			const unsigned char *next = desc + ((nh->n_descsz + 3) & ~3u);
			if (next > end || next < p)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    !memcmp(name, "GNU", 4) && nh->n_descsz > 0 &&
			    nh->n_descsz * 2 < keysz) {
				for (unsigned j = 0; j < nh->n_descsz; j++) {
					key[2 * j] = "0123456789abcdef"[desc[j] >> 4];
					key[2 * j + 1] = "0123456789abcdef"[desc[j] & 15];
				}
				key[2 * nh->n_descsz] = 0;
				return 0;
			}
			p = next;
		}
	}
	return -1;
}

/* The absolute real path of module `name` ("" = the main program) into path; fd or -errno. */
static long real_path(const char *name, char *path, size_t pathsz)
{
	char proc[40] = "/proc/self/fd/", *p;
	long fd, n;
	fd = raw3(__NR_open, *name ? name : "/proc/self/exe", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	p = sysi_fmt_dec(proc + 14, fd);
	(void)p;
	n = raw3(__NR_readlink, proc, path, pathsz - 1);
	if (n < 0) {
		raw1(__NR_close, fd);
		return n;
	}
	path[n] = 0;
	return fd;
}

/* The absolute real path of module `name` ("" = the main program) into path; 0 or -1. */
int sysi_module_path(const char *name, char *path, size_t pathsz)
{
	long fd = real_path(name, path, pathsz);
	if (fd < 0) {
		path[0] = 0;
		return -1;
	}
	raw1(__NR_close, fd);
	return 0;
}

/*
 * Fills key and *size; 0 or -1. The module file is opened for its size (and the key names the
 * size: a stripped copy shares the build-id). With a build-id its path, wanted only for the
 * plan server and diagnostics, is left empty (sysi_module_path fills it on demand); without
 * one, path is filled too, as the key is a hash of it.
 */
int sysi_module_key(const void *phdrs, unsigned nphdr, uintptr_t bias, const char *name,
		    char *key, size_t keysz, char *path, size_t pathsz, uint64_t *size)
{
	struct stat st;
	char buf[4200], *b;
	uint64_t h = 0xcbf29ce484222325ULL;
	long fd;
	int bid;

	path[0] = 0;
	if (keysz < 40)
		return -1;
	/* room for "-" and the size's 20 digits after the build-id */
	bid = build_id(phdrs, nphdr, bias, key, keysz - 21) == 0;
	if (bid)
		fd = raw3(__NR_open, *name ? name : "/proc/self/exe", O_RDONLY | O_CLOEXEC, 0);
	else
		fd = real_path(name, path, pathsz);
	if (fd < 0)
		return -1;
	if (raw2(__NR_fstat, fd, &st) < 0 || sysi_strlen(path) > 4096) {
		raw1(__NR_close, fd);
		path[0] = 0;
		return -1;
	}
	raw1(__NR_close, fd);
	*size = (uint64_t)st.st_size;
	if (bid) {
		b = key + sysi_strlen(key);
		*b++ = '-';
		*sysi_fmt_udec(b, (unsigned long)st.st_size) = 0;
		return 0;
	}
	b = sysi_stpcpy(buf, path);
	*b++ = '\n';
	b = sysi_fmt_dec(b, st.st_size);
	*b++ = '\n';
	b = sysi_fmt_dec(b, st.st_mtime);
	for (char *q = buf; q < b; q++) {
		h ^= (unsigned char)*q;
		h *= 0x100000001b3ULL;
	}
	key[0] = 'p';
	for (int i = 0; i < 16; i++)
		key[1 + i] = "0123456789abcdef"[(h >> (60 - 4 * i)) & 15];
	key[17] = 0;
	return 0;
}
