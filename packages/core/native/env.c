/*
 * env.c — the environment: sysi's own variables hidden from the program and given back to its
 * execs; lookup without libc state; diagnostics, fatal errors.
 *
 * Under `sysi run` the environment names the variables sysi set (SYSI_HIDE, a comma list of
 * names; sysi.h, RUNTIME ENVIRONMENT). The constructor (sysi_env_hide, first) copies them and
 * SYSI_HIDE itself into private memory and takes them out of the environment block in place, so
 * that main's envp, environ and getenv agree: the program sees what a shell would have given
 * it. LD_PRELOAD is sysi's too: the first entry, which sysi set to libsysi[:the caller's
 * value]; the program gets the caller's own value back (SYSI_PROGRAM_LD_PRELOAD, set only when
 * the caller had one) or no LD_PRELOAD. The block keeps its length (the kernel's layout:
 * argv, envp, auxv): the freed slots at its end become null pointers, so a program that looks
 * for the auxiliary vector after the environment's end (Go) finds an empty one and reads
 * /proc/self/auxv instead (a static program's runtime moves the vector: static/static.c).
 *
 * Every execve/execveat that reaches the runtime (escape.c) gets an environment with them again
 * (sysi_exec_env): the program's, less any of sysi's names it set, plus sysi's own, LD_PRELOAD
 * = libsysi[:the program's value] in place of the program's LD_PRELOAD (which travels on in
 * SYSI_PROGRAM_LD_PRELOAD): a child is instrumented and hides them in turn, also after `env -i`
 * or a replaced LD_PRELOAD. The array is built in a mapping of its own, never in the program's
 * memory (a vfork child shares it with its parent). An image that must run natively (escape.c:
 * Go without cgo) gets the program's environment without any of sysi's instead.
 * /proc/PID/environ, the kernel's view of the original block, is pointed at the program's
 * environment too (show_env, below).
 */
#include <asm/unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <sys/uio.h>
#include "internal.h"

extern char **environ;
int sysi_debug_on;

#define MAX_HIDDEN 64
#define HIDE "SYSI_HIDE"
#define PROGRAM_PRELOAD "SYSI_PROGRAM_LD_PRELOAD" /* its value: the program's LD_PRELOAD */
#define PRELOAD_SUFFIX 13                         /* strlen("SYSI_PROGRAM_"): "LD_PRELOAD=…" */

int sysi_env_hiding;                  /* SYSI_HIDE was set: sysi's variables are hidden */
static const char *hidden[MAX_HIDDEN + 1]; /* private copies, "NAME=value"; null-ended */
static unsigned nhidden;
static const char *self;               /* libsysi as LD_PRELOAD named it (its first entry) */
static size_t self_len;

