/* Interleaved static rANS for integer levels (spec/bitstream.md section 7, "level coding").
 *
 * LC_STATES states of 32 bits are used round-robin (element i uses state i mod LC_STATES), so the
 * decoder has that many independent dependency chains. Renormalisation moves 16-bit words;
 * probabilities have LC_PROB_BITS bits. Each row of the (rows x cols) level array uses the
 * tables of its row class. Symbols are level + E for |level| <= E, and 2E+1 (escape) otherwise;
 * escaped levels come from a separate list.
 *
 * The encoder runs from the last element to the first and writes words downwards from the end of
 * its buffer; the decoder reads them upwards. Both report errors with negative return codes and
 * never read or write outside the buffers they are given.
 */
#ifndef CODEC_RANS_IMPL_H
#define CODEC_RANS_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LC_STATES 8      /* states of a version 1 payload (spec 7.3) */
#define LC_MAX_STATES 32 /* at most, in a version 2 payload (spec 7.4): 1, 2, 4, 8, 16 or 32 */
#define LC_PROB_BITS 14
#define LC_PROB_SCALE (1u << LC_PROB_BITS)
#define LC_RANS_L (1u << 16)
#define LC_MAX_CLASSES 16 /* row classes: lc_num_classes_minus1 is u(4) */

enum {
    LC_OK = 0,
    LC_ERR_WORDS_TRUNCATED = -1,
    LC_ERR_FINAL_STATE = -2,
    LC_ERR_ESCAPES = -3,
    LC_ERR_WORDS_LEFT = -4,
    LC_ERR_CODEBOOK = -5,
    LC_ERR_BAD_STATE = -6,
    LC_ERR_ZERO_FREQ = -7,
    LC_ERR_OVERFLOW = -8,
    LC_ERR_AFFINE_RANGE = -9,
    LC_ERR_DQ_LEVEL = -12, /* -10, -11: the adaptive decoder's */
};

/* Encode n symbols with nstates (1..LC_MAX_STATES) interleaved states. freq/cum: per-class tables
 * of `alphabet` entries each. out_end: one past the end of a buffer of at least n 16-bit words. On
 * return *out_start is the first word written; states_out holds the final states (the decoder's
 * initial states). */
