/* CRC32C (Castagnoli) kernels for codec._fast._crc32c.
 *
 * Several paths with one contract: crc32c_update(crc, buf, len) continues a finished CRC value
 * (zlib convention), crc32c_copy(crc, dst, src, len) also copies src to dst in the same pass, so
 * that verifying a payload while loading it reads the memory once.
 *
 * Hardware path (x86-64 with SSE4.2, chosen at run time): three independent CRC streams over
 * consecutive blocks hide the 3-cycle latency of the crc32 instruction; the streams are joined
 * with tables that apply "append N zero bytes" to a CRC register (method of M. Adler).
 * Folding path (x86-64 with AVX-512 and VPCLMULQDQ, chosen at run time over the crc32 streams for
 * buffers of 512 bytes and more): carry-less multiplication of 256 bytes per step, see below.
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


/* ---- hardware: carry-less multiply folding (PCLMULQDQ, and VPCLMULQDQ on AVX-512) ----
 * Four accumulators of 128 bits (or four of 512 bits) hold the message so far as a polynomial that is congruent,
 * modulo P, to the bytes it replaced; each step multiplies them by x^(8*D) (D = the bytes they move forward) with
 * two carry-less products per 128-bit lane and adds the next block. In the bit-reflected convention a 64-bit lane
 * times the constant x^(8D+31) mod P (low lane) or x^(8D-33) mod P (high lane) lands exactly D bytes later. At the
 * end the lanes are folded into one, and two crc32 instructions reduce its 128 bits to the CRC register. */
#define CRC32C_FOLD_MIN 512  /* below this, the three crc32 streams are as fast */

static uint32_t crc32c_xnmodp(unsigned n) { /* x^n mod P, bit-reflected */
    uint32_t c = 0x80000000u;
    while (n--) c = (c >> 1) ^ ((c & 1) ? CRC32C_POLY : 0);
    return c;
}

static uint64_t crc32c_fold_k[4][2]; /* (x^(8D+31), x^(8D-33)) mod P for D = 16, 32, 48, 64 */
static uint64_t crc32c_fold_k512[4][2]; /* D = 64, 128, 192, 256 */
static int crc32c_have_pclmul = 0, crc32c_have_vpclmul = 0;

static void crc32c_fold_init(void) {
    for (unsigned i = 0; i < 4; i++) {
        unsigned d = 16 * (i + 1), d512 = 64 * (i + 1);
        crc32c_fold_k[i][0] = crc32c_xnmodp(8 * d + 31);
        crc32c_fold_k[i][1] = crc32c_xnmodp(8 * d - 33);
        crc32c_fold_k512[i][0] = crc32c_xnmodp(8 * d512 + 31);
        crc32c_fold_k512[i][1] = crc32c_xnmodp(8 * d512 - 33);
    }
}

#ifdef CRC32C_X86
#include <immintrin.h>
#define CRC32C_FOLD_TARGET __attribute__((target("sse4.2,pclmul")))
#define CRC32C_FOLD512_TARGET __attribute__((target("sse4.2,pclmul,avx512f,vpclmulqdq")))

