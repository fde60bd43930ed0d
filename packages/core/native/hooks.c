/* hooks.c — choosing the hook (SYSI_HOOK), the built-in passthrough hook, the count and trace hooks' SIGPIPE watch. */
#define _GNU_SOURCE /* REG_RIP, REG_RAX */
#include <asm/unistd.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include "internal.h"

void *sysi_real_dlopen(const char *file, int mode);

uintptr_t sysi_hook_probe;

SYSI_HOT long sysi_hook_passthrough(struct sysi_call *c)
{
	return sysi_perform_call(c);
}

/*
 * The count or trace hook's call in flight on this thread, for the master's SIGPIPE watch: a
 * write failing with EPIPE raises SIGPIPE on its return, whose default action kills the process
 * before the hook sees the EPIPE. watch_epipe accounts for it then and clears this, so the
 * hook does not do it again when a program handler lets the write return.
 */
__thread struct sysi_call *sysi_inflight __attribute__((tls_model("initial-exec")));
#define inflight sysi_inflight
extern const char sysi_raw6_ret[], sysi_count_sys_ret[];

SYSI_HOT long sysi_perform_watched(struct sysi_call *c, int *mine)
{
	struct sysi_call *outer = inflight; /* a signal handler's call inside another's */
	long r;
	inflight = c;
	r = sysi_perform_call(c);
	*mine = inflight == c;
	inflight = outer;
	return r;
}

/*
 * From the master, after a program handler it ran returned: the rt_sigreturn it makes next
 * (unhooked, from libsysi's restorer) is the one the program's restorer would have made; uc,
 * the context it restores (0: a frame that ran no program handler: no trace line).
 */
void sysi_count_sigreturn(const void *uc)
{
	if (sysi_hook_is_count(sysi_hook_cur) && sysi_stats)
		__atomic_fetch_add(&sysi_stats->syscalls[__NR_rt_sigreturn].calls, 1, __ATOMIC_RELAXED);
	else if (uc && sysi_hook_cur == sysi_hook_trace)
		sysi_trace_sigreturn_uc(uc);
}

/*
 * The count fast paths of strategy entries (sysi.h SYSI_FAST_COUNT): each one's point right
 * after its `syscall`, where it continues when it counts no error, and where it keeps nr
 * (relative to rsp). Appended under libsysi's module lock (prepare_site) or in the
 * constructor; read by the SIGPIPE watch on any thread.
 */
#define MAX_COUNT_WATCH 64
static struct {
	uintptr_t ret, skip;
	long nr_off;
} count_watch[MAX_COUNT_WATCH];
static unsigned ncount_watch;

int sysi_count_watch(uintptr_t ret, uintptr_t skip, long nr_off)
{
	unsigned n = __atomic_load_n(&ncount_watch, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++)
		if (count_watch[i].ret == ret)
			return 0;
	if (n == MAX_COUNT_WATCH)
		return -1;
	count_watch[n].ret = ret;
	count_watch[n].skip = skip;
	count_watch[n].nr_off = nr_off;
	__atomic_store_n(&ncount_watch, n + 1, __ATOMIC_RELEASE);
	return 0;
}

/*
 * An entry's count fast path whose call just failed with EPIPE: its error is counted here (the
 * SIGPIPE may kill the process before the entry counts it), and the context moves to the
 * entry's `skip`, so that the entry does not count it again when a program handler lets it go
 * on. The master hands the observer its own ucontext, which it may edit (as watchers do).
 */
static int watch_epipe_fast(const ucontext_t *uc)
{
	greg_t *g = (greg_t *)uc->uc_mcontext.gregs;
	unsigned n = __atomic_load_n(&ncount_watch, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++) {
		long nr;
		if ((uintptr_t)g[REG_RIP] != count_watch[i].ret)
			continue;
		nr = *(const long *)(uintptr_t)(g[REG_RSP] + count_watch[i].nr_off);
		if (sysi_stats && (unsigned long)nr < SYSI_STATS_NSYSCALLS)
			__atomic_fetch_add(&sysi_stats->syscalls[nr].errors, 1, __ATOMIC_RELAXED);
		g[REG_RIP] = (greg_t)count_watch[i].skip;
		return 1;
	}
	return 0;
}

