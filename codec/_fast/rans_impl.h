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

#define LC_STATES 8
#define LC_PROB_BITS 14
#define LC_PROB_SCALE (1u << LC_PROB_BITS)
#define LC_RANS_L (1u << 16)

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
};

/* Encode n symbols. freq/cum: LC_STATES-independent per-class tables of `alphabet` entries each.
 * out_end: one past the end of a buffer of at least n 16-bit words. On return *out_start is the
 * first word written; states_out holds the final states (the decoder's initial states). */
static int lc_encode(const uint8_t *sym, size_t n, const uint8_t *row_class, size_t cols,
                     const uint32_t *freq, const uint32_t *cum, size_t alphabet, uint16_t *out_begin,
                     uint16_t *out_end, uint16_t **out_start, const uint32_t *states_in, size_t first,
                     uint32_t *states_out) {
    /* sym[j] is element first + j of the layer: its row class and its state are that element's */
    uint32_t st[LC_STATES];
    uint16_t *ptr = out_end;
    for (int j = 0; j < LC_STATES; j++) st[j] = states_in ? states_in[j] : LC_RANS_L;
    size_t j = n;
    while (j > 0) {
        j--;
        size_t i = first + j;
        size_t cls = cols ? row_class[i / cols] : 0;
        size_t k = cls * alphabet + sym[j];
        uint32_t f = freq[k];
        if (f == 0) return LC_ERR_ZERO_FREQ;
        uint32_t x = st[i % LC_STATES];
        uint64_t x_max = (uint64_t)f << (32 - LC_PROB_BITS); /* 2^32 when f = LC_PROB_SCALE */
        if (x >= x_max) {
            if (ptr == out_begin) return LC_ERR_OVERFLOW; /* the caller retries with a larger buffer */
            *--ptr = (uint16_t)(x & 0xffff);
            x >>= 16;
        }
        st[i % LC_STATES] = ((x / f) << LC_PROB_BITS) + (x % f) + cum[k];
    }
    for (int k = 0; k < LC_STATES; k++) states_out[k] = st[k];
    *out_start = ptr;
    return LC_OK;
}

/* Output kinds of the decoder. */
#define LC_OUT_I64 0      /* levels as int64 */
#define LC_OUT_AFFINE 1   /* float32: (level - zero_point[row]) * scale[row] */
#define LC_OUT_CODEBOOK 2 /* float32: codebook[level] */
#define LC_OUT_I32 3      /* levels as int32 (the caller guarantees they fit) */
#define LC_OUT_I16 4      /* levels as int16 (the caller guarantees they fit) */

/* Turn a decoded symbol into element i of the output (level, escape, dequantized value). */
static inline __attribute__((always_inline)) int
lc_emit(uint32_t s, uint32_t esc_sym, int64_t E, const int64_t *escapes, size_t nesc, size_t *ep,
                          int out_kind, size_t i, int64_t *out_i64, float *out_f32, float s_r, int64_t z_r,
                          const float *codebook, size_t codebook_size) {
    int64_t level;
    if (s == esc_sym) {
        if (*ep >= nesc) return LC_ERR_ESCAPES;
        level = escapes[(*ep)++];
    } else {
        level = (int64_t)s - E;
    }
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
    } else {
        if (level < 0 || (uint64_t)level >= codebook_size) return LC_ERR_CODEBOOK;
        out_f32[i] = codebook[level];
    }
    return LC_OK;
}

/* One element with its state: the general step of spec 7.3 (any position, any words left). */
#define LC_SCALAR_STEP()                                                                                 \
    do {                                                                                                 \
        uint32_t x = st[i % LC_STATES];                                                                  \
        uint32_t slot = x & (LC_PROB_SCALE - 1);                                                         \
        uint32_t s = tsy[slot];                                                                          \
        uint32_t e = tfc[s];                                                                             \
        x = (e & 0xffff) * (x >> LC_PROB_BITS) + slot - (e >> 16);                                       \
        if (x < LC_RANS_L) {                                                                             \
            if (wp >= nwords) return LC_ERR_WORDS_TRUNCATED;                                             \
            x = (x << 16) | (uint32_t)words[2 * wp] | ((uint32_t)words[2 * wp + 1] << 8);                \
            wp++;                                                                                        \
        }                                                                                                \
        st[i % LC_STATES] = x;                                                                           \
        int err = lc_emit(s, esc_sym, E, escapes, nesc, &ep, out_kind, i, out_i64, out_f32, s_r, z_r,    \
                          codebook, codebook_size);                                                      \
        if (err) return err;                                                                             \
    } while (0)

