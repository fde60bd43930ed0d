/* hooks.c — choosing the hook (SYSI_HOOK) and the built-in passthrough and count hooks. */
#include <asm/unistd.h>
#include <dlfcn.h>
#include "internal.h"

void *sysi_real_dlopen(const char *file, int mode);

uintptr_t sysi_hook_probe;

SYSI_HOT long sysi_hook_passthrough(struct sysi_call *c)
{
	return sysi_perform_call(c);
}

SYSI_HOT long sysi_hook_count(struct sysi_call *c)
{
	struct sysi_stats_syscall *s;
	long r;
	if (!sysi_stats)
		return sysi_perform_call(c);
	s = (unsigned long)c->nr < SYSI_STATS_NSYSCALLS ? &sysi_stats->syscalls[c->nr]
							 : &sysi_stats->other;
	/* counted before the call: execve, exit and exit_group do not come back */
	__atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED);
	sysi_count_strategy(c);
	r = sysi_perform_call(c);
	if (!(c->flags & SYSI_CALL_DEFERRED) && r < 0 && r >= -4095)
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
	return r;
}

static void load_hook(void)
{
	const char *h = sysi_getenv("SYSI_HOOK");
	void *lib;
	const uint32_t *flags;
	void (*init)(void);

	if (!h || !*h || !sysi_strcmp(h, "passthrough"))
		return;
	if (!sysi_strcmp(h, "count")) {
		sysi_hook_cur = sysi_hook_count;
		return;
	}
	if (!sysi_strcmp(h, "trace")) {
		if (sysi_trace_setup() < 0)
			sysi_die("cannot open SYSI_TRACE_FILE");
		sysi_hook_cur = sysi_hook_trace;
		return;
	}
	if (h[0] != '/')
		sysi_die("SYSI_HOOK must be passthrough, count, trace or an absolute path");
	lib = sysi_real_dlopen(h, RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		sysi_die("cannot load the SYSI_HOOK library");
	sysi_hook_cur = (sysi_hook_fn)dlsym(lib, "sysi_hook");
	if (!sysi_hook_cur)
		sysi_die("the SYSI_HOOK library has no sysi_hook symbol");
	sysi_hook_probe = (uintptr_t)sysi_hook_cur;
	flags = dlsym(lib, "sysi_hook_flags");
	sysi_hook_cur_flags = flags ? *flags : 0;
	init = (void (*)(void))dlsym(lib, "sysi_hook_init");
	if (init)
		init();
}

void sysi_load_hook(void)
{
	load_hook();
	sysi_dispatch_setup();
}
