/* stats.c — the shared statistics file (sysi.h STATS FILE), mapped MAP_SHARED. */
#include <asm/unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "internal.h"

SYSI_HOT_DATA struct sysi_stats_file *sysi_stats;

void sysi_stats_open(void)
{
	const char *path = sysi_getenv("SYSI_STATS_FILE");
	struct stat st;
	long fd, p;
	struct sysi_stats_file *s;

	if (!path || !*path)
		return;
	fd = raw3(__NR_open, path, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		sysi_debugf2("cannot open SYSI_STATS_FILE ", path);
		return;
	}
	if (raw2(__NR_fstat, fd, &st) < 0 || (size_t)st.st_size < sizeof *s) {
		sysi_debugf2("SYSI_STATS_FILE too small: ", path);
		raw1(__NR_close, fd);
		return;
	}
	p = raw6(__NR_mmap, 0, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	raw1(__NR_close, fd);
	if (p < 0 && p > -4096)
		return;
	s = (void *)p;
	if (s->version == 0) {
		/* zero file: set the header (every writer writes the same bytes) */
		memcpy(s->magic, SYSI_STATS_MAGIC, 8);
		s->size = sizeof *s;
		__atomic_store_n(&s->version, SYSI_STATS_VERSION, __ATOMIC_RELEASE);
	}
	if (memcmp(s->magic, SYSI_STATS_MAGIC, 8) || s->version != SYSI_STATS_VERSION ||
	    s->size != sizeof *s) {
		sysi_debugf2("SYSI_STATS_FILE has a bad header: ", path);
		raw2(__NR_munmap, s, sizeof *s);
		return;
	}
	sysi_stats = s;
	sysi_stat_add(s->processes, 1);
}

/* Slot of strategy `name` (claimed on first use), or -1. */
int sysi_stats_slot(const char *name)
{
	struct sysi_stats_strategy *t;
	size_t n = sysi_strlen(name);

	if (!sysi_stats || n >= SYSI_STATS_NAME_MAX)
		return -1;
	for (int i = 0; i < SYSI_STATS_NSTRATEGIES; i++) {
		uint32_t st, free_ = SYSI_STATS_SLOT_FREE;
		t = &sysi_stats->strategies[i];
		st = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
		if (st == SYSI_STATS_SLOT_FREE &&
		    __atomic_compare_exchange_n(&t->state, &free_, SYSI_STATS_SLOT_CLAIMED, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			memcpy(t->name, name, n + 1);
			__atomic_store_n(&t->state, SYSI_STATS_SLOT_READY, __ATOMIC_RELEASE);
			return i;
		}
		while ((st = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE)) == SYSI_STATS_SLOT_CLAIMED)
			raw0(__NR_sched_yield);
		if (!sysi_strcmp(t->name, name))
			return i;
	}
	return -1;
}