static int lc_encode(const uint8_t *sym, size_t n, const uint8_t *row_class, size_t cols,
                     const uint32_t *freq, const uint32_t *cum, size_t alphabet, uint16_t *out_begin,
                     uint16_t *out_end, uint16_t **out_start, const uint32_t *states_in, size_t first,
                     uint32_t *states_out, int nstates) {
    /* sym[j] is element first + j of the layer (or chunk): its row class and its state are that
     * element's */
    uint32_t st[LC_MAX_STATES];
    uint16_t *ptr = out_end;
    if (nstates < 1 || nstates > LC_MAX_STATES || (nstates & (nstates - 1))) return LC_ERR_BAD_STATE;
    const size_t lane_mask = (size_t)nstates - 1; /* a power of two: i mod nstates without a division */
    for (int j = 0; j < nstates; j++) st[j] = states_in ? states_in[j] : LC_RANS_L;
    /* the row of each element by counting down, not by a division per element */
    size_t row = 0, col = 0;
    if (n && cols) {
        row = (first + n - 1) / cols;
        col = (first + n - 1) % cols;
    }
#ifdef __SIZEOF_INT128__
    /* x / f by a multiplication (Granlund and Montgomery: for f of l bits and m = floor(2^(32+l) / f) + 1,
     * floor(x * m / 2^(32+l)) = floor(x / f) for every 32-bit x); one (m, l) per table entry in use */
    uint64_t rcp[LC_MAX_CLASSES * 256];
    uint8_t rcp_shift[LC_MAX_CLASSES * 256];
    size_t classes = 1;
    if (cols && n) {
        size_t last_row = (first + n - 1) / cols;
        for (size_t r = first / cols; r <= last_row; r++)
            if ((size_t)row_class[r] + 1 > classes) classes = (size_t)row_class[r] + 1;
    }
    /* the reciprocals cost about a division each: worth it when the entries are few against the symbols */
    int fast_div = alphabet <= 256 && classes <= LC_MAX_CLASSES && classes * alphabet * 4 <= n;
    if (fast_div) {
        for (size_t k = 0; k < classes * alphabet; k++) {
            uint32_t f = freq[k];
            if (f == 0) continue;
            int l = 0;
            while ((1ull << l) < f) l++;
            rcp_shift[k] = (uint8_t)(32 + l);
            rcp[k] = (uint64_t)((((unsigned __int128)1) << (32 + l)) / f) + 1;
        }
    }
#endif
    /* at most one word per symbol: a buffer of n words never overflows */
    const int roomy = (size_t)(out_end - out_begin) >= n;
    size_t j = n;
    while (j > 0) {
        j--;
        size_t i = first + j;
        size_t cls = cols ? row_class[row] : 0;
        if (cols && col-- == 0) {
            col = cols - 1;
            row--;
        }
        size_t k = cls * alphabet + sym[j];
        uint32_t f = freq[k];
        if (f == 0) return LC_ERR_ZERO_FREQ;
        uint32_t x = st[i & lane_mask];
        uint64_t x_max = (uint64_t)f << (32 - LC_PROB_BITS); /* 2^32 when f = LC_PROB_SCALE */
        if (roomy) {
            /* without a branch: whether a word goes out is a coin toss at high entropy, and a
             * mispredicted branch costs more than the store; ptr[-1] is inside the buffer because
             * fewer words than symbols so far have been written */
            uint32_t out = (uint64_t)x >= x_max;
            ptr[-1] = (uint16_t)(x & 0xffff);
            ptr -= out;
            x >>= out << 4;
        } else if (x >= x_max) {
            if (ptr == out_begin) return LC_ERR_OVERFLOW; /* the caller retries with a larger buffer */
            *--ptr = (uint16_t)(x & 0xffff);
            x >>= 16;
        }
        uint32_t q;
#ifdef __SIZEOF_INT128__
        if (fast_div)
            q = (uint32_t)(((unsigned __int128)x * rcp[k]) >> rcp_shift[k]);
        else
            q = x / f;
#else
        q = x / f;
#endif
        st[i & lane_mask] = (q << LC_PROB_BITS) + (x - q * f) + cum[k];
    }
    for (int k = 0; k < nstates; k++) states_out[k] = st[k];
    *out_start = ptr;
    return LC_OK;
}

/* Output kinds of the decoder. */
#define LC_OUT_I64 0      /* levels as int64 */
#define LC_OUT_AFFINE 1   /* float32: (level - zero_point[row]) * scale[row] */
#define LC_OUT_CODEBOOK 2 /* float32: codebook[level] */
#define LC_OUT_I32 3      /* levels as int32 (the caller guarantees they fit) */
#define LC_OUT_I16 4      /* levels as int16 (the caller guarantees they fit) */
#define LC_OUT_DQ 5       /* float32: (2k - sgn(k) (s & 1)) * scale[row], s the row's trellis state (spec 8.5) */

/* lc_dq_next[2 s + (k & 1)]: the trellis state after a level k in state s (spec table 8.5). */
static const uint8_t lc_dq_next[16] = {0, 2, 7, 5, 1, 3, 6, 4, 2, 0, 5, 7, 3, 1, 4, 6};
/* lc_dq_block[s][m]: eight levels at once from state s, bit j of m the parity of level j: bits 0-2 the
 * state after them, bit 3 + j the parity of the state level j is reconstructed in. Filled by
 * lc_dq_init() (at module import) from lc_dq_next. */
static uint16_t lc_dq_block[8][256];
/* lc_dq_map[m]: nibble s (bits 4s..4s+2) the state after eight levels of parities m from state s: the
 * next state is a shift of a value that does not wait for the previous one (a short dependency chain) */
static uint32_t lc_dq_map[256];

static void lc_dq_init(void) {
    for (unsigned s0 = 0; s0 < 8; s0++)
        for (unsigned m = 0; m < 256; m++) {
            unsigned s = s0, par = 0;
            for (unsigned j = 0; j < 8; j++) {
                par |= (s & 1u) << j;
                s = lc_dq_next[2 * s + ((m >> j) & 1u)];
            }
            lc_dq_block[s0][m] = (uint16_t)(s | (par << 3));
            lc_dq_map[m] = (lc_dq_map[m] & ~(0xfu << (4 * s0))) | (s << (4 * s0));
        }
}

