/*
 * static.c — libsysi linked into a statically linked program by `sysi patch` (docs/patch.md):
 * what the dynamic loader and libc give the preloaded runtime, made here from the initial
 * stack and raw system calls, so that libsysi's own sources run unchanged.
 *
 *   - the environment (environ) and the auxiliary vector from the initial stack;
 *   - dl_iterate_phdr: two modules, the program (its program headers without the runtime's
 *     segments, name "") and the runtime ("[sysi]": its segments, never planned);
 *   - dlopen/dlsym for the strategy runtimes linked in (entries.c, generated: their entry
 *     symbols); a hook library cannot be loaded (dlopen fails, dlerror says why);
 *   - per-thread state without the program's TLS: libsysi's __thread variables are compiled to
 *     %gs-relative accesses (Makefile), and each thread gets its own block (gs base) the first
 *     time it enters the runtime (a new thread inherits its creator's gs base): the master
 *     signal handler calls sysi_thread_enter before it touches any of them (a gettid: is the
 *     block this thread's?), and the strategies' entries reach the hook and the dispatcher
 *     through wrappers (sysi_dispatch_wrap) that compare the block's key with the program's
 *     own thread pointer, the %fs base, which every glibc, musl and Go thread has to itself;
 *   - the constructors (the runtime's .init_array, in priority order) before the program's entry.
 */
#define _GNU_SOURCE
#include <asm/unistd.h>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <signal.h>
#include <sys/mman.h>
#include "../internal.h"

#define ARCH_SET_GS 0x1001
#define ARCH_GET_FS 0x1003
#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif
#define HWCAP2_FSGSBASE (1ul << 1) /* the kernel lets user code run rdfsbase (CR4.FSGSBASE) */

/* Written by `sysi patch` (packages/core/src/patch/static-writer.ts): the program's entry. */
__attribute__((used, visibility("hidden"), section(".data"))) uintptr_t sysi_static_entry;

char **environ;
char **__environ;

extern const ElfW(Ehdr) __ehdr_start;      /* the runtime's own headers (mapped with it) */
extern const char __executable_start[], _end[];
extern void (*__init_array_start[])(int, char **, char **);
extern void (*__init_array_end[])(int, char **, char **);

/* vdso.c */
extern int sysi_static_vdso_on;
void sysi_static_vdso_start(void);
void sysi_static_vdso_thread(void);
void sysi_static_vdso_after(const struct sysi_call *c, long ret);

/* exe.c */
void sysi_static_exe_start(char **envp, uintptr_t *auxv);

struct sysi_static_entry { const char *name; const void *fn; };
extern const struct sysi_static_entry sysi_static_entries[]; /* entries.c, ends with {0, 0} */

static const uintptr_t *auxv_start;
static const ElfW(Phdr) *prog_phdr;
static unsigned prog_phnum;
static ElfW(Phdr) mine[64], theirs[16];
static unsigned nmine, ntheirs;
static uintptr_t bias;

/* Thread blocks: [TLS image | tcb], gs base = &tcb (x86-64 TLS variant II). */
struct tcb {
	struct tcb *self; /* %gs:0, as the compiler expects of a thread pointer */
	long tid, pid;
	uintptr_t fs;     /* the key: the %fs base of the thread this block was last checked for */
};
static int fsgsbase; /* rdfsbase usable (AT_HWCAP2), else arch_prctl(ARCH_GET_FS) */
static const unsigned char *tls_image;
static size_t tls_filesz, tls_memsz, tls_off; /* tls_off: image size rounded to its alignment */

static struct tcb *current(void)
{
	struct tcb *t;
	__asm__ volatile("mov %%gs:0, %0" : "=r"(t));
	return t;
}

