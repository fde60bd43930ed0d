/*
 * sud-lazy.c — lazy patching for `sysi run --complete` (docs/complete.md, "Lazy patching"):
 * when the catch-all (sud.c) has brought a call from a real `syscall` (0f 05) to the hook, and
 * that instruction lies in a private, file-backed, non-writable executable mapping, its 2 bytes
 * are rewritten in place with the 2-byte form of a strategy of the chain, so the site's next
 * call takes that strategy's path instead of SIGSYS.
 *
 * Why 2 bytes in place are sound there: the CPU has just executed the `syscall` at that address
 * as an instruction start, so no control flow can enter its second byte, and the form replaces
 * exactly that instruction. The mapping rules keep out bytes that may be rewritten behind us:
 * anonymous or writable code (JIT), shared mappings (our write would reach the file, and
 * another view may rewrite it), memfd and /dev/shm files (a JIT's double mapping), the vDSO.
 *
 * The forms (SYSI_LAZY, read once; `sysi run --complete` sets ud2:VARIANT when ud2 is in the
 * chain, VARIANT the chain's: this host's cheapest trap unless named):
 *   ud2:VARIANT: the ud2 runtime's trap (ud2 `0f 0b`, int3 `cc 90`, hlt `f4 90`, int4 `cd 04`);
 *       its handler resumes without rt_sigreturn, so its path is cheaper than the catch-all's
 *       SIGSYS by about one kernel round trip when the trap itself is (bench/complete.ts). A
 *       signal frame skips the red zone: sound at every site.
 *   zpoline (opt-in, lazypoline's design): `ff d0`, call *%rax through page 0. The call stores
 *       the return address at [rsp-8], in the red zone, which zpoline's planner proves dead
 *       before it patches a site; at run time nothing proves it, so this form is the bench's
 *       "lazypoline's design" and not a default (lazypoline rewrites every site it sees).
 *   unset, 0, off: no lazy patching.
 *
 * Safety with other threads: one site at a time under libsysi's module lock (taken without
 * waiting: the caller is a signal handler that may have interrupted a batch on this very
 * thread; busy means "next time"); the site's page is made read-write-execute (never without
 * execute: other threads keep running it), the runtime's prepare_site records the site before
 * its bytes change, and the 2 bytes change with one locked cmpxchg that expects `0f 05` (a site
 * rewritten meanwhile is left alone); sites whose 2 bytes straddle a 64-byte line are skipped
 * (no locked split access: split-lock detection may fault on it). A thread that executed the
 * old `syscall` while it changed still arrives in the catch-all, which knows the site (lazy_has).
 */
#define _GNU_SOURCE
#include <asm/unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ioctl.h>
#include <sys/mman.h>
#include "sud.h"

/* linux/fs.h (6.11+): PROCMAP_QUERY on an open /proc/<pid>/maps */
struct procmap_query_ {
	uint64_t size;          /* sizeof this struct */
	uint64_t query_flags;   /* 0: the VMA covering query_addr */
	uint64_t query_addr;
	uint64_t vma_start, vma_end;
	uint64_t vma_flags;     /* PQ_* */
	uint64_t vma_page_size;
	uint64_t vma_offset;
	uint64_t inode;         /* 0: not file-backed */
	uint32_t dev_major, dev_minor;
	uint32_t vma_name_size; /* in: buffer size; out: name length with its NUL, 0 if none */
	uint32_t build_id_size;
	uint64_t vma_name_addr;
	uint64_t build_id_addr;
};
#define PROCMAP_QUERY_ _IOWR('f', 17, struct procmap_query_)
#define PQ_READ 0x1
#define PQ_WRITE 0x2
#define PQ_EXEC 0x4
#define PQ_SHARED 0x8

#define LAZY_SITES 4096 /* sites patched lazily per process image (recorded; more are not patched) */
#define LAZY_NO 256     /* sites found ineligible (a cache: a miss only costs a query again) */

