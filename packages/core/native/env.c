/* env.c — environment lookup without libc state, diagnostics, fatal errors. */
#include <asm/unistd.h>
#include "internal.h"

extern char **environ;
int sysi_debug_on;

const char *sysi_getenv(const char *name)
{
	size_t n = sysi_strlen(name);
	char **e;
	const char *v = sysi_embedded_getenv(name); /* a patched program's settings win */
	if (v)
		return v;
	if (!environ)
		return 0;
	for (e = environ; *e; e++)
		if (!sysi_strncmp(*e, name, n) && (*e)[n] == '=')
			return *e + n + 1;
	return 0;
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
