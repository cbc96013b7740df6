/* CRC32C (Castagnoli) kernels for codec._fast._crc32c.
 *
 * Two paths with one contract: crc32c_update(crc, buf, len) continues a finished CRC value
 * (zlib convention), crc32c_copy(crc, dst, src, len) also copies src to dst in the same pass, so
 * that verifying a payload while loading it reads the memory once.
 *
 * Hardware path (x86-64 with SSE4.2, chosen at run time): three independent CRC streams over
 * consecutive blocks hide the 3-cycle latency of the crc32 instruction; the streams are joined
 * with tables that apply "append N zero bytes" to a CRC register (method of M. Adler).
 * Software path: slicing-by-8 tables.
 */
#ifndef CODEC_CRC32C_IMPL_H
#define CODEC_CRC32C_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CRC32C_POLY 0x82f63b78u
#define CRC32C_LONG 8192
#define CRC32C_SHORT 256
#define CRC32C_PREFETCH 2048

static uint32_t crc32c_table[8][256];
static uint32_t crc32c_long[4][256];
static uint32_t crc32c_short[4][256];
static int crc32c_have_hw = 0;

static uint32_t gf2_matrix_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1) sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_matrix_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_matrix_times(mat, mat[n]);
}

/* Put the operator that appends four zero bits to a CRC register in odd (even is scratch). */
static void crc32c_four_zero_bits(uint32_t *even, uint32_t *odd) {
    uint32_t row = 1;
    odd[0] = CRC32C_POLY; /* one zero bit */
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_matrix_square(even, odd); /* two zero bits */
    gf2_matrix_square(odd, even); /* four zero bits */
}

/* Operator that appends len zero bytes to a CRC register; len must be a power of two. */
static void crc32c_zeros_op(uint32_t *even, size_t len) {
    uint32_t odd[32];
    crc32c_four_zero_bits(even, odd);
    do {
        gf2_matrix_square(even, odd);
        len >>= 1;
        if (len == 0) return;
        gf2_matrix_square(odd, even);
        len >>= 1;
    } while (len);
    memcpy(even, odd, sizeof(odd));
}

static void crc32c_zeros(uint32_t zeros[][256], size_t len) {
    uint32_t op[32];
    crc32c_zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++) {
        zeros[0][n] = gf2_matrix_times(op, n);
        zeros[1][n] = gf2_matrix_times(op, n << 8);
        zeros[2][n] = gf2_matrix_times(op, n << 16);
        zeros[3][n] = gf2_matrix_times(op, n << 24);
    }
}

static inline uint32_t crc32c_shift(uint32_t zeros[][256], uint32_t crc) {
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

static inline uint64_t crc32c_load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8); /* unaligned-safe; compiles to one load */
    return v;
}

/* ---- software: slicing-by-8 (little-endian loads; big-endian hosts use the byte loop) ---- */
static uint32_t crc32c_sw(uint32_t crc, const unsigned char *next, size_t len) {
    uint64_t c = crc ^ 0xffffffffu;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len >= 8) {
        c ^= crc32c_load64(next);
        c = crc32c_table[7][c & 0xff] ^ crc32c_table[6][(c >> 8) & 0xff] ^ crc32c_table[5][(c >> 16) & 0xff] ^
            crc32c_table[4][(c >> 24) & 0xff] ^ crc32c_table[3][(c >> 32) & 0xff] ^
            crc32c_table[2][(c >> 40) & 0xff] ^ crc32c_table[1][(c >> 48) & 0xff] ^ crc32c_table[0][c >> 56];
        next += 8;
        len -= 8;
    }
#endif
    while (len) {
        c = crc32c_table[0][(c ^ *next++) & 0xff] ^ (c >> 8);
        len--;
    }
    return (uint32_t)c ^ 0xffffffffu;
}

/* ---- hardware: SSE4.2 crc32 instruction, three streams ---- */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_X86 1
#define CRC32C_TARGET __attribute__((target("sse4.2")))

