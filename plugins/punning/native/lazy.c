/*
 * lazy.c — which virtual page holds which physical trampoline page, and pages mapped on first
 * use. Mapping every trampoline page at start costs one mmap and one VMA each (~2.4 µs, and
 * as much again to tear down at exit): 264 pages for libc and ld.so made a patched /bin/true
 * start ~1 ms later than native. Instead the runtime reserves the free address range around a
 * page (one PROT_NONE mapping per RESV-aligned block, cut to the hole the page lies in, so the
 * program's own mmaps never land there) and maps the page when a site first jumps into it: the
 * jump faults (SIGSEGV, SEGV_ACCERR, RIP = the page), the claim below duplicates the batch's
 * executable alias of the physical page onto it (mremap with old size 0, one syscall) and the
 * jump runs again. A page outside any hole the runtime may reserve (the heap's growth range,
 * below the stack, /proc unreadable, SIGSEGV not claimable) is mapped at once, as before.
 *
 * The page table is insert-only and read by the SIGSEGV claim in any thread: an entry's value
 * is written before its key (release), a bigger table is published whole and the old one is
 * left mapped.
 */
#define _GNU_SOURCE /* REG_* */
#include <asm/unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/mman.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h> /* RLIMIT_AS */
#include <ucontext.h>
#include "punning.h"

#define RESV (64ul << 20)          /* reservation block: pages 64 MiB-aligned together */
#define MAX_RESV 1024              /* reservations per process */
#define USER_TOP (1ul << 47)       /* first address above user space */
#define USER_LOW 0x10000ul         /* lowest address a trampoline may take */
#define MAX_RANGES (1u << 16)      /* mappings read from /proc/self/maps */
#define RANGE_HEAP 1               /* the range is [heap]: brk grows above it */
#define RANGE_STACK 2              /* [stack]: it grows below */
#define ROOM (1ul << 30)           /* left free above the heap and below the stack */

struct entry {
	uintptr_t page; /* key (0: empty) */
	uintptr_t src;  /* sysi_punning_page_put */
};
struct table {
	unsigned cap, n;
	struct entry e[];
};
struct range {
	uintptr_t lo, hi;
	unsigned flags;
};

static const struct sysi_runtime_api *api;
static struct table *table;
static struct { uintptr_t lo, hi; } resv[MAX_RESV];
static unsigned nresv;
static int claimed; /* 1: SIGSEGV is ours to map pages on; -1: it cannot be */
static int marker;  /* SYSI_MARKER=1: say so first in each fault's frame (SYSI_MARKER_FAULT) */
static struct range *ranges; /* the batch's snapshot of the address space */
static unsigned nranges;
static int snap; /* 0: none yet this batch, 1: read, -1: unreadable */
static int resv_lock; /* reserve/map (a batch) against sysi_punning_lazy_off (another thread) */
static uintptr_t brk_now; /* the program break at the snapshot (brk grows above it) */

static long sc(long nr, long a, long b, long c, long d, long e, long f)
{
	return api->syscall6(nr, a, b, c, d, e, f);
}

static int bad(long r)
{
	return r < 0 && r > -4096;
}

static unsigned hash(uintptr_t page, unsigned cap)
{
	return (unsigned)((page >> 12) * 2654435761u) & (cap - 1);
}

uintptr_t sysi_punning_page_get(uintptr_t page)
{
	const struct table *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
	if (!t)
		return 0;
	for (unsigned h = hash(page, t->cap), n = 0; n < t->cap; n++, h = (h + 1) & (t->cap - 1)) {
		uintptr_t k = __atomic_load_n(&t->e[h].page, __ATOMIC_ACQUIRE);
		if (!k)
			return 0;
		if (k == page)
			return t->e[h].src;
	}
	return 0;
}

static void insert(struct table *t, uintptr_t page, uintptr_t src)
{
	unsigned h = hash(page, t->cap);
	while (t->e[h].page)
		h = (h + 1) & (t->cap - 1);
	t->e[h].src = src;
	__atomic_store_n(&t->e[h].page, page, __ATOMIC_RELEASE);
	t->n++;
}