/* Store level as element i of the output in its form (level, int32, int16, dequantized value). */
static inline __attribute__((always_inline)) int
lc_store(int64_t level, int out_kind, size_t i, int64_t *out_i64, float *out_f32, float s_r, int64_t z_r,
         const float *codebook, size_t codebook_size, uint32_t *dqs) {
    if (out_kind == LC_OUT_I64) {
        out_i64[i] = level;
    } else if (out_kind == LC_OUT_I32) {
        ((int32_t *)out_i64)[i] = (int32_t)level;
    } else if (out_kind == LC_OUT_I16) {
        ((int16_t *)out_i64)[i] = (int16_t)level;
    } else if (out_kind == LC_OUT_AFFINE) {
        int64_t d;
        if (__builtin_sub_overflow(level, z_r, &d)) return LC_ERR_AFFINE_RANGE;
        out_f32[i] = (float)d * s_r;
    } else if (out_kind == LC_OUT_DQ) {
        if (level >= (1LL << 31) || level <= -(1LL << 31)) return LC_ERR_DQ_LEVEL;
        uint32_t s = *dqs;
        int64_t q = 2 * level - (int64_t)((level > 0) - (level < 0)) * (int64_t)(s & 1u);
        out_f32[i] = (float)q * s_r;
        *dqs = lc_dq_next[2 * s + (uint32_t)(level & 1)];
    } else {
        if (level < 0 || (uint64_t)level >= codebook_size) return LC_ERR_CODEBOOK;
        out_f32[i] = codebook[level];
    }
    return LC_OK;
}

/* Turn a decoded symbol into element i of the output (level, escape, dequantized value). */
static inline __attribute__((always_inline)) int
lc_emit(uint32_t s, uint32_t esc_sym, int64_t E, const int64_t *escapes, size_t nesc, size_t *ep,
                          int out_kind, size_t i, int64_t *out_i64, float *out_f32, float s_r, int64_t z_r,
                          const float *codebook, size_t codebook_size, uint32_t *dqs) {
    int64_t level;
    if (s == esc_sym) {
        if (*ep >= nesc) return LC_ERR_ESCAPES;
        level = escapes[(*ep)++];
    } else {
        level = (int64_t)s - E;
    }
    return lc_store(level, out_kind, i, out_i64, out_f32, s_r, z_r, codebook, codebook_size, dqs);
}

/* One element with its state: the general step of spec 7.3 (any position, any words left). */
#define LC_SCALAR_STEP()                                                                                 \
    do {                                                                                                 \
        uint32_t x = st[i % S];                                                                          \
        uint32_t slot = x & (LC_PROB_SCALE - 1);                                                         \
        uint32_t s = tsy[slot];                                                                          \
        uint32_t e = tfc[s];                                                                             \
        x = (e & 0xffff) * (x >> LC_PROB_BITS) + slot - (e >> 16);                                       \
        if (x < LC_RANS_L) {                                                                             \
            if (wp >= nwords) return LC_ERR_WORDS_TRUNCATED;                                             \
            x = (x << 16) | (uint32_t)words[2 * wp] | ((uint32_t)words[2 * wp + 1] << 8);                \
            wp++;                                                                                        \
        }                                                                                                \
        st[i % S] = x;                                                                                   \
        int err = lc_emit(s, esc_sym, E, escapes, nesc, &ep, out_kind, i, out_i64, out_f32, s_r, z_r,    \
                          codebook, codebook_size, &dqs);                                                \
        if (err) return err;                                                                             \
    } while (0)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LC_HAVE_AVX2 1
#include <immintrin.h>

/* Whether the running CPU has AVX2 (the group kernel below is compiled for it and chosen at run
 * time; the scalar loop gives the same results everywhere). */
static int lc_cpu_has_avx2(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx2") ? 1 : 0;
    return known;
}

/* lc_word_lanes[m][j]: for a renormalisation mask m of 8 states (bit j: state j takes a word), the
 * index among the next 8 words of the word state j takes: the number of set bits of m below j. */
