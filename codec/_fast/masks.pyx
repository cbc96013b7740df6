# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Mask kernels: twin of codec.kernels.masks (same results, same statuses, GIL released)."""

from libc.stdint cimport uint8_t, uint16_t, uint64_t, int64_t
from libc.stdlib cimport malloc, free
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

import numpy as np

cdef enum:
    US_ERR_SHORT = -1
    US_ERR_STATE = -2
    US_ERR_WORDS = -3
    US_ERR_CAPACITY = -4
    US_ERR_EARLY = -5
    US_ERR_FINAL = -6
    MK_ERR_NIBBLE = -7
    MK_ERR_PADDING = -8
    MK_ERR_PATTERN = -9


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


def uniform_capacity(Py_ssize_t nwords, uint64_t c):
    """Most symbols ``nwords`` words can hold (see the reference)."""
    cdef int flog2 = 63 - __builtin_clzll(c)
    return (nwords + 1) * (16 // flog2 + 1)


ctypedef fused symbol_t:
    uint8_t
    uint16_t
    int64_t


cdef uint64_t _uniform_words(const symbol_t[::1] s, uint64_t c, uint16_t *buf, Py_ssize_t *wp) noexcept nogil:
    """Code the symbols last to first; the words go below buf[wp[0]]; returns the final state."""
    cdef uint64_t x = c << 16
    cdef Py_ssize_t i
    for i in range(s.shape[0] - 1, -1, -1):
        if x >= (<uint64_t>1 << 32):
            wp[0] -= 1
            buf[wp[0]] = <uint16_t>(x & 0xFFFF)
            x >>= 16
        x = x * c + <uint64_t>s[i]
    return x


def uniform_encode(symbols, uint64_t c):
    """Return ``uniform_stream()``: u64le final state + u16le words (decoder order). Symbols of
    an alphabet of at most 2^8 (2^16) held as uint8 (8- or 16-bit integers) are read as they are:
    no 64-bit copy of a layer's pattern indices."""
    if c < 2:
        raise ValueError(f"uniform_encode needs C >= 2, got {c}")
    cdef const uint8_t[::1] s8
    cdef const uint16_t[::1] s16
    cdef const int64_t[::1] s64
    a = np.asarray(symbols).reshape(-1)
    cdef Py_ssize_t n = a.shape[0], i, nw
    cdef uint64_t x
    cdef uint8_t *o
    cdef uint16_t *buf = <uint16_t *>malloc((n + 1) * sizeof(uint16_t))
    cdef Py_ssize_t wp = n + 1
    if buf == NULL:
        raise MemoryError()
    try:
        if c <= (1 << 8) and a.dtype == np.uint8:
            s8 = np.ascontiguousarray(a)
            with nogil:
                x = _uniform_words(s8, c, buf, &wp)
        elif c <= (1 << 16) and a.dtype.kind in "iu" and a.dtype.itemsize <= 2:
            s16 = np.ascontiguousarray(a, dtype=np.uint16)
            with nogil:
                x = _uniform_words(s16, c, buf, &wp)
        else:
            s64 = np.ascontiguousarray(a, dtype=np.int64)
            with nogil:
                x = _uniform_words(s64, c, buf, &wp)
        nw = n + 1 - wp
        out = PyBytes_FromStringAndSize(NULL, 8 + 2 * nw)
        o = <uint8_t *>PyBytes_AS_STRING(out)
        with nogil:
            for i in range(8):
                o[i] = <uint8_t>(x >> (8 * i))
            for i in range(nw):  # u16le whatever the host's byte order
                o[8 + 2 * i] = <uint8_t>(buf[wp + i] & 0xFF)
                o[9 + 2 * i] = <uint8_t>(buf[wp + i] >> 8)
        return out
    finally:
        free(buf)


def uniform_decode(data, Py_ssize_t count, uint64_t c):
    """Decode ``count`` symbols of ``uniform_stream()``: (status, at, int64 symbols | 0)."""
    if c < 2:
        raise ValueError(f"uniform_decode needs C >= 2, got {c}")
    cdef const uint8_t[::1] b = memoryview(data).cast("B")
    cdef Py_ssize_t size = b.shape[0], i, wp = 0, nwords
    if size < 8 or (size - 8) % 2:
        return US_ERR_SHORT, 0, 0
    cdef uint64_t lower = c << 16, x = 0
    for i in range(8):
        x |= (<uint64_t>b[i]) << (8 * i)
    if x < lower or x >= (lower << 16):
        return US_ERR_STATE, 0, 0
    nwords = (size - 8) // 2
    if nwords > count:
        return US_ERR_WORDS, 8, 0
    if count > uniform_capacity(nwords, c):
        return US_ERR_CAPACITY, 8, 0
    out = np.empty(count, dtype=np.int64)
    cdef int64_t[::1] o = out
    cdef bint early = False
    cdef bint exact = c >= (1 << 16)
    cdef uint64_t q
    cdef double inv = 1.0 / <double>c
    cdef int64_t r
    with nogil:
        for i in range(count):
            if exact:
                q = x // c
                r = <int64_t>(x - q * c)
            else:
                # x < C * 2^32 < 2^48 is exact in a double: the estimate is off by at most one
                q = <uint64_t>(<double>x * inv)
                r = <int64_t>(x - q * c)
                if r < 0:
                    q -= 1
                    r += <int64_t>c
                elif r >= <int64_t>c:
                    q += 1
                    r -= <int64_t>c
            o[i] = r
            x = q
            if x < lower:
                if wp >= nwords:
                    early = True
                    break
                x = (x << 16) | (<uint64_t>b[8 + 2 * wp]) | ((<uint64_t>b[9 + 2 * wp]) << 8)
                wp += 1
    if early:
        return US_ERR_EARLY, 8, 0
    if wp != nwords or x != lower:
        return US_ERR_FINAL, 8, 0
    return 0, size, out


def nibbles_to_mask(levels, Py_ssize_t rows, Py_ssize_t cols):
    """int32 levels (nibble - 8) of a bitmap mask -> (status, at, bool mask (rows, cols) | 0)."""
    cdef const int[::1] lv = np.ascontiguousarray(levels, dtype=np.int32).reshape(-1)
    cdef Py_ssize_t ncols = (cols + 3) // 4, r, j, k, c, n = lv.shape[0], i
    cdef Py_ssize_t filled_rows = rows if ncols else 0  # no nibbles: however many rows, nothing to expand
    cdef int nib
    cdef int status = 0
    with nogil:
        for i in range(n):
            if lv[i] < -8 or lv[i] > 7:
                status = MK_ERR_NIBBLE
                break
    if status:
        return status, 0, 0
    out = np.empty((rows, cols), dtype=np.uint8)
    cdef uint8_t[:, ::1] o = out
    with nogil:
        for r in range(filled_rows):
            for j in range(ncols):
                nib = lv[r * ncols + j] + 8
                for k in range(4):
                    c = 4 * j + k
                    if c < cols:
                        o[r, c] = (nib >> (3 - k)) & 1
                    elif (nib >> (3 - k)) & 1:
                        status = MK_ERR_PADDING
    if status:
        return status, 0, 0
    return 0, 0, out.view(np.bool_)


def expand_patterns(idx, table, int m):
    """Pattern indices -> (status, at, bool (groups, m) | 0): element k is the bit of value 2^k."""
    cdef const int64_t[::1] ix = np.ascontiguousarray(idx, dtype=np.int64).reshape(-1)
    cdef const unsigned int[::1] t = np.ascontiguousarray(table, dtype=np.uint32)
    cdef Py_ssize_t g, n = ix.shape[0], c = t.shape[0]
    cdef int k
    cdef unsigned int bits
    cdef bint bad = False
    with nogil:
        for g in range(n):
            if ix[g] < 0 or ix[g] >= c:
                bad = True
                break
    if bad:
        return MK_ERR_PATTERN, 0, 0
    out = np.empty((n, m), dtype=np.uint8)
    cdef uint8_t[:, ::1] o = out
    with nogil:
        for g in range(n):
            bits = t[ix[g]]
            for k in range(m):
                o[g, k] = (bits >> k) & 1
    return 0, 0, out.view(np.bool_)