CRC32C_FOLD_TARGET static inline __m128i crc32c_fold16(__m128i x, __m128i k) {
    return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

CRC32C_FOLD_TARGET static inline __m128i crc32c_k(int i) {
    return _mm_set_epi64x((long long)crc32c_fold_k[i][1], (long long)crc32c_fold_k[i][0]);
}

/* The tail after the folded part: crc32 instructions on the remaining bytes (and the copy). */
CRC32C_FOLD_TARGET static inline uint64_t crc32c_tail(uint64_t c, unsigned char *out, const unsigned char *next,
                                                     size_t len, int copy) {
    while (len >= 8) {
        uint64_t w = crc32c_load64(next);
        if (copy) { memcpy(out, &w, 8); out += 8; }
        c = _mm_crc32_u64(c, w);
        next += 8;
        len -= 8;
    }
    while (len--) {
        if (copy) *out++ = *next;
        c = _mm_crc32_u8((uint32_t)c, *next++);
    }
    return c;
}

/* Four 128-bit lanes (64 bytes) at a time; len >= 64. */
CRC32C_FOLD_TARGET static inline __attribute__((always_inline)) uint32_t
crc32c_fold128_body(uint32_t crc, unsigned char *out, const unsigned char *next, size_t len, int copy) {
    __m128i x0 = _mm_loadu_si128((const __m128i *)next), x1 = _mm_loadu_si128((const __m128i *)(next + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(next + 32)), x3 = _mm_loadu_si128((const __m128i *)(next + 48));
    if (copy) {
        _mm_storeu_si128((__m128i *)out, x0); _mm_storeu_si128((__m128i *)(out + 16), x1);
        _mm_storeu_si128((__m128i *)(out + 32), x2); _mm_storeu_si128((__m128i *)(out + 48), x3);
        out += 64;
    }
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)(crc ^ 0xffffffffu)));
    next += 64;
    len -= 64;
    const __m128i k = crc32c_k(3);
    while (len >= 64) {
        __m128i d0 = _mm_loadu_si128((const __m128i *)next), d1 = _mm_loadu_si128((const __m128i *)(next + 16));
        __m128i d2 = _mm_loadu_si128((const __m128i *)(next + 32)), d3 = _mm_loadu_si128((const __m128i *)(next + 48));
        if (copy) {
            _mm_storeu_si128((__m128i *)out, d0); _mm_storeu_si128((__m128i *)(out + 16), d1);
            _mm_storeu_si128((__m128i *)(out + 32), d2); _mm_storeu_si128((__m128i *)(out + 48), d3);
            out += 64;
        }
        x0 = _mm_xor_si128(crc32c_fold16(x0, k), d0);
        x1 = _mm_xor_si128(crc32c_fold16(x1, k), d1);
        x2 = _mm_xor_si128(crc32c_fold16(x2, k), d2);
        x3 = _mm_xor_si128(crc32c_fold16(x3, k), d3);
        next += 64;
        len -= 64;
    }
    __m128i x = _mm_xor_si128(_mm_xor_si128(crc32c_fold16(x0, crc32c_k(2)), crc32c_fold16(x1, crc32c_k(1))),
                              _mm_xor_si128(crc32c_fold16(x2, crc32c_k(0)), x3));
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(x, 1));
    return (uint32_t)crc32c_tail(c, out, next, len, copy) ^ 0xffffffffu;
}

CRC32C_FOLD_TARGET static uint32_t crc32c_fold128(uint32_t crc, const unsigned char *next, size_t len) {
    return crc32c_fold128_body(crc, NULL, next, len, 0);
}

CRC32C_FOLD_TARGET static uint32_t crc32c_fold128_copy(uint32_t crc, unsigned char *out, const unsigned char *next,
                                                      size_t len) {
    return crc32c_fold128_body(crc, out, next, len, 1);
}

CRC32C_FOLD512_TARGET static inline __m512i crc32c_fold64(__m512i x, __m512i k, __m512i d) {
    /* 0x96: a ^ b ^ c */
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), d,
                                     0x96);
}

CRC32C_FOLD512_TARGET static inline __m512i crc32c_k512(int i) {
    return _mm512_broadcast_i32x4(
        _mm_set_epi64x((long long)crc32c_fold_k512[i][1], (long long)crc32c_fold_k512[i][0]));
}

