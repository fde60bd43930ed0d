/*
 * escape.c — execs that leave instrumentation behind. Every execve/execveat that reaches the
 * runtime (sysi_perform) is inspected before the kernel sees it; one whose new image will not
 * load libsysi is written to SYSI_UNPATCHED_FILE (sysi.h) as "exec KIND TID PATH":
 *
 *   setid    the kernel runs it set-user-ID/set-group-ID to other ids than the caller's real
 *            ones (AT_SECURE): the dynamic loader ignores LD_PRELOAD paths with a slash;
 *   caps     a non-root caller and file capabilities (security.capability): AT_SECURE too;
 *   static   an ELF without a dynamic loader (no PT_INTERP: static, static-pie): nothing reads
 *            LD_PRELOAD; unless it is static and carries sysi's note (the runtime linked in:
 *            `sysi patch`'s output, or the copy `sysi run` runs a static program as, which
 *            re-executes itself through /proc/self/exe);
 *   foreign  not an x86-64 ELF64 (a 32-bit program): libsysi cannot be loaded into it;
 *   go       a dynamically linked Go program without cgo (a Go build note or section, and no
 *            pthread_* name in .dynstr: pure Go linked by the external linker, the rule of the
 *            CLI's isGoWithoutCgo). LD_PRELOAD would load libsysi, but Go's runtime points %fs
 *            at its own per-M storage on every thread, so libsysi's initial-exec TLS would read
 *            and write the middle of runtime.m ("fatal: bad g in signal handler"). It is exec'd
 *            natively instead: without libsysi in LD_PRELOAD and without sysi's variables
 *            (env.c, SYSI_EXEC_NATIVE), so its own children run natively too;
 *
 * The environment is no reason any more: sysi's variables and libsysi in LD_PRELOAD are given
 * back to every other exec that reaches the runtime (env.c, sysi_exec_env), also after `env -i`
 * or a replaced LD_PRELOAD, and the child hides them again.
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

enum { E_NONE, E_SETID, E_CAPS, E_STATIC, E_FOREIGN, E_GO };
static const char *const kind_name[] = { "", "setid", "caps", "static", "foreign", "go" };
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
	unsigned char buf[PATH_BUF]; /* ELF header, program headers, dynamic entries, #! line,
				      * section headers, .dynstr */
	char names[2048];            /* .shstrtab, when it fits */
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

/* Is the section name at off of .shstrtab (sh, read into s->names when it fits) `want`? */
static int name_is(long fd, const Elf64_Shdr *sh, unsigned long off, const char *want,
		   struct scratch *s)
{
	size_t n = sysi_strlen(want) + 1;
	char got[32];

	if (off >= sh->sh_size || sh->sh_size - off < n)
		return 0;
	if (sh->sh_size <= sizeof s->names)
		return !memcmp(s->names + off, want, n);
	return pread_(fd, got, n, sh->sh_offset + off) == (long)n && !memcmp(got, want, n);
}

/* Does the section [off, off+size) of fd hold "pthread_"? Read a buffer at a time; 1 on a
 * failed read (the image is left alone, as without the check). */
static int has_pthread(long fd, unsigned long off, unsigned long size, struct scratch *s)
{
	static const char key[] = "pthread_";
	const size_t k = sizeof key - 1;

	for (unsigned long o = 0; o < size; o += sizeof s->buf - k) {
		unsigned long want = size - o < sizeof s->buf ? size - o : sizeof s->buf;
		if (pread_(fd, s->buf, want, off + o) != (long)want)
			return 1;
		for (unsigned long i = 0; i + k <= want; i++)
			if (s->buf[i] == 'p' && !memcmp(s->buf + i, key, k))
				return 1;
		if (want < sizeof s->buf)
			break;
	}
	return 0;
}

