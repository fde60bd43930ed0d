/*
 * vdso.c — the vDSO's own system calls, in every program sysi instruments: libsysi.so (a
 * dynamically linked program) and the static runtime (static/, which links libsysi's sources);
 * docs/patch.md, "The vDSO's system calls". The kernel maps the vDSO sealed (mprotect fails on
 * 6.18), so no strategy patches its fallback `syscall`s (clock_gettime of a CPU-time clock,
 * getrandom's reseeding: Go 1.24 calls __vdso_getrandom). Syscall User Dispatch in its inclusive
 * form (PR_SYS_DISPATCH_INCLUSIVE_ON, Linux 6.17+) dispatches exactly the calls made from one
 * address range: armed on the vDSO's mapping, every other call of the thread runs as before
 * (patched sites, the runtime's own calls), and a call the vDSO makes raises SIGSYS, which this
 * file's handler dispatches like a patched site's call (strategy "vdso": counted, hookable) and
 * resumes after it. No selector byte: inside the range always dispatches.
 *
 * Cost: the kernel takes its syscall-work slow path for every call of an armed thread (about
 * +25-35 ns a call here), and a vDSO fallback call costs a signal round trip. So it is on only
 * where it can matter: a hook that observes calls (not passthrough), a vDSO with a `syscall`
 * (0f 05) in its text, not under --complete (whose catch-all sees these calls already), and in
 * a static program unless SYSI_VDSO=0 (the opt-out), in a dynamic one only with SYSI_VDSO=1
 * (`sysi run --vdso`): there it would add its cost to the count hook's ~5 ns on every call, for
 * calls that are rare (CPU-time clocks, getrandom's reseeding).
 *
 * SUD is per thread and not inherited by clone or fork (the kernel clears it in copy_process;
 * exec clears it too). The constructor's thread is armed by sysi_vdso_setup; every other thread
 * at its first entry into the runtime for a hooked call (sysi_vdso_enter: a new glibc or Go
 * thread makes hooked calls before its code can reach the vDSO), a static program's thread when
 * it takes its own state block (static.c own_block); a fork child right after the fork
 * (dispatch.c after_fork_child). The program's own prctl(PR_SET_SYSCALL_USER_DISPATCH, …)
 * replaces sysi's setting on its thread (dispatch.c sysi_perform: sysi_vdso_prctl).
 */
#define _GNU_SOURCE
#include <asm/unistd.h>
#include <elf.h>
#include <signal.h>
#include <ucontext.h>
#include <link.h>
#include <sys/auxv.h>
#include "sud.h"
#include "vdso.h"

#define PR_SET_SYSCALL_USER_DISPATCH_ 59
#define PR_SYS_DISPATCH_OFF_ 0
#define PR_SYS_DISPATCH_INCLUSIVE_ON_ 2 /* Linux 6.17+: dispatch the calls made inside the range */
#define SYS_USER_DISPATCH_ 2            /* si_code of a SUD SIGSYS */
#define AUDIT_ARCH_X86_64_ 0xc000003eU
#ifndef AT_SYSINFO_EHDR
#define AT_SYSINFO_EHDR 33
#endif

SYSI_HOT_DATA int sysi_vdso_on;     /* armed on the constructor's thread (sysi_vdso_setup) */
__thread char sysi_vdso_armed __attribute__((tls_model("initial-exec")));
static uintptr_t lo, len;           /* the vDSO's mapping */
static uint32_t vdso_id = ~0u;      /* the pseudo runtime "vdso" in sysi_rts (sysi_vdso_register) */
static sysi_hook_fn fast_real;      /* the fast hook vdso_fast stands in front of */
extern __thread char sysi_vdso_own __attribute__((tls_model("initial-exec"))); /* trace-vdso.c */

static const struct sysi_strategy_ops vdso_ops = {
	.abi_version = SYSI_ABI_VERSION,
	.name = "vdso",
};

/* SYSI_MARKER: the callers bracket it as runtime work (brackets do not nest) */
static long arm(void)
{
	return raw6(__NR_prctl, PR_SET_SYSCALL_USER_DISPATCH_, PR_SYS_DISPATCH_INCLUSIVE_ON_, lo, len,
		    0, 0);
}

/* This thread, which SUD's state does not reach from its creator: armed now (static.c's
 * own_block calls it inside sysi_thread_enter's runtime-work bracket). */
void sysi_vdso_thread(void)
{
	if (sysi_vdso_on)
		sysi_vdso_armed = arm() == 0 ? 1 : 2;
}

__attribute__((noinline, cold)) void sysi_vdso_late(void)
{
	sysi_runtime_work(1);
	sysi_vdso_thread();
	sysi_runtime_work(0);
}

void sysi_vdso_atfork(void)
{
	sysi_vdso_armed = 0;
	sysi_vdso_late();
}

/*
 * The program's own prctl(PR_SET_SYSCALL_USER_DISPATCH, …), made as asked: it replaces sysi's
 * setting on this thread (the kernel keeps one), so a SIGSYS from SUD there is the program's
 * from then on; turning its own off gives the thread sysi's back.
 */
long sysi_vdso_prctl(struct sysi_call *c)
{
	long r = raw6(__NR_prctl, c->args[0], c->args[1], c->args[2], c->args[3], c->args[4],
		      c->args[5]);
	if (r != 0)
		return r;
	if (c->args[1] == PR_SYS_DISPATCH_OFF_)
		sysi_vdso_atfork();
	else
		sysi_vdso_armed = 2;
	return r;
}

