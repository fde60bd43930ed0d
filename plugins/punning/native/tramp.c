/*
 * tramp.c — builds a site's trampoline from the original window bytes and aux[1] (layout in
 * punning.h; the planner's src/encode.ts builds the same bytes and checks that every displacement
 * fits, so the checks here are a second line of defence).
 */
#include "punning.h"

static void put32(unsigned char *p, int32_t v)
{
	uint32_t u = (uint32_t)v;
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(u >> (8 * i));
}

static int32_t get32(const unsigned char *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			 (uint32_t)p[3] << 24);
}

static int fits32(long v)
{
	return v >= -0x80000000L && v <= 0x7fffffffL;
}

/* Copy window bytes [from, to) to out at run-time address at, fixing rip-relative disp32s. */
static int copy(unsigned char *out, uintptr_t at, const unsigned char *w, uintptr_t wstart,
		unsigned from, unsigned to, uint64_t aux1)
{
	for (unsigned i = from; i < to; i++)
		out[i - from] = w[i];
	for (int f = 0; f < 2; f++) {
		unsigned fx = PN_AUX_FIX(aux1, f), off = fx & 15, end = (fx >> 4) + 1;
		long disp;
		if (!off || off < from || off >= to)
			continue;
		/* same offsets inside the copy: the instruction moves by (at - (wstart + from)) */
		disp = (long)get32(w + off) - (long)(at - (wstart + from));
		if (!fits32(disp))
			return -1;
		(void)end;
		put32(out + off - from, (int32_t)disp);
	}
	return 0;
}

/*
 * The window's post instructions relocated to run at p (the final branch re-encoded with a
 * rel32), then `jmp site + 2 + post`; the bytes written, or -1.
 */
static int emit_post(unsigned char *out, uintptr_t p, uintptr_t site, const unsigned char *window,
		     uint64_t aux1)
{
	unsigned pre = PN_AUX_PRE(aux1), post = PN_AUX_POST(aux1), br = PN_AUX_BRANCH(aux1);
	unsigned blen = br == PN_BR_JMP8 || br == PN_BR_JCC8 ? 2 : br == PN_BR_JMP32 ? 5 :
			br == PN_BR_JCC32 ? 6 : 0;
	uintptr_t wstart = site - pre, back = site + 2 + post;
	unsigned pos = 0;
	long rel;

	if (blen > post)
		return -1;
	if (copy(out, p, window, wstart, pre + 2, pre + 2 + post - blen, aux1) < 0)
		return -1;
	pos = post - blen;
	if (br != PN_BR_NONE) {
		const unsigned char *b = window + pre + 2 + post - blen;
		uintptr_t end = wstart + pre + 2 + post, target;
		unsigned cc = 0;
		if (br == PN_BR_JMP8 || br == PN_BR_JCC8)
			target = end + (long)(signed char)b[1];
		else if (br == PN_BR_JMP32)
			target = end + (long)get32(b + 1);
		else
			target = end + (long)get32(b + 2);
		if (br == PN_BR_JCC8)
			cc = b[0] & 15;
		else if (br == PN_BR_JCC32)
			cc = b[1] & 15;
		if (br == PN_BR_JMP8 || br == PN_BR_JMP32) {
			out[pos] = 0xe9;
			rel = (long)(target - (p + pos + 5));
			if (!fits32(rel))
				return -1;
			put32(out + pos + 1, (int32_t)rel);
			pos += 5;
		} else {
			out[pos] = 0x0f;
			out[pos + 1] = (unsigned char)(0x80 | cc);
			rel = (long)(target - (p + pos + 6));
			if (!fits32(rel))
				return -1;
			put32(out + pos + 2, (int32_t)rel);
			pos += 6;
		}
	}
	/* jmp back */
	out[pos] = 0xe9;
	rel = (long)(back - (p + pos + 5));
	if (!fits32(rel))
		return -1;
	put32(out + pos + 1, (int32_t)rel);
	return (int)pos + 5;
}

int sysi_punning_build(unsigned char *out, uintptr_t t, uintptr_t site, const unsigned char *window,
		       uint64_t aux1)
{
	unsigned pre = PN_AUX_PRE(aux1);
	uintptr_t wstart = site - pre, p = t - PN_ENTRY_OFF(pre), slot;
	unsigned pos = 0;
	long rel;
	int n;

	if (copy(out, p, window, wstart, 0, pre, aux1) < 0)
		return -1;
	pos = pre;
	if (pre) { /* jmp L */
		out[pos++] = 0xeb;
		out[pos++] = 0x04;
	}
	/* I: syscall ; jmp R */
	out[pos++] = 0x0f; out[pos++] = 0x05; out[pos++] = 0xeb; out[pos++] = 0x12;
	/* L: lea -0x80(%rsp),%rsp */
	out[pos++] = 0x48; out[pos++] = 0x8d; out[pos++] = 0x64; out[pos++] = 0x24; out[pos++] = 0x80;
	/* lea S(%rip),%r11 */
	out[pos] = 0x4c; out[pos + 1] = 0x8d; out[pos + 2] = 0x1d;
	rel = (long)(site - (p + pos + 7));
	if (!fits32(rel))
		return -1;
	put32(out + pos + 3, (int32_t)rel);
	pos += 7;
	/* call *slot(%rip) */
	slot = ((p + pos) & ~(uintptr_t)(PN_PAGE - 1)) + PN_SLOT_OFF;
	out[pos] = 0xff; out[pos + 1] = 0x15;
	put32(out + pos + 2, (int32_t)(long)(slot - (p + pos + 6)));
	pos += 6;
	/* R: post instructions, jmp back */
	n = emit_post(out + pos, p + pos, site, window, aux1);
	return n < 0 ? -1 : (int)pos + n;
}

int sysi_punning_build_post(unsigned char *out, uintptr_t p, uintptr_t site, const unsigned char *window,
			    uint64_t aux1)
{
	return emit_post(out, p, site, window, aux1);
}

int sysi_punning_direct(unsigned char *out, uintptr_t p, unsigned pre)
{
	unsigned pos = pre + (pre ? 2 : 0) + 4 + 5 + 7; /* the call: after jmp L, I, lea, lea */
	uintptr_t stub = ((p + pos) & ~(uintptr_t)(PN_PAGE - 1)) + PN_STUB_OFF;

	if (out[pos] != 0xff || out[pos + 1] != 0x15)
		return -1;
	out[pos] = 0x90;
	out[pos + 1] = 0xe8;
	put32(out + pos + 2, (int32_t)(long)(stub - (p + pos + 6)));
	return 0;
}
