/*
 * init.c — the segmentation strategy runtime: page 0's far-pointer pattern, the entry copy at
 * 0x00330033 and the site table (set up when the first site is prepared, so a process in which
 * segmentation patches nothing maps none of them), the ops table, the signal view of the entry
 * (watch_context) and the fault path: a site whose number at run time is odd or outside page 0
 * faults at its far call with nothing pushed, and the SIGSEGV claim performs the call there.
 *
 * Built -mgeneral-regs-only -ffreestanding and linked -nostdlib: raw system calls through
 * api->syscall6 only.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/ucontext.h>
#include "seg.h"

enum {
	NR_mmap = 9, NR_mprotect = 10, NR_munmap = 11, NR_rt_sigprocmask = 14, NR_rt_sigreturn = 15,
	NR_sigaltstack = 131,
	PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4,
	MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_FIXED_NOREPLACE = 0x100000,
	EINVAL = 22, ENOMEM = 12, EEXIST = 17, SIGSEGV_NR = 11, SIG_BLOCK_ = 0,
};

static const struct sysi_runtime_api *api;
static uint32_t strat_id;
static int state;		/* 0: not set up, 1: ready, -1: setup failed */
static int nsites;
static volatile uint64_t *const table = (volatile uint64_t *)SEG_TABLE;

/* gadgets (seg.h) for sites of unknown number: pages written while RW, sealed by ready() */
static unsigned char *gpage;	/* the page being filled, or 0 */
static int gused;		/* bytes used in it */
static int gdirty;		/* it still has to be made read-only and executable */
/* site -> gadget, for the fault path and the signal view (a small open-addressing table) */
#define GMAP_N 4096
static uintptr_t gmap_site[GMAP_N], gmap_gadget[GMAP_N];

static long sc(long nr, long a, long b, long c, long d, long e, long f)
{
	return api->syscall6(nr, a, b, c, d, e, f);
}

static int is_err(long r)
{
	return (unsigned long)r > -4096ul;
}

