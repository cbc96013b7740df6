/* Adaptive binary-context level coding: lc_model 1 of a version 2 levels payload (spec/bitstream.md
 * section 7.5). Twin of codec/kernels/adaptive.py, whose docstrings state the contract.
 *
 * One 32-bit rANS state per chunk, 16-bit words, 15-bit probabilities. Each level is binarised
 * (sig, sign, gt1, gt2, Exp-Golomb remainder: prefix bins, one context-coded bit, bypass bits); a
 * bin's probability comes from one of LA_NUM_CTX adaptive contexts (two estimates, fast and slow).
 * The encoder walks the bins forwards to learn their probabilities, then codes them backwards.
 */
#ifndef CODEC_ADAPTIVE_IMPL_H
#define CODEC_ADAPTIVE_IMPL_H

#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function" /* only lc_store and the constants are used here */
#include "rans_impl.h"
#pragma GCC diagnostic pop

#define LA_PROB_BITS 15
#define LA_PROB_ONE (1u << LA_PROB_BITS)
#define LA_PROB_INIT (1u << (LA_PROB_BITS - 1))
#define LA_RATE_FAST 4
#define LA_RATE_SLOW 8
#define LA_GT_FLAGS 2
#define LA_ACT_CLASSES 7
#define LA_MAX_PREFIX 7
#define LA_MAX_EG_ORDER 7
#define LA_CTX_SIG 0
#define LA_CTX_SIGN (LA_CTX_SIG + 3 * LA_ACT_CLASSES)
#define LA_CTX_GT (LA_CTX_SIGN + 3)
#define LA_CTX_PREFIX (LA_CTX_GT + LA_GT_FLAGS * LA_ACT_CLASSES)
#define LA_CTX_MSB (LA_CTX_PREFIX + (LA_MAX_PREFIX + 1) * LA_ACT_CLASSES)
#define LA_NUM_CTX (LA_CTX_MSB + (LA_MAX_PREFIX + 1) * LA_ACT_CLASSES)
#define LA_RANS_L (1u << 16)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LA_LE16(v) ((uint32_t)__builtin_bswap16(v))
#else
#define LA_LE16(v) ((uint32_t)(v))
#endif
#define LA_MAX_BINS 14 /* sig, sign, 2 gt flags, 8 prefix bins, msb, one bypass field */
#define LA_COST_ONE (1u << 16)

enum {
    LA_OK = 0,
    LA_ERR_WORDS_TRUNCATED = -1,
    LA_ERR_FINAL_STATE = -2,
    LA_ERR_ESCAPES = -3,
    LA_ERR_WORDS_LEFT = -4,
    LA_ERR_CODEBOOK = -5,
    LA_ERR_BAD_STATE = -6,
    LA_ERR_PREFIX = -7,
    LA_ERR_MAGNITUDE = -8,
    LA_ERR_AFFINE_RANGE = -9,
    LA_ERR_ESCAPE_SIGN = -10,
    LA_ERR_NO_MEMORY = -11,
};

static inline int la_activity_class(uint32_t act) {
    uint32_t a = act >> 1;
    if (a > 63) a = 63;
    return a ? 32 - __builtin_clz(a) : 0;
}

/* What the binariser does with each bin: store its (start, freq) entry, or add its cost. */
enum { LA_ENTRIES = 1, LA_COST = 2 };

static inline __attribute__((always_inline)) void
la_bin(int what, uint16_t *pa, uint16_t *pb, int ctx, int bit, uint32_t *entries, size_t *ne,
       const uint32_t *table, uint64_t *cost) {
    uint32_t a = pa[ctx], b = pb[ctx];
    uint32_t p = (a + b) >> 1;
    if (bit) {
        if (what == LA_ENTRIES) entries[(*ne)++] = p << 16; /* start 0, freq p */
        else *cost += table[p];
        pa[ctx] = (uint16_t)(a + ((LA_PROB_ONE - a) >> LA_RATE_FAST));
        pb[ctx] = (uint16_t)(b + ((LA_PROB_ONE - b) >> LA_RATE_SLOW));
    } else {
        if (what == LA_ENTRIES) entries[(*ne)++] = ((LA_PROB_ONE - p) << 16) | p;
        else *cost += table[LA_PROB_ONE - p];
        pa[ctx] = (uint16_t)(a - (a >> LA_RATE_FAST));
        pb[ctx] = (uint16_t)(b - (b >> LA_RATE_SLOW));
    }
}

