/*
 * exec.c — sysi-exec, the first image of the program's process under `sysi run`. Bun changes
 * its own process state at start-up (closed stdio fds become /dev/null, SIGPIPE and SIGXFSZ
 * become ignored, RLIMIT_NOFILE's soft limit is raised) and Bun.spawn passes on only the fds it
 * is given; `sysi run` records the state its caller gave it (packages/cli/src/run/origin.ts)
 * and this puts it back in the program's process before the program starts:
 *
 *   sysi-exec SPEC PATH ARGV0 ARGS...
 *
 * SPEC is a space-separated list of key=value:
 *   ppid=P      sysi's pid: the program gets SIGKILL when sysi dies (PR_SET_PDEATHSIG), and
 *               does not start if sysi is already gone
 *   keep=A,B,…  the fds the program inherits, ascending; every other fd is closed
 *   move=K:H    sysi's own output fd (the trace): moved from K to H (not in keep), kept open
 *   ign=HEX     ignored signals (bit n-1: signal n, as SigIgn in /proc/PID/status); every
 *               other signal gets its default action
 *   blk=HEX     the signal mask
 *   nofile=N    RLIMIT_NOFILE's soft limit (N or "inf"); absent: left as it is
 * then execve(PATH, [ARGV0, ARGS...], environ) as a shell does it: a file the kernel refuses
 * with ENOEXEC runs under /bin/sh; a failure prints one `sysi: error:` line on fd 2 and exits
 * 127 (not found) or 126 (found, cannot run).
 *
 * Static and without libc: LD_PRELOAD (libsysi) never reaches it, so the program's statistics
 * never count it, and it changes nothing the program would see beyond what SPEC asks for.
 */
#include <asm/errno.h>
#include <asm/unistd.h>
#include <linux/close_range.h>
#include <linux/prctl.h>
#include <linux/resource.h>
#include <linux/types.h>

typedef unsigned long size_t;

long sysi_exec_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
#define sys1(n, a) sysi_exec_syscall6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sysi_exec_syscall6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sysi_exec_syscall6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sysi_exec_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

#define MAX_KEEP 4096
#define SIG_DFL_ 0UL
#define SIG_IGN_ 1UL
#define SIGKILL_ 9
#define SIGSTOP_ 19
#define SIG_SETMASK_ 2
#define NSIG_ 64

/* the kernel's struct sigaction for rt_sigaction (x86-64) */
struct ksigaction {
	unsigned long handler;
	unsigned long flags;
	unsigned long restorer;
	unsigned long mask;
};

struct spec {
	long ppid;
	int keep[MAX_KEEP];
	int nkeep;
	int move_from, move_to; /* -1: none */
	unsigned long ign, blk;
	int has_nofile;
	unsigned long long nofile;
};

/* gcc may emit calls to these for struct copies and zeroing */
void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

