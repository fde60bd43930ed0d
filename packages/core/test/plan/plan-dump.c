/* Reads a binary plan through sysi.h's structs and prints it in the line format of the
 * TypeScript cross-check (binary.test.ts). No validation beyond the sizes: the test compares. */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysi.h"

_Static_assert(sizeof(struct sysi_plan_header) == 176, "header size");
_Static_assert(offsetof(struct sysi_plan_header, checksum) == 16, "checksum offset");
_Static_assert(offsetof(struct sysi_plan_header, file_size) == 24, "file_size offset");
_Static_assert(offsetof(struct sysi_plan_header, module_size) == 160, "module_size offset");
_Static_assert(offsetof(struct sysi_plan_header, module_hash) == 168, "module_hash offset");
_Static_assert(sizeof(struct sysi_plan_strategy) == 8, "strategy size");
_Static_assert(sizeof(struct sysi_plan_site) == 24, "site size");
_Static_assert(sizeof(struct sysi_plan_option) == 64, "option size");
_Static_assert(sizeof(struct sysi_plan_tramp) == 32, "tramp size");
_Static_assert(offsetof(struct sysi_plan_header, build_id) == 120, "build_id offset");
_Static_assert(offsetof(struct sysi_plan_header, chain) == 152, "chain offset");
_Static_assert(offsetof(struct sysi_plan_option, vaddr) == 8, "option vaddr offset");
_Static_assert(offsetof(struct sysi_plan_option, aux) == 48, "option aux offset");

static void hex(const unsigned char *p, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		printf("%02x", p[i]);
}

int main(int argc, char **argv)
{
	struct stat st;
	int fd;
	const unsigned char *base;
	const struct sysi_plan_header *h;
	const char *strs;

	if (argc != 2 || (fd = open(argv[1], O_RDONLY)) < 0 || fstat(fd, &st) < 0)
		return 2;
	base = mmap(0, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (base == MAP_FAILED)
		return 2;
	h = (const void *)base;
	strs = (const char *)base + h->strings_off;
	printf("header %.8s %u %u %lu\n", h->magic, h->version, h->header_size, (unsigned long)h->file_size);
	printf("identity %lu %016lx %016lx\n", (unsigned long)h->module_size, (unsigned long)h->module_hash,
	       (unsigned long)h->checksum);
	printf("module %s\n", strs + h->module_path);
	printf("chain %s\n", strs + h->chain);
	printf("buildid ");
	hex(h->build_id, h->build_id_len);
	printf("\n");
	const struct sysi_plan_strategy *ss = (const void *)(base + h->strategies_off);
	for (uint32_t i = 0; i < h->nstrategies; i++)
		printf("strategy %u %s\n", i, strs + ss[i].name);
	const struct sysi_plan_site *sites = (const void *)(base + h->sites_off);
	const struct sysi_plan_option *opts = (const void *)(base + h->options_off);
	for (uint32_t i = 0; i < h->nsites; i++) {
		const struct sysi_plan_site *s = &sites[i];
		printf("site 0x%lx %d %u %u\n", (unsigned long)s->vaddr, s->nr, s->flags, s->noptions);
		for (uint32_t j = 0; j < s->noptions; j++) {
			const struct sysi_plan_option *o = &opts[s->first_option + j];
			printf("  option %s 0x%lx ", strs + ss[o->strategy].name, (unsigned long)o->vaddr);
			hex(o->old_bytes, o->len);
			printf(" ");
			hex(o->new_bytes, o->len);
			printf(" 0x%lx 0x%lx\n", (unsigned long)o->aux[0], (unsigned long)o->aux[1]);
		}
	}
	const struct sysi_plan_tramp *ts = (const void *)(base + h->tramps_off);
	for (uint32_t i = 0; i < h->ntrampolines; i++) {
		printf("tramp 0x%lx %s %s ", (unsigned long)ts[i].vaddr, strs + ss[ts[i].strategy].name,
		       strs + ts[i].kind);
		hex(base + h->blob_off + ts[i].blob_off, ts[i].size);
		printf("\n");
	}
	return 0;
}
