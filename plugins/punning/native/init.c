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
#include <sys/resource.h> /* RLIMIT_AS */
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
static int map_vpage_locked(uintptr_t page, unsigned p)
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

static int map_vpage(uintptr_t page, unsigned p)
{
	int r;
	sysi_punning_lazy_lock(1);
	r = map_vpage_locked(page, p);
	sysi_punning_lazy_lock(0);
	return r;
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

/* The offset in a trampoline page of a point of the passthrough stub (entry.S sysi_punning_sys) */
#define STUB_AT(sym) (PN_STUB_OFF + (unsigned)((sym) - sysi_punning_sys))

/* Does rcx hold one of our addresses (a trampoline page, the count stub's return)? */
static int ours(uintptr_t rcx)
{
	return rcx == (uintptr_t)sysi_punning_count_ret ||
	       (sysi_punning_page_get(rcx & ~(uintptr_t)(PN_PAGE - 1)) & PN_PAGE_MAPPED);
}

/*
 * A point in sp's relocated program instructions (spans.c), or its in-context `syscall`: the
 * program's point *v, and whether the program may resume there (1) or must come back here (5:
 * sysi.h watch_context). 0: elsewhere in the trampoline.
 */
static int span_view(const struct pn_span *sp, uintptr_t pc, greg_t *g, uintptr_t *v)
{
	uintptr_t k = pc - sp->start;
	const unsigned char *b = (const unsigned char *)pc;
	if (sp->post_at && sp->pre && k <= sp->pre) {
		/* the pre copy, then its jmp L: the program's [S - pre, S], the call still to come
		 * (the original bytes would make it unhooked): only the patch's jump is a way in */
		*v = sp->site - sp->pre + k;
		return *v == sp->entry ? 1 : 5;
	}
	if (sp->post_at && k == sp->post_at + (unsigned)PN_INCONTEXT_OFF && b[0] == 0x0f && b[1] == 0x05) {
		*v = sp->site; /* I: the in-context call, hooked, still to come: made here */
		return 5;
	}
	if (k >= sp->post_at && k <= (uintptr_t)sp->post_at + sp->npost) {
		/* the post copy: after the call, the program's [S + 2, ...] */
		k -= sp->post_at;
		*v = sp->site + 2 + k;
		if (k == 0 || ours((uintptr_t)g[REG_RCX]))
			g[REG_RCX] = (greg_t)(sp->site + 2); /* as the kernel's syscall leaves it */
		return (k == 0 && sp->r_entry) || *v >= sp->intact ? 1 : 5;
	}
	return 0;
}

/* 1 when the program may resume at its site S (pc or R in a trampoline whose span says so), else 5 */
static int site_entry(uintptr_t in, uintptr_t site)
{
	const struct pn_span *sp = sysi_punning_span_find(in);
	return !sp || sp->site != site || sp->entry == site ? 1 : 5;
}

/* entry.S sysi_punning_out: its pop, lea and jmp */
extern const unsigned char sysi_punning_out_pop[], sysi_punning_out_lea[], sysi_punning_out_jmp[];

/*
 * sysi.h watch_context: a signal in one of our pages, or in the entry's last instructions (its
 * `ret`, or sysi_punning_out's pop, lea and jmp). The program's view: RIP at the site's return
 * point (after a call), at the site (a call still to come), or at the original of a relocated
 * instruction; rsp the program's. Returns 1 (the program may resume there), 5 (the handler's
 * return comes back here unless it moves RIP: the original bytes there would not do the same),
 * 2 or 0 (deliver as it is).
 */
static int pn_context(void *p)
{
	greg_t *g = ((ucontext_t *)p)->uc_mcontext.gregs;
	uintptr_t pc = (uintptr_t)g[REG_RIP], page = pc & ~(uintptr_t)(PN_PAGE - 1), r, rsp;
	const unsigned char *b = (const unsigned char *)pc;
	const struct pn_span *sp;
	unsigned off = (unsigned)(pc - page);
	int how = 1, in_span;

	if (pc >= (uintptr_t)sysi_punning_incontext && pc < (uintptr_t)sysi_punning_incontext_end)
		return 2; /* the entry's in-context exit has no release: deliver as it is */
	if (pc == (uintptr_t)sysi_punning_out_pop || pc == (uintptr_t)sysi_punning_out_lea ||
	    pc == (uintptr_t)sysi_punning_out_jmp) { /* an entry's `ret` as pop; lea; jmp: done */
		rsp = (uintptr_t)g[REG_RSP];
		r = pc == (uintptr_t)sysi_punning_out_pop ? *(const uint64_t *)rsp : (uintptr_t)g[REG_RCX];
		if (pc != (uintptr_t)sysi_punning_out_jmp)
			rsp += (pc == (uintptr_t)sysi_punning_out_pop ? 8 : 0) + PN_REDZONE;
		g[REG_RIP] = g[REG_RCX] = (greg_t)return_point(r);
		g[REG_RSP] = (greg_t)rsp;
		return 1;
	}
	if (b[0] == 0xc2 && b[1] == PN_REDZONE && b[2] == 0 && pc >= (uintptr_t)sysi_punning_entry &&
	    pc < (uintptr_t)sysi_punning_incontext) { /* an entry's last `ret $PN_REDZONE`: done */
		rsp = (uintptr_t)g[REG_RSP];
		g[REG_RIP] = g[REG_RCX] = (greg_t)return_point(*(const uint64_t *)rsp);
		g[REG_RSP] = (greg_t)(rsp + 8 + PN_REDZONE);
		return 1;
	}
	if (off + 8 > PN_PAGE || *(const uint64_t *)(page + PN_SLOT_OFF) != (uint64_t)(uintptr_t)entry_stub)
		return 0;
	rsp = (uintptr_t)g[REG_RSP];
	if (off >= 16 && b[-2] == 0x0f && b[-1] == 0x05 && off == STUB_AT(sysi_punning_sys_ret)) {
		r = return_point(*(const uint64_t *)rsp); /* after the passthrough stub's syscall */
		rsp += 8 + PN_REDZONE;
	} else if (off == STUB_AT(sysi_punning_sys_step) && b[0] == 0x48 && b[1] == 0x8d) {
		r = return_point((uintptr_t)g[REG_RCX]); /* its pop %rcx is done: rcx = R */
		rsp += PN_REDZONE;
	} else if (off == STUB_AT(sysi_punning_sys_out) && b[0] == 0xff && b[1] == 0xe1) {
		r = return_point((uintptr_t)g[REG_RCX]); /* its jmp *%rcx: rsp is the site's */
	} else if (off >= 16 && b[-2] == 0x0f && b[-1] == 0x05 && b[0] == 0xeb && b[1] == 0x12) {
		r = return_point(pc + 2 + 0x12); /* after the in-context block's syscall */
	} else if (off < PN_USABLE && (sp = sysi_punning_span_find(pc)) && (in_span = span_view(sp, pc, g, &r))) {
		g[REG_RIP] = (greg_t)r; /* relocated program code: registers and rsp are the program's */
		return in_span;
	} else if (off >= 16 && off < PN_USABLE && ((b[-6] == 0xff && b[-5] == 0x15) || (b[-6] == 0x90 && b[-5] == 0xe8)) &&
		   b[-13] == 0x4c && b[-12] == 0x8d && b[-11] == 0x1d) {
		r = return_point(pc); /* R: the call is done, nothing after it has run */
	} else if (off < PN_USABLE && b[0] == 0xe9) {
		r = pc + 5 + (long)*(const int32_t *)(b + 1); /* the jmp back: its target */
	} else if ((off >= PN_STUB_OFF && off < STUB_AT(sysi_punning_sys_ret) - 2) ||
		   off == STUB_AT(sysi_punning_sys_slow)) {
		/* the passthrough stub before its syscall, or its jump to the entry: the site,
		 * still to run, at its rsp */
		uintptr_t ret = *(const uint64_t *)rsp;
		r = ret - 6 + (long)*(const int32_t *)(ret - 10); /* S */
		how = site_entry(ret, r);
		rsp += 8 + PN_REDZONE;
	} else if (off < PN_USABLE && b[0] == 0x48 && b[1] == 0x8d && b[2] == 0x64 && b[3] == 0x24 &&
		   b[4] == 0x80 && b[5] == 0x4c && b[6] == 0x8d && b[7] == 0x1d) {
		r = pc + 12 + (long)*(const int32_t *)(b + 8); /* L: the site, nothing done */
		how = site_entry(pc, r);
	} else if (off < PN_USABLE && b[0] == 0x4c && b[1] == 0x8d && b[2] == 0x1d) {
		r = pc + 7 + (long)*(const int32_t *)(b + 3); /* past the red zone step: the site */
		how = site_entry(pc, r);
		rsp += PN_REDZONE;
	} else if (off >= 16 && off < PN_USABLE && ((b[0] == 0xff && b[1] == 0x15) || (b[0] == 0x90 && b[1] == 0xe8)) &&
		   b[-7] == 0x4c && b[-6] == 0x8d && b[-5] == 0x1d) {
		r = pc + (long)*(const int32_t *)(b - 4); /* at the call: the site */
		how = site_entry(pc, r);
		rsp += PN_REDZONE;
	} else {
		return 0; /* elsewhere in a trampoline: deliver as it is */
	}
	g[REG_RIP] = g[REG_RCX] = (greg_t)r;
	g[REG_RSP] = (greg_t)rsp;
	return how;
}

/* Read 8 bytes of the program's memory at addr as the kernel would (a bad pointer: -1). */
static int peek8(uint64_t addr, uint64_t *out)
{
	struct { uint64_t base, len; } local = { (uint64_t)(uintptr_t)out, 8 }, remote = { addr, 8 };
	return sc(__NR_process_vm_readv, sc(__NR_getpid, 0, 0, 0, 0, 0, 0), (long)&local, 1,
		  (long)&remote, 1, 0) == 8 ? 0 : -1;
}

/*
 * setrlimit/prlimit64 giving this process a finite RLIMIT_AS: the reserved ranges would count
 * against it, so they go first (lazy.c sysi_punning_lazy_off); the call is made after. The entry
 * sends both numbers here (entry.S), whichever stub the pages use.
 */
static void before_rlimit(const struct sysi_call *c)
{
	uint64_t cur, at;
	long pid = 0;
	if (c->nr == __NR_setrlimit && (unsigned)c->args[0] == RLIMIT_AS)
		at = c->args[1];
	else if (c->nr == __NR_prlimit64 && (unsigned)c->args[1] == RLIMIT_AS && c->args[2])
		at = c->args[2], pid = (long)(int)c->args[0];
	else
		return;
	sysi_punning_own_work(1);
	/* pid 0 or any thread of this process (tgkill with signal 0 finds only those) */
	if ((pid == 0 || sc(__NR_tgkill, sc(__NR_getpid, 0, 0, 0, 0, 0, 0), pid, 0, 0, 0, 0) == 0) &&
	    peek8(at, &cur) == 0 && cur != ~0ull)
		sysi_punning_lazy_off();
	sysi_punning_own_work(0);
}

/*
 * mlockall: the kernel counts the reserved ranges against RLIMIT_MEMLOCK (ENOMEM without
 * CAP_IPC_LOCK where the program alone stays under it), and a locked program expects no page
 * faults after it: every waiting page is mapped and the reservations end (lazy.c
 * sysi_punning_lazy_off) first, for good (a later munlockall changes nothing: later batches
 * map their pages at once). Every stub sends mlockall here (entry.S).
 */
static void before_mlockall(const struct sysi_call *c)
{
	if (!(c->args[0] & (MCL_CURRENT | MCL_FUTURE)))
		return; /* EINVAL, nothing locked */
	sysi_punning_own_work(1);
	sysi_punning_lazy_off();
	sysi_punning_own_work(0);
}

/*
 * The dispatcher, as the entry calls it. A vfork-like clone the program makes (in-context, after
 * the dispatcher hands it back) first gets every trampoline page mapped (lazy.c); a finite
 * RLIMIT_AS set on this process, or mlockall, first ends the reservations.
 */
static int pn_dispatch(struct sysi_call *c)
{
	int r, vfork = 0;
	uint64_t flags = 0;
	if (__builtin_expect(c->nr == __NR_setrlimit || c->nr == __NR_prlimit64, 0))
		before_rlimit(c);
	else if (__builtin_expect(c->nr == __NR_mlockall, 0))
		before_mlockall(c);
	r = api->dispatch(c);
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
		vfork = peek8(c->args[0], &flags) == 0 && (flags & CLONE_VFORK);
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

/* The byte at a once the patch is applied (s->bytes over the patch, else the program's). */
static unsigned char final_byte(const struct sysi_site *s, uintptr_t a)
{
	if (s->bytes && a >= s->patch_addr && a < s->patch_addr + s->patch_len)
		return s->bytes[a - s->patch_addr];
	return *(const unsigned char *)a;
}

/*
 * Record the trampoline built at [start, start + len) for s (spans.c): post_at is its post
 * copy's offset (0: it holds the post instructions alone, a succ tactic's second trampoline).
 * A span not recorded only leaves a signal there in the trampoline's view, as before.
 */
static void add_span(const struct sysi_site *s, uintptr_t start, int len, unsigned pre, unsigned post_at,
		     uint64_t aux1)
{
	unsigned br = PN_AUX_BRANCH(aux1), post = PN_AUX_POST(aux1);
	unsigned blen = br == PN_BR_JMP8 || br == PN_BR_JCC8 ? 2 : br == PN_BR_JMP32 ? 5 : br == PN_BR_JCC32 ? 6 : 0;
	unsigned char first = final_byte(s, s->patch_addr);
	struct pn_span sp = {
		.start = start,
		.end = start + (unsigned)len,
		.site = s->addr,
		.intact = s->patch_addr,
		.pre = (uint8_t)pre,
		.post_at = (uint8_t)post_at,
		.npost = (uint8_t)(post - blen),
		.r_entry = final_byte(s, s->addr + 2) != 0xcc,
		.entry = first == 0xe9 || first == 0xeb ? s->patch_addr : 0,
	};
	for (unsigned i = 0; i < s->patch_len; i++)
		if (final_byte(s, s->patch_addr + i) != ((const unsigned char *)s->patch_addr)[i])
			sp.intact = s->patch_addr + i + 1;
	if (sp.intact == s->patch_addr) /* applied already (a patched file): none of it is the program's */
		sp.intact = s->patch_addr + s->patch_len;
	if (len > 0 && blen <= post)
		sysi_punning_span_add(api, &sp);
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
		if (place(at, code, len, bias, PN_AUX_PHYS2(aux1)) < 0)
			return -1;
		add_span(s, at, len, 0, 0, aux1);
		return 0;
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
		if (place(at - PN_ENTRY_OFF(0), code, len, bias, PN_AUX_PHYS2(aux1)) < 0)
			return -1;
		add_span(s, at - PN_ENTRY_OFF(0), len, 0, PN_R_OFF(0), plain);
		return 0;
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
	add_span(s, start, len, pre, PN_R_OFF(pre), aux1);
	return prepare_second(s, bias);
}

static void pn_ready(void)
{
	if (rwbase)
		sc(__NR_munmap, (long)rwbase, (long)MAX_PHYS * PN_PAGE, 0, 0, 0, 0);
	/* the pages used and no more: the rest of the alias would count against RLIMIT_AS and
	 * RLIMIT_MEMLOCK, and mlockall would fill it (16 MiB) */
	if (xbase && nphys && nphys < MAX_PHYS) {
		sc(__NR_munmap, (long)(xbase + (uintptr_t)nphys * PN_PAGE), (long)(MAX_PHYS - nphys) * PN_PAGE, 0, 0,
		   0, 0);
		if (memfd >= 0)
			sc(__NR_ftruncate, memfd, (long)nphys * PN_PAGE, 0, 0, 0, 0);
	}
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
