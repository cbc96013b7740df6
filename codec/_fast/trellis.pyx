# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Dependent quantization kernels: twin of codec.kernels.trellis (same results, same statuses, GIL released).

The Viterbi search repeats the reference's float64 arithmetic operation for operation (the build
turns off contraction into fused multiply-adds), so both backends choose the same levels."""

from libc.math cimport floor, INFINITY
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport malloc, free

import numpy as np

from codec.errors import FormatError

cdef enum:
    DQ_NUM_STATES = 8
    DQ_ERR_LEVEL = -1

DQ_NEXT_STATE = ((0, 2), (7, 5), (1, 3), (6, 4), (2, 0), (5, 7), (3, 1), (4, 6))
DQ_LEVEL_LIMIT = 1 << 31
ERRORS = {
    DQ_ERR_LEVEL: (FormatError, "level[{}]", "a dq level's magnitude must be below 2^31"),
}

cdef int NEXT[8][2]
NEXT[:] = [[0, 2], [7, 5], [1, 3], [6, 4], [2, 0], [5, 7], [3, 1], [4, 6]]
# NEXT flattened: NEXT2[2 * s + (k & 1)]
cdef uint8_t NEXT2[16]
NEXT2[:] = [0, 2, 7, 5, 1, 3, 6, 4, 2, 0, 5, 7, 3, 1, 4, 6]

cdef int64_t LIMIT = 1LL << 31


cdef Py_ssize_t _first_bad(const int64_t* v, Py_ssize_t n) noexcept nogil:
    """The first i with |v[i]| >= 2^31, or -1: blocks of a vectorisable test, then the exact index."""
    cdef Py_ssize_t i0, i, end
    cdef uint64_t anybad
    for i0 in range(0, n, 1024):
        end = min(i0 + 1024, n)
        anybad = 0
        for i in range(i0, end):
            # |v| >= 2^31 <=> v + (2^31 - 1) outside [0, 2^32 - 2] as an unsigned number
            anybad |= <uint64_t>(<uint64_t>v[i] + <uint64_t>(LIMIT - 1) > <uint64_t>(2 * LIMIT - 2))
        if anybad:
            for i in range(i0, end):
                if v[i] >= LIMIT or v[i] <= -LIMIT:
                    return i
    return -1


cdef inline void _dequantize_rows4(const int64_t* v, Py_ssize_t C, const float* f, float* o) noexcept nogil:
    """Four rows at once: their trellis states are four independent chains (one row's state waits on
    its previous level: a chain of loads, ~7 cycles an element), so the processor overlaps them."""
    cdef const int64_t* v1 = v + C
    cdef const int64_t* v2 = v + 2 * C
    cdef const int64_t* v3 = v + 3 * C
    cdef float* o1 = o + C
    cdef float* o2 = o + 2 * C
    cdef float* o3 = o + 3 * C
    cdef float f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3]
    cdef unsigned s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef int64_t k0, k1, k2, k3
    cdef Py_ssize_t t
    for t in range(C):
        k0 = v[t]
        k1 = v1[t]
        k2 = v2[t]
        k3 = v3[t]
        o[t] = (<float>(2 * k0 - ((k0 > 0) - (k0 < 0)) * <int64_t>(s0 & 1))) * f0
        o1[t] = (<float>(2 * k1 - ((k1 > 0) - (k1 < 0)) * <int64_t>(s1 & 1))) * f1
        o2[t] = (<float>(2 * k2 - ((k2 > 0) - (k2 < 0)) * <int64_t>(s2 & 1))) * f2
        o3[t] = (<float>(2 * k3 - ((k3 > 0) - (k3 < 0)) * <int64_t>(s3 & 1))) * f3
        s0 = NEXT2[2 * s0 + (k0 & 1)]
        s1 = NEXT2[2 * s1 + (k1 & 1)]
        s2 = NEXT2[2 * s2 + (k2 & 1)]
        s3 = NEXT2[2 * s3 + (k3 & 1)]


def _check_levels(levels, rows, cols, writeable=True):
    if not isinstance(levels, np.ndarray) or levels.dtype != np.int64 or levels.ndim != 1:
        raise TypeError("levels must be a 1-D int64 array")
    if rows < 0 or cols < 0 or levels.size != rows * cols:
        raise ValueError(f"levels has {levels.size} elements, not rows * cols = {rows} * {cols}")
    if (writeable and not levels.flags.writeable) or not levels.flags.c_contiguous:
        raise ValueError("levels must be writeable and C-contiguous" if writeable else "levels must be C-contiguous")


def reconstruct(levels, rows, cols):
    """See codec.kernels.trellis.reconstruct."""
    _check_levels(levels, rows, cols)
    cdef int64_t[::1] v = levels
    cdef Py_ssize_t n = levels.size, i, r, t, bad = -1
    cdef Py_ssize_t R = rows, C = cols
    cdef int64_t k
    cdef int s
    if n == 0:
        return 0, 0, 0
    with nogil:
        for i in range(n):
            if v[i] >= LIMIT or v[i] <= -LIMIT:
                bad = i
                break
    if bad >= 0:
        return DQ_ERR_LEVEL, 0, bad
    with nogil:
        for r in range(R):
            s = 0
            for t in range(C):
                k = v[r * C + t]
                if k > 0:
                    v[r * C + t] = 2 * k - (s & 1)
                elif k < 0:
                    v[r * C + t] = 2 * k + (s & 1)
                s = NEXT[s][k & 1]
    return 0, 0, 0


def dequantize(levels, rows, cols, scale, out):
    """See codec.kernels.trellis.dequantize."""
    _check_levels(levels, rows, cols, writeable=False)
    if not isinstance(scale, np.ndarray) or scale.dtype != np.float32 or scale.shape != (rows,):
        raise TypeError("scale must be a float32 array of one entry per row")
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != (rows * cols,) \
            or not out.flags.writeable:
        raise TypeError("out must be a writeable float32 array of rows * cols elements")
    cdef const int64_t[::1] v = levels
    cdef const float[::1] sc = scale
    cdef float[::1] o = out
    cdef Py_ssize_t n = levels.size, i, r, t, bad = -1
    cdef Py_ssize_t R = rows, C = cols
    cdef int64_t k, q
    cdef int s
    cdef float f
    if n == 0:
        return 0, 0, 0
    with nogil:
        bad = _first_bad(&v[0], n)
    if bad >= 0:
        return DQ_ERR_LEVEL, 0, bad
    with nogil:
        for r in range(0, R - R % 4, 4):
            _dequantize_rows4(&v[r * C], C, &sc[r], &o[r * C])
        for r in range(R - R % 4, R):
            s = 0
            f = sc[r]
            for t in range(C):
                k = v[r * C + t]
                # q = 2k - sgn(k) * (s & 1), branch-free: sgn(k) = (k > 0) - (k < 0)
                q = 2 * k - ((k > 0) - (k < 0)) * (s & 1)
                o[r * C + t] = (<float>q) * f
                s = NEXT[s][k & 1]
    return 0, 0, 0


def _check_quantize(x, lam_rate, limit, weight):
    if not isinstance(x, np.ndarray) or x.dtype != np.float64 or x.ndim != 2 or not x.flags.c_contiguous:
        raise TypeError("x must be a C-contiguous 2-D float64 array")
    if weight is not None and (not isinstance(weight, np.ndarray) or weight.dtype != np.float64
                               or weight.shape != (x.shape[1],)):
        raise TypeError("weight must be None or a float64 array of one entry per column of x")
    if not isinstance(lam_rate, np.ndarray) or lam_rate.dtype != np.float64 or lam_rate.ndim != 1:
        raise TypeError("lam_rate must be a 1-D float64 array")
    if not 0 <= limit < DQ_LEVEL_LIMIT // 2 or lam_rate.size != 2 * limit + 1:
        raise ValueError(f"lam_rate must have 2 * limit + 1 entries for a limit in 0..2^30 - 1 (limit {limit}, "
                         f"{lam_rate.size} entries)")


cdef void _viterbi_row(const double* x, Py_ssize_t cols, const double* lam_rate, int64_t limit,
                       const double* weight, int32_t* back_k, int8_t* back_s, int64_t* out) noexcept nogil:
    cdef double cost[8]
    cdef double new[8]
    cdef double ax, cs, aq, diff, c, d
    cdef int64_t base0, base1, m0, mag, k
    cdef int32_t new_k[8]
    cdef int8_t new_s[8]
    cdef int s, j, tgt, p, neg, best
    cdef Py_ssize_t t
    for s in range(8):
        cost[s] = INFINITY
    cost[0] = 0.0
    for t in range(cols):
        ax = x[t]
        neg = ax < 0
        if neg:
            ax = -ax
        base0 = <int64_t>min(floor(ax * 0.5), <double>limit)
        base1 = <int64_t>min(floor((ax + 1.0) * 0.5), <double>limit)
        for s in range(8):
            new[s] = INFINITY
            new_k[s] = 0
            new_s[s] = 0
        for s in range(8):
            p = s & 1
            cs = cost[s]
            m0 = base1 if p else base0
            for j in range(3):
                if j == 0:
                    mag = m0
                elif j == 1:
                    mag = m0 + 1 if m0 + 1 < limit else limit
                else:
                    mag = 0
                aq = <double>(2 * mag - p) if mag > 0 else 0.0
                k = -mag if neg else mag
                diff = ax - aq
                d = diff * diff if weight == NULL else weight[t] * (diff * diff)
                c = cs + (d + lam_rate[k + limit])
                tgt = NEXT[s][mag & 1]
                if c < new[tgt]:
                    new[tgt] = c
                    new_k[tgt] = <int32_t>k
                    new_s[tgt] = <int8_t>s
        for s in range(8):
            cost[s] = new[s]
            back_k[t * 8 + s] = new_k[s]
            back_s[t * 8 + s] = new_s[s]
    best = 0
    for s in range(1, 8):
        if cost[s] < cost[best]:
            best = s
    t = cols - 1
    while t >= 0:
        out[t] = back_k[t * 8 + best]
        best = back_s[t * 8 + best]
        t -= 1


def quantize(x, lam_rate, limit, weight=None):
    """See codec.kernels.trellis.quantize."""
    _check_quantize(x, lam_rate, limit, weight)
    rows, cols = x.shape
    out = np.zeros((rows, cols), dtype=np.int64)
    if x.size == 0:
        return out
    cdef const double[:, ::1] xv = x
    cdef const double[::1] lr = lam_rate
    cdef int64_t[:, ::1] ov = out
    cdef Py_ssize_t R = rows, C = cols, r
    cdef int64_t L = limit
    cdef const double[::1] wv
    cdef const double* wp = NULL
    if weight is not None and cols > 0:
        wv = weight
        wp = &wv[0]
    cdef int32_t* back_k = <int32_t*>malloc(C * 8 * sizeof(int32_t))
    cdef int8_t* back_s = <int8_t*>malloc(C * 8 * sizeof(int8_t))
    if back_k == NULL or back_s == NULL:
        free(back_k)
        free(back_s)
        raise MemoryError()
    try:
        with nogil:
            for r in range(R):
                _viterbi_row(&xv[r, 0], C, &lr[0], L, wp, back_k, back_s, &ov[r, 0])
    finally:
        free(back_k)
        free(back_s)
    return out
