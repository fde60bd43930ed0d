/*
 * dlopen of a library with its own syscall sites while another thread keeps making syscalls:
 * the runtime patches the new module after dlopen returns, atomically per site.
 * The library's site uses syscall number 100002 (ENOSYS), so a count hook can tell it apart.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile int stop;
static volatile long spins;

static void *spin(void *arg)
{
	(void)arg;
	while (!stop) {
		getppid();
		spins++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char path[PATH_MAX];
	pthread_t t;
	void *h, *r;
	long (*fn)(void);
	char *slash;

	(void)argc;
	snprintf(path, sizeof path, "%s", argv[0]);
	slash = strrchr(path, '/');
	snprintf(slash ? slash + 1 : path, sizeof path - (slash ? (size_t)(slash + 1 - path) : 0),
		 "libdl-sites.so");
	pthread_create(&t, 0, spin, 0);
	while (spins < 100) /* the spinner is inside patched libc code while we dlopen */
		sched_yield();
	h = dlopen(path, RTLD_NOW);
	if (!h) {
		printf("dlopen failed\n");
		return 1;
	}
	fn = (long (*)(void))dlsym(h, "dl_sites_call");
	for (int i = 0; i < 3; i++)
		printf("library site returned %ld\n", fn());
	stop = 1;
	pthread_join(t, &r);
	printf("spinner ran: %d\n", spins >= 100);
	return 0;
}
