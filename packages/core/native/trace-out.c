/*
 * trace-out.c — the trace hook's lines: prefix ([pid N], timestamps), the decoded call (trace-args.c), the
 * result, -T durations, the status filter; kept in a per-thread buffer and written in blocks.
 *
 * Buffers: one per traced thread (mmap'd on its first line, reused after the thread exits),
 * written with one write(2) when it holds FLUSH_AT bytes, and always before the calls after which
 * buffered lines could be lost or duplicated (exit, exit_group, execve, fork and clone: every
 * thread's buffer), and before calls that may block when the output is a terminal, pipe or
 * socket (someone is watching it live). A process killed by a signal loses the lines since its
 * last flush.
 *
 * Interleaving (strace -f's `<unfinished ...>` and `<... NAME resumed>`): when the trace is watched
 * live and several threads or processes write to it ([pid N] on every line), a call that may
 * block writes its entry part at once, after every line buffered before it ("[pid N] read(3, "),
 * and until it comes back every traced thread and process writes each line as it comes. The
 * first line another writer puts out ends the open one with " <unfinished ...>"; the call's rest
 * then comes as its own line, "[pid N] <... read resumed>\"hi\n\", 64) = 3". When no one wrote in
 * between, the rest completes the line as if it had never been open. Which arguments the entry
 * part holds: as strace prints them at entry (entry_args). Writers agree through words of the
 * run's stats file (its header's reserved[]: the holder of the output lock, the thread whose line
 * is open, how many calls with their entry part out wait), shared by every process of the tree,
 * across fork and execve; without the stats file, or with -o FILE (a regular file, read
 * afterwards), or JSON lines, or -e status=, lines stay whole.
 *
 * Calls the runtime performs in the site's context (vfork, clone with a new stack, clone3) come
 * back after the hook returned: their line waits in the thread's `pend` until the thread's next
 * call, with the child's pid that the child itself recorded (vfork: it shares our memory) or the
 * kernel stored at parent_tid.
 */
#include <asm/unistd.h>
#include <linux/sched.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <time.h>
#include "trace-decode.h"
#include "syscall-names.h"

#define FLUSH_AT (64 * 1024)  /* one write(2) per block of this size */
#define LINE_ROOM (32 * 1024) /* a line never takes more; longer ones are cut */
#define TBUF_DATA (FLUSH_AT + LINE_ROOM)
#define SCRATCH (8 * 1024)

struct pend {
	int on;
	int refused;       /* a clone whose flags the kernel refuses (clone_refused): -EINVAL */
	long tid;          /* the thread that made the call */
	volatile long child; /* set by a child sharing our memory (vfork, CLONE_VM|CLONE_VFORK) */
	struct sysi_call c;
	struct sysi_tstart s;
};

struct tbuf {
	volatile int lock;
	int dead;      /* its thread exited: free for a new thread */
	const struct sysi_call *open; /* the call whose entry part this thread wrote, or 0 */
	long used;
	long tid;      /* cached gettid() */
	int pers32;    /* its last line was an int $0x80 call's, after a 32-bit mode note */
	struct tbuf *next;
	struct pend pend;
	char scratch[SCRATCH];
	char data[TBUF_DATA];
};

/*
 * Threads started by clone/clone3 with a stack of their own: the parent's line needs the child's
 * tid, which the kernel writes at parent_tid but clears again at the child's exit when it is
 * also child_tid (glibc's threads): so the new thread claims the slot its parent left here at
 * its first call. Slots are per parent thread, one at a time.
 */
#define NCLONES 32
static struct { long parent, child; } clones[NCLONES];