static int form_rt = -1;            /* runtime whose 2-byte form lazy sites get, or -1 */
static unsigned char form[2];
static uint64_t form_aux;
static uintptr_t sites[LAZY_SITES]; /* open addressing by address, 0 empty; written under the lock */
static unsigned nsites;
static uintptr_t no[LAZY_NO];       /* direct-mapped by address */

static unsigned slot(uintptr_t a, unsigned n)
{
	return (unsigned)((a * 0x9e3779b97f4a7c15ULL) >> 40) & (n - 1);
}

int sysi_sud_lazy_has(uintptr_t site)
{
	for (unsigned i = slot(site, LAZY_SITES), k = 0; k < LAZY_SITES; k++, i = (i + 1) & (LAZY_SITES - 1)) {
		uintptr_t v = __atomic_load_n(&sites[i], __ATOMIC_ACQUIRE);
		if (!v)
			return 0;
		if (v == site)
			return 1;
	}
	return 0;
}

static void record(uintptr_t site)
{
	unsigned i = slot(site, LAZY_SITES);
	while (sites[i])
		i = (i + 1) & (LAZY_SITES - 1);
	__atomic_store_n(&sites[i], site, __ATOMIC_RELEASE);
	nsites++;
}

/* ud2's variants (plugins/ud2/native/ud2.h SYSI_UD2_VARIANT_*: the index is aux[0]) */
static const struct {
	const char *name;
	unsigned char bytes[2];
} variants[] = {
	{ "ud2", { 0x0f, 0x0b } },  /* ud2 */
	{ "int3", { 0xcc, 0x90 } }, /* int3; nop */
	{ "hlt", { 0xf4, 0x90 } },  /* hlt; nop */
	{ "int4", { 0xcd, 0x04 } }, /* int $4 */
};

void sysi_sud_lazy_setup(void)
{
	const char *v = sysi_getenv("SYSI_LAZY");
	int rt = -1;
	if (!v || !*v || !sysi_strcmp(v, "0") || !sysi_strcmp(v, "off"))
		return;
	if (!sysi_strcmp(v, "zpoline")) {
		rt = sysi_runtime_by_name("zpoline");
		form[0] = 0xff; /* call *%rax */
		form[1] = 0xd0;
		form_aux = 0;
	} else if (!sysi_strncmp(v, "ud2:", 4)) {
		for (unsigned i = 0; i < sizeof variants / sizeof variants[0]; i++)
			if (!sysi_strcmp(v + 4, variants[i].name)) {
				rt = sysi_runtime_by_name("ud2");
				form[0] = variants[i].bytes[0];
				form[1] = variants[i].bytes[1];
				form_aux = i;
			}
		if (rt < 0 && sysi_runtime_by_name("ud2") >= 0)
			sysi_die("--complete: SYSI_LAZY=ud2:VARIANT names no variant of ud2");
	} else {
		sysi_die("--complete: SYSI_LAZY must be ud2:VARIANT, zpoline, 0 or off");
	}
	form_rt = rt;
	if (rt < 0)
		sysi_debug("--complete: no lazy patching (its strategy is not in the chain)");
}