/* A dynamically linked ELF (eh): E_GO for Go without cgo (see the file comment), else E_NONE. */
static int go_kind(long fd, const Elf64_Ehdr *eh, struct scratch *s)
{
	const unsigned per = sizeof s->buf / sizeof(Elf64_Shdr);
	Elf64_Shdr strtab, dynstr;
	unsigned long link = 0;
	int go = 0, dynsym = 0;

	if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shnum == 0 ||
	    eh->e_shstrndx >= eh->e_shnum)
		return E_NONE;
	if (pread_(fd, &strtab, sizeof strtab, eh->e_shoff + eh->e_shstrndx * sizeof strtab) !=
	    sizeof strtab)
		return E_NONE;
	if (strtab.sh_size <= sizeof s->names &&
	    pread_(fd, s->names, strtab.sh_size, strtab.sh_offset) != (long)strtab.sh_size)
		return E_NONE;
	for (unsigned i = 0; i < eh->e_shnum; i += per) {
		unsigned n = eh->e_shnum - i < per ? eh->e_shnum - i : per;
		const Elf64_Shdr *sh = (const Elf64_Shdr *)s->buf;
		if (pread_(fd, s->buf, n * sizeof *sh, eh->e_shoff + i * sizeof *sh) !=
		    (long)(n * sizeof *sh))
			return E_NONE;
		for (unsigned j = 0; j < n; j++) {
			if (sh[j].sh_type == SHT_DYNSYM && !dynsym) {
				dynsym = 1;
				link = sh[j].sh_link;
			}
			if (!go && (name_is(fd, &strtab, sh[j].sh_name, ".note.go.buildid", s) ||
				    name_is(fd, &strtab, sh[j].sh_name, ".go.buildinfo", s)))
				go = 1;
		}
	}
	/* not Go, or no dynamic symbols (nothing imported from libc: LD_PRELOAD is harmless) */
	if (!go || !dynsym || link == 0 || link >= eh->e_shnum)
		return E_NONE;
	if (pread_(fd, &dynstr, sizeof dynstr, eh->e_shoff + link * sizeof dynstr) != sizeof dynstr)
		return E_NONE;
	/* runtime/cgo imports pthread_attr_init, pthread_create, …: its threads keep libc's %fs */
	return has_pthread(fd, dynstr.sh_offset, dynstr.sh_size, s) ? E_NONE : E_GO;
}

/*
 * Does the ELF in fd carry sysi's note (owner "SYSI", embedded.c): written by `sysi patch` (or
 * a static program's copy `sysi run` executes: a re-exec of /proc/self/exe), with the runtime
 * linked in? Then it is instrumented without the dynamic loader. Note headers are read one at a
 * time (a few per segment).
 */
#define NT_SYSI_PATCH_ 0x53595349u
static int sysi_patched(long fd, const Elf64_Ehdr *eh)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		unsigned long o = 0;
		if (pread_(fd, &ph, sizeof ph, eh->e_phoff + (unsigned long)i * sizeof ph) != sizeof ph)
			return 0;
		for (int k = 0; ph.p_type == PT_NOTE && k < 16 && o + 20 <= ph.p_filesz; k++) {
			uint32_t h[5]; /* namesz, descsz, type, the name's first 8 bytes */
			if (pread_(fd, h, sizeof h, ph.p_offset + o) != sizeof h)
				break;
			if (h[2] == NT_SYSI_PATCH_ && h[0] == 5 && !memcmp(&h[3], "SYSI", 5))
				return 1;
			o += 12 + ((h[0] + 3ul) & ~3ul) + ((h[1] + 3ul) & ~3ul);
		}
	}
	return 0;
}

/* Does the ELF in fd run without the dynamic loader (static, static-pie), or is it Go without
 * cgo? Else foreign/none. */
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
			return go_kind(fd, &eh, s);
		if (ph.p_type == PT_DYNAMIC) {
			dyn = 1;
			dyn_off = ph.p_offset;
			dyn_size = ph.p_filesz;
		}
	}
	if (!dyn)
		return sysi_patched(fd, &eh) ? E_NONE : E_STATIC;
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
 * execve/execveat: inspect, then perform with the environment sysi's variables given back
 * (env.c), or without them for a Go image that must run natively; a call that comes back frees
 * that environment and cancels its report line. The inspection runs whenever the runtime hides
 * sysi's variables (only `sysi run` sets both; its report only under SYSI_UNPATCHED_FILE).
 */
long sysi_escape_exec(struct sysi_call *c)
{
	int at = c->nr == __NR_execveat, kind = E_NONE, said = 0, envi = at ? 3 : 2;
	struct sysi_exec_env env;
	struct scratch *s = 0;
	long r;

	sysi_runtime_work(1);
	if (on || sysi_env_hiding)
		s = sysi_map_pages(sizeof *s);
	if (s) {
		s->path[0] = 0;
		kind = at ? file_kind(c->args[0], (const char *)c->args[1], c->args[4], s, 0)
			  : file_kind(AT_FDCWD, (const char *)c->args[0], 0, s, 0);
		if (kind != E_NONE && on)
			said = report(kind, s);
		/* unmapped before the call: a vfork child shares this address space */
		sysi_unmap(s, sizeof *s);
	}
	sysi_exec_env((const char *const *)c->args[envi], &env,
		      kind == E_GO ? SYSI_EXEC_NATIVE : SYSI_EXEC_INSTRUMENTED);
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
