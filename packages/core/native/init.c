/* init.c — the constructor: environment, stats, hook, strategy runtimes, patching, marker. */
#include <asm/unistd.h>
#include "internal.h"
#include "vdso.h"

int sysi_ready;
int sysi_marker_on; /* the start marker was made: bracket later runtime work */

extern char **environ;

/*
 * ld.so passes a constructor (argc, argv, envp). libc's own (_init_first) sets environ; libsysi
 * runs before it when it is preloaded and libc is a patched copy that needs it (a cycle: ld.so
 * initialises the preloaded object first), so take the environment from ld.so then. The static
 * image's caller sets environ itself.
 */
__attribute__((constructor(101))) static void sysi_init(int argc, char **argv, char **envp)
{
	const char *d, *mk, *off;
	(void)argc;
	(void)argv;
	if (!environ)
		environ = envp;
	off = sysi_embedded_off();
	if (off) { /* another runtime runs, or a patched library came too late (embedded.c) */
		d = sysi_getenv("SYSI_DEBUG");
		sysi_debug_on = d && d[0] == '1';
		sysi_debug(off);
		return;
	}
	sysi_env_hide(); /* first: the program never sees sysi's variables (env.c) */
	d = sysi_getenv("SYSI_DEBUG");
	mk = sysi_getenv("SYSI_MARKER");
	sysi_debug_on = d && d[0] == '1';
	sysi_stats_open();
	sysi_env_report();
	sysi_filter_parse();
	sysi_signal_setup();
	sysi_load_hook();
	sysi_load_runtimes();
	sysi_vdso_register(); /* after the runtimes' slots (vdso.c) */
	sysi_process_modules(0);
	__atomic_store_n(&sysi_ready, 1, __ATOMIC_RELEASE);
	if (mk && mk[0] == '1') {
		raw1(SYSI_MARKER_NR, SYSI_MARKER_START);
		sysi_marker_on = 1;
	}
}

void sysi_runtime_work(int begin)
{
	if (sysi_marker_on)
		raw1(SYSI_MARKER_NR, begin ? SYSI_MARKER_WORK_BEGIN : SYSI_MARKER_WORK_END);
}
