/*
 * modules.c — finding the loaded modules (dl_iterate_phdr) that still need their plan, and
 * running one batch: plan lookup (directory, then the plan server), validation, patching,
 * then every strategy's ready().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <sys/mman.h>
#include "internal.h"

struct seen {
	uintptr_t bias;
	const void *phdr;
	int live;
};

struct found {
	struct sysi_mod mod;
	const ElfW(Phdr) *phdr;
	unsigned nphdr;
	const char *fullname;
};

static struct seen seen[SYSI_MAX_MODULES];
static struct found found[256]; /* one batch's new modules (under mod_lock) */
static unsigned nseen;
static volatile int mod_lock;

static int contains(const struct dl_phdr_info *info, uintptr_t a)
{
	for (unsigned i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && a >= info->dlpi_addr + ph->p_vaddr &&
		    a < info->dlpi_addr + ph->p_vaddr + ph->p_memsz)
			return 1;
	}
	return 0;
}

static int skipped(const struct dl_phdr_info *info, int first)
{
	const char *n = info->dlpi_name ? info->dlpi_name : "";
	if (!*n && !first)
		return 1; /* nameless and not the main program */
	if (!sysi_strncmp(n, "linux-vdso", 10) || !sysi_strncmp(n, "linux-gate", 10))
		return 1;
	if (contains(info, (uintptr_t)sysi_process_modules))
		return 1;
	if (sysi_hook_probe && contains(info, sysi_hook_probe))
		return 1;
	for (unsigned i = 0; i < sysi_nrts; i++)
		if (contains(info, sysi_rts[i].base_probe))
			return 1;
	return 0;
}

struct collect {
	struct found *out;
	unsigned n, cap;
	int first;
};

static int collect_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct collect *c = arg;
	int first = c->first;
	unsigned i;
	(void)size;
	c->first = 0;
	for (i = 0; i < nseen; i++)
		if (seen[i].bias == info->dlpi_addr && seen[i].phdr == info->dlpi_phdr) {
			seen[i].live = 1;
			return 0;
		}
	if (nseen == SYSI_MAX_MODULES)
		return 0;
	seen[nseen].bias = info->dlpi_addr;
	seen[nseen].phdr = info->dlpi_phdr;
	seen[nseen++].live = 1;
	if (skipped(info, first) || c->n == c->cap)
		return 0;
	struct found *f = &c->out[c->n++];
	f->mod.bias = info->dlpi_addr;
	f->mod.nsegs = 0;
	f->phdr = info->dlpi_phdr;
	f->nphdr = info->dlpi_phnum;
	f->fullname = info->dlpi_name ? info->dlpi_name : "";
	for (i = 0; i < info->dlpi_phnum && f->mod.nsegs < 16; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		struct sysi_seg *s;
		if (ph->p_type != PT_LOAD)
			continue;
		s = &f->mod.segs[f->mod.nsegs++];
		s->lo = info->dlpi_addr + ph->p_vaddr;
		s->hi = s->lo + ph->p_memsz;
		s->prot = (ph->p_flags & PF_R ? PROT_READ : 0) | (ph->p_flags & PF_W ? PROT_WRITE : 0) |
			  (ph->p_flags & PF_X ? PROT_EXEC : 0);
	}
	return 0;
}

/* A module left (partly) uninstrumented, for SYSI_UNPATCHED_FILE (left 0: no usable plan). */
static void report(const struct found *f, char *path, size_t pathsz, const struct sysi_left *left)
{
	if (!path[0])
		sysi_module_path(f->fullname, path, pathsz);
	sysi_report_unpatched(path[0] ? path : *f->fullname ? f->fullname : "(main program)", left);
}

/* The module's plan from dir, mapped and validated (0), or closed again (-errno, plan.c). */
static int open_valid(const char *dir, const struct sysi_mod *m, struct sysi_plan *plan)
{
	int r = sysi_embedded_plan(m, plan); /* a patched program's own plans first */
	if (r == -ENOENT)
		r = dir ? sysi_plan_open(dir, m->key, plan) : -ENOENT;
	if (r == 0 && sysi_plan_validate(plan, m) < 0) {
		sysi_plan_close(plan);
		r = -EINVAL;
	}
	return r;
}

