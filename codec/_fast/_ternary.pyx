# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Ternary kernels: twins of codec.ternary (same bytes; on any malformed input they return None
and the caller runs the reference, which raises the exact error)."""

from libc.stdint cimport uint8_t, int8_t, uint64_t, int16_t
from libc.string cimport memset

import numpy as np

from codec import ternary as ref

# 3-bit code -> the item's two trits (first, second)
cdef int8_t T0[8]
cdef int8_t T1[8]
cdef int _k, _it
for _k in range(8):
    _it = ref.NONZERO_ITEMS[_k]
    T0[_k] = ref._TRITS_OF_ITEM[_it, 0]
    T1[_k] = ref._TRITS_OF_ITEM[_it, 1]
# base-3 byte -> five trits
cdef int8_t B3[243][5]
cdef int _b, _d
for _b in range(243):
    _d = _b
    for _k in range(4, -1, -1):
        B3[_b][_k] = <int8_t>(_d % 3 - 1)
        _d //= 3


def flag_encode(trits, levels=None):
    """Twin of codec.ternary.flag_encode: items, flags and 3-bit codes in C; levels as the reference."""
    cdef const int8_t[::1] t = np.ascontiguousarray(trits, dtype=np.int8).reshape(-1)
    cdef Py_ssize_t n = t.shape[0], m = (n + 1) // 2, i
    flags = np.zeros(m, dtype=bool)
    codes = np.zeros((m * 3 + 7) // 8 + 1, dtype=np.uint8)
    cdef uint8_t[::1] f = flags.view(np.uint8)
    cdef uint8_t[::1] c = codes
    cdef int a, b, item, code
    cdef uint64_t acc = 0
    cdef int nacc = 0
    cdef Py_ssize_t out = 0
    cdef int codemap[16]
    for i in range(16):
        codemap[i] = -1
    for i in range(8):
        codemap[ref.NONZERO_ITEMS[i]] = i
    with nogil:
        for i in range(m):
            a = t[2 * i]
            b = t[2 * i + 1] if 2 * i + 1 < n else 0
            item = ((0 if a == 0 else (1 if a > 0 else 3)) << 2) | (0 if b == 0 else (1 if b > 0 else 3))
            if item:
                f[i] = 1
                code = codemap[item]
                acc = (acc << 3) | <uint64_t>code
                nacc += 3
                if nacc >= 8:
                    nacc -= 8
                    c[out] = <uint8_t>(acc >> nacc)
                    out += 1
        if nacc:
            c[out] = <uint8_t>(acc << (8 - nacc))
            out += 1
    return ref.flag_encode_from_flags(flags, codes[:out].tobytes(), levels)


def flag_decode(payload, Py_ssize_t n_trits):
    """Twin of codec.ternary.flag_decode; None if the payload is not valid."""
    cdef const uint8_t[::1] buf = memoryview(payload).cast("B")
    cdef Py_ssize_t size = buf.shape[0]
    if size < 1:
        return None
    cdef int levels = buf[0]
    if levels > ref.MAX_FLAG_LEVELS:
        return None
    cdef Py_ssize_t m = (n_trits + 1) // 2
    cdef Py_ssize_t pos, flag_bytes, i
    if levels == 0:
        flag_bytes = (m + 7) // 8
        if 1 + flag_bytes > size:
            return None
        flags_arr = np.asarray(buf[1:1 + flag_bytes])
        pos = 1 + flag_bytes
        if m % 8 and (buf[pos - 1] & ((1 << (8 - m % 8)) - 1)):
            return None
    else:
        # rebuild the item flags through the reference (the upper levels are small)
        try:
            flags_bool, pos = _flags_from_levels(buf, n_trits, levels)
        except ref.FormatError:
            return None
        flags_arr = np.packbits(flags_bool)
    cdef const uint8_t[::1] fl = flags_arr
    trits = np.empty(2 * m, dtype=np.int8)
    cdef int8_t[::1] out = trits
    cdef uint64_t acc = 0
    cdef int nacc = 0, bit, code
    cdef Py_ssize_t item = 0, byte_i, nbytes_flags = (m + 7) // 8
    cdef uint8_t fb
    cdef bint bad = False
    with nogil:
        for byte_i in range(nbytes_flags):
            fb = fl[byte_i]
            for bit in range(8):
                if item >= m:
                    break
                if fb & (0x80 >> bit):
                    if nacc < 3:
                        if pos >= size:
                            bad = True
                            break
                        acc = (acc << 8) | buf[pos]
                        pos += 1
                        nacc += 8
                    nacc -= 3
                    code = <int>((acc >> nacc) & 7)
                    out[2 * item] = T0[code]
                    out[2 * item + 1] = T1[code]
                else:
                    out[2 * item] = 0
                    out[2 * item + 1] = 0
                item += 1
            if bad:
                break
    if bad or pos != size or (acc & ((1 << nacc) - 1)) != 0:
        return None
    if n_trits % 2 and trits[n_trits] != 0:
        return None
    return trits[:n_trits]


def _flags_from_levels(buf, Py_ssize_t n_trits, int levels):
    sizes = ref.flag_level_sizes(n_trits, levels)
    b = np.asarray(buf)
    flags, pos = ref._unpack_bits(b, 1, sizes[levels], "f", "p", 0)
    for level in range(levels, 0, -1):
        count = int(flags.sum())
        groups, pos = ref._unpack_fields(b, pos, count, 4, "g", "p", 0)
        if (groups == 0).any():
            raise ref.FormatError("zero group")
        expanded = np.zeros(flags.size * 4, dtype=bool)
        idx = np.flatnonzero(flags)
        for k in range(4):
            expanded[idx * 4 + k] = (groups >> (3 - k)) & 1
        if expanded[sizes[level - 1]:].any():
            raise ref.FormatError("padding flags")
        flags = expanded[: sizes[level - 1]]
    return flags, pos


def base3_encode(trits):
    cdef const int8_t[::1] t = np.ascontiguousarray(trits, dtype=np.int8).reshape(-1)
    cdef Py_ssize_t n = t.shape[0], nb = (n + 4) // 5, i, k, j
    out = np.empty(nb, dtype=np.uint8)
    cdef uint8_t[::1] o = out
    cdef int v
    with nogil:
        for i in range(nb):
            v = 0
            for k in range(5):
                j = 5 * i + k
                v = v * 3 + ((t[j] + 1) if j < n else 1)
            o[i] = <uint8_t>v
    return out.tobytes()


def base3_decode(payload, Py_ssize_t n_trits):
    """Twin of codec.ternary.base3_decode; None if the payload is not valid."""
    cdef const uint8_t[::1] buf = memoryview(payload).cast("B")
    cdef Py_ssize_t nb = buf.shape[0], i, k
    if nb != (n_trits + 4) // 5:
        return None
    trits = np.empty(nb * 5, dtype=np.int8)
    cdef int8_t[::1] o = trits
    cdef bint bad = False
    with nogil:
        for i in range(nb):
            if buf[i] > 242:
                bad = True
                break
            for k in range(5):
                o[5 * i + k] = B3[buf[i]][k]
    if bad:
        return None
    for k in range(n_trits, nb * 5):
        if trits[k] != 0:
            return None
    return trits[:n_trits]
