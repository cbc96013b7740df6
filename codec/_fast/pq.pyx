# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Product-quantization decoding: twin of codec.kernels.pq (same results, GIL released)."""

from libc.stdint cimport int64_t
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


cdef Py_ssize_t _gather(const int64_t[::1] lv, const float[:, ::1] cb, float[::1] o, bint acc) noexcept nogil:
    cdef Py_ssize_t v, c, nv = lv.shape[0], n = o.shape[0], d = cb.shape[1], at, width
    cdef int64_t k = cb.shape[0], level, j
    cdef const float *src
    cdef float *dst
    for v in range(nv):
        level = lv[v]
        if level > k or level < -k:  # no centroid; 2 * level could overflow
            return v
        j = 2 * level - 1 if level > 0 else -2 * level
        if j >= k:
            return v
        at = v * d
        width = d if at + d <= n else n - at
        src = &cb[j, 0]
        dst = &o[at]
        if acc:
            for c in range(width):
                dst[c] = dst[c] + src[c]
        else:
            memcpy(dst, src, width * sizeof(float))
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
