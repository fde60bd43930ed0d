/*
 * dlopen.c — dlopen/dlmopen interposition: call the real one, then patch the modules it
 * loaded (under the module lock; patches are written atomically per site, see patch.c). When
 * libsysi is a patched library's dependency it comes after libc in the lookup scope: the
 * program's calls reach libc's dlopen, not this one, and libsysi's own go to libc's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "internal.h"

static void *(*real_dlopen)(const char *, int);
static void *(*real_dlmopen)(Lmid_t, const char *, int);
/* this file's own dlopen and dlmopen (the plain names may resolve to libc's through the GOT) */
extern __typeof(dlopen) sysi_own_dlopen __attribute__((visibility("hidden"), nothrow));
extern __typeof(dlmopen) sysi_own_dlmopen __attribute__((visibility("hidden"), nothrow));

void *sysi_real_dlopen(const char *file, int mode)
{
	if (!real_dlopen)
		real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	if (!real_dlopen) { /* loaded after libc (a patched library's dependency): libc's comes first */
		real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_DEFAULT, "dlopen");
		if (real_dlopen == sysi_own_dlopen)
			real_dlopen = 0;
	}
	if (!real_dlopen)
		sysi_die("cannot find the real dlopen");
	return real_dlopen(file, mode);
}

SYSI_EXPORT void *dlopen(const char *file, int mode)
{
	void *h = sysi_real_dlopen(file, mode);
	if (h && __atomic_load_n(&sysi_ready, __ATOMIC_ACQUIRE))
		sysi_process_modules(1);
	return h;
}

SYSI_EXPORT void *dlmopen(Lmid_t lmid, const char *file, int mode)
{
	void *h;
	if (!real_dlmopen)
		real_dlmopen = (void *(*)(Lmid_t, const char *, int))dlsym(RTLD_NEXT, "dlmopen");
	if (!real_dlmopen) {
		real_dlmopen = (void *(*)(Lmid_t, const char *, int))dlsym(RTLD_DEFAULT, "dlmopen");
		if (real_dlmopen == sysi_own_dlmopen)
			real_dlmopen = 0;
	}
	if (!real_dlmopen)
		sysi_die("cannot find the real dlmopen");
	h = real_dlmopen(lmid, file, mode);
	if (h && __atomic_load_n(&sysi_ready, __ATOMIC_ACQUIRE))
		sysi_process_modules(1);
	return h;
}

extern __typeof(sysi_own_dlopen) sysi_own_dlopen __attribute__((alias("dlopen")));
extern __typeof(sysi_own_dlmopen) sysi_own_dlmopen __attribute__((alias("dlmopen")));
