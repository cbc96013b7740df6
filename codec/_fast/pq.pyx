# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Product-quantization decoding: twin of codec.kernels.pq (same results, GIL released)."""

from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

import numpy as np


def _check(levels, codebook, out):
    if not isinstance(levels, np.ndarray) or levels.dtype != np.int64 or levels.ndim != 1 \
            or not levels.flags.c_contiguous:
        raise ValueError("levels must be a contiguous 1-D int64 array")
    if not isinstance(codebook, np.ndarray) or codebook.dtype != np.float32 or codebook.ndim != 2 \
            or not codebook.flags.c_contiguous or codebook.shape[1] < 1:
        raise ValueError("codebook must be a C-contiguous 2-D float32 array of at least one column")
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.ndim != 1 \
            or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable contiguous 1-D float32 array")
    d = codebook.shape[1]
    if -(-out.size // d) != levels.size:
        raise ValueError(f"out holds {out.size} elements: {levels.size} vectors of {d} need ceil(size / {d}) == "
                         f"{levels.size}")


cdef inline Py_ssize_t _index(int64_t level, int64_t k) noexcept nogil:
    """The centroid index a level stands for, or -1 when it names none. Branch-free (the levels' signs
    are random): j = 2|level| - (level > 0); |level| > K is tested first, so 2|level| cannot overflow."""
    cdef int64_t sign = level >> 63
    cdef uint64_t mag = <uint64_t>((level ^ sign) - sign)
    cdef uint64_t j = 2 * mag - <uint64_t>(level > 0)
    return <Py_ssize_t>j if (mag <= <uint64_t>k) & (j < <uint64_t>k) else -1


cdef Py_ssize_t _gather(const int64_t[::1] lv, const float[:, ::1] cb, float[::1] o, bint acc) noexcept nogil:
    cdef Py_ssize_t v, c, j, nv = lv.shape[0], n = o.shape[0], d = cb.shape[1]
    cdef Py_ssize_t full = n // d
    cdef int64_t k = cb.shape[0]
    cdef const float *base = &cb[0, 0]
    cdef const float *src
    cdef float *dst = &o[0] if n else NULL
    # whole vectors: a fixed-width copy the compiler unrolls for the common widths
    for v in range(full):
        j = _index(lv[v], k)
        if j < 0:
            return v
        src = base + j * d
        if acc:
            for c in range(d):
                dst[c] = dst[c] + src[c]
        elif d == 4:
            dst[0] = src[0]; dst[1] = src[1]; dst[2] = src[2]; dst[3] = src[3]
        elif d == 2:
            dst[0] = src[0]; dst[1] = src[1]
        elif d == 8:
            memcpy(dst, src, 8 * sizeof(float))
        else:
            for c in range(d):
                dst[c] = src[c]
        dst += d
    if full < nv:  # the last vector, cut short
        j = _index(lv[full], k)
        if j < 0:
            return full
        src = base + j * d
        for c in range(n - full * d):
            dst[c] = dst[c] + src[c] if acc else src[c]
    return -1


def gather(levels, codebook, out, bint accumulate):
    """Write or add (binary32) each vector's centroid into ``out``; -1, or the first vector whose index is
    outside the codebook."""
    _check(levels, codebook, out)
    cdef const int64_t[::1] lv = levels
    cdef const float[:, ::1] cb = codebook
    cdef float[::1] o = out
    cdef Py_ssize_t bad
    with nogil:
        bad = _gather(lv, cb, o, accumulate)
    return bad