static const char *copy(const char *s)
{
	size_t n = sysi_strlen(s) + 1;
	char *d = sysi_alloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

/* The value of "NAME=value" s when its name is `name` (length n), else 0. */
static const char *value_of(const char *s, const char *name, size_t n)
{
	return !sysi_strncmp(s, name, n) && s[n] == '=' ? s + n + 1 : 0;
}

static const char *lookup(char *const *env, const char *name)
{
	size_t n = sysi_strlen(name);
	const char *v;
	for (; env && *env; env++)
		if ((v = value_of(*env, name, n)))
			return v;
	return 0;
}

/* Is the name of s (up to '=', at most len bytes of s known) one sysi hides? */
static int is_sysi_name(const char *s, size_t len, const char *list)
{
	size_t n = 0;
	while (n < len && s[n] && s[n] != '=')
		n++;
	if (n == len || s[n] != '=')
		return 0;
	if ((n == sizeof HIDE - 1 && !sysi_strncmp(s, HIDE, n)) ||
	    (n == sizeof PROGRAM_PRELOAD - 1 && !sysi_strncmp(s, PROGRAM_PRELOAD, n)))
		return 1;
	for (const char *l = list; l && *l;) {
		size_t m = 0;
		while (l[m] && l[m] != ',')
			m++;
		if (m == n && !sysi_strncmp(l, s, n))
			return 1;
		l += m + (l[m] != 0);
	}
	return 0;
}

const char *sysi_getenv(const char *name)
{
	size_t n = sysi_strlen(name);
	const char *v = sysi_embedded_getenv(name); /* a patched program's settings win */
	if (v)
		return v;
	for (unsigned i = 0; i < nhidden; i++)
		if ((v = value_of(hidden[i], name, n)))
			return v;
	return lookup(environ, name);
}

/* ------------------------------------------------------------ the kernel's view */

/*
 * /proc/PID/environ (what `ps e` and a program reading its own entry see) is the kernel's view:
 * the bytes from the mm's env_start to env_end, the strings of the original block, sysi's
 * included. After hiding they are pointed at exactly what the program sees, in its order:
 *   - in place when the visible strings open the block (`sysi run` puts its variables after
 *     the caller's: the usual case): env_end moves down and env_start stays at arg_end, where
 *     the kernel looks for the title of a program that writes it over its argv and environment
 *     (setproctitle: /proc/PID/cmdline reads on into the environment only then);
 *   - else a copy of the visible strings in libsysi's memory (as large as they are).
 * PR_SET_MM_MAP (CONFIG_CHECKPOINT_RESTORE; no capability while exe_fd is -1) sets every field
 * at once, from their values in /proc/self/stat and brk(0); auxv_size 0 leaves the auxiliary
 * vector alone. Without it (no /proc, a kernel without C/R) the single fields
 * PR_SET_MM_ENV_START/END, which need CAP_SYS_RESOURCE. The kernel checks only the order of the
 * pairs, that each lies above mmap_min_addr, and brk and the data segment against RLIMIT_DATA
 * (which the program's own brk calls already respect). Later setenv/putenv calls change the
 * program's environ, not this block: natively too /proc/PID/environ shows the initial one.
 */
static int env_shown; /* 1: /proc/PID/environ shows the program's environment; -errno: it could not */

#define PR_SET_MM_ 35
#define PR_SET_MM_ENV_START_ 10
#define PR_SET_MM_ENV_END_ 11
#define PR_SET_MM_MAP_ 14

/* The fields of /proc/self/stat PR_SET_MM_MAP needs (1-based, proc(5)), into m; 0 or -errno. */
static long read_stat(struct prctl_mm_map *m)
{
	static const unsigned char field[] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };
	__u64 *const to[] = { &m->start_code, &m->end_code, &m->start_stack, &m->start_data,
			      &m->end_data, &m->start_brk, &m->arg_start, &m->arg_end,
			      &m->env_start, &m->env_end };
	char buf[2048]; /* 52 fields of at most 20 digits, and the name */
	long fd = raw4(__NR_openat, AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC, 0), n = 0, r;
	const char *p = 0;
	unsigned f = 2, k = 0;

	if (fd < 0)
		return fd;
	while (n < (long)sizeof buf - 1 && (r = raw3(__NR_read, fd, buf + n, sizeof buf - 1 - n)) > 0)
		n += r;
	raw1(__NR_close, fd);
	buf[n] = 0;
	for (long i = 0; i < n; i++) /* the name (field 2) may hold spaces and parentheses */
		if (buf[i] == ')')
			p = buf + i + 1;
	for (; p && *p && k < sizeof field; p++) {
		if (*p != ' ')
			continue;
		if (++f != field[k])
			continue;
		*to[k] = 0;
		while (p[1] >= '0' && p[1] <= '9')
			*to[k] = *to[k] * 10 + (__u64)(*++p - '0');
		k++;
	}
	return k == sizeof field ? 0 : -EINVAL;
}

/* env_start and env_end one at a time (the kernel wants start <= end after each). */
static long set_single(uintptr_t start, uintptr_t end)
{
	long r = raw6(__NR_prctl, PR_SET_MM_, PR_SET_MM_ENV_START_, start, 0, 0, 0);
	if (r == -EINVAL) { /* the new start lies above the old end: the end first */
		r = raw6(__NR_prctl, PR_SET_MM_, PR_SET_MM_ENV_END_, end, 0, 0, 0);
		return r < 0 ? r : raw6(__NR_prctl, PR_SET_MM_, PR_SET_MM_ENV_START_, start, 0, 0, 0);
	}
	return r < 0 ? r : raw6(__NR_prctl, PR_SET_MM_, PR_SET_MM_ENV_END_, end, 0, 0, 0);
}

