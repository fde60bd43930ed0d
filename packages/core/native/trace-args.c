/*
 * trace-args.c — one call's arguments and result in strace's notation, from the generated table
 * (trace-gen-args.h: how many arguments, the kind of each) and the program's memory (trace-mem.c). Output
 * arguments (read's buffer, fstat's struct) are printed from memory after the call, and only when
 * it succeeded; a pointer that cannot be read prints as its address.
 */
#include <asm/unistd.h>
#include "trace-decode.h"
#include "trace-gen-args.h"
#include "trace-gen-consts.h"
#include "syscall-names.h"

int sysi_trace_strlen = 32;

#define SYSI_X32_BIT_ 0x40000000L /* __X32_SYSCALL_BIT */
#define PATH_MAX_ 4095 /* as strace: PATH_MAX with its NUL */
#define O_ACCMODE_ 3
#define O_CREAT_ 0100
#define O_TMPFILE_BIT 020000000
#define AT_FDCWD_ (-100)
#define CLONE_PARENT_SETTID_ 0x00100000UL
#define CLONE_CHILD_SETTID_ 0x01000000UL
#define CLONE_CHILD_CLEARTID_ 0x00200000UL
#define CLONE_SETTLS_ 0x00080000UL
#define CLONE_PIDFD_ 0x00001000UL

/*
 * An x32 call whose x32 name is the 64-bit name of its low number (a call the kernel's x32 table
 * shares with the 64-bit one: getpid is 0x40000027): that number, which strace decodes it as.
 * Else nr.
 */
static long x32_common(long nr)
{
	const char *x = sysi_x32_name(nr), *n;
	if (!x)
		return nr;
	n = sysi_syscall_name(nr - SYSI_X32_BIT_);
	return n && !sysi_strcmp(n, x) ? nr - SYSI_X32_BIT_ : nr;
}

static const struct sysi_sc_desc *desc_of(long nr)
{
	if ((unsigned long)nr < SYSI_NDESCS) /* a 64-bit number: no x32 question */
		return nr < SYSI_NSYSCALLS && sysi_syscall_names[nr] ? &sysi_sc_descs[nr] : 0;
	nr = x32_common(nr);
	if (nr < 0 || (unsigned long)nr >= SYSI_NDESCS || !sysi_syscall_name(nr))
		return 0;
	return &sysi_sc_descs[nr];
}

/*
 * The argument count of an x32 call strace names but sysi does not decode (a 64-bit-only
 * number, "rt_sigaction#64"; an x32 compat call, rt_sigaction at 0x40000200): that of the
 * 64-bit call of the same name; -1 for any other number.
 */
static int x32_nargs(long nr)
{
	const char *x = sysi_x32_name(nr), *n;
	size_t len;
	if (!x)
		return -1;
	len = sysi_strlen(x);
	if (len > 3 && !sysi_strcmp(x + len - 3, "#64")) /* the 64-bit call nr - SYSI_X32_BIT_ */
		nr -= SYSI_X32_BIT_;
	else
		for (nr = 0; nr < (long)SYSI_NDESCS; nr++)
			if ((n = sysi_syscall_name(nr)) && !sysi_strcmp(n, x))
				break;
	if (nr < 0 || (unsigned long)nr >= SYSI_NDESCS || !sysi_syscall_name(nr))
		return -1;
	return sysi_sc_descs[nr].nargs;
}

int sysi_decode_arg32(long nr, int i, int *is_signed)
{
	const struct sysi_sc_desc *d = desc_of(nr);
	if (!d || d->nargs < 0 || i >= d->nargs)
		return 0;
	*is_signed = (d->signed32 >> i) & 1;
	return (d->int32 >> i) & 1;
}

unsigned sysi_decode_classes(long nr)
{
	const struct sysi_sc_desc *d = desc_of(nr);
	return d ? d->classes : 0;
}

/*
 * Plain calls: every argument a number or a pointer printed as it is (K_DEC K_UDEC K_HEX K_PTR
 * K_FD), no rule of its own in decode_args or sysi_decode_ret, the result a number, an address
 * or "?". Their lines need no memory read and are built by sysi_decode_plain_line without bounds
 * checks, from heads[nr] ("name(", padded to a fixed size so it is copied in whole words).
 */
#define HEAD 32
static unsigned char name_len[SYSI_NSYSCALLS]; /* strlen of sysi_syscall_names[nr] */
static unsigned char plain[SYSI_NDESCS];
static char heads[SYSI_NDESCS][HEAD];

static int is_plain(long nr)
{
	const struct sysi_sc_desc *d = desc_of(nr);
	switch (nr) { /* decode_args and sysi_decode_ret's own rules */
	case __NR_clone: case __NR_clone3: case __NR_futex: case __NR_fcntl: case __NR_ioctl:
	case __NR_getdents64: case __NR_getdents: case __NR_uname: case __NR_open: case __NR_openat:
	case __NR_socket: case __NR_rt_sigreturn:
		return 0;
	}
	if (!d || d->nargs < 0 || d->ret == R_OCT || name_len[nr] >= HEAD)
		return 0;
	for (int i = 0; i < d->nargs; i++)
		if (d->kinds[i] != K_DEC && d->kinds[i] != K_UDEC && d->kinds[i] != K_HEX &&
		    d->kinds[i] != K_PTR && d->kinds[i] != K_FD)
			return 0;
	return 1;
}

/*
 * int $0x80 calls (sud.c, under --complete) are named from the i386 table. One whose 64-bit
 * namesake takes arguments that read the same as 32-bit values (numbers, fds, flags, strings,
 * byte buffers: i386_kind_ok) is decoded as that call, with its pointers read as 32-bit ones;
 * i386_as[nr] is that number, -1 for the others (calls whose i386 form differs: old mmap and
 * select take a struct, clone orders its arguments otherwise, futex and getdents use 32-bit
 * layouts), which print their six registers raw, as strace prints a call it does not know.
 */
static short i386_as[SYSI_NI386];

static int i386_kind_ok(int k)
{
	switch (k) {
	case K_DEC: case K_UDEC: case K_HEX: case K_OCT: case K_PTR: case K_FD: case K_DIRFD: case K_STR:
	case K_BUF_IN: case K_BUF_OUT: case K_OFLAGS: case K_ACCESS: case K_ATFLAGS: case K_SIGNUM:
	case K_WHENCE: case K_PIPEFD: case K_WOPTIONS: case K_WSTATUS: case K_MADV: case K_PROT:
	case K_SIGHOW: case K_SIGSET:
		return 1;
	}
	return 0;
}

static void i386_setup(void)
{
	for (long n = 0; n < SYSI_NI386; n++) {
		const char *x = sysi_i386_names[n];
		long as = -1;
		i386_as[n] = -1;
		if (!x || !sysi_strcmp(x, "mmap") || !sysi_strcmp(x, "select") || !sysi_strcmp(x, "clone") ||
		    !sysi_strcmp(x, "futex") || !sysi_strcmp(x, "getdents") || !sysi_strcmp(x, "uname"))
			continue;
		for (long nr = 0; nr < (long)SYSI_NDESCS && as < 0; nr++)
			if (sysi_syscall_names[nr] && !sysi_strcmp(sysi_syscall_names[nr], x))
				as = nr;
		if (as < 0 || sysi_sc_descs[as].nargs < 0)
			continue;
		for (int i = 0; i < sysi_sc_descs[as].nargs; i++)
			if (!i386_kind_ok(sysi_sc_descs[as].kinds[i]))
				as = -1;
		if (as >= 0)
			i386_as[n] = (short)as;
	}
}

const char *sysi_decode_i386_name(long nr)
{
	return (unsigned long)nr < SYSI_NI386 ? sysi_i386_names[nr] : 0;
}

long sysi_decode_i386_as(long nr)
{
	return (unsigned long)nr < SYSI_NI386 ? i386_as[nr] : -1;
}

void sysi_decode_setup_names(void)
{
	i386_setup();
	for (int i = 0; i < SYSI_NSYSCALLS; i++)
		name_len[i] = sysi_syscall_names[i] ? (unsigned char)sysi_strlen(sysi_syscall_names[i]) : 0;
	for (long nr = 0; nr < (long)SYSI_NDESCS; nr++) {
		if (!(plain[nr] = (unsigned char)is_plain(nr)))
			continue;
		for (int i = 0; i < name_len[nr]; i++)
			heads[nr][i] = sysi_syscall_names[nr][i];
		heads[nr][name_len[nr]] = '(';
	}
}

int sysi_decode_plain(long nr)
{
	return (unsigned long)nr < SYSI_NDESCS && plain[nr];
}

/* v in decimal at p: the end */
static char *p_udec(char *p, unsigned long v)
{
	static const unsigned long pow10[20] = {
		1UL, 10UL, 100UL, 1000UL, 10000UL, 100000UL, 1000000UL, 10000000UL, 100000000UL,
		1000000000UL, 10000000000UL, 100000000000UL, 1000000000000UL, 10000000000000UL,
		100000000000000UL, 1000000000000000UL, 10000000000000000UL, 100000000000000000UL,
		1000000000000000000UL, 10000000000000000000UL,
	};
	int n = 1;
	while (n < 20 && v >= pow10[n]) /* compares, not a chain of divisions */
		n++;
	udec_back(p + n, v);
	return p + n;
}

static char *p_dec(char *p, long v)
{
	if (v < 0) {
		*p++ = '-';
		return p_udec(p, -(unsigned long)v);
	}
	return p_udec(p, (unsigned long)v);
}

static char *p_hex(char *p, unsigned long v)
{
	int n = 1;
	char *e;
	for (unsigned long x = v >> 4; x; x >>= 4)
		n++;
	*p++ = '0';
	*p++ = 'x';
	e = p + n;
	for (p = e; n--; v >>= 4)
		*--p = "0123456789abcdef"[v & 15];
	return e;
}

static char *p_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

/*
 * A plain call's "name(args) = result" (sysi_decode_plain(c->nr)), result known, at p, which has
 * room for SYSI_PLAIN_MAX bytes: the end. The same text decode_args and sysi_decode_ret give.
 */