/* COPY selects the fused copy; the compiler specialises both versions. */
#define CRC32C_HW_BODY(COPY)                                                                   \
    uint64_t crc0 = crc ^ 0xffffffffu, crc1, crc2;                                             \
    while (len && ((uintptr_t)next & 7)) {                                                      \
        if (COPY) *out++ = *next;                                                               \
        crc0 = __builtin_ia32_crc32qi((uint32_t)crc0, *next++);                                \
        len--;                                                                                  \
    }                                                                                           \
    while (len >= CRC32C_LONG * 3) {                                                            \
        crc1 = 0; crc2 = 0;                                                                     \
        const unsigned char *end = next + CRC32C_LONG;                                          \
        do {                                                                                    \
            if (((uintptr_t)next & 63) == 0) {                                                  \
                /* the crc32 dependency chain issues loads slowly: fetch lines ahead */        \
                __builtin_prefetch(next + CRC32C_PREFETCH);                                     \
                __builtin_prefetch(next + CRC32C_LONG + CRC32C_PREFETCH);                       \
                __builtin_prefetch(next + 2 * CRC32C_LONG + CRC32C_PREFETCH);                   \
            }                                                                                   \
            uint64_t w0 = crc32c_load64(next), w1 = crc32c_load64(next + CRC32C_LONG),          \
                     w2 = crc32c_load64(next + 2 * CRC32C_LONG);                                \
            if (COPY) { memcpy(out, &w0, 8); memcpy(out + CRC32C_LONG, &w1, 8);                 \
                        memcpy(out + 2 * CRC32C_LONG, &w2, 8); out += 8; }                      \
            crc0 = __builtin_ia32_crc32di(crc0, w0);                                            \
            crc1 = __builtin_ia32_crc32di(crc1, w1);                                            \
            crc2 = __builtin_ia32_crc32di(crc2, w2);                                            \
            next += 8;                                                                          \
        } while (next < end);                                                                   \
        crc0 = crc32c_shift(crc32c_long, (uint32_t)crc0) ^ crc1;                                \
        crc0 = crc32c_shift(crc32c_long, (uint32_t)crc0) ^ crc2;                                \
        next += CRC32C_LONG * 2;                                                                \
        if (COPY) out += CRC32C_LONG * 2;                                                       \
        len -= CRC32C_LONG * 3;                                                                 \
    }                                                                                           \
    while (len >= CRC32C_SHORT * 3) {                                                           \
        crc1 = 0; crc2 = 0;                                                                     \
        const unsigned char *end = next + CRC32C_SHORT;                                         \
        do {                                                                                    \
            uint64_t w0 = crc32c_load64(next), w1 = crc32c_load64(next + CRC32C_SHORT),         \
                     w2 = crc32c_load64(next + 2 * CRC32C_SHORT);                               \
            if (COPY) { memcpy(out, &w0, 8); memcpy(out + CRC32C_SHORT, &w1, 8);                \
                        memcpy(out + 2 * CRC32C_SHORT, &w2, 8); out += 8; }                     \
            crc0 = __builtin_ia32_crc32di(crc0, w0);                                            \
            crc1 = __builtin_ia32_crc32di(crc1, w1);                                            \
            crc2 = __builtin_ia32_crc32di(crc2, w2);                                            \
            next += 8;                                                                          \
        } while (next < end);                                                                   \
        crc0 = crc32c_shift(crc32c_short, (uint32_t)crc0) ^ crc1;                               \
        crc0 = crc32c_shift(crc32c_short, (uint32_t)crc0) ^ crc2;                               \
        next += CRC32C_SHORT * 2;                                                               \
        if (COPY) out += CRC32C_SHORT * 2;                                                      \
        len -= CRC32C_SHORT * 3;                                                                \
    }                                                                                           \
    while (len >= 8) {                                                                          \
        uint64_t w = crc32c_load64(next);                                                       \
        if (COPY) { memcpy(out, &w, 8); out += 8; }                                             \
        crc0 = __builtin_ia32_crc32di(crc0, w);                                                 \
        next += 8;                                                                              \
        len -= 8;                                                                               \
    }                                                                                           \
    while (len) {                                                                               \
        if (COPY) *out++ = *next;                                                               \
        crc0 = __builtin_ia32_crc32qi((uint32_t)crc0, *next++);                                \
        len--;                                                                                  \
    }                                                                                           \
    return (uint32_t)crc0 ^ 0xffffffffu;

CRC32C_TARGET static uint32_t crc32c_hw(uint32_t crc, const unsigned char *next, size_t len) {
    unsigned char *out = NULL;
    (void)out;
    CRC32C_HW_BODY(0)
}

CRC32C_TARGET static uint32_t crc32c_hw_copy(uint32_t crc, unsigned char *out, const unsigned char *next, size_t len) {
    CRC32C_HW_BODY(1)
}
#endif

/* CRC32C of A||B from crc1 = CRC32C(A), crc2 = CRC32C(B) and len2 = |B| (finished CRC values; the
 * pre- and post-conditioning cancel as in zlib's crc32_combine). */
static uint32_t crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2) {
    uint32_t even[32], odd[32];
    if (len2 == 0) return crc1;
    crc32c_four_zero_bits(even, odd);
    /* apply len2 zero bytes to crc1: operators for 1, 2, 4, ... bytes, where len2 has a 1 bit */
    do {
        gf2_matrix_square(even, odd);
        if (len2 & 1) crc1 = gf2_matrix_times(even, crc1);
        len2 >>= 1;
        if (len2 == 0) break;
        gf2_matrix_square(odd, even);
        if (len2 & 1) crc1 = gf2_matrix_times(odd, crc1);
        len2 >>= 1;
    } while (len2);
    return crc1 ^ crc2;
}

static void crc32c_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc32c_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc32c_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = crc32c_table[0][c & 0xff] ^ (c >> 8);
            crc32c_table[k][n] = c;
        }
    }
    crc32c_zeros(crc32c_long, CRC32C_LONG);
    crc32c_zeros(crc32c_short, CRC32C_SHORT);
#ifdef CRC32C_X86
    __builtin_cpu_init();
    crc32c_have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

/* Force the portable path (tests compare it with the hardware path). */
static void crc32c_set_hw(int enable) {
#ifdef CRC32C_X86
    crc32c_have_hw = enable && __builtin_cpu_supports("sse4.2");
#else
    (void)enable;
    crc32c_have_hw = 0;
#endif
}

static uint32_t crc32c_update(uint32_t crc, const unsigned char *buf, size_t len) {
#ifdef CRC32C_X86
    if (crc32c_have_hw) return crc32c_hw(crc, buf, len);
#endif
    return crc32c_sw(crc, buf, len);
}

static uint32_t crc32c_copy(uint32_t crc, unsigned char *dst, const unsigned char *src, size_t len) {
#ifdef CRC32C_X86
    if (crc32c_have_hw) return crc32c_hw_copy(crc, dst, src, len);
#endif
    /* Software: copy in cache-sized pieces and checksum each piece while it is hot. */
    while (len) {
        size_t n = len < (1u << 16) ? len : (1u << 16);
        memcpy(dst, src, n);
        crc = crc32c_sw(crc, dst, n);
        dst += n;
        src += n;
        len -= n;
    }
    return crc;
}

#endif
