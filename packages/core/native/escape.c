/*
 * escape.c — execs that leave instrumentation behind. Every execve/execveat that reaches the
 * runtime (sysi_perform) is inspected before the kernel sees it; one whose new image will not
 * load libsysi is written to SYSI_UNPATCHED_FILE (sysi.h) as "exec KIND TID PATH":
 *
 *   setid    the kernel runs it set-user-ID/set-group-ID to other ids than the caller's real
 *            ones (AT_SECURE): the dynamic loader ignores LD_PRELOAD paths with a slash;
 *   caps     a non-root caller and file capabilities (security.capability): AT_SECURE too;
 *   static   an ELF without a dynamic loader (no PT_INTERP: static, static-pie): nothing reads
 *            LD_PRELOAD;
 *   foreign  not an x86-64 ELF64 (a 32-bit program): libsysi cannot be loaded into it;
 *
 * The environment is no reason any more: sysi's variables and libsysi in LD_PRELOAD are given
 * back to every exec that reaches the runtime (env.c, sysi_exec_env), also after `env -i` or a
 * replaced LD_PRELOAD, and the child hides them again.
 *
 * A #! script is judged by its interpreter (as the kernel runs it). When the call returns (it
 * failed, nothing was executed), "execfail TID" cancels that thread's last line. Only under
 * `sysi run` (SYSI_UNPATCHED_FILE set).
 * The inspection's own system calls are bracketed as runtime work (SYSI_MARKER).
 */
#define _GNU_SOURCE
#include <asm/unistd.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include "internal.h"

#define SCRATCH 16384 /* one mapping per inspected exec, unmapped before the call */
#define PATH_BUF 4096
#define DEPTH 4       /* #! levels followed (the kernel allows 5 binfmt rewrites) */
#define PR_GET_NO_NEW_PRIVS_ 39
#define ST_NOSUID_ 2
#define VFS_CAP_EFFECTIVE_ 1

enum { E_NONE, E_SETID, E_CAPS, E_STATIC, E_FOREIGN };
static const char *const kind_name[] = { "", "setid", "caps", "static", "foreign" };
static int on;

/* After sysi_init (priority 101): only under `sysi run`, which collects the report. */
__attribute__((constructor(102))) static void escape_setup(void)
{
	const char *f = sysi_getenv("SYSI_UNPATCHED_FILE");
	on = f && *f;
}

struct scratch {
	char path[PATH_BUF];  /* the exec'd file's real path */
	char line[PATH_BUF + 64];
	unsigned char buf[PATH_BUF]; /* ELF header, program headers, dynamic entries, #! line */
};

static long pread_(long fd, void *b, size_t n, unsigned long off)
{
	return raw4(__NR_pread64, fd, b, n, off);
}

/* The kernel's AT_SECURE for this file: set-ID to other ids than the real ones, or file caps. */
static int secure_exec(long fd, const struct stat *st)
{
	unsigned ru, eu, su, rg, eg, sg, neu, neg;
	struct { long type, bsize, blocks, bfree, bavail, files, ffree, fsid, namelen, frsize,
		 flags, spare[4]; } sfs;
	uint32_t cap[6] = { 0 }; /* vfs_cap_data: magic_etc, then {permitted, inheritable} x2, rootid */
	int ignore;

	raw3(__NR_getresuid, &ru, &eu, &su);
	raw3(__NR_getresgid, &rg, &eg, &sg);
	/* no_new_privs or a nosuid mount: the kernel ignores the set-ID bits and file caps */
	ignore = raw1(__NR_prctl, PR_GET_NO_NEW_PRIVS_) == 1 ||
		 (raw2(__NR_fstatfs, fd, &sfs) == 0 && (sfs.flags & ST_NOSUID_));
	neu = !ignore && (st->st_mode & S_ISUID) ? st->st_uid : eu;
	/* S_ISGID without group execute is mandatory locking, not set-group-ID */
	neg = !ignore && (st->st_mode & S_ISGID) && (st->st_mode & S_IXGRP) ? st->st_gid : eg;
	if (neu != ru || neg != rg)
		return E_SETID;
	/* commoncap: a non-root caller gaining permitted or effective capabilities */
	if (!ignore && ru != 0 &&
	    raw4(__NR_fgetxattr, fd, "security.capability", cap, sizeof cap) >= 12 &&
	    ((cap[0] & VFS_CAP_EFFECTIVE_) || cap[1] || (cap[3] && (cap[0] >> 24) >= 2)))
		return E_CAPS;
	return E_NONE;
}

/* Does the ELF in fd run without the dynamic loader (static, static-pie)? Else foreign/none. */
static int elf_kind(long fd, struct scratch *s)
{
	Elf64_Ehdr eh;
	unsigned long dyn_off = 0, dyn_size = 0;
	int dyn = 0;

	if (pread_(fd, &eh, sizeof eh, 0) != sizeof eh)
		return E_NONE;
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
		return E_FOREIGN;
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0)
		return E_NONE;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread_(fd, &ph, sizeof ph, eh.e_phoff + (unsigned long)i * sizeof ph) != sizeof ph)
			return E_NONE;
		if (ph.p_type == PT_INTERP)
			return E_NONE;
		if (ph.p_type == PT_DYNAMIC) {
			dyn = 1;
			dyn_off = ph.p_offset;
			dyn_size = ph.p_filesz;
		}
	}
	if (!dyn)
		return E_STATIC;
	/* a dynamic section without PT_INTERP: a static-pie (DF_1_PIE) or the dynamic loader run
	 * as a program (which does honour LD_PRELOAD) */
	for (unsigned long o = 0; o < dyn_size; o += sizeof s->buf) {
		long n = pread_(fd, s->buf, sizeof s->buf, dyn_off + o);
		const Elf64_Dyn *d = (const Elf64_Dyn *)s->buf;
		if (n <= 0)
			break;
		for (long k = 0; k < n / (long)sizeof *d; k++) {
			if (d[k].d_tag == DT_NULL)
				return E_NONE;
			if (d[k].d_tag == DT_FLAGS_1)
				return d[k].d_un.d_val & DF_1_PIE ? E_STATIC : E_NONE;
		}
	}
	return E_NONE;
}

