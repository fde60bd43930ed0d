/*
 * init.c — the punning strategy runtime: per site, write the trampoline into a physical page of
 * a memfd (through a writable alias of it) and give its virtual page (at exactly its address)
 * that physical page: lazily, on the first jump into it, when the page lies in a range the
 * runtime could reserve (lazy.c), else at once (MAP_FIXED_NOREPLACE). A taken address refuses
 * the site, which then falls to its next option (libsysi counts it).
 *
 * Physical pages: the planner numbers them per module (aux[1]); a module is named by its load
 * bias (site address - link-time site vaddr from aux[0]). One memfd per batch of modules, sized
 * for MAX_PHYS pages up front (sparse) and mapped twice: writable until ready(), executable for
 * good (the source lazy mappings are duplicated from). It is closed in ready(): the mappings keep
 * it alive, so no descriptor is left in the program. SYSI_PUNNING_EAGER=1 maps every page at once.
 */
#define _GNU_SOURCE /* REG_* */
#include <asm/unistd.h>
#include <errno.h>
#include <ucontext.h>
#include <linux/memfd.h>
#include <linux/sched.h> /* CLONE_VFORK */
#include <sys/mman.h>
#include "punning.h"

#define MAX_PHYS 4096   /* physical pages per batch */
#define PTAB 8192       /* (bias, local page) → batch page */

static const struct sysi_runtime_api *api;
uint32_t sysi_punning_strategy __attribute__((visibility("hidden")));
int (*sysi_punning_dispatch)(struct sysi_call *c) __attribute__((visibility("hidden")));
long (*sysi_punning_hook)(struct sysi_call *c) __attribute__((visibility("hidden")));

long sysi_punning_defer_off __attribute__((visibility("hidden")));
void (*sysi_punning_release)(void) __attribute__((visibility("hidden")));
static int direct; /* SYSI_FAST_PASSTHROUGH: trampolines call the page's own stub */
static void (*entry_stub)(void) = sysi_punning_entry; /* what every page's slot points at */
static int memfd = -1;
static unsigned nphys;
static unsigned char *rwbase; /* the batch's memfd, writable (until ready()) */
static uintptr_t xbase;       /* the same, executable (for good) */
static struct { uintptr_t bias; unsigned local, phys; int used; } ptab[PTAB];
static unsigned pused[PTAB], npused; /* slots to clear in ready() */

static void copy_bytes(unsigned char *d, const unsigned char *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		((volatile unsigned char *)d)[i] = s[i];
}

static void zero(void *p, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		((volatile unsigned char *)p)[i] = 0;
}

static long sc(long nr, long a, long b, long c, long d, long e, long f)
{
	return api->syscall6(nr, a, b, c, d, e, f);
}

static int bad(long r)
{
	return r < 0 && r > -4096;
}