/* Walk the bins of n clipped levels (rows of cols) into entries: freq << 16 | start, grown as needed (the
 * encoder's forward pass; la_cost_orders below walks the same bins for their code length). */
static inline __attribute__((always_inline)) size_t
la_binarise(const int16_t *lv, size_t n, size_t cols, int E, int k0, uint32_t **entries_p, size_t *capacity) {
    uint16_t pa[LA_NUM_CTX], pb[LA_NUM_CTX];
    for (int c = 0; c < LA_NUM_CTX; c++) pa[c] = pb[c] = LA_PROB_INIT;
    size_t ne = 0;
    int p1 = 0;
    uint32_t act = 0;
    size_t col = 0;
    uint32_t *entries = *entries_p;
    for (size_t i = 0; i < n; i++) {
        if (ne + LA_MAX_BINS > *capacity) {
            /* grown as needed: a level has at most LA_MAX_BINS bins, most far fewer */
            size_t grown = 2 * *capacity + LA_MAX_BINS;
            uint32_t *more = (uint32_t *)realloc(entries, grown * sizeof(uint32_t));
            if (!more) return (size_t)-1;
            *entries_p = entries = more;
            *capacity = grown;
        }
        if (col == cols) col = 0;
        if (col == 0) {
            p1 = 0;
            act = 0;
        }
        col++;
        int v = lv[i];
        int g = la_activity_class(act);
        int a1 = p1 < 0 ? -p1 : p1;
        int m = v < 0 ? -v : v;
        la_bin(LA_ENTRIES, pa, pb, LA_CTX_SIG + g * 3 + (a1 < 2 ? a1 : 2), m != 0, entries, &ne, NULL, NULL);
        if (m) {
            la_bin(LA_ENTRIES, pa, pb, LA_CTX_SIGN + (p1 == 0 ? 0 : p1 > 0 ? 1 : 2), v < 0, entries, &ne, NULL, NULL);
            int k = 1;
            while (k <= LA_GT_FLAGS && k <= E) {
                la_bin(LA_ENTRIES, pa, pb, LA_CTX_GT + (k - 1) * LA_ACT_CLASSES + g, m > k, entries, &ne, NULL, NULL);
                if (m == k) break;
                k++;
            }
            if (k > LA_GT_FLAGS && E > LA_GT_FLAGS) {
                uint32_t x = (uint32_t)(m - (LA_GT_FLAGS + 1)) + (1u << k0);
                int n_bits = 31 - __builtin_clz(x); /* bit length - 1 */
                int nb = n_bits - k0;
                for (int j = 0; j < nb; j++)
                    la_bin(LA_ENTRIES, pa, pb, LA_CTX_PREFIX + j * LA_ACT_CLASSES + g, 1, entries, &ne, NULL, NULL);
                la_bin(LA_ENTRIES, pa, pb, LA_CTX_PREFIX + nb * LA_ACT_CLASSES + g, 0, entries, &ne, NULL, NULL);
                if (n_bits) {
                    la_bin(LA_ENTRIES, pa, pb, LA_CTX_MSB + nb * LA_ACT_CLASSES + g, (x >> (n_bits - 1)) & 1, entries, &ne,
                           NULL, NULL);
                    if (n_bits > 1) {
                        int nb_bypass = n_bits - 1;
                        uint32_t f = 1u << (LA_PROB_BITS - nb_bypass);
                        entries[ne++] = (f << 16) | ((x & ((1u << nb_bypass) - 1)) * f);
                    }
                }
            }
        }
        p1 = v;
        act += (uint32_t)m - (act >> 1);
    }
    return ne;
}

/* The code length (units of 2^-16 bit, by `table`) of the bins la_binarise walks, for each of the orders
 * k0s[0..norders-1] (norders <= LA_MAX_EG_ORDER + 1) in one walk: the sig, sign and gt bins do not depend on
 * k0, so they are walked once; each order has its own prefix and msb contexts. */