/* Point the kernel's view at environ (see above): 1, or -errno. */
static long show_env(void)
{
	struct prctl_mm_map m = { 0 };
	long have = read_stat(&m), r;
	char *p = (char *)(uintptr_t)m.env_start, *block;
	char **e = environ;
	size_t n = 0;

	if (have == 0) /* in place? */
		for (; *e == p && p < (char *)(uintptr_t)m.env_end; e++)
			p += sysi_strlen(p) + 1;
	if (have < 0 || *e || p > (char *)(uintptr_t)m.env_end) {
		for (e = environ; *e; e++)
			n += sysi_strlen(*e) + 1;
		block = sysi_alloc(n ? n : 1);
		if (!block)
			return -ENOMEM;
		p = block;
		for (e = environ; *e; e++)
			p = sysi_stpcpy(p, *e) + 1;
		m.env_start = (uintptr_t)block;
	}
	m.env_end = (uintptr_t)p;
	if (have == 0) {
		m.brk = (__u64)raw1(__NR_brk, 0);
		m.exe_fd = (__u32)-1;
		r = raw6(__NR_prctl, PR_SET_MM_, PR_SET_MM_MAP_, &m, sizeof m, 0, 0);
		if (r == 0)
			return 1;
	}
	r = set_single((uintptr_t)m.env_start, (uintptr_t)m.env_end);
	return r < 0 ? r : 1;
}

/* After sysi_stats_open: "environ ERRNO" in SYSI_UNPATCHED_FILE when the kernel refused (the
 * run's summary says so: the program's /proc/PID/environ still shows sysi's variables). */
void sysi_env_report(void)
{
	char line[32], *p;
	if (env_shown >= 0)
		return;
	p = sysi_stpcpy(line, "environ ");
	p = sysi_fmt_udec(p, (unsigned long)-env_shown);
	*p++ = '\n';
	sysi_report_line(line, (size_t)(p - line));
}

/* The constructor's first step (see the file comment). */
void sysi_env_hide(void)
{
	const char *list, *program_preload = 0, *pre;
	char **r, **w, **end;
	int preload_seen = 0;

	list = lookup(environ, HIDE);
	if (!list)
		return;
	pre = lookup(environ, "LD_PRELOAD");
	if (pre) { /* libsysi: the first entry, as the loader split it (at ':' and ' ') */
		while (pre[self_len] && pre[self_len] != ':' && pre[self_len] != ' ')
			self_len++;
		self = sysi_alloc(self_len + 1);
		if (self) {
			memcpy((char *)self, pre, self_len);
			((char *)self)[self_len] = 0;
		}
	}
	for (r = w = environ; *r; r++) {
		const char *s = *r;
		if (value_of(s, PROGRAM_PRELOAD, sizeof PROGRAM_PRELOAD - 1)) {
			program_preload = s + PRELOAD_SUFFIX; /* "LD_PRELOAD=…", in the block */
			continue;
		}
		if (is_sysi_name(s, (size_t)-1, list)) {
			if (nhidden == MAX_HIDDEN)
				sysi_die("too many variables in SYSI_HIDE");
			if (!(hidden[nhidden++] = copy(s)))
				sysi_die("cannot copy sysi's variables");
			continue;
		}
		*w++ = *r;
	}
	end = r;
	/* sysi's LD_PRELOAD: the first; the caller's value in its place, or nothing */
	for (r = environ; r < w; r++) {
		if (preload_seen || !value_of(*r, "LD_PRELOAD", 10))
			continue;
		preload_seen = 1;
		if (program_preload) {
			*r = (char *)program_preload;
			continue;
		}
		for (char **q = r; q + 1 < w; q++)
			q[0] = q[1];
		w--;
		break;
	}
	for (r = w; r < end; r++)
		*r = 0;
	sysi_env_hiding = 1;
	env_shown = show_env();
}

/* ------------------------------------------------------------ the environment of an exec */

/* Read up to n bytes of our own memory at addr: bytes read (0 on a fault). */
static long peek(const void *addr, void *out, size_t n)
{
	struct iovec local = { out, n }, remote = { (void *)addr, n };
	long r = raw6(__NR_process_vm_readv, raw0(__NR_getpid), &local, 1, &remote, 1, 0);
	return r < 0 ? 0 : r;
}

