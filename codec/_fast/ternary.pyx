# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Ternary payload kernels: twin of codec.kernels.ternary (same results, same statuses, GIL released)."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, int8_t, uint64_t, int16_t
from libc.string cimport memcpy

import numpy as np

from codec.errors import EncodeError

cdef enum:
    MAX_FLAG_LEVELS = 15
    TN_ERR_LEVELS_MISSING = -1
    TN_ERR_LEVELS_RANGE = -2
    TN_ERR_FLAGS_TRUNCATED = -3
    TN_ERR_FLAGS_PADDING = -4
    TN_ERR_ITEMS_TRUNCATED = -5
    TN_ERR_ITEM_ZERO = -6
    TN_ERR_ITEMS_PADDING = -7
    TN_ERR_ITEMS_BEYOND = -8
    TN_ERR_CODES_TRUNCATED = -9
    TN_ERR_CODES_PADDING = -10
    TN_ERR_TRAILING = -11
    TN_ERR_PAD_TRIT = -12
    TN_ERR_B3_SIZE = -13
    TN_ERR_B3_DIGIT = -14
    TN_ERR_B3_PAD = -15

NONZERO_ITEMS = (0b0001, 0b0011, 0b0100, 0b0101, 0b0111, 0b1100, 0b1101, 0b1111)

# 3-bit code -> the item's two trits, as one 16-bit store (first trit at the lower address)
cdef int16_t PAIR[8]
# item -> 3-bit code (-1: the zero item or an invalid one)
cdef int CODE_OF_ITEM[16]
# base-3 byte -> five trits
cdef int8_t B3[243][5]


cdef int8_t _trit(int code2) noexcept:
    return 0 if code2 == 0 else (1 if code2 == 1 else -1)


cdef void _init_tables() noexcept:
    cdef int k, it, b, d
    cdef int8_t pair[2]
    for k in range(16):
        CODE_OF_ITEM[k] = -1
    for k in range(8):
        it = NONZERO_ITEMS[k]
        CODE_OF_ITEM[it] = k
        pair[0] = _trit((it >> 2) & 3)
        pair[1] = _trit(it & 3)
        PAIR[k] = (<int16_t *>pair)[0]
    for b in range(243):
        d = b
        for k in range(4, -1, -1):
            B3[b][k] = <int8_t>(d % 3 - 1)
            d //= 3


_init_tables()


cdef extern from *:
    int __builtin_clz(unsigned int) nogil
    int __builtin_popcount(unsigned int) nogil


def flag_level_sizes(Py_ssize_t n_trits, int levels):
    """Bit lengths m_0 .. m_levels of the flag strings (m_0 = number of items)."""
    cdef Py_ssize_t m = (n_trits + 1) // 2
    sizes = [m]
    for _ in range(levels):
        m = (m + 3) // 4
        sizes.append(m)
    return sizes


cdef Py_ssize_t _nonzero_groups(const uint8_t[::1] top, Py_ssize_t nbits):
    """How many of the 4-flag groups (nibbles) of a packed flag string are not zero."""
    cdef Py_ssize_t ng = (nbits + 3) // 4, g, count = 0
    with nogil:
        for g in range(ng):
            count += ((top[g >> 1] >> (0 if g & 1 else 4)) & 0xF) != 0
    return count


