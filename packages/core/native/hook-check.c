/*
 * hook-check.c — `sysi-hook-check HOOK.so`: load a hook library the way libsysi's load_hook
 * does (dlopen RTLD_NOW | RTLD_LOCAL, then dlsym "sysi_hook"), so that `sysi run` and
 * `sysi env` can refuse a bad hook before the program starts. Run with libsysi.so in
 * LD_PRELOAD (as the program will be), so the hook's references to libsysi's exports resolve.
 * Prints nothing and exits 0 when the hook loads and has sysi_hook; else prints dlerror()'s
 * reason as one line on stdout and exits 1 (2: usage).
 */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	void *lib;
	const char *err;

	if (argc != 2) {
		fputs("usage: sysi-hook-check HOOK.so\n", stderr);
		return 2;
	}
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		err = dlerror();
		printf("cannot be loaded: %s\n", err ? err : "unknown error");
		return 1;
	}
	dlerror();
	if (!dlsym(lib, "sysi_hook")) {
		err = dlerror();
		printf("has no sysi_hook function: %s\n", err ? err : "sysi_hook is NULL");
		return 1;
	}
	return 0;
}
