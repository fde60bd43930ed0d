/*
 * trace-mem.c — reading the program's memory for trace lines without ever faulting: process_vm_readv
 * on our own pid copies what is mapped readable and stops at the first page that is not (a bad
 * pointer then prints as its address). The remote ranges are split at page boundaries because
 * the kernel reports partial transfers per iovec element.
 */
#include <asm/unistd.h>
#include <sys/uio.h>
#include "trace-decode.h"

#define PAGE 4096UL
#define MAX_SPLIT 8

static long self_pid; /* 0: ask the kernel (again after fork) */
/* 1 while an x32 call is decoded: its pointers are 32 bits, as strace reads them */
__thread int sysi_peek_x32 __attribute__((tls_model("initial-exec")));

void sysi_peek_atfork(void)
{
	self_pid = 0;
}

static size_t peek_some(void *dst, unsigned long src, size_t n)
{
	struct iovec local = { dst, n }, remote[MAX_SPLIT];
	unsigned k = 0;
	unsigned long a = src, left = n;
	long r;
	if (!n)
		return 0;
	if (src + n < src) /* wraps around the address space */
		return 0;
	if (sysi_peek_x32 && (src >> 32)) /* no x32 pointer (strace's umoven: -1) */
		return 0;
	while (left && k < MAX_SPLIT) {
		unsigned long chunk = PAGE - (a & (PAGE - 1));
		if (chunk > left)
			chunk = left;
		remote[k].iov_base = (void *)a;
		remote[k].iov_len = chunk;
		k++;
		a += chunk;
		left -= chunk;
	}
	local.iov_len = n - left;
	if (!self_pid)
		self_pid = raw0(__NR_getpid);
	r = raw6(__NR_process_vm_readv, self_pid, &local, 1, remote, k, 0);
	if (r == -3 /* ESRCH: a vfork child or a stale pid */) {
		self_pid = raw0(__NR_getpid);
		r = raw6(__NR_process_vm_readv, self_pid, &local, 1, remote, k, 0);
	}
	return r < 0 ? 0 : (size_t)r;
}

size_t sysi_peek(void *dst, unsigned long src, size_t n)
{
	size_t got = 0;
	while (got < n) {
		size_t r = peek_some((char *)dst + got, src + got, n - got);
		if (!r)
			break;
		got += r;
		if ((src + got) & (PAGE - 1)) /* stopped inside a page: unreadable further on */
			break;
	}
	return got;
}

long sysi_peek_str(char *dst, unsigned long src, size_t n, int *cut)
{
	size_t got = 0;
	*cut = 0;
	while (got < n) {
		/* up to the next page boundary at a time: a string often ends well before it */
		size_t want = PAGE - ((src + got) & (PAGE - 1));
		size_t r;
		if (want > n - got)
			want = n - got;
		r = peek_some(dst + got, src + got, want);
		for (size_t i = got; i < got + r; i++)
			if (!dst[i])
				return (long)i;
		got += r;
		if (r < want)
			return -1;
	}
	*cut = 1;
	return (long)n;
}