/*
 * Mappings of exec environments a CLONE_VM child (vfork, posix_spawn) left in its parent's
 * address space when its exec succeeded: freed by a later exec once that child no longer shares
 * this address space (kcmp). A failed exec frees its own at once.
 */
#define NPENDING 32
#define KCMP_VM_ 1
static struct sysi_exec_pending pending[NPENDING];

static void reap(long pid)
{
	for (unsigned i = 0; i < NPENDING; i++) {
		void *p = __atomic_load_n(&pending[i].p, __ATOMIC_ACQUIRE);
		long r;
		if (!p || p == (void *)1)
			continue;
		/* freed when it names another address space, or no task (ESRCH); kept while it
		 * shares ours, and when kcmp cannot tell (ENOSYS, or EPERM: not dumpable) */
		r = raw6(__NR_kcmp, pid, pending[i].tid, KCMP_VM_, 0, 0, 0);
		if (r <= 0 && r != -3)
			continue;
		if (__atomic_compare_exchange_n(&pending[i].p, &p, (void *)1, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			sysi_unmap(p, pending[i].n);
			__atomic_store_n(&pending[i].p, (void *)0, __ATOMIC_RELEASE);
		}
	}
}

static struct sysi_exec_pending *remember(void *p, size_t n, long tid)
{
	for (unsigned i = 0; i < NPENDING; i++) {
		void *z = 0;
		if (__atomic_compare_exchange_n(&pending[i].p, &z, (void *)1, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			pending[i].n = n;
			pending[i].tid = tid;
			__atomic_store_n(&pending[i].p, p, __ATOMIC_RELEASE);
			return &pending[i];
		}
	}
	return 0; /* all taken: the mapping stays if a CLONE_VM child's exec succeeds */
}

#define CHUNK 64          /* envp pointers read at once */
#define NAME_MAX_ 64      /* names longer than this are never sysi's */
#define PRELOAD_MAX 65536 /* a longer LD_PRELOAD of the program passes unmerged */

/* Read the string at s into buf (at most max bytes with its NUL), one page at a time: its
 * length, or -1 when it is longer or unreadable. */
static long peek_str(const char *s, char *buf, size_t max)
{
	size_t n = 0;
	while (n < max) {
		size_t want = 4096 - ((uintptr_t)(s + n) & 4095);
		long got;
		if (want > max - n)
			want = max - n;
		got = peek(s + n, buf + n, want);
		for (long i = 0; i < got; i++)
			if (!buf[n + i])
				return (long)(n + i);
		if (got < (long)want)
			return -1;
		n += want;
	}
	return -1;
}

/* The first bytes of the string at s (up to NAME_MAX_, stopping at an unreadable page). */
static long peek_name(const char *s, char *buf)
{
	size_t first = 4096 - ((uintptr_t)s & 4095);
	long n = peek(s, buf, first < NAME_MAX_ ? first : NAME_MAX_);
	if (n == (long)first && first < NAME_MAX_)
		n += peek(s + first, buf + first, NAME_MAX_ - first);
	return n;
}

/*
 * Build the environment for an exec of envp (program memory: a bad pointer stays for the
 * kernel to refuse with EFAULT). On any failure e->envp is envp unchanged.
 * SYSI_EXEC_NATIVE (an image that must not load libsysi: escape.c's Go without cgo): the
 * program's entries less sysi's names and less libsysi in LD_PRELOAD (which the program never
 * sees unless it copied /proc/PID/environ), without sysi's own: the image runs as it would
 * without sysi, and so do its children.
 */
void sysi_exec_env(const char *const *envp, struct sysi_exec_env *e, int how)
{
	const char *ptrs[CHUNK], *list = lookup((char **)hidden, HIDE);
	char name[NAME_MAX_ + 1], *value, *program_var = 0, *merged, *p;
	size_t n = 0, got, k;
	char **out;
	int preload_seen = 0;

	e->envp = (char **)envp;
	e->map = 0;
	e->slot = 0;
	if (!sysi_env_hiding || !self)
		return;
	reap(raw0(__NR_getpid));
	/* count the program's entries */
	for (size_t i = 0; envp; i += got) {
		got = (size_t)peek(envp + i, ptrs, sizeof ptrs) / sizeof *ptrs;
		for (k = 0; k < got && ptrs[k]; k++)
			n++;
		if (got == 0)
			return; /* unreadable: the kernel says EFAULT */
		if (k < got)
			break;
	}
	/* the pointers; the program's LD_PRELOAD value as SYSI_PROGRAM_LD_PRELOAD=…; the merged one */
	e->len = (n + nhidden + 3) * sizeof(char *) + 2 * (PRELOAD_MAX + self_len + 32);
	e->map = sysi_map_pages(e->len);
	if (!e->map)
		return;
	e->slot = remember(e->map, e->len, raw0(__NR_gettid));
	out = e->map;
	value = sysi_stpcpy((char *)(out + n + nhidden + 3), PROGRAM_PRELOAD "=");
	merged = value + PRELOAD_MAX + 1;
	k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *s;
		long m;
		if (i % CHUNK == 0)
			peek(envp + i, ptrs, sizeof ptrs);
		s = ptrs[i % CHUNK];
		m = peek_name(s, name);
		name[m] = 0;
		if (is_sysi_name(name, (size_t)m, list))
			continue;
		if (!preload_seen && value_of(name, "LD_PRELOAD", 10)) {
			long len = peek_str(s + 11, value, PRELOAD_MAX);
			preload_seen = 1;
			if (len >= 0) {
				/* an environment copied from /proc/PID/environ names libsysi already */
				if (!sysi_strncmp(value, self, self_len) &&
				    (value[self_len] == ':' || value[self_len] == 0)) {
					char *from = value + self_len + (value[self_len] == ':');
					for (char *to = value; (*to++ = *from++);)
						;
				}
				program_var = value - sizeof PROGRAM_PRELOAD;
				if (how == SYSI_EXEC_NATIVE) { /* "LD_PRELOAD=value", or none */
					if (*value)
						out[k++] = program_var + PRELOAD_SUFFIX;
					continue;
				}
				p = sysi_stpcpy(merged, "LD_PRELOAD=");
				memcpy(p, self, self_len);
				p += self_len;
				if (*value)
					*p++ = ':';
				sysi_stpcpy(p, value);
				out[k++] = merged;
				continue;
			}
		}
		out[k++] = (char *)s;
	}
	if (how == SYSI_EXEC_NATIVE) {
		out[k] = 0;
		e->envp = out;
		return;
	}
	for (unsigned i = 0; i < nhidden; i++)
		out[k++] = (char *)hidden[i];
	if (program_var) {
		out[k++] = program_var;
	} else if (!preload_seen) {
		p = sysi_stpcpy(merged, "LD_PRELOAD=");
		memcpy(p, self, self_len);
		p[self_len] = 0;
		out[k++] = merged;
	}
	out[k] = 0;
	e->envp = out;
}

/* After an exec that came back (it failed): the mapping is ours to free. */
void sysi_exec_env_done(struct sysi_exec_env *e)
{
	if (!e->map)
		return;
	if (e->slot)
		__atomic_store_n(&e->slot->p, (void *)0, __ATOMIC_RELEASE);
	sysi_unmap(e->map, e->len);
}

static void write_line(const char *a, const char *b, const char *c)
{
	char buf[512];
	char *p = buf, *end = buf + sizeof buf - 2;
	const char *parts[3] = { a, b, c };
	for (int i = 0; i < 3; i++)
		for (const char *s = parts[i]; s && *s && p < end; s++)
			*p++ = *s;
	*p++ = '\n';
	raw3(__NR_write, 2, buf, p - buf);
}

void sysi_debug(const char *msg)
{
	if (sysi_debug_on)
		write_line("sysi: ", msg, 0);
}

void sysi_debugf2(const char *a, const char *b)
{
	if (sysi_debug_on)
		write_line("sysi: ", a, b);
}

_Noreturn void sysi_die(const char *msg)
{
	write_line("sysi: error: ", msg, 0);
	for (;;)
		raw1(__NR_exit_group, 127);
}