static size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static int starts(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

static void put(const char *s)
{
	sys3(__NR_write, 2, s, slen(s));
}

static _Noreturn void leave(int status)
{
	for (;;)
		sys1(__NR_exit_group, status);
}

static _Noreturn void fail(const char *a, const char *b, const char *c, int status)
{
	put("sysi: error: ");
	put(a);
	put(b);
	put(c);
	put("\n");
	leave(status);
}

/* decimal (base 10) or hex (base 16) digits at *s up to a separator; -1 on a bad digit */
static int number(const char **s, int base, unsigned long long *out)
{
	unsigned long long v = 0;
	const char *p = *s;
	for (;; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		v = v * (unsigned)base + (unsigned)d;
	}
	if (p == *s || (*p && *p != ' ' && *p != ',' && *p != ':'))
		return -1;
	*s = p;
	*out = v;
	return 0;
}

static void parse(const char *s, struct spec *sp)
{
	unsigned long long v, w;
	sp->ppid = 0;
	sp->nkeep = 0;
	sp->move_from = sp->move_to = -1;
	sp->ign = sp->blk = 0;
	sp->has_nofile = 0;
	while (*s) {
		if (*s == ' ') {
			s++;
		} else if (starts(s, "ppid=")) {
			s += 5;
			if (number(&s, 10, &v) < 0)
				goto bad;
			sp->ppid = (long)v;
		} else if (starts(s, "keep=")) {
			s += 5;
			while (*s && *s != ' ') {
				if (number(&s, 10, &v) < 0 || v > 0x7fffffff || sp->nkeep == MAX_KEEP ||
				    (sp->nkeep && (int)v <= sp->keep[sp->nkeep - 1]))
					goto bad;
				sp->keep[sp->nkeep++] = (int)v;
				if (*s == ',')
					s++;
			}
		} else if (starts(s, "move=")) {
			s += 5;
			if (number(&s, 10, &v) < 0 || *s++ != ':' || number(&s, 10, &w) < 0 ||
			    v > 0x7fffffff || w > 0x7fffffff)
				goto bad;
			sp->move_from = (int)v;
			sp->move_to = (int)w;
		} else if (starts(s, "ign=")) {
			s += 4;
			if (number(&s, 16, &v) < 0)
				goto bad;
			sp->ign = v;
		} else if (starts(s, "blk=")) {
			s += 4;
			if (number(&s, 16, &v) < 0)
				goto bad;
			sp->blk = v;
		} else if (starts(s, "nofile=")) {
			s += 7;
			sp->has_nofile = 1;
			if (starts(s, "inf")) {
				s += 3;
				sp->nofile = RLIM_INFINITY;
			} else if (number(&s, 10, &sp->nofile) < 0) {
				goto bad;
			}
		} else {
			goto bad;
		}
	}
	return;
bad:
	fail("sysi-exec: bad SPEC near: ", s, "", 127);
}

static int kept(const struct spec *sp, int fd)
{
	for (int i = 0; i < sp->nkeep; i++)
		if (sp->keep[i] == fd)
			return 1;
	return fd == sp->move_to;
}

/* close [lo, hi]: close_range, or one by one up to the soft limit where it is missing */
static void close_span(unsigned lo, unsigned hi)
{
	struct rlimit64 rl;
	if (lo > hi || sys3(__NR_close_range, lo, hi, 0) == 0)
		return;
	if (sys4(__NR_prlimit64, 0, RLIMIT_NOFILE, 0, &rl) < 0 || rl.rlim_cur > (1u << 20))
		rl.rlim_cur = 1u << 20;
	for (unsigned long fd = lo; fd <= hi && fd < rl.rlim_cur; fd++)
		sys1(__NR_close, fd);
}

static void fds(const struct spec *sp)
{
	long prev = -1;
	int i = 0, moved = sp->move_to < 0;

	if (sp->move_from >= 0 && (sp->move_to < 0 || kept(sp, sp->move_from) ||
				   sys2(__NR_dup2, sp->move_from, sp->move_to) != sp->move_to))
		fail("sysi-exec: cannot place sysi's output fd", "", "", 127);
	/* close the spans between the kept fds (ascending) and the moved one */
	for (;;) {
		long next;
		if (i < sp->nkeep && (moved || sp->keep[i] < sp->move_to))
			next = sp->keep[i++];
		else if (!moved)
			next = sp->move_to, moved = 1;
		else
			break;
		if (next > prev + 1)
			close_span((unsigned)(prev + 1), (unsigned)(next - 1));
		prev = next;
	}
	close_span((unsigned)(prev + 1), ~0U);
}

static void signals(const struct spec *sp)
{
	struct ksigaction sa;
	for (int sig = 1; sig <= NSIG_; sig++) {
		if (sig == SIGKILL_ || sig == SIGSTOP_)
			continue;
		memset(&sa, 0, sizeof sa);
		sa.handler = (sp->ign >> (sig - 1)) & 1 ? SIG_IGN_ : SIG_DFL_;
		sys4(__NR_rt_sigaction, sig, &sa, 0, 8);
	}
	sys4(__NR_rt_sigprocmask, SIG_SETMASK_, &sp->blk, 0, 8);
}

static void limits(const struct spec *sp)
{
	struct rlimit64 rl;
	if (!sp->has_nofile || sys4(__NR_prlimit64, 0, RLIMIT_NOFILE, 0, &rl) < 0)
		return;
	rl.rlim_cur = sp->nofile < rl.rlim_max ? sp->nofile : rl.rlim_max;
	sys4(__NR_prlimit64, 0, RLIMIT_NOFILE, &rl, 0);
}

static const char *reason(long err)
{
	switch (err) {
	case -ENOENT:
		return ": no such file";
	case -ENOTDIR:
		return ": not a directory";
	case -EACCES:
		return ": permission denied";
	case -ENOEXEC:
		return ": exec format error";
	case -E2BIG:
		return ": argument list too long";
	case -ENOMEM:
		return ": out of memory";
	case -ETXTBSY:
		return ": text file busy";
	case -ELOOP:
		return ": too many levels of symbolic links";
	default:
		return ": cannot execute";
	}
}

_Noreturn void sysi_exec_main(long *sp)
{
	static struct spec spec;
	long argc = sp[0], r;
	char **argv = (char **)(sp + 1), **envp = argv + argc + 1;

	if (argc < 4)
		fail("sysi-exec: usage: sysi-exec SPEC PATH ARGV0 ARGS...", "", "", 127);
	parse(argv[1], &spec);
	/* sysi's death ends the program; sysi already gone: never start it */
	sys2(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL_);
	if (spec.ppid && sys1(__NR_getppid, 0) != spec.ppid)
		leave(128 + SIGKILL_);
	fds(&spec);
	limits(&spec);
	signals(&spec);
	r = sys3(__NR_execve, argv[2], argv + 3, envp);
	if (r == -ENOEXEC) {
		/* as a shell does: run it as a script of /bin/sh ([sh, PATH, ARGS...]) */
		argv[3] = argv[2];
		argv[2] = "sh";
		sys3(__NR_execve, "/bin/sh", argv + 2, envp);
		argv[2] = argv[3];
	}
	fail("cannot run ", argv[2], reason(r), r == -ENOENT || r == -ENOTDIR ? 127 : 126);
}
