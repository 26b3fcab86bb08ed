/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and final XOR
 * 0xFFFFFFFF): the checksum of every ForestFS structure (docs/FORMAT.md), here for buffers
 * large enough that a synchronous FFI call (~60 ns) is cheaper than the JavaScript loop.
 *
 * x86-64 with SSE4.2: the crc32 instruction, eight bytes at a time, on three independent
 * streams (the instruction has a latency of three cycles and a throughput of one), whose
 * results are joined with precomputed "shift by n zero bytes" operators. Elsewhere, or when
 * the CPU lacks SSE4.2 (checked once at run time; FORESTFS_NATIVE_CRC_TABLES=1 forces it),
 * slicing-by-8 tables.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ffs.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static int table_ready;

static void make_table(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][b] = c;
	}
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = table[0][b];
		for (int t = 1; t < 8; t++) {
			c = table[0][c & 0xff] ^ (c >> 8);
			table[t][b] = c;
		}
	}
	table_ready = 1;
}

/* Raw CRC state update (no pre/post inversion), portable. */
static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n > 0 && ((uintptr_t)p & 7)) {
		c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		n--;
	}
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		uint32_t lo = c ^ (uint32_t)w;
		uint32_t hi = (uint32_t)(w >> 32);
		c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
		    table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
		    table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n > 0) {
		c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		n--;
	}
	return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>

#define HW 1
/* Stream length for the three-way loop; the shift operator below is for exactly this. */
#define STRIDE 1024u

/*
 * Multiplication of two CRC states as polynomials modulo P (bit-reflected), and the
 * operator "append n zero bytes" as a multiplication by x^(8n) mod P: crc(A || 0^n) for the
 * raw state is mulmod(state, x^(8n)).
 */
static uint32_t mulmod(uint32_t a, uint32_t b)
{
	uint32_t prod = 0;
	for (int i = 0; i < 32; i++) {
		if (a & 0x80000000u)
			prod ^= b;
		a <<= 1;
		b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
	}
	return prod;
}

/* x^(8n) mod P, reflected. */
static uint32_t xpow8n(size_t n)
{
	uint32_t result = 0x80000000u; /* x^0 */
	uint32_t sq = 0x00800000u;     /* x^8 */
	while (n) {
		if (n & 1)
			result = mulmod(result, sq);
		sq = mulmod(sq, sq);
		n >>= 1;
	}
	return result;
}

static uint32_t shift_stride; /* x^(8*STRIDE) */
static uint32_t shift_table[4][256];
static int hw_state; /* 0 unknown, 1 yes, -1 no */

static void make_shift(void)
{
	shift_stride = xpow8n(STRIDE);
	/* mulmod(v, shift_stride) as four table look-ups by byte of v. */
	for (int k = 0; k < 4; k++)
		for (uint32_t b = 0; b < 256; b++)
			shift_table[k][b] = mulmod(b << (8 * k), shift_stride);
}

static inline uint32_t shift(uint32_t v)
{
	return shift_table[0][v & 0xff] ^ shift_table[1][(v >> 8) & 0xff] ^
	       shift_table[2][(v >> 16) & 0xff] ^ shift_table[3][v >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n > 0 && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8(c, *p++);
		n--;
	}
	/* Three streams of STRIDE bytes each: A, B, C; crc(A||B||C) = shift(shift(a)^b)^c. */
	while (n >= 3 * STRIDE) {
		uint64_t a = c, b = 0, d = 0;
		const uint8_t *pa = p, *pb = p + STRIDE, *pc = p + 2 * STRIDE;
		for (size_t i = 0; i < STRIDE; i += 8) {
			uint64_t wa, wb, wc;
			memcpy(&wa, pa + i, 8);
			memcpy(&wb, pb + i, 8);
			memcpy(&wc, pc + i, 8);
			a = _mm_crc32_u64(a, wa);
			b = _mm_crc32_u64(b, wb);
			d = _mm_crc32_u64(d, wc);
		}
		c = shift(shift((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
		p += 3 * STRIDE;
		n -= 3 * STRIDE;
	}
	uint64_t c64 = c;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c64 = _mm_crc32_u64(c64, w);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n > 0) {
		c = _mm_crc32_u8(c, *p++);
		n--;
	}
	return c;
}

static int have_hw(void)
{
	if (hw_state == 0) {
		__builtin_cpu_init();
		/* FORESTFS_NATIVE_CRC_TABLES=1 forces the portable path (tests of the fallback). */
		const char *tables = getenv("FORESTFS_NATIVE_CRC_TABLES");
		hw_state = __builtin_cpu_supports("sse4.2") && !(tables && *tables && *tables != '0') ? 1 : -1;
		if (hw_state > 0)
			make_shift();
	}
	return hw_state > 0;
}
#else
#define HW 0
#endif

static uint32_t crc_raw(uint32_t c, const uint8_t *p, size_t n)
{
#if HW
	if (have_hw())
		return crc_hw(c, p, n);
#endif
	if (!table_ready)
		make_table();
	return crc_sw(c, p, n);
}

uint32_t ffs_crc32c(uint32_t seed, const void *buf, uint64_t offset, uint64_t len)
{
	return ~crc_raw(~seed, (const uint8_t *)buf + offset, (size_t)len);
}

void ffs_crc32c_records(uint8_t *frame, const uint32_t *spans, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		uint32_t at = spans[2 * i], len = spans[2 * i + 1];
		uint32_t c = ~crc_raw(0xFFFFFFFFu, frame + at, len);
		/* Little-endian, right after the bytes it covers. */
		frame[at + len] = (uint8_t)c;
		frame[at + len + 1] = (uint8_t)(c >> 8);
		frame[at + len + 2] = (uint8_t)(c >> 16);
		frame[at + len + 3] = (uint8_t)(c >> 24);
	}
}

int ffs_crc32c_hw(void)
{
#if HW
	return have_hw();
#else
	return 0;
#endif
}