static void la_cost_orders(const int16_t *lv, size_t n, size_t cols, int E, const int *k0s, int norders,
                           const uint32_t *table, uint64_t *costs) {
    uint16_t pa[LA_NUM_CTX], pb[LA_NUM_CTX];
    uint16_t ra[LA_MAX_EG_ORDER + 1][LA_NUM_CTX], rb[LA_MAX_EG_ORDER + 1][LA_NUM_CTX];
    for (int c = 0; c < LA_NUM_CTX; c++) pa[c] = pb[c] = LA_PROB_INIT;
    for (int o = 0; o < norders; o++) {
        costs[o] = 0;
        for (int c = 0; c < LA_NUM_CTX; c++) ra[o][c] = rb[o][c] = LA_PROB_INIT;
    }
    uint64_t shared = 0;
    int p1 = 0;
    uint32_t act = 0;
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        if (col == cols) col = 0;
        if (col == 0) {
            p1 = 0;
            act = 0;
        }
        col++;
        int v = lv[i];
        int g = la_activity_class(act);
        int a1 = p1 < 0 ? -p1 : p1;
        int m = v < 0 ? -v : v;
        la_bin(LA_COST, pa, pb, LA_CTX_SIG + g * 3 + (a1 < 2 ? a1 : 2), m != 0, NULL, NULL, table, &shared);
        if (m) {
            la_bin(LA_COST, pa, pb, LA_CTX_SIGN + (p1 == 0 ? 0 : p1 > 0 ? 1 : 2), v < 0, NULL, NULL, table, &shared);
            int k = 1;
            while (k <= LA_GT_FLAGS && k <= E) {
                la_bin(LA_COST, pa, pb, LA_CTX_GT + (k - 1) * LA_ACT_CLASSES + g, m > k, NULL, NULL, table, &shared);
                if (m == k) break;
                k++;
            }
            if (k > LA_GT_FLAGS && E > LA_GT_FLAGS) {
                for (int o = 0; o < norders; o++) {
                    int k0 = k0s[o];
                    uint32_t x = (uint32_t)(m - (LA_GT_FLAGS + 1)) + (1u << k0);
                    int n_bits = 31 - __builtin_clz(x);
                    int nb = n_bits - k0;
                    for (int j = 0; j < nb; j++)
                        la_bin(LA_COST, ra[o], rb[o], LA_CTX_PREFIX + j * LA_ACT_CLASSES + g, 1, NULL, NULL, table,
                               &costs[o]);
                    la_bin(LA_COST, ra[o], rb[o], LA_CTX_PREFIX + nb * LA_ACT_CLASSES + g, 0, NULL, NULL, table,
                           &costs[o]);
                    if (n_bits) {
                        la_bin(LA_COST, ra[o], rb[o], LA_CTX_MSB + nb * LA_ACT_CLASSES + g, (x >> (n_bits - 1)) & 1,
                               NULL, NULL, table, &costs[o]);
                        if (n_bits > 1) costs[o] += (uint64_t)(n_bits - 1) * LA_COST_ONE;
                    }
                }
            }
        }
        p1 = v;
        act += (uint32_t)m - (act >> 1);
    }
    for (int o = 0; o < norders; o++) costs[o] += shared;
}

#ifdef __SIZEOF_INT128__
/* la_rcp[f] = floor(2^(32+15) / f) + 1 for f = 1..2^15: floor(x * la_rcp[f] / 2^47) = floor(x / f) for
 * every 32-bit x (Granlund and Montgomery, with l = 15 >= the bit length of f - 1). Filled by la_init(). */
static uint64_t la_rcp[LA_PROB_ONE + 1];
#endif

static void la_init(void) {
#ifdef __SIZEOF_INT128__
    for (uint32_t f = 1; f <= LA_PROB_ONE; f++)
        la_rcp[f] = (uint64_t)((((unsigned __int128)1) << (32 + LA_PROB_BITS)) / f) + 1;
#endif
}

/* Encode: *words_out (malloc'ed, decoder order, native 16-bit words) and *nwords_out, *state_out. */
static int la_encode(const int16_t *lv, size_t n, size_t cols, int E, int k0, uint16_t **words_out,
                     size_t *nwords_out, uint32_t *state_out) {
    /* one walk: the entries grow as needed from about two bins per level */
    size_t capacity = 2 * n + LA_MAX_BINS;
    uint32_t *entries = (uint32_t *)malloc(capacity * sizeof(uint32_t));
    if (!entries) return LA_ERR_NO_MEMORY;
    size_t count = la_binarise(lv, n, cols, E, k0, &entries, &capacity);
    uint16_t *words = count == (size_t)-1 ? NULL : (uint16_t *)malloc((count ? count : 1) * sizeof(uint16_t));
    if (!words) { /* <= one word per bin */
        free(entries);
        return LA_ERR_NO_MEMORY;
    }
    uint32_t x = LA_RANS_L;
    uint16_t *ptr = words + count;
    for (size_t j = count; j-- > 0;) {
        uint32_t f = entries[j] >> 16, start = entries[j] & 0xffff;
        if ((uint64_t)x >= ((uint64_t)f << (32 - LA_PROB_BITS))) {
            *--ptr = (uint16_t)(x & 0xffff);
            x >>= 16;
        }
#ifdef __SIZEOF_INT128__
        /* x / f by a multiplication: the one state's chain would otherwise wait for a division per bin */
        uint32_t q = (uint32_t)(((unsigned __int128)x * la_rcp[f]) >> (32 + LA_PROB_BITS));
        x = (q << LA_PROB_BITS) + (x - q * f) + start;
#else
        x = ((x / f) << LA_PROB_BITS) + (x % f) + start;
#endif
    }
    free(entries);
    size_t nw = (size_t)(words + count - ptr);
    for (size_t j = 0; j < nw; j++) words[j] = ptr[j]; /* to the front */
    *words_out = words;
    *nwords_out = nw;
    *state_out = x;
    return LA_OK;
}

