"""Ternary payload kernels in pure Python (numpy): the reference for ``codec._fast.ternary``.

``flag`` is the flag-plus-nonzero scheme of spec 6.6.2 and ``base3`` five trits per byte (6.6.3).
Decoders follow the twin contract of :mod:`codec.kernels`: ``(status, at, value)``, with the
checks made in this order (the compiled twin makes them in the same order):

flag: tn_flag_levels present and <= 15; tn_flags[L] present, then its padding bits; for each level
l = L .. 1, tn_flag_items[l] present, no item 0000, its padding bits, no flag beyond m_(l-1); then
tn_codes present, its padding bits, nothing after it, and a zero padding trit. ``at`` is the byte
offset of the string that is wrong (of the byte after tn_codes for trailing bytes).
"""

from __future__ import annotations

import numpy as np

from ..errors import EncodeError, FormatError, TruncatedError

__all__ = ["NONZERO_ITEMS", "MAX_FLAG_LEVELS", "ERRORS", "flag_level_sizes", "flag_item_flags", "flag_head",
           "flag_codes", "flag_encode", "flag_decode",
           "base3_encode", "base3_decode"]

#: The eight non-zero 4-bit items, in the order of their 3-bit codes 0..7 (spec table 6.6.1).
NONZERO_ITEMS = (0b0001, 0b0011, 0b0100, 0b0101, 0b0111, 0b1100, 0b1101, 0b1111)
#: Largest tn_flag_levels.
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

#: status -> (error class, element, reason); elements are those of ternary_flag() / ternary_base3().
ERRORS = {
    TN_ERR_LEVELS_MISSING: (TruncatedError, "tn_flag_levels", "the payload ends before tn_flag_levels"),
    TN_ERR_LEVELS_RANGE: (FormatError, "tn_flag_levels", f"tn_flag_levels exceeds {MAX_FLAG_LEVELS}"),
    TN_ERR_FLAGS_TRUNCATED: (TruncatedError, "tn_flags[{}]", "the flag string runs past the payload"),
    TN_ERR_FLAGS_PADDING: (FormatError, "tn_flags[{}]", "padding bits of the flag string are not zero"),
    TN_ERR_ITEMS_TRUNCATED: (TruncatedError, "tn_flag_items[{}]", "the item string runs past the payload"),
    TN_ERR_ITEM_ZERO: (FormatError, "tn_flag_items[{}]", "an item of a set flag is 0000"),
    TN_ERR_ITEMS_PADDING: (FormatError, "tn_flag_items[{}]", "padding bits of the item string are not zero"),
    TN_ERR_ITEMS_BEYOND: (FormatError, "tn_flag_items[{}]", "an item sets a flag beyond the flag string's length"),
    TN_ERR_CODES_TRUNCATED: (TruncatedError, "tn_codes", "the code string runs past the payload"),
    TN_ERR_CODES_PADDING: (FormatError, "tn_codes", "padding bits of the code string are not zero"),
    TN_ERR_TRAILING: (FormatError, "tn_codes", "bytes follow tn_codes"),
    TN_ERR_PAD_TRIT: (FormatError, "tn_codes", "the padding trit is not zero"),
    TN_ERR_B3_SIZE: (FormatError, "tn_base3_digits", "the payload is not ceil(N / 5) bytes"),
    TN_ERR_B3_DIGIT: (FormatError, "tn_base3_digits", "a byte exceeds 242"),
    TN_ERR_B3_PAD: (FormatError, "tn_base3_digits", "a padding trit is not zero"),
}

_CODE_OF_ITEM = np.full(16, -1, dtype=np.int64)
_CODE_OF_ITEM[list(NONZERO_ITEMS)] = np.arange(8)
#: item -> its two trits (first, second); 2-bit codes 00 -> 0, 01 -> +1, 11 -> -1.
TRITS_OF_ITEM = np.zeros((16, 2), dtype=np.int8)
for _item in range(16):
    for _k, _shift in enumerate((2, 0)):
        TRITS_OF_ITEM[_item, _k] = {0: 0, 1: 1, 3: -1}.get((_item >> _shift) & 3, 0)


