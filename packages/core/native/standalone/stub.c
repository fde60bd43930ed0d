/*
 * stub.c — the start of a program written by `sysi patch --standalone` (docs/patch.md): OUT's
 * DT_PREINIT_ARRAY names sysi_stub_start, which ld.so calls with (argc, argv, envp) after every
 * DT_NEEDED is mapped and relocated and before any library's constructor. It
 *
 *   1. finds libc in ld.so's link map (OUT's DT_DEBUG holds &r_debug) and its dlopen;
 *   2. stops here, with the note's runtime paths switched off, when another sysi runtime is
 *      already loaded (sysi run preloads libsysi: that one runs and applies OUT's note);
 *   3. runs libc's initialisers with the program's (argc, argv, envp): libc's dlopen passes
 *      libc's own copies of them (set by that initialiser) to the constructors it runs, and it
 *      runs libc's, a dependency of libsysi not yet initialised, with them;
 *   4. writes each embedded library into a memfd, and each fd's path into the note's
 *      placeholders (the note is in OUT's writable segment; libsysi reads its settings there),
 *      and libsysi's into a hook library's DT_NEEDED (its sysi_syscall resolves in libsysi,
 *      which is not in the global scope);
 *   5. dlopen()s libsysi from its memfd (RTLD_LOCAL: a global object added while ld.so's
 *      start-up runs the constructors would grow the list it walks); libsysi's constructor runs
 *      inside and loads the strategy runtimes and the hook from their memfds, as from files;
 *   6. closes the memfds: no descriptor is left when the program's code runs. Through libc's
 *      close, patched by then: the start marker was made inside the dlopen, so these calls are
 *      the hook's to see, as strace -f sees them.
 *
 * Freestanding: no libc call before libc's initialisers, raw system calls (syscall.S), no
 * writable data of its own, no relocation (every address is PC-relative or from the header).
 */
#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include "stub.h"

#define NR_write 1
#define NR_close 3
#define NR_pwrite64 18
#define NR_exit_group 231
#define NR_memfd_create 319
#define MFD_CLOEXEC 1u
#define RTLD_NOW_ 2

long sysi_stub_syscall(long nr, long a, long b, long c);
long sysi_stub_syscall4(long nr, long a, long b, long c, long d);
extern const struct sysi_stub_header sysi_stub_header __attribute__((visibility("hidden")));

typedef void *(*dlopen_fn)(const char *, int);
typedef char *(*dlerror_fn)(void);
typedef void (*init_fn)(int, char **, char **);
typedef int (*close_fn)(int);

static size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static int seq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static void put(const char *s)
{
	sysi_stub_syscall(NR_write, 2, (long)s, (long)slen(s));
}

static __attribute__((noreturn)) void die(const char *what, const char *detail)
{
	put("sysi: error: ");
	put(what);
	if (detail) {
		put(": ");
		put(detail);
	}
	put("\n");
	for (;;)
		sysi_stub_syscall(NR_exit_group, 127, 0, 0);
}

/* A module's dynamic entries, its addresses made absolute (ld.so relocates most in place). */
struct dyn {
	uintptr_t bias;
	const uint32_t *gnu_hash;
	const Elf64_Sym *symtab;
	const char *strtab;
	const uint16_t *versym;
	const char *soname;
	uintptr_t init;
	const uintptr_t *init_array;
	size_t init_arraysz;
};

static uintptr_t abs_ptr(uintptr_t bias, uintptr_t p)
{
	return p < bias ? p + bias : p;
}

static void read_dyn(const struct link_map *l, struct dyn *d)
{
	uintptr_t soname = (uintptr_t)-1;
	*d = (struct dyn){ .bias = l->l_addr };
	for (const Elf64_Dyn *e = l->l_ld; e && e->d_tag != DT_NULL; e++) {
		uintptr_t p = abs_ptr(l->l_addr, e->d_un.d_ptr);
		switch (e->d_tag) {
		case DT_GNU_HASH: d->gnu_hash = (const void *)p; break;
		case DT_SYMTAB: d->symtab = (const void *)p; break;
		case DT_STRTAB: d->strtab = (const void *)p; break;
		case DT_VERSYM: d->versym = (const void *)p; break;
		case DT_SONAME: soname = e->d_un.d_val; break;
		case DT_INIT: d->init = p; break;
		case DT_INIT_ARRAY: d->init_array = (const void *)p; break;
		case DT_INIT_ARRAYSZ: d->init_arraysz = e->d_un.d_val; break;
		}
	}
	if (d->strtab && soname != (uintptr_t)-1)
		d->soname = d->strtab + soname;
}

/* The default version of a defined symbol (DT_GNU_HASH; a hidden version is not the default). */
static void *lookup(const struct dyn *d, const char *name)
{
	const uint32_t *h = d->gnu_hash, *buckets, *chain;
	uint32_t nb, symoff, hash = 5381, i;
	if (!h || !d->symtab || !d->strtab)
		return 0;
	for (const unsigned char *s = (const void *)name; *s; s++)
		hash = hash * 33 + *s;
	nb = h[0];
	symoff = h[1];
	buckets = (const uint32_t *)((const uint64_t *)(h + 4) + h[2]);
	chain = buckets + nb;
	if (!nb)
		return 0;
	for (i = buckets[hash % nb]; i >= symoff; i++) {
		uint32_t c = chain[i - symoff];
		const Elf64_Sym *s = &d->symtab[i];
		if ((c | 1) == (hash | 1) && s->st_shndx != SHN_UNDEF && seq(d->strtab + s->st_name, name) &&
		    (!d->versym || !(d->versym[i] & 0x8000)))
			return (void *)(d->bias + s->st_value);
		if (c & 1)
			break;
	}
	return 0;
}

