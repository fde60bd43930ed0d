/* trace.c — the built-in `trace` hook: its output fd, -e, the fd guard; lines are trace-out.c's. */
#define _GNU_SOURCE /* REG_* */
#include <asm/unistd.h>
#include <ucontext.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include "trace-decode.h"

static int trace_fd = 2;
static int trace_json;
static int trace_owned; /* trace_fd is sysi's (SYSI_TRACE_FD): hidden from the program */
static int only_on;     /* SYSI_TRACE_ONLY: lines for these calls only */
static uint64_t only[SYSI_STATS_NSYSCALLS / 64];
/* calls of these numbers take the quick path (quick_setup) */
static uint64_t quick[SYSI_STATS_NSYSCALLS / 64];

/*
 * SYSI_TRACE_FD "<fd>:<dev>:<ino>" (from `sysi run`): the trace goes to that inherited fd if it
 * is still that file (a process that outlived a relocation, below, finds another file there and
 * writes no trace); "-1": nowhere. Else SYSI_TRACE_FILE, else fd 2.
 */
static int trace_fd_from(const char *v)
{
	const char *e;
	long fd;
	if (v[0] == '-')
		return -1;
	fd = sysi_parse_dec(v, &e);
	if (fd < 0 || *e != ':' || !sysi_fd_is(fd, e + 1)) {
		sysi_debugf2("SYSI_TRACE_FD is not the trace's file here: ", v);
		return -1;
	}
	return (int)fd;
}

static void only_parse(const char *s)
{
	const char *e;
	while (s && *s) {
		long nr = sysi_parse_dec(s, &e);
		if (nr < 0 || (*e && *e != ','))
			sysi_die("SYSI_TRACE_ONLY must be a comma list of syscall numbers");
		if (nr < SYSI_STATS_NSYSCALLS)
			only[nr / 64] |= 1UL << (nr % 64);
		only_on = 1;
		s = *e ? e + 1 : e;
	}
}

/*
 * The numbers whose calls need nothing but the call and their line: shown, nothing to do before
 * the call (sysi_trace_needs_enter), not guarded (the trace's own fd), not fork-like, not made in
 * the site's context. After the options are known (sysi_decode_setup).
 */
static int shown(const struct sysi_call *c);

static void quick_setup(void)
{
	for (long nr = 0; nr < SYSI_STATS_NSYSCALLS; nr++) {
		struct sysi_call c = { .nr = nr };
		switch (nr) {
		case __NR_close: case __NR_dup: case __NR_fcntl: case __NR_ioctl: case __NR_dup2:
		case __NR_dup3: case __NR_close_range: /* guard */
		case __NR_fork: case __NR_vfork: case __NR_clone: case __NR_clone3: case __NR_rt_sigreturn:
		case __NR_execve: case __NR_execveat:
			continue;
		}
		if (shown(&c) && !sysi_trace_needs_enter(nr))
			quick[nr / 64] |= 1UL << (nr % 64);
	}
}

static void decode_setup(int json)
{
	sysi_decode_setup(json);
	quick_setup();
}

