/*
 * init.c — zpoline strategy runtime: page 0, the landing page, the return-address bitmap, the
 * ops table libsysi calls, and the preparation of in-context calls (clone, clone3, vfork).
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
	NR_clone = 56, NR_vfork = 58, NR_clone3 = 435,
	PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4,
	MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000,
	MAP_FIXED_NOREPLACE = 0x100000,
	EINVAL = 22, ENOMEM = 12, SIGSEGV_NR = 11,
};

/* per-thread return-address stack of the SAMESTACK path (incontext.S reads it via %fs) */
HIDDEN __thread struct sysi_zpoline_vstack sysi_zpoline_vstack
	__attribute__((tls_model("initial-exec")));

static const struct sysi_runtime_api *api;
static uint8_t *bitmap;
static int ready_ok;
static uintptr_t entry_addr;

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
 * The landing page candidates: rel32 = b3 b2 40 40 (little endian b0 = b1 = 0x40, b2, b3 in
 * 0x40..0x4f): every byte is a REX prefix, and the low 12 bits (0x040) leave room for the
 * 104 slots below ZP_CODE_OFF.
 */
static uint32_t landing_rel(int i)
{
	uint32_t b2 = 0x40 + (uint32_t)(i & 15), b3 = 0x40 + (uint32_t)(i >> 4);

	return b3 << 24 | b2 << 16 | 0x4040;
}

/* page 0, E9 layout (zpoline.h) */
static void build_e9(uint8_t *p0, uint32_t rel, uintptr_t entry)
{
	for (int k = 0; k < ZP_E9_GROUPS; k++) {
		p0[5 * k] = 0xe9;
		put32(p0 + 5 * k + 1, rel);
	}
	for (int i = ZP_E9_END; i < ZP_PAGE - 5; i++)
		p0[i] = 0x90;
	p0[ZP_PAGE - 5] = 0xe9;		/* jmp entry */
	put32(p0 + ZP_PAGE - 4, (uint32_t)(entry - ZP_PAGE));
}

/* page 0, fallback: nop sleds, each ending in `jmp *0(%rip)` + the entry's address */
static void build_sled(uint8_t *p0, uintptr_t entry)
{
	static const int at[2] = { ZP_SLED_JMP1, ZP_SLED_JMP2 };

	for (int i = 0; i < ZP_PAGE; i++)
		p0[i] = 0x90;
	for (int j = 0; j < 2; j++) {
		uint8_t *q = p0 + at[j];
		q[0] = 0xff;		/* jmp *0(%rip) */
		q[1] = 0x25;
		put32(q + 2, 0);
		put64(q + 6, entry);
	}
}

/* the landing slots: `jmp rel32` to the entry at every target of page 0's groups */
static void build_slots(uint8_t *land, uint32_t rel, uintptr_t entry)
{
	uintptr_t base = (uintptr_t)land;

	for (int k = 0; k < ZP_E9_GROUPS; k++) {
		/* Step (1): group k sits at 5k; its jmp ends at 5k + 5 and adds rel. */
		uintptr_t slot = 5 * (uintptr_t)k + 5 + rel;
		uint8_t *q = land + (slot - base);
		/* Step (2): the slot's own jmp ends 5 bytes later. */
		q[0] = 0xe9;
		put32(q + 1, (uint32_t)(entry - (slot + 5)));
	}
}

static void set_data(uint8_t *blob, const unsigned char *sym, uint64_t v)
{
	put64(blob + (sym - sysi_zpoline_blob), v);
}

static int zp_segv(int sig, void *siginfo, void *ucontext);

