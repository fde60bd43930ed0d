/* 8 threads, each pushing 2000 messages through its own pipe and reading them back. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define NT 8
#define N 2000

static void *run(void *arg)
{
	long id = (long)arg, sum = 0;
	int p[2];
	if (pipe(p))
		return (void *)-1L;
	for (long i = 0; i < N; i++) {
		long v = id * 100000 + i, r;
		if (write(p[1], &v, sizeof v) != sizeof v || read(p[0], &r, sizeof r) != sizeof r)
			return (void *)-1L;
		sum += r;
	}
	close(p[0]);
	close(p[1]);
	return (void *)sum;
}

int main(void)
{
	pthread_t t[NT];
	for (long i = 0; i < NT; i++)
		if (pthread_create(&t[i], 0, run, (void *)i))
			return 1;
	for (long i = 0; i < NT; i++) {
		void *r;
		pthread_join(t[i], &r);
		printf("thread %ld sum %ld\n", i, (long)r);
	}
	return 0;
}