static void one_module(struct found *f, const char *dir, const char *sock, int threaded)
{
	char key[128], path[4096];
	struct sysi_plan plan = { 0 };
	struct sysi_left left = { 0, 0 };
	int r;

	f->mod.name = f->fullname;
	f->mod.key = key;
	if (sysi_module_key(f->phdr, f->nphdr, f->mod.bias, f->fullname, key, sizeof key, path,
			    sizeof path, &f->mod.file_size) < 0) {
		sysi_debugf2("no module key for ", *f->fullname ? f->fullname : "(main program)");
		sysi_stat_add(sysi_stats->modules_unplanned, 1);
		report(f, path, sizeof path, 0);
		return;
	}
	r = open_valid(dir, &f->mod, &plan);
	/* the path (system calls for a module with a build-id) only when it is used */
	if (!path[0] && ((r < 0 && sock && dir) || sysi_debug_on))
		sysi_module_path(f->fullname, path, sizeof path);
	/* no plan, or one refused: the server plans the module (again) and says when it is there */
	if (r < 0 && sock && dir && path[0] && sysi_plan_ask_server(sock, path) == 0)
		r = open_valid(dir, &f->mod, &plan);
	if (r == -ENOENT) {
		sysi_debugf2("no plan for ", path[0] ? path : key);
		sysi_stat_add(sysi_stats->modules_unplanned, 1);
		report(f, path, sizeof path, 0);
		return;
	}
	if (r < 0) {
		sysi_debugf2(r == -EACCES ? "untrusted plan ignored (owner or mode): "
					  : "corrupt or stale plan ignored: ",
			     key);
		sysi_stat_add(sysi_stats->plans_corrupt, 1);
		report(f, path, sizeof path, 0);
		return;
	}
	sysi_debugf2("applying plan to ", path[0] ? path : key);
	sysi_apply_plan(&f->mod, &plan, threaded, &left);
	sysi_stat_add(sysi_stats->modules_planned, 1);
	sysi_plan_close(&plan);
	if (left.refused || left.fell)
		report(f, path, sizeof path, &left);
}

void sysi_process_modules(int threaded)
{
	/* read once, at the constructor's call: the program may edit its environment later */
	static const char *dir, *sock;
	static int have_env;
	struct collect c = { .out = found, .cap = 256, .first = 1 };
	unsigned i, j;

	if (!have_env) {
		dir = sysi_getenv("SYSI_PLAN_DIR");
		sock = sysi_getenv("SYSI_PLAN_SOCK");
		if (dir && !*dir)
			dir = 0;
		if (sock && !*sock)
			sock = 0;
		have_env = 1;
	}
	sysi_lock(&mod_lock);
	for (i = 0; i < nseen; i++)
		seen[i].live = 0;
	dl_iterate_phdr(collect_cb, &c);
	for (i = j = 0; i < nseen; i++) /* forget unloaded modules */
		if (seen[i].live)
			seen[j++] = seen[i];
	nseen = j;
	if (!c.n) {
		sysi_unlock(&mod_lock);
		return;
	}
	/*
	 * After the start marker this is the runtime's own work (sysi.h SYSI_MARKER_WORK_*), unlike
	 * dl_iterate_phdr above: it is libc's and may block on the loader's lock through patched code.
	 */
	sysi_runtime_work(1);
	for (i = 0; i < c.n; i++)
		one_module(&c.out[i], dir, sock, threaded);
	for (i = 0; i < sysi_nrts; i++) /* ready() after a batch that prepared its sites */
		if (sysi_rts[i].busy) {
			sysi_rts[i].busy = 0;
			if (sysi_rts[i].ops->ready)
				sysi_rts[i].ops->ready();
		}
	sysi_unlock(&mod_lock);
	sysi_runtime_work(0);
}

void sysi_modules_atfork(void)
{
	mod_lock = 0;
}

/* sud.c's lazy patching: the same lock as a batch, never waited for (it runs in a signal
 * handler that may have interrupted a batch on its own thread): 1 taken, 0 busy */
int sysi_modules_trylock(void)
{
	return !__atomic_exchange_n(&mod_lock, 1, __ATOMIC_ACQUIRE);
}

void sysi_modules_unlock(void)
{
	sysi_unlock(&mod_lock);
}
