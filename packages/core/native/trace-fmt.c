/* trace-fmt.c — bounded appends for trace lines: numbers, quoted bytes, flags, names of constants. */
#include "trace-decode.h"
#include "trace-gen-consts.h"

void sb_puts(struct sb *b, const char *s)
{
	while (*s && b->p < b->end)
		*b->p++ = *s++;
}

void sb_dec(struct sb *b, long v)
{
	char t[24], *e = t + sizeof t, *s;
	s = udec_back(e, v < 0 ? -(unsigned long)v : (unsigned long)v);
	if (v < 0)
		*--s = '-';
	sb_mem(b, s, (size_t)(e - s));
}

void sb_udec(struct sb *b, unsigned long v)
{
	char t[24], *e = t + sizeof t, *s = udec_back(e, v);
	sb_mem(b, s, (size_t)(e - s));
}

void sb_hex(struct sb *b, unsigned long v)
{
	char t[24], *e = t + sizeof t, *s = e;
	do
		*--s = "0123456789abcdef"[v & 15];
	while ((v >>= 4));
	*--s = 'x';
	*--s = '0';
	sb_mem(b, s, (size_t)(e - s));
}

/* as strace's %#03o: 000, 022, 0644, 0107777 */
void sb_oct(struct sb *b, unsigned long v)
{
	char t[24];
	int n = 0;
	do
		t[n++] = (char)('0' + (v & 7));
	while ((v >>= 3));
	if (!(n == 1 && t[0] == '0'))
		t[n++] = '0';
	while (n < 3)
		t[n++] = '0';
	while (n)
		sb_putc(b, t[--n]);
}

void sb_ptr(struct sb *b, unsigned long v)
{
	if (v)
		sb_hex(b, v);
	else
		sb_lit(b, "NULL");
}

/* As strace quotes: printable ASCII as is, \" \\ \f \n \r \t \v, else octal (3 digits when an
 * octal digit follows, so the escape cannot swallow it), or \xNN throughout with hex. */
void sb_quote(struct sb *b, const unsigned char *s, size_t n, int hex)
{
	static const char digits[] = "0123456789abcdef";
	sb_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned c = s[i];
		if (hex) {
			sb_putc(b, '\\');
			sb_putc(b, 'x');
			sb_putc(b, digits[c >> 4]);
			sb_putc(b, digits[c & 15]);
			continue;
		}
		switch (c) {
		case '"': sb_lit(b, "\\\""); continue;
		case '\\': sb_lit(b, "\\\\"); continue;
		case '\f': sb_lit(b, "\\f"); continue;
		case '\n': sb_lit(b, "\\n"); continue;
		case '\r': sb_lit(b, "\\r"); continue;
		case '\t': sb_lit(b, "\\t"); continue;
		case '\v': sb_lit(b, "\\v"); continue;
		}
		if (c >= 0x20 && c < 0x7f) {
			sb_putc(b, (char)c);
			continue;
		}
		sb_putc(b, '\\');
		if (i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7') {
			sb_putc(b, (char)('0' + (c >> 6)));
			sb_putc(b, (char)('0' + ((c >> 3) & 7)));
			sb_putc(b, (char)('0' + (c & 7)));
		} else {
			if (c >> 6)
				sb_putc(b, (char)('0' + (c >> 6)));
			if (c >> 3)
				sb_putc(b, (char)('0' + ((c >> 3) & 7)));
			sb_putc(b, (char)('0' + (c & 7)));
		}
	}
	sb_putc(b, '"');
}

void sb_flags(struct sb *b, const struct sysi_xlat *x, unsigned long v, const char *zero_name)
{
	int any = 0;
	if (!v) {
		sb_puts(b, zero_name ? zero_name : "0");
		return;
	}
	for (; x->name; x++) {
		if (x->val && (v & x->val) == x->val) {
			if (any)
				sb_putc(b, '|');
			sb_puts(b, x->name);
			v &= ~x->val;
			any = 1;
		}
	}
	if (v) {
		if (any)
			sb_putc(b, '|');
		sb_hex(b, v);
	}
}

int sb_enum(struct sb *b, const struct sysi_xlat *x, unsigned long v, const char *unknown_comment)
{
	for (; x->name; x++) {
		if (x->val == v) {
			sb_puts(b, x->name);
			return 1;
		}
	}
	if ((long)v < 0 && (long)v > -4096)
		sb_dec(b, (long)v);
	else
		sb_hex(b, v);
	if (unknown_comment) {
		sb_lit(b, " /* ");
		sb_puts(b, unknown_comment);
		sb_lit(b, " */");
	}
	return 0;
}

void sb_signame(struct sb *b, long sig, int with_sig)
{
	if (sig > 0 && sig < 32 && sysi_signal_names[sig]) {
		sb_puts(b, sysi_signal_names[sig] + (with_sig ? 0 : 3));
	} else if (sig >= 32 && sig <= 64) {
		if (with_sig)
			sb_lit(b, "SIG");
		if (sig == 32) {
			sb_lit(b, "RTMIN");
		} else {
			sb_lit(b, "RT_");
			sb_dec(b, sig - 32);
		}
	} else {
		sb_dec(b, sig);
	}
}

void sb_errno(struct sb *b, long err)
{
	if (err > 0 && err < SYSI_NERRNO && sysi_errno_names[err]) {
		sb_puts(b, sysi_errno_names[err]);
		sb_lit(b, " (");
		sb_puts(b, sysi_errno_msgs[err]);
		sb_putc(b, ')');
		return;
	}
	switch (err) { /* the kernel's internal restart codes, as strace names them */
	case 512: sb_lit(b, "ERESTARTSYS (To be restarted if SA_RESTART is set)"); return;
	case 513: sb_lit(b, "ERESTARTNOINTR (To be restarted)"); return;
	case 514: sb_lit(b, "ERESTARTNOHAND (To be restarted if no handler)"); return;
	case 516: sb_lit(b, "ERESTART_RESTARTBLOCK (Interrupted by signal)"); return;
	}
	sb_lit(b, "E");
	sb_dec(b, err);
	sb_lit(b, " (Unknown error ");
	sb_dec(b, err);
	sb_putc(b, ')');
}