def flag_level_sizes(n_trits: int, levels: int) -> list[int]:
    """Bit lengths m_0 .. m_levels of the flag strings (m_0 = number of items)."""
    sizes = [(n_trits + 1) // 2]
    for _ in range(levels):
        sizes.append((sizes[-1] + 3) // 4)
    return sizes


# ---------------------------------------------------------------------------------------------
# encoders
# ---------------------------------------------------------------------------------------------
def _items(trits) -> np.ndarray:
    """The 4-bit items of int8 trits (pairs in order; an odd count padded with a zero trit)."""
    t = np.asarray(trits).reshape(-1).astype(np.int64)
    if t.size % 2:
        t = np.concatenate([t, [0]])
    code = np.where(t == 0, 0, np.where(t > 0, 1, 3))
    return (code[0::2] << 2) | code[1::2]


def _pack_bits(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()  # MSB first, zero-padded to a byte


def _pack_fields(values: np.ndarray, width: int) -> bytes:
    if values.size == 0:
        return b""
    bits = ((values[:, None] >> np.arange(width - 1, -1, -1)) & 1).reshape(-1)
    return _pack_bits(bits)


def _group_flags(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One flag-compression level: 4-bit groups of flags -> (group flags, the non-zero groups)."""
    padded = np.concatenate([flags, np.zeros(-flags.size % 4, dtype=bool)]).astype(np.int64)
    groups = (padded[0::4] << 3) | (padded[1::4] << 2) | (padded[2::4] << 1) | padded[3::4]
    nz = groups != 0
    return nz, groups[nz]


def flag_item_flags(trits) -> tuple[bytes, int]:
    """The packed item flags of int8 trits (flags[0], MSB first, zero-padded) and how many are set.

    Pieces of a layer whose lengths are multiples of 16 trits (8 items) concatenate to the layer's."""
    flags = _items(trits) != 0
    return _pack_bits(flags), int(flags.sum())


def flag_head(flags, m: int, nonzero: int, levels=None) -> bytes:
    """``tn_flag_levels``, ``tn_flags[L]`` and the item strings of ``ternary_flag()`` from the
    packed item flags (``m`` of them, ``nonzero`` set): everything before ``tn_codes``, whose
    length is ``ceil(3 * nonzero / 8)``. ``levels=None`` adds flag-compression levels while the
    payload strictly shrinks."""
    tail = (3 * nonzero + 7) // 8
    top = np.unpackbits(np.frombuffer(bytes(flags), dtype=np.uint8))[:m].astype(bool)
    stages: list[bytes] = []
    size = len(_pack_bits(top)) + tail
    while levels is None or len(stages) < levels:
        if len(stages) == MAX_FLAG_LEVELS or (levels is None and top.size <= 1):
            if levels is not None:
                raise EncodeError(f"cannot apply {levels} flag levels")
            break
        nz, groups = _group_flags(top)
        packed = _pack_fields(groups, 4)
        new_size = len(_pack_bits(nz)) + len(packed) + sum(len(s) for s in stages) + tail
        if levels is None and new_size >= size:
            break
        top, size = nz, new_size
        stages.append(packed)
    out = bytearray([len(stages)])
    out += _pack_bits(top)
    for packed in reversed(stages):
        out += packed
    return bytes(out)


def flag_codes(trits, acc: int = 0, nacc: int = 0) -> tuple[bytes, int, int]:
    """The 3-bit codes of the non-zero items of int8 trits as whole bytes, after the ``nacc`` < 8
    bits of ``acc`` carried from the previous piece: (bytes, acc, nacc) with the new carry. The
    last carry is flushed as one byte, zero-padded (``flag_encode``)."""
    items = _items(trits)
    codes = _CODE_OF_ITEM[items[items != 0]]
    carry = (np.int64(acc) >> np.arange(nacc - 1, -1, -1)) & 1
    bits = np.concatenate([carry, ((codes[:, None] >> np.arange(2, -1, -1)) & 1).reshape(-1)]).astype(np.uint8)
    whole = bits.size // 8 * 8
    rest = bits[whole:]
    return np.packbits(bits[:whole]).tobytes(), int(rest @ (1 << np.arange(rest.size - 1, -1, -1))), int(rest.size)


def flag_encode(trits, levels=None) -> bytes:
    """Return ``ternary_flag()`` (spec 6.6.2) of int8 trits (``levels`` as in :func:`flag_head`)."""
    t = np.asarray(trits).reshape(-1)
    flags, nonzero = flag_item_flags(t)
    codes, acc, nacc = flag_codes(t)
    return flag_head(flags, (t.size + 1) // 2, nonzero, levels) + codes + (bytes([acc << (8 - nacc)]) if nacc else b"")


_POW3 = np.array([81, 27, 9, 3, 1], dtype=np.int64)


def base3_encode(trits) -> bytes:
    """Return ``ternary_base3()`` (spec 6.6.3): five trits per byte, the first most significant."""
    t = np.asarray(trits).reshape(-1).astype(np.int64) + 1
    t = np.concatenate([t, np.ones(-t.size % 5, dtype=np.int64)])
    return (t.reshape(-1, 5) @ _POW3).astype(np.uint8).tobytes()


# ---------------------------------------------------------------------------------------------
# decoders
# ---------------------------------------------------------------------------------------------
def _bits(buf: np.ndarray, pos: int, nbits: int):
    """(None, bits) of the nbits-bit string at byte pos, or (status kind, None): 'short' / 'pad'."""
    nbytes = (nbits + 7) // 8
    if pos + nbytes > buf.size:
        return "short", None
    bits = np.unpackbits(buf[pos : pos + nbytes])
    if bits[nbits:].any():
        return "pad", None
    return None, bits[:nbits].astype(bool)


def flag_decode(payload, n_trits: int):
    """Decode ``ternary_flag()`` of ``n_trits`` trits: (status, at, int8 trits | detail)."""
    buf = np.frombuffer(memoryview(payload).cast("B"), dtype=np.uint8)
    if buf.size < 1:
        return TN_ERR_LEVELS_MISSING, 0, 0
    levels = int(buf[0])
    if levels > MAX_FLAG_LEVELS:
        return TN_ERR_LEVELS_RANGE, 0, 0
    sizes = flag_level_sizes(n_trits, levels)
    pos = 1
    bad, flags = _bits(buf, pos, sizes[levels])
    if bad:
        return (TN_ERR_FLAGS_TRUNCATED if bad == "short" else TN_ERR_FLAGS_PADDING), pos, levels
    pos += (sizes[levels] + 7) // 8
    for level in range(levels, 0, -1):
        count = int(flags.sum())
        nbytes = (4 * count + 7) // 8
        if pos + nbytes > buf.size:
            return TN_ERR_ITEMS_TRUNCATED, pos, level
        nib = np.empty(2 * nbytes, dtype=np.uint8)
        nib[0::2] = buf[pos : pos + nbytes] >> 4
        nib[1::2] = buf[pos : pos + nbytes] & 15
        if (nib[:count] == 0).any():
            return TN_ERR_ITEM_ZERO, pos, level
        if nib[count:].any():
            return TN_ERR_ITEMS_PADDING, pos, level
        expanded = np.zeros(flags.size * 4, dtype=bool)
        nz_idx = np.flatnonzero(flags)
        for k in range(4):
            expanded[nz_idx * 4 + k] = (nib[:count] >> (3 - k)) & 1
        if expanded[sizes[level - 1]:].any():
            return TN_ERR_ITEMS_BEYOND, pos, level
        flags = expanded[: sizes[level - 1]]
        pos += nbytes
    count = int(flags.sum())
    nbits = 3 * count
    nbytes = (nbits + 7) // 8
    if pos + nbytes > buf.size:
        return TN_ERR_CODES_TRUNCATED, pos, 0
    bits = np.unpackbits(buf[pos : pos + nbytes])
    if bits[nbits:].any():
        return TN_ERR_CODES_PADDING, pos, 0
    if pos + nbytes != buf.size:
        return TN_ERR_TRAILING, pos + nbytes, 0
    codes = bits[:nbits].reshape(count, 3).astype(np.int64) @ np.array([4, 2, 1]) if count else np.zeros(0, np.int64)
    items = np.zeros(flags.size, dtype=np.int64)
    items[flags] = np.asarray(NONZERO_ITEMS, dtype=np.int64)[codes]
    trits = TRITS_OF_ITEM[items].reshape(-1)
    if n_trits % 2 and trits[-1] != 0:
        return TN_ERR_PAD_TRIT, pos, 0
    return 0, buf.size, trits[:n_trits].copy()


def base3_decode(payload, n_trits: int):
    """Decode ``ternary_base3()`` of ``n_trits`` trits: (status, at, int8 trits | 0)."""
    buf = np.frombuffer(memoryview(payload).cast("B"), dtype=np.uint8).astype(np.int64)
    if buf.size != (n_trits + 4) // 5:
        return TN_ERR_B3_SIZE, 0, 0
    if buf.size and buf.max() > 242:
        return TN_ERR_B3_DIGIT, int(np.argmax(buf > 242)), 0
    digits = (buf[:, None] // _POW3) % 3
    trits = (digits.reshape(-1) - 1).astype(np.int8)
    if trits[n_trits:].any():
        return TN_ERR_B3_PAD, buf.size - 1, 0
    return 0, buf.size, trits[:n_trits].copy()
