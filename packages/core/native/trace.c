/* trace.c — the built-in `trace` hook: one strace-like (or JSON) line per call, one write each. */
#include <asm/unistd.h>
#include <fcntl.h>
#include "internal.h"

static int trace_fd = 2;
static int trace_json;

int sysi_trace_setup(void)
{
	const char *f = sysi_getenv("SYSI_TRACE_FILE");
	const char *j = sysi_getenv("SYSI_TRACE_JSON");
	long fd, hi;
	trace_json = j && j[0] == '1';
	if (!f || !*f)
		return 0;
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
	return 0;
}

static char *arg(char *p, long v)
{
	if (!(v >> 32) && (int)v > -4096 && (int)v < 0) /* a negative int, e.g. AT_FDCWD */
		return sysi_fmt_dec(p, (int)v);
	if (v > -4096 && v < 65536)
		return sysi_fmt_dec(p, v);
	return sysi_fmt_hex(p, (unsigned long)v);
}

static char *json_str(char *p, const char *s)
{
	*p++ = '"';
	for (; *s; s++)
		*p++ = *s; /* names and strategy names are [a-z0-9_?] */
	*p++ = '"';
	return p;
}

static void line(const struct sysi_call *c, long ret, int known)
{
	char buf[512], *p = buf;
	const char *name = sysi_syscall_name(c->nr);
	long tid = raw0(__NR_gettid);

	if (trace_json) {
		p = sysi_stpcpy(p, "{\"pid\":");
		p = sysi_fmt_dec(p, tid);
		p = sysi_stpcpy(p, ",\"nr\":");
		p = sysi_fmt_dec(p, c->nr);
		p = sysi_stpcpy(p, ",\"name\":");
		p = name ? json_str(p, name) : sysi_stpcpy(p, "null");
		p = sysi_stpcpy(p, ",\"args\":[");
		for (int i = 0; i < 6; i++) {
			if (i)
				*p++ = ',';
			p = sysi_fmt_dec(p, c->args[i]);
		}
		p = sysi_stpcpy(p, "],\"ret\":");
		p = known ? sysi_fmt_dec(p, ret) : sysi_stpcpy(p, "null");
		p = sysi_stpcpy(p, ",\"strategy\":");
		p = json_str(p, sysi_strategy_name(c->strategy));
		p = sysi_stpcpy(p, "}\n");
	} else {
		p = sysi_stpcpy(p, "[pid ");
		p = sysi_fmt_dec(p, tid);
		p = sysi_stpcpy(p, "] ");
		if (name) {
			p = sysi_stpcpy(p, name);
		} else {
			p = sysi_stpcpy(p, "syscall_");
			p = sysi_fmt_dec(p, c->nr);
		}
		*p++ = '(';
		for (int i = 0; i < 6; i++) {
			if (i)
				p = sysi_stpcpy(p, ", ");
			p = arg(p, c->args[i]);
		}
		p = sysi_stpcpy(p, ") = ");
		if (!known)
			*p++ = '?';
		else if (ret > -4096 && ret < 0x100000000L)
			p = sysi_fmt_dec(p, ret);
		else
			p = sysi_fmt_hex(p, (unsigned long)ret);
		*p++ = '\n';
	}
	raw3(__NR_write, trace_fd, buf, p - buf);
}

void sysi_trace_line(const struct sysi_call *c, long ret)
{
	line(c, ret, 1);
}

long sysi_hook_trace(struct sysi_call *c)
{
	long r;
	int mine;
	sysi_count_strategy(c);
	if ((c->flags & SYSI_CALL_INCONTEXT) || c->nr == __NR_exit || c->nr == __NR_exit_group) {
		line(c, 0, 0);
		return sysi_perform_call(c);
	}
	r = sysi_perform_watched(c, &mine);
	if (mine) /* else the SIGPIPE watch wrote its line */
		line(c, r, 1);
	return r;
}
