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
    uint64_t la_cost(const int16_t *lv, size_t n, size_t cols, int E, int k0, const uint32_t *table)
    int la_encode(const int16_t *lv, size_t n, size_t cols, int E, int k0, uint16_t **words_out,
                  size_t *nwords_out, uint32_t *state_out)
    int la_decode(const uint8_t *words, size_t nwords, uint32_t state, size_t rows, size_t cols, int E, int k0,
                  const int64_t *escapes, size_t nesc, int out_kind, int64_t *out_i64, float *out_f32,
                  const float *scale, const int64_t *zero_point, const float *codebook, size_t codebook_size,
                  size_t *at)

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
    _check(E, k0)
    cdef const int16_t[::1] lv = _levels(levels, E)
    cdef const uint32_t[::1] t = np.ascontiguousarray(table, dtype=np.uint32).reshape(-1)
    if t.shape[0] != LA_PROB_ONE:
        raise ValueError("table must have 2^15 entries")
    cdef size_t n = lv.shape[0]
    cdef uint64_t c
    with nogil:
        c = la_cost(&lv[0] if n else NULL, n, cols, E, k0, &t[0])
    return int(c)


def decode(words, state, Py_ssize_t rows, Py_ssize_t cols, int E, int k0, escapes, int out_kind, out,
           scale=None, zero_point=None, codebook=None):
    """Decode one chunk into ``out``: (status, at, out) (see the reference)."""
    _check(E, k0)
    if state < LA_RANS_L:
        return LA_ERR_BAD_STATE, -4, 0
    cdef uint32_t st = state
    cdef const uint8_t[::1] w = memoryview(words).cast("B")
    cdef const int64_t[::1] esc = np.ascontiguousarray(np.asarray(escapes, dtype=np.int64).reshape(-1))
    cdef int64_t[::1] o64
    cdef float[::1] o32
    cdef int[::1] o32i
    cdef int16_t[::1] o16i
    cdef const float[::1] sc
    cdef const int64_t[::1] zp
    cdef const float[::1] cb
    cdef int64_t *p64 = NULL
    cdef float *p32 = NULL
    cdef const float *psc = NULL
    cdef const int64_t *pzp = NULL
    cdef const float *pcb = NULL
    cdef size_t cbn = 0
    cdef size_t at = 0
    cdef int result
    if out_kind == LC_OUT_I64:
        o64 = out
        p64 = &o64[0] if o64.shape[0] else NULL
    elif out_kind == LC_OUT_I32:
        o32i = out
        p64 = <int64_t *>&o32i[0] if o32i.shape[0] else NULL
    elif out_kind == LC_OUT_I16:
        o16i = out
        p64 = <int64_t *>&o16i[0] if o16i.shape[0] else NULL
    else:
        o32 = out
        p32 = &o32[0] if o32.shape[0] else NULL
    if out_kind == LC_OUT_AFFINE:
        sc = np.ascontiguousarray(scale, dtype=np.float32)
        zp = np.ascontiguousarray(zero_point, dtype=np.int64)
        psc = &sc[0] if sc.shape[0] else NULL
        pzp = &zp[0] if zp.shape[0] else NULL
    elif out_kind == LC_OUT_CODEBOOK:
        cb = np.ascontiguousarray(codebook, dtype=np.float32)
        cbn = cb.shape[0]
        pcb = &cb[0] if cbn else NULL
    with nogil:
        result = la_decode(&w[0] if w.shape[0] else NULL, w.shape[0] // 2, st, rows, cols, E, k0,
                           &esc[0] if esc.shape[0] else NULL, esc.shape[0], out_kind, p64, p32, psc, pzp, pcb, cbn,
                           &at)
    if result:
        return result, int(at), 0
    return 0, 0, out
