/*
 * stub.h — the header `sysi patch --standalone` writes right after the stub's code (at the
 * linker script's sysi_stub_header, 16-aligned). Every address is an offset from the header's own
 * address, so the stub needs no relocation: OUT's segments move together with its load bias.
 * Little-endian, fixed width; the writer is @sysi/core's src/patch/standalone.ts.
 */
#ifndef SYSI_STUB_H
#define SYSI_STUB_H
#include <stdint.h>

#define SYSI_STUB_MAGIC "SYSISTB" /* and a NUL: 8 bytes */
#define SYSI_STUB_VERSION 1
#define SYSI_STUB_MAX_LIBS 8
#define SYSI_STUB_FD_DIGITS 10 /* width of a path's fd placeholder: "/proc/self/fd/" + 10 */

struct sysi_stub_lib {
	int64_t bytes;	/* the library's file, relative to the header */
	uint64_t size;	/* its size in bytes */
	int64_t path;	/* its fd placeholder in the sysi note (SYSI_STUB_FD_DIGITS bytes), or 0 */
	int64_t key;	/* the setting naming it in the note ("SYSI_RUNTIMES="), or 0 */
	uint64_t patch; /* offset in its bytes of a placeholder for libsysi's fd (a hook library's
			 * DT_NEEDED, added by the writer: the hook's sysi_syscall resolves there), or 0 */
};

struct sysi_stub_header {
	char magic[8];	  /* "SYSISTB\0" */
	uint32_t version; /* SYSI_STUB_VERSION */
	uint32_t nlibs;	  /* libs[0] is libsysi (dlopen'ed by the stub), then what it loads */
	int64_t debug;	  /* the d_un of OUT's DT_DEBUG entry (ld.so's &r_debug), relative */
	int64_t reserved; /* 0 */
	struct sysi_stub_lib libs[SYSI_STUB_MAX_LIBS];
};

#endif
