/*
 * internal.h — libsysi's private declarations. Everything here has hidden visibility (the
 * library is built with -fvisibility=hidden); only SYSI_EXPORT symbols form the ABI.
 */
#ifndef SYSI_INTERNAL_H
#define SYSI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "include/sysi.h"

#define SYSI_EXPORT __attribute__((visibility("default")))
/*
 * The per-call path (dispatcher, built-in count/passthrough hooks, raw syscall) shares one
 * text section and its data one data section: on kernels that flush the user TLB at every
 * kernel entry (PTI without PCID) each further page a hooked call touches costs a page walk
 * per call.
 */
#if defined(__GNUC__) && !defined(__clang__)
/* their returns go through syscall.S's __x86_return_thunk: a `ret` after a syscall is costly */
#define SYSI_HOT __attribute__((section(".text.hot.sysi"), function_return("thunk-extern")))
#else
#define SYSI_HOT __attribute__((section(".text.hot.sysi")))
#endif
#define SYSI_HOT_DATA __attribute__((section(".data.sysi_hot")))

#define SYSI_MAX_RUNTIMES 8
#define SYSI_MAX_MODULES 512

/* raw system calls (syscall.S); never patched because libsysi is never planned */
long sysi_raw6(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
void sysi_restorer(void);
#define raw0(n) sysi_raw6((n), 0, 0, 0, 0, 0, 0)
#define raw1(n, a) sysi_raw6((n), (long)(a), 0, 0, 0, 0, 0)
#define raw2(n, a, b) sysi_raw6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define raw3(n, a, b, c) sysi_raw6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define raw4(n, a, b, c, d) sysi_raw6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define raw6(n, a, b, c, d, e, f) \
	sysi_raw6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

/* string.c: freestanding helpers (gcc may also emit calls to memcpy/memset: ours bind locally) */
size_t sysi_strlen(const char *s);
int sysi_strcmp(const char *a, const char *b);
int sysi_strncmp(const char *a, const char *b, size_t n);
char *sysi_stpcpy(char *d, const char *s);
char *sysi_fmt_dec(char *p, long v);
char *sysi_fmt_udec(char *p, unsigned long v);
char *sysi_fmt_hex(char *p, unsigned long v); /* "0x…" */
long sysi_parse_dec(const char *s, const char **end);
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* env.c */
const char *sysi_getenv(const char *name);
void sysi_env_hide(void);
void sysi_env_report(void); /* after sysi_stats_open: /proc/PID/environ could not be set */
extern int sysi_env_hiding;
struct sysi_exec_pending { void *p; size_t n; long tid; };
struct sysi_exec_env {
	char **envp; /* what the kernel gets */
	void *map;   /* its mapping, or 0 */
	size_t len;
	struct sysi_exec_pending *slot;
};
enum { SYSI_EXEC_INSTRUMENTED, SYSI_EXEC_NATIVE }; /* sysi's variables given back, or not */
void sysi_exec_env(const char *const *envp, struct sysi_exec_env *e, int how);
void sysi_exec_env_done(struct sysi_exec_env *e);
void sysi_debug(const char *msg);
void sysi_debugf2(const char *a, const char *b);
_Noreturn void sysi_die(const char *msg);
extern int sysi_debug_on;

/* alloc.c: page-granular bump allocator over raw mmap (never freed) */
void *sysi_alloc(size_t n);
void *sysi_map_pages(size_t n);
void sysi_unmap(void *p, size_t n);

/* lock.c */
void sysi_lock(volatile int *l);
void sysi_unlock(volatile int *l);

/* runtimes.c */
struct sysi_rt {
	const struct sysi_strategy_ops *ops;
	uintptr_t base_probe; /* an address inside the runtime .so (to skip it when patching) */
	int ok;               /* init returned 0 */
	int stats_slot;       /* index in the stats file, or -1 */
	int busy;             /* prepare_site was called in this batch: ready() is due */
};
extern struct sysi_rt sysi_rts[SYSI_MAX_RUNTIMES];
extern unsigned sysi_nrts;
extern struct sysi_runtime_api sysi_api; /* fast_hook set by sysi_dispatch_setup() */
void sysi_load_runtimes(void);
int sysi_runtime_by_name(const char *name); /* index or -1 */
void sysi_runtimes_atfork(void);
int sysi_map_code(uintptr_t addr, const void *code, uint64_t len);

/* hooks.c */
typedef long (*sysi_hook_fn)(struct sysi_call *c);
extern sysi_hook_fn sysi_hook_cur;
extern uint32_t sysi_hook_cur_flags;
extern uintptr_t sysi_hook_probe; /* address inside the hook .so, or 0 */
void sysi_load_hook(void);
void sysi_hooks_atfork(void);
long sysi_hook_passthrough(struct sysi_call *c);
long sysi_hook_count(struct sysi_call *c);
long sysi_hook_count_timed(struct sysi_call *c); /* SYSI_COUNT_TIME=1 */
void sysi_count_atfork(void);
int sysi_count_fast(uint32_t strategy, struct sysi_count_fast *out); /* sysi.h SYSI_FAST_COUNT */
int sysi_count_watch(uintptr_t ret, uintptr_t skip, long nr_off);   /* its SIGPIPE watch points */
#define sysi_hook_is_count(h) ((h) == sysi_hook_count || (h) == sysi_hook_count_timed)
long sysi_hook_trace(struct sysi_call *c);
int sysi_trace_setup(void);

/* stats.c */
/* a module's sites that sysi_apply_plan (patch.c) left unpatched */
struct sysi_left {
	unsigned refused; /* sites the plan gives no option (every strategy refused), uncertain
			   * ones (found only by a sweep: maybe not code) not counted */
	unsigned fell;    /* sites whose every planned option failed here (fell through) */
};
extern struct sysi_stats_file *sysi_stats;
void sysi_stats_open(void);
void *sysi_stats_map(size_t off, size_t len); /* stats.c: a part of the file (a count slab) */
int sysi_stats_slot(const char *name);
struct sysi_stats_syscall *sysi_stats_counter(long nr);
struct sysi_stats_syscall *sysi_stats_i386_counter(long nr); /* an int $0x80 call's; 0: none */
long sysi_count_int80(void *gregs); /* count.c: a trapped int $0x80 call made, counted as i386 */
const char *sysi_x32_name(long nr);
/* is fd the file "<dev>:<ino>" names (SYSI_STATS_ID, SYSI_TRACE_FD)? null or "": any */
int sysi_fd_is(long fd, const char *id);
/* one SYSI_UNPATCHED_FILE line for a module left (partly) unpatched; left 0: it had no plan */
void sysi_report_unpatched(const char *path, const struct sysi_left *left);
/* one complete line appended to SYSI_UNPATCHED_FILE (one write); 1 when written */
int sysi_report_line(const char *line, size_t n);
/* escape.c: perform an execve/execveat, reporting first when its image will not load libsysi */
long sysi_escape_exec(struct sysi_call *c);
#define sysi_stat_add(field, n) \
	do { if (sysi_stats) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED); } while (0)

