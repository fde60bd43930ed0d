/*
 * spans.c — where the trampolines run relocated program instructions, for the program's view of
 * a signal that arrives there (init.c pn_context). A trampoline copies the instructions of its
 * site's window to another address with their lengths unchanged (only a final branch is
 * re-encoded, tramp.c): the pre instructions at its start (before the call), the post
 * instructions at R (after it), and a succ tactic's second trampoline the post instructions
 * alone. A point k bytes into such a copy is the program's point k bytes into the original.
 *
 * The program may resume at that original point when it is where the patched code is entered
 * (the patch's jump at S; S + 2, the return point), or, after the call, when the bytes from it
 * to the window's end are the program's own. Elsewhere (before the call the original bytes would
 * make it unhooked; or the patch replaced them) the handler is shown the original point and its
 * return comes back into the copy (sysi.h watch_context's 5).
 *
 * Insert-only, read by signal handlers in any thread without a lock: a span is written before
 * the count that publishes it, a bigger array is published whole and the old one stays mapped.
 * Spans are added by one batch at a time (libsysi's module lock).
 */
#include <asm/unistd.h>
#include <sys/mman.h>
#include "punning.h"

struct spans {
	unsigned cap, n;
	struct pn_span e[];
};

static struct spans *spans;

int sysi_punning_span_add(const struct sysi_runtime_api *api, const struct pn_span *s)
{
	struct spans *t = spans, *nt;
	unsigned n = t ? t->n : 0;
	if (!t || n == t->cap) {
		/* libc and ld.so alone take ~1060 (a span per trampoline, two for tactics succ and
		 * neigh): start above that, so that start-up fills one array and copies none */
		unsigned cap = t ? t->cap * 2 : 2048;
		long r = api->syscall6(__NR_mmap, 0, (long)(sizeof *t + cap * sizeof t->e[0]),
				       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (r < 0 && r > -4096)
			return -1;
		nt = (struct spans *)r;
		nt->cap = cap;
		for (unsigned i = 0; i < n; i++)
			nt->e[i] = t->e[i];
		nt->n = n;
		__atomic_store_n(&spans, nt, __ATOMIC_RELEASE);
		t = nt;
	}
	t->e[n] = *s;
	__atomic_store_n(&t->n, n + 1, __ATOMIC_RELEASE);
	return 0;
}

const struct pn_span *sysi_punning_span_find(uintptr_t pc)
{
	const struct spans *t = __atomic_load_n(&spans, __ATOMIC_ACQUIRE);
	unsigned n = t ? __atomic_load_n(&t->n, __ATOMIC_ACQUIRE) : 0;
	for (unsigned i = 0; i < n; i++)
		if (pc >= t->e[i].start && pc < t->e[i].end)
			return &t->e[i];
	return 0;
}