#define LC_P(m, j) ((uint32_t)__builtin_popcount((unsigned)(m) & ((1u << (j)) - 1u)))
#define LC_ROW(m) {LC_P(m, 0), LC_P(m, 1), LC_P(m, 2), LC_P(m, 3), LC_P(m, 4), LC_P(m, 5), LC_P(m, 6), LC_P(m, 7)}
#define LC_ROW4(m) LC_ROW(m), LC_ROW((m) + 1), LC_ROW((m) + 2), LC_ROW((m) + 3)
#define LC_ROW16(m) LC_ROW4(m), LC_ROW4((m) + 4), LC_ROW4((m) + 8), LC_ROW4((m) + 12)
#define LC_ROW64(m) LC_ROW16(m), LC_ROW16((m) + 16), LC_ROW16((m) + 32), LC_ROW16((m) + 48)
static const uint32_t lc_word_lanes[256][8] __attribute__((aligned(32))) = {
    LC_ROW64(0), LC_ROW64(64), LC_ROW64(128), LC_ROW64(192)};
#undef LC_ROW64
#undef LC_ROW16
#undef LC_ROW4
#undef LC_ROW
#undef LC_P

/* Whole groups of S = 8 R states (R = 2 or 4 registers of eight 32-bit lanes) from element i
 * (i mod S = 0): at most `groups` groups, while at least S words remain. The registers are
 * independent chains (one register of eight states is one chain through two gathers: slower than
 * scalar code, hence S >= 16 here). Words are taken in state order at prefix-count offsets, as in
 * the scalar group loop: same arithmetic, same results. Returns the groups done or an error. */
static inline __attribute__((always_inline, target("avx2"))) long lc_groups_avx2_impl(
    const int R, uint32_t *st, const uint8_t *words, size_t nwords, size_t *wp_io, const uint32_t *tfc,
    const uint8_t *tsy, size_t groups, uint32_t esc_sym, int64_t E, const int64_t *escapes, size_t nesc, size_t *ep,
    const int out_kind, size_t i, int64_t *out_i64, float *out_f32, float s_r, int64_t z_r, const float *codebook,
    size_t codebook_size, uint32_t *dqs_io) {
    const size_t S = 8 * (size_t)R;
    uint32_t dqs = *dqs_io;
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i slot_mask = _mm256_set1_epi32(LC_PROB_SCALE - 1);
    const __m256i low16 = _mm256_set1_epi32(0xffff);
    const __m256i quad_mask = _mm256_set1_epi32(~3);
    const __m256i byte_mask = _mm256_set1_epi32(0xff);
    const __m256i esc = _mm256_set1_epi32((int)esc_sym);
    /* level - zero_point = sym - (E + z_r), exact in 32 bits (the caller checked z_r) */
    const __m256i bias = _mm256_set1_epi32((int)(E + (out_kind == LC_OUT_AFFINE ? z_r : 0)));
    const __m256 scale = _mm256_set1_ps(s_r);
    __m256i x[4], sym[4];
    for (int r = 0; r < R; r++) x[r] = _mm256_loadu_si256((const __m256i *)(st + 8 * r));
    size_t wp = *wp_io, g = 0;
    long result = 0;
    for (; g < groups && wp + S <= nwords; g++, i += S) {
        for (int r = 0; r < R; r++) {
            __m256i slot = _mm256_and_si256(x[r], slot_mask);
            /* the symbol byte of each slot: a 32-bit gather at the slot's aligned quad, then a shift
             * (never reads outside the class's table) */
            __m256i quad = _mm256_i32gather_epi32((const int *)tsy, _mm256_and_si256(slot, quad_mask), 1);
            sym[r] = _mm256_and_si256(
                _mm256_srlv_epi32(quad, _mm256_slli_epi32(_mm256_andnot_si256(quad_mask, slot), 3)), byte_mask);
            __m256i e = _mm256_i32gather_epi32((const int *)tfc, sym[r], 4);
            x[r] = _mm256_sub_epi32(
                _mm256_add_epi32(_mm256_mullo_epi32(_mm256_and_si256(e, low16), _mm256_srli_epi32(x[r], LC_PROB_BITS)),
                                 slot),
                _mm256_srli_epi32(e, 16));
        }
        for (int r = 0; r < R; r++) {
            __m256i need = _mm256_cmpeq_epi32(_mm256_min_epu32(x[r], low16), x[r]); /* x < 2^16 */
            unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(need));
            __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(words + 2 * wp)));
            w = _mm256_permutevar8x32_epi32(w, _mm256_load_si256((const __m256i *)lc_word_lanes[mask]));
            x[r] = _mm256_blendv_epi8(x[r], _mm256_or_si256(_mm256_slli_epi32(x[r], 16), w), need);
            wp += (size_t)__builtin_popcount(mask);
        }
        for (int r = 0; r < R; r++) {
            size_t at = i + 8 * (size_t)r;
            if (out_kind == LC_OUT_CODEBOOK || _mm256_movemask_epi8(_mm256_cmpeq_epi32(sym[r], esc))) {
                uint32_t syms[8];
                _mm256_storeu_si256((__m256i *)syms, sym[r]);
                for (int j = 0; j < 8; j++) {
                    int err = lc_emit(syms[j], esc_sym, E, escapes, nesc, ep, out_kind, at + j, out_i64, out_f32,
                                      s_r, z_r, codebook, codebook_size, &dqs);
                    if (err) {
                        result = err;
                        goto done;
                    }
                }
                continue;
            }
            __m256i d = _mm256_sub_epi32(sym[r], bias);
            if (out_kind == LC_OUT_I64) {
                _mm256_storeu_si256((__m256i *)(out_i64 + at), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(d)));
                _mm256_storeu_si256((__m256i *)(out_i64 + at + 4),
                                    _mm256_cvtepi32_epi64(_mm256_extracti128_si256(d, 1)));
            } else if (out_kind == LC_OUT_I32) {
                _mm256_storeu_si256((__m256i *)((int32_t *)out_i64 + at), d);
            } else if (out_kind == LC_OUT_I16) {
                _mm_storeu_si128((__m128i *)((int16_t *)out_i64 + at),
                                 _mm_packs_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1)));
            } else if (out_kind == LC_OUT_DQ) {
                /* the eight states from the parities, one table step; then 2d - sgn(d) in the lanes whose
                 * state is odd (|d| <= 127 here: q converts to float exactly as in the scalar path) */
                unsigned pm = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(d, 31)));
                uint32_t e = lc_dq_block[dqs][pm];
                dqs = (lc_dq_map[pm] >> (4 * dqs)) & 7u;
                __m256i odd = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)(e >> 3)), lane_bit), lane_bit);
                /* sign(odd, d): -sgn(d) where odd (all ones), 0 elsewhere */
                __m256i q = _mm256_add_epi32(_mm256_add_epi32(d, d), _mm256_sign_epi32(odd, d));
                _mm256_storeu_ps(out_f32 + at, _mm256_mul_ps(_mm256_cvtepi32_ps(q), scale));
            } else { /* LC_OUT_AFFINE: (float)d * s_r as the scalar path (d converts exactly alike) */
                _mm256_storeu_ps(out_f32 + at, _mm256_mul_ps(_mm256_cvtepi32_ps(d), scale));
            }
        }
    }
    result = (long)g;