/* Decode one chunk. *at: byte offset in the words reached (on an error). Instantiated per output
 * kind (la_decode below), so the store is chosen once, not per level. */
static inline __attribute__((always_inline)) int
la_decode_kind(const uint8_t *words, size_t nwords, uint32_t state, size_t rows, size_t cols, int E, int k0,
               const int64_t *escapes, size_t nesc, const int out_kind, int64_t *out_i64, float *out_f32,
               const float *scale, const int64_t *zero_point, const float *codebook, size_t codebook_size,
               size_t *at) {
    /* each context's two estimates in one word (a | b << 16): one load and one store per bin */
    uint32_t pab[LA_NUM_CTX];
    for (int c = 0; c < LA_NUM_CTX; c++) pab[c] = LA_PROB_INIT | (LA_PROB_INIT << 16);
    uint32_t x = state;
    size_t wp = 0, ep = 0, i = 0;
    *at = 0;
    if (x < LA_RANS_L) return LA_ERR_BAD_STATE;
    static const uint8_t no_words[2] = {0, 0};
    const uint8_t *wbase = nwords ? words : no_words;
#define LA_RENORM()                                                                                      \
    do {                                                                                                 \
        /* branch-free: the next word (or a dummy past the end) is loaded every time */                  \
        uint32_t need_ = x < LA_RANS_L;                                                                  \
        size_t at_ = wp < nwords ? wp : 0;                                                               \
        uint16_t w16_;                                                                                   \
        memcpy(&w16_, wbase + 2 * at_, 2);                                                               \
        uint32_t w_ = LA_LE16(w16_);                                                                     \
        if (__builtin_expect(need_ && wp >= nwords, 0)) {                                                \
            *at = 2 * wp;                                                                                \
            return LA_ERR_WORDS_TRUNCATED;                                                               \
        }                                                                                                \
        x = need_ ? (x << 16) | w_ : x;                                                                  \
        wp += need_;                                                                                     \
    } while (0)
#define LA_BIN(ctx_, out_)                                                                               \
    do {                                                                                                 \
        int c_ = (ctx_);                                                                                 \
        uint32_t v_ = pab[c_];                                                                           \
        uint32_t a_ = v_ & 0xffff, b_ = v_ >> 16;                                                        \
        uint32_t p_ = (a_ + b_) >> 1;                                                                    \
        uint32_t slot_ = x & (LA_PROB_ONE - 1);                                                          \
        uint32_t bit_ = slot_ < p_;                                                                      \
        uint32_t f_ = bit_ ? p_ : LA_PROB_ONE - p_;                                                      \
        uint32_t s_ = bit_ ? 0 : p_;                                                                     \
        x = f_ * (x >> LA_PROB_BITS) + slot_ - s_;                                                       \
        a_ = bit_ ? a_ + ((LA_PROB_ONE - a_) >> LA_RATE_FAST) : a_ - (a_ >> LA_RATE_FAST);               \
        b_ = bit_ ? b_ + ((LA_PROB_ONE - b_) >> LA_RATE_SLOW) : b_ - (b_ >> LA_RATE_SLOW);               \
        pab[c_] = a_ | (b_ << 16);                                                                       \
        (out_) = (int)bit_;                                                                              \
        LA_RENORM();                                                                                     \
    } while (0)
    for (size_t r = 0; r < (cols ? rows : 0); r++) {
        int p1 = 0;
        uint32_t act = 0;
        float s_r = out_kind == LC_OUT_AFFINE || out_kind == LC_OUT_DQ ? scale[r] : 0.0f;
        int64_t z_r = out_kind == LC_OUT_AFFINE ? zero_point[r] : 0;
        uint32_t dqs = 0; /* the row's trellis state (LC_OUT_DQ) */
        for (size_t col = 0; col < cols; col++, i++) {
            int g = la_activity_class(act);
            int a1 = p1 < 0 ? -p1 : p1;
            int m = 0, negative = 0, bit;
            LA_BIN(LA_CTX_SIG + g * 3 + (a1 < 2 ? a1 : 2), bit);
            if (bit) {
                LA_BIN(LA_CTX_SIGN + (p1 == 0 ? 0 : p1 > 0 ? 1 : 2), negative);
                m = 1;
                while (m <= LA_GT_FLAGS && m <= E) {
                    LA_BIN(LA_CTX_GT + (m - 1) * LA_ACT_CLASSES + g, bit);
                    if (!bit) break;
                    m++;
                }
                if (m > LA_GT_FLAGS && E > LA_GT_FLAGS) {
                    int nb = 0;
                    for (;;) {
                        LA_BIN(LA_CTX_PREFIX + nb * LA_ACT_CLASSES + g, bit);
                        if (!bit) break;
                        if (++nb > LA_MAX_PREFIX) {
                            *at = 2 * wp;
                            return LA_ERR_PREFIX;
                        }
                    }
                    int n_bits = nb + k0;
                    uint32_t xv = 1;
                    if (n_bits) {
                        LA_BIN(LA_CTX_MSB + nb * LA_ACT_CLASSES + g, bit);
                        xv = 2u | (uint32_t)bit;
                        if (n_bits > 1) {
                            int nbp = n_bits - 1;
                            uint32_t f = 1u << (LA_PROB_BITS - nbp);
                            uint32_t slot = x & (LA_PROB_ONE - 1);
                            x = f * (x >> LA_PROB_BITS) + (slot & (f - 1));
                            LA_RENORM();
                            xv = (xv << nbp) | (slot >> (LA_PROB_BITS - nbp));
                        }
                    }
                    m = LA_GT_FLAGS + 1 + (int)xv - (1 << k0);
                    if (m > E + 1) {
                        *at = 2 * wp;
                        return LA_ERR_MAGNITUDE;
                    }
                }
            }
            int64_t level;
            if (m == E + 1) {
                if (ep >= nesc) {
                    *at = 2 * wp;
                    return LA_ERR_ESCAPES;
                }
                level = escapes[ep++];
                if ((level < 0) != (negative != 0)) {
                    *at = 2 * wp;
                    return LA_ERR_ESCAPE_SIGN;
                }
            } else {
                level = negative ? -m : m;
            }
            int err = lc_store(level, out_kind, i, out_i64, out_f32, s_r, z_r, codebook, codebook_size, &dqs);
            if (err) {
                *at = 2 * wp;
                return err;
            }
            p1 = negative ? -m : m;
            act += (uint32_t)m - (act >> 1);
        }
    }
#undef LA_BIN
#undef LA_RENORM
    *at = 2 * wp;
    if (ep != nesc) return LA_ERR_ESCAPES;
    if (wp != nwords) return LA_ERR_WORDS_LEFT;
    if (x != LA_RANS_L) return LA_ERR_FINAL_STATE;
    *at = 0;
    return LA_OK;
}

static int la_decode(const uint8_t *words, size_t nwords, uint32_t state, size_t rows, size_t cols, int E, int k0,
                     const int64_t *escapes, size_t nesc, int out_kind, int64_t *out_i64, float *out_f32,
                     const float *scale, const int64_t *zero_point, const float *codebook, size_t codebook_size,
                     size_t *at) {
#define LA_KIND(kind_)                                                                                   \
    return la_decode_kind(words, nwords, state, rows, cols, E, k0, escapes, nesc, kind_, out_i64, out_f32, scale, \
                          zero_point, codebook, codebook_size, at)
    switch (out_kind) {
    case LC_OUT_I64: LA_KIND(LC_OUT_I64);
    case LC_OUT_I32: LA_KIND(LC_OUT_I32);
    case LC_OUT_I16: LA_KIND(LC_OUT_I16);
    case LC_OUT_AFFINE: LA_KIND(LC_OUT_AFFINE);
    case LC_OUT_DQ: LA_KIND(LC_OUT_DQ);
    default: LA_KIND(LC_OUT_CODEBOOK);
    }
#undef LA_KIND
}

#endif