int sysi_punning_page_put(uintptr_t page, uintptr_t src)
{
	struct table *t = table, *nt;
	if (!t || (t->n + 1) * 2 > t->cap) { /* grow: the old table stays for readers */
		unsigned cap = t ? t->cap * 2 : 1024;
		/* faulted in whole at once: hashing touches every page, each read before written */
		long r = sc(__NR_mmap, 0, (long)(sizeof *t + cap * sizeof t->e[0]), PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (bad(r))
			return -1;
		nt = (struct table *)r;
		nt->cap = cap;
		for (unsigned i = 0; t && i < t->cap; i++)
			if (t->e[i].page)
				insert(nt, t->e[i].page, t->e[i].src);
		__atomic_store_n(&table, nt, __ATOMIC_RELEASE);
		t = nt;
	}
	insert(t, page, src);
	return 0;
}

/* The SIGSEGV claim: a jump into a reserved page that is ours maps it and runs again. */
static int segv(int sig, void *siginfo, void *uc)
{
	const siginfo_t *si = siginfo;
	greg_t *g = ((ucontext_t *)uc)->uc_mcontext.gregs;
	uintptr_t pc = (uintptr_t)g[REG_RIP], page = pc & ~(uintptr_t)(PN_PAGE - 1), src;

	if (sig != SIGSEGV || si->si_code != SEGV_ACCERR ||
	    ((uintptr_t)si->si_addr & ~(uintptr_t)(PN_PAGE - 1)) != page)
		return 0;
	src = sysi_punning_page_get(page) & ~(uintptr_t)PN_PAGE_MAPPED;
	if (!src || (src & (PN_PAGE - 1)))
		return 0; /* not a page of ours, or one we could not have */
	/* (one already mapped: faulted while another thread mapped it, or its mapping was changed
	 * since; mapped again, the same page) */
	if (marker)
		sc(SYSI_MARKER_NR, SYSI_MARKER_FAULT, 0, 0, 0, 0, 0);
	return sc(__NR_mremap, (long)src, 0, PN_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, (long)page, 0) ==
	       (long)page;
}

/* Under SYSI_MARKER=1, bracket the runtime's own calls made on the program's thread. */
void sysi_punning_own_work(int begin)
{
	if (marker)
		sc(SYSI_MARKER_NR, begin ? SYSI_MARKER_WORK_BEGIN : SYSI_MARKER_WORK_END, 0, 0, 0, 0, 0);
}

/*
 * Map every page still waiting for its first use. Before a vfork-like clone: a vfork child that
 * asks to be traced (a debugger's start, PTRACE_TRACEME then exec) would stop at its first
 * fault for a tracer that sleeps in vfork until the exec, and both would hang.
 */
void sysi_punning_materialize(void)
{
	struct table *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; t && i < t->cap; i++) {
		uintptr_t page = __atomic_load_n(&t->e[i].page, __ATOMIC_ACQUIRE), src;
		if (!page)
			continue;
		src = __atomic_load_n(&t->e[i].src, __ATOMIC_RELAXED);
		if (!src || (src & (PN_PAGE - 1)))
			continue; /* mapped already, or failed */
		if (sc(__NR_mremap, (long)src, 0, PN_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, (long)page, 0) ==
		    (long)page)
			__atomic_store_n(&t->e[i].src, src | PN_PAGE_MAPPED, __ATOMIC_RELAXED);
	}
}

void sysi_punning_lazy_init(const struct sysi_runtime_api *a, int eager)
{
	const char *m = a->getenv ? a->getenv("SYSI_MARKER") : 0;
	struct { uint64_t cur, max; } as = { ~0ull, ~0ull };
	api = a;
	/* a finite RLIMIT_AS (ulimit -v) counts the reservations: every page at once instead */
	if (!bad(sc(__NR_prlimit64, 0, RLIMIT_AS, 0, (long)&as, 0, 0)) && as.cur != ~0ull)
		eager = 1;
	/* (mlockall counts them against RLIMIT_MEMLOCK too: init.c before_mlockall ends them then) */
	claimed = eager || !a->claim_signal ? -1 : 0;
	marker = m && m[0] == '1' && !m[1];
}

