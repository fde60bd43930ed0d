/*
 * trace-vdso.c — the vDSO's clock_gettime for trace timestamps (-t, -tt, -T): a call without a system
 * call, found in the vDSO's own symbol table (libc's clock_gettime could reach a patched site).
 * Falls back to the raw system call when the vDSO has no such symbol.
 */
#include <asm/unistd.h>
#include <elf.h>
#include <sys/auxv.h>
#include <time.h>
#include "trace-decode.h"

typedef int (*cgt_fn)(int, struct timespec *);
static cgt_fn vdso_cgt;
static int looked;

static void find(void)
{
	unsigned long base = getauxval(AT_SYSINFO_EHDR);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	const Elf64_Shdr *sh;
	const Elf64_Phdr *ph;
	unsigned long load = 0;
	looked = 1;
	if (!base || eh->e_shoff == 0)
		return;
	ph = (const Elf64_Phdr *)(base + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD) {
			load = ph[i].p_vaddr;
			break;
		}
	sh = (const Elf64_Shdr *)(base + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		const Elf64_Sym *sym;
		const char *str;
		unsigned long n;
		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
		str = (const char *)(base + sh[sh[i].sh_link].sh_offset);
		n = sh[i].sh_size / sizeof *sym;
		for (unsigned long k = 0; k < n; k++) {
			if (sym[k].st_shndx == SHN_UNDEF || !sym[k].st_value)
				continue;
			if (!sysi_strcmp(str + sym[k].st_name, "__vdso_clock_gettime")) {
				vdso_cgt = (cgt_fn)(base + sym[k].st_value - load);
				return;
			}
		}
	}
}

/* the runtime's own vDSO call is in progress on this thread: a fallback system call the vDSO
 * makes now is sysi's, not the program's (vdso.c catches the vDSO's calls) */
__thread char sysi_vdso_own __attribute__((tls_model("initial-exec")));

void sysi_trace_clock(int clk, long *sec, long *nsec)
{
	struct timespec ts = { 0, 0 };
	int r = -1;
	if (!looked)
		find();
	if (vdso_cgt) {
		sysi_vdso_own = 1;
		r = vdso_cgt(clk, &ts);
		sysi_vdso_own = 0;
	}
	if (r != 0)
		raw2(__NR_clock_gettime, clk, &ts);
	*sec = ts.tv_sec;
	*nsec = ts.tv_nsec;
}