done:
    for (int r = 0; r < R; r++) _mm256_storeu_si256((__m256i *)(st + 8 * r), x[r]);
    *wp_io = wp;
    *dqs_io = dqs;
    return result;
}

/* The group kernel for 16 and 32 states (R = 2, 4 registers), a function each so that R is a
 * constant of its loops. */
#define LC_GROUPS_ARGS                                                                                           \
    uint32_t *st, const uint8_t *words, size_t nwords, size_t *wp_io, const uint32_t *tfc, const uint8_t *tsy,   \
        size_t groups, uint32_t esc_sym, int64_t E, const int64_t *escapes, size_t nesc, size_t *ep, int out_kind, \
        size_t i, int64_t *out_i64, float *out_f32, float s_r, int64_t z_r, const float *codebook,                \
        size_t codebook_size, uint32_t *dqs_io
#define LC_GROUPS_PASS                                                                                          \
    st, words, nwords, wp_io, tfc, tsy, groups, esc_sym, E, escapes, nesc, ep, out_kind, i, out_i64, out_f32, s_r, \
        z_r, codebook, codebook_size, dqs_io
__attribute__((target("avx2"))) static long lc_groups_avx2_r2(LC_GROUPS_ARGS) {
    return lc_groups_avx2_impl(2, LC_GROUPS_PASS);
}
__attribute__((target("avx2"))) static long lc_groups_avx2_r4(LC_GROUPS_ARGS) {
    return lc_groups_avx2_impl(4, LC_GROUPS_PASS);
}
#else
#define LC_HAVE_AVX2 0
static int lc_cpu_has_avx2(void) { return 0; }
#endif

