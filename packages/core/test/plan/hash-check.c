/* Prints libsysi's XXH64 (hash.c) of the file argv[1], fed whole and then in chunks of 1, 3,
 * 7, 31, 32, 33 and 100 bytes (the streaming path): one hex line each. hash.test.ts compares
 * every line with Bun.hash.xxHash64. */
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

int main(int argc, char **argv)
{
	static unsigned char buf[1 << 20];
	static const size_t chunks[] = { 1, 3, 7, 31, 32, 33, 100 };
	FILE *f;
	size_t n;

	if (argc != 2 || !(f = fopen(argv[1], "rb")))
		return 2;
	n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	printf("%016llx\n", (unsigned long long)sysi_xxh64(buf, n));
	for (unsigned c = 0; c < sizeof chunks / sizeof *chunks; c++) {
		struct sysi_xxh64 s;
		sysi_xxh64_init(&s);
		for (size_t at = 0; at < n; at += chunks[c])
			sysi_xxh64_update(&s, buf + at, n - at < chunks[c] ? n - at : chunks[c]);
		printf("%016llx\n", (unsigned long long)sysi_xxh64_final(&s));
	}
	return 0;
}
