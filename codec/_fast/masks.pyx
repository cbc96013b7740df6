# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Mask kernels: twin of codec.kernels.masks (same results, same statuses, GIL released)."""

from libc.stdint cimport uint8_t, uint16_t, uint64_t, int64_t
from libc.stdlib cimport malloc, free

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


def uniform_encode(symbols, uint64_t c):
    """Return ``uniform_stream()``: u64le final state + u16le words (decoder order)."""
    if c < 2:
        raise ValueError(f"uniform_encode needs C >= 2, got {c}")
    cdef const int64_t[::1] s = np.ascontiguousarray(symbols, dtype=np.int64).reshape(-1)
    cdef Py_ssize_t n = s.shape[0], i
    cdef uint64_t lower = c << 16, x = lower
    cdef uint16_t *buf = <uint16_t *>malloc((n + 1) * sizeof(uint16_t))
    cdef Py_ssize_t wp = n + 1
    if buf == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n - 1, -1, -1):
                if x >= (<uint64_t>1 << 32):
                    wp -= 1
                    buf[wp] = <uint16_t>(x & 0xFFFF)
                    x >>= 16
                x = x * c + <uint64_t>s[i]
        words = np.empty(n + 1 - wp, dtype="<u2")
        for i in range(n + 1 - wp):
            words[i] = buf[wp + i]
        return int(x).to_bytes(8, "little") + words.tobytes()
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