static struct tcb *new_block(const struct tcb *from)
{
	size_t size = (tls_off + sizeof(struct tcb) + 4095) & ~4095ul;
	long p = raw6(__NR_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct tcb *t;
	if (p < 0 && p > -4096)
		sysi_die("cannot map a thread block");
	t = (struct tcb *)(p + tls_off);
	if (from) /* a fork child: its state is its parent's at the fork */
		memcpy((void *)p, (const char *)from - tls_off, tls_off);
	else
		memcpy((void *)p, tls_image, tls_filesz); /* the rest is zero (fresh pages) */
	t->self = t;
	return t;
}

/* The program's thread pointer: rdfsbase (~1 ns), or a system call where the kernel forbids it. */
static inline uintptr_t fs_base(void)
{
	uintptr_t v;
	if (__builtin_expect(fsgsbase, 1)) {
		__asm__ volatile("rdfsbase %0" : "=r"(v));
		return v;
	}
	sysi_runtime_work(1);
	raw2(__NR_arch_prctl, ARCH_GET_FS, &v);
	sysi_runtime_work(0);
	return v;
}

/*
 * A thread whose gs base is not its own (a new thread or process inherits its creator's) gets
 * its own block: a zeroed template for a new thread, a copy for a fork child (its state is its
 * parent's at the fork; a vfork child shares its parent's memory, so it must not write the
 * parent's). Signals stay blocked meanwhile: a master handler running between the mmap and
 * ARCH_SET_GS would give the thread a second block, and what it recorded there (a deferred
 * signal) would be lost when this one takes over.
 */
static void own_block(struct tcb *t, long tid)
{
	uint64_t all = ~0ul, old;
	struct tcb *n;
	long pid;
	raw4(__NR_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
	t = current(); /* a handler may have switched it since the caller looked */
	if (t->tid != tid) {
		pid = raw0(__NR_getpid);
		n = new_block(t->pid != pid ? t : 0);
		n->tid = tid;
		n->pid = pid;
		raw2(__NR_arch_prctl, ARCH_SET_GS, n);
		sysi_static_vdso_thread(); /* SUD is not inherited (vdso.c) */
	}
	raw4(__NR_rt_sigprocmask, SIG_SETMASK, &old, 0, sizeof old);
}

/*
 * Called first on every entry of a thread into the runtime through the master signal handler:
 * one gettid per entry; the block of a thread that exits is not reused. The block's key
 * becomes the thread's %fs base.
 */
void sysi_thread_enter(void)
{
	struct tcb *t = current();
	long tid;
	sysi_runtime_work(1);
	tid = raw0(__NR_gettid);
	if (t->tid != tid)
		own_block(t, tid);
	current()->fs = fs_base();
	sysi_runtime_work(0);
}

/*
 * The strategies' entries (punning's, zpoline's) call the hook and the dispatcher without the
 * master, so these wrappers stand in for them (sysi_dispatch_wrap): the block is this thread's
 * when its key is the thread's %fs base, exactly as a __thread variable of a dynamic program is
 * the thread's when %fs says so (every glibc, musl and Go thread has its own; a vfork child
 * shares its parent's, as there). A thread whose %fs base is not the key (a new thread, or one
 * that set its %fs: glibc's and Go's start-up) takes the gettid path once. Per call: rdfsbase,
 * one load from the block, a compare.
 */
static long (*fast_real)(struct sysi_call *c);
static int (*dispatch_real)(struct sysi_call *c);

static __attribute__((noinline, cold)) void rekey(void)
{
	sysi_thread_enter();
}

static inline void check_block(void)
{
	uintptr_t key;
	__asm__ volatile("mov %%gs:%c1, %0" : "=r"(key) : "i"(__builtin_offsetof(struct tcb, fs)));
	if (__builtin_expect(key != fs_base(), 0))
		rekey();
}

/* vdso.c: the program's own SUD replaces sysi's on a thread; a fork child is armed again */
#define VDSO_WATCH(nr) ((nr) == __NR_prctl || (nr) == __NR_fork || (nr) == __NR_clone)

static long fast_checked(struct sysi_call *c)
{
	long r;
	check_block();
	if (__builtin_expect(!sysi_static_vdso_on || !VDSO_WATCH(c->nr), 1))
		return fast_real(c);
	r = fast_real(c);
	sysi_static_vdso_after(c, r);
	return r;
}

static int dispatch_checked(struct sysi_call *c)
{
	int r;
	check_block();
	if (__builtin_expect(!sysi_static_vdso_on || !VDSO_WATCH(c->nr), 1))
		return dispatch_real(c);
	r = dispatch_real(c);
	if (r == 0)
		sysi_static_vdso_after(c, c->ret);
	return r;
}

void sysi_dispatch_wrap(void)
{
	if (sysi_api.dispatch != dispatch_checked) {
		dispatch_real = sysi_api.dispatch;
		sysi_api.dispatch = dispatch_checked;
	}
	if (sysi_api.fast_hook && sysi_api.fast_hook != fast_checked) {
		fast_real = sysi_api.fast_hook;
		sysi_api.fast_hook = fast_checked;
	}
}

static int in_runtime(const ElfW(Phdr) *ph)
{
	uintptr_t lo = bias + ph->p_vaddr;
	return ph->p_type == PT_LOAD && lo >= (uintptr_t)__executable_start && lo < (uintptr_t)_end;
}

static void split_phdrs(void)
{
	uintptr_t base = (uintptr_t)&__ehdr_start;
	const ElfW(Phdr) *own = (const void *)(base + __ehdr_start.e_phoff);
	for (unsigned i = 0; i < prog_phnum; i++)
		if (prog_phdr[i].p_type == PT_PHDR)
			bias = (uintptr_t)prog_phdr - prog_phdr[i].p_vaddr;
	for (unsigned i = 0; i < prog_phnum; i++) {
		if (in_runtime(&prog_phdr[i])) {
			if (ntheirs < 16)
				theirs[ntheirs++] = prog_phdr[i];
		} else if (nmine < 64)
			mine[nmine++] = prog_phdr[i];
	}
	/* the runtime's TLS template, from its own program headers (link-time addresses) */
	for (unsigned i = 0; i < __ehdr_start.e_phnum; i++)
		if (own[i].p_type == PT_TLS) {
			size_t a = own[i].p_align ? own[i].p_align : 1;
			tls_image = (const unsigned char *)(base + own[i].p_vaddr);
			tls_filesz = own[i].p_filesz;
			tls_memsz = own[i].p_memsz;
			tls_off = (tls_memsz + a - 1) & ~(a - 1); /* the linker's TP offset base */
		}
}

int dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
	struct dl_phdr_info info = { 0 };
	int r;
	info.dlpi_addr = bias;
	info.dlpi_name = "";
	info.dlpi_phdr = mine;
	info.dlpi_phnum = (ElfW(Half))nmine;
	r = cb(&info, sizeof info, data);
	if (r)
		return r;
	info.dlpi_addr = bias;
	info.dlpi_name = "[sysi]";
	info.dlpi_phdr = theirs;
	info.dlpi_phnum = (ElfW(Half))ntheirs;
	return cb(&info, sizeof info, data);
}

static char handle; /* the one "library": the runtime itself */

static void *static_dlopen(const char *file, int mode)
{
	(void)mode;
	/* strategy runtimes (and a hook) are linked in and named "[static]/<name>" by sysi patch */
	if (file && !sysi_strncmp(file, "[static]/", 9))
		return &handle;
	return 0;
}

void *dlsym(void *h, const char *name)
{
	if (h == RTLD_NEXT)
		return sysi_strcmp(name, "dlopen") ? 0 : (void *)static_dlopen;
	if (h != &handle)
		return 0;
	for (const struct sysi_static_entry *e = sysi_static_entries; e->name; e++)
		if (!sysi_strcmp(e->name, name))
			return (void *)e->fn;
	return 0;
}

int dladdr(const void *addr, Dl_info *info)
{
	(void)addr;
	(void)info;
	return 0; /* no file name: the exec checks of escape.c stay off */
}

char *dlerror(void)
{
	return (char *)"a statically linked program cannot load libraries (the runtime is linked in)";
}

unsigned long getauxval(unsigned long type)
{
	for (const uintptr_t *a = auxv_start; a && a[0] != AT_NULL; a += 2)
		if (a[0] == type)
			return a[1];
	return 0;
}

void sysi_static_init(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1), **envp = argv + argc + 1;
	char **e = envp, **e2;
	uintptr_t *auxv;
	struct tcb *t;

