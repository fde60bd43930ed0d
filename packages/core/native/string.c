/* string.c — freestanding string/number helpers; no libc, no vector registers. */
#include "internal.h"

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memset(void *d, int c, size_t n)
{
	unsigned char *dp = d;
	while (n--)
		*dp++ = (unsigned char)c;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	if (dp <= sp || dp >= sp + n)
		return memcpy(d, s, n);
	while (n--) /* overlapping, d above s: from the end */
		dp[n] = sp[n];
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t sysi_strlen(const char *s)
{
	const char *p = s;
	while (*p)
		p++;
	return (size_t)(p - s);
}

int sysi_strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

int sysi_strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

char *sysi_stpcpy(char *d, const char *s)
{
	while ((*d = *s++))
		d++;
	return d;
}

char *sysi_fmt_udec(char *p, unsigned long v)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*p++ = tmp[--n];
	*p = 0;
	return p;
}

char *sysi_fmt_dec(char *p, long v)
{
	if (v < 0) {
		*p++ = '-';
		return sysi_fmt_udec(p, -(unsigned long)v);
	}
	return sysi_fmt_udec(p, (unsigned long)v);
}

char *sysi_fmt_hex(char *p, unsigned long v)
{
	char tmp[16];
	int n = 0;
	*p++ = '0';
	*p++ = 'x';
	do
		tmp[n++] = "0123456789abcdef"[v & 15];
	while ((v >>= 4));
	while (n)
		*p++ = tmp[--n];
	*p = 0;
	return p;
}

long sysi_parse_dec(const char *s, const char **end)
{
	long v = 0;
	int any = 0;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s++ - '0');
		any = 1;
		if (v > 0x7fffffff)
			break;
	}
	if (end)
		*end = s;
	return any ? v : -1;
}