static void clone_open(long parent)
{
	for (int i = 0; i < NCLONES; i++) {
		long z = 0;
		if (__atomic_compare_exchange_n(&clones[i].parent, &z, parent, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return;
	}
}

static void clone_claim(long child)
{
	for (int i = 0; i < NCLONES; i++) {
		long z = 0;
		if (__atomic_load_n(&clones[i].parent, __ATOMIC_ACQUIRE) &&
		    __atomic_compare_exchange_n(&clones[i].child, &z, child, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return;
	}
}

static long clone_close(long parent)
{
	for (int i = 0; i < NCLONES; i++) {
		if (__atomic_load_n(&clones[i].parent, __ATOMIC_ACQUIRE) == parent) {
			long c = __atomic_exchange_n(&clones[i].child, 0, __ATOMIC_ACQ_REL);
			__atomic_store_n(&clones[i].parent, 0, __ATOMIC_RELEASE);
			return c;
		}
	}
	return 0;
}

static __thread struct tbuf *tb __attribute__((tls_model("initial-exec")));
static struct tbuf *volatile all;

/* options (SYSI_TRACE_*), set once in sysi_decode_setup */
static int o_json, o_time, o_dur, o_status, o_live;
static int o_notes; /* SYSI_TRACE_NOTES: strace's personality notes (its output is stderr, no -o) */
static long o_tzoff, o_ppid;
static int multi; /* [pid N] on every line: a child, or a process that made one */
static int o_split; /* live text output with a stats file: entry parts of blocking calls (above) */
int sysi_trace_out_fd(void); /* trace.c */
void sysi_trace_clock(int clk, long *sec, long *nsec); /* vdso.c */

static void lock(volatile int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (*l)
			__builtin_ia32_pause();
}

static void unlock(volatile int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

static void write_all(const char *p, long n)
{
	int fd = sysi_trace_out_fd();
	while (n > 0 && fd >= 0) {
		long w = raw3(__NR_write, fd, p, n);
		if (w == -4 /* EINTR */)
			continue;
		if (w <= 0)
			break;
		p += w;
		n -= w;
	}
}

/*
 * The output's shared words (o_split), in the stats file's header (sysi.h: reserved[0] and [1]):
 * the tid holding the output lock (every write to the trace, by any process of the tree, under
 * it); the tid whose entry part ends the output (its line open), 0: none; the number of calls
 * whose entry part is out and that have not come back (while there are any, lines go out as
 * they come).
 */
static volatile int32_t *out_lockw(void)
{
	return (volatile int32_t *)&sysi_stats->reserved[0];
}

static volatile int32_t *out_openw(void)
{
	return (volatile int32_t *)&sysi_stats->reserved[0] + 1;
}

static volatile int64_t *out_waitw(void)
{
	return (volatile int64_t *)&sysi_stats->reserved[1];
}

static long my_tid(void)
{
	return tb && tb->tid ? tb->tid : raw0(__NR_gettid);
}

/* Take the output lock; 0 when this thread holds it already (a signal handler's line). */
static int out_lock(long me)
{
	volatile int32_t *l = out_lockw();
	for (long spins = 0;; spins++) {
		int32_t z = 0, h;
		if (__atomic_compare_exchange_n(l, &z, (int32_t)me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return 1;
		if (z == me)
			return 0;
		if (spins < 100) {
			__builtin_ia32_pause();
			continue;
		}
		raw0(__NR_sched_yield);
		/* a holder killed inside its write (SIGKILL): the lock is free */
		if (spins % 64 == 0 && (h = *l) && raw2(__NR_kill, h, 0) == -3 /* ESRCH */)
			__atomic_compare_exchange_n(l, &h, 0, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	}
}

static void out_unlock(void)
{
	__atomic_store_n(out_lockw(), 0, __ATOMIC_RELEASE);
}

/* Under the output lock: an open line (another thread's, or this one's from a signal
 * handler's call) ends in " <unfinished ...>" before anything else is written. */
static void close_open(void)
{
	if (*out_openw()) {
		write_all(" <unfinished ...>\n", 18);
		*out_openw() = 0;
	}
}

static void flush_locked(struct tbuf *t)
{
	if (t->used) {
		if (o_split) {
			int took = out_lock(my_tid());
			close_open();
			write_all(t->data, t->used);
			if (took)
				out_unlock();
		} else {
			write_all(t->data, t->used);
		}
		t->used = 0;
	}
}

static void flush_all(void)
{
	for (struct tbuf *t = all; t; t = t->next) {
		lock(&t->lock);
		flush_locked(t);
		unlock(&t->lock);
	}
}

static struct tbuf *mine(void)
{
	struct tbuf *t = tb;
	if (t)
		return t;
	for (t = all; t; t = t->next) /* a buffer an exited thread left */
		if (t->dead && __atomic_exchange_n(&t->dead, 0, __ATOMIC_ACQUIRE))
			break;
	if (!t) {
		t = sysi_map_pages(sizeof *t);
		if (!t)
			return 0;
		t->next = all;
		while (!__atomic_compare_exchange_n(&all, &t->next, t, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			;
	}
	t->tid = 0;
	t->used = 0;
	t->open = 0;
	t->pend.on = 0;
	t->pers32 = 0;
	tb = t;
	t->tid = raw0(__NR_gettid);
	clone_claim(t->tid); /* a new thread: its parent may wait for its tid */
	return t;
}

char *sysi_trace_scratch(size_t *n)
{
	static char fallback[256];
	struct tbuf *t = mine();
	if (!t) {
		*n = sizeof fallback;
		return fallback;
	}
	*n = SCRATCH;
	return t->scratch;
}

static long tid_of(struct tbuf *t)
{
	/* while a child may run on our memory (vfork), the cache is not ours to trust */
	if (!t->tid || t->pend.on)
		return raw0(__NR_gettid);
	return t->tid;
}

static void put_time(struct sb *b)
{
	long s, ns;
	if (o_time == 3) {
		sysi_trace_clock(CLOCK_REALTIME, &s, &ns);
		sb_dec(b, s);
	} else {
		long d;
		sysi_trace_clock(CLOCK_REALTIME, &s, &ns);
		d = (s + o_tzoff) % 86400;
		if (d < 0)
			d += 86400;
		sb_putc(b, (char)('0' + d / 36000));
		sb_putc(b, (char)('0' + d / 3600 % 10));
		sb_putc(b, ':');
		sb_putc(b, (char)('0' + d % 3600 / 600));
		sb_putc(b, (char)('0' + d % 600 / 60));
		sb_putc(b, ':');
		sb_putc(b, (char)('0' + d % 60 / 10));
		sb_putc(b, (char)('0' + d % 10));
		if (o_time == 1) {
			sb_putc(b, ' ');
			return;
		}
	}
	sb_putc(b, '.');
	for (long div = 100000; div; div /= 10)
		sb_putc(b, (char)('0' + ns / 1000 / div % 10));
	sb_putc(b, ' ');
}

/* what starts every line: "[pid N] " under -f with several processes, then -t's time */
static void put_prefix(struct sb *b, long tid)
{
	if (multi) {
		sb_lit(b, "[pid ");
		/* strace's "%5u": a pid shorter than 5 digits is padded with spaces */
		for (long w = 10000; w > 1 && tid < w; w /= 10)
			sb_lit(b, " ");
		sb_dec(b, tid);
		sb_lit(b, "] ");
	}
	if (o_time)
		put_time(b);
}

/* "[pid N] +++ exited with S +++": strace's line after a process's exit_group */
static void put_exited(struct sb *b, long tid, int status)
{
	put_prefix(b, tid);
	sb_lit(b, "+++ exited with ");
	sb_dec(b, status & 0xff);
	sb_lit(b, " +++\n");
}

static void put_dur(struct sb *b, long t0s, long t0ns)
{
	long s, ns, d;
	sysi_trace_clock(CLOCK_MONOTONIC, &s, &ns);
	d = (s - t0s) * 1000000000L + (ns - t0ns);
	if (d < 0)
		d = 0;
	sb_lit(b, " <");
	sb_dec(b, d / 1000000000L);
	sb_putc(b, '.');
	for (long div = 100000; div; div /= 10)
		sb_putc(b, (char)('0' + d / 1000 / div % 10));
	sb_putc(b, '>');
}

static int status_shown(long r, int known)
{
	int err = known && r < 0 && r >= -4095;
	if (o_status == 1) /* failed */
		return err;
	if (o_status == 2) /* successful */
		return known && !err;
	return 1;
}

static void json_line(struct sb *b, const struct sysi_call *c, long tid, long r, int known)
{
	const char *name = sysi_syscall_name(c->nr);
	if (!name) /* strace's x32 name: getpid, rt_sigaction#64 */
		name = sysi_x32_name(c->nr);
	sb_lit(b, "{\"pid\":");
	sb_dec(b, tid);
	sb_lit(b, ",\"nr\":");
	sb_dec(b, c->nr);
	sb_lit(b, ",\"name\":");
	if (name) {
		sb_putc(b, '"');
		sb_puts(b, name); /* names are [a-z0-9_#] */
		sb_putc(b, '"');
	} else {
		sb_lit(b, "null");
	}
	sb_lit(b, ",\"args\":[");
	for (int i = 0; i < 6; i++) {
		int sgn = 0;
		long v = c->args[i];
		if (i)
			sb_putc(b, ',');
		/* a 32-bit argument: the upper half of the register is not the program's value */
		if (sysi_decode_arg32(c->nr, i, &sgn))
			v = sgn ? (long)(int)v : (long)(unsigned)v;
		sb_dec(b, v);
	}
	sb_lit(b, "],\"ret\":");
	if (known)
		sb_dec(b, r);
	else
		sb_lit(b, "null");
	sb_lit(b, ",\"strategy\":\"");
	sb_puts(b, sysi_strategy_name(c->strategy)); /* [a-z0-9_?] */
	sb_lit(b, "\"}\n");
}

/* strace's note when a thread's calls change ABI: "[ Process PID=N runs in 32 bit mode. ]" */
static void mode_note(struct sb *b, long tid, int bits)
{
	sb_lit(b, "[ Process PID=");
	sb_dec(b, tid);
	sb_lit(b, " runs in ");
	sb_dec(b, bits);
	sb_lit(b, " bit mode. ]\n");
}

/*
 * How many arguments strace prints at a call's entry, for the calls that may block (may_block):
 * the entry part of an open line (ALL: every argument, the rest is ") = …").
 */
#define ALL 99
/* "<... NAME resumed>" is at most 64 bytes longer than "NAME(", its padding SYSI_TRACE_COLUMN */
#define RESUMED_ROOM (64 + SYSI_TRACE_COLUMN)
static int entry_args(const struct sysi_call *c)
{
	switch (c->nr) {
	case __NR_accept: case __NR_accept4: /* no address to fill in: all at entry */
		return c->args[1] ? 1 : ALL;
	case __NR_read: case __NR_readv: case __NR_recvfrom: case __NR_recvmsg: case __NR_recvmmsg:
	case __NR_wait4: case __NR_epoll_wait:
	case __NR_epoll_pwait: case __NR_epoll_pwait2: case __NR_nanosleep: case __NR_msgrcv:
	case __NR_rt_sigtimedwait:
		return 1;
	case __NR_waitid:
		return 2;
	case __NR_clock_nanosleep: case __NR_io_getevents:
		return 3;
	}
	return ALL;
}

/* The end of the first k arguments in s..e (a decoded argument list) and their ", "; e for ALL. */
static char *split_at(char *s, char *e, int k)
{
	int depth = 0;
	for (char *p = s; p < e && k < ALL; p++) {
		switch (*p) {
		case '"': /* a string: its commas and brackets are text */
			for (p++; p < e && *p != '"'; p++)
				if (*p == '\\')
					p++;
			break;
		case '{': case '[': case '(':
			depth++;
			break;
		case '}': case ']': case ')':
			depth--;
			break;
		case ',':
			if (!depth && --k == 0)
				return p + 2 <= e ? p + 2 : e;
		}
	}
	return e;
}

/* The open call c of t back (0: another thread took it meanwhile: drop_open_others). */
static int took_open(struct tbuf *t, const struct sysi_call *c)
{
	const struct sysi_call *o = c;
	return __atomic_compare_exchange_n(&t->open, &o, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/*
 * Before exit_group, execve and exit(): the calls other threads of this process made with their
 * entry part out will not come back (the kernel ends those threads): no longer waited for.
 */
static void drop_open_others(void)
{
	if (!o_split)
		return;
	for (struct tbuf *t = all; t; t = t->next) {
		const struct sysi_call *o = t->open;
		if (t != tb && o && __atomic_compare_exchange_n(&t->open, &o, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			__atomic_fetch_sub(out_waitw(), 1, __ATOMIC_RELAXED);
	}
}

/*
 * The line of a call whose entry part is out (t->open), completed at b (its whole text from
 * line, its arguments from args to ae, its result's column padding from tab to eq): when it is
 * still the open line, its rest is written at once, after the entry part; else it becomes
 * "<... NAME resumed>" and its rest, kept in the buffer as a line of its own, its padding
 * counted again from that line's start (as strace's column). Under t's lock; returns the new end
 * of the buffered text.
 */
static char *close_split(struct tbuf *t, const struct sysi_call *c, char *line, char *pre_end, char *args,
			 char *ae, char *tab, char *eq, char *end)
{
	char *rest = split_at(args, ae, entry_args(c));
	long me = tid_of(t);
	int took = out_lock(me);
	if (*out_openw() == me) { /* no one wrote since the entry part */
		*out_openw() = 0;
		write_all(rest, end - rest);
		if (took)
			out_unlock();
		return line;
	}
	if (took)
		out_unlock();
	{
		char tmp[64];
		struct sb h = { tmp, tmp + sizeof tmp };
		long n, col, pad;
		int aligned = tab >= rest && eq < end && *eq == '='; /* else a cut line */
		sb_lit(&h, "<... ");
		sysi_decode_name(&h, c->nr);
		sb_lit(&h, " resumed>");
		n = h.p - tmp;
		/* in the line's room: emit leaves RESUMED_ROOM bytes for a header longer than "NAME("
		 * and a longer padding */
		__builtin_memmove(pre_end + n, rest, end - rest);
		__builtin_memcpy(pre_end, tmp, n);
		end = pre_end + n + (end - rest);
		if (!aligned)
			return end;
		tab += pre_end + n - rest;
		eq += pre_end + n - rest;
		col = tab - line;
		pad = col < SYSI_TRACE_COLUMN ? SYSI_TRACE_COLUMN - col : 1;
		__builtin_memmove(tab + pad, eq, end - eq);
		__builtin_memset(tab, ' ', pad);
		return end + pad - (eq - tab);
	}
}

/* Append one line for c to this thread's buffer. */
static void emit(struct tbuf *t, const struct sysi_call *c, long r, int known, long t0s, long t0ns,
		 const long *pre)
{
	struct sb b;
	long tid = tid_of(t);
	char *start, *line;
	int was_open = 0;
	if (!status_shown(r, known))
		return;
	lock(&t->lock);
	if (t->used > TBUF_DATA - LINE_ROOM)
		flush_locked(t);
	start = t->data + t->used;
	b.p = start;
	b.end = start + LINE_ROOM - 1;
	if (__builtin_expect(t->pers32, 0)) { /* back from int $0x80 calls */
		mode_note(&b, tid, 64);
		t->pers32 = 0;
	}
	line = b.p;
	if (o_json) {
		json_line(&b, c, tid, r, known);
	} else if (__builtin_expect(t->open == c, 0) && took_open(t, c)) { /* its entry part is out */
		char *pre_end, *args, *ae, *tab, *eq;
		was_open = 1;
		b.end -= RESUMED_ROOM;
		put_prefix(&b, tid);
		pre_end = b.p;
		sysi_decode_name(&b, c->nr);
		sb_putc(&b, '(');
		args = b.p;
		sysi_decode_args(&b, c, r, known, pre);
		ae = b.p;
		sb_putc(&b, ')');
		tab = b.p;
		sb_tab(&b, line);
		eq = b.p;
		b.p = tab; /* sysi_decode_ret pads again, to the same column */
		sysi_decode_ret(&b, line, c, r, known);
		if (o_dur && known)
			put_dur(&b, t0s, t0ns);
		if (b.p >= b.end)
			b.p = b.end - 3, sb_lit(&b, "...");
		*b.p++ = '\n';
		if (ae > b.p)
			ae = b.p;
		b.p = close_split(t, c, line, pre_end, args, ae, tab, eq, b.p);
	} else if (known && !o_dur && sysi_decode_plain(c->nr)) { /* numbers only: no bounds to check */
		put_prefix(&b, tid);
		b.p = sysi_decode_plain_line(b.p, line, c, r);
		*b.p++ = '\n';
	} else {
		put_prefix(&b, tid);
		sysi_decode_name(&b, c->nr);
		sb_putc(&b, '(');
		sysi_decode_args(&b, c, r, known, pre);
		sb_putc(&b, ')');
		sysi_decode_ret(&b, line, c, r, known);
		if (o_dur && known)
			put_dur(&b, t0s, t0ns);
		if (b.p >= b.end) /* cut: a line still ends in a newline */
			b.p = b.end - 3, sb_lit(&b, "...");
		*b.p++ = '\n';
		if (c->nr == __NR_exit_group && !known) { /* strace's last line for the process */
			b.end = start + LINE_ROOM;
			put_exited(&b, tid, (int)c->args[0]);
		}
	}
	t->used += b.p - start;
	/* while calls with their entry part out wait, each line goes out as it comes (the first
	 * ends the open line) */
	if (t->used >= FLUSH_AT || (o_split && *out_waitw() > 0))
		flush_locked(t);
	if (__builtin_expect(was_open, 0))
		__atomic_fetch_sub(out_waitw(), 1, __ATOMIC_RELAXED);
	unlock(&t->lock);
}

/* calls that may wait for someone: flush first when the trace is watched live */
static int may_block(const struct sysi_call *c)
{
	switch (c->nr) {
	case __NR_read: case __NR_readv: case __NR_recvfrom: case __NR_recvmsg: case __NR_recvmmsg:
	case __NR_accept: case __NR_accept4: case __NR_connect: case __NR_wait4: case __NR_waitid:
	case __NR_poll: case __NR_ppoll: case __NR_select: case __NR_pselect6: case __NR_epoll_wait:
	case __NR_epoll_pwait: case __NR_epoll_pwait2: case __NR_nanosleep: case __NR_clock_nanosleep:
	case __NR_pause: case __NR_rt_sigsuspend: case __NR_rt_sigtimedwait: case __NR_msgrcv:
	case __NR_semop: case __NR_semtimedop: case __NR_flock: case __NR_io_getevents:
		return 1;
	case __NR_futex:
		return (c->args[1] & 127) == 0 || (c->args[1] & 127) == 9;
	}
	return 0;
}

/* calls after which this process's buffered lines could be lost or written twice */
static int ends_or_copies(const struct sysi_call *c)
{
	switch (c->nr) {
	case __NR_execve: case __NR_execveat: case __NR_fork:
	case __NR_vfork: case __NR_clone: case __NR_clone3: case __NR_kill: case __NR_tkill:
	case __NR_tgkill: case __NR_rt_sigqueueinfo: case __NR_rt_tgsigqueueinfo:
		return 1;
	}
	return 0;
}

/* calls that close or replace the trace's fd (the program's fd 2 when no file was given) */
static int retires_out(const struct sysi_call *c)
{
	long fd = sysi_trace_out_fd();
	switch (c->nr) {
	case __NR_close:
		return c->args[0] == fd;
	case __NR_dup2: case __NR_dup3:
		return c->args[1] == fd;
	case __NR_close_range:
		return (unsigned long)fd >= (unsigned long)c->args[0] && (unsigned long)fd <= (unsigned long)c->args[1];
	}
	return 0;
}

/*
 * clone() flags the kernel refuses with EINVAL before it makes anything (kernel/fork.c,
 * kernel_clone and copy_process's first checks, Linux 5.2 on): the runtime still makes the call in
 * the site's context, and no child ever reports; its line says -1 EINVAL, as strace's, and
 * gets no [pid N] prefixes for a child that does not exist.
 */
static int clone_refused(unsigned long f)
{
	f &= 0xffffffffUL; /* clone() takes the low 32 bits */
	if ((f & (CLONE_NEWNS | CLONE_FS)) == (CLONE_NEWNS | CLONE_FS) ||
	    (f & (CLONE_NEWUSER | CLONE_FS)) == (CLONE_NEWUSER | CLONE_FS))
		return 1;
	if ((f & CLONE_THREAD) && !(f & CLONE_SIGHAND))
		return 1;
	if ((f & CLONE_SIGHAND) && !(f & CLONE_VM))
		return 1;
	if ((f & CLONE_THREAD) && (f & (CLONE_NEWUSER | CLONE_NEWPID)))
		return 1;
	if ((f & CLONE_PIDFD) && (f & (CLONE_DETACHED | CLONE_THREAD)))
		return 1;
	/* kernel_clone: clone() passes one pointer as both pidfd and parent_tid */
	return (f & (CLONE_PIDFD | CLONE_PARENT_SETTID)) == (CLONE_PIDFD | CLONE_PARENT_SETTID);
}

/* the pending in-context call of t, completed: its line with the child's pid when known */
static void finish_pend(struct tbuf *t)
{
	struct pend *p = &t->pend;
	long r = p->child;
	int known = r != 0;
	long claimed = clone_close(p->tid);
	p->on = 0;
	if (!known && claimed) {
		r = claimed;
		known = 1;
	}
	if (!known && p->c.nr == __NR_clone3 && p->s.has_pre) { /* the kernel stored the tid at parent_tid */
		const long *ca = p->s.pre; /* its struct clone_args, read at entry */
		int v;
		if ((ca[0] & 0x00100000L) && ca[3] && sysi_peek(&v, (unsigned long)ca[3], 4) == 4 && v > 0) {
			r = v;
			known = 1;
		}
	} else if (!known && p->c.nr == __NR_clone && (p->c.args[0] & 0x00100000UL)) {
		int v;
		if (sysi_peek(&v, (unsigned long)p->c.args[2], 4) == 4 && v > 0) {
			r = v;
			known = 1;
		}
	}
	if (!known && p->refused) { /* no child came, as the kernel's checks say */
		r = -22; /* EINVAL */
		known = 1;
	}
	emit(t, &p->c, r, known, p->s.t0s, p->s.t0ns, p->s.has_pre ? p->s.pre : 0);
}

/*
 * A call that may block, in a trace several writers share: its entry part out now (the
 * arguments strace prints at entry, decoded before the call), the line left open (o_split).
 */
static void open_line(struct tbuf *t, const struct sysi_call *c, const struct sysi_tstart *s)
{
	struct sb b;
	char *start, *args;
	long tid = tid_of(t);
	int took;
	lock(&t->lock);
	flush_locked(t);
	start = t->data;
	b.p = start;
	b.end = start + LINE_ROOM - 1;
	put_prefix(&b, tid);
	sysi_decode_name(&b, c->nr);
	sb_putc(&b, '(');
	args = b.p;
	sysi_decode_args(&b, c, 0, 0, s->has_pre ? s->pre : 0);
	if (b.p >= b.end) /* too long to split: the line stays whole */
		goto out;
	b.p = split_at(args, b.p, entry_args(c));
	took = out_lock(tid);
	close_open();
	write_all(start, b.p - start);
	*out_openw() = (int32_t)tid;
	__atomic_fetch_add(out_waitw(), 1, __ATOMIC_RELAXED);
	if (took)
		out_unlock();
	t->open = c;
out:
	unlock(&t->lock);
}

void sysi_trace_enter(const struct sysi_call *c, struct sysi_tstart *s, int shown)
{
	struct tbuf *t = mine();
	s->t0s = s->t0ns = 0;
	s->has_pre = 0;
	if (!t)
		return;
	if (t->pend.on) {
		long tid = raw0(__NR_gettid);
		if (tid == t->pend.tid) {
			finish_pend(t);
		} else if (!t->pend.child) { /* a vfork child on its parent's memory: its pid */
			t->pend.child = tid;
			multi = 1;
		}
	}
	if (c->nr == __NR_execve || c->nr == __NR_execveat)
		drop_open_others();
	if (ends_or_copies(c) || retires_out(c))
		flush_all();
	else if (o_live && may_block(c) && (t->used || (o_split && multi && shown)))
		flush_all();
	if (!shown)
		return;
	if (o_dur)
		sysi_trace_clock(CLOCK_MONOTONIC, &s->t0s, &s->t0ns);
	if (sysi_decode_has_pre(c->nr)) {
		for (int i = 0; i < 8; i++)
			s->pre[i] = 0;
		sysi_decode_pre(c, s->pre);
		s->has_pre = 1;
	}
	if (o_split && multi && may_block(c))
		open_line(t, c, s);
}

/*
 * Whether a call of number nr needs sysi_trace_enter's work before it is made: a flush (calls
 * that end or copy the process, close or replace the trace's fd, may block while the trace is
 * watched live), values read before the call, the -T clock, exit's final lines. Calls that do
 * not take trace.c's quick path (sysi_trace_quick) when nothing is pending on the thread.
 */
int sysi_trace_needs_enter(long nr)
{
	struct sysi_call c = { .nr = nr };
	switch (nr) {
	case __NR_close: case __NR_dup2: case __NR_dup3: case __NR_close_range: /* retires_out */
	case __NR_exit: case __NR_exit_group:
		return 1;
	}
	return o_dur || ends_or_copies(&c) || (o_live && may_block(&c)) || sysi_decode_has_pre(nr);
}

/* The quick path (trace.c): this thread's buffer when nothing is pending on it, else 0. */
void *sysi_trace_quick_buf(void)
{
	struct tbuf *t = tb;
	return t && !t->pend.on ? t : 0;
}

/* The quick path's line, for a call made and its result known. */
void sysi_trace_quick_line(void *t, const struct sysi_call *c, long r)
{
	emit(t, c, r, 1, 0, 0, 0);
}

/*
 * An int $0x80 call the catch-all saw (sud.c): its line, named from the i386 table (the hook
 * ABI has no 32-bit calls: the hook never sees it). known = 0 before a call that does not return
 * (exit, exit_group: " = ?", then the lines out). a: ebx ecx edx esi edi ebp.
 */
void sysi_trace_int80(long nr, const unsigned long *a, long r, int known)
{
	struct tbuf *t = mine();
	struct sb b;
	char *start, *line;
	long tid;
	if (!t || !status_shown(r, known))
		return;
	tid = tid_of(t);
	lock(&t->lock);
	if (t->used > TBUF_DATA - LINE_ROOM)
		flush_locked(t);
	start = t->data + t->used;
	b.p = start;
	b.end = start + LINE_ROOM - 1;
	if (o_json) {
		sb_lit(&b, "{\"pid\":");
		sb_dec(&b, tid);
		sb_lit(&b, ",\"abi\":\"i386\",\"nr\":");
		sb_dec(&b, nr);
		sb_lit(&b, ",\"name\":");
		if ((unsigned long)nr < SYSI_NI386 && sysi_i386_names[nr]) {
			sb_putc(&b, '"');
			sb_puts(&b, sysi_i386_names[nr]);
			sb_putc(&b, '"');
		} else {
			sb_lit(&b, "null");
		}
		sb_lit(&b, ",\"args\":[");
		for (int i = 0; i < 6; i++) {
			if (i)
				sb_putc(&b, ',');
			sb_udec(&b, (unsigned)a[i]);
		}
		sb_lit(&b, "],\"ret\":");
		if (known)
			sb_dec(&b, r);
		else
			sb_lit(&b, "null");
		sb_lit(&b, ",\"strategy\":\"catch-all\"}\n");
	} else {
		if (o_notes && !t->pers32) {
			mode_note(&b, tid, 32);
			t->pers32 = 1;
		}
		line = b.p;
		put_prefix(&b, tid);
		sysi_decode_i386(&b, line, nr, a, r, known);
		if (b.p >= b.end)
			b.p = b.end - 3, sb_lit(&b, "...");
		*b.p++ = '\n';
		if (nr == 252 && !known) { /* exit_group: strace's last line for the process */
			b.end = start + LINE_ROOM;
			put_exited(&b, tid, (int)a[0]);
		}
	}
	t->used += b.p - start;
	if (t->used >= FLUSH_AT)
		flush_locked(t);
	unlock(&t->lock);
}

/* Before an int $0x80 exit, exit_group, execve, fork, vfork or clone: every buffered line out. */
void sysi_trace_int80_flush(void)
{
	flush_all();
}

void sysi_trace_emit(const struct sysi_call *c, long r, int known, const struct sysi_tstart *s)
{
	struct tbuf *t = mine();
	if (t)
		emit(t, c, r, known, s->t0s, s->t0ns, s->has_pre ? s->pre : 0);
}

/* An in-context call (vfork, clone with a stack, clone3, rt_sigreturn) about to be made by the
 * runtime after the hook returns. */
void sysi_trace_incontext(const struct sysi_call *c, const struct sysi_tstart *s)
{
	struct tbuf *t = mine();
	if (!t)
		return;
	if (c->nr == __NR_rt_sigreturn) {
		emit(t, c, 0, 0, 0, 0, 0);
		return;
	}
	t->pend.refused = c->nr == __NR_clone && clone_refused((unsigned long)c->args[0]);
	if (!t->pend.refused)
		multi = 1; /* a child or thread is about to exist */
	t->pend.on = 1;
	t->pend.tid = tid_of(t);
	t->pend.child = 0;
	t->pend.c = *c;
	t->pend.s = *s;
	if (!t->pend.refused &&
	    (c->nr == __NR_clone3 || (c->nr == __NR_clone && (c->args[0] & 0x10000 /* CLONE_THREAD */))))
		clone_open(t->pend.tid);
}

/*
 * The rt_sigreturn the master (signal.c) makes after a program handler returned, standing for
 * the program's own: its line as strace prints it, the mask it restores and the rax it restores
 * as the result (strace reads both from the frame: `rt_sigreturn({mask=[]}) = 0`).
 */
void sysi_trace_sigreturn(const uint64_t *mask, long rax)
{
	struct tbuf *t = mine();
	struct sysi_call c = { .nr = __NR_rt_sigreturn, .flags = SYSI_TRACE_SIGFRAME };
	long s = 0, ns = 0;
	if (!t)
		return;
	c.args[0] = (long)mask;
	if (o_dur) /* made just now */
		sysi_trace_clock(CLOCK_MONOTONIC, &s, &ns);
	emit(t, &c, rax, 1, s, ns, 0);
}

/* exit or exit_group: the line ("= ?"), then every line of the thread (exit) or process out. */
void sysi_trace_final(const struct sysi_call *c, const struct sysi_tstart *s, int shown)
{
	struct tbuf *t = mine();
	if (!t)
		return;
	if (shown && status_shown(0, 0)) {
		emit(t, c, 0, 0, s->t0s, s->t0ns, 0);
	} else if (c->nr == __NR_exit_group && !o_json) {
		/* strace's last line for the process comes whatever -e trace= or status= says */
		struct sb b;
		lock(&t->lock);
		if (t->used > TBUF_DATA - LINE_ROOM)
			flush_locked(t);
		b.p = t->data + t->used;
		b.end = b.p + LINE_ROOM;
		put_exited(&b, tid_of(t), (int)c->args[0]);
		t->used = b.p - t->data;
		unlock(&t->lock);
	}
	if (c->nr == __NR_exit) {
		sysi_trace_thread_exit();
	} else {
		drop_open_others();
		flush_all();
	}
}

/* After fork in the child: the buffers are the parent's (already written), the tid is new. */
void sysi_trace_atfork_child(void)
{
	for (struct tbuf *t = all; t; t = t->next) {
		t->used = 0;
		t->lock = 0;
		t->pend.on = 0;
		t->open = 0; /* the parent's threads' calls: the parent waits for them */
		if (t != tb)
			t->dead = 1;
	}
	if (tb)
		tb->tid = raw0(__NR_gettid);
	multi = 1;
	sysi_peek_atfork();
}

/* A fork-like call returned in the parent (fork, clone without a stack): lines get pids. */
void sysi_trace_forked(void)
{
	multi = 1;
}

/* The thread leaves (exit): its lines out, its buffer free for the next thread. */
void sysi_trace_thread_exit(void)
{
	struct tbuf *t = tb;
	if (!t)
		return;
	lock(&t->lock);
	flush_locked(t);
	unlock(&t->lock);
	tb = 0;
	__atomic_store_n(&t->dead, 1, __ATOMIC_RELEASE);
}

/* The SIGPIPE watch's line for a write that is about to kill the process. */
void sysi_trace_dying(void)
{
	flush_all();
}

/*
 * exit() runs libsysi's destructors: lines out even when the exit_group that follows is made
 * from a site the chain left unpatched (-s zpoline refuses red-zone sites), which the hook never
 * sees. Lines buffered by a process that ends in _exit from such a site are still lost.
 */
__attribute__((destructor)) static void flush_at_exit(void)
{
	drop_open_others();
	flush_all();
}

int sysi_trace_json(void)
{
	return o_json;
}

static char **exec_argv, **exec_envp;

/* glibc passes (argc, argv, envp) to constructors: the execve line of this image comes from them. */
int sysi_trace_wants(long nr); /* trace.c: -e lets nr's lines through */
__attribute__((constructor(102))) static void record_exec(int argc, char **argv, char **envp)
{
	(void)argc;
	exec_argv = argv;
	exec_envp = envp;
	if (sysi_hook_cur == sysi_hook_trace)
		sysi_trace_exec_line(sysi_trace_wants(__NR_execve));
}

/*
 * The execve that started this image succeeded (the old image never sees its result): its line,
 * from what the kernel gave the new image (AT_EXECFN: the path as passed; argv; envp).
 */
void sysi_trace_exec_line(int shown)
{
	struct sysi_call c = { 0 };
	struct sysi_tstart s = { 0 };
	unsigned long fn = getauxval(AT_EXECFN);
	if (!shown || !exec_argv)
		return;
	c.nr = __NR_execve;
	c.args[0] = (long)fn;
	c.args[1] = (long)exec_argv;
	c.args[2] = (long)exec_envp;
	sysi_trace_emit(&c, 0, 1, &s);
}

static long env_num(const char *name, long dflt)
{
	const char *v = sysi_getenv(name), *e;
	long n, sign = 1;
	if (!v || !*v)
		return dflt;
	if (*v == '-') {
		sign = -1;
		v++;
	}
	n = sysi_parse_dec(v, &e);
	return n < 0 || *e ? dflt : sign * n;
}

void sysi_decode_setup(int json)
{
	const char *st = sysi_getenv("SYSI_TRACE_STATUS");
	int fd = sysi_trace_out_fd();
	struct stat sb;
	o_json = json;
	sysi_decode_setup_names();
	o_time = (int)env_num("SYSI_TRACE_TIME", 0);
	o_dur = env_num("SYSI_TRACE_DURATION", 0) == 1;
	o_tzoff = env_num("SYSI_TRACE_TZOFF", 0);
	o_ppid = env_num("SYSI_TRACE_PPID", -1);
	o_notes = env_num("SYSI_TRACE_NOTES", 0) == 1 && !json;
	sysi_trace_strlen = (int)env_num("SYSI_TRACE_STRLEN", 32);
	if (sysi_trace_strlen < 0)
		sysi_trace_strlen = 32;
	if (st && !sysi_strcmp(st, "failed"))
		o_status = 1;
	else if (st && !sysi_strcmp(st, "successful"))
		o_status = 2;
	/* [pid N] on every line but the first process's while it is alone (strace -f) */
	multi = o_ppid < 0 || raw0(__NR_getppid) != o_ppid;
	if (fd >= 0 && raw2(__NR_fstat, fd, &sb) == 0)
		o_live = !S_ISREG(sb.st_mode) && !(S_ISCHR(sb.st_mode) && sb.st_rdev == 0x103 /* /dev/null */);
	/* entry parts of blocking calls: watched live, text lines all shown, writers sharing words */
	o_split = o_live && !json && !o_status && sysi_stats;
}
