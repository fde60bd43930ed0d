/* sigstorm.c — profiling-timer signals arrive at random points while the program makes system
 * calls (through inline `syscall` sites and libc): in the kernel, in a hook, a trampoline, an
 * entry or a trap handler. Natively every delivery finds RIP in the program's own code (its
 * text or libc's), and a delivery at the inline site (the syscall, or right after it) may edit
 * r12, the loop's count of such deliveries, with effect. Prints the three checks (each 1, 1, 0
 * when right); exits 1 on a mismatch, with what was seen on stderr.
 *   sigstorm [ITERATIONS] */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

static volatile long signals, foreign, inwindow;
extern char storm_site[], storm_after[];
static volatile uintptr_t foreign_rip;
static uintptr_t lo[2], hi[2]; /* executable ranges: this program, libc */

static int ranges(struct dl_phdr_info *info, size_t size, void *data)
{
	int *n = data;
	(void)size;
	if (*n >= 2 || (info->dlpi_name[0] && !strstr(info->dlpi_name, "libc.so")))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			lo[*n] = info->dlpi_addr + ph->p_vaddr;
			hi[*n] = lo[*n] + ph->p_memsz;
			(*n)++;
			break;
		}
	}
	return 0;
}

static void on_prof(int sig, siginfo_t *si, void *p)
{
	greg_t *g = ((ucontext_t *)p)->uc_mcontext.gregs;
	uintptr_t rip = (uintptr_t)g[REG_RIP];
	(void)sig;
	(void)si;
	signals++;
	if (!((rip >= lo[0] && rip < hi[0]) || (rip >= lo[1] && rip < hi[1]))) {
		foreign++;
		foreign_rip = rip;
	}
	/* at the inline syscall or right after it, r12 is the loop's count of such signals */
	if (rip == (uintptr_t)storm_site || rip == (uintptr_t)storm_after) {
		inwindow++;
		g[REG_R12]++;
	}
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000, r12 = 0, sum = 0;
	int k = 0;
	struct sigaction sa;
	struct itimerval it = { { 0, 100 }, { 0, 100 } };

	dl_iterate_phdr(ranges, &k);
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_prof;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGPROF, &sa, 0);
	setitimer(ITIMER_PROF, &it, 0);
	for (long i = 0; i < n; i++) {
		long ret;
		__asm__ volatile("mov %[c], %%r12\n\t"
				 "storm_site: syscall\n"
				 "storm_after:\n\t"
				 "mov %%r12, %[c]"
				 : "=a"(ret), [c] "+r"(r12)
				 : "a"((long)SYS_getppid)
				 : "rcx", "r11", "r12", "memory");
		sum += ret == getppid();
		sum += syscall(SYS_getppid) == getppid();
	}
	memset(&it, 0, sizeof it);
	setitimer(ITIMER_PROF, &it, 0);
	printf("calls ok %d; r12 edits at the inline syscall all took effect %d; "
	       "handler saw a RIP outside the program and libc %d\n",
	       sum == 2 * n, r12 == inwindow, foreign != 0);
	if (r12 != inwindow)
		fprintf(stderr, "sigstorm: %ld edits of r12 took effect, of %ld\n", r12, (long)inwindow);
	if (foreign) {
		Dl_info di;
		int known = dladdr((void *)foreign_rip, &di);
		fprintf(stderr, "sigstorm: %ld of %ld signals at RIP %#lx (%s+%#lx, %s)\n", foreign, signals,
			(unsigned long)foreign_rip, known && di.dli_fname ? di.dli_fname : "?",
			known ? (unsigned long)(foreign_rip - (uintptr_t)di.dli_fbase) : 0UL,
			known && di.dli_sname ? di.dli_sname : "?");
		fprintf(stderr, "sigstorm: bytes there:");
		for (int i = 0; i < 8; i++)
			fprintf(stderr, " %02x", ((const unsigned char *)foreign_rip)[i]);
		fprintf(stderr, "\n");
	}
	return sum == 2 * n && r12 == inwindow && !foreign ? 0 : 1;
}
