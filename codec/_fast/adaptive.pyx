# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Adaptive binary-context level coding (lc_model 1): twin of codec.kernels.adaptive (GIL released)."""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, int16_t, int64_t, uint64_t
from libc.stdlib cimport free

import numpy as np

cdef extern from "adaptive_impl.h" nogil:
    enum:
        LA_PROB_ONE
        LA_MAX_EG_ORDER
        LA_RANS_L
        LA_ERR_BAD_STATE
        LA_ERR_NO_MEMORY
        LC_OUT_I64
        LC_OUT_AFFINE
        LC_OUT_CODEBOOK
        LC_OUT_I32
        LC_OUT_I16
        LC_OUT_DQ
    void lc_dq_init()
    void la_init()
    void la_cost_orders(const int16_t *lv, size_t n, size_t cols, int E, const int *k0s, int norders,
                        const uint32_t *table, uint64_t *costs)
    int la_encode(const int16_t *lv, size_t n, size_t cols, int E, int k0, uint16_t **words_out,
                  size_t *nwords_out, uint32_t *state_out)
    int la_decode(const uint8_t *words, size_t nwords, uint32_t state, size_t rows, size_t cols, int E, int k0,
                  const int64_t *escapes, size_t nesc, int out_kind, int64_t *out_i64, float *out_f32,
                  const float *scale, const int64_t *zero_point, const float *codebook, size_t codebook_size,
                  size_t *at)

include "lc_out.pxi"

lc_dq_init()  # the trellis block table of LC_OUT_DQ (once, at import, under the GIL)
la_init()  # the encoder's reciprocals

from codec.kernels.adaptive import (LA_PROB_BITS, LA_PROB_INIT, LA_RATE_FAST, LA_RATE_SLOW, LA_GT_FLAGS,  # noqa: F401
                                    LA_ACT_CLASSES, LA_MAX_PREFIX, LA_NUM_CTX, LA_COST_ONE, ERRORS, clip_levels,
                                    cost_table)

__all__ = ["LA_PROB_BITS", "LA_PROB_ONE", "LA_PROB_INIT", "LA_RATE_FAST", "LA_RATE_SLOW", "LA_GT_FLAGS",
           "LA_ACT_CLASSES", "LA_MAX_PREFIX", "LA_MAX_EG_ORDER", "LA_NUM_CTX", "LA_COST_ONE", "ERRORS",
           "clip_levels", "encode", "decode", "cost", "cost_table"]


def _check(int E, int k0):
    if not 0 <= E <= 127:
        raise ValueError("E must be 0..127")
    if not 0 <= k0 <= LA_MAX_EG_ORDER:
        raise ValueError(f"k0 must be 0..{LA_MAX_EG_ORDER}")


def _levels(levels, int E):
    a = np.asarray(levels).reshape(-1)
    if a.size and (int(a.max()) > E + 1 or int(a.min()) < -(E + 1)):
        raise ValueError("levels must be clipped to [-(E + 1), E + 1]")
    return np.ascontiguousarray(a, dtype=np.int16)


def encode(levels, Py_ssize_t cols, int E, int k0):
    """Encode clipped levels as one chunk: (status, state, words) (see the reference)."""
    _check(E, k0)
    cdef const int16_t[::1] lv = _levels(levels, E)
    cdef size_t n = lv.shape[0]
    cdef uint16_t *words = NULL
    cdef size_t nwords = 0
    cdef uint32_t state = 0
    cdef int rc
    with nogil:
        rc = la_encode(&lv[0] if n else NULL, n, cols, E, k0, &words, &nwords, &state)
    if rc == LA_ERR_NO_MEMORY:
        raise MemoryError()
    try:
        out = (<char *>words)[:nwords * 2] if nwords else b""
    finally:
        free(words)
    cdef uint16_t one = 1
    if (<uint8_t *>&one)[0] != 1:
        out = np.frombuffer(out, dtype="=u2").astype("<u2").tobytes()
    return rc, state, out


def cost(levels, Py_ssize_t cols, int E, int k0, table):
    """The code length of encode()'s bins in units of 2^-16 bit (see the reference)."""
    return costs(levels, cols, E, [k0], table)[0]


def costs(levels, Py_ssize_t cols, int E, k0s, table):
    """cost() for each order of ``k0s`` (at most LA_MAX_EG_ORDER + 1 of them) in one walk."""
    orders = [int(k) for k in k0s]
    if len(orders) > LA_MAX_EG_ORDER + 1:
        raise ValueError(f"at most {LA_MAX_EG_ORDER + 1} orders")
    for k in orders:
        _check(E, k)
    cdef const int16_t[::1] lv = _levels(levels, E)
    cdef const uint32_t[::1] t = np.ascontiguousarray(table, dtype=np.uint32).reshape(-1)
    if t.shape[0] != LA_PROB_ONE:
        raise ValueError("table must have 2^15 entries")
    cdef size_t n = lv.shape[0]
    cdef int ks[LA_MAX_EG_ORDER + 1]
    cdef uint64_t out[LA_MAX_EG_ORDER + 1]
    cdef int norders = len(orders)
    for j in range(norders):
        ks[j] = orders[j]
    with nogil:
        la_cost_orders(&lv[0] if n else NULL, n, cols, E, ks, norders, &t[0], out)
    return [int(out[j]) for j in range(norders)]


def decode(words, state, Py_ssize_t rows, Py_ssize_t cols, int E, int k0, escapes, int out_kind, out,
           scale=None, zero_point=None, codebook=None):
    """Decode one chunk into ``out``: (status, at, out) (see the reference)."""
    _check(E, k0)
    if state < LA_RANS_L:
        return LA_ERR_BAD_STATE, -4, 0
    cdef uint32_t st = state
    cdef const uint8_t[::1] w = memoryview(words).cast("B")
    cdef const int64_t[::1] esc = np.ascontiguousarray(np.asarray(escapes, dtype=np.int64).reshape(-1))
    cdef size_t at = 0
    cdef int result
    cdef LcOut o
    keep = lc_out_pointers(out_kind, out, scale, zero_point, codebook, &o)
    with nogil:
        result = la_decode(&w[0] if w.shape[0] else NULL, w.shape[0] // 2, st, rows, cols, E, k0,
                           &esc[0] if esc.shape[0] else NULL, esc.shape[0], out_kind, o.i64, o.f32, o.scale,
                           o.zero_point, o.codebook, o.codebook_size, &at)
    if result:
        return result, int(at), 0
    return 0, 0, out
