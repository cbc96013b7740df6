# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Float-plane assembly: twin of codec.kernels.planes (same results, GIL released)."""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int16_t, int32_t, int64_t

import numpy as np

def _check(out):
    if not isinstance(out, np.ndarray) or out.dtype not in (np.uint16, np.uint32, np.uint64) \
            or out.dtype.byteorder not in "=|" or not out.flags.c_contiguous or not out.flags.writeable or out.ndim != 1:
        raise ValueError("out must be a writable contiguous 1-D uint16, uint32 or uint64 array in native order")


def _plane(out, plane):
    p = np.asarray(plane)
    if p.dtype != np.uint8 or p.shape != out.shape:
        raise ValueError("plane must be a uint8 array of out's length")
    return np.ascontiguousarray(p)


cdef extern from "planes_impl.h" nogil:
    ptrdiff_t pl_place16(uint16_t *d, size_t n, uint64_t centre, int ebits, int mbits, const uint8_t *p)
    ptrdiff_t pl_place32(uint32_t *d, size_t n, uint64_t centre, int ebits, int mbits, const uint8_t *p)
    ptrdiff_t pl_place64(uint64_t *d, size_t n, uint64_t centre, int ebits, int mbits, const uint8_t *p)
    void pl_merge16(uint16_t *d, size_t n, const uint8_t *p, int shift, int mbits, int ebits)
    void pl_merge32(uint32_t *d, size_t n, const uint8_t *p, int shift, int mbits, int ebits)
    void pl_merge64(uint64_t *d, size_t n, const uint8_t *p, int shift, int mbits, int ebits)


def place_exponents(out, int64_t centre, int ebits, int mbits, plane=None):
    """``out`` holds levels as signed integers of its width: make them exponent fields in place,
    ``(level + centre) << mbits``, with byte plane 0 merged if given; -1, or the index of the first
    level outside the field (nothing changed)."""
    _check(out)
    cdef const uint8_t[::1] pv
    cdef const uint8_t *pp = NULL
    if plane is not None:
        pv = _plane(out, plane)
        if pv.shape[0]:
            pp = &pv[0]
    cdef uint16_t[::1] o16
    cdef uint32_t[::1] o32
    cdef uint64_t[::1] o64
    cdef Py_ssize_t bad = -1
    cdef size_t n = out.shape[0]
    if n == 0:
        return -1
    if out.dtype == np.uint16:
        o16 = out
        with nogil:
            bad = pl_place16(&o16[0], n, <uint64_t>centre, ebits, mbits, pp)
    elif out.dtype == np.uint32:
        o32 = out
        with nogil:
            bad = pl_place32(&o32[0], n, <uint64_t>centre, ebits, mbits, pp)
    else:
        o64 = out
        with nogil:
            bad = pl_place64(&o64[0], n, <uint64_t>centre, ebits, mbits, pp)
    return bad


def merge_plane(out, plane, int shift, int mbits, int ebits):
    """OR byte plane ``plane`` into the bit patterns ``out`` (see the reference)."""
    _check(out)
    cdef const uint8_t[::1] pv = _plane(out, plane)
    cdef uint16_t[::1] o16
    cdef uint32_t[::1] o32
    cdef uint64_t[::1] o64
    cdef size_t n = out.shape[0]
    if n == 0:
        return
    if out.dtype == np.uint16:
        o16 = out
        with nogil:
            pl_merge16(&o16[0], n, &pv[0], shift, mbits, ebits)
    elif out.dtype == np.uint32:
        o32 = out
        with nogil:
            pl_merge32(&o32[0], n, &pv[0], shift, mbits, ebits)
    else:
        o64 = out
        with nogil:
            pl_merge64(&o64[0], n, &pv[0], shift, mbits, ebits)