/* The mapping at a: 0 and its protection (PROT_*) when eligible, else -1 (or -errno). */
static int eligible(uintptr_t a, int *prot)
{
	static const char memfd[] = "/memfd:", shm[] = "/dev/shm/";
	char name[64];
	struct procmap_query_ q;
	long fd, r;

	memset(&q, 0, sizeof q);
	q.size = sizeof q;
	q.query_addr = a;
	q.vma_name_size = sizeof name;
	q.vma_name_addr = (uintptr_t)name;
	fd = raw3(__NR_open, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return (int)fd;
	r = raw3(__NR_ioctl, fd, PROCMAP_QUERY_, &q);
	raw1(__NR_close, fd);
	if (r == -ENAMETOOLONG) /* a longer path: only its prefix matters here */
		name[0] = 0;
	else if (r < 0)
		return (int)r;
	if (!q.inode || (q.vma_flags & (PQ_WRITE | PQ_SHARED)) || !(q.vma_flags & PQ_EXEC))
		return -1;
	if (q.vma_name_size && (!sysi_strncmp(name, memfd, sizeof memfd - 1) ||
				!sysi_strncmp(name, shm, sizeof shm - 1)))
		return -1;
	*prot = PROT_EXEC | (q.vma_flags & PQ_READ ? PROT_READ : 0);
	return 0;
}

/* lock cmpxchg of the 2 bytes at p (inside one 64-byte line): 1 when they were old */
static int cas2(unsigned char *p, uint16_t old, uint16_t nv)
{
	uint16_t prev = old;
	__asm__ volatile("lock cmpxchgw %2, %1" : "+a"(prev), "+m"(*(volatile uint16_t *)p) : "r"(nv) : "memory", "cc");
	return prev == old;
}

/* Under the lock: patch the site, 1 done, 0 not (left on the catch-all). */
static int patch(uintptr_t site)
{
	const struct sysi_rt *rt = &sysi_rts[form_rt];
	struct sysi_site s;
	uintptr_t page = site & ~(uintptr_t)4095;
	int prot = 0, done = 0;
	long r;

	if (nsites * 2 >= LAZY_SITES || sysi_sud_lazy_has(site))
		return 0;
	r = eligible(site, &prot);
	if (r == -ENOTTY || r == -EINVAL) {
		/* no PROCMAP_QUERY (before 6.11): no lazy patching, rather than 3 calls per trap */
		sysi_debug("--complete: no PROCMAP_QUERY here: no lazy patching");
		form_rt = -1;
	}
	if (r == -1)
		no[slot(site, LAZY_NO)] = site;
	if (r < 0)
		return 0;
	if (raw3(__NR_mprotect, page, 4096, prot | PROT_READ | PROT_WRITE | PROT_EXEC) < 0)
		return 0; /* refused (W^X policy): never make it non-executable instead */
	memset(&s, 0, sizeof s);
	s.addr = s.patch_addr = site;
	s.patch_len = 2;
	s.nr = -1;
	s.aux[0] = form_aux;
	s.strategy = (uint32_t)form_rt;
	s.bytes = form;
	/* recorded before the bytes change: a thread that ran the old `syscall` meanwhile finds
	 * the new bytes in the catch-all and must know them for ours (else its SIGSYS would be the
	 * program's: killed). Left recorded when the swap fails: a SUD trap raised there is a real
	 * `syscall` whatever the bytes are by the time the handler reads them. */
	if (rt->ops->prepare_site(&s) == 0) {
		record(site);
		done = cas2((unsigned char *)site, 0x050f, (uint16_t)(form[0] | form[1] << 8));
	}
	raw3(__NR_mprotect, page, 4096, prot);
	if (rt->ops->ready)
		rt->ops->ready();
	return done;
}

/*
 * The catch-all has completed a call from the `syscall` at site: patch it when it qualifies.
 * stats_slot: the catch-all's (its "patched" counts the sites patched lazily).
 */
void sysi_sud_lazy(uintptr_t site, int stats_slot)
{
	int done;
	if (form_rt < 0 || (site & 63) == 63 || no[slot(site, LAZY_NO)] == site)
		return;
	if (!sysi_modules_trylock())
		return;
	sysi_runtime_work(1);
	done = patch(site);
	sysi_runtime_work(0);
	sysi_modules_unlock();
	if (!done || !sysi_stats)
		return;
	if (stats_slot >= 0)
		sysi_stat_add(sysi_stats->strategies[stats_slot].patched, 1);
	if (sysi_rts[form_rt].stats_slot >= 0)
		sysi_stat_add(sysi_stats->strategies[sysi_rts[form_rt].stats_slot].patched, 1);
}
