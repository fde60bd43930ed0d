/*
 * probe.c — `sysi segmentation probe`: runs each segmentation experiment in a forked child (a
 * fault ends the child, never the probe) and prints one JSON object per experiment on stdout,
 * with the raw values the child saw. packages: plugins/segmentation/src/probe.ts turns them
 * into the table; nothing here is a remembered answer.
 *
 *   segprobe            every experiment
 *   segprobe NAME...    only these
 *
 * Each line: {"id":…,"outcome":"ok"|"fault"|"error"|"skipped"|"crash", …}
 *   ok     a target ran: which (1 PR_T1, 2 PR_T2, 3 the LDT target), cs (in the target),
 *          caller_cs, rsp_before,
 *          rsp_after, pushed0, pushed1, ret (the far call's return address)
 *   fault  the child took SIGSEGV/SIGBUS/SIGILL: signal, si_code, si_addr, trapno, err, rip,
 *          rsp, site (the far call's address), rsp_before
 *   other fields per experiment (modify_ldt: ret, raw descriptor words, l, d)
 * Numbers are decimal strings of unsigned 64-bit values (JSON numbers lose bits above 2^53).
 */
#define _GNU_SOURCE
#include <asm/ldt.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>
#include "probe.h"

extern long seg_probe_call(long form, unsigned long rax, unsigned long newrsp);
extern const unsigned char seg_probe_site2[], seg_probe_site3[];
extern const unsigned char seg_probe_target64[], seg_probe_target64_end[];
extern const unsigned char seg_probe_low[], seg_probe_low_end[];

#define DATA ((volatile unsigned char *)PR_DATA)
#define WORD(off) (*(volatile uint64_t *)(PR_DATA + (off)))

static uintptr_t cur_site;	/* the far call of the running experiment (fault reports) */
static const char *cur_id;

static void put_u64(const char *key, uint64_t v, int comma)
{
	printf("%s\"%s\":\"%llu\"", comma ? "," : "", key, (unsigned long long)v);
}

/* The child's fault: report what the kernel said and exit. Async-signal-unsafe stdio is fine
 * here: the child does nothing else afterwards, and stdout is flushed by hand. */
static void on_fault(int sig, siginfo_t *si, void *p)
{
	ucontext_t *uc = p;
	greg_t *g = uc->uc_mcontext.gregs;

	printf("{\"id\":\"%s\",\"outcome\":\"fault\"", cur_id);
	put_u64("signal", (uint64_t)sig, 1);
	put_u64("si_code", (uint64_t)(uint32_t)si->si_code, 1);
	put_u64("si_addr", (uint64_t)(uintptr_t)si->si_addr, 1);
	put_u64("trapno", (uint64_t)g[REG_TRAPNO], 1);
	put_u64("err", (uint64_t)g[REG_ERR], 1);
	put_u64("rip", (uint64_t)g[REG_RIP], 1);
	put_u64("rsp", (uint64_t)g[REG_RSP], 1);
	put_u64("cs", (uint64_t)(g[REG_CSGSFS] & 0xffff), 1);
	put_u64("site", (uint64_t)cur_site, 1);
	put_u64("rsp_before", WORD(PR_RSP_BEFORE), 1);
	printf("}\n");
	fflush(stdout);
	_exit(0);
}

