/*
 * int3trap.c — the int3trap runtime. Sites are patched with int3; nop (cc 90); the SIGTRAP that int3
 * raises reaches on_trap() through libsysi's master handler (claim_signal), with RIP = site + 1.
 * on_trap builds a struct sysi_call from the program's registers, lets libsysi's dispatcher run
 * the hook (which performs the call), and resumes after the site as `syscall` would: rax = the
 * result, rcx = the return address, r11 = rflags. The handler returns through rt_sigreturn (the
 * master's frame), so a signal libsysi deferred is delivered there, in the program's context.
 * Never calls libc: the address set lives in pages mapped with api->syscall6.
 */
#define _GNU_SOURCE /* REG_RIP and friends */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <sysi.h>

#define SLOTS (1u << 16) /* power of two; at most SLOTS / 2 sites, later ones fall through */

static const struct sysi_runtime_api *api;
static uint32_t strategy_id;
static int claimed;
static uintptr_t *sites; /* open addressing by address; 0 = empty; only ever grows */
static uint32_t nsites;

static uint32_t slot_of(uintptr_t a)
{
	return (uint32_t)((a * 0x9e3779b97f4a7c15ull) >> 40) & (SLOTS - 1);
}

/* Async-signal-safe, lock-free: an address is stored before libsysi writes its patch. */
static int is_site(uintptr_t a)
{
	uint32_t i = slot_of(a), n;
	for (n = 0; sites && n < SLOTS; n++, i = (i + 1) & (SLOTS - 1)) {
		uintptr_t v = __atomic_load_n(&sites[i], __ATOMIC_ACQUIRE);
		if (v == a)
			return 1;
		if (v == 0)
			return 0;
	}
	return 0;
}

static int add_site(uintptr_t a)
{
	uint32_t i = slot_of(a);
	if (nsites >= SLOTS / 2)
		return -ENOSPC;
	while (sites[i] != 0 && sites[i] != a)
		i = (i + 1) & (SLOTS - 1);
	if (sites[i] == 0)
		nsites++;
	__atomic_store_n(&sites[i], a, __ATOMIC_RELEASE);
	return 0;
}

static int on_trap(int sig, void *info, void *ucontext)
{
	greg_t *g = ((ucontext_t *)ucontext)->uc_mcontext.gregs;
	uintptr_t site = (uintptr_t)g[REG_RIP] - 1; /* int3 reports the byte after it */
	struct sysi_call c;
	(void)sig;
	(void)info;
	if (!is_site(site))
		return 0; /* not ours: the program's own int3 or SIGTRAP */
	c.nr = g[REG_RAX];
	c.args[0] = g[REG_RDI];
	c.args[1] = g[REG_RSI];
	c.args[2] = g[REG_RDX];
	c.args[3] = g[REG_R10];
	c.args[4] = g[REG_R8];
	c.args[5] = g[REG_R9];
	c.site = site;
	c.strategy = strategy_id;
	c.flags = 0;
	c.ret = 0;
	if (api->dispatch(&c) != 0) /* the planner refuses every in-context call */
		api->die("int3trap: a call that needs the site's own context at a site planned without one");
	g[REG_RAX] = (greg_t)c.ret;
	g[REG_RCX] = (greg_t)(site + 2);
	g[REG_R11] = g[REG_EFL];
	g[REG_RIP] = (greg_t)(site + 2);
	/*
	 * This handler runs with the program's mask, and the rt_sigreturn that ends it restores
	 * uc_sigmask and uc_stack: carry a change the program just made over (a siglongjmp out of
	 * a SIGSEGV handler unblocks SIGSEGV this way), minus signals libsysi deferred (blocked
	 * for sysi, not by the program).
	 */
	if (c.nr == SYS_rt_sigprocmask && c.ret == 0) {
		api->syscall6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&((ucontext_t *)ucontext)->uc_sigmask, 8, 0, 0);
		if (api->defer_pending)
			*(uint64_t *)(void *)&((ucontext_t *)ucontext)->uc_sigmask &= ~api->defer_pending();
	} else if (c.nr == SYS_sigaltstack && c.ret == 0) {
		api->syscall6(SYS_sigaltstack, 0, (long)&((ucontext_t *)ucontext)->uc_stack, 0, 0, 0, 0);
	}
	return 1;
}

static int int3trap_init(const struct sysi_runtime_api *a, uint32_t id)
{
	long p;
	if (a->abi_version != SYSI_ABI_VERSION)
		return -EINVAL; /* every site falls to its next option */
	api = a;
	strategy_id = id;
	p = a->syscall6(SYS_mmap, 0, SLOTS * sizeof(uintptr_t), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p < 0 && p > -4096)
		return (int)p;
	sites = (uintptr_t *)p;
	return 0;
}

/* Per site, before libsysi writes cc 90 there: refuse what this runtime cannot serve. */
static int int3trap_prepare_site(const struct sysi_site *s)
{
	if (s->patch_addr != s->addr || s->patch_len != 2)
		return -EINVAL;
	if (!claimed) {
		if (api->claim_signal(SIGTRAP, on_trap) < 0)
			return -EPERM;
		claimed = 1;
	}
	return add_site(s->addr);
}

static const struct sysi_strategy_ops ops = {
	.abi_version = SYSI_ABI_VERSION,
	.name = "int3trap",
	.init = int3trap_init,
	.prepare_site = int3trap_prepare_site,
	.ready = 0,
	.atfork_child = 0,
};

__attribute__((visibility("default"))) const struct sysi_strategy_ops *sysi_int3trap_entry(void)
{
	return &ops;
}
