/*
 * init.c — zpoline strategy runtime: page 0 and the entry pages (set up when the first site is
 * prepared, so a process in which zpoline patches nothing maps neither), the SIGSEGV claim for
 * syscall numbers outside page 0, the ops table libsysi calls, and the preparation of
 * in-context calls (clone, clone3, vfork).
 *
 * Built -mgeneral-regs-only -ffreestanding and linked -nostdlib: no libc, raw system calls
 * through api->syscall6 only.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/ucontext.h>
#include "zpoline.h"

#define HIDDEN __attribute__((visibility("hidden")))

enum {
	NR_mmap = 9, NR_mprotect = 10, NR_munmap = 11, NR_rt_sigreturn = 15,
	NR_getpid = 39, NR_clone = 56, NR_vfork = 58, NR_clone3 = 435,
	NR_process_vm_readv = 310, NR_process_vm_writev = 311,
	PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4,
	MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_FIXED_NOREPLACE = 0x100000,
	EINVAL = 22, SIGSEGV_NR = 11,
};

/* per-thread return-address stack of the SAMESTACK path (incontext.S reads it via %fs) */
HIDDEN __thread struct sysi_zpoline_vstack sysi_zpoline_vstack
	__attribute__((tls_model("initial-exec")));

static const struct sysi_runtime_api *api;
static uint32_t strat_id;
static int state;		/* 0: not set up yet, 1: ready, -1: setup failed */
static uintptr_t entry_addr;	/* E_0: the general blob, where the SIGSEGV claim resumes */
static struct zp_publish pub;	/* the copies' set words and their pages (set.c) */

static long sc(long nr, long a, long b, long c, long d, long e, long f)
{
	return api->syscall6(nr, a, b, c, d, e, f);
}

