# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Uniform rANS for N:M pattern indices: twin of codec.masks.uniform_encode/uniform_decode.
On invalid input the decoder returns None and the caller runs the reference for the exact error."""

from libc.stdint cimport uint8_t, uint16_t, uint64_t, int64_t
from libc.stdlib cimport malloc, free

import numpy as np


def uniform_encode(symbols, uint64_t c):
    cdef const int64_t[::1] s = np.ascontiguousarray(symbols, dtype=np.int64)
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
    cdef const uint8_t[::1] b = memoryview(data).cast("B")
    cdef Py_ssize_t size = b.shape[0], i, wp = 0, nwords
    if size < 8 or (size - 8) % 2:
        return None
    nwords = (size - 8) // 2
    if nwords > count:
        return None
    cdef uint64_t lower = c << 16, x = 0
    for i in range(8):
        x |= (<uint64_t>b[i]) << (8 * i)
    if x < lower or x >= (lower << 16):
        return None
    out = np.empty(count, dtype=np.int64)
    cdef int64_t[::1] o = out
    cdef bint bad = False
    cdef uint64_t q
    cdef double inv = 1.0 / <double>c
    cdef int64_t r
    with nogil:
        for i in range(count):
            # x < 2^48 is exact in a double: the estimate is off by at most one, fixed below
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
                    bad = True
                    break
                x = (x << 16) | (<uint64_t>b[8 + 2 * wp]) | ((<uint64_t>b[9 + 2 * wp]) << 8)
                wp += 1
    if bad or wp != nwords or x != lower:
        return None
    return out


def nibbles_to_mask(levels, Py_ssize_t rows, Py_ssize_t cols):
    """Twin of the bitmap expansion: int32 levels (nibble - 8) -> bool mask (rows, cols); None if
    a level is outside -8..7 or a padding bit is set."""
    cdef const int[::1] lv = np.ascontiguousarray(levels, dtype=np.int32).reshape(-1)
    cdef Py_ssize_t ncols = (cols + 3) // 4, r, j, k, c
    out = np.empty((rows, cols), dtype=np.uint8)
    cdef uint8_t[:, ::1] o = out
    cdef int nib
    cdef bint bad = False
    with nogil:
        for r in range(rows):
            for j in range(ncols):
                nib = lv[r * ncols + j] + 8
                if nib < 0 or nib > 15:
                    bad = True
                    break
                for k in range(4):
                    c = 4 * j + k
                    if c < cols:
                        o[r, c] = (nib >> (3 - k)) & 1
                    elif (nib >> (3 - k)) & 1:
                        bad = True
            if bad:
                break
    if bad:
        return None
    return out.view(np.bool_)


def expand_patterns(idx, table, int m):
    """pattern indices -> (groups, m) bool rows, bit k of table[idx] = element k; None if an index is out of range."""
    cdef const int64_t[::1] ix = np.ascontiguousarray(idx, dtype=np.int64)
    cdef const unsigned int[::1] t = np.ascontiguousarray(table, dtype=np.uint32)
    cdef Py_ssize_t g, n = ix.shape[0], c = t.shape[0]
    cdef int k
    cdef unsigned int bits
    out = np.empty((n, m), dtype=np.uint8)
    cdef uint8_t[:, ::1] o = out
    cdef bint bad = False
    with nogil:
        for g in range(n):
            if ix[g] < 0 or ix[g] >= c:
                bad = True
                break
            bits = t[ix[g]]
            for k in range(m):
                o[g, k] = (bits >> k) & 1
    if bad:
        return None
    return out.view(np.bool_)
