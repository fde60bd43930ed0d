/*
 * exe.c — a patched copy run by `sysi run` names the original program (docs/patch.md, "`sysi
 * run` on a static program"): the kernel runs <cache>/patched/<hash>/<name>, so /proc/PID/exe
 * and AT_EXECFN name the copy; the program sees what it would natively:
 *
 *   - readlink/readlinkat whose result names the copy (/proc/self/exe, /proc/thread-self/exe,
 *     /proc/<pid>/exe, /proc/<pid>/fd/N of the copy opened...: the kernel's d_path of the
 *     copy) return the original's real path instead, with the kernel's rules for a short
 *     buffer (truncated, no NUL, the buffer's size returned) and for a path longer than a page
 *     (ENAMETOOLONG, proc_pid_readlink's d_path). Made where libsysi performs the call
 *     (dispatch.c sysi_perform, static builds only), so the hook counts and traces the result
 *     the program gets. A truncated result that could be the copy's (a prefix of its path) is
 *     asked again into a buffer of the runtime's own (the runtime's work: SYSI_MARKER brackets
 *     it).
 *   - AT_EXECFN names the path the caller gave, when the kernel's AT_EXECFN is the copy's path
 *     (the exec `sysi run` made); an exec the program makes keeps its own (natively, re-running
 *     /proc/self/exe gives "/proc/self/exe"). Written over the kernel's string when it fits
 *     (then /proc/PID/auxv agrees), else pointed at the string of SYSI_EXECFN in the initial
 *     environment block (which the program no longer sees: env.c hides it).
 *
 * `sysi run` sets (hidden from the program like every sysi variable, given back at its execs):
 *   SYSI_EXE_COPY  the copy's real path, which sysi-exec executes;
 *   SYSI_EXE       the original's real path (what /proc/self/exe gives natively);
 *   SYSI_EXECFN    the path the caller gave (what AT_EXECFN names natively).
 * A process whose image is not the copy (another program it execs) never gets the copy's path
 * from the kernel for its own exe, so nothing of its own is rewritten.
 */
#include <asm/unistd.h>
#include <elf.h>
#include <errno.h>
#include <sys/mman.h>
#include "../internal.h"

#define PATH_ROOM 4096 /* proc_pid_readlink's d_path buffer: one page, the NUL included */

static const char *copy, *orig;
static size_t copy_len, orig_len;

/* The value of NAME in the initial environment block env (as the kernel laid it out), or 0. */
static char *initial(char **env, const char *name)
{
	size_t n = sysi_strlen(name);
	for (; *env; env++)
		if (!sysi_strncmp(*env, name, n) && (*env)[n] == '=')
			return *env + n + 1;
	return 0;
}

/*
 * From sysi_static_init, before the constructors hide sysi's variables: the original block is
 * still whole. auxv: the vector as the kernel left it (moved later with its values).
 */
void sysi_static_exe_start(char **envp, uintptr_t *auxv)
{
	char *c = initial(envp, "SYSI_EXE_COPY"), *o = initial(envp, "SYSI_EXE");
	char *fn = initial(envp, "SYSI_EXECFN");
	if (!c || !*c || !o || !*o)
		return;
	copy = c;
	copy_len = sysi_strlen(c);
	orig = o;
	orig_len = sysi_strlen(o);
	for (; fn && auxv[0] != AT_NULL; auxv += 2) {
		char *k = (char *)auxv[1];
		size_t n;
		if (auxv[0] != AT_EXECFN || !k || sysi_strcmp(k, c))
			continue;
		n = sysi_strlen(fn);
		if (n <= copy_len)
			memcpy(k, fn, n + 1);
		else
			auxv[1] = (uintptr_t)fn;
	}
}

/*
 * Performed call c returned r (dispatch.c sysi_perform, readlink and readlinkat only): the
 * result the program gets.
 */
long sysi_static_readlink(const struct sysi_call *c, long r)
{
	int at = c->nr == __NR_readlinkat;
	char *buf = (char *)c->args[at ? 2 : 1];
	long size = c->args[at ? 3 : 2], n;
	char *own;

	if (!copy || r <= 0 || (size_t)r > copy_len || memcmp(buf, copy, (size_t)r))
		return r; /* an error, or not (a prefix of) the copy's path */
	if (r == size) { /* maybe truncated: the whole link, into a page of the runtime's own
			  * (not on the stack: a Go goroutine's may be 2 KiB) */
		sysi_runtime_work(1);
		own = (char *)raw6(__NR_mmap, 0, PATH_ROOM, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		n = -ENOMEM;
		if ((unsigned long)own < -4096ul) {
			n = at ? raw4(__NR_readlinkat, c->args[0], c->args[1], own, PATH_ROOM)
			       : raw3(__NR_readlink, c->args[0], own, PATH_ROOM);
			if (n != (long)copy_len || memcmp(own, copy, copy_len))
				n = -1;
			raw2(__NR_munmap, own, PATH_ROOM);
		}
		sysi_runtime_work(0);
		if (n < 0)
			return r;
	} else if ((size_t)r != copy_len) {
		return r;
	}
	if (orig_len >= PATH_ROOM)
		return -ENAMETOOLONG;
	n = (long)orig_len < size ? (long)orig_len : size;
	memcpy(buf, orig, (size_t)n);
	return n;
}
