# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Float-plane assembly: twin of codec.kernels.planes (same results, GIL released)."""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int16_t, int32_t, int64_t

import numpy as np

ctypedef fused word_t:
    uint16_t
    uint32_t
    uint64_t


def _check(out):
    if not isinstance(out, np.ndarray) or out.dtype not in (np.uint16, np.uint32, np.uint64) \
            or out.dtype.byteorder not in "=|" or not out.flags.c_contiguous or not out.flags.writeable or out.ndim != 1:
        raise ValueError("out must be a writable contiguous 1-D uint16, uint32 or uint64 array in native order")


cdef Py_ssize_t _place(word_t[::1] o, int64_t centre, int ebits, int mbits) noexcept nogil:
    cdef Py_ssize_t i, n = o.shape[0]
    cdef int64_t level, top = (<int64_t>1 << ebits) - centre
    cdef int width = 8 * sizeof(word_t)
    for i in range(n):
        # the level is the word read as a signed integer of its width
        level = <int64_t>o[i] if width == 64 else (<int64_t>o[i] - ((<int64_t>(o[i] >> (width - 1))) << width))
        if level < -centre or level >= top:
            return i
    for i in range(n):
        o[i] = <word_t>((o[i] + <word_t>centre) << mbits)
    return -1


def place_exponents(out, int64_t centre, int ebits, int mbits):
    """``out`` holds levels as signed integers of its width: make them exponent fields in place,
    ``(level + centre) << mbits``; -1, or the index of the first level outside the field."""
    _check(out)
    cdef uint16_t[::1] o16
    cdef uint32_t[::1] o32
    cdef uint64_t[::1] o64
    cdef Py_ssize_t bad
    if out.dtype == np.uint16:
        o16 = out
        with nogil:
            bad = _place(o16, centre, ebits, mbits)
    elif out.dtype == np.uint32:
        o32 = out
        with nogil:
            bad = _place(o32, centre, ebits, mbits)
    else:
        o64 = out
        with nogil:
            bad = _place(o64, centre, ebits, mbits)
    return bad


cdef void _merge(word_t[::1] o, const uint8_t[::1] p, int shift, int mbits, int ebits) noexcept nogil:
    cdef Py_ssize_t i, n = o.shape[0]
    cdef word_t mask = <word_t>(((<uint64_t>1) << mbits) - 1)
    cdef int has_mant = shift < mbits
    cdef int has_sign = shift <= mbits < shift + 8
    cdef int sign_at = mbits - shift, sign_to = mbits + ebits
    cdef word_t v
    for i in range(n):
        v = 0
        if has_mant:
            v = (<word_t>p[i] << shift) & mask
        if has_sign:
            v |= <word_t>((p[i] >> sign_at) & 1) << sign_to
        o[i] |= v


def merge_plane(out, plane, int shift, int mbits, int ebits):
    """OR byte plane ``plane`` into the bit patterns ``out`` (see the reference)."""
    _check(out)
    p = np.asarray(plane)
    if p.dtype != np.uint8 or p.shape != out.shape:
        raise ValueError("plane must be a uint8 array of out's length")
    cdef const uint8_t[::1] pv = np.ascontiguousarray(p)
    cdef uint16_t[::1] o16
    cdef uint32_t[::1] o32
    cdef uint64_t[::1] o64
    if out.dtype == np.uint16:
        o16 = out
        with nogil:
            _merge(o16, pv, shift, mbits, ebits)
    elif out.dtype == np.uint32:
        o32 = out
        with nogil:
            _merge(o32, pv, shift, mbits, ebits)
    else:
        o64 = out
        with nogil:
            _merge(o64, pv, shift, mbits, ebits)