/* Write n as the placeholder's decimal digits, right-aligned after '/' padding ("////////12"). */
static void fd_path(char *at, long n)
{
	int i = SYSI_STUB_FD_DIGITS;
	do {
		at[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n && i > 0);
	while (i > 0)
		at[--i] = '/';
}

__attribute__((section(".text.entry"), used)) void sysi_stub_start(int argc, char **argv, char **envp)
{
	const struct sysi_stub_header *h = &sysi_stub_header;
	const char *base = (const char *)h;
	const struct r_debug *r = *(struct r_debug *const *)(base + h->debug);
	const struct link_map *l;
	struct dyn libc = { 0 }, d;
	int have_libc = 0, other = 0;
	long fds[SYSI_STUB_MAX_LIBS];
	char path[14 + SYSI_STUB_FD_DIGITS + 1] = "/proc/self/fd/";
	dlopen_fn dl_open;
	void *handle;
	uint32_t i;

	if (h->version != SYSI_STUB_VERSION || h->nlibs < 1 || h->nlibs > SYSI_STUB_MAX_LIBS)
		die("the embedded runtime's header is damaged", 0);
	if (!r)
		die("no r_debug in DT_DEBUG: cannot find the loaded modules", 0);
	/* Step (1): libc (by soname), and any loaded object defining sysi_dispatch */
	for (l = r->r_map ? r->r_map->l_next : 0; l; l = l->l_next) {
		read_dyn(l, &d);
		if (d.soname && seq(d.soname, "libc.so.6")) {
			libc = d;
			have_libc = 1;
		}
		if (lookup(&d, "sysi_dispatch"))
			other = 1;
	}
	/* Step (2): the other runtime reads OUT's note; its paths name no file: take the environment's */
	if (other) {
		for (i = 0; i < h->nlibs; i++)
			if (h->libs[i].key)
				*(char *)(base + h->libs[i].key) = 'X'; /* SYSI_RUNTIMES= -> XYSI_RUNTIMES= */
		return;
	}
	if (!have_libc)
		die("the embedded runtime needs glibc (libc.so.6 is not loaded)", 0);
	dl_open = (dlopen_fn)lookup(&libc, "dlopen");
	if (!dl_open)
		die("libc.so.6 has no dlopen (glibc 2.34 or later is needed)", 0);
	/* Step (3): libc's initialisers, as ld.so would run them next (they only store their arguments) */
	if (libc.init)
		((init_fn)libc.init)(argc, argv, envp);
	for (i = 0; i < libc.init_arraysz / sizeof(uintptr_t); i++)
		((init_fn)libc.init_array[i])(argc, argv, envp);
	/* Step (4): the libraries into memfds; their paths into the note */
	for (i = 0; i < h->nlibs; i++) {
		const struct sysi_stub_lib *b = &h->libs[i];
		const char *p = base + b->bytes;
		uint64_t left = b->size;
		fds[i] = sysi_stub_syscall(NR_memfd_create, (long)"sysi", MFD_CLOEXEC, 0);
		if (fds[i] < 0)
			die("memfd_create failed: cannot start the embedded runtime", 0);
		while (left) {
			long w = sysi_stub_syscall(NR_write, fds[i], (long)p, (long)left);
			if (w == -4 /* EINTR */)
				continue;
			if (w <= 0)
				die("writing the embedded runtime into a memfd failed", 0);
			p += w;
			left -= (uint64_t)w;
		}
		if (b->path)
			fd_path((char *)(base + b->path), fds[i]);
		if (b->patch && i > 0) { /* a hook's DT_NEEDED names libsysi's memfd: written first */
			char digits[SYSI_STUB_FD_DIGITS];
			fd_path(digits, fds[0]);
			if (sysi_stub_syscall4(NR_pwrite64, fds[i], (long)digits, SYSI_STUB_FD_DIGITS, (long)b->patch) !=
			    SYSI_STUB_FD_DIGITS)
				die("writing the embedded runtime into a memfd failed", 0);
		}
	}
	/* Step (5): libsysi; its constructor loads the rest and patches */
	fd_path(path + 14, fds[0]);
	path[14 + SYSI_STUB_FD_DIGITS] = 0;
	handle = dl_open(path, RTLD_NOW_);
	/* Step (6) */
	close_fn cl = (close_fn)lookup(&libc, "close");
	for (i = 0; i < h->nlibs; i++)
		if (cl)
			cl((int)fds[i]);
		else
			sysi_stub_syscall(NR_close, fds[i], 0, 0);
	if (!handle) {
		dlerror_fn e = (dlerror_fn)lookup(&libc, "dlerror");
		die("cannot load the embedded runtime", e ? e() : 0);
	}
}