/* api->fast_hook of a hook other than count (whose new threads reach count.c's slow path). */
SYSI_HOT static long vdso_fast(struct sysi_call *c)
{
	sysi_vdso_enter();
	return fast_real(c);
}

/* SIGSYS (through the master): a call the vDSO made. */
static int trap(int sig, void *info, void *ucontext)
{
	siginfo_t *si = info;
	ucontext_t *uc = ucontext;
	greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t ret = (uintptr_t)si->si_call_addr;
	struct sysi_call c;

	(void)sig;
	/* seccomp's, one sent by a process, the program's own SUD's: the program's */
	if (si->si_code != SYS_USER_DISPATCH_ || (uintptr_t)g[REG_RIP] != ret ||
	    sysi_vdso_armed != 1 || ret - 2 - lo >= len || si->si_arch != AUDIT_ARCH_X86_64_)
		return 0;
	if (sysi_vdso_own) { /* the runtime's own clock read (trace-vdso.c): not the program's */
		sysi_runtime_work(1);
		g[REG_RAX] = sysi_raw6(g[REG_RAX], g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10],
				       g[REG_R8], g[REG_R9]);
		sysi_runtime_work(0);
		return 1;
	}
	c.nr = (int)g[REG_RAX]; /* as the kernel reads it (SUD rolled the call back) */
	sysi_sud_args(&c, g);
	c.site = ret - 2;
	c.strategy = vdso_id;
	c.flags = 0;
	c.ret = 0;
	if (sysi_dispatch_impl(&c) == 0)
		g[REG_RAX] = c.ret;
	else /* in context (clone, vfork, rt_sigreturn): the vDSO makes none; made plainly */
		g[REG_RAX] = sysi_raw6(c.nr, c.args[0], c.args[1], c.args[2], c.args[3], c.args[4],
				       c.args[5]);
	return 1;
}

/* The vDSO's mapping, and whether its text has a `syscall` (a byte scan: conservative). */
static int find(void)
{
	const ElfW(Ehdr) *eh = (const void *)getauxval(AT_SYSINFO_EHDR);
	const ElfW(Phdr) *ph;
	if (!eh)
		return 0;
	ph = (const void *)((uintptr_t)eh + eh->e_phoff);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const unsigned char *p = (const unsigned char *)eh;
		if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X))
			continue;
		/* the vDSO's one PT_LOAD starts at its ELF header (p_offset 0) */
		lo = (uintptr_t)eh;
		len = (ph[i].p_offset + ph[i].p_memsz + 4095) & ~4095ul;
		for (uintptr_t k = ph[i].p_offset; k + 1 < ph[i].p_offset + ph[i].p_filesz; k++)
			if (p[k] == 0x0f && p[k + 1] == 0x05)
				return 1;
		return 0;
	}
	return 0;
}

/*
 * From sysi_dispatch_setup, after the hook is known and before the strategy runtimes copy
 * sysi_api: this thread armed (the kernel's answer says whether it has the inclusive form),
 * SIGSYS claimed, and a fast hook other than count wrapped so that each thread's first call
 * arms it (count's new threads pass its slow path: no cost on the count fast path).
 */
void sysi_vdso_setup(void)
{
	const char *v = sysi_getenv("SYSI_VDSO");
#ifdef SYSI_STATIC_RUNTIME
	int want = !(v && v[0] == '0'); /* a static program: on unless SYSI_VDSO=0 */
#else
	int want = v && v[0] == '1'; /* a dynamic one: asked for (sysi run --vdso), the cost is on every call */
#endif
	if (!want || sysi_hook_cur == sysi_hook_passthrough || sysi_sud_on || !find())
		return;
	sysi_runtime_work(1);
	if (arm() != 0) {
		sysi_runtime_work(0);
		sysi_debug("vDSO: inclusive Syscall User Dispatch unavailable (Linux 6.17+): the "
			   "vDSO's fallback calls are not caught");
		return;
	}
	if (sysi_claim_signal(SIGSYS, trap) < 0) {
		raw6(__NR_prctl, PR_SET_SYSCALL_USER_DISPATCH_, PR_SYS_DISPATCH_OFF_, 0, 0, 0, 0);
		sysi_runtime_work(0);
		sysi_debug("vDSO: cannot claim SIGSYS: the vDSO's fallback calls are not caught");
		return;
	}
	sysi_runtime_work(0);
	sysi_vdso_armed = 1;
	sysi_vdso_on = 1;
	if (sysi_api.fast_hook && sysi_api.fast_hook != sysi_hook_count) {
		fast_real = sysi_api.fast_hook;
		sysi_api.fast_hook = vdso_fast;
	}
	sysi_debug("vDSO: its system calls are caught (inclusive Syscall User Dispatch)");
}

/* From sysi_init, after the strategy runtimes took their slots: the "vdso" strategy. */
void sysi_vdso_register(void)
{
	struct sysi_rt *rt;
	if (!sysi_vdso_on)
		return;
	if (sysi_nrts >= SYSI_MAX_RUNTIMES) {
		sysi_debug("vDSO: no runtime slot left: its calls are counted without a strategy");
		return;
	}
	rt = &sysi_rts[sysi_nrts];
	rt->ops = &vdso_ops;
	rt->base_probe = lo; /* the vDSO: never planned */
	rt->ok = 1;
	rt->stats_slot = sysi_stats_slot(vdso_ops.name);
	vdso_id = sysi_nrts++;
}