static int zp_init(const struct sysi_runtime_api *a, uint32_t id)
{
	char msg[160], *p;
	long r, land = -1;
	uint32_t rel = 0;
	int e9 = 0, xonly;
	size_t blen = (size_t)(sysi_zpoline_blob_end - sysi_zpoline_blob);

	api = a;
	if (a->abi_version != SYSI_ABI_VERSION)
		return -EINVAL;
	r = map(0, ZP_BITMAP_BYTES, PROT_READ | PROT_WRITE, MAP_NORESERVE);
	if (is_err(r))
		return (int)r;
	bitmap = (uint8_t *)r;
	r = map(0, ZP_PAGE, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
	if (is_err(r) || r != 0) {
		if (!is_err(r))
			sc(NR_munmap, r, ZP_PAGE, 0, 0, 0, 0);
		sc(NR_munmap, (long)bitmap, (long)ZP_BITMAP_BYTES, 0, 0, 0, 0);
		api->debug("zpoline: page 0 cannot be mapped; sites fall to the next strategy");
		return is_err(r) ? (int)r : -ENOMEM;
	}
	for (int i = 0; i < 256 && !e9; i++) {
		uintptr_t want = (landing_rel(i) + 5) & ~(uintptr_t)(ZP_PAGE - 1);
		land = map(want, ZP_PAGE, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
		if (!is_err(land) && (uintptr_t)land == want) {
			e9 = 1;
			rel = landing_rel(i);
		} else if (!is_err(land)) {
			sc(NR_munmap, land, ZP_PAGE, 0, 0, 0, 0);
		}
	}
	if (!e9)
		land = map(0, ZP_PAGE, PROT_READ | PROT_WRITE, 0);
	if (is_err(land)) {
		sc(NR_munmap, 0, ZP_PAGE, 0, 0, 0, 0);
		sc(NR_munmap, (long)bitmap, (long)ZP_BITMAP_BYTES, 0, 0, 0, 0);
		return (int)land;
	}

	uint8_t *lp = (uint8_t *)land, *blob = lp + ZP_CODE_OFF;
	uintptr_t entry = (uintptr_t)blob + (uintptr_t)(sysi_zpoline_blob_entry - sysi_zpoline_blob);
	for (int i = 0; i < ZP_PAGE; i++)
		lp[i] = 0xcc;		/* int3 outside the slots and the blob */
	copy(blob, sysi_zpoline_blob, blen);
	set_data(blob, sysi_zpoline_blob_dispatch, (uintptr_t)a->dispatch);
	set_data(blob, sysi_zpoline_blob_bitmap, (uintptr_t)bitmap);
	set_data(blob, sysi_zpoline_blob_incontext, (uintptr_t)sysi_zpoline_incontext);
	set_data(blob, sysi_zpoline_blob_strategy, id);
	set_data(blob, sysi_zpoline_blob_hook, (uintptr_t)a->fast_hook);
	uint8_t *p0;
	__asm__("" : "=r"(p0) : "0"((uintptr_t)0)); /* address 0, opaque to the optimiser */
	if (e9) {
		build_slots(lp, rel, entry);
		build_e9(p0, rel, entry);
	} else {
		build_sled(p0, entry);
	}
	sc(NR_mprotect, land, ZP_PAGE, PROT_READ | PROT_EXEC, 0, 0, 0);
	entry_addr = entry;
	/* invalid syscall numbers outside page 0 (zp_segv); without the claim they crash */
	if (!a->claim_signal || a->claim_signal(SIGSEGV_NR, zp_segv) != 0)
		api->debug("zpoline: no SIGSEGV claim: syscall numbers >= 4092 at a site crash");
	/*
	 * Page 0 execute-only by default: on CPUs with PKU the kernel backs PROT_EXEC alone with
	 * its execute-only protection key, so a NULL data read still faults (SIGSEGV, si_addr 0,
	 * si_code SEGV_PKUERR) instead of reading the trampoline. Without PKU, PROT_EXEC implies
	 * read. SYSI_ZPOLINE_XONLY=0 maps it PROT_READ|PROT_EXEC.
	 */
	{
		const char *x = a->getenv("SYSI_ZPOLINE_XONLY");
		xonly = !(x && x[0] == '0');
	}
	sc(NR_mprotect, 0, ZP_PAGE, xonly ? PROT_EXEC : PROT_READ | PROT_EXEC, 0, 0, 0);
	ready_ok = 1;

	p = fmt_str(msg, "zpoline: page 0 mapped, layout ");
	if (e9) {
		p = fmt_str(p, "e9, landing page ");
		p = fmt_hex(p, (unsigned long)land);
	} else {
		p = fmt_str(p, "nop sled (no landing page at a REX address), entry ");
		p = fmt_hex(p, entry);
	}
	*p = 0;
	api->debug(msg);
	return 0;
}

static int is_site_ret(uintptr_t r)
{
	return !(r >> 47) && (bitmap[r >> 3] >> (r & 7) & 1);
}

/*
 * SIGSEGV claim: a patched site whose rax is not a page-0 offset (an invalid syscall number,
 * e.g. syscall(100000) or -1) jumps outside page 0 and faults. Natively that call returns
 * -ENOSYS, so when the fault is such a call the handler resumes at the entry, exactly as if
 * page 0 had led there: the dispatcher (and the hook) see the call and the kernel answers it.
 *   (a) the call committed: rip == rax and [rsp] is a site's return address;
 *   (b) it did not (#GP on a non-canonical target): rip is a site whose `ff d0` is still
 *       there; the handler pushes the return address the call would have pushed.
 * Anything else is not ours (returns 0): the program's handler or the default action runs.
 */
static int zp_segv(int sig, void *siginfo, void *ucontext)
{
	greg_t *g = ((ucontext_t *)ucontext)->uc_mcontext.gregs;
	uintptr_t rip = (uintptr_t)g[REG_RIP], rax = (uintptr_t)g[REG_RAX];
	uintptr_t *sp = (uintptr_t *)g[REG_RSP];

	(void)siginfo;
	if (sig != SIGSEGV_NR || !ready_ok || rax < ZP_PAGE)
		return 0;
	if (rip == rax && is_site_ret(sp[0])) {
		g[REG_RIP] = (greg_t)entry_addr;
		return 1;
	}
	if (rip != rax && is_site_ret(rip + 2) && ((const uint8_t *)rip)[0] == 0xff &&
	    ((const uint8_t *)rip)[1] == 0xd0) {
		sp[-1] = rip + 2;
		g[REG_RSP] = (greg_t)(sp - 1);
		g[REG_RIP] = (greg_t)entry_addr;
		return 1;
	}
	return 0;
}

static int zp_prepare_site(const struct sysi_site *s)
{
	uintptr_t r = s->addr + 2;

	if (!ready_ok || s->patch_len != 2 || s->patch_addr != s->addr || (r >> 47))
		return -1;
	__atomic_fetch_or(&bitmap[r >> 3], (uint8_t)(1u << (r & 7)), __ATOMIC_RELAXED);
	return 0;
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
		top[-1] = ret;
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
		copy(buf, (const void *)c->args[0], size);
		stack = *(uint64_t *)(buf + 40);	/* clone_args.stack */
		ssize = *(uint64_t *)(buf + 48);	/* clone_args.stack_size */
		if (!stack)
			return ZP_K_SAMESTACK;
		if (ssize <= 24)
			return ZP_K_PLAIN;
		/* Step (2): the child starts at stack + stack_size - 24, pops rbp and rdi, then R. */
		top = (uintptr_t *)(stack + ssize);
		top[-1] = ret;
		top[-2] = (uintptr_t)c->args[0];
		top[-3] = a[0];		/* the program's rbp */
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