/* Open the file the kernel would run (O_PATH first: a FIFO must not block us). */
static long open_target(long dirfd, const char *path, long atflags, struct scratch *s)
{
	struct stat st;
	char *p;
	long fd = raw4(__NR_openat, dirfd, path,
		       O_PATH | O_CLOEXEC | (atflags & AT_SYMLINK_NOFOLLOW ? O_NOFOLLOW : 0), 0);
	if (fd < 0 && (atflags & AT_EMPTY_PATH)) {
		p = sysi_stpcpy(s->path, "/proc/self/fd/");
		*sysi_fmt_dec(p, dirfd) = 0;
		fd = raw3(__NR_open, s->path, O_PATH | O_CLOEXEC, 0);
	}
	if (fd < 0)
		return -1;
	if (raw2(__NR_fstat, fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		raw1(__NR_close, fd);
		return -1;
	}
	return fd;
}

/*
 * What keeps the file at (dirfd, path) from loading libsysi, following #! to the interpreter.
 * On the first level, s->path gets the file's real path.
 */
static int file_kind(long dirfd, const char *path, long atflags, struct scratch *s, int depth)
{
	struct stat st;
	char proc[32], *p;
	long opath, fd, n;
	int k;

	opath = open_target(dirfd, path, atflags, s);
	if (opath < 0)
		return E_NONE;
	p = sysi_stpcpy(proc, "/proc/self/fd/");
	*sysi_fmt_dec(p, opath) = 0;
	if (depth == 0) {
		n = raw3(__NR_readlink, proc, s->path, sizeof s->path - 1);
		s->path[n > 0 ? n : 0] = 0;
	}
	raw2(__NR_fstat, opath, &st);
	fd = raw3(__NR_open, proc, O_RDONLY | O_CLOEXEC, 0);
	raw1(__NR_close, opath);
	if (fd < 0) /* executable but not readable by us: nothing more to learn */
		return E_NONE;
	k = secure_exec(fd, &st);
	if (k == E_NONE) {
		n = pread_(fd, s->buf, 256, 0);
		if (n >= 4 && s->buf[0] == 0x7f && s->buf[1] == 'E' && s->buf[2] == 'L' &&
		    s->buf[3] == 'F') {
			k = elf_kind(fd, s);
		} else if (n > 2 && s->buf[0] == '#' && s->buf[1] == '!' && depth < DEPTH) {
			/* the kernel's binfmt_script: "#!" [blanks] interpreter [blank arg] */
			char *q = (char *)s->buf + 2, *end = (char *)s->buf + n;
			while (q < end && (*q == ' ' || *q == '\t'))
				q++;
			char *w = q;
			while (w < end && *w != ' ' && *w != '\t' && *w != '\n' && *w)
				w++;
			if (w < end && w > q) {
				char interp[256];
				memcpy(interp, q, w - q);
				interp[w - q] = 0;
				raw1(__NR_close, fd);
				return file_kind(AT_FDCWD, interp, 0, s, depth + 1);
			}
		}
	}
	raw1(__NR_close, fd);
	return k;
}

/* One line to the report; 0 when nothing was written. */
static int report(int kind, struct scratch *s)
{
	char *p = sysi_stpcpy(s->line, "exec ");
	p = sysi_stpcpy(p, kind_name[kind]);
	*p++ = ' ';
	p = sysi_fmt_udec(p, raw0(__NR_gettid));
	*p++ = ' ';
	p = sysi_stpcpy(p, s->path[0] ? s->path : "?");
	*p++ = '\n';
	return sysi_report_line(s->line, p - s->line);
}

/*
 * execve/execveat: the environment with sysi's variables again (env.c), inspect, then perform;
 * a call that comes back frees that environment and cancels its report line.
 */
long sysi_escape_exec(struct sysi_call *c)
{
	int at = c->nr == __NR_execveat, kind, said = 0, envi = at ? 3 : 2;
	struct sysi_exec_env env;
	struct scratch *s = 0;
	long r;

	sysi_runtime_work(1);
	sysi_exec_env((const char *const *)c->args[envi], &env);
	if (on)
		s = sysi_map_pages(sizeof *s);
	if (s) {
		s->path[0] = 0;
		kind = at ? file_kind(c->args[0], (const char *)c->args[1], c->args[4], s, 0)
			  : file_kind(AT_FDCWD, (const char *)c->args[0], 0, s, 0);
		if (kind != E_NONE)
			said = report(kind, s);
		/* unmapped before the call: a vfork child shares this address space */
		sysi_unmap(s, sizeof *s);
	}
	sysi_runtime_work(0);
	r = sysi_raw6(c->nr, c->args[0], c->args[1], envi == 2 ? (long)env.envp : c->args[2],
		      envi == 3 ? (long)env.envp : c->args[3], c->args[4], c->args[5]);
	sysi_runtime_work(1);
	sysi_exec_env_done(&env);
	if (said) {
		char line[40], *p = sysi_stpcpy(line, "execfail ");
		p = sysi_fmt_udec(p, raw0(__NR_gettid));
		*p++ = '\n';
		sysi_report_line(line, p - line);
	}
	sysi_runtime_work(0);
	return r;
}