char *sysi_decode_plain_line(char *p, const char *line, const struct sysi_call *c, long r)
{
	const struct sysi_sc_desc *d = &sysi_sc_descs[c->nr];
	__builtin_memcpy(p, heads[c->nr], HEAD);
	p += name_len[c->nr] + 1;
	for (int i = 0; i < d->nargs; i++) {
		unsigned long v = (unsigned long)c->args[i];
		int is32 = (d->int32 >> i) & 1;
		if (i) {
			*p++ = ',';
			*p++ = ' ';
		}
		switch (d->kinds[i]) {
		case K_DEC: /* as put_arg */
			p = p_dec(p, is32 ? ((d->signed32 >> i) & 1 ? (long)(int)v : (long)(unsigned)v) : (long)v);
			break;
		case K_UDEC:
			p = p_udec(p, is32 ? (unsigned)v : v);
			break;
		case K_HEX:
			if (is32)
				v = (unsigned)v;
			if (v)
				p = p_hex(p, v);
			else
				*p++ = '0';
			break;
		case K_PTR:
			if (v)
				p = p_hex(p, v);
			else
				p = p_str(p, "NULL");
			break;
		default: /* K_FD */
			p = p_dec(p, (int)v);
			break;
		}
	}
	*p++ = ')';
	*p++ = ' ';
	if (p - line < SYSI_TRACE_COLUMN) { /* sb_tab: spaces to strace's column */
		__builtin_memset(p, ' ', SYSI_TRACE_COLUMN);
		p = (char *)line + SYSI_TRACE_COLUMN;
	}
	*p++ = '=';
	*p++ = ' ';
	if (d->ret == R_NONE) {
		*p++ = '?';
	} else if (r < 0 && r >= -4095) { /* as sb_errno */
		struct sb b = { p + 3, p + SYSI_PLAIN_MAX / 2 };
		p = p_str(p, "-1 ");
		sb_errno(&b, -r);
		p = b.p;
	} else if (d->ret == R_HEX) {
		p = p_hex(p, (unsigned long)r);
	} else {
		p = p_dec(p, r);
	}
	return p;
}

void sysi_decode_name(struct sb *b, long nr)
{
	const char *name;
	if ((unsigned long)nr < SYSI_NSYSCALLS && name_len[nr]) {
		sb_mem(b, sysi_syscall_names[nr], name_len[nr]);
		return;
	}
	name = sysi_syscall_name(nr);
	if (!name) /* from strace's x32 table: getpid (0x40000027), rt_sigaction#64 (0x4000000d) */
		name = sysi_x32_name(nr);
	if (name) {
		sb_puts(b, name);
	} else { /* as strace names it: syscall_0x40000258, syscall_0xffffffffffffffff */
		sb_lit(b, "syscall_");
		sb_hex(b, (unsigned long)nr);
	}
}

static int failed(long r, int known)
{
	return !known || (r < 0 && r >= -4095);
}

static char scratch_static[1]; /* never used: keeps the compiler quiet about a zero-size case */
char *sysi_trace_scratch(size_t *n);

/* a NUL-terminated string, at most lim bytes (then "..."), or its address */
static void put_str(struct sb *b, unsigned long a, size_t lim)
{
	size_t n;
	char *buf = sysi_trace_scratch(&n);
	int cut;
	long len;
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	if (lim > n - 1)
		lim = n - 1;
	len = sysi_peek_str(buf, a, lim, &cut);
	if (len < 0) {
		sb_hex(b, a);
		return;
	}
	sb_quote(b, (const unsigned char *)buf, (size_t)len, 0);
	if (cut)
		sb_lit(b, "...");
}

/* len bytes at a, the first sysi_trace_strlen of them quoted (then "..."), or the address */
static void put_buf(struct sb *b, unsigned long a, unsigned long len, int hex)
{
	size_t n, lim = (size_t)sysi_trace_strlen, got;
	char *buf = sysi_trace_scratch(&n);
	if (!a && len) {
		sb_lit(b, "NULL");
		return;
	}
	if (sysi_peek_x32 && (a >> 32)) { /* strace checks the address even for 0 bytes */
		sb_hex(b, a);
		return;
	}
	if (lim > n)
		lim = n;
	if (lim > len)
		lim = len;
	got = sysi_peek(buf, a, lim);
	if (got < lim) {
		sb_hex(b, a);
		return;
	}
	sb_quote(b, (const unsigned char *)buf, lim, hex);
	if (len > lim)
		sb_lit(b, "...");
	(void)scratch_static;
}

static void put_sigset(struct sb *b, unsigned long a, unsigned long size, unsigned long min)
{
	uint64_t set = 0;
	int n = 0, inv;
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	/* a size the kernel's is not, or less than min (strace's rule): the address */
	if (size > 8 || size < min || sysi_peek(&set, a, size) < size) {
		sb_hex(b, a);
		return;
	}
	for (int i = 0; i < 64; i++)
		n += (set >> i) & 1;
	inv = n > 32;
	if (inv) {
		sb_putc(b, '~');
		set = ~set;
	}
	sb_putc(b, '[');
	n = 0;
	for (int i = 0; i < 64; i++) {
		if ((set >> i) & 1) {
			if (n++)
				sb_putc(b, ' ');
			sb_signame(b, i + 1, 0);
		}
	}
	sb_putc(b, ']');
}

static void put_sigaction(struct sb *b, unsigned long a)
{
	struct { unsigned long handler, flags, restorer; uint64_t mask; } sa;
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	if (sysi_peek(&sa, a, sizeof sa) < sizeof sa) {
		sb_hex(b, a);
		return;
	}
	sb_lit(b, "{sa_handler=");
	if (sa.handler == 0)
		sb_lit(b, "SIG_DFL");
	else if (sa.handler == 1)
		sb_lit(b, "SIG_IGN");
	else
		sb_hex(b, sa.handler);
	sb_lit(b, ", sa_mask=");
	put_sigset(b, a + 24, 8, 8);
	sb_lit(b, ", sa_flags=");
	sb_flags(b, sysi_x_saflags, sa.flags, 0);
	if (sa.flags & 0x04000000UL) { /* SA_RESTORER */
		sb_lit(b, ", sa_restorer=");
		sb_hex(b, sa.restorer);
	}
	sb_putc(b, '}');
}

/* "S_IFREG|S_ISUID|": the file type and the set-id and sticky bits, each followed by | */
static void put_mode_flags(struct sb *b, unsigned mode)
{
	static const char *const types[16] = { [1] = "S_IFIFO", [2] = "S_IFCHR", [4] = "S_IFDIR",
		[6] = "S_IFBLK", [8] = "S_IFREG", [10] = "S_IFLNK", [12] = "S_IFSOCK" };
	const char *t = types[(mode >> 12) & 15];
	if (t) {
		sb_puts(b, t);
		sb_putc(b, '|');
	}
	if (mode & 04000)
		sb_lit(b, "S_ISUID|");
	if (mode & 02000)
		sb_lit(b, "S_ISGID|");
	if (mode & 01000)
		sb_lit(b, "S_ISVTX|");
}

static void put_mode_type(struct sb *b, unsigned mode)
{
	put_mode_flags(b, mode);
	sb_putc(b, '0');
	sb_putc(b, (char)('0' + ((mode >> 6) & 7)));
	sb_putc(b, (char)('0' + ((mode >> 3) & 7)));
	sb_putc(b, (char)('0' + (mode & 7)));
}

static void put_dev(struct sb *b, unsigned long dev)
{
	unsigned long major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfffUL);
	unsigned long minor = (dev & 0xff) | ((dev >> 12) & ~0xffUL);
	sb_lit(b, "makedev(");
	sb_hex(b, major);
	sb_lit(b, ", ");
	sb_hex(b, minor);
	sb_putc(b, ')');
}

static void put_mode_dev_size(struct sb *b, const char *pfx, unsigned mode, unsigned long rdev,
			      unsigned long size)
{
	sb_puts(b, pfx);
	sb_lit(b, "mode=");
	put_mode_type(b, mode);
	if (((mode >> 12) & 15) == 2 || ((mode >> 12) & 15) == 6) {
		sb_lit(b, ", ");
		sb_puts(b, pfx);
		sb_lit(b, "rdev=");
		put_dev(b, rdev);
	} else {
		sb_lit(b, ", ");
		sb_puts(b, pfx);
		sb_lit(b, "size=");
		sb_udec(b, size);
	}
}

static void put_stat(struct sb *b, unsigned long a)
{
	struct { unsigned long dev, ino, nlink; unsigned mode, uid, gid, pad; unsigned long rdev; long size; } st;
	if (sysi_peek(&st, a, sizeof st) < sizeof st) {
		sb_hex(b, a);
		return;
	}
	sb_putc(b, '{');
	put_mode_dev_size(b, "st_", st.mode, st.rdev, (unsigned long)st.size);
	sb_lit(b, ", ...}");
}

static void put_timespec(struct sb *b, unsigned long a)
{
	struct { long sec, nsec; } ts;
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	if (sysi_peek(&ts, a, sizeof ts) < sizeof ts) {
		sb_hex(b, a);
		return;
	}
	sb_lit(b, "{tv_sec=");
	sb_dec(b, ts.sec);
	sb_lit(b, ", tv_nsec=");
	sb_udec(b, (unsigned long)ts.nsec); /* strace prints it unsigned (a bad timespec shows) */
	sb_putc(b, '}');
}

static void put_u8dec(struct sb *b, unsigned v)
{
	sb_udec(b, v & 0xff);
}

