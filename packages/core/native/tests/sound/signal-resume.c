/*
 * Class 6, a resume address written into RIP by a signal handler: the SIGFPE handler sets
 * REG_RIP to `sound_resume`, the label right after an inline getppid `syscall`. The first call
 * divides by zero and resumes there; the second divides by one, makes the syscall and falls
 * through into the same instructions. Nothing but the handler's store names the label.
 * Prints one line per call and exits 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

extern const char sound_resume[] __asm__("sound_resume");
static volatile int faults;

static void on_fpe(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	faults++;
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP] = (greg_t)sound_resume;
}

/* Divides 100 by d (SIGFPE when d == 0), calls getppid, then adds 7 at sound_resume. */
__attribute__((noinline, noipa)) static long attempt(long d)
{
	long v = 0;
	__asm__ volatile("mov $100, %%eax\n\t"
			 "cqto\n\t"
			 "idivq %1\n\t"
			 "mov %%rax, %0\n\t"
			 "mov $110, %%eax\n\t" /* getppid */
			 "syscall\n"
			 "sound_resume:\n\t"
			 "add $7, %0"
			 : "+r"(v)
			 : "r"(d)
			 : "rax", "rdx", "rcx", "r11", "memory");
	return v;
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fpe;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGFPE, &sa, NULL);
	printf("d=0: %ld\n", attempt(0));
	printf("d=1: %ld\n", attempt(1));
	printf("faults %d\n", faults);
	return 0;
}
