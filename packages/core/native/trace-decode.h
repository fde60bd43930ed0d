/*
 * decode.h — the trace hook's line decoder (issue 17): strace-format lines built from the
 * generated argument table (trace-gen-args.h, scripts/gen-trace-table.ts), the program's memory read
 * with process_vm_readv (a bad pointer prints as its address), per-thread output buffers written
 * in blocks.
 */
#ifndef SYSI_DECODE_H
#define SYSI_DECODE_H

#include "internal.h"

/* A bounded output: appends past end are dropped (the line is then cut with "..."). */
struct sb {
	char *p, *end;
};

static inline void sb_putc(struct sb *b, char c)
{
	if (b->p < b->end)
		*b->p++ = c;
}

/* n bytes (as many as fit) */
static inline void sb_mem(struct sb *b, const char *s, size_t n)
{
	if ((size_t)(b->end - b->p) < n)
		n = (size_t)(b->end - b->p);
	for (size_t i = 0; i < n; i++)
		b->p[i] = s[i];
	b->p += n;
}

/* a string literal */
#define sb_lit(b, s) sb_mem((b), (s), sizeof(s) - 1)

/*
 * strace's result column (its -a 40): after the call's ")", a space, then spaces up to column 40
 * of the line (counted from line, its first byte: the [pid N] prefix and -t times count), then
 * "= ": `close(3)                                = 0`, `openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3`.
 */
#define SYSI_TRACE_COLUMN 40
static inline void sb_tab(struct sb *b, const char *line)
{
	long n = SYSI_TRACE_COLUMN - (b->p - line);
	if (n < 1)
		n = 1;
	if (b->p + n > b->end)
		n = b->end - b->p;
	__builtin_memset(b->p, ' ', n);
	b->p += n;
}

/* trace-fmt.c */
void sb_puts(struct sb *b, const char *s);
void sb_dec(struct sb *b, long v);
void sb_udec(struct sb *b, unsigned long v);
void sb_hex(struct sb *b, unsigned long v);
void sb_oct(struct sb *b, unsigned long v); /* 0644, "0" for 0 */
void sb_ptr(struct sb *b, unsigned long v); /* NULL or 0x… */
/* bytes quoted as strace quotes them; hex: every byte as \xNN */
void sb_quote(struct sb *b, const unsigned char *s, size_t n, int hex);
struct sysi_xlat;
/* flags: names joined by |, the rest in hex; 0 prints as zero_name (or "0") */
void sb_flags(struct sb *b, const struct sysi_xlat *x, unsigned long v, const char *zero_name);
/* an enum value: its name, or the number followed by unknown_comment (e.g. "ARCH_???") */
int sb_enum(struct sb *b, const struct sysi_xlat *x, unsigned long v, const char *unknown_comment);
void sb_signame(struct sb *b, long sig, int with_sig); /* SIGINT / INT, SIGRTMIN, SIGRT_3 */
void sb_errno(struct sb *b, long err);                 /* ENOENT (No such file or directory) */

/* trace-mem.c: read the program's memory without faulting: bytes read (< n at an unreadable page) */
/* 1 while an x32 call is decoded: addresses above 4 GiB read as unreadable (strace) */
extern __thread int sysi_peek_x32 __attribute__((tls_model("initial-exec")));
size_t sysi_peek(void *dst, unsigned long src, size_t n);
/* a NUL-terminated string of at most n bytes: its length, -1 if unreadable before the NUL;
 * *cut = 1 when no NUL came within n bytes */
long sysi_peek_str(char *dst, unsigned long src, size_t n, int *cut);
void sysi_peek_atfork(void);

/* trace-args.c: the arguments of c (after the call: result r, known = 0 when there is none), without
 * the parentheses */
