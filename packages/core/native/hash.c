/*
 * hash.c — XXH64 (seed 0), streaming, for the plan checksum and the module identity hash
 * (sysi.h SYSI PLAN FORMAT). Bun.hash.xxHash64 computes the same on the TypeScript side.
 */
#include "internal.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;
	__builtin_memcpy(&v, p, 8);
	return v;
}

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;
	__builtin_memcpy(&v, p, 4);
	return v;
}

static uint64_t round1(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	return rotl(acc, 31) * P1;
}

static uint64_t merge(uint64_t h, uint64_t v)
{
	h ^= round1(0, v);
	return h * P1 + P4;
}

void sysi_xxh64_init(struct sysi_xxh64 *s)
{
	s->v[0] = P1 + P2;
	s->v[1] = P2;
	s->v[2] = 0;
	s->v[3] = -P1;
	s->total = 0;
	s->n = 0;
}

static void stripe(struct sysi_xxh64 *s, const unsigned char *p)
{
	for (int i = 0; i < 4; i++)
		s->v[i] = round1(s->v[i], rd64(p + 8 * i));
}

void sysi_xxh64_update(struct sysi_xxh64 *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	s->total += len;
	if (s->n) {
		while (len && s->n < 32) {
			s->buf[s->n++] = *p++;
			len--;
		}
		if (s->n < 32)
			return;
		stripe(s, s->buf);
		s->n = 0;
	}
	for (; len >= 32; p += 32, len -= 32)
		stripe(s, p);
	while (len--)
		s->buf[s->n++] = *p++;
}

uint64_t sysi_xxh64_final(const struct sysi_xxh64 *s)
{
	const unsigned char *p = s->buf, *end = s->buf + s->n;
	uint64_t h;
	if (s->total >= 32) {
		h = rotl(s->v[0], 1) + rotl(s->v[1], 7) + rotl(s->v[2], 12) + rotl(s->v[3], 18);
		for (int i = 0; i < 4; i++)
			h = merge(h, s->v[i]);
	} else {
		h = P5;
	}
	h += s->total;
	for (; p + 8 <= end; p += 8)
		h = rotl(h ^ round1(0, rd64(p)), 27) * P1 + P4;
	if (p + 4 <= end) {
		h = rotl(h ^ ((uint64_t)rd32(p) * P1), 23) * P2 + P3;
		p += 4;
	}
	for (; p < end; p++)
		h = rotl(h ^ (*p * P5), 11) * P1;
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

uint64_t sysi_xxh64(const void *data, size_t len)
{
	struct sysi_xxh64 s;
	sysi_xxh64_init(&s);
	sysi_xxh64_update(&s, data, len);
	return sysi_xxh64_final(&s);
}
