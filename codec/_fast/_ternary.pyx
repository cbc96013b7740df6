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
# 3-bit code -> the item's two trits as one little/big-endian-correct 16-bit store
cdef int16_t PAIR[8]
cdef int8_t _pair[2]
for _k in range(8):
    _pair[0] = T0[_k]
    _pair[1] = T1[_k]
    PAIR[_k] = (<int16_t *>_pair)[0]


cdef extern from *:
    int __builtin_clz(unsigned int) nogil
    int __builtin_popcount(unsigned int) nogil


cdef inline int popcount8(unsigned int x) noexcept nogil:
    return __builtin_popcount(x)


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
    trits = np.empty(2 * m + 16, dtype=np.int8)  # slack: whole flag bytes are written
    cdef int8_t[::1] out = trits
    cdef uint64_t acc = 0
    cdef int nacc = 0, j, code
    cdef Py_ssize_t byte_i, nbytes_flags = (m + 7) // 8, base
    cdef unsigned int fb
    cdef bint bad = False
    cdef uint64_t *zero8
    with nogil:
        for byte_i in range(nbytes_flags):
            fb = fl[byte_i]
            base = 16 * byte_i
            # 16 zero trits, then the non-zero items in place (a pair of trits = one 16-bit store)
            (<uint64_t *>&out[base])[0] = 0
            (<uint64_t *>&out[base + 8])[0] = 0
            if fb == 0:
                continue
            while nacc < 24 and pos < size:
                acc = (acc << 8) | buf[pos]
                pos += 1
                nacc += 8
            if nacc < 3 * popcount8(fb):
                bad = True
                break
            while fb:
                j = __builtin_clz(fb) - 24  # position of the highest set bit, 0 = first item
                fb &= ~(0x80u >> j)
                nacc -= 3
                code = <int>((acc >> nacc) & 7)
                (<int16_t *>&out[base + 2 * j])[0] = PAIR[code]
    if bad or pos != size or (acc & ((<uint64_t>1 << nacc) - 1)) != 0:
        return None
    if n_trits % 2 and trits[n_trits] != 0:
        return None
    return trits[:n_trits].copy() if m * 2 + 16 > n_trits + 4096 else trits[:n_trits]


def _flags_from_levels(const uint8_t[::1] buf, Py_ssize_t n_trits, int levels):
    """Rebuild flags[0] (one byte per flag) from the top flags and the item strings; raise on errors."""
    sizes = ref.flag_level_sizes(n_trits, levels)
    cdef Py_ssize_t size = buf.shape[0], pos = 1, i, k, m_top = sizes[levels], m_low, nb
    nb = (m_top + 7) // 8
    if pos + nb > size:
        raise ref.FormatError("top flags")
    flags = np.unpackbits(np.asarray(buf[pos:pos + nb]))
    if flags[m_top:].any():
        raise ref.FormatError("padding")
    flags = np.ascontiguousarray(flags[:m_top])
    pos += nb
    cdef uint8_t[::1] f
    cdef uint8_t[::1] e
    cdef uint64_t acc
    cdef int nacc, nib
    cdef bint bad
    for level in range(levels, 0, -1):
        m_low = sizes[level - 1]
        f = flags
        expanded = np.zeros(f.shape[0] * 4, dtype=np.uint8)
        e = expanded
        acc = 0
        nacc = 0
        bad = False
        with nogil:
            for i in range(f.shape[0]):
                if f[i]:
                    if nacc < 4:
                        if pos >= size:
                            bad = True
                            break
                        acc = (acc << 8) | buf[pos]
                        pos += 1
                        nacc += 8
                    nacc -= 4
                    nib = <int>((acc >> nacc) & 15)
                    if nib == 0:
                        bad = True
                        break
                    for k in range(4):
                        e[4 * i + k] = (nib >> (3 - k)) & 1
        if bad or (acc & ((<uint64_t>1 << nacc) - 1)) != 0 or expanded[m_low:].any():
            raise ref.FormatError("flag level")
        flags = expanded[:m_low]
    return flags.astype(bool), pos


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
