/*
 * spawn.c — startup timing: wall time of posix_spawn + waitpid of one command, many runs.
 *
 *   spawn [--runs R] [--warmup W] [--fresh-dir VAR [--fresh-link NAME=TARGET]] -- PROGRAM [ARG…]
 *
 * The child inherits this process's environment (the harness sets it: that is how the
 * "launcher path" row starts /bin/true with the environment `sysi env` printed); its stdout and
 * stderr go to /dev/null. With --fresh-dir VAR every run (warm-up included) gets its own new
 * empty directory in VAR (made before and removed after the timed part), e.g. a cold cache;
 * --fresh-link puts one symlink NAME -> TARGET in it (e.g. keep built runtimes, drop plans).
 * Prints one JSON line: {"runs":R,"ms":[…],"median":…,"min":…,"max":…,"fail":F,"status":S}
 * where F counts runs that did not exit 0 and S is the first such wait status (0 if none).
 *
 * Build: cc -O2 -Wall -Wextra -o spawn spawn.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void die(const char *msg)
{
	fprintf(stderr, "spawn: error: %s\n", msg);
	exit(2);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static long parse_count(const char *s, const char *what)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *s == 0 || *end != 0 || v < 0 || v > 1000000) {
		fprintf(stderr, "spawn: error: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

/* dir/NAME -> TARGET for spec "NAME=TARGET". */
static void make_link(const char *dir, const char *spec)
{
	char path[4096];
	const char *eq = strchr(spec, '=');
	int len = snprintf(path, sizeof path, "%s/%.*s", dir, (int)(eq - spec), spec);
	if (len < 0 || (size_t)len >= sizeof path)
		die("--fresh-link path too long");
	if (symlink(eq + 1, path) != 0)
		die("symlink failed");
}

/* One run; returns the wait status, stores the elapsed time. */
static int run_once(char **argv, const posix_spawn_file_actions_t *fa, double *ms)
{
	pid_t pid;
	int status;
	double t0 = now_ms();
	int err = posix_spawn(&pid, argv[0], fa, NULL, argv, environ);
	if (err != 0) {
		fprintf(stderr, "spawn: error: cannot start %s: %s\n", argv[0], strerror(err));
		exit(2);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid failed");
	*ms = now_ms() - t0;
	return status;
}

int main(int argc, char **argv)
{
	long runs = 100, warmup = 3;
	const char *fresh = NULL, *link = NULL;
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
		if (i + 1 >= argc)
			die("option without a value");
		if (strcmp(argv[i], "--runs") == 0)
			runs = parse_count(argv[i + 1], "--runs");
		else if (strcmp(argv[i], "--warmup") == 0)
			warmup = parse_count(argv[i + 1], "--warmup");
		else if (strcmp(argv[i], "--fresh-dir") == 0)
			fresh = argv[i + 1];
		else if (strcmp(argv[i], "--fresh-link") == 0)
			link = argv[i + 1];
		else
			die("usage: spawn [--runs R] [--warmup W] [--fresh-dir VAR [--fresh-link NAME=TARGET]] -- PROGRAM [ARG…]");
	}
	if (link != NULL && (fresh == NULL || strchr(link, '=') == NULL))
		die("--fresh-link NAME=TARGET needs --fresh-dir");
	if (i + 1 >= argc)
		die("no program given (after --)");
	if (runs < 1)
		die("--runs must be >= 1");
	char **cmd = argv + i + 1;

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);

	double *ms = calloc((size_t)runs, sizeof(double));
	double *sorted = calloc((size_t)runs, sizeof(double));
	if (ms == NULL || sorted == NULL)
		die("out of memory");
	long fail = 0;
	int first_status = 0;
	for (long r = -warmup; r < runs; r++) {
		char dir[] = "/tmp/sysi-bench-fresh-XXXXXX";
		if (fresh != NULL) {
			if (mkdtemp(dir) == NULL)
				die("mkdtemp failed");
			if (setenv(fresh, dir, 1) != 0)
				die("setenv failed");
			if (link != NULL)
				make_link(dir, link);
		}
		double t;
		int status = run_once(cmd, &fa, &t);
		if (fresh != NULL)
			nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		if (r < 0)
			continue;
		ms[r] = t;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			if (fail++ == 0)
				first_status = status;
		}
	}
	memcpy(sorted, ms, sizeof(double) * (size_t)runs);
	qsort(sorted, (size_t)runs, sizeof(double), cmp_double);
	double median = runs % 2 ? sorted[runs / 2] : (sorted[runs / 2 - 1] + sorted[runs / 2]) / 2;

	printf("{\"runs\":%ld,\"ms\":[", runs);
	for (long r = 0; r < runs; r++)
		printf("%s%.4f", r ? "," : "", ms[r]);
	printf("],\"median\":%.4f,\"min\":%.4f,\"max\":%.4f,\"fail\":%ld,\"status\":%d}\n", median, sorted[0],
	       sorted[runs - 1], fail, first_status);
	return fflush(stdout) == 0 ? 0 : 1;
}