static long map_fixed(uintptr_t addr, unsigned long len, int prot)
{
	long r = sc(NR_mmap, (long)addr, (long)len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (!is_err(r) && (uintptr_t)r != addr) {
		sc(NR_munmap, r, (long)len, 0, 0, 0, 0);
		return -EEXIST;
	}
	return r;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t home(uint32_t key)
{
	return (uint32_t)(key * (uint32_t)SEG_HASH_MUL) >> (32 - SEG_TABLE_BITS);
}

/* The site's return address R for the low 32 bits `key`, or 0 (any thread, signal handlers). */
static uintptr_t table_find(uint32_t key)
{
	for (uint32_t i = home(key);; i = (i + 1) & (SEG_TABLE_N - 1)) {
		uint64_t v = table[i];
		if (v == 0)
			return 0;
		if ((uint32_t)v == key)
			return (uintptr_t)v;
	}
}

/* Add R (under libsysi's module lock): 0, or -1 when its low 32 bits are taken or 0, or full. */
static int table_add(uintptr_t r)
{
	uint32_t key = (uint32_t)r, i;

	if (key == 0 || nsites >= SEG_TABLE_MAX)
		return -1;
	for (i = home(key); table[i]; i = (i + 1) & (SEG_TABLE_N - 1))
		if ((uint32_t)table[i] == key)
			return table[i] == r ? 0 : -1;
	table[i] = r; /* one aligned 8-byte store: readers see 0 or R */
	nsites++;
	return 0;
}

static uintptr_t gadget_of(uintptr_t site)
{
	for (uint32_t i = home((uint32_t)site) & (GMAP_N - 1);; i = (i + 1) & (GMAP_N - 1)) {
		if (gmap_site[i] == site)
			return gmap_gadget[i];
		if (gmap_site[i] == 0)
			return 0;
	}
}

/* A gadget `syscall; jmp *0(%rip); .quad site + 2` for site (under the module lock). */
static int gadget_add(uintptr_t site)
{
	static int ngadgets;
	unsigned char *g;
	uint32_t i;

	if (gadget_of(site))
		return 0;
	if (ngadgets >= GMAP_N / 2)
		return -1;
	if (!gpage || gused + SEG_GADGET_SIZE > SEG_PAGE) {
		long m = sc(NR_mmap, 0, SEG_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (is_err(m))
			return -1;
		if (gdirty)
			sc(NR_mprotect, (long)gpage, SEG_PAGE, PROT_READ | PROT_EXEC, 0, 0, 0);
		gpage = (unsigned char *)m;
		gused = 0;
	}
	g = gpage + gused;
	g[0] = 0x0f; /* 0f 05              syscall */
	g[1] = 0x05;
	g[2] = 0xff; /* ff 25 00 00 00 00  jmp *0(%rip) */
	g[3] = 0x25;
	g[4] = g[5] = g[6] = g[7] = 0;
	put64(g + 8, site + 2); /* .quad site + 2 */
	gused += SEG_GADGET_SIZE;
	gdirty = 1;
	for (i = home((uint32_t)site) & (GMAP_N - 1); gmap_site[i]; i = (i + 1) & (GMAP_N - 1))
		;
	gmap_gadget[i] = (uintptr_t)g;
	gmap_site[i] = site;
	ngadgets++;
	return 0;
}

static const unsigned char *entry_label(const unsigned char *l)
{
	return (const unsigned char *)SEG_ENTRY + (l - sysi_seg_entry);
}

/*
 * sysi.h watch_context: a signal in the entry copy or at a gadget, seen as the program sees it.
 *   - before `found` (the lookup): the far call's frame is on top; the view is the site (the
 *     call is made again after the handler), rsp above the frame;
 *   - from `found` to `frame` (R on top, the program's registers but rcx and r11): the site,
 *     unless at the `ret` after the passthrough `syscall`, where the call is done: R;
 *   - a `ret` or the release stub's `pop %rcx` (R on top): R; the release jmp: rcx = R;
 *   - elsewhere in the entry (frame, hook call): deferred to the release (3);
 *   - a gadget before its syscall: the site; after it: R.
 */
static int seg_context(void *p)
{
	greg_t *g = ((ucontext_t *)p)->uc_mcontext.gregs;
	const unsigned char *pc = (const unsigned char *)g[REG_RIP];
	const unsigned char *e = (const unsigned char *)SEG_ENTRY;
	const unsigned char *end = entry_label(sysi_seg_entry_end);
	uintptr_t r, *sp = (uintptr_t *)g[REG_RSP];

	if (state == 1 && pc >= e && pc < end) {
		if (pc < entry_label(sysi_seg_entry_found)) {
			r = table_find((uint32_t)sp[0]);
			if (!r)
				return 2;
			g[REG_RIP] = (greg_t)(r - 2);
			g[REG_RSP] += 8;
			return 1;
		}
		if (pc[0] == 0xc3 || pc[0] == 0x59) { /* ret, or pop %rcx: R on top */
			g[REG_RIP] = g[REG_RCX] = (greg_t)sp[0];
			g[REG_RSP] += 8;
			return 1;
		}
		if (pc[0] == 0xff && pc[1] == 0x25) { /* the release jmp: rsp is the program's, rcx = R */
			g[REG_RIP] = g[REG_RCX];
			return 1;
		}
		if (pc < entry_label(sysi_seg_entry_frame)) {
			g[REG_RIP] = (greg_t)(sp[0] - 2);
			g[REG_RSP] += 8;
			return 1;
		}
		return 3;
	}
	/* a gadget: 16-byte aligned `0f 05 ff 25 …` */
	if (((uintptr_t)pc & (SEG_GADGET_SIZE - 1)) == 0 && pc[0] == 0x0f && pc[1] == 0x05 && pc[2] == 0xff &&
	    pc[3] == 0x25) {
		r = *(const uint64_t *)(pc + 8);
		if (gadget_of(r - 2) != (uintptr_t)pc)
			return 0;
		g[REG_RIP] = (greg_t)(r - 2);
		return 1;
	}
	if (((uintptr_t)pc & (SEG_GADGET_SIZE - 1)) == 2 && pc[-2] == 0x0f && pc[-1] == 0x05 && pc[0] == 0xff &&
	    pc[1] == 0x25) {
		r = *(const uint64_t *)(pc + 6);
		if (gadget_of(r - 2) != (uintptr_t)(pc - 2))
			return 0;
		g[REG_RIP] = g[REG_RCX] = (greg_t)r;
		return 1;
	}
	return 0;
}

/*
 * The fault path (SIGSEGV claim): a site's far call faulted (odd number: selector 0x3300, #GP;
 * a number past 4090: #PF beyond page 0; a non-canonical one: #GP) with nothing pushed, RIP at
 * the site. The call is performed here as the kernel would run it: under the low 32 bits of
 * rax as an int (the kernel's reading), dispatched through libsysi, resumed at site + 2 by
 * rt_sigreturn (libsysi's master returns through it). In-context calls (dispatch returns 1)
 * run at the site's gadget with the (possibly rewritten) call in the registers.
 */
static int seg_segv(int sig, void *info, void *ucontext)
{
	ucontext_t *uc = ucontext;
	greg_t *g = uc->uc_mcontext.gregs;
	const unsigned char *pc = (const unsigned char *)g[REG_RIP];
	uintptr_t site = (uintptr_t)pc, gadget;
	struct sysi_call c;

	if (sig != SIGSEGV_NR || state != 1 || *(const int *)((const char *)info + 8) <= 0)
		return 0;
	if (table_find((uint32_t)(site + 2)) != site + 2 || pc[0] != 0xff || pc[1] != 0x18)
		return 0;
	g[REG_RAX] = (greg_t)(int)g[REG_RAX];
	c.nr = g[REG_RAX];
	c.args[0] = g[REG_RDI];
	c.args[1] = g[REG_RSI];
	c.args[2] = g[REG_RDX];
	c.args[3] = g[REG_R10];
	c.args[4] = g[REG_R8];
	c.args[5] = g[REG_R9];
	c.site = site;
	c.strategy = strat_id;
	c.flags = 0;
	c.ret = 0;
	if (api->dispatch(&c) == 0) {
		g[REG_RAX] = c.ret;
		g[REG_RIP] = (greg_t)(site + 2);
		/* rt_sigreturn restores uc_sigmask/uc_stack: carry the program's changes over */
		if (c.nr == NR_rt_sigprocmask && c.ret == 0) {
			sc(NR_rt_sigprocmask, SIG_BLOCK_, 0, (long)&uc->uc_sigmask, 8, 0, 0);
			if (api->defer_pending)
				*(uint64_t *)(void *)&uc->uc_sigmask &= ~api->defer_pending();
		} else if (c.nr == NR_sigaltstack && c.ret == 0) {
			sc(NR_sigaltstack, 0, (long)&uc->uc_stack, 0, 0, 0, 0);
		}
		return 1;
	}
	g[REG_RAX] = c.nr;
	g[REG_RDI] = c.args[0];
	g[REG_RSI] = c.args[1];
	g[REG_RDX] = c.args[2];
	g[REG_R10] = c.args[3];
	g[REG_R8] = c.args[4];
	g[REG_R9] = c.args[5];
	gadget = gadget_of(site);
	if (gadget) {
		g[REG_RIP] = (greg_t)gadget;
		return 1;
	}
	if (c.nr == NR_rt_sigreturn) { /* never returns: no return address needed */
		g[REG_RIP] = (greg_t)sysi_seg_sigreturn;
		return 1;
	}
	api->die("segmentation: an in-context call (clone, clone3, vfork) reached a site planned for "
		 "another number");
	return 1;
}

static int seg_init(const struct sysi_runtime_api *a, uint32_t id)
{
	api = a;
	strat_id = id;
	if (a->abi_version != SYSI_ABI_VERSION || id > 0x7fffffff || !a->release || !a->claim_signal)
		return -EINVAL;
	if (a->watch_context)
		a->watch_context(seg_context);
	return 0;
}

static void undo(void)
{
	sc(NR_munmap, 0, SEG_PAGE, 0, 0, 0, 0);
	sc(NR_munmap, SEG_ENTRY_PAGE, SEG_PAGE, 0, 0, 0, 0);
	sc(NR_munmap, SEG_TABLE, SEG_TABLE_N * 8, 0, 0, 0, 0);
}

/* Page 0, the entry copy, the table and the SIGSEGV claim: 0 or a negative errno. */
static int setup(void)
{
	const unsigned char *s = sysi_seg_entry;
	unsigned char *e = (unsigned char *)SEG_ENTRY, *p0;
	size_t n = (size_t)(sysi_seg_entry_end - s);
	long r;

	r = map_fixed(0, SEG_PAGE, PROT_READ | PROT_WRITE);
	if (is_err(r)) {
		api->debug("segmentation: page 0 is taken or cannot be mapped; sites fall to the next strategy");
		return (int)r;
	}
	if (is_err(map_fixed(SEG_ENTRY_PAGE, SEG_PAGE, PROT_READ | PROT_WRITE)) ||
	    is_err(map_fixed(SEG_TABLE, SEG_TABLE_N * 8, PROT_READ | PROT_WRITE)) ||
	    SEG_ENTRY - SEG_ENTRY_PAGE + n > SEG_PAGE) {
		api->debug("segmentation: 0x330000 or the table pages are taken; sites fall through");
		undo();
		return -EEXIST;
	}
	if (api->claim_signal(SIGSEGV_NR, seg_segv) != 0) {
		undo();
		return -EINVAL;
	}
	/* Step (1): page 0 = 33 00 …: m16:32 0x0033:0x00330033 at every even offset */
	__asm__("" : "=r"(p0) : "0"((uintptr_t)0)); /* address 0, opaque to the optimiser */
	for (int i = 0; i < SEG_PAGE; i++)
		p0[i] = (i & 1) ? 0x00 : 0x33;
	sc(NR_mprotect, 0, SEG_PAGE, PROT_READ, 0, 0, 0);
	/* Step (2): the entry copy at 0x00330033 and its data words */
	for (size_t i = 0; i < n; i++)
		e[i] = s[i];
	for (int i = 0; i < 4; i++)
		e[sysi_seg_entry_strat - s + i] = (unsigned char)(strat_id >> (8 * i));
	put64(e + (sysi_seg_entry_hook - s), (uintptr_t)api->fast_hook);
	put64(e + (sysi_seg_entry_dispatch - s), (uintptr_t)api->dispatch);
	put64(e + (sysi_seg_entry_defer - s), (uint64_t)api->defer_tpoff);
	put64(e + (sysi_seg_entry_release - s), (uintptr_t)api->release);
	put64(e + (sysi_seg_entry_direct - s),
	      api->fast_hook && (api->fast_flags & SYSI_FAST_PASSTHROUGH) ? 1 : 0);
	sc(NR_mprotect, SEG_ENTRY_PAGE, SEG_PAGE, PROT_READ | PROT_EXEC, 0, 0, 0);
	api->debug("segmentation: page 0 = 33 00 pattern, entry at 0x330033");
	return 0;
}

static int seg_prepare_site(const struct sysi_site *s)
{
	if (s->patch_len != 2 || s->patch_addr != s->addr || s->bytes == 0 || s->bytes[0] != 0xff ||
	    s->bytes[1] != 0x18)
		return -1;
	if (state == 0)
		state = setup() == 0 ? 1 : -1;
	if (state != 1)
		return -1;
	/* a gadget first: once R is in the table the site may fault into the handler */
	if ((s->aux[1] & SEG_AUX_ANY) && gadget_add(s->addr) != 0)
		return -ENOMEM;
	return table_add(s->addr + 2);
}

static void seg_ready(void)
{
	if (gdirty) {
		sc(NR_mprotect, (long)gpage, SEG_PAGE, PROT_READ | PROT_EXEC, 0, 0, 0);
		gdirty = 0;
		gpage = 0; /* the next batch starts a new page: this one may be running */
	}
}

static const struct sysi_strategy_ops ops = {
	.abi_version = SYSI_ABI_VERSION,
	.name = "segmentation",
	.init = seg_init,
	.prepare_site = seg_prepare_site,
	.ready = seg_ready,
	.atfork_child = 0,
};

__attribute__((visibility("default"))) const struct sysi_strategy_ops *sysi_segmentation_entry(void)
{
	return &ops;
}
