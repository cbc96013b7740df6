/* A small layer's levels_payload() (spec 7.4, one chunk) parsed and checked in C: twin of
 * codec.kernels.rans.parse_payload, whose docstring states the contract.
 *
 * Only the common case is handled: a version 2 payload of one chunk with at least one level, every
 * element within the limits of spec 7.4 and 7.5. Anything else (and anything wrong) returns
 * LP_NOT_HANDLED: the caller then reads the payload element by element, which also names what is
 * wrong. So this parser never has to report an error, only to reject what the reference rejects.
 */
#ifndef CODEC_PAYLOAD_IMPL_H
#define CODEC_PAYLOAD_IMPL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adaptive_impl.h"

#define LP_OK 0
#define LP_NOT_HANDLED 1
#define LP_NO_MEMORY 2

typedef struct {
    int escape_limit; /* E */
    int classes;      /* K */
    int states;       /* S */
    int model;        /* lc_model: 0 or 1 */
    int eg_order;     /* k0 (lc_model 1) */
    uint32_t freq[16 * 256];
    size_t nesc;
    int64_t *escapes; /* malloc'ed (nesc of them), or NULL */
    uint32_t state[32];
    size_t words_at; /* byte offset of lc_rans_words */
    size_t nwords;
} lp_payload;

static inline int lp_u(const uint8_t *buf, size_t nbits, size_t *pos, int n, uint64_t *out) {
    if ((size_t)n > nbits - *pos) return -1;
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 1) | (uint64_t)lc_read_bit(buf, nbits, pos);
    *out = v;
    return 0;
}

/* Parse payload buf[0..nbytes) of a rows x cols grid (rows * cols >= 1); version 2 (format 2.0,
 * lc_model 0 only) or 3 (2.1 on). row_class: rows bytes, filled. On LP_OK, p->escapes is the
 * caller's to free. */
static int lp_parse(const uint8_t *buf, size_t nbytes, size_t rows, size_t cols, int version, lp_payload *p,
                    uint8_t *row_class) {
    size_t nbits = nbytes * 8, pos = 0;
    uint64_t v;
    size_t n = rows * cols;
    p->escapes = NULL;
    if ((version != 2 && version != 3) || rows == 0 || cols == 0 || n / cols != rows) return LP_NOT_HANDLED;
    if (lc_read_ue0(buf, nbits, &pos, &v) || v > 127) return LP_NOT_HANDLED;
    int E = (int)v;
    size_t alphabet = 2 * (size_t)E + 2;
    if (lp_u(buf, nbits, &pos, 4, &v)) return LP_NOT_HANDLED;
    int K = (int)v + 1;
    if (lp_u(buf, nbits, &pos, 3, &v) || v > 5) return LP_NOT_HANDLED;
    int S = 1 << v;
    if (lp_u(buf, nbits, &pos, 2, &v) || v > 1 || (version == 2 && v != 0)) return LP_NOT_HANDLED;
    int model = (int)v, k0 = 0;
    if (model == 1) {
        if (K != 1 || S != 1 || lp_u(buf, nbits, &pos, 3, &v)) return LP_NOT_HANDLED;
        k0 = (int)v;
        memset(row_class, 0, rows);
    } else {
        if (lc_read_tables(buf, nbits, pos, (size_t)K, alphabet, p->freq, &pos)) return LP_NOT_HANDLED;
        if (K > 1) {
            int B = 32 - __builtin_clz((unsigned)(K - 1));
            if ((uint64_t)B * rows > nbits - pos) return LP_NOT_HANDLED;
            uint32_t used = 0;
            for (size_t r = 0; r < rows; r++) {
                lp_u(buf, nbits, &pos, B, &v);
                if ((int)v >= K) return LP_NOT_HANDLED;
                row_class[r] = (uint8_t)v;
                used |= 1u << v;
            }
            for (int k = 0; k < K; k++) {
                if (!(used >> k & 1)) continue;
                uint32_t sum = 0;
                for (size_t s = 0; s < alphabet; s++) sum |= p->freq[k * alphabet + s];
                if (!sum) return LP_NOT_HANDLED; /* a used class with an empty table */
            }
        } else {
            uint32_t sum = 0;
            for (size_t s = 0; s < alphabet; s++) sum |= p->freq[s];
            if (!sum) return LP_NOT_HANDLED;
            memset(row_class, 0, rows);
        }
    }
    uint64_t count;
    if (lc_read_ue0(buf, nbits, &pos, &count) || count > n || count * 2 > nbits - pos) return LP_NOT_HANDLED;
    if (count) {
        p->escapes = (int64_t *)malloc(count * sizeof(int64_t));
        if (!p->escapes) return LP_NO_MEMORY;
    }
    for (uint64_t j = 0; j < count; j++) {
        uint64_t negative, magnitude;
        if (lp_u(buf, nbits, &pos, 1, &negative) || lc_read_ue0(buf, nbits, &pos, &magnitude) ||
            magnitude >= ((uint64_t)1 << 62)) /* the reference takes larger ones apart */
            goto not_handled;
        int64_t m = (int64_t)magnitude + E + 1;
        p->escapes[j] = negative ? -m : m;
    }
    if (lc_read_ue0(buf, nbits, &pos, &v) || v != 0) goto not_handled; /* one chunk */
    if (pos & 7) { /* byte_alignment(): zero bits */
        size_t pad = 8 - (pos & 7);
        if (pad > nbits - pos || (buf[pos >> 3] & ((1u << pad) - 1))) goto not_handled;
        pos += pad;
    }
    size_t at = pos >> 3;
    if (4 * (size_t)S > nbytes - at) goto not_handled;
    for (int j = 0; j < S; j++, at += 4)
        p->state[j] = (uint32_t)buf[at] | (uint32_t)buf[at + 1] << 8 | (uint32_t)buf[at + 2] << 16 |
                      (uint32_t)buf[at + 3] << 24;
    size_t left = nbytes - at;
    size_t most = model == 1 ? n * LA_MAX_BINS : n;
    if ((left & 1) || left / 2 > most) goto not_handled;
    p->escape_limit = E;
    p->classes = K;
    p->states = S;
    p->model = model;
    p->eg_order = k0;
    p->nesc = (size_t)count;
    p->words_at = at;
    p->nwords = left / 2;
    return LP_OK;
not_handled:
    free(p->escapes);
    p->escapes = NULL;
    return LP_NOT_HANDLED;
}

#endif