/* Tables: sy[cls * SCALE + slot] = the symbol of a slot; fc[cls * alphabet + s] = freq | cum << 16
 * (small, so both stay in L1 while a row is decoded). words: nwords little-endian 16-bit words.
 * S states (a constant in each instance). */
static inline __attribute__((always_inline)) int
lc_decode_kind(const size_t S, const uint8_t *words, size_t nwords, const uint32_t *states_in,
               const uint32_t *fc, size_t alphabet, const uint8_t *sy, const uint8_t *row_class,
               size_t rows, size_t cols,
               int64_t E, const int64_t *escapes, size_t nesc, const int out_kind, int64_t *out_i64,
               float *out_f32, const float *scale, const int64_t *zero_point, const float *codebook,
               size_t codebook_size, int simd) {
    uint32_t st[LC_MAX_STATES];
    size_t wp = 0, ep = 0;
    const uint32_t esc_sym = (uint32_t)(2 * E + 1);
    (void)simd;
    for (size_t j = 0; j < S; j++) {
        st[j] = states_in[j];
        if (st[j] < LC_RANS_L) return LC_ERR_BAD_STATE;
    }
    if (cols == 0) rows = 0; /* no elements: the rows hold nothing to decode, however many */
    size_t i = 0;
    for (size_t r = 0; r < rows; r++) {
        const uint32_t *tfc = fc + (size_t)row_class[r] * alphabet;
        const uint8_t *tsy = sy + (size_t)row_class[r] * LC_PROB_SCALE;
        float s_r = 0.0f;
        int64_t z_r = 0;
        uint32_t dqs = 0; /* the row's trellis state (LC_OUT_DQ): each row starts in state 0 */
        if (out_kind == LC_OUT_AFFINE) {
            s_r = scale[r];
            z_r = zero_point[r];
        } else if (out_kind == LC_OUT_DQ) {
            s_r = scale[r];
        }
        size_t c = 0;
        /* the row's first elements up to a state-0 element, one at a time */
        size_t head = (S - i % S) % S;
        if (head > cols) head = cols;
        for (; c < head; c++, i++) LC_SCALAR_STEP();
        size_t groups = (cols - c) / S;
#if LC_HAVE_AVX2
        if (S >= 16 && simd && groups &&
            (out_kind != LC_OUT_AFFINE || (z_r > -(1LL << 30) && z_r < (1LL << 30)))) {
            long done = (S == 16 ? lc_groups_avx2_r2 : lc_groups_avx2_r4)(
                st, words, nwords, &wp, tfc, tsy, groups, esc_sym, E, escapes, nesc, &ep, out_kind, i, out_i64,
                out_f32, s_r, z_r, codebook, codebook_size, &dqs);
            if (done < 0) return (int)done;
            c += (size_t)done * S;
            i += (size_t)done * S;
            groups -= (size_t)done;
        }
#endif
        /* Whole groups of S elements (one per state, in state order) with branch-free
         * renormalisation, while at least S words remain. Same arithmetic as the general step,
         * which finishes the row. */
        for (; groups && wp + S <= nwords; groups--) {
            uint32_t sym[LC_MAX_STATES], need[LC_MAX_STATES];
            /* decode all states first: the chains are independent ... */
            for (size_t j = 0; j < S; j++) {
                uint32_t x = st[j];
                uint32_t slot = x & (LC_PROB_SCALE - 1);
                uint32_t sj = tsy[slot];
                uint32_t e = tfc[sj];
                sym[j] = sj;
                x = (e & 0xffff) * (x >> LC_PROB_BITS) + slot - (e >> 16);
                need[j] = x < LC_RANS_L;
                st[j] = x;
            }
            /* ... then the states that need one read the next words in state order, at
             * prefix-sum offsets, so no state waits for another's renormalisation */
            size_t off = wp;
            for (size_t j = 0; j < S; j++) {
                uint32_t w = (uint32_t)words[2 * off] | ((uint32_t)words[2 * off + 1] << 8);
                st[j] = need[j] ? (st[j] << 16) | w : st[j];
                off += need[j];
            }
            wp = off;
            for (size_t j = 0; j < S; j++, i++, c++) {
                int err = lc_emit(sym[j], esc_sym, E, escapes, nesc, &ep, out_kind, i, out_i64, out_f32, s_r, z_r,
                                  codebook, codebook_size, &dqs);
                if (err) return err;
            }
        }
        for (; c < cols; c++, i++) LC_SCALAR_STEP();
    }
    if (ep != nesc) return LC_ERR_ESCAPES;
    if (wp != nwords) return LC_ERR_WORDS_LEFT;
    for (size_t j = 0; j < S; j++)
        if (st[j] != LC_RANS_L) return LC_ERR_FINAL_STATE;
    return LC_OK;
}

