/*
 * tramp-check.c — test helper: reads lines "[B|P] t site aux1 windowhex" (hex numbers) on stdin
 * and prints the trampoline the runtime builder makes for each (hex, or "-" when it refuses):
 *   B (or no letter)  sysi_punning_build: t is the entry (the site's jump target)
 *   P                 sysi_punning_build_post (tactic succ's successor): t is the span start
 * windowhex is the window [site - pre, site + 2 + post) of aux1.
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "punning.h"

int main(void)
{
	char line[512], hex[64];
	unsigned long long t, site, aux1;
	while (fgets(line, sizeof line, stdin)) {
		unsigned char win[32] = { 0 }, out[256];
		const char *p = line;
		char mode = 'B';
		int n;
		if (line[0] == 'B' || line[0] == 'P')
			mode = *p++;
		if (sscanf(p, "%llx %llx %llx %63s", &t, &site, &aux1, hex) != 4)
			continue;
		for (size_t i = 0; i + 1 < strlen(hex) && i / 2 < sizeof win; i += 2)
			sscanf(hex + i, "%2hhx", &win[i / 2]);
		/* the builder reads the window at its run-time address: hand it the copy, then the
		 * addresses only enter the displacement arithmetic */
		if (mode == 'P')
			n = sysi_punning_build_post(out, (uintptr_t)t, (uintptr_t)site, win, aux1);
		else
			n = sysi_punning_build(out, (uintptr_t)t, (uintptr_t)site, win, aux1);
		if (n < 0) {
			puts("-");
			continue;
		}
		for (int i = 0; i < n; i++)
			printf("%02x", out[i]);
		putchar('\n');
	}
	return 0;
}
