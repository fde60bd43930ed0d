/*
 * stats.c — the shared statistics file (sysi.h STATS FILE), mapped MAP_SHARED, and the
 * unpatched-modules file (SYSI_UNPATCHED_FILE), appended to.
 */
#include <asm/unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "internal.h"
#include "syscall-names.h"

_Static_assert(SYSI_NX32 <= SYSI_STATS_NX32, "an x32 slot for every named x32 number");

SYSI_HOT_DATA struct sysi_stats_file *sysi_stats;
static const char *unpatched_file, *unpatched_id;

/*
 * Is fd the file named by id ("<st_dev>:<st_ino>" in decimal; null or empty: any file)? `sysi run`
 * names its files as /proc/<its pid>/fd/N and says which file they are: a process that outlives
 * sysi, whose pid another process then gets, must not write into that process's file N.
 */
int sysi_fd_is(long fd, const char *id)
{
	struct stat st;
	char buf[48], *p;
	if (!id || !*id)
		return 1;
	if (raw2(__NR_fstat, fd, &st) < 0)
		return 0;
	p = sysi_fmt_udec(buf, st.st_dev);
	*p++ = ':';
	*sysi_fmt_udec(p, st.st_ino) = 0;
	return !sysi_strcmp(buf, id);
}

void sysi_stats_open(void)
{
	const char *path = sysi_getenv("SYSI_STATS_FILE");
	struct stat st;
	long fd, p;
	struct sysi_stats_file *s;

	/* read once, at the constructor's call: the program may edit its environment later */
	unpatched_file = sysi_getenv("SYSI_UNPATCHED_FILE");
	unpatched_id = sysi_getenv("SYSI_UNPATCHED_ID");
	if (unpatched_file && !*unpatched_file)
		unpatched_file = 0;
	if (!path || !*path)
		return;
	fd = raw3(__NR_open, path, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		sysi_debugf2("cannot open SYSI_STATS_FILE ", path);
		return;
	}
	if (!sysi_fd_is(fd, sysi_getenv("SYSI_STATS_ID"))) {
		sysi_debugf2("SYSI_STATS_FILE is another file now (sysi gone?): ", path);
		raw1(__NR_close, fd);
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

/*
 * One line per module image left partly uninstrumented (sysi.h, SYSI_UNPATCHED_FILE):
 * "sites <refused> <fell> <path>" or, without a usable plan, "noplan <path>". One write to a
 * file opened O_APPEND: lines of concurrent processes do not interleave.
 */
void sysi_report_unpatched(const char *path, const struct sysi_left *left)
{
	char line[4200], *p;

	if (!unpatched_file || sysi_strlen(path) > 4096)
		return;
	if (left) {
		p = sysi_stpcpy(line, "sites ");
		p = sysi_fmt_udec(p, left->refused);
		*p++ = ' ';
		p = sysi_fmt_udec(p, left->fell);
		*p++ = ' ';
	} else {
		p = sysi_stpcpy(line, "noplan ");
	}
	p = sysi_stpcpy(p, path);
	*p++ = '\n';
	sysi_report_line(line, p - line);
}

/* Append one complete line to SYSI_UNPATCHED_FILE in one write; 1 when it was written. */
int sysi_report_line(const char *line, size_t n)
{
	long fd, w = -1;
	if (!unpatched_file)
		return 0;
	fd = raw3(__NR_open, unpatched_file, O_WRONLY | O_APPEND | O_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (sysi_fd_is(fd, unpatched_id))
		w = raw3(__NR_write, fd, line, n);
	raw1(__NR_close, fd);
	return w == (long)n;
}

/*
 * strace 6.1's name for the x32 call nr (SYSI_X32_BIT + n; the kernel reads the low 32 bits of
 * rax as an int, and the dispatcher passes that int): the x32 name, or the 64-bit name with
 * "#64" for a number only 64-bit calls have. Null for every other number.
 */
const char *sysi_x32_name(long nr)
{
	if (nr < SYSI_X32_BIT || nr >= SYSI_X32_BIT + SYSI_NX32)
		return 0;
	return sysi_x32_names[nr - SYSI_X32_BIT];
}

/*
 * The totals' counter of nr: its slot (0..1023), its x32 slot when strace names it (strace -c
 * counts x32 calls in a table of their own), else `other`.
 */
struct sysi_stats_syscall *sysi_stats_counter(long nr)
{
	if ((unsigned long)nr < SYSI_STATS_NSYSCALLS)
		return &sysi_stats->syscalls[nr];
	if (sysi_x32_name(nr))
		return &sysi_stats->x32[nr - SYSI_X32_BIT];
	return &sysi_stats->other;
}