/* dispatch.c */
int sysi_dispatch_impl(struct sysi_call *c);
void sysi_dispatch_setup(void);
void sysi_count_strategy(const struct sysi_call *c);
extern int sysi_fast_dispatch;
void sysi_dispatch_wrap(void); /* dispatch.c (weak), static/static.c: per-thread state check */
long sysi_static_readlink(const struct sysi_call *c, long r); /* static/exe.c (static builds only) */
long sysi_perform(struct sysi_call *c);
long sysi_perform_call(struct sysi_call *c); /* sysi_syscall() */
void sysi_filter_parse(void);

/* signal.c */
int sysi_claim_signal(int sig, int (*handler)(int, void *, void *));
int sysi_observe_signal(int sig, void (*observer)(const void *uc));
/* hooks.c: perform c as the count/trace hook's call in flight (*mine = 0: the SIGPIPE watch
 * already accounted for its EPIPE) */
long sysi_perform_watched(struct sysi_call *c, int *mine);
extern __thread struct sysi_call *sysi_inflight __attribute__((tls_model("initial-exec"))); /* hooks.c */
void sysi_trace_line(const struct sysi_call *c, long ret); /* trace.c: a complete call's line */
void sysi_count_sigreturn(const void *uc); /* hooks.c: the master returns from a program handler */
void sysi_trace_sigreturn_uc(const void *uc); /* trace.c: its trace line */
long sysi_sig_rt_sigaction(long sig, const void *act, void *oact, long size);
long sysi_sig_rt_sigprocmask(long how, const void *set, void *oset, long size);
/* signal.c: a signal that came while sysi code ran for an instrumented call (sysi.h
 * watch_context): re-queued and blocked until the entry leaves through sysi_release (syscall.S),
 * which keeps these fields (the offsets are its D_* constants) */