static void put_ip6(struct sb *b, const unsigned char *a)
{
	/* RFC 5952: the longest run of two or more zero groups becomes "::" */
	unsigned g[8];
	int best = -1, bestlen = 0;
	for (int i = 0; i < 8; i++)
		g[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
	for (int i = 0; i < 8;) {
		int j = i;
		while (j < 8 && !g[j])
			j++;
		if (j - i > bestlen && j - i >= 2) {
			best = i;
			bestlen = j - i;
		}
		i = j == i ? i + 1 : j;
	}
	if (best == 0 && bestlen == 5 && g[5] == 0xffff) { /* ::ffff:a.b.c.d */
		sb_lit(b, "::ffff:");
		for (int i = 12; i < 16; i++) {
			put_u8dec(b, a[i]);
			if (i < 15)
				sb_putc(b, '.');
		}
		return;
	}
	for (int i = 0; i < 8; i++) {
		static const char hx[] = "0123456789abcdef";
		char t[5];
		int n = 0;
		unsigned v = g[i];
		if (i == best) {
			sb_lit(b, "::");
			i += bestlen - 1;
			continue;
		}
		if (i && i != best + bestlen)
			sb_putc(b, ':');
		do
			t[n++] = hx[v & 15];
		while ((v >>= 4));
		while (n)
			sb_putc(b, t[--n]);
	}
}

static void put_sockaddr(struct sb *b, unsigned long a, long len)
{
	unsigned char sa[128];
	unsigned fam;
	size_t n;
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	if (len < 2) {
		sb_hex(b, a);
		return;
	}
	n = len > (long)sizeof sa ? sizeof sa : (size_t)len;
	if (sysi_peek(sa, a, n) < n) {
		sb_hex(b, a);
		return;
	}
	fam = sa[0] | (unsigned)sa[1] << 8;
	sb_lit(b, "{sa_family=");
	sb_enum(b, sysi_x_family, fam, 0);
	if (fam == 1) { /* AF_UNIX */
		size_t plen = n - 2, k = 0;
		if (plen) {
			sb_lit(b, ", sun_path=");
			if (sa[2] == 0) { /* abstract */
				sb_putc(b, '@');
				sb_quote(b, sa + 3, plen - 1, 0);
			} else {
				while (k < plen && sa[2 + k])
					k++;
				sb_quote(b, sa + 2, k, 0);
			}
		}
	} else if (fam == 2 && n >= 8) { /* AF_INET */
		sb_lit(b, ", sin_port=htons(");
		sb_udec(b, (unsigned)sa[2] << 8 | sa[3]);
		sb_lit(b, "), sin_addr=inet_addr(\"");
		for (int i = 4; i < 8; i++) {
			put_u8dec(b, sa[i]);
			if (i < 7)
				sb_putc(b, '.');
		}
		sb_lit(b, "\")");
	} else if (fam == 10 && n >= 24) { /* AF_INET6 */
		sb_lit(b, ", sin6_port=htons(");
		sb_udec(b, (unsigned)sa[2] << 8 | sa[3]);
		sb_lit(b, "), sin6_flowinfo=htonl(");
		sb_udec(b, (unsigned)sa[4] << 24 | (unsigned)sa[5] << 16 | (unsigned)sa[6] << 8 | sa[7]);
		sb_lit(b, "), inet_pton(AF_INET6, \"");
		put_ip6(b, sa + 8);
		sb_lit(b, "\", &sin6_addr)");
		if (n >= 28) {
			sb_lit(b, ", sin6_scope_id=");
			sb_udec(b, sa[24] | (unsigned)sa[25] << 8 | (unsigned)sa[26] << 16 | (unsigned)sa[27] << 24);
		}
	} else if (fam == 16 && n >= 12) { /* AF_NETLINK */
		static const char hx[] = "0123456789abcdef";
		unsigned pid = sa[4] | (unsigned)sa[5] << 8 | (unsigned)sa[6] << 16 | (unsigned)sa[7] << 24;
		unsigned grp = sa[8] | (unsigned)sa[9] << 8 | (unsigned)sa[10] << 16 | (unsigned)sa[11] << 24;
		sb_lit(b, ", nl_pid=");
		sb_udec(b, pid);
		sb_lit(b, ", nl_groups=");
		for (int i = 28; i >= 0; i -= 4)
			sb_putc(b, hx[(grp >> i) & 15]);
	} else if (n > 2) {
		sb_lit(b, ", sa_data=");
		sb_quote(b, sa + 2, n - 2, 0);
	}
	sb_putc(b, '}');
}

/* [{iov_base="…", iov_len=N}, …]: for data the call filled, at most `data` bytes in all */
static void put_iov(struct sb *b, unsigned long a, unsigned long cnt, long data, int out)
{
	struct { unsigned long base, len; } v;
	unsigned long i, max = (unsigned long)sysi_trace_strlen;
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	sb_putc(b, '[');
	for (i = 0; i < cnt; i++) {
		if (i == max) {
			sb_lit(b, ", ...");
			break;
		}
		if (sysi_peek(&v, a + i * sizeof v, sizeof v) < sizeof v) {
			if (i)
				sb_lit(b, ", ...");
			else
				sb_hex(b, a);
			break;
		}
		if (i)
			sb_lit(b, ", ");
		sb_lit(b, "{iov_base=");
		if (out) {
			unsigned long take = (unsigned long)data < v.len ? (unsigned long)data : v.len;
			put_buf(b, v.base, take, 0);
			data -= (long)take;
		} else {
			put_buf(b, v.base, v.len, 0);
		}
		sb_lit(b, ", iov_len=");
		sb_udec(b, v.len);
		sb_putc(b, '}');
	}
	sb_putc(b, ']');
}

static void put_argv(struct sb *b, unsigned long a)
{
	unsigned long p;
	int i;
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	sb_putc(b, '[');
	for (i = 0;; i++) {
		if (sysi_peek(&p, a + (unsigned long)i * 8, 8) < 8) {
			sb_puts(b, i ? ", ..." : "");
			break;
		}
		if (!p)
			break;
		if (i == sysi_trace_strlen) {
			sb_lit(b, ", ...");
			break;
		}
		if (i)
			sb_lit(b, ", ");
		put_str(b, p, (size_t)sysi_trace_strlen);
	}
	sb_putc(b, ']');
}

static void put_envp(struct sb *b, unsigned long a)
{
	unsigned long p;
	long n = 0;
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	while (n < 100000 && sysi_peek(&p, a + (unsigned long)n * 8, 8) == 8 && p)
		n++;
	sb_hex(b, a);
	sb_lit(b, " /* ");
	sb_dec(b, n);
	sb_puts(b, n == 1 ? " var */" : " vars */");
}

static void put_rlim1(struct sb *b, uint64_t v)
{
	if (v == ~(uint64_t)0)
		sb_lit(b, "RLIM64_INFINITY");
	else if (v && !(v % 1024)) {
		sb_udec(b, v / 1024);
		sb_lit(b, "*1024");
	} else
		sb_udec(b, v);
}

static void put_rlimit(struct sb *b, unsigned long a)
{
	uint64_t r[2];
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	if (sysi_peek(r, a, sizeof r) < sizeof r) {
		sb_hex(b, a);
		return;
	}
	sb_lit(b, "{rlim_cur=");
	put_rlim1(b, r[0]);
	sb_lit(b, ", rlim_max=");
	put_rlim1(b, r[1]);
	sb_putc(b, '}');
}

static void put_wstatus(struct sb *b, unsigned long a)
{
	int s;
	if (sysi_peek(&s, a, 4) < 4) {
		sb_hex(b, a);
		return;
	}
	sb_lit(b, "[{");
	if ((s & 0x7f) == 0) {
		sb_lit(b, "WIFEXITED(s) && WEXITSTATUS(s) == ");
		sb_dec(b, (s >> 8) & 0xff);
	} else if ((s & 0xff) == 0x7f) {
		sb_lit(b, "WIFSTOPPED(s) && WSTOPSIG(s) == ");
		sb_signame(b, (s >> 8) & 0xff, 1);
	} else if (s == 0xffff) {
		sb_lit(b, "WIFCONTINUED(s)");
	} else {
		sb_lit(b, "WIFSIGNALED(s) && WTERMSIG(s) == ");
		sb_signame(b, s & 0x7f, 1);
		if (s & 0x80)
			sb_lit(b, " && WCOREDUMP(s)");
	}
	sb_lit(b, "}]");
}

static void put_intptr(struct sb *b, unsigned long a)
{
	int v;
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	if (sysi_peek(&v, a, 4) < 4) {
		sb_hex(b, a);
		return;
	}
	sb_putc(b, '[');
	sb_dec(b, v);
	sb_putc(b, ']');
}

static void put_oflags(struct sb *b, unsigned long v, int accmode)
{
	static const char *const acc[4] = { "O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE" };
	v &= 0xffffffffUL;
	if (!accmode) {
		sb_flags(b, sysi_x_oflags, v, 0);
		return;
	}
	sb_puts(b, acc[v & O_ACCMODE_]);
	v &= ~(unsigned long)O_ACCMODE_;
	if (v) {
		sb_putc(b, '|');
		sb_flags(b, sysi_x_oflags, v, 0);
	}
}

static void put_mapflags(struct sb *b, unsigned long v)
{
	/* the type is the low 4 bits (MAP_TYPE): MAP_FILE (0), the three names, else unknown */
	static const char *const type[4] = { "MAP_FILE", "MAP_SHARED", "MAP_PRIVATE", "MAP_SHARED_VALIDATE" };
	const struct sysi_xlat *x;
	int any = 1;
	v &= 0xffffffffUL;
	if ((v & 0xf) < 4) {
		sb_puts(b, type[v & 0xf]);
	} else {
		sb_hex(b, v & 0xf);
		sb_lit(b, " /* MAP_??? */");
	}
	v &= ~0xfUL;
	for (x = sysi_x_mapflags; x->name; x++) {
		if (x->val > 0xf && (v & x->val) == x->val) {
			if (any)
				sb_putc(b, '|');
			sb_puts(b, x->name);
			v &= ~x->val;
			any = 1;
		}
	}
	if (v) {
		sb_putc(b, '|');
		sb_hex(b, v);
	}
}

static void put_cloneflags(struct sb *b, unsigned long v)
{
	unsigned long sig = v & 0xff;
	v &= ~0xffUL;
	if (v)
		sb_flags(b, sysi_x_cloneflags, v, 0);
	if (sig) {
		if (v)
			sb_putc(b, '|');
		sb_signame(b, (long)sig, 1);
	}
	if (!v && !sig)
		sb_putc(b, '0');
}

/* the fds set in the first n bits of the words at w: [3 5] */
static void put_fdbits(struct sb *b, const unsigned long *w, long n)
{
	int any = 0;
	sb_putc(b, '[');
	for (long i = 0; i < n; i++) {
		if (!((w[i / 64] >> (i % 64)) & 1))
			continue;
		if (any++)
			sb_putc(b, ' ');
		sb_dec(b, i);
	}
	sb_putc(b, ']');
}

/*
 * select/pselect6's values at entry (decode_pre): pre[0..2] the three fd sets (their first 64
 * fds: a set of a larger nfds prints as its address), pre[3], pre[4] the timeout, pre[5] bit i:
 * set i was read, bit 3: the timeout was.
 */
#define SEL_MAXFD 64
static void select_pre(const struct sysi_call *c, long *pre)
{
	long n = (int)c->args[0];
	pre[5] = 0;
	for (int i = 0; i < 3; i++) {
		unsigned long w = 0;
		pre[i] = 0;
		if (!c->args[i + 1] || n < 0 || n > SEL_MAXFD)
			continue;
		if (!n || sysi_peek(&w, (unsigned long)c->args[i + 1], (size_t)(n + 7) / 8) == (size_t)(n + 7) / 8) {
			pre[i] = (long)(n == 64 ? w : w & ((1UL << n) - 1));
			pre[5] |= 1L << i;
		}
	}
	if (c->args[4]) {
		long t[2];
		if (sysi_peek(t, (unsigned long)c->args[4], sizeof t) == sizeof t) {
			pre[3] = t[0];
			pre[4] = t[1];
			pre[5] |= 8;
		}
	}
}

/* {tv_sec=S, tv_usec=U} (select) or tv_nsec (pselect6) */
static void put_tv(struct sb *b, long sec, long frac, int usec)
{
	sb_lit(b, "{tv_sec=");
	sb_dec(b, sec);
	if (usec)
		sb_lit(b, ", tv_usec=");
	else
		sb_lit(b, ", tv_nsec=");
	sb_udec(b, (unsigned long)frac); /* strace prints the fraction unsigned */
	sb_putc(b, '}');
}

/* select's result: " (in [3], out [4], except [6], left {…})" from the sets as the call left them */
static void put_select_ret(struct sb *b, const struct sysi_call *c)
{
	static const char *const what[3] = { "in", "out", "except" };
	long n = (int)c->args[0];
	int any = 0;
	sb_lit(b, " (");
	for (int i = 0; i < 3; i++) {
		unsigned long w = 0;
		if (!c->args[i + 1] || n <= 0)
			continue;
		if (n > SEL_MAXFD || sysi_peek(&w, (unsigned long)c->args[i + 1], (size_t)(n + 7) / 8) < (size_t)(n + 7) / 8)
			continue;
		if (n < 64)
			w &= (1UL << n) - 1;
		if (!w)
			continue;
		if (any++)
			sb_lit(b, ", ");
		sb_puts(b, what[i]);
		sb_putc(b, ' ');
		put_fdbits(b, &w, n);
	}
	if (c->args[4]) {
		long t[2];
		if (sysi_peek(t, (unsigned long)c->args[4], sizeof t) == sizeof t) {
			if (any++)
				sb_lit(b, ", ");
			sb_lit(b, "left ");
			put_tv(b, t[0], t[1], c->nr == __NR_select);
		}
	}
	sb_putc(b, ')');
}

/* struct sysinfo */
static void put_sysinfo(struct sb *b, unsigned long a)
{
	struct { long uptime; unsigned long loads[3], totalram, freeram, sharedram, bufferram, totalswap,
		 freeswap; unsigned short procs, pad; unsigned long totalhigh, freehigh; unsigned mem_unit; } si;
	if (sysi_peek(&si, a, sizeof si) < sizeof si) {
		sb_hex(b, a);
		return;
	}
	sb_lit(b, "{uptime=");
	sb_dec(b, si.uptime);
	sb_lit(b, ", loads=[");
	sb_udec(b, si.loads[0]);
	sb_lit(b, ", ");
	sb_udec(b, si.loads[1]);
	sb_lit(b, ", ");
	sb_udec(b, si.loads[2]);
	sb_lit(b, "], totalram=");
	sb_udec(b, si.totalram);
	sb_lit(b, ", freeram=");
	sb_udec(b, si.freeram);
	sb_lit(b, ", sharedram=");
	sb_udec(b, si.sharedram);
	sb_lit(b, ", bufferram=");
	sb_udec(b, si.bufferram);
	sb_lit(b, ", totalswap=");
	sb_udec(b, si.totalswap);
	sb_lit(b, ", freeswap=");
	sb_udec(b, si.freeswap);
	sb_lit(b, ", procs=");
	sb_udec(b, si.procs);
	sb_lit(b, ", totalhigh=");
	sb_udec(b, si.totalhigh);
	sb_lit(b, ", freehigh=");
	sb_udec(b, si.freehigh);
	sb_lit(b, ", mem_unit=");
	sb_udec(b, si.mem_unit);
	sb_putc(b, '}');
}

/* struct epoll_event (packed: 4 + 8 bytes): one (epoll_ctl), or an array of n (epoll_wait); n < 0: the address */
static void put_epoll_events(struct sb *b, unsigned long a, long n, int array)
{
	struct __attribute__((packed)) { uint32_t events; uint64_t data; } e;
	long i;
	if (n < 0 || (n && sysi_peek(&e, a, sizeof e) < sizeof e)) {
		sb_hex(b, a);
		return;
	}
	if (array)
		sb_putc(b, '[');
	for (i = 0; i < n; i++) {
		if (i == sysi_trace_strlen || sysi_peek(&e, a + (unsigned long)i * sizeof e, sizeof e) < sizeof e) {
			sb_lit(b, ", ...");
			break;
		}
		if (i)
			sb_lit(b, ", ");
		sb_lit(b, "{events=");
		sb_flags(b, sysi_x_epollevents, e.events, 0);
		sb_lit(b, ", data={u32=");
		sb_udec(b, (uint32_t)e.data);
		sb_lit(b, ", u64=");
		sb_udec(b, e.data);
		sb_lit(b, "}}");
		if (!array)
			break;
	}
	if (array)
		sb_putc(b, ']');
}

/* a CPU mask of n bytes: [0 1 5]; 0 when it cannot be read */
static int put_cpuset(struct sb *b, unsigned long a, unsigned long n)
{
	unsigned long w, i, k;
	int any = 0;
	if (!a)
		return 0;
	for (i = 0; i < n; i += 8)
		if (sysi_peek(&w, a + i, n - i < 8 ? n - i : 8) < (n - i < 8 ? n - i : 8))
			return 0;
	sb_putc(b, '[');
	for (i = 0; i < n; i += 8) {
		w = 0;
		sysi_peek(&w, a + i, n - i < 8 ? n - i : 8);
		for (k = 0; k < 64; k++) {
			if (!((w >> k) & 1))
				continue;
			if (any++)
				sb_putc(b, ' ');
			sb_udec(b, i * 8 + k);
		}
	}
	sb_putc(b, ']');
	return 1;
}

/* 1 when some name of x covers bits of v */
static int flags_known(const struct sysi_xlat *x, unsigned long v)
{
	for (; x->name; x++)
		if (x->val && (v & x->val) == x->val)
			return 1;
	return 0;
}

/* a call's own flag set (K_SCFLAGS: the generator's SC_FLAGS) */
static void put_scflags(struct sb *b, long nr, unsigned long v)
{
	const struct sysi_xlat *x = 0;
	unsigned long huge = 0;
	switch (nr) {
	case __NR_faccessat2: x = sysi_x_faccessat; break;
	case __NR_eventfd2: x = sysi_x_efd; break;
	case __NR_epoll_create1: x = sysi_x_epoll; break;
	case __NR_inotify_init1: x = sysi_x_inotify; break;
	case __NR_timerfd_create: x = sysi_x_tfd; break;
	case __NR_memfd_create: /* a huge page size in bits 26-31: N<<MFD_HUGE_SHIFT */
		x = sysi_x_mfd;
		huge = v >> 26;
		v &= (1UL << 26) - 1;
		break;
	case __NR_mlockall: x = sysi_x_mcl; break;
	case __NR_msync: x = sysi_x_ms; break;
	case __NR_renameat2: x = sysi_x_rename; break;
	case __NR_signalfd4: x = sysi_x_sfd; break;
	case __NR_mlock2: x = sysi_x_mlock; break;
	case __NR_splice: case __NR_tee: case __NR_vmsplice: x = sysi_x_splice; break;
	case __NR_sync_file_range: x = sysi_x_sfr; break;
	case __NR_fallocate: x = sysi_x_falloc; break;
	case __NR_flock: x = sysi_x_lock; break;
	case __NR_pidfd_open: x = sysi_x_pidfd; break;
	}
	if (!x) {
		sb_hex(b, v);
		return;
	}
	if (v && !huge && !flags_known(x, v)) { /* no name for any bit: 0xfffffff8 and the prefix, as MCL_??? in a comment */
		const char *n = x->name;
		sb_hex(b, v);
		sb_lit(b, " /* ");
		while (*n && *n != '_')
			sb_putc(b, *n++);
		sb_lit(b, "_??? */");
		return;
	}
	if (v || !huge)
		sb_flags(b, x, v, 0);
	if (huge) {
		if (v)
			sb_putc(b, '|');
		sb_udec(b, huge);
		sb_lit(b, "<<MFD_HUGE_SHIFT");
	}
}

/* statx's flags: the sync type (AT_STATX_SYNC_AS_STAT when 0), then the AT_* flags */
static void put_statx_flags(struct sb *b, unsigned long v)
{
	unsigned long sync = v & 0x6000UL; /* AT_STATX_SYNC_TYPE */
	v &= 0xffffffffUL & ~0x6000UL;
	if (sync)
		sb_flags(b, sysi_x_statxsync, sync, 0);
	else
		sb_enum(b, sysi_x_statxsync, 0, 0);
	if (v) {
		sb_putc(b, '|');
		sb_flags(b, sysi_x_atflags, v, 0);
	}
}

/* struct statx, abbreviated as strace prints it: {stx_mask=…, stx_attributes=…, stx_mode=…, stx_size=N, ...} */
static void put_statx(struct sb *b, unsigned long a)
{
	struct { uint32_t mask, blksize; uint64_t attributes; uint32_t nlink, uid, gid; uint16_t mode, pad;
		 uint64_t ino, size; } st;
	if (sysi_peek(&st, a, sizeof st) < sizeof st) {
		sb_hex(b, a);
		return;
	}
	sb_lit(b, "{stx_mask=");
	sb_flags(b, sysi_x_statxmask, st.mask, 0);
	sb_lit(b, ", stx_attributes=");
	sb_flags(b, sysi_x_statxattr, st.attributes, 0);
	sb_lit(b, ", stx_mode=");
	put_mode_type(b, st.mode);
	sb_lit(b, ", stx_size=");
	sb_udec(b, st.size);
	sb_lit(b, ", ...}");
}

/*
 * struct pollfd[n]: [{fd=3, events=POLLIN}, …] (a negative fd without its events); with revents,
 * only the entries whose revents are set, as {fd=3, revents=POLLIN}. At most sysi_trace_strlen
 * entries, then "...". 0: nothing could be read (the caller prints the address).
 */
static int put_pollfds(struct sb *b, unsigned long a, unsigned long n, int revents, long shown_max)
{
	struct { int fd; short events, revents; } p;
	unsigned long i, max = (unsigned long)sysi_trace_strlen;
	long shown = 0;
	if (n && sysi_peek(&p, a, sizeof p) < sizeof p)
		return 0;
	sb_putc(b, '[');
	for (i = 0; i < n; i++) {
		if (revents && shown >= shown_max)
			break;
		if (sysi_peek(&p, a + i * sizeof p, sizeof p) < sizeof p) { /* as strace: where it stopped */
			sb_puts(b, shown ? ", ... /* " : "... /* ");
			sb_hex(b, a + i * sizeof p);
			sb_lit(b, " */");
			break;
		}
		if (revents && !p.revents)
			continue;
		if (i >= max || (revents && shown >= (long)max)) {
			sb_puts(b, shown ? ", ..." : "...");
			break;
		}
		if (shown++)
			sb_lit(b, ", ");
		sb_lit(b, "{fd=");
		sb_dec(b, p.fd);
		if (revents) {
			sb_lit(b, ", revents=");
			sb_flags(b, sysi_x_pollevents, (unsigned short)p.revents, 0);
		} else if (p.fd >= 0) {
			sb_lit(b, ", events=");
			sb_flags(b, sysi_x_pollevents, (unsigned short)p.events, 0);
		}
		sb_putc(b, '}');
	}
	sb_putc(b, ']');
	return 1;
}

static const struct sysi_xlat *sockopt_names(long level)
{
	switch (level) {
	case 1: return sysi_x_so;       /* SOL_SOCKET */
	case 0: return sysi_x_ipopt;    /* SOL_IP */
	case 6: return sysi_x_tcpopt;   /* SOL_TCP */
	case 41: return sysi_x_ipv6opt; /* SOL_IPV6 */
	}
	return 0;
}

static void put_sockopt_name(struct sb *b, long level, unsigned long opt)
{
	static const char *const unknown[] = { "IP_???", "SO_???", [6] = "TCP_???" };
	const struct sysi_xlat *x = sockopt_names(level);
	if (!x) {
		sb_dec(b, (int)opt);
		return;
	}
	sb_enum(b, x, (unsigned)opt, level == 41 ? "IPV6_???" : unknown[level]);
}

/* a socket option's value: [N] for an int, SO_LINGER's struct, else its bytes */
static void put_sockopt_val(struct sb *b, long level, unsigned long opt, unsigned long a, long len)
{
	int v[2];
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	if (len == 4 && sysi_peek(v, a, 4) == 4) {
		sb_putc(b, '[');
		sb_dec(b, v[0]);
		sb_putc(b, ']');
		return;
	}
	if (level == 1 && opt == 13 /* SO_LINGER */ && len == 8 && sysi_peek(v, a, 8) == 8) {
		sb_lit(b, "{l_onoff=");
		sb_dec(b, v[0]);
		sb_lit(b, ", l_linger=");
		sb_dec(b, v[1]);
		sb_putc(b, '}');
		return;
	}
	if (len < 0) {
		sb_hex(b, a);
		return;
	}
	put_buf(b, a, (unsigned long)len, 0);
}

/* struct cmsghdr[] in len bytes at a: [{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[3]}] */
static void put_cmsgs(struct sb *b, unsigned long a, unsigned long len)
{
	struct { unsigned long len; int level, type; } h;
	unsigned long off = 0;
	int n = 0;
	if (len >= sizeof h && sysi_peek(&h, a, sizeof h) < sizeof h) {
		sb_hex(b, a);
		return;
	}
	sb_putc(b, '[');
	while (off + sizeof h <= len && n < sysi_trace_strlen) {
		if (sysi_peek(&h, a + off, sizeof h) < sizeof h) {
			sb_lit(b, ", ...");
			break;
		}
		if (n++)
			sb_lit(b, ", ");
		sb_lit(b, "{cmsg_len=");
		sb_udec(b, h.len);
		sb_lit(b, ", cmsg_level=");
		sb_enum(b, sysi_x_soclevel, (unsigned)h.level, "SOL_??");
		sb_lit(b, ", cmsg_type=");
		if (h.level == 1)
			sb_enum(b, sysi_x_scm, (unsigned)h.type, "SCM_???");
		else
			sb_hex(b, (unsigned)h.type);
		if (h.level == 1 && h.type == 1 && h.len >= sizeof h && h.len <= len - off) { /* SCM_RIGHTS */
			unsigned long k, cnt = (h.len - sizeof h) / 4;
			int fd;
			sb_lit(b, ", cmsg_data=[");
			for (k = 0; k < cnt && sysi_peek(&fd, a + off + sizeof h + k * 4, 4) == 4; k++) {
				if (k)
					sb_lit(b, ", ");
				sb_dec(b, fd);
			}
			sb_putc(b, ']');
		} else if (h.level == 1 && h.type == 2 && h.len >= sizeof h + 12) { /* SCM_CREDENTIALS */
			unsigned u[3];
			if (sysi_peek(u, a + off + sizeof h, 12) == 12) {
				sb_lit(b, ", cmsg_data={pid=");
				sb_dec(b, (int)u[0]);
				sb_lit(b, ", uid=");
				sb_udec(b, u[1]);
				sb_lit(b, ", gid=");
				sb_udec(b, u[2]);
				sb_putc(b, '}');
			}
		}
		sb_putc(b, '}');
		if (h.len < sizeof h)
			break;
		off += (h.len + 7) & ~7UL;
	}
	sb_putc(b, ']');
}

/*
 * struct msghdr: sendmsg's as the call reads it; recvmsg's after the call (the bytes it received,
 * r, in the iovecs; msg_namelen "128 => 16" from the value before it, pre), or only
 * {msg_namelen=N} when it failed.
 */
static void put_msghdr(struct sb *b, unsigned long a, int recv, long r, int fail, const long *pre)
{
	struct { unsigned long name; uint32_t namelen, pad; unsigned long iov, iovlen, control, controllen;
		 int flags; } m;
	if (!a) {
		sb_lit(b, "NULL");
		return;
	}
	if (sysi_peek(&m, a, sizeof m) < sizeof m) {
		sb_hex(b, a);
		return;
	}
	if (recv && fail) {
		sb_lit(b, "{msg_namelen=");
		sb_udec(b, m.namelen);
		sb_putc(b, '}');
		return;
	}
	sb_lit(b, "{msg_name=");
	put_sockaddr(b, m.name, (long)(int)m.namelen);
	sb_lit(b, ", msg_namelen=");
	if (recv && pre && (uint32_t)pre[0] != m.namelen) {
		sb_udec(b, (uint32_t)pre[0]);
		sb_lit(b, " => ");
	}
	sb_udec(b, m.namelen);
	sb_lit(b, ", msg_iov=");
	put_iov(b, m.iov, m.iovlen, recv ? r : 0, recv);
	sb_lit(b, ", msg_iovlen=");
	sb_udec(b, m.iovlen);
	if (m.controllen) {
		sb_lit(b, ", msg_control=");
		if (m.control)
			put_cmsgs(b, m.control, m.controllen);
		else
			sb_lit(b, "NULL");
	}
	sb_lit(b, ", msg_controllen=");
	sb_udec(b, m.controllen);
	sb_lit(b, ", msg_flags=");
	sb_flags(b, sysi_x_msgflags, (unsigned)m.flags, 0);
	sb_putc(b, '}');
}

/* one argument of the table's kind k */
static void put_arg(struct sb *b, const struct sysi_call *c, const struct sysi_sc_desc *d, int i,
		    long r, int known, const long *pre)
{
	unsigned long v = (unsigned long)c->args[i];
	int k = d->kinds[i];
	int is32 = (d->int32 >> i) & 1, sgn = (d->signed32 >> i) & 1;
	long next = i + 1 < 6 ? c->args[i + 1] : 0;
	switch (k) {
	case K_DEC:
		sb_dec(b, is32 ? (sgn ? (long)(int)v : (long)(unsigned)v) : (long)v);
		return;
	case K_UDEC:
		sb_udec(b, is32 ? (unsigned)v : v);
		return;
	case K_HEX:
		if (is32)
			v = (unsigned)v;
		if (v)
			sb_hex(b, v);
		else
			sb_putc(b, '0');
		return;
	case K_OCT:
		sb_oct(b, v & 0177777); /* umode_t: 16 bits */
		return;
	case K_PTR:
		sb_ptr(b, v);
		return;
	case K_FD:
		sb_dec(b, (int)v);
		return;
	case K_DIRFD:
		if ((int)v == AT_FDCWD_)
			sb_lit(b, "AT_FDCWD");
		else
			sb_dec(b, (int)v);
		return;
	case K_STR:
		put_str(b, v, PATH_MAX_);
		return;
	case K_BUF_IN:
		put_buf(b, v, (unsigned long)next, 0);
		return;
	case K_BUF_OUT:
		if (failed(r, known))
			sb_ptr(b, v);
		else if (c->nr == __NR_getcwd) /* a path: printed whole */
			put_str(b, v, PATH_MAX_);
		else
			put_buf(b, v, (unsigned long)r, c->nr == __NR_getrandom);
		return;
	case K_IOV_IN:
		put_iov(b, v, (unsigned long)next, 0, 0);
		return;
	case K_IOV_OUT:
		if (failed(r, known))
			sb_ptr(b, v);
		else
			put_iov(b, v, (unsigned long)next, r, 1);
		return;
	case K_OFLAGS:
		put_oflags(b, v, c->nr == __NR_open || c->nr == __NR_openat);
		return;
	case K_PROT:
		sb_flags(b, sysi_x_prot, v, "PROT_NONE");
		return;
	case K_MAPFLAGS:
		put_mapflags(b, v);
		return;
	case K_SIGNUM:
		sb_signame(b, (int)v, 1);
		return;
	case K_SIGSET:
		/* the old set (the third argument) is the call's output */
		if (i == 2 && failed(r, known))
			sb_ptr(b, v);
		else /* the size is the next argument (signalfd4), else the last (rt_sigprocmask, ppoll…) */
			/* strace decodes rt_sigpending's from 1 byte, the others' from a word */
			put_sigset(b, v, c->args[c->nr == __NR_signalfd4 ? i + 1 : d->nargs - 1],
				   c->nr == __NR_rt_sigpending ? 1 : sysi_peek_x32 ? 4 : 8);
		return;
	case K_SIGACT:
		if (i == 2 && failed(r, known))
			sb_ptr(b, v);
		else
			put_sigaction(b, v);
		return;
	case K_SIGHOW:
		sb_enum(b, sysi_x_sighow, (unsigned)v, "SIG_???");
		return;
	case K_STAT:
		if (failed(r, known))
			sb_ptr(b, v);
		else
			put_stat(b, v);
		return;
	case K_TIMESPEC: {
		/* an input unless the call is one that fills it */
		int output = c->nr == __NR_clock_gettime || c->nr == __NR_clock_getres ||
			     ((c->nr == __NR_nanosleep || c->nr == __NR_clock_nanosleep) && i == d->nargs - 1);
		if (output && (failed(r, known) || (c->nr != __NR_clock_gettime && c->nr != __NR_clock_getres))) {
			sb_ptr(b, v);
		} else if (c->nr == __NR_ppoll && pre && pre[2]) { /* as it was at entry */
			put_tv(b, pre[0], pre[1], 0);
		} else if (c->nr == __NR_pselect6 && v) {
			if (pre && (pre[5] & 8))
				put_tv(b, pre[3], pre[4], 0);
			else
				sb_hex(b, v);
		} else
			put_timespec(b, v);
		return;
	}
	case K_SOCKADDR:
		put_sockaddr(b, v, (int)next);
		return;
	case K_SOCKADDR_OUT: {
		int len;
		if (failed(r, known) || !v || sysi_peek(&len, (unsigned long)next, 4) < 4) {
			sb_ptr(b, v);
			return;
		}
		/* the kernel says how long the address is, but fills at most the buffer's length */
		if (pre && i + 1 < d->nargs && d->kinds[i + 1] == K_SOCKLEN_PTR && (int)pre[i + 1] < len)
			len = (int)pre[i + 1] < 0 ? 0 : (int)pre[i + 1];
		put_sockaddr(b, v, len);
		return;
	}
	case K_SOCKLEN_PTR: {
		int now;
		if (!v) {
			sb_lit(b, "NULL");
			return;
		}
		if (sysi_peek(&now, v, 4) < 4) {
			sb_hex(b, v);
			return;
		}
		sb_putc(b, '[');
		if (pre && (int)pre[i] != now && !failed(r, known)) {
			sb_dec(b, (int)pre[i]);
			sb_lit(b, " => ");
		}
		sb_dec(b, failed(r, known) && pre ? (int)pre[i] : now);
		sb_putc(b, ']');
		return;
	}
	case K_CLONEFLAGS:
		put_cloneflags(b, v);
		return;
	case K_ATFLAGS:
		sb_flags(b, sysi_x_atflags, v & 0xffffffffUL, 0);
		return;
	case K_ACCESS:
		sb_flags(b, sysi_x_access, v & 0xffffffffUL, "F_OK");
		return;
	case K_WHENCE:
		sb_enum(b, sysi_x_whence, (unsigned)v, "SEEK_???");
		return;
	case K_IOCTL:
		sb_enum(b, sysi_x_ioctl, (unsigned)v, 0);
		return;
	case K_FCNTL:
		sb_enum(b, sysi_x_fcntl, (unsigned)v, "F_???");
		return;
	case K_ARGV:
		put_argv(b, v);
		return;
	case K_ENVP:
		put_envp(b, v);
		return;
	case K_PIPEFD: {
		int fds[2];
		if (failed(r, known) || sysi_peek(fds, v, sizeof fds) < sizeof fds) {
			sb_ptr(b, v);
			return;
		}
		sb_putc(b, '[');
		sb_dec(b, fds[0]);
		sb_lit(b, ", ");
		sb_dec(b, fds[1]);
		sb_putc(b, ']');
		return;
	}
	case K_FAMILY:
		sb_enum(b, sysi_x_family, (unsigned)v, "AF_???");
		return;
	case K_SOCKTYPE:
		sb_enum(b, sysi_x_socktype, v & 0xf, "SOCK_???");
		if ((v & 0xffffffffUL) & ~0xfUL) {
			sb_putc(b, '|');
			sb_flags(b, sysi_x_socktypeflags, (v & 0xffffffffUL) & ~0xfUL, 0);
		}
		return;
	case K_RLIMIT_RES:
		sb_enum(b, sysi_x_rlimit, (unsigned)v, "RLIMIT_???");
		return;
	case K_RLIMIT:
		/* prlimit64's old limit (its last argument) and getrlimit's are outputs */
		if ((c->nr == __NR_getrlimit || (c->nr == __NR_prlimit64 && i == 3)) && failed(r, known))
			sb_ptr(b, v);
		else
			put_rlimit(b, v);
		return;
	case K_ARCH_PRCTL:
		sb_enum(b, sysi_x_archprctl, (unsigned)v, "ARCH_???");
		return;
	case K_WSTATUS:
		if (!v)
			sb_lit(b, "NULL");
		else if (failed(r, known) || r == 0)
			sb_hex(b, v);
		else
			put_wstatus(b, v);
		return;
	case K_WOPTIONS:
		sb_flags(b, sysi_x_woptions, v & 0xffffffffUL, 0);
		return;
	case K_GRND:
		sb_flags(b, sysi_x_grnd, v & 0xffffffffUL, 0);
		return;
	case K_INTPTR:
		put_intptr(b, v);
		return;
	case K_MADV:
		sb_enum(b, sysi_x_madv, (unsigned)v, "MADV_???");
		return;
	case K_SOCKLEVEL:
		sb_enum(b, sysi_x_soclevel, (unsigned)v, "SOL_??");
		return;
	case K_CLOCKID:
		sb_enum(b, sysi_x_clockid, (unsigned)v, 0);
		return;
	case K_POLLFD:
		if (!v)
			sb_lit(b, "NULL");
		else if (!put_pollfds(b, v, (unsigned)next, 0, 0))
			sb_hex(b, v);
		return;
	case K_STATX_FLAGS:
		put_statx_flags(b, v);
		return;
	case K_STATX_MASK:
		sb_flags(b, sysi_x_statxmask, v & 0xffffffffUL, 0);
		return;
	case K_STATX:
		if (failed(r, known))
			sb_ptr(b, v);
		else
			put_statx(b, v);
		return;
	case K_FADVICE:
		sb_enum(b, sysi_x_fadvice, (unsigned)v, "POSIX_FADV_???");
		return;
	case K_MSGFLAGS:
		sb_flags(b, sysi_x_msgflags, v & 0xffffffffUL, 0);
		return;
	case K_SOCKOPT:
		put_sockopt_name(b, (int)c->args[1], v);
		return;
	case K_SOCKOPT_VAL: {
		int len;
		if (c->nr == __NR_setsockopt) {
			put_sockopt_val(b, (int)c->args[1], (unsigned)c->args[2], v, (int)next);
		} else if (failed(r, known) || sysi_peek(&len, (unsigned long)next, 4) < 4) {
			sb_ptr(b, v);
		} else {
			put_sockopt_val(b, (int)c->args[1], (unsigned)c->args[2], v, len);
		}
		return;
	}
	case K_CPUSET: {
		/* sched_getaffinity fills r bytes; sched_setaffinity reads len (the previous argument) */
		unsigned long n = c->nr == __NR_sched_getaffinity ? (unsigned long)r : (unsigned)c->args[1];
		if ((c->nr == __NR_sched_getaffinity && failed(r, known)) || !put_cpuset(b, v, n))
			sb_ptr(b, v);
		return;
	}
	case K_FDSET:
		if (!v)
			sb_lit(b, "NULL");
		else if (pre && (pre[5] >> (i - 1) & 1))
			put_fdbits(b, (const unsigned long *)&pre[i - 1], (int)c->args[0] > 0 ? (int)c->args[0] : 0);
		else
			sb_hex(b, v);
		return;
	case K_TIMEVAL:
	case K_PSELECT_SIG:
		if (!v) {
			sb_lit(b, "NULL");
		} else if (k == K_TIMEVAL || c->nr != __NR_pselect6) {
			if (pre && (pre[5] & 8))
				put_tv(b, pre[3], pre[4], 1);
			else
				sb_hex(b, v);
		} else { /* pselect6's {sigset_t *ss, size_t ss_len} */
			unsigned long sig[2];
			if (sysi_peek(sig, v, sizeof sig) < sizeof sig) {
				sb_hex(b, v);
				return;
			}
			sb_lit(b, "{sigmask=");
			put_sigset(b, sig[0], sig[1], 1);
			sb_lit(b, ", sigsetsize=");
			sb_udec(b, sig[1]);
			sb_putc(b, '}');
		}
		return;
	case K_SYSINFO:
		if (failed(r, known))
			sb_ptr(b, v);
		else
			put_sysinfo(b, v);
		return;
	case K_UGID:
		if ((unsigned)v == 0xffffffffu)
			sb_lit(b, "-1");
		else
			sb_udec(b, (unsigned)v);
		return;
	case K_UGIDPTR:
		if (failed(r, known))
			sb_ptr(b, v);
		else
			put_intptr(b, v);
		return;
	case K_MKNOD_MODE:
		v &= 0177777; /* umode_t */
		if (!(v & 0170000) || !((0x1556 >> ((v >> 12) & 15)) & 1)) { /* no file type: the number */
			sb_oct(b, v);
			return;
		}
		put_mode_flags(b, (unsigned)v); /* the type and S_IS* bits, then the permissions */
		sb_oct(b, v & 0777);
		return;
	case K_MKNOD_DEV:
		put_dev(b, (unsigned)v);
		return;
	case K_GIDLIST: {
		/* getgroups fills r entries, setgroups reads size (the previous argument) */
		long n = c->nr == __NR_getgroups ? r : (int)c->args[0];
		unsigned gid;
		if ((c->nr == __NR_getgroups && failed(r, known)) || !v || n < 0 || n > 65536 /* NGROUPS_MAX */ ||
		    (n && sysi_peek(&gid, v, 4) < 4)) {
			sb_ptr(b, v);
			return;
		}
		sb_putc(b, '[');
		for (long k = 0; k < n; k++) {
			if (sysi_peek(&gid, v + (unsigned long)k * 4, 4) < 4) { /* where it stopped */
				sb_lit(b, ", ... /* ");
				sb_hex(b, v + (unsigned long)k * 4);
				sb_lit(b, " */");
				break;
			}
			if (k == sysi_trace_strlen) {
				sb_lit(b, ", ...");
				break;
			}
			if (k)
				sb_lit(b, ", ");
			if (gid == 0xffffffffu)
				sb_lit(b, "-1");
			else
				sb_udec(b, gid);
		}
		sb_putc(b, ']');
		return;
	}
	case K_EPOLL_OP:
		sb_enum(b, sysi_x_epollop, (unsigned)v, "EPOLL_CTL_???");
		return;
	case K_EPOLL_EVENT:
		if (!v)
			sb_lit(b, "NULL");
		else if (c->nr == __NR_epoll_ctl) /* EPOLL_CTL_DEL ignores it: its address */
			put_epoll_events(b, v, (unsigned)c->args[1] == 2 ? -1 : 1, 0);
		else if (failed(r, known))
			sb_hex(b, v);
		else
			put_epoll_events(b, v, r, 1);
		return;
	case K_SHUT:
		sb_enum(b, sysi_x_shut, (unsigned)v, "SHUT_???");
		return;
	case K_SCFLAGS:
		put_scflags(b, c->nr, v & 0xffffffffUL);
		return;
	case K_SOCKFLAGS:
		sb_flags(b, sysi_x_socktypeflags, v & 0xffffffffUL, 0);
		return;
	case K_MSGHDR:
		put_msghdr(b, v, c->nr == __NR_recvmsg, r, failed(r, known), pre);
		return;
	}
	sb_hex(b, v);
}

/* clone(child_stack=…, flags=…[, parent_tid=…][, child_tidptr=…][, tls=…]) */
static void put_clone(struct sb *b, const struct sysi_call *c, long r, int known)
{
	unsigned long f = (unsigned long)c->args[0];
	sb_lit(b, "child_stack=");
	sb_ptr(b, (unsigned long)c->args[1]);
	sb_lit(b, ", flags=");
	put_cloneflags(b, f);
	if (f & CLONE_PARENT_SETTID_) {
		sb_lit(b, ", parent_tid=");
		if (!failed(r, known))
			put_intptr(b, (unsigned long)c->args[2]);
		else
			sb_ptr(b, (unsigned long)c->args[2]);
	}
	if (f & CLONE_SETTLS_) {
		sb_lit(b, ", tls=");
		sb_ptr(b, (unsigned long)c->args[4]);
	}
	if (f & (CLONE_CHILD_SETTID_ | CLONE_CHILD_CLEARTID_)) {
		sb_lit(b, ", child_tidptr=");
		sb_ptr(b, (unsigned long)c->args[3]);
	}
}

/* clone3({flags=…, …} => {parent_tid=[N]}, size) */
static void put_clone3(struct sb *b, const struct sysi_call *c, long r, int known, const long *pre)
{
	uint64_t ca[8]; /* flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls */
	unsigned long a = (unsigned long)c->args[0];
	int ok = 0;
	if (pre && c->args[1] >= 64) { /* read at entry: the struct may be gone by now */
		memcpy(ca, pre, sizeof ca);
		ok = 1;
	} else if (c->args[1] >= 64) {
		ok = sysi_peek(ca, a, sizeof ca) == sizeof ca;
	}
	if (!ok) {
		sb_ptr(b, a);
	} else {
		sb_lit(b, "{flags=");
		sb_flags(b, sysi_x_cloneflags, ca[0], 0);
		if (ca[0] & CLONE_PIDFD_) {
			sb_lit(b, ", pidfd=");
			sb_ptr(b, ca[1]);
		}
		if (ca[0] & (CLONE_CHILD_SETTID_ | CLONE_CHILD_CLEARTID_)) {
			sb_lit(b, ", child_tid=");
			sb_ptr(b, ca[2]);
		}
		if (ca[0] & CLONE_PARENT_SETTID_) {
			sb_lit(b, ", parent_tid=");
			sb_ptr(b, ca[3]);
		}
		sb_lit(b, ", exit_signal=");
		if (ca[4])
			sb_signame(b, (long)ca[4], 1);
		else
			sb_putc(b, '0');
		sb_lit(b, ", stack=");
		sb_ptr(b, ca[5]);
		sb_lit(b, ", stack_size=");
		if (ca[6])
			sb_hex(b, ca[6]);
		else
			sb_putc(b, '0');
		if (ca[0] & CLONE_SETTLS_) {
			sb_lit(b, ", tls=");
			sb_ptr(b, ca[7]);
		}
		sb_putc(b, '}');
		if (!failed(r, known) && (ca[0] & CLONE_PARENT_SETTID_) && ca[3]) {
			sb_lit(b, " => {parent_tid=");
			put_intptr(b, ca[3]);
			sb_putc(b, '}');
		}
	}
	sb_lit(b, ", ");
	sb_udec(b, (unsigned long)c->args[1]);
}

static void put_futex(struct sb *b, const struct sysi_call *c)
{
	unsigned op = (unsigned)c->args[1], cmd = op & 127;
	sb_ptr(b, (unsigned long)c->args[0]);
	sb_lit(b, ", ");
	sb_enum(b, sysi_x_futexop, cmd, 0);
	if (op & 128)
		sb_lit(b, "_PRIVATE");
	if (op & 256)
		sb_lit(b, "|FUTEX_CLOCK_REALTIME");
	sb_lit(b, ", ");
	sb_dec(b, (int)c->args[2]);
	switch (cmd) {
	case 0: /* FUTEX_WAIT */
		sb_lit(b, ", ");
		put_timespec(b, (unsigned long)c->args[3]);
		return;
	case 1: /* FUTEX_WAKE */
		return;
	case 9: /* FUTEX_WAIT_BITSET */
	case 10: /* FUTEX_WAKE_BITSET */
		if (cmd == 9) {
			sb_lit(b, ", ");
			put_timespec(b, (unsigned long)c->args[3]);
		}
		sb_lit(b, ", ");
		if ((unsigned)c->args[5] == 0xffffffffu)
			sb_lit(b, "FUTEX_BITSET_MATCH_ANY");
		else
			sb_hex(b, (unsigned)c->args[5]);
		return;
	}
	for (int i = 3; i < 6; i++) {
		sb_lit(b, ", ");
		sb_hex(b, (unsigned long)c->args[i]);
	}
}

static void put_fcntl(struct sb *b, const struct sysi_call *c)
{
	unsigned cmd = (unsigned)c->args[1];
	unsigned long v = (unsigned long)c->args[2];
	sb_dec(b, (int)c->args[0]);
	sb_lit(b, ", ");
	sb_enum(b, sysi_x_fcntl, cmd, "F_???");
	switch (cmd) {
	case 1: case 3: case 9: case 1025: case 11: case 1032: case 1034: /* F_GET* */
		return;
	case 2: /* F_SETFD */
		sb_lit(b, ", ");
		if (v == 1)
			sb_lit(b, "FD_CLOEXEC");
		else
			sb_dec(b, (int)v);
		return;
	case 4: /* F_SETFL */
		sb_lit(b, ", ");
		put_oflags(b, v, 1);
		return;
	case 5: case 6: case 7: case 36: case 37: case 38: /* locks */
		sb_lit(b, ", ");
		sb_ptr(b, v);
		return;
	}
	sb_lit(b, ", ");
	sb_dec(b, (int)v);
}

static void put_ioctl(struct sb *b, const struct sysi_call *c, long r, int known)
{
	unsigned req = (unsigned)c->args[1];
	unsigned long v = (unsigned long)c->args[2];
	const struct sysi_xlat *x;
	int names = 0;
	sb_dec(b, (int)c->args[0]);
	sb_lit(b, ", ");
	for (x = sysi_x_ioctl; x->name; x++) { /* every name it has: "BTRFS_IOC_CLONE or FICLONE" */
		if (x->val != req)
			continue;
		if (names++)
			sb_lit(b, " or ");
		sb_puts(b, x->name);
	}
	if (!names)
		sb_hex(b, req);
	if (req == 0x5451 || req == 0x5450) /* FIOCLEX, FIONCLEX: no argument */
		return;
	sb_lit(b, ", ");
	if (req == 0x40049409) { /* FICLONE: the source fd */
		sb_dec(b, (int)v);
		return;
	}
	if (req == 0x5413 && !failed(r, known)) { /* TIOCGWINSZ */
		unsigned short w[4];
		if (sysi_peek(w, v, sizeof w) == sizeof w) {
			sb_lit(b, "{ws_row=");
			sb_udec(b, w[0]);
			sb_lit(b, ", ws_col=");
			sb_udec(b, w[1]);
			sb_lit(b, ", ws_xpixel=");
			sb_udec(b, w[2]);
			sb_lit(b, ", ws_ypixel=");
			sb_udec(b, w[3]);
			sb_putc(b, '}');
			return;
		}
	}
	if (req == 0x5421 || req == 0x541b) { /* FIONBIO, FIONREAD */
		if (req == 0x5421 || !failed(r, known)) {
			put_intptr(b, v);
			return;
		}
	}
	sb_ptr(b, v);
}

static void put_getdents(struct sb *b, const struct sysi_call *c, long r, int known)
{
	sb_dec(b, (int)c->args[0]);
	sb_lit(b, ", ");
	sb_ptr(b, (unsigned long)c->args[1]);
	if (!failed(r, known)) {
		/* linux_dirent64: d_ino 8, d_off 8, d_reclen 2, d_type 1, d_name */
		long off = 0, n = 0;
		unsigned short reclen;
		while (off + 19 <= r && sysi_peek(&reclen, (unsigned long)c->args[1] + (unsigned long)off + 16, 2) == 2 &&
		       reclen) {
			off += reclen;
			n++;
		}
		sb_lit(b, " /* ");
		sb_dec(b, n);
		sb_puts(b, n == 1 ? " entry */" : " entries */");
	}
	sb_lit(b, ", ");
	sb_udec(b, (unsigned)c->args[2]);
}

static void put_uname(struct sb *b, unsigned long a, long r, int known)
{
	static const char *const field[6] = { "sysname", "nodename", "release", "version", "machine",
					      "domainname" };
	char f[65];
	if (failed(r, known) || sysi_peek(f, a + 5 * 65, 65) < 65) {
		sb_ptr(b, a);
		return;
	}
	for (int i = 0; i < 6; i++) {
		sysi_peek(f, a + (unsigned long)i * 65, 65);
		f[64] = 0;
		sb_puts(b, i ? ", " : "{");
		sb_puts(b, field[i]);
		sb_putc(b, '=');
		sb_quote(b, (const unsigned char *)f, sysi_strlen(f), 0);
	}
	sb_putc(b, '}');
}

static void put_socket_proto(struct sb *b, long fam, unsigned long p)
{
	if (fam == 2 || fam == 10) {
		switch (p) {
		case 0: sb_lit(b, "IPPROTO_IP"); return;
		case 1: sb_lit(b, "IPPROTO_ICMP"); return;
		case 6: sb_lit(b, "IPPROTO_TCP"); return;
		case 17: sb_lit(b, "IPPROTO_UDP"); return;
		case 58: sb_lit(b, "IPPROTO_ICMPV6"); return;
		}
	}
	if (fam == 16 && p == 0) {
		sb_lit(b, "NETLINK_ROUTE");
		return;
	}
	sb_dec(b, (int)p);
}

static void decode_args(struct sb *b, const struct sysi_call *c, long r, int known, const long *pre);

/*
 * strace reads an x32 call's memory as an x32 process's: through 32-bit pointers, so a pointer
 * above 4 GiB prints as its address (write(1, 0x562e646a2004, 0)); trace-mem.c.
 */
void sysi_decode_args(struct sb *b, const struct sysi_call *c, long r, int known, const long *pre)
{
	sysi_peek_x32 = c->nr >= SYSI_X32_BIT_ && c->nr < 2 * SYSI_X32_BIT_;
	decode_args(b, c, r, known, pre);
	sysi_peek_x32 = 0;
}

/* An int $0x80 call: "name(args) = result" (a[] its ebx ecx edx esi edi ebp, r the result). */
void sysi_decode_i386(struct sb *b, const char *line, long nr, const unsigned long *a, long r, int known)
{
	const char *name = (unsigned long)nr < SYSI_NI386 ? sysi_i386_names[nr] : 0;
	long as = sysi_decode_i386_as(nr);
	struct sysi_call c = { .nr = -1 }; /* -1: no 64-bit call, its result printed as a number */
	if (name) {
		sb_puts(b, name);
	} else {
		sb_lit(b, "syscall_");
		sb_hex(b, (unsigned long)nr);
	}
	sb_putc(b, '(');
	if (as >= 0) {
		const struct sysi_sc_desc *d = &sysi_sc_descs[as];
		c.nr = as;
		for (int i = 0; i < 6; i++) { /* 32-bit values: signed ones sign-extended */
			int k = i < d->nargs ? d->kinds[i] : K_UDEC;
			c.args[i] = k == K_DEC || k == K_FD || k == K_DIRFD || k == K_SIGNUM ? (long)(int)a[i]
											   : (long)(unsigned)a[i];
		}
		sysi_peek_x32 = 1; /* 32-bit pointers */
		decode_args(b, &c, r, known, 0);
		sysi_peek_x32 = 0;
		if (d->ret == R_HEX && !(r < 0 && r >= -4095))
			r = (long)(unsigned)r;
	} else {
		for (int i = 0; i < 6; i++) { /* strace's printargs: %#lx, 0 as 0 */
			if (i)
				sb_lit(b, ", ");
			if (a[i])
				sb_hex(b, a[i]);
			else
				sb_putc(b, '0');
		}
	}
	sb_putc(b, ')');
	sysi_decode_ret(b, line, &c, r, known);
}

static void decode_args(struct sb *b, const struct sysi_call *c, long r, int known, const long *pre)
{
	const struct sysi_sc_desc *d = desc_of(c->nr);
	int n;
	if (c->nr == __NR_rt_sigreturn && (c->flags & SYSI_TRACE_SIGFRAME)) { /* the mask it restores */
		sb_lit(b, "{mask=");
		put_sigset(b, (unsigned long)c->args[0], 8, 8);
		sb_putc(b, '}');
		return;
	}
	if (!d || d->nargs < 0) { /* outside the table: six raw arguments (an x32 call: its count) */
		n = d ? -1 : x32_nargs(c->nr);
		for (int i = 0; i < (n < 0 ? 6 : n); i++) {
			if (i)
				sb_lit(b, ", ");
			if (c->args[i]) /* strace's printargs: %#lx, which prints 0 as 0 */
				sb_hex(b, (unsigned long)c->args[i]);
			else
				sb_putc(b, '0');
		}
		return;
	}
	switch (c->nr) {
	case __NR_clone:
		put_clone(b, c, r, known);
		return;
	case __NR_clone3:
		put_clone3(b, c, r, known, pre);
		return;
	case __NR_futex:
		put_futex(b, c);
		return;
	case __NR_fcntl:
		put_fcntl(b, c);
		return;
	case __NR_ioctl:
		put_ioctl(b, c, r, known);
		return;
	case __NR_getdents64:
	case __NR_getdents:
		put_getdents(b, c, r, known);
		return;
	case __NR_uname:
		put_uname(b, (unsigned long)c->args[0], r, known);
		return;
	}
	n = d->nargs;
	/* open and openat take a mode only with O_CREAT or O_TMPFILE */
	if ((c->nr == __NR_open || c->nr == __NR_openat) &&
	    !(c->args[n - 2] & (O_CREAT_ | O_TMPFILE_BIT)))
		n--;
	/* mknod takes a device number only for a character or block device */
	if ((c->nr == __NR_mknod || c->nr == __NR_mknodat) && ((c->args[n - 2] >> 12) & 15) != 2 &&
	    ((c->args[n - 2] >> 12) & 15) != 6)
		n--;
	for (int i = 0; i < n; i++) {
		if (i)
			sb_lit(b, ", ");
		if (c->nr == __NR_socket && i == 2)
			put_socket_proto(b, (int)c->args[0], (unsigned long)c->args[2]);
		else
			put_arg(b, c, d, i, r, known, pre);
	}
}

/* Values a call reads through a pointer that the call then overwrites (socklen_t *), taken before it. */
static void decode_pre(const struct sysi_call *c, long *pre);

void sysi_decode_pre(const struct sysi_call *c, long *pre)
{
	sysi_peek_x32 = c->nr >= SYSI_X32_BIT_ && c->nr < 2 * SYSI_X32_BIT_;
	decode_pre(c, pre);
	sysi_peek_x32 = 0;
}

static void decode_pre(const struct sysi_call *c, long *pre)
{
	const struct sysi_sc_desc *d = desc_of(c->nr);
	if (c->nr == __NR_clone3) {
		if (c->args[1] < 64 || sysi_peek(pre, (unsigned long)c->args[0], 64) < 64)
			pre[0] = pre[1] = pre[2] = pre[3] = pre[4] = pre[5] = pre[6] = pre[7] = 0;
		return;
	}
	if (!d || d->nargs < 0)
		return;
	if (c->nr == __NR_select || c->nr == __NR_pselect6) { /* sets and timeout: the call overwrites them */
		select_pre(c, pre);
		return;
	}
	if (c->nr == __NR_ppoll) { /* the timeout, which the call overwrites with the time left */
		long ts[2];
		pre[2] = c->args[2] && sysi_peek(ts, (unsigned long)c->args[2], sizeof ts) == sizeof ts;
		pre[0] = pre[2] ? ts[0] : 0;
		pre[1] = pre[2] ? ts[1] : 0;
		return;
	}
	if (c->nr == __NR_recvmsg) { /* msg_namelen before the call */
		uint32_t n = 0;
		if (c->args[1])
			sysi_peek(&n, (unsigned long)c->args[1] + 8, 4);
		pre[0] = n;
		return;
	}
	for (int i = 0; i < d->nargs; i++) {
		if (d->kinds[i] == K_SOCKLEN_PTR) {
			int v = 0;
			if (c->args[i] && sysi_peek(&v, (unsigned long)c->args[i], 4) == 4)
				pre[i] = v;
		}
	}
}

int sysi_decode_has_pre(long nr)
{
	const struct sysi_sc_desc *d = desc_of(nr);
	if (nr == __NR_clone3 || nr == __NR_recvmsg || nr == __NR_ppoll || nr == __NR_select || nr == __NR_pselect6)
		return 1;
	if (!d || d->nargs < 0)
		return 0;
	for (int i = 0; i < d->nargs; i++)
		if (d->kinds[i] == K_SOCKLEN_PTR)
			return 1;
	return 0;
}

void sysi_decode_ret(struct sb *b, const char *line, const struct sysi_call *c, long r, int known)
{
	const struct sysi_sc_desc *d = desc_of(c->nr);
	sb_tab(b, line);
	sb_lit(b, "= ");
	if (known && c->nr == __NR_rt_sigreturn && (c->flags & SYSI_TRACE_SIGFRAME)) { /* the rax restored */
		if (r < 0 && r >= -4095) {
			sb_lit(b, "-1 ");
			sb_errno(b, -r);
		} else {
			sb_dec(b, r);
		}
		return;
	}
	if (!known || (d && d->ret == R_NONE)) {
		sb_putc(b, '?');
		return;
	}
	if (r < 0 && r >= -4095) {
		sb_lit(b, "-1 ");
		sb_errno(b, -r);
		return;
	}
	if (d && d->ret == R_HEX) {
		sb_hex(b, (unsigned long)r);
		return;
	}
	if (d && d->ret == R_OCT) {
		sb_oct(b, (unsigned long)r);
		return;
	}
	if ((c->nr == __NR_select || c->nr == __NR_pselect6) && r >= 0) {
		sb_dec(b, r);
		if (!r)
			sb_lit(b, " (Timeout)");
		else
			put_select_ret(b, c);
		return;
	}
	if (c->nr == __NR_poll || c->nr == __NR_ppoll) {
		sb_dec(b, r);
		if (!r) {
			sb_lit(b, " (Timeout)");
			return;
		}
		sb_lit(b, " (");
		if (!put_pollfds(b, (unsigned long)c->args[0], (unsigned)c->args[1], 1, r))
			sb_hex(b, (unsigned long)c->args[0]);
		if (c->nr == __NR_ppoll && c->args[2]) {
			sb_lit(b, ", left ");
			put_timespec(b, (unsigned long)c->args[2]);
		}
		sb_putc(b, ')');
		return;
	}
	if (c->nr == __NR_fcntl && r > 0) {
		unsigned cmd = (unsigned)c->args[1];
		if (cmd == 1) { /* F_GETFD */
			sb_hex(b, (unsigned long)r);
			sb_puts(b, r == 1 ? " (flags FD_CLOEXEC)" : "");
			return;
		}
		if (cmd == 3) { /* F_GETFL */
			sb_hex(b, (unsigned long)r);
			sb_lit(b, " (flags ");
			put_oflags(b, (unsigned long)r, 1);
			sb_putc(b, ')');
			return;
		}
	}
	sb_dec(b, r);
}