/* The SIGPIPE watch (from the master): did the in-flight call just fail with EPIPE? */
static void watch_epipe(const void *ucontext)
{
	const ucontext_t *uc = ucontext;
	struct sysi_call *c = inflight;
	greg_t rip = uc->uc_mcontext.gregs[REG_RIP];
	if (uc->uc_mcontext.gregs[REG_RAX] == -EPIPE && watch_epipe_fast(uc))
		return;
	if (!c || (rip != (greg_t)(uintptr_t)sysi_raw6_ret && rip != (greg_t)(uintptr_t)sysi_count_sys_ret) ||
	    uc->uc_mcontext.gregs[REG_RAX] != -EPIPE)
		return;
	inflight = 0;
	if (sysi_hook_cur == sysi_hook_trace) {
		sysi_trace_line(c, -EPIPE);
	} else if (sysi_stats) { /* the count hook */
		struct sysi_stats_syscall *s = (unsigned long)c->nr < SYSI_STATS_NSYSCALLS
						       ? &sysi_stats->syscalls[c->nr]
						       : &sysi_stats->other;
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
	}
}

/*
 * Where a hook library goes. zpoline's entries live below 4 GiB (page 0 and its entry pages);
 * on this kind of core an indirect call from there to a hook 2^37 bytes away or more (where
 * dlopen puts libraries, near the stack) is slow: measured 10.5 ns against 6 ns per hooked call
 * in one run, depending on the address-space layout. So with SYSI_HOOK_LOW=1 (the CLI sets it
 * when zpoline heads the chain; SYSI_HOOK_LOW=0 or unset: where dlopen puts it) every free gap
 * of the address space between LOW_CEIL and the stack is reserved (PROT_NONE, no memory) while
 * dlopen maps the library, and so is a random span [LOW_CEIL - R, LOW_CEIL), R < LOW_SPAN:
 * mmap(NULL) then picks the highest gap below LOW_CEIL - R, so the library lands at one of
 * 2^23 page positions (the kernel's own mmap randomisation has 2^28). The reservations are
 * released right after; without a place below LOW_CEIL the library goes where dlopen puts it.
 * Runs in the constructor, before any thread of the program exists.
 */
#define LOW_CEIL (1UL << 36)       /* 64 GiB */
#define LOW_SPAN (1UL << 35)       /* the random span below it: 32 GiB */
#define STACK_MARGIN (256UL << 20) /* never reserved below the stack: its growth */
#define MAPS_BUF 65536
#define MAX_RESV 128

struct resv {
	uintptr_t addr[MAX_RESV];
	unsigned long len[MAX_RESV];
	int n;
};

/* SYSI_HOOK_LOW=1 (set by the CLI when zpoline heads the chain). */
static int want_low(void)
{
	const char *v = sysi_getenv("SYSI_HOOK_LOW");
	return v && v[0] == '1';
}

static unsigned long parse_hex(const char **p)
{
	unsigned long v = 0;
	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (unsigned long)(c - 'a' + 10);
		else
			return v;
	}
}