/* Four 512-bit accumulators (256 bytes) at a time; len >= 256. */
CRC32C_FOLD512_TARGET static inline __attribute__((always_inline)) uint32_t
crc32c_fold512_body(uint32_t crc, unsigned char *out, const unsigned char *next, size_t len, int copy) {
    __m512i x0 = _mm512_loadu_si512(next), x1 = _mm512_loadu_si512(next + 64);
    __m512i x2 = _mm512_loadu_si512(next + 128), x3 = _mm512_loadu_si512(next + 192);
    if (copy) {
        _mm512_storeu_si512(out, x0); _mm512_storeu_si512(out + 64, x1);
        _mm512_storeu_si512(out + 128, x2); _mm512_storeu_si512(out + 192, x3);
        out += 256;
    }
    x0 = _mm512_xor_si512(x0, _mm512_castsi128_si512(_mm_cvtsi32_si128((int)(crc ^ 0xffffffffu))));
    next += 256;
    len -= 256;
    const __m512i k = crc32c_k512(3);
    while (len >= 256) {
        __m512i d0 = _mm512_loadu_si512(next), d1 = _mm512_loadu_si512(next + 64);
        __m512i d2 = _mm512_loadu_si512(next + 128), d3 = _mm512_loadu_si512(next + 192);
        if (copy) {
            _mm512_storeu_si512(out, d0); _mm512_storeu_si512(out + 64, d1);
            _mm512_storeu_si512(out + 128, d2); _mm512_storeu_si512(out + 192, d3);
            out += 256;
        }
        x0 = crc32c_fold64(x0, k, d0);
        x1 = crc32c_fold64(x1, k, d1);
        x2 = crc32c_fold64(x2, k, d2);
        x3 = crc32c_fold64(x3, k, d3);
        next += 256;
        len -= 256;
    }
    /* four accumulators into one (moved 192, 128, 64 bytes), then its four lanes into one (48, 32, 16 bytes) */
    __m512i x = crc32c_fold64(x0, crc32c_k512(2), crc32c_fold64(x1, crc32c_k512(1), crc32c_fold64(x2, crc32c_k512(0), x3)));
    __m128i l0 = _mm512_extracti32x4_epi32(x, 0), l1 = _mm512_extracti32x4_epi32(x, 1);
    __m128i l2 = _mm512_extracti32x4_epi32(x, 2), l3 = _mm512_extracti32x4_epi32(x, 3);
    __m128i y = _mm_xor_si128(_mm_xor_si128(crc32c_fold16(l0, crc32c_k(2)), crc32c_fold16(l1, crc32c_k(1))),
                              _mm_xor_si128(crc32c_fold16(l2, crc32c_k(0)), l3));
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(y));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(y, 1));
    return (uint32_t)crc32c_tail(c, out, next, len, copy) ^ 0xffffffffu;
}

CRC32C_FOLD512_TARGET static uint32_t crc32c_fold512(uint32_t crc, const unsigned char *next, size_t len) {
    return crc32c_fold512_body(crc, NULL, next, len, 0);
}

CRC32C_FOLD512_TARGET static uint32_t crc32c_fold512_copy(uint32_t crc, unsigned char *out, const unsigned char *next,
                                                         size_t len) {
    return crc32c_fold512_body(crc, out, next, len, 1);
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

static int crc32c_set_path(int path);

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
    crc32c_fold_init();
    crc32c_set_path(3);
}

/* Choose a path: 0 software, 1 crc32 instruction (three streams), 2 PCLMULQDQ folding, 3 VPCLMULQDQ (AVX-512)
 * folding; a path the CPU lacks falls back to the best one below it. Returns the path chosen (tests compare all).
 * Path 2 is used only when asked for: on AMD Zen 4 it measured 15 GB/s against 28 for the three crc32 streams
 * (two carry-less products per 16 bytes), while path 3 reaches 57 GB/s and copies at memcpy speed. */
static int crc32c_path(void) {
    return crc32c_have_vpclmul ? 3 : crc32c_have_pclmul ? 2 : crc32c_have_hw ? 1 : 0;
}

static int crc32c_set_path(int path) {
#ifdef CRC32C_X86
    __builtin_cpu_init();
    int hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    int pclmul = hw && __builtin_cpu_supports("pclmul");
    int vpclmul = pclmul && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq");
    crc32c_have_hw = path >= 1 && hw;
    crc32c_have_vpclmul = path >= 3 && vpclmul;
    crc32c_have_pclmul = (path == 2 || crc32c_have_vpclmul) && pclmul;
    return crc32c_path();
#else
    (void)path;
    crc32c_have_hw = 0;
    return 0;
#endif
}

static void crc32c_set_hw(int enable) { crc32c_set_path(enable ? 3 : 0); }

static uint32_t crc32c_update(uint32_t crc, const unsigned char *buf, size_t len) {
#ifdef CRC32C_X86
    if (len >= CRC32C_FOLD_MIN) {
        if (crc32c_have_vpclmul) return crc32c_fold512(crc, buf, len);
        if (crc32c_have_pclmul) return crc32c_fold128(crc, buf, len);
    }
    if (crc32c_have_hw) return crc32c_hw(crc, buf, len);
#endif
    return crc32c_sw(crc, buf, len);
}

static uint32_t crc32c_copy(uint32_t crc, unsigned char *dst, const unsigned char *src, size_t len) {
#ifdef CRC32C_X86
    if (len >= CRC32C_FOLD_MIN) {
        if (crc32c_have_vpclmul) return crc32c_fold512_copy(crc, dst, src, len);
        if (crc32c_have_pclmul) return crc32c_fold128_copy(crc, dst, src, len);
    }
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