static inline __attribute__((always_inline)) int
lc_decode_states(const size_t S, const uint8_t *words, size_t nwords, const uint32_t *states_in, const uint32_t *fc,
                 size_t alphabet, const uint8_t *sy, const uint8_t *row_class, size_t rows, size_t cols, int64_t E,
                 const int64_t *escapes, size_t nesc, int out_kind, int64_t *out_i64, float *out_f32,
                 const float *scale, const int64_t *zero_point, const float *codebook, size_t codebook_size, int simd) {
#define LC_DECODE_AS(kind) lc_decode_kind(S, words, nwords, states_in, fc, alphabet, sy, row_class, rows, cols, E, \
                                          escapes, nesc, kind, out_i64, out_f32, scale, zero_point, codebook, \
                                          codebook_size, simd)
    switch (out_kind) {
    case LC_OUT_I64: return LC_DECODE_AS(LC_OUT_I64);
    case LC_OUT_AFFINE: return LC_DECODE_AS(LC_OUT_AFFINE);
    case LC_OUT_CODEBOOK: return LC_DECODE_AS(LC_OUT_CODEBOOK);
    case LC_OUT_I32: return LC_DECODE_AS(LC_OUT_I32);
    case LC_OUT_DQ: return LC_DECODE_AS(LC_OUT_DQ);
    default: return LC_DECODE_AS(LC_OUT_I16);
    }
#undef LC_DECODE_AS
}

/* Decode rows x cols levels coded with nstates interleaved states (1, 2, 4, 8, 16 or 32; each an
 * instance with constant loops) and each output kind. simd: use the AVX2 group kernel where the
 * CPU has it (16 and 32 states; identical results; 0 forces the scalar loop, for tests). */
static int lc_decode(const uint8_t *words, size_t nwords, const uint32_t *states_in,
                     const uint32_t *fc, size_t alphabet, const uint8_t *sy, const uint8_t *row_class,
                     size_t rows, size_t cols,
                     int64_t E, const int64_t *escapes, size_t nesc, int out_kind, int64_t *out_i64,
                     float *out_f32, const float *scale, const int64_t *zero_point, const float *codebook,
                     size_t codebook_size, int nstates, int simd) {
    simd = simd && lc_cpu_has_avx2();
#define LC_DECODE_S(n) lc_decode_states(n, words, nwords, states_in, fc, alphabet, sy, row_class, rows, cols, E, \
                                        escapes, nesc, out_kind, out_i64, out_f32, scale, zero_point, codebook, \
                                        codebook_size, simd)
    switch (nstates) {
    case 1: return LC_DECODE_S(1);
    case 2: return LC_DECODE_S(2);
    case 4: return LC_DECODE_S(4);
    case 8: return LC_DECODE_S(8);
    case 16: return LC_DECODE_S(16);
    case 32: return LC_DECODE_S(32);
    default: return LC_ERR_BAD_STATE;
    }
#undef LC_DECODE_S
}

/* lc_table() x K (spec 7.2) and their frequencies, read from bit `pos` of `buf` (nbits bits).
 * Returns 0 and sets *pos_out and freq (K x alphabet), or -1 when anything is wrong: the caller
 * reads the tables element by element to name the error. alphabet <= 256. */
#define LC_MAX_CODE 64
static const uint32_t lc_log_weights[4] = {65536, 55109, 46341, 38968};

static inline int lc_read_bit(const uint8_t *buf, size_t nbits, size_t *pos) {
    if (*pos >= nbits) return -1;
    int bit = (buf[*pos >> 3] >> (7 - (*pos & 7))) & 1;
    (*pos)++;
    return bit;
}

static int lc_read_ue0(const uint8_t *buf, size_t nbits, size_t *pos, uint64_t *out) {
    int zeros = 0, bit;
    while ((bit = lc_read_bit(buf, nbits, pos)) == 0)
        if (++zeros > 63) return -1; /* UE_MAX_PREFIX */
    if (bit < 0 || (size_t)zeros > nbits - *pos) return -1;
    uint64_t v = 0;
    for (int i = 0; i < zeros; i++) v = (v << 1) | (uint64_t)lc_read_bit(buf, nbits, pos);
    *out = (((uint64_t)1 << zeros) | v) - 1;
    return 0;
}