/* Reserve the gaps of /proc/self/maps in [LOW_CEIL, stack - STACK_MARGIN); 0 or -1. */
static int reserve_high(struct resv *rv)
{
	char *buf = sysi_map_pages(MAPS_BUF);
	const char *p, *end;
	unsigned long prev = LOW_CEIL, top = 0, a, b;
	long fd, n, got = 0;

	rv->n = 0;
	if (!buf)
		return -1;
	fd = raw4(__NR_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		sysi_unmap(buf, MAPS_BUF);
		return -1;
	}
	while ((n = raw3(__NR_read, fd, buf + got, MAPS_BUF - 1 - got)) > 0)
		got += n;
	raw1(__NR_close, fd);
	end = buf + got;
	/* the stack's start first (its line comes late) */
	for (p = buf; got < MAPS_BUF - 1 && p < end;) {
		const char *l = p;
		a = parse_hex(&p);
		while (p < end && *p != '\n')
			p++;
		for (const char *q = l; q + 7 <= p; q++)
			if (!sysi_strncmp(q, "[stack]", 7))
				top = a - STACK_MARGIN;
		p++;
	}
	for (p = buf; top > LOW_CEIL && p < end && rv->n < MAX_RESV;) {
		a = parse_hex(&p);
		p++;
		b = parse_hex(&p);
		while (p < end && *p != '\n')
			p++;
		p++;
		if (a > top)
			a = top;
		if (a > prev) {
			long r = raw6(__NR_mmap, prev, a - prev, PROT_NONE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
			if (r == (long)prev) {
				rv->addr[rv->n] = prev;
				rv->len[rv->n++] = a - prev;
			} else if (r >= 0 || r < -4095) {
				raw2(__NR_munmap, r, a - prev);
			}
		}
		if (b > prev)
			prev = b;
	}
	/* a random span just below the ceiling: the library lands below it */
	if (top > LOW_CEIL && rv->n < MAX_RESV) {
		unsigned long r = 0, span;
		if (raw3(__NR_getrandom, &r, sizeof r, 1 /* GRND_NONBLOCK */) == (long)sizeof r) {
			long m;
			span = (r % (LOW_SPAN >> 12)) << 12;
			m = span ? raw6(__NR_mmap, LOW_CEIL - span, span, PROT_NONE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
						MAP_FIXED_NOREPLACE,
					-1, 0)
				 : -1;
			if (m == (long)(LOW_CEIL - span)) {
				rv->addr[rv->n] = LOW_CEIL - span;
				rv->len[rv->n++] = span;
			} else if (m >= 0 || m < -4095) { /* a kernel that took the address as a hint */
				raw2(__NR_munmap, m, span);
			}
		}
	}
	/* the buffer's own pages stay reserved: freed now, they would be the first hole found */
	if (rv->n < MAX_RESV &&
	    raw6(__NR_mmap, buf, MAPS_BUF, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == (long)buf) {
		rv->addr[rv->n] = (uintptr_t)buf;
		rv->len[rv->n++] = MAPS_BUF;
	} else {
		sysi_unmap(buf, MAPS_BUF);
	}
	return top > LOW_CEIL ? 0 : -1;
}

static void release(struct resv *rv)
{
	for (int i = 0; i < rv->n; i++)
		raw2(__NR_munmap, rv->addr[i], rv->len[i]);
	rv->n = 0;
}

static void *open_hook(const char *path)
{
	static struct resv rv;
	void *lib;
	if (!want_low())
		return sysi_real_dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (reserve_high(&rv) < 0)
		sysi_debug("no address-space reservation for the hook library");
	lib = sysi_real_dlopen(path, RTLD_NOW | RTLD_LOCAL);
	release(&rv);
	if (!lib)	/* e.g. a bottom-up layout (unlimited stack) found no room below the ceiling */
		lib = sysi_real_dlopen(path, RTLD_NOW | RTLD_LOCAL);
	return lib;
}

/* sysi_die with dlerror()'s reason: "<what>: <reason>". */
static _Noreturn void hook_die(const char *what)
{
	char msg[480], *e = msg, *end = msg + sizeof msg - 1;
	const char *why = dlerror();
	for (const char *s = what; *s && e < end; s++)
		*e++ = *s;
	if (why)
		for (const char *s = ": "; *s && e < end; s++)
			*e++ = *s;
	for (const char *s = why; s && *s && e < end; s++)
		*e++ = *s;
	*e = 0;
	sysi_die(msg);
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
		const char *t = sysi_getenv("SYSI_COUNT_TIME");
		sysi_hook_cur = t && t[0] == '1' ? sysi_hook_count_timed : sysi_hook_count;
		sysi_observe_signal(SIGPIPE, watch_epipe); /* errors of writes SIGPIPE kills */
		return;
	}
	if (!sysi_strcmp(h, "trace")) {
		sysi_observe_signal(SIGPIPE, watch_epipe); /* lines of writes SIGPIPE kills */
		if (sysi_trace_setup() < 0)
			sysi_die("cannot open SYSI_TRACE_FILE");
		sysi_hook_cur = sysi_hook_trace;
		return;
	}
	/* "[static]/hook": a hook linked into a static program's runtime (static.c's dlopen) */
	if (h[0] != '/' && sysi_strncmp(h, "[static]/", 9))
		sysi_die("SYSI_HOOK must be passthrough, count, trace or an absolute path");
	lib = open_hook(h);
	if (!lib)
		hook_die("cannot load the SYSI_HOOK library");
	sysi_hook_cur = (sysi_hook_fn)dlsym(lib, "sysi_hook");
	if (sysi_hook_cur)
		sysi_code_add((const void *)sysi_hook_cur); /* a signal there is deferred (signal.c) */
	if (!sysi_hook_cur)
		hook_die("the SYSI_HOOK library has no sysi_hook symbol");
	sysi_hook_probe = (uintptr_t)sysi_hook_cur;
	if (sysi_debug_on) {
		char msg[64];
		*sysi_fmt_hex(sysi_stpcpy(msg, "hook at "), sysi_hook_probe) = 0;
		sysi_debug(msg);
	}
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