cdef tuple _group_bits(const uint8_t[::1] top, Py_ssize_t nbits):
    """One flag-compression level of a packed flag string of ``nbits`` flags (MSB first, zero
    padding), whose 4-flag groups are its nibbles: (the packed group flags, their count, the
    non-zero groups packed 4 bits each)."""
    cdef Py_ssize_t ng = (nbits + 3) // 4, g, count = _nonzero_groups(top, nbits)
    nz = np.zeros((ng + 7) // 8, dtype=np.uint8)
    packed = PyBytes_FromStringAndSize(NULL, (count + 1) // 2)
    cdef uint8_t[::1] z = nz
    cdef uint8_t *p = <uint8_t *>PyBytes_AS_STRING(packed)
    cdef int nib
    count = 0
    with nogil:
        for g in range(ng):
            nib = (top[g >> 1] >> (0 if g & 1 else 4)) & 0xF
            if nib:
                z[g >> 3] |= 0x80 >> (g & 7)
                if count % 2 == 0:
                    p[count >> 1] = <uint8_t>(nib << 4)
                else:
                    p[count >> 1] |= <uint8_t>nib
                count += 1
    return nz, ng, packed


def flag_item_flags(trits):
    """The packed item flags of int8 trits and how many are set (see the reference)."""
    cdef const int8_t[::1] t = np.ascontiguousarray(trits, dtype=np.int8).reshape(-1)
    cdef Py_ssize_t n = t.shape[0], m = (n + 1) // 2, i, nonzero = 0
    out = PyBytes_FromStringAndSize(NULL, (m + 7) // 8)
    cdef uint8_t *f = <uint8_t *>PyBytes_AS_STRING(out)
    cdef int byte, j
    cdef Py_ssize_t whole = n // 16
    with nogil:
        for i in range(whole):  # 16 trits -> 8 flags -> one byte
            byte = 0
            for j in range(8):
                byte = (byte << 1) | ((t[16 * i + 2 * j] | t[16 * i + 2 * j + 1]) != 0)
            f[i] = <uint8_t>byte
            nonzero += __builtin_popcount(byte)
        if whole < (m + 7) // 8:
            f[whole] = 0
        for i in range(8 * whole, m):
            if t[2 * i] != 0 or (2 * i + 1 < n and t[2 * i + 1] != 0):
                f[i >> 3] |= 0x80 >> (i & 7)
                nonzero += 1
    return out, nonzero


def flag_head(flags, Py_ssize_t m, Py_ssize_t nonzero, levels=None):
    """Everything of ``ternary_flag()`` before ``tn_codes``, from the packed item flags (see the
    reference); the flag-compression levels work on packed strings (a nibble = a 4-flag group)."""
    cdef Py_ssize_t tail = (nonzero * 3 + 7) // 8
    top, top_bits = np.frombuffer(flags, dtype=np.uint8), m
    stages = []
    size = (top_bits + 7) // 8 + tail
    while levels is None or len(stages) < levels:
        if len(stages) == MAX_FLAG_LEVELS or (levels is None and top_bits <= 1):
            if levels is not None:
                raise EncodeError(f"cannot apply {levels} flag levels")
            break
        ng = (top_bits + 3) // 4
        new_size = (ng + 7) // 8 + (_nonzero_groups(top, top_bits) + 1) // 2 + sum(len(s) for s in stages) + tail
        if levels is None and new_size >= size:
            break  # sized before it is made: a level that does not pay costs no memory
        nz, ng, packed = _group_bits(top, top_bits)
        top, top_bits, size = nz, ng, new_size
        stages.append(packed)
    cdef Py_ssize_t top_bytes = (top_bits + 7) // 8
    parts = [bytes([len(stages)]), memoryview(top)[:top_bytes]]
    parts.extend(reversed(stages))
    return b"".join(parts)


def flag_codes(trits, uint64_t acc=0, int nacc=0):
    """The 3-bit codes of the non-zero items as whole bytes after a carry of ``nacc`` bits:
    (bytes, acc, nacc) (see the reference)."""
    cdef const int8_t[::1] t = np.ascontiguousarray(trits, dtype=np.int8).reshape(-1)
    cdef Py_ssize_t n = t.shape[0], m = (n + 1) // 2, i
    out = PyBytes_FromStringAndSize(NULL, (3 * m + nacc) // 8)
    cdef uint8_t *o = <uint8_t *>PyBytes_AS_STRING(out)
    cdef uint8_t *c = o
    cdef int a, b, item
    with nogil:
        for i in range(m):
            a = t[2 * i]
            b = t[2 * i + 1] if 2 * i + 1 < n else 0
            if a | b:
                item = (((a > 0) - (a < 0)) & 3) << 2 | (((b > 0) - (b < 0)) & 3)
                acc = (acc << 3) | <uint64_t>CODE_OF_ITEM[item]
                nacc += 3
                if nacc >= 8:
                    nacc -= 8
                    c[0] = <uint8_t>(acc >> nacc)
                    c += 1
    return out[:c - o], <int>(acc & ((1u << nacc) - 1)), nacc


def flag_encode(trits, levels=None):
    """Return ``ternary_flag()`` of int8 trits (see the reference for ``levels``)."""
    t = np.ascontiguousarray(trits, dtype=np.int8).reshape(-1)
    flags, nonzero = flag_item_flags(t)
    codes, acc, nacc = flag_codes(t)
    return flag_head(flags, (t.shape[0] + 1) // 2, nonzero, levels) + codes + (bytes([(acc << (8 - nacc)) & 0xFF]) if nacc else b"")


def flag_decode(payload, Py_ssize_t n_trits):
    """Decode ``ternary_flag()`` of ``n_trits`` trits: (status, at, int8 trits | detail)."""
    cdef const uint8_t[::1] buf = memoryview(payload).cast("B")
    cdef Py_ssize_t size = buf.shape[0]
    if size < 1:
        return TN_ERR_LEVELS_MISSING, 0, 0
    cdef int levels = buf[0]
    if levels > MAX_FLAG_LEVELS:
        return TN_ERR_LEVELS_RANGE, 0, 0
    sizes = flag_level_sizes(n_trits, levels)
    cdef Py_ssize_t m = sizes[0]
    cdef Py_ssize_t pos = 1, nbits = sizes[levels], nbytes = (nbits + 7) // 8
    if pos + nbytes > size:
        return TN_ERR_FLAGS_TRUNCATED, pos, levels
    if nbits % 8 and (buf[pos + nbytes - 1] & ((1 << (8 - nbits % 8)) - 1)):
        return TN_ERR_FLAGS_PADDING, pos, levels
    cdef const uint8_t[::1] fl
    if levels == 0:
        fl = buf[pos:pos + nbytes]
        pos += nbytes
    else:
        status, at, value = _expand_levels(buf, sizes, levels)
        if status:
            return status, at, value
        pos = at
        fl = value
    # tn_codes: its length follows from the number of set item flags
    cdef Py_ssize_t nflag_bytes = (m + 7) // 8, count = 0, byte_i
    with nogil:
        for byte_i in range(nflag_bytes):
            count += __builtin_popcount(fl[byte_i])
    nbits = 3 * count
    nbytes = (nbits + 7) // 8
    if pos + nbytes > size:
        return TN_ERR_CODES_TRUNCATED, pos, 0
    if nbits % 8 and (buf[pos + nbytes - 1] & ((1 << (8 - nbits % 8)) - 1)):
        return TN_ERR_CODES_PADDING, pos, 0
    if pos + nbytes != size:
        return TN_ERR_TRAILING, pos + nbytes, 0
    cdef Py_ssize_t codes_at = pos
    trits = np.empty(2 * m + 16, dtype=np.int8)  # slack: whole flag bytes are written
    cdef int8_t[::1] out = trits
    cdef uint64_t acc = 0
    cdef int nacc = 0, j, code
    cdef Py_ssize_t base
    cdef unsigned int fb
    with nogil:
        for byte_i in range(nflag_bytes):
            fb = fl[byte_i]
            base = 16 * byte_i
            # 16 zero trits, then the non-zero items in place (a pair of trits = one 16-bit store)
            (<uint64_t *>&out[base])[0] = 0
            (<uint64_t *>&out[base + 8])[0] = 0
            while fb:
                if nacc < 3:
                    acc = (acc << 8) | buf[pos]
                    pos += 1
                    nacc += 8
                j = __builtin_clz(fb) - 24  # position of the highest set bit, 0 = first item
                fb &= ~(0x80u >> j)
                nacc -= 3
                code = <int>((acc >> nacc) & 7)
                (<int16_t *>&out[base + 2 * j])[0] = PAIR[code]
    if n_trits % 2 and trits[n_trits] != 0:
        return TN_ERR_PAD_TRIT, codes_at, 0
    return 0, size, (trits[:n_trits].copy() if m * 2 + 16 > n_trits + 4096 else trits[:n_trits])


cdef tuple _expand_levels(const uint8_t[::1] buf, list sizes, int levels):
    """Rebuild flags[0] (the packed flag string) from tn_flags[L] and the item strings:
    (0, byte after the last item string, packed flags[0]) or (status, at, level)."""
    cdef Py_ssize_t size = buf.shape[0], pos = 1, i, k, m_top = sizes[levels], m_low, nbytes, count, nf
    cdef int level, nib
    top = np.zeros(m_top, dtype=np.uint8)
    cdef uint8_t[::1] f = top
    with nogil:
        for i in range(m_top):
            f[i] = (buf[pos + (i >> 3)] >> (7 - (i & 7))) & 1
    pos += (m_top + 7) // 8
    cdef uint8_t[::1] e
    cdef int status
    for level in range(levels, 0, -1):
        m_low = sizes[level - 1]
        nf = f.shape[0]
        count = 0
        with nogil:
            for i in range(nf):
                count += f[i]
        nbytes = (4 * count + 7) // 8
        if pos + nbytes > size:
            return TN_ERR_ITEMS_TRUNCATED, pos, level
        expanded = np.zeros(nf * 4, dtype=np.uint8)
        e = expanded
        status = 0
        with nogil:
            for i in range(count):
                nib = (buf[pos + (i >> 1)] >> (4 if i % 2 == 0 else 0)) & 15
                if nib == 0:
                    status = TN_ERR_ITEM_ZERO
                    break
            if status == 0 and count % 2 and (buf[pos + nbytes - 1] & 15):
                status = TN_ERR_ITEMS_PADDING
            if status == 0:
                count = 0
                for i in range(nf):
                    if f[i]:
                        nib = (buf[pos + (count >> 1)] >> (4 if count % 2 == 0 else 0)) & 15
                        count += 1
                        for k in range(4):
                            e[4 * i + k] = (nib >> (3 - k)) & 1
                for i in range(m_low, nf * 4):
                    if e[i]:
                        status = TN_ERR_ITEMS_BEYOND
                        break
        if status:
            return status, pos, level
        f = expanded[:m_low]
        pos += nbytes
    return 0, pos, np.packbits(np.asarray(f))


def base3_encode(trits):
    """Return ``ternary_base3()``: five trits per byte, the first most significant."""
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
    """Decode ``ternary_base3()`` of ``n_trits`` trits: (status, at, int8 trits | 0)."""
    cdef const uint8_t[::1] buf = memoryview(payload).cast("B")
    cdef Py_ssize_t nb = buf.shape[0], i, k, bad = -1
    if nb != (n_trits + 4) // 5:
        return TN_ERR_B3_SIZE, 0, 0
    trits = np.empty(nb * 5, dtype=np.int8)
    cdef int8_t[::1] o = trits
    with nogil:
        for i in range(nb):
            if buf[i] > 242:
                bad = i
                break
            for k in range(5):
                o[5 * i + k] = B3[buf[i]][k]
    if bad >= 0:
        return TN_ERR_B3_DIGIT, bad, 0
    for k in range(n_trits, nb * 5):
        if trits[k] != 0:
            return TN_ERR_B3_PAD, nb - 1, 0
    return 0, nb, trits[:n_trits]