struct sysi_sigdefer {
	uint64_t pending; /* deferred signals (bits), blocked by sysi: nonzero: leave through
			   * sysi_release, which unblocks them (and only them) */
	uint64_t mask;    /* unused (kept: syscall.S's offsets) */
	uint64_t rip, rax, rdi, rsi, rdx, r10; /* the program's, kept by sysi_release */
	int in_master;    /* the master runs on this thread: its own code is not deferred */
};
extern __thread struct sysi_sigdefer sysi_sigdefer __attribute__((tls_model("initial-exec")));
void sysi_release(void);
extern const char sysi_release_ret[], sysi_release_end[];
void sysi_signal_setup(void);
void sysi_thread_enter(void); /* signal.c (weak), static/static.c: this thread's own state */
void sysi_code_add(const void *addr);
int sysi_watch_context(int (*fn)(void *uc));
uint64_t sysi_defer_pending(void);
extern int sysi_marker_on;
extern uint64_t sysi_claimed_mask;
extern uint64_t sysi_observed_mask;

/* hash.c: XXH64 with seed 0 (sysi.h SYSI PLAN FORMAT: checksum, module_hash) */
struct sysi_xxh64 {
	uint64_t v[4], total;
	unsigned char buf[32];
	unsigned n;
};
void sysi_xxh64_init(struct sysi_xxh64 *s);
void sysi_xxh64_update(struct sysi_xxh64 *s, const void *data, size_t len);
uint64_t sysi_xxh64_final(const struct sysi_xxh64 *s);
uint64_t sysi_xxh64(const void *data, size_t len);

/* modkey.c: the key and the module file's size (path filled only when there is no build-id);
 * the path on demand */
int sysi_module_key(const void *phdrs, unsigned nphdr, uintptr_t bias, const char *name,
		    char *key, size_t keysz, char *path, size_t pathsz, uint64_t *size);
int sysi_module_path(const char *name, char *path, size_t pathsz);

/* plan.c */
struct sysi_plan {
	const unsigned char *map;
	size_t size;
	const struct sysi_plan_header *h;
	const struct sysi_plan_strategy *strategies;
	const struct sysi_plan_site *sites;
	const struct sysi_plan_option *options;
	const struct sysi_plan_tramp *tramps;
	const char *strings;
	int borrowed; /* map lies in a patched program's note (embedded.c): never unmapped */
};
/* embedded.c: a program written by `sysi patch` */
int sysi_embedded(void);
const char *sysi_embedded_getenv(const char *name);
struct sysi_mod;
int sysi_embedded_plan(const struct sysi_mod *m, struct sysi_plan *p);
const char *sysi_embedded_off(void); /* why this runtime must not start, or 0 */
struct sysi_mod; /* patch.c */
/* 0 found and valid, -ENOENT no plan, -EINVAL corrupt or not this module's, -EACCES not
 * owned by the effective user or root, or writable by group/others */
int sysi_plan_open(const char *dir, const char *key, struct sysi_plan *p);
int sysi_plan_validate(struct sysi_plan *p, const struct sysi_mod *m);
void sysi_plan_close(struct sysi_plan *p);
int sysi_plan_ask_server(const char *sock, const char *path);

/* patch.c */
struct sysi_seg { uintptr_t lo, hi; int prot; };
struct sysi_mod {
	uintptr_t bias;
	const char *name;
	struct sysi_seg segs[16];
	unsigned nsegs;
	const char *key;      /* module key (sysi.h MODULE KEY) */
	uint64_t file_size;   /* the module file's st_size */
};
void sysi_apply_plan(const struct sysi_mod *m, struct sysi_plan *p, int threaded, struct sysi_left *left);

/* init.c: with SYSI_MARKER=1, bracket the runtime's own syscalls after the start marker
 * (SYSI_MARKER_WORK_BEGIN/END in sysi.h); a no-op otherwise */
void sysi_runtime_work(int begin);

/* modules.c */
void sysi_process_modules(int threaded);
void sysi_modules_atfork(void);
extern int sysi_ready;
int sysi_addr_in_module(uintptr_t addr, uintptr_t bias, const void *phdrs, unsigned n);

#endif