void sysi_punning_lazy_lock(int take)
{
	if (!take) {
		__atomic_store_n(&resv_lock, 0, __ATOMIC_RELEASE);
		return;
	}
	while (__atomic_exchange_n(&resv_lock, 1, __ATOMIC_ACQUIRE))
		sc(__NR_sched_yield, 0, 0, 0, 0, 0, 0);
}

/* The lowest page in [lo, hi) the table holds (mapped, or still waiting), else hi. */
static uintptr_t next_page(const struct table *t, uintptr_t lo, uintptr_t hi)
{
	for (unsigned i = 0; t && i < t->cap; i++) {
		uintptr_t page = __atomic_load_n(&t->e[i].page, __ATOMIC_ACQUIRE);
		if (page >= lo && page < hi && t->e[i].src != PN_PAGE_FAILED)
			hi = page;
	}
	return hi;
}

/*
 * No more reservations (the program lowers RLIMIT_AS, which counts them, or calls mlockall):
 * every page still waiting is mapped, then each reservation is unmapped but for the pages the
 * table holds (a page that could not be mapped stays reserved alone, and the SIGSEGV claim still
 * maps it on first use); later batches map their pages at once. Runs on the program's thread in the runtime's
 * code (signals deferred) and takes the lock a batch holds while it reserves, so no reservation
 * or waiting page appears meanwhile; a concurrent claim in another thread maps the same page
 * again, which changes nothing.
 */
void sysi_punning_lazy_off(void)
{
	const struct table *t;
	if (__atomic_load_n(&claimed, __ATOMIC_RELAXED) < 0 && !__atomic_load_n(&nresv, __ATOMIC_RELAXED))
		return;
	sysi_punning_lazy_lock(1);
	__atomic_store_n(&claimed, -1, __ATOMIC_RELAXED);
	sysi_punning_materialize();
	t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < nresv; i++)
		for (uintptr_t lo = resv[i].lo, p; lo < resv[i].hi; lo = p + PN_PAGE) {
			p = next_page(t, lo, resv[i].hi);
			if (p > lo)
				sc(__NR_munmap, (long)lo, (long)(p - lo), 0, 0, 0, 0);
		}
	__atomic_store_n(&nresv, 0, __ATOMIC_RELAXED);
	sysi_punning_lazy_lock(0);
}

static uintptr_t hex(const char **p, const char *end)
{
	uintptr_t v = 0;
	for (; *p < end; (*p)++) {
		char c = **p;
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;
		if (d == 16)
			break;
		v = v << 4 | d;
	}
	return v;
}

static int ends_with(const char *s, const char *end, const char *tail, unsigned n)
{
	if ((unsigned long)(end - s) < n)
		return 0;
	for (unsigned i = 0; i < n; i++)
		if (end[(long)i - (long)n] != tail[i])
			return 0;
	return 1;
}

/* One line of /proc/self/maps: "lo-hi perms offset dev inode   name". */
static int add_line(const char *s, const char *end)
{
	struct range *r;
	if (nranges == MAX_RANGES)
		return -1;
	r = &ranges[nranges];
	r->lo = hex(&s, end);
	if (s == end || *s != '-')
		return -1;
	s++;
	r->hi = hex(&s, end);
	r->flags = ends_with(s, end, "[heap]", 6) ? RANGE_HEAP : ends_with(s, end, "[stack]", 7) ? RANGE_STACK : 0;
	if (r->hi <= r->lo || (nranges && r->lo < ranges[nranges - 1].hi))
		return -1; /* the file lists ranges in order */
	nranges++;
	return 0;
}

