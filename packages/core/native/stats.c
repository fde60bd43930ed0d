/*
 * stats.c — the shared statistics file (sysi.h STATS FILE), mapped MAP_SHARED, and the
 * unpatched-modules file (SYSI_UNPATCHED_FILE), appended to.
 */
#include <asm/unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <stddef.h>
#include <sys/stat.h>
#include "internal.h"
#include "syscall-names.h"

_Static_assert(SYSI_NX32 <= SYSI_STATS_NX32, "an x32 slot for every named x32 number");
_Static_assert(SYSI_NI386 <= SYSI_STATS_NI386, "an i386 slot for every named i386 number");

/*
 * A process maps only the parts of the file it uses, each MAP_SHARED on its own: the header and
 * totals (bytes [0, 32768), owners included) and the x32 and i386 totals (one mapping) at open, and a count slab when
 * one of its threads claims it (sysi_stats_map, from count.c). The whole file (7 MiB, 256 slabs)
 * in every process counted against RLIMIT_MEMLOCK: mlockall(MCL_CURRENT | MCL_FUTURE), which
 * the kernel refuses when the process's mapped size exceeds it (without CAP_IPC_LOCK), failed
 * with ENOMEM under `ulimit -l 8192` where it succeeds natively.
 * `sysi_stats` points at the header mapping: its fields up to `slabs` are valid, nothing after.
 */
#define STATS_HEAD offsetof(struct sysi_stats_file, slabs)
#define STATS_X32 offsetof(struct sysi_stats_file, x32)
#define STATS_X32_LEN (sizeof(struct sysi_stats_file) - STATS_X32)
_Static_assert(STATS_HEAD % 4096 == 0 && STATS_X32 % 4096 == 0 && STATS_X32_LEN % 4096 == 0,
	       "stats file parts page-aligned");
SYSI_HOT_DATA struct sysi_stats_file *sysi_stats;
static struct sysi_stats_syscall *stats_x32; /* the x32 totals, then the i386 totals */
static const char *unpatched_file, *unpatched_id;
/* the file, to map slabs later: its path and "<st_dev>:<st_ino>" (copied: the program may
 * overwrite its environment) */
static char stats_path[512], stats_id[48];

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

/* Map bytes [off, off + len) of the stats file open as fd, MAP_SHARED; 0 on failure. */
static void *map_part(long fd, size_t off, size_t len)
{
	long p = raw6(__NR_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
	return p < 0 && p > -4096 ? 0 : (void *)p;
}

/* The stats file open (O_CLOEXEC), when it is the file `id` names and whole; else -1. */
static long open_stats(const char *path, const char *id)
{
	struct stat st;
	/* openat: the call a seccomp sandbox the program set up later most likely allows */
	long fd = raw4(__NR_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (!sysi_fd_is(fd, id) || raw2(__NR_fstat, fd, &st) < 0 ||
	    (size_t)st.st_size < sizeof(struct sysi_stats_file)) {
		raw1(__NR_close, fd);
		return -1;
	}
	return fd;
}

/*
 * Map bytes [off, off + len) of the stats file (count.c: a slab). The file is opened again by
 * its path (no descriptor stays open in the program) and must be the file mapped at start;
 * 0 when it is not (deleted, replaced, sysi gone) or the mapping fails (RLIMIT_MEMLOCK after
 * mlockall(MCL_FUTURE)): the caller counts on the totals. The caller brackets it as runtime work.
 */
void *sysi_stats_map(size_t off, size_t len)
{
	long fd;
	void *p;
	if (!sysi_stats || !stats_path[0] || (fd = open_stats(stats_path, stats_id)) < 0)
		return 0;
	p = map_part(fd, off, len);
	raw1(__NR_close, fd);
	return p;
}

void sysi_stats_open(void)
{
	const char *path = sysi_getenv("SYSI_STATS_FILE");
	struct stat st;
	long fd;
	struct sysi_stats_file *s;
	struct sysi_stats_syscall *x;
	char *p;

	/* read once, at the constructor's call: the program may edit its environment later */
	unpatched_file = sysi_getenv("SYSI_UNPATCHED_FILE");
	unpatched_id = sysi_getenv("SYSI_UNPATCHED_ID");
	if (unpatched_file && !*unpatched_file)
		unpatched_file = 0;
	if (!path || !*path)
		return;
	fd = open_stats(path, sysi_getenv("SYSI_STATS_ID"));
	if (fd < 0) {
		sysi_debugf2("cannot open SYSI_STATS_FILE (or another file now, or too small): ", path);
		return;
	}
	s = map_part(fd, 0, STATS_HEAD);
	x = s ? map_part(fd, STATS_X32, STATS_X32_LEN) : 0;
	if (x && sysi_strlen(path) < sizeof stats_path && raw2(__NR_fstat, fd, &st) == 0) {
		memcpy(stats_path, path, sysi_strlen(path) + 1);
		p = sysi_fmt_udec(stats_id, st.st_dev);
		*p++ = ':';
		*sysi_fmt_udec(p, st.st_ino) = 0;
	}
	raw1(__NR_close, fd);
	if (!x) {
		if (s)
			raw2(__NR_munmap, s, STATS_HEAD);
		return;
	}
	if (s->version == 0) {
		/* zero file: set the header (every writer writes the same bytes) */
		memcpy(s->magic, SYSI_STATS_MAGIC, 8);
		s->size = sizeof *s;
		__atomic_store_n(&s->version, SYSI_STATS_VERSION, __ATOMIC_RELEASE);
	}
	if (memcmp(s->magic, SYSI_STATS_MAGIC, 8) || s->version != SYSI_STATS_VERSION ||
	    s->size != sizeof *s) {
		sysi_debugf2("SYSI_STATS_FILE has a bad header: ", path);
		raw2(__NR_munmap, s, STATS_HEAD);
		raw2(__NR_munmap, x, STATS_X32_LEN);
		return;
	}
	stats_x32 = x;
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
		return &stats_x32[nr - SYSI_X32_BIT];
	return &sysi_stats->other;
}

/*
 * The totals' counter of the i386 number nr (an `int $0x80` call, --complete's catch-all): its
 * i386 slot when strace names it (strace -c counts them in a table "for 32 bit mode"), else
 * `other`. Null without a stats file.
 */
struct sysi_stats_syscall *sysi_stats_i386_counter(long nr)
{
	if (!sysi_stats)
		return 0;
	if ((unsigned long)nr < SYSI_NI386 && sysi_i386_names[nr])
		return &stats_x32[offsetof(struct sysi_stats_file, i386) / sizeof *stats_x32 -
				  offsetof(struct sysi_stats_file, x32) / sizeof *stats_x32 + nr];
	return &sysi_stats->other;
}