extern int sysi_trace_strlen; /* --string-limit (strace -s), default 32 */
void sysi_decode_args(struct sb *b, const struct sysi_call *c, long r, int known, const long *pre);
/* values read through pointers before the call (socklen_t * in/out), for the "[128 => 16]" form */
void sysi_decode_pre(const struct sysi_call *c, long *pre);
int sysi_decode_has_pre(long nr);
/* trace-out.c: this thread's scratch memory for strings read from the program */
char *sysi_trace_scratch(size_t *n);
/* the result: " = 3", " = -1 ENOENT (No such file or directory)", " = 0x7f…", " = ?", its "=" at
 * strace's column of the line that starts at line (sb_tab) */
void sysi_decode_ret(struct sb *b, const char *line, const struct sysi_call *c, long r, int known);
/* the syscall name (syscall_0x… past the table) */
void sysi_decode_name(struct sb *b, long nr);
void sysi_decode_setup_names(void); /* once, before the first name */
/* plain calls (numbers and pointers only, trace-args.c): their "name(args) = result" at p, which has
 * room for SYSI_PLAIN_MAX bytes; the end */
#define SYSI_PLAIN_MAX 512
int sysi_decode_plain(long nr);
/* an int $0x80 call (a: ebx ecx edx esi edi ebp): "name(args) = result", named from the i386 table */
void sysi_decode_i386(struct sb *b, const char *line, long nr, const unsigned long *a, long r, int known);
long sysi_decode_i386_as(long nr); /* the 64-bit call it decodes as, -1: none */
const char *sysi_decode_i386_name(long nr); /* 0: none (syscall_0x…) */
char *sysi_decode_plain_line(char *p, const char *line, const struct sysi_call *c, long r);
/* 1 when the generated table gives argument i of nr a 32-bit type (JSON prints it as an int) */
int sysi_decode_arg32(long nr, int i, int *is_signed);
/* the class bits of nr (trace-gen-args.h enum sysi_class), 0 outside the table */
unsigned sysi_decode_classes(long nr);

/* a private flag of the trace's own calls: an rt_sigreturn the master makes for the program's
 * (trace.c sysi_trace_sigreturn_uc), args[0] the address of the mask it restores */
#define SYSI_TRACE_SIGFRAME 0x80000000u

/* trace-out.c: the trace hook's side (trace.c) */
struct sysi_tstart {
	long t0s, t0ns; /* CLOCK_MONOTONIC at entry (-T) */
	long pre[8];    /* sysi_decode_pre's values (clone3: its struct clone_args) */
	int has_pre;
};
void sysi_decode_setup(int json);
void sysi_trace_enter(const struct sysi_call *c, struct sysi_tstart *s, int shown);
void sysi_trace_emit(const struct sysi_call *c, long r, int known, const struct sysi_tstart *s);
int sysi_trace_needs_enter(long nr);
void sysi_trace_int80(long nr, const unsigned long *a, long r, int known);
void sysi_trace_int80_flush(void);
void *sysi_trace_quick_buf(void);
void sysi_trace_quick_line(void *t, const struct sysi_call *c, long r);
void sysi_trace_incontext(const struct sysi_call *c, const struct sysi_tstart *s);
void sysi_trace_sigreturn(const uint64_t *mask, long rax); /* its line: {mask=…}, the restored rax */
void sysi_trace_atfork_child(void);
void sysi_trace_forked(void);
void sysi_trace_thread_exit(void);
void sysi_trace_final(const struct sysi_call *c, const struct sysi_tstart *s, int shown);
void sysi_trace_dying(void);
void sysi_trace_exec_line(int shown);
int sysi_trace_json(void);

/* digits written backwards ending at e, two at a time: where they start */
static inline char *udec_back(char *e, unsigned long v)
{
	static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
				       "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
				       "8081828384858687888990919293949596979899";
	while (v >= 100) {
		unsigned long q = v / 100, d = (v - q * 100) * 2;
		*--e = pairs[d + 1];
		*--e = pairs[d];
		v = q;
	}
	if (v >= 10) {
		*--e = pairs[v * 2 + 1];
		*--e = pairs[v * 2];
	} else {
		*--e = (char)('0' + v);
	}
	return e;
}

#endif