static long map(uintptr_t addr, unsigned long len, int prot, int flags)
{
	return sc(NR_mmap, (long)addr, (long)len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
}

static int is_err(long r)
{
	return (unsigned long)r > -4096ul;
}

static void copy(void *d, const void *s, size_t n)
{
	volatile unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
}

/*
 * The program's memory, read or written as the kernel would for the call: process_vm_readv /
 * process_vm_writev on our own pid, which fail instead of faulting (a bad pointer is then the
 * kernel's EFAULT, or the child's own fault, as natively, never a fault in the parent here).
 */
static int marker; /* SYSI_MARKER=1: xfer's calls are bracketed as the runtime's own work */

static int xfer(int write, void *local_p, uintptr_t remote_p, size_t n)
{
	struct { uint64_t base, len; } local = { (uint64_t)(uintptr_t)local_p, n }, remote = { remote_p, n };
	long r;
	if (marker)
		sc(SYSI_MARKER_NR, SYSI_MARKER_WORK_BEGIN, 0, 0, 0, 0, 0);
	r = sc(write ? NR_process_vm_writev : NR_process_vm_readv, sc(NR_getpid, 0, 0, 0, 0, 0, 0),
	       (long)&local, 1, (long)&remote, 1, 0);
	if (marker)
		sc(SYSI_MARKER_NR, SYSI_MARKER_WORK_END, 0, 0, 0, 0, 0);
	return r == (long)n ? 0 : -1;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static char *fmt_hex(char *p, unsigned long v)
{
	char t[16];
	int n = 0;

	*p++ = '0';
	*p++ = 'x';
	do
		t[n++] = "0123456789abcdef"[v & 15];
	while (v >>= 4);
	while (n)
		*p++ = t[--n];
	return p;
}

static char *fmt_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

/*
 * Cluster j's rel32 (zpoline.h) for the entry-page candidate (b3, b2): bytes 0x4f,
 * 0x40 + 2(j % 7), b2 + j / 7, b3, all REX prefixes (b2 + ZP_ENTRY_PAGES - 1 <= 0x4f).
 */
static uint32_t cluster_rel(uint32_t b3, uint32_t b2, int j)
{
	uint32_t r = (uint32_t)(j / ZP_CLUSTERS_PER_PAGE), m = (uint32_t)(j % ZP_CLUSTERS_PER_PAGE);

	return b3 << 24 | (b2 + r) << 16 | (0x40 + 2 * m) << 8 | 0x4f;
}

/* Step (1): group 4j sits at 20j; its jmp ends at 20j + 5 and adds rel: E_j. */
static uintptr_t cluster_entry(uint32_t b3, uint32_t b2, int j)
{
	return 20 * (uintptr_t)j + 5 + cluster_rel(b3, b2, j);
}

static uintptr_t entry_page(uint32_t b3, uint32_t b2, int r)
{
	return (uintptr_t)(b3 << 24 | (b2 + (uint32_t)r) << 16 | 0x4000);
}

/* Is one of nrs[0..n) a number of cluster j (20j-4..20j+15)? */
static int cluster_has(int j, const int *nrs, int n)
{
	for (int i = 0; i < n; i++)
		if (nrs[i] >= 20 * j - 4 && nrs[i] <= 20 * j + 15)
			return 1;
	return 0;
}

enum { BLOB_FAST, BLOB_GEN, BLOB_SYS, BLOB_CNT };

/* SYSI_FAST_COUNT: the count blobs' struct sysi_count_fast (api->count_fast), when set */
static struct sysi_count_fast count_fast;
static int count_on;

/* Which blob serves cluster j (zpoline.h). */
static int cluster_blob(int j, const struct sysi_runtime_api *a)
{
	static const int incontext[] = { ZP_NR_RT_SIGRETURN, ZP_NR_CLONE, ZP_NR_VFORK, ZP_NR_CLONE3 };
	static const int runtime[] = { ZP_NR_RT_SIGACTION, ZP_NR_RT_SIGPROCMASK, ZP_NR_RT_SIGRETURN,
				       ZP_NR_CLONE, ZP_NR_FORK, ZP_NR_VFORK, ZP_NR_CLONE3,
				       ZP_NR_EXECVE, ZP_NR_EXECVEAT }; /* libsysi passes its variables on */

	if (!a->fast_hook)
		return BLOB_GEN;
	if (count_on) /* the rest go to the spare general copy (setup) */
		return BLOB_CNT;
	if (a->fast_flags & SYSI_FAST_PASSTHROUGH)
		return cluster_has(j, runtime, 9) ? BLOB_GEN : BLOB_SYS;
	return cluster_has(j, incontext, 4) ? BLOB_GEN : BLOB_FAST;
}

/* page 0, E9 layout (zpoline.h): the groups, then hlt (the SIGSEGV claim) */
static void build_e9(uint8_t *p0, uint32_t b3, uint32_t b2)
{
	for (int k = 0; k < ZP_E9_GROUPS; k++) {
		/* Step (2): group 4j + i ends 5i later than group 4j: 5i less of rel, same E_j. */
		uint32_t rel = cluster_rel(b3, b2, k / ZP_CLUSTER_GROUPS) - 5 * (uint32_t)(k % ZP_CLUSTER_GROUPS);
		p0[5 * k] = 0xe9;
		put32(p0 + 5 * k + 1, rel);
	}
	for (int i = ZP_E9_END; i < ZP_PAGE; i++)
		p0[i] = ZP_HLT;
}

/*
 * Multi-byte NOPs (Intel SDM, "Recommended Multi-Byte Sequence of NOP Instruction"), 1 to 9
 * bytes: nops[n - 1] is the n-byte one.
 */
static const uint8_t nops[9][9] = {
	{ 0x90 },
	{ 0x66, 0x90 },
	{ 0x0f, 0x1f, 0x00 },
	{ 0x0f, 0x1f, 0x40, 0x00 },
	{ 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	{ 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	{ 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
	{ 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
	{ 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
};

/*
 * Where a copy's code starts: page 0's jump lands at `at` (fixed by the E9 layout), and the
 * code goes a little further, the gap filled with the fewest NOPs, so that the hook's return
 * point `back` (entry.S HOOKCALL: a multiple of 8 bytes into the blob) starts an
 * instruction-fetch line; the entry's piece up to the hook call then spans two lines and the
 * piece from the return to the `ret` one. A piece that starts mid-line spans one more line per
 * call: measured 4.33 against 4.06 ns per hooked call (best 1-ms blocks) with the return point
 * 29 bytes into a line, and 4.93 against 4.62 ns for a copy starting 8 bytes before a line.
 * A blob without a hook call (back 0) starts on a line. Where that does not fit below `limit`,
 * the start goes on a line, else on 8 bytes: the copy's data words must be aligned (set.c
 * rewrites them while threads read them). 0 when not even that fits.
 */
static uint8_t *align_code(uint8_t *at, size_t len, size_t back, uintptr_t limit)
{
	uintptr_t a = (uintptr_t)at, s = a + (-(a + back) & (ZP_CODE_ALIGN - 1));
	size_t gap;

	if (s + len > limit)
		s = a + (-a & (ZP_CODE_ALIGN - 1));
	if (s + len > limit)
		s = (a + 7) & ~(uintptr_t)7;
	if (s + len > limit)
		return 0;
	for (gap = (size_t)(s - a); gap > 0;) {
		size_t n = gap < 9 ? gap : 9;
		copy(at, nops[n - 1], n);
		at += n;
		gap -= n;
	}
	return at;
}

/* A blob as put_blob copies it: its bytes and the data words/immediates it fills in. */
struct blob {
	const unsigned char *start, *end, *set, *mask, *slow, *hook, *defer, *release, *hit;
	const unsigned char *strat, *back; /* 0 = none */
};

#define BLOB(p, strat, back) \
	((struct blob){ p, p##_end, p##_set, p##_mask, p##_slowfn, p##_hook, p##_defer, p##_release, \
			p##_hit, strat, back })

/* The blob of `kind` for this API: the fast blob without a save area for a KEEPS_ARGS hook. */
static struct blob blob_of(int kind, const struct sysi_runtime_api *a)
{
	switch (kind) {
	case BLOB_GEN:
		return BLOB(sysi_zpoline_gen, sysi_zpoline_gen_strat, sysi_zpoline_gen_back);
	case BLOB_FAST:
		if (a->fast_flags & SYSI_FAST_KEEPS_ARGS)
			return BLOB(sysi_zpoline_fastk, sysi_zpoline_fastk_strat, sysi_zpoline_fastk_back);
		return BLOB(sysi_zpoline_fast, sysi_zpoline_fast_strat, sysi_zpoline_fast_back);
	case BLOB_CNT:
		return BLOB(sysi_zpoline_cnt, 0, 0);
	default:
		return BLOB(sysi_zpoline_sys, 0, 0);
	}
}

/*
 * A copy of blob `kind` for the jump target `at`, its code aligned (align_code) below `limit`,
 * its data words and strategy id filled in, its set words recorded in `pub`. 0, or -1 when the
 * copy does not fit.
 */
/* Where each copy starts, and its blob (zp_context). */
static struct {
	uintptr_t land, start; /* page 0's jump lands at land; NOPs up to start */
	int kind;
} copies[ZP_CLUSTERS + 1];
static int ncopies;

static int put_blob(uint8_t *at, uintptr_t limit, int kind, const struct sysi_runtime_api *a, uint32_t id,
		    int j)
{
	struct blob b = blob_of(kind, a);
	size_t len = (size_t)(b.end - b.start);
	const struct zp_set *s = zp_set_current();
	uintptr_t land = (uintptr_t)at;

	at = align_code(at, len, b.back ? (size_t)(b.back - b.start) : 0, limit);
	if (!at)
		return -1;
	if (ncopies < ZP_CLUSTERS + 1) {
		copies[ncopies].land = land;
		copies[ncopies].start = (uintptr_t)at;
		copies[ncopies++].kind = kind;
	}
	copy(at, b.start, len);
	put64(at + (b.set - b.start), (uintptr_t)s->slot);
	put64(at + (b.mask - b.start), s->mask8);
	put64(at + (b.slow - b.start), (uintptr_t)sysi_zpoline_slow);
	put64(at + (b.hook - b.start), (uintptr_t)a->fast_hook);
	put64(at + (b.defer - b.start), (uint64_t)a->defer_tpoff);
	put64(at + (b.release - b.start), (uintptr_t)a->release);
	pub.set[pub.nwords] = (uint64_t *)(void *)(at + (b.set - b.start));
	pub.mask[pub.nwords++] = (uint64_t *)(void *)(at + (b.mask - b.start));
	if (b.strat)
		put32(at + (b.strat - b.start), id);
	if (kind == BLOB_GEN) {
		put64(at + (sysi_zpoline_gen_dispatch - b.start), (uintptr_t)a->dispatch);
		put64(at + (sysi_zpoline_gen_incontext - b.start), (uintptr_t)sysi_zpoline_incontext);
		put64(at + (sysi_zpoline_gen_direct - b.start),
		      a->fast_hook && (a->fast_flags & SYSI_FAST_PASSTHROUGH) ? 1 : 0);
	}
	if (kind == BLOB_CNT) {
		uint64_t left = 0; /* the cluster's numbers 20j-4..20j+15 are distinct mod 64 */
		for (int nr = 20 * j - 4; nr <= 20 * j + 15; nr++)
			if (nr >= 0 && !sysi_count_direct((unsigned long)nr))
				left |= 1ULL << (nr % 64);
		/* the spare general copy is put first */
		put64(at + (sysi_zpoline_cnt_general - b.start),
		      copies[0].start + (uintptr_t)(sysi_zpoline_gen_body - sysi_zpoline_gen));
		put64(at + (sysi_zpoline_cnt_left - b.start), left);
		copy(at + (sysi_zpoline_cnt_cf - b.start), &count_fast, sizeof count_fast);
		if (a->count_watch((uintptr_t)at + (uintptr_t)(sysi_zpoline_cnt_ret - b.start),
				   (uintptr_t)at + (uintptr_t)(sysi_zpoline_cnt_skip - b.start),
				   -ZP_RZ_SKIP - 8) != 0)
			return -1;
	}
	return 0;
}

static void unmap_pages(const uintptr_t *pg, int n)
{
	for (int r = 0; r < n; r++)
		sc(NR_munmap, (long)pg[r], ZP_PAGE, 0, 0, 0, 0);
}

/* Map the entry pages of the first free candidate (b3, b2); 0, or -1 when none is free. */
static int map_entry_pages(uint32_t *b3, uint32_t *b2, uintptr_t *pg)
{
	for (int i = 0; i < 256; i++) {
		int r = 0;

		*b3 = 0x40 + (uint32_t)(i >> 4);
		*b2 = 0x40 + (uint32_t)(i & 15);
		if (*b2 + ZP_ENTRY_PAGES - 1 > 0x4f)
			continue;
		for (; r < ZP_ENTRY_PAGES; r++) {
			long m;
			pg[r] = entry_page(*b3, *b2, r);
			m = map(pg[r], ZP_PAGE, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
			if (is_err(m) || (uintptr_t)m != pg[r]) {
				if (!is_err(m))
					sc(NR_munmap, m, ZP_PAGE, 0, 0, 0, 0);
				break;
			}
		}
		if (r == ZP_ENTRY_PAGES)
			return 0;
		unmap_pages(pg, r);
	}
	return -1;
}

static int zp_segv(int sig, void *siginfo, void *ucontext);

/*
 * sysi.h watch_context, for a signal in zpoline's code. In a copy: before the frame (the entry
 * check, `_hit`), every register is the program's but rcx, rsp = the slot holding R = site + 2:
 * the call has not happened, the view is the site itself at the program's rsp (it runs again).
 * On a `ret` to R (after the passthrough `syscall`, or at the end of LEAVE) or on the release
 * stub's `pop`: the call is done, the view is R. Elsewhere in a copy (the frame and the hook
 * call) the signal is deferred to the copy's release; in incontext.S and sysi_zpoline_slow
 * (which lead to no release) it is delivered as it is.
 */
static int zp_context(void *p)
{
	greg_t *g = ((ucontext_t *)p)->uc_mcontext.gregs;
	uintptr_t pc = (uintptr_t)g[REG_RIP], page = pc & ~(uintptr_t)(ZP_PAGE - 1), r, start = 0;
	const unsigned char *b = (const unsigned char *)pc;
	int kind = -1, ours = 0;
	struct blob bl;

	if ((pc >= (uintptr_t)sysi_zpoline_incontext && pc < (uintptr_t)sysi_zpoline_incontext_end) ||
	    (pc >= (uintptr_t)sysi_zpoline_slow && pc < (uintptr_t)sysi_zpoline_slow_end))
		return 2;
	if (pc < ZP_PAGE && pub.npages) {
		/* page 0 (a site's `call *%rax` on its way to a copy): R is on top, nothing is done */
		g[REG_RIP] = (greg_t)(*(const uint64_t *)(uintptr_t)g[REG_RSP] - 2);
		g[REG_RSP] += 8;
		return 1;
	}
	for (int i = 0; i < pub.npages; i++)
		ours |= pub.page[i] == page;
	if (!ours)
		return 0;
	for (int i = 0; i < ncopies; i++) {
		if (copies[i].land <= pc && pc < copies[i].start) { /* the NOPs before a copy */
			g[REG_RIP] = (greg_t)(*(const uint64_t *)(uintptr_t)g[REG_RSP] - 2);
			g[REG_RSP] += 8;
			return 1;
		}
		if (copies[i].start <= pc && copies[i].start > start) {
			start = copies[i].start;
			kind = copies[i].kind;
		}
	}
	if (kind < 0)
		return 2;
	bl = blob_of(kind, api);
	if (pc - start >= (uintptr_t)(bl.end - bl.start))
		return 2; /* filler between copies (hlt) */
	r = *(const uint64_t *)(uintptr_t)g[REG_RSP];
	if (pc - start <= (uintptr_t)(bl.hit - bl.start) && !(b[-2] == 0x0f && b[-1] == 0x05)) {
		g[REG_RIP] = (greg_t)(r - 2); /* the site: the call is still to be made */
		g[REG_RSP] += 8;
		return 1;
	}
	if (b[0] == 0xc3 || b[0] == 0x59) { /* ret to R, or a pop %rcx before a jmp to R */
		g[REG_RIP] = g[REG_RCX] = (greg_t)r;
		g[REG_RSP] += 8;
		return 1;
	}
	if (b[0] == 0xff && (b[1] == 0x25 || b[1] == 0xe1) && pc - start > (uintptr_t)(bl.hit - bl.start)) {
		g[REG_RIP] = g[REG_RCX]; /* the release stub's or a way out's jmp (entry.S RET): rsp */
		return 1;		 /* is the program's, rcx = R */
	}
	return kind == BLOB_SYS ? 2 : 3;
}

static int zp_init(const struct sysi_runtime_api *a, uint32_t id)
{
	api = a;
	strat_id = id;
	if (a->abi_version != SYSI_ABI_VERSION || id > 0x7fffffff || !a->release)
		return -EINVAL;
	a->watch_context(zp_context);
	count_on = (a->fast_flags & SYSI_FAST_COUNT) && a->fast_hook && a->count_fast &&
		   a->count_watch && a->count_fast(id, &count_fast) == 0;
	{
		const char *m = a->getenv ? a->getenv("SYSI_MARKER") : 0;
		marker = m && m[0] == '1' && !m[1];
	}
	return 0;
}

static void undo(const uintptr_t *pg, int npages)
{
	unmap_pages(pg, npages);
	sc(NR_munmap, 0, ZP_PAGE, 0, 0, 0, 0);
}

/*
 * Page 0, the entry pages, the site set and the SIGSEGV claim, when the first site is
 * prepared: 0, or a negative errno (every site then falls to its next option).
 */
static int setup(void)
{
	char msg[160], *p;
	long r;
	uint32_t b3 = 0, b2 = 0;
	uintptr_t pg[ZP_ENTRY_PAGES], spare;
	int xonly;
	uint8_t *p0;

	r = map(0, ZP_PAGE, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
	if (is_err(r) || r != 0) {
		if (!is_err(r))
			sc(NR_munmap, r, ZP_PAGE, 0, 0, 0, 0);
		api->debug("zpoline: page 0 cannot be mapped; sites fall to the next strategy");
		return is_err(r) ? (int)r : -EINVAL;
	}
	if (map_entry_pages(&b3, &b2, pg) != 0) {
		sc(NR_munmap, 0, ZP_PAGE, 0, 0, 0, 0);
		api->debug("zpoline: no entry pages at REX-encodable addresses; sites fall through");
		return -EINVAL;
	}
	if (zp_set_init(api) != 0) {
		undo(pg, ZP_ENTRY_PAGES);
		return -EINVAL;
	}
	for (int i = 0; i < ZP_ENTRY_PAGES; i++) {
		for (int k = 0; k < ZP_PAGE; k++)
			((uint8_t *)pg[i])[k] = ZP_HLT;	/* outside the copies: the SIGSEGV claim */
		pub.page[pub.npages++] = pg[i];
	}
	/*
	 * SYSI_FAST_COUNT: every cluster's copy is a count blob, and a spare general one, reached
	 * by no page-0 jump, takes the calls they leave to the hook and the SIGSEGV claim's.
	 */
	spare = pg[ZP_ENTRY_PAGES - 1] + ZP_PAGE - ZP_SPARE_SPACE;
	if (count_on && put_blob((uint8_t *)spare, spare + ZP_SPARE_SPACE, BLOB_GEN, api, strat_id, -1) != 0) {
		api->debug("zpoline: spare general copy does not fit (internal error)");
		undo(pg, ZP_ENTRY_PAGES);
		return -EINVAL;
	}
	/* Step (3): each copy lies inside its page, before the next copy's landing point. */
	for (int j = 0; j < ZP_CLUSTERS; j++) {
		uintptr_t at = cluster_entry(b3, b2, j), page = pg[j / ZP_CLUSTERS_PER_PAGE];
		uintptr_t limit = page + ZP_PAGE;
		if ((j + 1) % ZP_CLUSTERS_PER_PAGE && j + 1 < ZP_CLUSTERS)
			limit = cluster_entry(b3, b2, j + 1);
		else if (j + 1 == ZP_CLUSTERS && count_on)
			limit = spare;
		if (at < page || put_blob((uint8_t *)at, limit, cluster_blob(j, api), api, strat_id, j) != 0) {
			api->debug("zpoline: entry copy outside its page (internal error)");
			undo(pg, ZP_ENTRY_PAGES);
			return -EINVAL;
		}
	}
	/* cluster 0 (numbers 0..15) is general, or the spare copy */
	entry_addr = count_on ? spare : cluster_entry(b3, b2, 0);
	__asm__("" : "=r"(p0) : "0"((uintptr_t)0)); /* address 0, opaque to the optimiser */
	build_e9(p0, b3, b2);
	for (int i = 0; i < ZP_ENTRY_PAGES; i++)
		sc(NR_mprotect, (long)pg[i], ZP_PAGE, PROT_READ | PROT_EXEC, 0, 0, 0);
	/* numbers outside page 0's groups (zp_segv); without the claim they crash */
	if (!api->claim_signal || api->claim_signal(SIGSEGV_NR, zp_segv) != 0)
		api->debug("zpoline: no SIGSEGV claim: syscall numbers >= 516 at a site crash");
	/*
	 * Page 0 execute-only by default: on CPUs with PKU the kernel backs PROT_EXEC alone with
	 * its execute-only protection key, so a NULL data read still faults (SIGSEGV, si_addr 0,
	 * si_code SEGV_PKUERR) instead of reading the trampoline. Without PKU, PROT_EXEC implies
	 * read. SYSI_ZPOLINE_XONLY=0 maps it PROT_READ|PROT_EXEC.
	 */
	{
		const char *x = api->getenv("SYSI_ZPOLINE_XONLY");
		xonly = !(x && x[0] == '0');
	}
	sc(NR_mprotect, 0, ZP_PAGE, xonly ? PROT_EXEC : PROT_READ | PROT_EXEC, 0, 0, 0);

	p = fmt_str(msg, "zpoline: page 0 mapped, layout e9, entry pages from ");
	p = fmt_hex(p, (unsigned long)pg[0]);
	*p = 0;
	api->debug(msg);
	return 0;
}

/*
 * SIGSEGV claim: a patched site whose rax is not a number page 0's groups serve (0..515)
 * faults: a number of 516..4095 runs into page 0's hlt (#GP), any other jumps outside page 0.
 * Natively the kernel reads the low 32 bits of rax as an int: a number whose low 32 bits are a
 * syscall runs that syscall, any other returns -ENOSYS. So when the fault is such a call the
 * handler resumes at the general entry with rax = (int)rax, exactly as if page 0 had led
 * there: the dispatcher (and the hook) see the call the kernel runs, and the kernel answers it.
 *   (a) the call committed: rip == rax and [rsp] is a site's return address;
 *   (b) it did not (#GP on a non-canonical target): rip is a site whose `ff d0` is still
 *       there; the handler pushes the return address the call would have pushed.
 * Anything else is not ours (returns 0): the program's handler or the default action runs.
 * A number that is the address of mapped executable code does not fault: that code runs
 * (docs/strategies/zpoline.md).
 */
/*
 * A data access to page 0 made execute-only through a protection key faults with si_code
 * SEGV_PKUERR (and si_pkey set); natively the page is unmapped and the fault is SEGV_MAPERR.
 * Handlers that look at si_code see the native one: Go's sigpanic turns only MAPERR/ACCERR below
 * 0x1000 into a recoverable nil-dereference panic (PKUERR is a fatal "unexpected fault address").
 */
static void zp_native_fault(void *siginfo)
{
	enum { SI_CODE = 8, SI_ADDR = 16, SI_PKEY = 32, SEGV_MAPERR = 1, SEGV_PKUERR = 4 };
	uint8_t *si = siginfo;

	if (!si || *(int *)(si + SI_CODE) != SEGV_PKUERR || *(uintptr_t *)(si + SI_ADDR) >= ZP_PAGE)
		return;
	*(int *)(si + SI_CODE) = SEGV_MAPERR;
	*(uint32_t *)(si + SI_PKEY) = 0;
}

static int zp_segv(int sig, void *siginfo, void *ucontext)
{
	greg_t *g = ((ucontext_t *)ucontext)->uc_mcontext.gregs;
	uintptr_t rip = (uintptr_t)g[REG_RIP], rax = (uintptr_t)g[REG_RAX];
	uintptr_t *sp = (uintptr_t *)g[REG_RSP];

	if (sig != SIGSEGV_NR || state != 1)
		return 0;
	zp_native_fault(siginfo);
	if (rip == rax && zp_set_has(sp[0])) {
		g[REG_RAX] = (greg_t)(int)rax;
		g[REG_RIP] = (greg_t)entry_addr;
		return 1;
	}
	if (rip != rax && zp_set_has(rip + 2) && ((const uint8_t *)rip)[0] == 0xff &&
	    ((const uint8_t *)rip)[1] == 0xd0) {
		sp[-1] = rip + 2;
		g[REG_RSP] = (greg_t)(sp - 1);
		g[REG_RAX] = (greg_t)(int)rax;
		g[REG_RIP] = (greg_t)entry_addr;
		return 1;
	}
	return 0;
}

static int zp_prepare_site(const struct sysi_site *s)
{
	if (s->patch_len != 2 || s->patch_addr != s->addr)
		return -1;
	if (state == 0)
		state = setup() == 0 ? 1 : -1;
	if (state != 1)
		return -1;
	return zp_set_add(s->addr + 2, &pub);
}

static void zp_ready(void)
{
}

/*
 * Called by incontext.S for a call the dispatcher handed back; may rewrite c->args and the
 * child's stack. Returns ZP_K_*. `buf` has ZP_CLONE3_BUF bytes and outlives the syscall;
 * `a` is the entry's frame anchor A (a[0] = the program's rbp).
 */
HIDDEN int sysi_zpoline_prep(struct sysi_call *c, unsigned char *buf, const uintptr_t *a)
{
	uintptr_t ret = c->site + 2, *top;
	unsigned long size;
	uint64_t stack, ssize;

	switch (c->nr) {
	case NR_rt_sigreturn:
		return ZP_K_SIGRETURN;
	case NR_vfork:
		return ZP_K_SAMESTACK;
	case NR_clone:
		if (!c->args[1])
			return ZP_K_SAMESTACK;
		/* Step (1): R at the child's new top; both sides add the 8 back after the call. */
		top = (uintptr_t *)c->args[1];
		/* a stack the child cannot use is left as it is: the child faults on it at its
		 * first pop, as natively at the wrapper's ret */
		xfer(1, &ret, (uintptr_t)(top - 1), 8);
		c->args[1] -= 8;
		return ZP_K_CLONE;
	case NR_clone3:
		size = (unsigned long)c->args[1];
		if (size < 64 || !c->args[0])
			return ZP_K_PLAIN;	/* the kernel refuses it (EINVAL/EFAULT) */
		if (size > ZP_CLONE3_BUF) {
			c->nr = -1;		/* -ENOSYS: glibc falls back to clone */
			return ZP_K_PLAIN;
		}
		if (xfer(0, buf, (uintptr_t)c->args[0], size))
			return ZP_K_PLAIN; /* the kernel's EFAULT */
		stack = *(uint64_t *)(buf + 40);	/* clone_args.stack */
		ssize = *(uint64_t *)(buf + 48);	/* clone_args.stack_size */
		if (!stack)
			return ZP_K_SAMESTACK;
		if (ssize <= 24)
			return ZP_K_PLAIN;
		/* Step (2): the child starts at stack + stack_size - 24, pops rbp and rdi, then R. */
		top = (uintptr_t *)(stack + ssize);
		{
			uintptr_t three[3] = { a[0] /* the program's rbp */, (uintptr_t)c->args[0], ret };
			xfer(1, three, (uintptr_t)(top - 3), sizeof three); /* as for clone */
		}
		*(uint64_t *)(buf + 48) = ssize - 24;
		c->args[0] = (long)buf;
		return ZP_K_CLONE3;
	}
	return ZP_K_PLAIN;
}

static const struct sysi_strategy_ops ops = {
	.abi_version = SYSI_ABI_VERSION,
	.name = "zpoline",
	.init = zp_init,
	.prepare_site = zp_prepare_site,
	.ready = zp_ready,
	.atfork_child = 0,
};

__attribute__((visibility("default"))) const struct sysi_strategy_ops *sysi_zpoline_entry(void)
{
	return &ops;
}
