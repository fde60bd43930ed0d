/* runtimes.c — loading the strategy runtimes named by SYSI_RUNTIMES and the API they get. */
#include <asm/unistd.h>
#include <dlfcn.h>
#include <errno.h>
#include <sys/mman.h>
#include "internal.h"

void *sysi_real_dlopen(const char *file, int mode);

struct sysi_rt sysi_rts[SYSI_MAX_RUNTIMES];
unsigned sysi_nrts;

int sysi_map_code(uintptr_t addr, const void *code, uint64_t len)
{
	uint64_t size = (len + 4095) & ~4095UL;
	long p;
	if (addr & 4095)
		return -EINVAL;
	p = raw6(__NR_mmap, addr, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p < 0 && p > -4096)
		return (int)p;
	if ((uintptr_t)p != addr) { /* old kernels ignore the flag: never clobber */
		raw2(__NR_munmap, p, size);
		return -EEXIST;
	}
	memcpy((void *)p, code, len);
	p = raw3(__NR_mprotect, addr, size, PROT_READ | PROT_EXEC);
	return p < 0 ? (int)p : 0;
}

struct sysi_runtime_api sysi_api = {
	.abi_version = SYSI_ABI_VERSION,
	.dispatch = sysi_dispatch_impl,
	.syscall6 = sysi_raw6,
	.die = sysi_die,
	.debug = sysi_debug,
	.getenv = sysi_getenv,
	.map_code = sysi_map_code,
	.claim_signal = sysi_claim_signal,
	/* watch_context, defer_tpoff, release, defer_pending: sysi_signal_setup() (signal.c) */
};

SYSI_EXPORT const char *sysi_strategy_name(uint32_t strategy)
{
	if (strategy < sysi_nrts && sysi_rts[strategy].ops && sysi_rts[strategy].ops->name)
		return sysi_rts[strategy].ops->name;
	return "?";
}

int sysi_runtime_by_name(const char *name)
{
	for (unsigned i = 0; i < sysi_nrts; i++)
		if (sysi_rts[i].ok && !sysi_strcmp(sysi_rts[i].ops->name, name))
			return (int)i;
	return -1;
}

static void load_one(const char *spec, size_t n)
{
	char path[4096], *sym;
	void *h;
	sysi_strategy_entry_fn entry;
	const struct sysi_strategy_ops *ops;
	struct sysi_rt *rt;
	size_t i;

	if (n >= sizeof path || sysi_nrts >= SYSI_MAX_RUNTIMES)
		sysi_die("SYSI_RUNTIMES: entry too long or too many runtimes");
	memcpy(path, spec, n);
	path[n] = 0;
	for (i = 0; i < n && path[i] != '#'; i++)
		;
	if (i == n || i + 1 == n)
		sysi_die("SYSI_RUNTIMES: expected <path>#<entry>");
	path[i] = 0;
	sym = path + i + 1;
	h = sysi_real_dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		sysi_debugf2("cannot load strategy runtime ", path);
		sysi_die("cannot load a strategy runtime from SYSI_RUNTIMES");
	}
	entry = (sysi_strategy_entry_fn)dlsym(h, sym);
	if (!entry)
		sysi_die("SYSI_RUNTIMES: entry symbol not found");
	ops = entry();
	sysi_code_add((const void *)entry); /* its code runs only for instrumented calls */
	if (!ops || ops->abi_version != SYSI_ABI_VERSION || !ops->name || !ops->init ||
	    !ops->prepare_site)
		sysi_die("strategy runtime has a different SYSI_ABI_VERSION or bad ops");
	rt = &sysi_rts[sysi_nrts];
	rt->ops = ops;
	rt->base_probe = (uintptr_t)entry;
	rt->stats_slot = sysi_stats_slot(ops->name);
	sysi_nrts++;
	rt->ok = ops->init(&sysi_api, sysi_nrts - 1) == 0;
	if (!rt->ok)
		sysi_debugf2("strategy init failed, its sites fall through: ", ops->name);
}

void sysi_load_runtimes(void)
{
	const char *s = sysi_getenv("SYSI_RUNTIMES"), *e;
	if (!s)
		return;
	while (*s) {
		for (e = s; *e && *e != ','; e++)
			;
		if (e > s)
			load_one(s, (size_t)(e - s));
		s = *e ? e + 1 : e;
	}
}

void sysi_runtimes_atfork(void)
{
	for (unsigned i = 0; i < sysi_nrts; i++)
		if (sysi_rts[i].ok && sysi_rts[i].ops->atfork_child)
			sysi_rts[i].ops->atfork_child();
}
