/* exit_group from a second thread while the main thread blocks: the process exits with 42. */
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *run(void *arg)
{
	(void)arg;
	usleep(10000);
	syscall(SYS_exit_group, 42);
	return 0;
}

int main(void)
{
	pthread_t t;
	int p[2];
	char c;
	printf("exit_group test start\n");
	fflush(stdout);
	if (pipe(p) || pthread_create(&t, 0, run, 0))
		return 1;
	read(p[0], &c, 1); /* never returns: the other thread ends the process */
	return 0;
}