/* The batch's memfd and its two aliases; 0 or -1. */
static int open_batch(void)
{
	long r, size = (long)MAX_PHYS * PN_PAGE;
	r = sc(__NR_memfd_create, (long)"sysi-punning", MFD_CLOEXEC, 0, 0, 0, 0);
	if (bad(r))
		return -1;
	memfd = (int)r;
	if (bad(sc(__NR_ftruncate, memfd, size, 0, 0, 0, 0)))
		return -1;
	r = sc(__NR_mmap, 0, size, PROT_READ | PROT_EXEC, MAP_SHARED, memfd, 0);
	if (bad(r))
		return -1;
	xbase = (uintptr_t)r;
	r = sc(__NR_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (bad(r))
		return -1;
	rwbase = (unsigned char *)r;
	return 0;
}

/* The batch page backing (bias, local); -1 when out of room. */
static int phys_page(uintptr_t bias, unsigned local)
{
	unsigned h = (unsigned)((bias >> 12) * 2654435761u + local) & (PTAB - 1);
	unsigned char *page;
	for (unsigned n = 0; n < PTAB; n++, h = (h + 1) & (PTAB - 1)) {
		if (ptab[h].used && ptab[h].bias == bias && ptab[h].local == local)
			return (int)ptab[h].phys;
		if (ptab[h].used)
			continue;
		if (nphys >= MAX_PHYS)
			return -1;
		if (memfd < 0 && !rwbase && open_batch() < 0)
			return -1;
		if (!rwbase)
			return -1; /* the batch failed to open: no page this batch */
		page = rwbase + (unsigned long)nphys * PN_PAGE;
		*(uint64_t *)(page + PN_SLOT_OFF) = (uint64_t)(uintptr_t)entry_stub;
		copy_bytes(page + PN_STUB_OFF, sysi_punning_sys,
			   (unsigned)(sysi_punning_sys_end - sysi_punning_sys));
		ptab[h].used = 1;
		pused[npused++] = h;
		ptab[h].bias = bias;
		ptab[h].local = local;
		ptab[h].phys = nphys;
		return (int)nphys++;
	}
	return -1;
}

/* Give the virtual page batch page p (once): lazily or at once; 0 when it is ours. */
static int map_vpage(uintptr_t page, unsigned p)
{
	uintptr_t src = xbase + (uintptr_t)p * PN_PAGE, had = sysi_punning_page_get(page);
	long r;
	if (had)
		return (had & ~(uintptr_t)PN_PAGE_MAPPED) == src ? 0 : -1;
	if (sysi_punning_reserve(page))
		return sysi_punning_page_put(page, src);
	r = sc(__NR_mmap, (long)page, PN_PAGE, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED_NOREPLACE,
	       memfd, (long)p * PN_PAGE);
	if (!bad(r) && (uintptr_t)r != page) { /* old kernels ignore the flag: never clobber */
		sc(__NR_munmap, r, PN_PAGE, 0, 0, 0, 0);
		r = -EEXIST;
	}
	if (sysi_punning_page_put(page, bad(r) ? PN_PAGE_FAILED : src | PN_PAGE_MAPPED) < 0 && !bad(r)) {
		sc(__NR_munmap, page, PN_PAGE, 0, 0, 0, 0);
		return -1;
	}
	return bad(r) ? -1 : 0;
}

/*
 * The program's return point for a trampoline's R: S + 2 (S from the trampoline's
 * `lea S(%rip),%r11`, which ends 6 bytes before R), or R when S + 2 holds filler (entry.S
 * sysi_punning_leave does the same).
 */
static uintptr_t return_point(uintptr_t r)
{
	uintptr_t s = r - 6 + (long)*(const int32_t *)(r - 10);
	return *(const unsigned char *)(s + 2) == 0xcc ? r : s + 2;
}

/*
 * sysi.h watch_context: a signal on the return of a `syscall` in one of our pages, made with
 * the program's registers: the passthrough stub (rsp = the site's - 136, R on top) or a
 * trampoline's in-context block I (`syscall; jmp R`, at the site's rsp). The program's view:
 * the site's return point, the site's rsp.
 */
static int pn_context(void *p)
{
	greg_t *g = ((ucontext_t *)p)->uc_mcontext.gregs;
	uintptr_t pc = (uintptr_t)g[REG_RIP], page = pc & ~(uintptr_t)(PN_PAGE - 1), r, rsp;
	const unsigned char *b = (const unsigned char *)pc;
	unsigned off = (unsigned)(pc - page);

	if (pc >= (uintptr_t)sysi_punning_incontext && pc < (uintptr_t)sysi_punning_incontext_end)
		return 2; /* the entry's in-context exit has no release: deliver as it is */
	if (b[0] == 0xc2 && b[1] == PN_REDZONE && b[2] == 0 && pc >= (uintptr_t)sysi_punning_entry &&
	    pc < (uintptr_t)sysi_punning_incontext) { /* an entry's last `ret $PN_REDZONE`: done */
		rsp = (uintptr_t)g[REG_RSP];
		g[REG_RIP] = g[REG_RCX] = (greg_t)return_point(*(const uint64_t *)rsp);
		g[REG_RSP] = (greg_t)(rsp + 8 + PN_REDZONE);
		return 1;
	}
	if (off < 16 || off + 8 > PN_PAGE ||
	    *(const uint64_t *)(page + PN_SLOT_OFF) != (uint64_t)(uintptr_t)entry_stub)
		return 0;
	rsp = (uintptr_t)g[REG_RSP];
	if (b[-2] == 0x0f && b[-1] == 0x05 &&
	    off == PN_STUB_OFF + (unsigned)(sysi_punning_sys_ret - sysi_punning_sys)) {
		r = return_point(*(const uint64_t *)rsp); /* after the passthrough stub's syscall */
		rsp += 8 + PN_REDZONE;
	} else if (b[-2] == 0x0f && b[-1] == 0x05 && b[0] == 0xeb && b[1] == 0x12) {
		r = return_point(pc + 2 + 0x12); /* after the in-context block's syscall */
	} else if (off < PN_USABLE && ((b[-6] == 0xff && b[-5] == 0x15) || (b[-6] == 0x90 && b[-5] == 0xe8)) &&
		   b[-13] == 0x4c && b[-12] == 0x8d && b[-11] == 0x1d) {
		r = return_point(pc); /* R: the call is done, nothing after it has run */
	} else if (off < PN_USABLE && b[0] == 0xe9) {
		r = pc + 5 + (long)*(const int32_t *)(b + 1); /* the jmp back: its target */
	} else if (off >= PN_STUB_OFF && off < PN_STUB_OFF + (unsigned)(sysi_punning_sys_ret - sysi_punning_sys) - 2) {
		/* the passthrough stub before its syscall: the site, still to run, at its rsp */
		r = *(const uint64_t *)rsp;
		r = r - 6 + (long)*(const int32_t *)(r - 10); /* S */
		rsp += 8 + PN_REDZONE;
	} else if (off < PN_USABLE && b[0] == 0x48 && b[1] == 0x8d && b[2] == 0x64 && b[3] == 0x24 &&
		   b[4] == 0x80 && b[5] == 0x4c && b[6] == 0x8d && b[7] == 0x1d) {
		r = pc + 12 + (long)*(const int32_t *)(b + 8); /* L: the site, nothing done */
	} else if (off < PN_USABLE && b[0] == 0x4c && b[1] == 0x8d && b[2] == 0x1d) {
		r = pc + 7 + (long)*(const int32_t *)(b + 3); /* past the red zone step: the site */
		rsp += PN_REDZONE;
	} else if (off < PN_USABLE && ((b[0] == 0xff && b[1] == 0x15) || (b[0] == 0x90 && b[1] == 0xe8)) &&
		   b[-7] == 0x4c && b[-6] == 0x8d && b[-5] == 0x1d) {
		r = pc + (long)*(const int32_t *)(b - 4); /* at the call: the site */
		rsp += PN_REDZONE;
	} else {
		return 0; /* elsewhere in a trampoline: deliver as it is */
	}
	g[REG_RIP] = g[REG_RCX] = (greg_t)r;
	g[REG_RSP] = (greg_t)rsp;
	return 1;
}

/*
 * The dispatcher, as the entry calls it. A vfork-like clone the program makes (in-context, after
 * the dispatcher hands it back) first gets every trampoline page mapped (lazy.c).
 */
static int pn_dispatch(struct sysi_call *c)
{
	int r = api->dispatch(c), vfork = 0;
	uint64_t flags = 0;
	struct { uint64_t base, len; } local = { (uint64_t)(uintptr_t)&flags, 8 }, remote;
	if (r != 1)
		return r;
	if (c->nr == __NR_vfork || (c->nr == __NR_clone && (c->args[0] & CLONE_VFORK)))
		vfork = 1;
	else if (c->nr == __NR_clone3 && c->args[0])
		vfork = 2;
	if (!vfork)
		return r;
	sysi_punning_own_work(1);
	if (vfork == 2) {
		/* struct clone_args' flags, read as the kernel would (a bad pointer is its EFAULT) */
		remote.base = c->args[0];
		remote.len = 8;
		vfork = sc(__NR_process_vm_readv, sc(__NR_getpid, 0, 0, 0, 0, 0, 0), (long)&local, 1,
			   (long)&remote, 1, 0) == 8 &&
			(flags & CLONE_VFORK);
	}
	if (vfork)
		sysi_punning_materialize();
	sysi_punning_own_work(0);
	return r;
}

static int pn_init(const struct sysi_runtime_api *a, uint32_t id)
{
	const char *eager;
	if (sysi_punning_sys_end - sysi_punning_sys > PN_SLOT_OFF - PN_STUB_OFF)
		return -EINVAL;
	if (!a->release) /* a libsysi without signal deferral (sysi.h watch_context) */
		return -EINVAL;
	api = a;
	sysi_punning_defer_off = a->defer_tpoff;
	sysi_punning_release = a->release;
	a->watch_context(pn_context);
	sysi_punning_strategy = id;
	sysi_punning_dispatch = pn_dispatch;
	sysi_punning_hook = a->fast_hook;
	direct = a->fast_hook && (a->fast_flags & SYSI_FAST_PASSTHROUGH);
	/* a fast hook that keeps c->nr and c->args: the stub without a save area on its path */
	entry_stub = a->fast_hook && (a->fast_flags & SYSI_FAST_KEEPS_ARGS) ? sysi_punning_entryk
									     : sysi_punning_entry;
	/* SYSI_FAST_COUNT: every page's slot points at the count stub, which sends the calls it
	 * does not count on to entry_stub (entry.S) */
	if (!direct && a->fast_hook && (a->fast_flags & SYSI_FAST_COUNT) && a->count_fast &&
	    a->count_watch && a->count_fast(id, &sysi_punning_count_cf) == 0 &&
	    a->count_watch((uintptr_t)sysi_punning_count_ret, (uintptr_t)sysi_punning_count_skip, -8) == 0) {
		sysi_punning_count_next = entry_stub;
		entry_stub = sysi_punning_count;
	}
	eager = a->getenv ? a->getenv("SYSI_PUNNING_EAGER") : 0;
	sysi_punning_lazy_init(a, eager && eager[0] == '1');
	return 0;
}

/* Build len bytes of code at span start (one page, usable part), on batch page p of (bias, local). */
static int place(uintptr_t start, const unsigned char *code, int len, uintptr_t bias, unsigned local)
{
	int p;
	if (len < 0 || start >= (1UL << 47) || start < 0x10000 ||
	    (start & (PN_PAGE - 1)) + (unsigned)len > PN_USABLE)
		return -1;
	p = phys_page(bias, local);
	if (p < 0 || map_vpage(start & ~(uintptr_t)(PN_PAGE - 1), (unsigned)p) < 0)
		return -1;
	copy_bytes(rwbase + (unsigned long)p * PN_PAGE + (start & (PN_PAGE - 1)), code, (unsigned)len);
	return 0;
}

/* rel32 of the e9 at address at, read from the bytes the patch will write */
static long rel_at(const struct sysi_site *s, uintptr_t at)
{
	const unsigned char *b = s->bytes + (at + 1 - s->patch_addr);
	return (long)(int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
			       (uint32_t)b[3] << 24);
}

/* Is [at, at + 5) an e9 inside the patch? */
static int jump_in_patch(const struct sysi_site *s, uintptr_t at)
{
	return s->bytes && at >= s->patch_addr && at + 5 <= s->patch_addr + s->patch_len &&
	       s->bytes[at - s->patch_addr] == 0xe9;
}

/*
 * The second trampoline of tactics succ and neigh, whose jump the patch bytes hold: succ's runs
 * the successor (the e9 at site + 2), neigh's is the plain site trampoline (the site's eb, then
 * the e9 it reaches). 0 when there is none or it is in place.
 */
static int prepare_second(const struct sysi_site *s, uintptr_t bias)
{
	uint64_t aux1 = s->aux[1];
	unsigned tactic = PN_AUX_TACTIC(aux1), pre = PN_AUX_PRE(aux1);
	const unsigned char *window = (const unsigned char *)(s->addr - pre);
	unsigned char code[160];
	uintptr_t at;
	int len;

	if (tactic == PN_TACTIC_SUCC) {
		at = s->addr + 2;
		if (!jump_in_patch(s, at))
			return -1;
		at = at + 5 + rel_at(s, at);
		len = sysi_punning_build_post(code, at, s->addr, window, aux1);
		return place(at, code, len, bias, PN_AUX_PHYS2(aux1));
	}
	if (tactic == PN_TACTIC_NEIGH) {
		uint64_t plain = aux1 & (0xffffffull | 31ull << 51); /* pages and tactic: no pre, post, fixups */
		if (!s->bytes || s->addr + 2 > s->patch_addr + s->patch_len || s->bytes[s->addr - s->patch_addr] != 0xeb)
			return -1;
		at = s->addr + 2 + (long)(signed char)s->bytes[s->addr + 1 - s->patch_addr];
		if (!jump_in_patch(s, at))
			return -1;
		at = at + 5 + rel_at(s, at); /* the entry L, PN_ENTRY_OFF(0) into the span */
		len = sysi_punning_build(code, at, s->addr, (const unsigned char *)s->addr, plain);
		if (len >= 0 && direct && sysi_punning_direct(code, at - PN_ENTRY_OFF(0), 0) < 0)
			return -1;
		return place(at - PN_ENTRY_OFF(0), code, len, bias, PN_AUX_PHYS2(aux1));
	}
	return 0;
}

static int pn_prepare_site(const struct sysi_site *s)
{
	uint64_t aux0 = s->aux[0], aux1 = s->aux[1];
	uintptr_t t = s->addr + (long)(int32_t)(uint32_t)aux0;
	uintptr_t bias = s->addr - (uintptr_t)(aux0 >> 32);
	unsigned pre = PN_AUX_PRE(aux1), post = PN_AUX_POST(aux1);
	uintptr_t start = t - PN_ENTRY_OFF(pre); /* the span; the site jumps to t */
	unsigned char code[160];
	int len;

	if (pre + 2 + post > 16)
		return -1;
	len = sysi_punning_build(code, t, s->addr, (const unsigned char *)(s->addr - pre), aux1);
	if (len >= 0 && direct && sysi_punning_direct(code, start, pre) < 0)
		return -1;
	if (place(start, code, len, bias, PN_AUX_PHYS(aux1)) < 0)
		return -1;
	return prepare_second(s, bias);
}

static void pn_ready(void)
{
	if (rwbase)
		sc(__NR_munmap, (long)rwbase, (long)MAX_PHYS * PN_PAGE, 0, 0, 0, 0);
	if (memfd >= 0)
		sc(__NR_close, memfd, 0, 0, 0, 0, 0);
	if (xbase && !nphys)
		sc(__NR_munmap, (long)xbase, (long)MAX_PHYS * PN_PAGE, 0, 0, 0, 0);
	memfd = -1;
	rwbase = 0;
	xbase = 0;
	nphys = 0;
	for (unsigned i = 0; i < npused; i++)
		zero(&ptab[pused[i]], sizeof ptab[0]);
	npused = 0;
	sysi_punning_lazy_batch_end();
}

static const struct sysi_strategy_ops ops = {
	.abi_version = SYSI_ABI_VERSION,
	.name = "punning",
	.init = pn_init,
	.prepare_site = pn_prepare_site,
	.ready = pn_ready,
	.atfork_child = 0,
};

__attribute__((visibility("default"))) const struct sysi_strategy_ops *sysi_punning_ops(void)
{
	return &ops;
}