/* Tables: sy[cls * SCALE + slot] = the symbol of a slot; fc[cls * alphabet + s] = freq | cum << 16
 * (small, so both stay in L1 while a row is decoded). words: nwords little-endian 16-bit words. */
static inline __attribute__((always_inline)) int
lc_decode_kind(const uint8_t *words, size_t nwords, const uint32_t *states_in,
               const uint32_t *fc, size_t alphabet, const uint8_t *sy, const uint8_t *row_class,
               size_t rows, size_t cols,
               int64_t E, const int64_t *escapes, size_t nesc, const int out_kind, int64_t *out_i64,
               float *out_f32, const float *scale, const int64_t *zero_point, const float *codebook,
               size_t codebook_size) {
    uint32_t st[LC_STATES];
    size_t wp = 0, ep = 0;
    const uint32_t esc_sym = (uint32_t)(2 * E + 1);
    for (int j = 0; j < LC_STATES; j++) {
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
        if (out_kind == LC_OUT_AFFINE) {
            s_r = scale[r];
            z_r = zero_point[r];
        }
        size_t c = 0;
        /* the row's first elements up to a state-0 element, one at a time */
        size_t head = (LC_STATES - i % LC_STATES) % LC_STATES;
        if (head > cols) head = cols;
        for (; c < head; c++, i++) LC_SCALAR_STEP();
        size_t groups = (cols - c) / LC_STATES;
        /* Whole groups of LC_STATES elements (one per state, in state order) with branch-free
         * renormalisation, while at least LC_STATES words remain. Same arithmetic as the general
         * step, which finishes the row. (An AVX2 version of this loop, the eight states as the
         * lanes of one register, was measured slower: the eight states form one dependency chain
         * through two gathers, while the scalar loop has eight.) */
        for (; groups && wp + LC_STATES <= nwords; groups--) {
            uint32_t sym[LC_STATES], need[LC_STATES];
            /* decode all states first: the eight chains are independent ... */
            for (int j = 0; j < LC_STATES; j++) {
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
            for (int j = 0; j < LC_STATES; j++) {
                uint32_t w = (uint32_t)words[2 * off] | ((uint32_t)words[2 * off + 1] << 8);
                st[j] = need[j] ? (st[j] << 16) | w : st[j];
                off += need[j];
            }
            wp = off;
            for (int j = 0; j < LC_STATES; j++, i++, c++) {
                int err = lc_emit(sym[j], esc_sym, E, escapes, nesc, &ep, out_kind, i, out_i64, out_f32, s_r, z_r,
                                  codebook, codebook_size);
                if (err) return err;
            }
        }
        for (; c < cols; c++, i++) LC_SCALAR_STEP();
    }
    if (ep != nesc) return LC_ERR_ESCAPES;
    if (wp != nwords) return LC_ERR_WORDS_LEFT;
    for (int j = 0; j < LC_STATES; j++)
        if (st[j] != LC_RANS_L) return LC_ERR_FINAL_STATE;
    return LC_OK;
}

/* lc_decode_kind with out_kind a constant in each instance, so the per-element output switch is
 * resolved at compile time. */
static int lc_decode(const uint8_t *words, size_t nwords, const uint32_t *states_in,
                     const uint32_t *fc, size_t alphabet, const uint8_t *sy, const uint8_t *row_class,
                     size_t rows, size_t cols,
                     int64_t E, const int64_t *escapes, size_t nesc, int out_kind, int64_t *out_i64,
                     float *out_f32, const float *scale, const int64_t *zero_point, const float *codebook,
                     size_t codebook_size) {
#define LC_DECODE_AS(kind) lc_decode_kind(words, nwords, states_in, fc, alphabet, sy, row_class, rows, cols, E, \
                                          escapes, nesc, kind, out_i64, out_f32, scale, zero_point, codebook, \
                                          codebook_size)
    switch (out_kind) {
    case LC_OUT_I64: return LC_DECODE_AS(LC_OUT_I64);
    case LC_OUT_AFFINE: return LC_DECODE_AS(LC_OUT_AFFINE);
    case LC_OUT_CODEBOOK: return LC_DECODE_AS(LC_OUT_CODEBOOK);
    case LC_OUT_I32: return LC_DECODE_AS(LC_OUT_I32);
    default: return LC_DECODE_AS(LC_OUT_I16);
    }
#undef LC_DECODE_AS
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
            for (uint32_t j = 0; j < f && cum + j < LC_PROB_SCALE; j++) tsy[cum + j] = (uint8_t)s;
            cum += f;
        }
        for (; cum < LC_PROB_SCALE; cum++) tsy[cum] = 0;
    }
}

#endif
