/* Float-plane assembly (spec 6.5): the kernels of place_exponents and merge_plane, one instance per word
 * width. Twin of codec/kernels/planes.py, whose docstrings state the contract.
 *
 * place: blocks of PL_BLOCK words, each checked and then written while in L1: both loops are branch-free
 * and vectorise. A level outside the field shows as its wrapped field, (level + centre) mod 2^width,
 * having a bit at or above bit ebits; the blocks already written are then put back (exact for valid
 * fields), so nothing changes. With plane 0 (p != NULL: the low 8 bits of mantissa | sign << mbits)
 * merged in the same pass.
 *
 * A plane's sign bit moves by a mask and a shift of the whole word, (p & 1 << s) << t, not by a shift of
 * the byte and back: SSE2 has no byte shifts, and that form ran at half the speed.
 */
#ifndef CODEC_PLANES_IMPL_H
#define CODEC_PLANES_IMPL_H

#include <stddef.h>
#include <stdint.h>

#define PL_BLOCK 4096

#define PL_PLACE(name_, word_)                                                                              \
    static ptrdiff_t name_(word_ *d, size_t n, uint64_t centre, int ebits, int mbits, const uint8_t *p) {   \
        const word_ c = (word_)centre;                                                                     \
        const word_ emask = (word_)((((uint64_t)1) << ebits) - 1), outside = (word_)~emask;                \
        const word_ mmask = (word_)((((uint64_t)1) << (mbits < 8 ? mbits : 8)) - 1);                       \
        const word_ smask = (word_)(mbits < 8 ? 1u << mbits : 0); /* the sign, when plane 0 holds it */    \
        for (size_t start = 0; start < n; start += PL_BLOCK) {                                             \
            size_t stop = n - start > PL_BLOCK ? start + PL_BLOCK : n;                                     \
            word_ bad = 0;                                                                                 \
            for (size_t i = start; i < stop; i++) bad |= (word_)((word_)(d[i] + c) & outside);            \
            if (bad) {                                                                                     \
                size_t i = start;                                                                          \
                while (!(word_)((word_)(d[i] + c) & outside)) i++;                                        \
                for (size_t j = 0; j < start; j++) d[j] = (word_)(((d[j] >> mbits) & emask) - c);          \
                return (ptrdiff_t)i;                                                                       \
            }                                                                                              \
            if (p) {                                                                                       \
                for (size_t i = start; i < stop; i++) {                                                    \
                    word_ pw = p[i];                                                                       \
                    d[i] = (word_)((word_)((word_)(d[i] + c) << mbits) | (word_)(pw & mmask)               \
                                   | (word_)((word_)(pw & smask) << ebits));                               \
                }                                                                                          \
            } else {                                                                                       \
                for (size_t i = start; i < stop; i++) d[i] = (word_)((word_)(d[i] + c) << mbits);          \
            }                                                                                              \
        }                                                                                                  \
        return -1;                                                                                         \
    }

/* OR plane p, bits shift .. shift + 7 of mantissa | sign << mbits, into the words: the mantissa bits in
 * place, the sign bit (if in this plane) at bit mbits + ebits. */
#define PL_MERGE(name_, word_)                                                                              \
    static void name_(word_ *d, size_t n, const uint8_t *p, int shift, int mbits, int ebits) {             \
        const int width = 8 * (int)sizeof(word_);                                                          \
        const int has_mant = shift < mbits && shift < width;                                               \
        const int has_sign = shift <= mbits && mbits < shift + 8 && mbits + ebits < width;                 \
        const int mshift = has_mant ? shift : 0, sshift = has_sign ? ebits + shift : 0;                    \
        const word_ mmask = (word_)(has_mant ? (((uint64_t)1) << mbits) - 1 : 0);                         \
        const word_ smask = (word_)(has_sign ? 1u << (mbits - shift) : 0);                                 \
        for (size_t i = 0; i < n; i++) {                                                                   \
            word_ pw = p[i];                                                                               \
            d[i] |= (word_)((word_)(pw << mshift) & mmask) | (word_)((word_)(pw & smask) << sshift);       \
        }                                                                                                  \
    }

PL_PLACE(pl_place16, uint16_t)
PL_PLACE(pl_place32, uint32_t)
PL_PLACE(pl_place64, uint64_t)
PL_MERGE(pl_merge16, uint16_t)
PL_MERGE(pl_merge32, uint32_t)
PL_MERGE(pl_merge64, uint64_t)

#undef PL_PLACE
#undef PL_MERGE

#endif