static int map_fixed(uintptr_t addr, size_t len, int prot)
{
	void *m = mmap((void *)addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	return m == (void *)addr ? 0 : -1;
}

static void fail(const char *what)
{
	printf("{\"id\":\"%s\",\"outcome\":\"error\",\"error\":\"%s: %s\"}\n", cur_id, what, strerror(errno));
	fflush(stdout);
	_exit(0);
}

static void skip(const char *why)
{
	printf("{\"id\":\"%s\",\"outcome\":\"skipped\",\"reason\":\"%s\"}\n", cur_id, why);
	fflush(stdout);
	_exit(0);
}

/* Common setup in the child: the data page, the fault handler on an alternate stack (the
 * faulting rsp may be anything), the two 64-bit targets and the far pointers. */
static void setup(void)
{
	static char altstack[65536];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
	struct sigaction sa;
	size_t n = (size_t)(seg_probe_target64_end - seg_probe_target64);
	volatile unsigned char *fp;

	sigaltstack(&ss, 0);
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigaction(SIGSEGV, &sa, 0);
	sigaction(SIGBUS, &sa, 0);
	sigaction(SIGILL, &sa, 0);
	sigaction(SIGTRAP, &sa, 0);
	if (map_fixed(PR_DATA, 4096, PROT_READ | PROT_WRITE))
		fail("mmap data page");
	if (map_fixed(PR_T1 & ~0xfffUL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC))
		fail("mmap 0x330000");
	if (map_fixed(PR_T2 & ~0xfffUL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC))
		fail("mmap 0x3300330000");
	memcpy((void *)PR_T1, seg_probe_target64, n);
	memcpy((void *)PR_T2, seg_probe_target64, n);
	/* m16:32 to the LDT target: offset PR_LOW, selector PR_LDT_SEL */
	fp = DATA + PR_FP_LDT;
	*(volatile uint32_t *)fp = PR_LOW;
	*(volatile uint16_t *)(fp + 4) = PR_LDT_SEL;
	/* 33 00 33 00 33 00 00 00 33 00: m16:32 = 0x33:0x00330033, m16:64 = 0x33:0x3300330033 */
	fp = DATA + PR_FP_GDT;
	*(volatile uint64_t *)fp = 0x0000003300330033ULL;
	*(volatile uint16_t *)(fp + 8) = 0x33;
}

/* modify_ldt(0x11) with entry `n`: a code segment, 32-bit or 64-bit as asked. */
static long set_ldt(int n, int seg32, int lm)
{
	struct user_desc d;

	memset(&d, 0, sizeof d);
	d.entry_number = (unsigned)n;
	d.base_addr = 0;
	d.limit = 0xfffff;
	d.seg_32bit = (unsigned)seg32;
	d.contents = 2; /* MODIFY_LDT_CONTENTS_CODE */
	d.read_exec_only = 0;
	d.limit_in_pages = 1;
	d.seg_not_present = 0;
	d.useable = 1;
	d.lm = (unsigned)lm;
	/* the kernel returns (unsigned int)ret: cast back to int for -errno */
	return (int)syscall(SYS_modify_ldt, 0x11, &d, sizeof d);
}

/* The raw 8-byte descriptor of LDT entry n, read back with modify_ldt(0), or 0. */
static uint64_t read_ldt(int n)
{
	uint64_t t[16];
	long r;

	memset(t, 0, sizeof t);
	r = (int)syscall(SYS_modify_ldt, 0, t, sizeof t);
	if (r < (long)(8 * (n + 1)))
		return 0;
	return t[n];
}

static void ok_line(uintptr_t ret)
{
	printf("{\"id\":\"%s\",\"outcome\":\"ok\"", cur_id);
	put_u64("which", WORD(PR_WHICH), 1);
	put_u64("cs", WORD(PR_CS), 1);
	put_u64("caller_cs", WORD(PR_CALLER_CS), 1);
	put_u64("rsp_before", WORD(PR_RSP_BEFORE), 1);
	put_u64("rsp_after", WORD(PR_RSP_AFTER), 1);
	put_u64("pushed0", WORD(PR_PUSHED0), 1);
	put_u64("pushed1", WORD(PR_PUSHED1), 1);
	put_u64("ret", (uint64_t)ret, 1);
	printf("}\n");
	fflush(stdout);
	_exit(0);
}

/* One far call: form 0 (ff 18) or 1 (48 ff 18), with rax and an optional stack. */
static void far_call(int form, unsigned long rax, unsigned long stack)
{
	const unsigned char *site = form ? seg_probe_site3 : seg_probe_site2;

	cur_site = (uintptr_t)site;
	seg_probe_call(form, rax, stack);
	ok_line((uintptr_t)site + (form ? 3 : 2));
}

static void ldt_target(void)
{
	size_t n = (size_t)(seg_probe_low_end - seg_probe_low);
	long r = set_ldt(1, 1, 0);

	if (r != 0) {
		errno = (int)-r;
		fail("modify_ldt");
	}
	if (map_fixed(PR_LOW, 4096, PROT_READ | PROT_WRITE | PROT_EXEC))
		fail("mmap low code page");
	memcpy((void *)PR_LOW, seg_probe_low, n);
}

/* Page 0 with the far-pointer pattern 33 00 33 00 …, read-only (skips without page 0). */
static void page0_pattern(void)
{
	if (map_fixed(0, 4096, PROT_READ | PROT_WRITE))
		skip("page 0 cannot be mapped (needs root or vm.mmap_min_addr=0)");
	for (int i = 0; i < 4096; i++)
		((volatile unsigned char *)0)[i] = (i & 1) ? 0x00 : 0x33;
	mprotect(0, 4096, PROT_READ);
}

static void exp_ldt_lbit(void)
{
	long r = set_ldt(0, 0, 1);
	uint64_t raw = read_ldt(0);

	printf("{\"id\":\"%s\",\"outcome\":\"ok\"", cur_id);
	put_u64("requested_l", 1, 1);
	printf(",\"ret\":%ld", r);
	put_u64("raw", raw, 1);
	put_u64("present", (raw >> 47) & 1, 1);
	put_u64("l", (raw >> 53) & 1, 1);
	put_u64("d", (raw >> 54) & 1, 1);
	put_u64("type", (raw >> 40) & 0xf, 1);
	put_u64("s", (raw >> 44) & 1, 1);
	put_u64("dpl", (raw >> 45) & 3, 1);
	printf("}\n");
	fflush(stdout);
	_exit(0);
}

struct experiment {
	const char *id;
	void (*run)(void);
};

static void e_ldt_lbit(void) { exp_ldt_lbit(); }
static void e_ldt32_stack(void) { ldt_target(); far_call(0, PR_DATA + PR_FP_LDT, 0); }
static void e_ldt32_lowstack(void)
{
	ldt_target();
	if (map_fixed(PR_LOWSTACK, PR_LOWSTACK_TOP - PR_LOWSTACK, PROT_READ | PROT_WRITE))
		fail("mmap low stack");
	far_call(0, PR_DATA + PR_FP_LDT, PR_LOWSTACK_TOP - 64);
}
static void e_gdt_farcall(void) { far_call(0, PR_DATA + PR_FP_GDT, 0); }
static void e_rexw_farcall(void) { far_call(1, PR_DATA + PR_FP_GDT, 0); }
static void e_page0_even(void) { page0_pattern(); far_call(0, 110, 0); }
static void e_page0_odd(void) { page0_pattern(); far_call(0, 39, 0); }
static void e_page0_rexw(void) { page0_pattern(); far_call(1, 110, 0); }
static void e_page0_600(void) { page0_pattern(); far_call(0, 600, 0); }
static void e_page0_4090(void) { page0_pattern(); far_call(0, 4090, 0); }
static void e_page0_4092(void) { page0_pattern(); far_call(0, 4092, 0); }
static void e_page0_64k(void) { page0_pattern(); far_call(0, 0x10000, 0); }
static void e_page0_m1(void) { page0_pattern(); far_call(0, ~0UL, 0); }
static void e_page0_noncanon(void) { page0_pattern(); far_call(0, 0x8000000000000000UL, 0); }

static const struct experiment experiments[] = {
	{ "ldt-lbit", e_ldt_lbit },
	{ "ldt32-stack", e_ldt32_stack },
	{ "ldt32-lowstack", e_ldt32_lowstack },
	{ "gdt-farcall", e_gdt_farcall },
	{ "rexw-farcall", e_rexw_farcall },
	{ "page0-even", e_page0_even },
	{ "page0-odd", e_page0_odd },
	{ "page0-rexw", e_page0_rexw },
	{ "page0-600", e_page0_600 },
	{ "page0-4090", e_page0_4090 },
	{ "page0-4092", e_page0_4092 },
	{ "page0-64k", e_page0_64k },
	{ "page0-minus1", e_page0_m1 },
	{ "page0-noncanonical", e_page0_noncanon },
};

static void run_one(const struct experiment *e)
{
	int st;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("{\"id\":\"%s\",\"outcome\":\"error\",\"error\":\"fork: %s\"}\n", e->id, strerror(errno));
		return;
	}
	if (pid == 0) {
		cur_id = e->id;
		alarm(10);
		setup();
		e->run();
		_exit(0);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st))
		printf("{\"id\":\"%s\",\"outcome\":\"crash\",\"signal\":\"%d\"}\n", e->id, WTERMSIG(st));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	size_t n = sizeof experiments / sizeof experiments[0];

	for (size_t i = 0; i < n; i++) {
		int want = argc < 2;
		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], experiments[i].id) == 0;
		if (want)
			run_one(&experiments[i]);
	}
	return 0;
}