	environ = __environ = envp;
	while (*e)
		e++;
	auxv_start = (const uintptr_t *)(e + 1);
	for (auxv = (uintptr_t *)(e + 1); auxv[0] != AT_NULL; auxv += 2)
		if (auxv[0] == AT_PHDR)
			prog_phdr = (const void *)auxv[1];
		else if (auxv[0] == AT_PHNUM)
			prog_phnum = (unsigned)auxv[1];
	if (!prog_phdr)
		sysi_die("no AT_PHDR in the auxiliary vector");
	split_phdrs();
	fsgsbase = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) != 0;
	sysi_static_exe_start(envp, (uintptr_t *)auxv_start); /* exe.c: before sysi's variables hide */
	t = new_block(0);
	t->tid = raw0(__NR_gettid);
	t->pid = raw0(__NR_getpid);
	t->fs = fs_base();
	raw2(__NR_arch_prctl, ARCH_SET_GS, t);
	for (void (**f)(int, char **, char **) = __init_array_start; f < __init_array_end; f++)
		(*f)((int)argc, argv, envp);
	sysi_static_vdso_start(); /* the vDSO's own calls (vdso.c) */
	/* libsysi took its variables out of the environment in place (env.c): the program's start
	 * code looks for the auxiliary vector after the environment's end, so it moves there */
	for (e2 = envp; *e2; e2++)
		;
	if (e2 < e) {
		uintptr_t *to = (uintptr_t *)(e2 + 1), *from = (uintptr_t *)(e + 1);
		do {
			to[0] = from[0];
			to[1] = from[1];
			to += 2;
			from += 2;
		} while (to[-2] != AT_NULL);
		auxv_start = (const uintptr_t *)(e2 + 1);
	}
}