int sysi_trace_setup(void)
{
	const char *f = sysi_getenv("SYSI_TRACE_FILE");
	const char *j = sysi_getenv("SYSI_TRACE_JSON");
	const char *o = sysi_getenv("SYSI_TRACE_FD");
	long fd, hi;
	trace_json = j && j[0] == '1';
	only_parse(sysi_getenv("SYSI_TRACE_ONLY"));
	if (o && *o) {
		trace_fd = trace_fd_from(o);
		trace_owned = 1;
		decode_setup(trace_json);
		return 0;
	}
	if (!f || !*f) {
		decode_setup(trace_json);
		return 0;
	}
	fd = raw3(__NR_open, f, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	/* keep it out of the program's way: programs often assume low fds are free */
	hi = raw3(__NR_fcntl, fd, F_DUPFD_CLOEXEC, 700);
	if (hi >= 0) {
		raw1(__NR_close, fd);
		fd = hi;
	}
	trace_fd = (int)fd;
	decode_setup(trace_json);
	return 0;
}

/* The fd lines go to (out.c writes them in blocks), -1 for none. */
int sysi_trace_out_fd(void)
{
	return trace_fd;
}

static int shown(const struct sysi_call *c)
{
	return !only_on ||
	       ((unsigned long)c->nr < SYSI_STATS_NSYSCALLS && (only[c->nr / 64] >> (c->nr % 64)) & 1);
}

int sysi_trace_wants(long nr)
{
	struct sysi_call c = { .nr = nr };
	return shown(&c);
}

/*
 * From the master (hooks.c sysi_count_sigreturn), after a program handler it ran returned: the
 * rt_sigreturn it makes next, restoring uc, stands for the program's. The mask without the
 * signals only sysi blocks (never the program's).
 */
void sysi_trace_sigreturn_uc(const void *uc)
{
	const ucontext_t *u = uc;
	struct sysi_call c = { .nr = __NR_rt_sigreturn };
	uint64_t m;
	if (!shown(&c))
		return;
	__builtin_memcpy(&m, &u->uc_sigmask, sizeof m);
	m &= ~__atomic_load_n(&sysi_claimed_mask, __ATOMIC_RELAXED);
	sysi_trace_sigreturn(&m, (long)u->uc_mcontext.gregs[REG_RAX]);
}

/* From the SIGPIPE watch: the line of a write SIGPIPE is about to end the process with. */
void sysi_trace_line(const struct sysi_call *c, long ret)
{
	struct sysi_tstart s = { 0 };
	if (shown(c))
		sysi_trace_emit(c, ret, 1, &s);
	sysi_trace_dying();
}

/*
 * The trace's own fd (SYSI_TRACE_FD) does not exist for the program, as it would not without
 * sysi: a call that names it gets EBADF (close, dup, fcntl, ioctl: close-all and mark-all-
 * close-on-exec loops leave it alone), close_range skips it, and a dup2/dup3 onto its number
 * moves the trace elsewhere first. Sets *done and returns the result when it handled the call.
 */
static long guard(struct sysi_call *c, int *done)
{
	long fd = trace_fd, r;
	*done = 1;
	switch (c->nr) {
	case __NR_close:
	case __NR_dup:
	case __NR_fcntl:
	case __NR_ioctl:
		if (c->args[0] == fd)
			return -EBADF;
		break;
	case __NR_dup2:
	case __NR_dup3:
		if (c->args[0] == fd)
			return -EBADF;
		if (c->args[1] == fd && c->args[0] != fd) {
			struct rlimit rl;
			/* above the soft limit, or from a bad fd, the kernel refuses it, as natively */
			if ((raw2(__NR_getrlimit, RLIMIT_NOFILE, &rl) == 0 && (unsigned long)fd >= rl.rlim_cur) ||
			    raw2(__NR_fcntl, c->args[0], F_GETFD) < 0)
				return -EBADF;
			/* the program's fd takes the number; the trace goes on from another one */
			r = raw3(__NR_fcntl, fd, F_DUPFD, fd + 1);
			if (r < 0)
				r = raw3(__NR_fcntl, fd, F_DUPFD, 3);
			trace_fd = r < 0 ? -1 : (int)r;
		}
		break;
	case __NR_close_range:
		if ((unsigned long)c->args[0] <= (unsigned long)fd &&
		    (unsigned long)fd <= (unsigned)c->args[1]) {
			r = 0;
			if ((unsigned long)c->args[0] < (unsigned long)fd)
				r = raw3(__NR_close_range, c->args[0], fd - 1, c->args[2]);
			if (r == 0 && (unsigned)fd < (unsigned)c->args[1])
				r = raw3(__NR_close_range, fd + 1, c->args[1], c->args[2]);
			return r;
		}
		break;
	}
	*done = 0;
	return 0;
}

SYSI_HOT long sysi_hook_trace(struct sysi_call *c)
{
	struct sysi_tstart ts;
	long r;
	int mine, done, show;
	void *t;
	/* the quick path: the call, then its line */
	if ((unsigned long)c->nr < SYSI_STATS_NSYSCALLS && (quick[c->nr / 64] >> (c->nr % 64)) & 1 &&
	    !(c->flags & SYSI_CALL_INCONTEXT) && (t = sysi_trace_quick_buf())) {
		sysi_count_strategy(c);
		r = sysi_perform_watched(c, &mine);
		if (mine) /* else the SIGPIPE watch wrote its line */
			sysi_trace_quick_line(t, c, r);
		return r;
	}
	show = shown(c);
	if (show)
		sysi_count_strategy(c);
	sysi_trace_enter(c, &ts, show);
	if (c->nr == __NR_exit || c->nr == __NR_exit_group) {
		sysi_trace_final(c, &ts, show);
		return sysi_perform_call(c);
	}
	if (c->flags & SYSI_CALL_INCONTEXT) {
		if (show) /* its line when the thread comes back (trace-out.c) */
			sysi_trace_incontext(c, &ts);
		return sysi_perform_call(c);
	}
	if (trace_owned && trace_fd >= 0) {
		r = guard(c, &done);
		if (done) {
			c->ret = r;
			if (show)
				sysi_trace_emit(c, r, 1, &ts);
			return r;
		}
	}
	r = sysi_perform_watched(c, &mine);
	if ((c->nr == __NR_fork || c->nr == __NR_clone) && r >= 0) {
		if (r == 0) { /* the child: strace prints the parent's line only */
			sysi_trace_atfork_child();
			return r;
		}
		sysi_trace_forked();
	}
	if (mine && show) /* else the SIGPIPE watch wrote its line */
		sysi_trace_emit(c, r, 1, &ts);
	return r;
}

/*
 * An int $0x80 call the catch-all trapped (sud.c, --complete): made here (int80.S) with its line,
 * named from the i386 table as strace names it, when -e lets the 64-bit call of that name
 * through (a named call without a 64-bit namesake: only without -e; a number without a name:
 * always, as strace). gregs: the trap's registers; the result as the 32-bit ABI gives it.
 */
long sysi_sud_int80(const void *gregs); /* int80.S */

long sysi_trace_int80_make(void *gregs)
{
	const greg_t *g = gregs;
	long nr = (long)(unsigned)g[REG_RAX], r, as = sysi_decode_i386_as(nr);
	unsigned long a[6] = { (unsigned)g[REG_RBX], (unsigned)g[REG_RCX], (unsigned)g[REG_RDX],
			       (unsigned)g[REG_RSI], (unsigned)g[REG_RDI], (unsigned)g[REG_RBP] };
	/* as strace -e trace=NAME: a named call by its name, a number without a name always */
	int show = as >= 0 ? sysi_trace_wants(as) : sysi_decode_i386_name(nr) ? !only_on : 1;
	switch (nr) { /* i386 numbers */
	case 1: /* exit */
	case 252: /* exit_group */
		if (show)
			sysi_trace_int80(nr, a, 0, 0);
		sysi_trace_int80_flush();
		return sysi_sud_int80(gregs);
	case 2: /* fork */
	case 11: /* execve */
	case 120: /* clone */
	case 190: /* vfork */
		sysi_trace_int80_flush();
		r = sysi_sud_int80(gregs);
		if (r == 0 && nr != 11) /* the child: strace prints the parent's line only */
			return r;
		break;
	default:
		r = sysi_sud_int80(gregs);
	}
	if (show)
		sysi_trace_int80(nr, a, r, 1);
	return r;
}