/* Read /proc/self/maps into ranges; 0, or -1 (then every page is mapped at once). */
static int snapshot(void)
{
	enum { BUF = 65536 };
	long fd, r;
	unsigned have = 0;
	char *buf;
	int ok = 0;

	r = sc(__NR_mmap, 0, (long)(BUF + MAX_RANGES * sizeof *ranges), PROT_READ | PROT_WRITE,
	       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bad(r))
		return -1;
	buf = (char *)r;
	ranges = (struct range *)(buf + BUF);
	nranges = 0;
	fd = sc(__NR_openat, AT_FDCWD, (long)"/proc/self/maps", O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (bad(fd))
		return -1;
	for (;;) {
		const char *s = buf, *e;
		r = sc(__NR_read, fd, (long)(buf + have), BUF - have, 0, 0, 0);
		if (bad(r) || (r == 0 && have)) { /* an error, or a last line without its newline */
			ok = -1;
			break;
		}
		if (r == 0)
			break;
		have += (unsigned)r;
		for (e = s; e < buf + have; e++)
			if (*e == '\n') {
				if (add_line(s, e) < 0) {
					ok = -1;
					break;
				}
				s = e + 1;
			}
		if (ok < 0 || (s == buf && have == BUF)) { /* or a line longer than the buffer */
			ok = -1;
			break;
		}
		have = (unsigned)(buf + have - s);
		for (unsigned i = 0; i < have; i++)
			buf[i] = s[i];
	}
	sc(__NR_close, fd, 0, 0, 0, 0, 0);
	r = sc(__NR_brk, 0, 0, 0, 0, 0, 0); /* a static program may have no [heap] yet */
	brk_now = bad(r) ? 0 : (uintptr_t)r;
	return ok;
}

/* Free the batch's snapshot: a later batch sees the mappings made since (dlopen). */
void sysi_punning_lazy_batch_end(void)
{
	if (ranges)
		sc(__NR_munmap, (long)ranges - 65536, (long)(65536 + MAX_RANGES * sizeof *ranges), 0, 0, 0, 0);
	ranges = 0;
	nranges = 0;
	snap = 0;
}

/*
 * The block to reserve around page: its RESV-aligned block cut to the free hole it lies in;
 * 0 when the page is taken or lies where the program grows (within ROOM above the heap or
 * the program break, or below the stack).
 */
static int block(uintptr_t page, uintptr_t *lo, uintptr_t *hi)
{
	unsigned a = 0, b = nranges;
	uintptr_t hole_lo = USER_LOW, hole_hi = USER_TOP;
	while (a < b) { /* the first range ending above page */
		unsigned m = (a + b) / 2;
		if (ranges[m].hi <= page)
			a = m + 1;
		else
			b = m;
	}
	if (a < nranges) {
		if (ranges[a].lo <= page)
			return 0;
		hole_hi = ranges[a].lo;
		if (ranges[a].flags & RANGE_STACK)
			hole_hi = hole_hi > USER_LOW + ROOM ? hole_hi - ROOM : USER_LOW;
	}
	if (a > 0) {
		hole_lo = ranges[a - 1].hi > hole_lo ? ranges[a - 1].hi : hole_lo;
		if (ranges[a - 1].flags & RANGE_HEAP)
			hole_lo = hole_lo < USER_TOP - ROOM ? hole_lo + ROOM : USER_TOP;
	}
	if (brk_now >= hole_lo && brk_now < hole_hi)
		hole_lo = brk_now < USER_TOP - ROOM ? brk_now + ROOM : USER_TOP;
	*lo = page & ~(RESV - 1);
	*hi = *lo + RESV;
	if (*lo < hole_lo)
		*lo = hole_lo;
	if (*hi > hole_hi)
		*hi = hole_hi;
	return *lo < *hi && *lo <= page && page < *hi;
}

/* Is page in a range the runtime reserved (made now if need be)? Then it may be mapped lazily. */
int sysi_punning_reserve(uintptr_t page)
{
	uintptr_t lo, hi;
	long r;
	for (unsigned i = 0; i < nresv; i++)
		if (page >= resv[i].lo && page < resv[i].hi)
			return 1;
	if (claimed < 0 || nresv == MAX_RESV)
		return 0;
	if (!snap)
		snap = snapshot() == 0 ? 1 : -1;
	if (snap < 0 || !block(page, &lo, &hi))
		return 0;
	if (!claimed)
		claimed = api->claim_signal(SIGSEGV, segv) == 0 ? 1 : -1;
	if (claimed < 0)
		return 0;
	r = sc(__NR_mmap, (long)lo, (long)(hi - lo), PROT_NONE,
	       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (bad(r) || (uintptr_t)r != lo) { /* taken since the snapshot, or an old kernel's hint */
		if (!bad(r))
			sc(__NR_munmap, r, (long)(hi - lo), 0, 0, 0, 0);
		return 0;
	}
	resv[nresv].lo = lo;
	resv[nresv].hi = hi;
	nresv++;
	return 1;
}