/* The frequencies of spec 7.2 of one table of codes 0..LC_MAX_CODE (0: absent): summing to 2^14,
 * or all zero when no symbol is present. */
static void lc_freqs_from_codes(const int32_t *codes, size_t alphabet, uint32_t *f) {
    uint64_t total = 0;
    uint32_t w[256];
    for (size_t s = 0; s < alphabet; s++) {
        uint32_t c = (uint32_t)codes[s];
        w[s] = 0;
        f[s] = 0;
        if (c) {
            uint32_t x = lc_log_weights[(c - 1) & 3] >> ((c - 1) >> 2);
            w[s] = x ? x : 1;
        }
        total += w[s];
    }
    if (total == 0) return;
    uint64_t F = 0;
    for (size_t s = 0; s < alphabet; s++) {
        if (!codes[s]) continue;
        uint64_t x = (uint64_t)w[s] * LC_PROB_SCALE / total;
        f[s] = x ? (uint32_t)x : 1;
        F += f[s];
    }
    while (F != LC_PROB_SCALE) {
        size_t big = 0;
        for (size_t s = 1; s < alphabet; s++)
            if (f[s] > f[big]) big = s;
        if (F < LC_PROB_SCALE) {
            f[big] += (uint32_t)(LC_PROB_SCALE - F);
            F = LC_PROB_SCALE;
        } else {
            uint64_t take = F - LC_PROB_SCALE;
            if (take > f[big] - 1) take = f[big] - 1;
            f[big] -= (uint32_t)take;
            F -= take;
        }
    }
}

static int lc_read_tables(const uint8_t *buf, size_t nbits, size_t pos, size_t K, size_t alphabet, uint32_t *freq,
                          size_t *pos_out) {
    for (size_t k = 0; k < K; k++) {
        uint32_t *f = freq + k * alphabet;
        int32_t codes[256] = {0};
        uint64_t count, lo, u;
        for (size_t s = 0; s < alphabet; s++) f[s] = 0;
        if (lc_read_ue0(buf, nbits, &pos, &count)) return -1;
        if (count == 0) continue;
        if (lc_read_ue0(buf, nbits, &pos, &lo)) return -1;
        if (lo > alphabet || count > alphabet - lo) return -1;
        int64_t code = 0;
        for (uint64_t s = lo; s < lo + count; s++) {
            if (lc_read_ue0(buf, nbits, &pos, &u)) return -1;
            if (u > 4 * LC_MAX_CODE + 2) return -1; /* no delta that large keeps the code in range */
            code += (u & 1) ? (int64_t)(u >> 1) + 1 : -(int64_t)(u >> 1);
            if (code < 0 || code > LC_MAX_CODE) return -1;
            codes[s] = (int32_t)code;
        }
        if (codes[lo] == 0 || codes[lo + count - 1] == 0) return -1;
        lc_freqs_from_codes(codes, alphabet, f);
    }
    *pos_out = pos;
    return 0;
}

/* Tables of K classes from their frequencies (K x alphabet, each row summing to LC_PROB_SCALE or
 * all zero): fc = freq | cum << 16 per symbol, sy = symbol per slot (0 for an empty class). */
static void lc_build_tables(const uint32_t *freq, size_t K, size_t alphabet, uint32_t *fc, uint8_t *sy) {
    for (size_t k = 0; k < K; k++) {
        uint32_t cum = 0;
        uint8_t *tsy = sy + k * LC_PROB_SCALE;
        for (size_t s = 0; s < alphabet; s++) {
            uint32_t f = freq[k * alphabet + s];
            fc[k * alphabet + s] = f | (cum << 16);
            if (cum < LC_PROB_SCALE) /* one memset per symbol: a small layer's tables cost more than its levels */
                memset(tsy + cum, (int)s, f < LC_PROB_SCALE - cum ? f : LC_PROB_SCALE - cum);
            cum += f;
        }
        if (cum < LC_PROB_SCALE) memset(tsy + cum, 0, LC_PROB_SCALE - cum);
    }
}

#endif
