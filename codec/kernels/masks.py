"""Mask kernels in pure Python: the reference for ``codec._fast.masks``.

* ``uniform_encode`` / ``uniform_decode``: the uniform rANS of ``uniform_stream()`` (spec 6.7.2),
  symbols in [0, C) at log2 C bits each, a 64-bit state in [C * 2^16, C * 2^32) and 16-bit words.
* ``nibbles_to_mask``: bitmap masks (spec 6.7.1) from their levels (nibble - 8).
* ``expand_patterns``: N:M pattern indices to the kept flags of each group.

Decoders return ``(status, at, value)`` (see :mod:`codec.kernels`). uniform_decode checks, in
order: the stream holds a state and whole words; the state's range; no more words than symbols;
enough words for the symbols (before the output is allocated); words running out; the final state.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError, TruncatedError

__all__ = ["ERRORS", "uniform_encode", "uniform_decode", "nibbles_to_mask", "expand_patterns"]

US_ERR_SHORT = -1
US_ERR_STATE = -2
US_ERR_WORDS = -3
US_ERR_CAPACITY = -4
US_ERR_EARLY = -5
US_ERR_FINAL = -6
MK_ERR_NIBBLE = -7
MK_ERR_PADDING = -8
MK_ERR_PATTERN = -9

#: status -> (error class, element, reason); uniform_stream() elements are us_state and us_words.
ERRORS = {
    US_ERR_SHORT: (TruncatedError, "us_state", "the stream is shorter than its state or has an odd length"),
    US_ERR_STATE: (FormatError, "us_state", "the initial state is outside [C * 2^16, C * 2^32)"),
    US_ERR_WORDS: (FormatError, "us_words", "more words than symbols"),
    US_ERR_CAPACITY: (FormatError, "us_words", "too few words for the number of symbols"),
    US_ERR_EARLY: (FormatError, "us_words", "the words end before the last symbol"),
    US_ERR_FINAL: (FormatError, "us_words", "the stream does not end in its initial state (corrupt)"),
    MK_ERR_NIBBLE: (FormatError, "", "a mask nibble is outside 0..15"),
    MK_ERR_PADDING: (FormatError, "", "mask padding bits are set"),
    MK_ERR_PATTERN: (FormatError, "", "a pattern index is out of range"),
}


def uniform_capacity(nwords: int, c: int) -> int:
    """Most symbols ``nwords`` words can hold: between two word reads the state, below C * 2^32,
    is divided by C at most 16 // floor(log2 C) times before it drops under C * 2^16."""
    return (nwords + 1) * (16 // (c.bit_length() - 1) + 1)


def uniform_encode(symbols, c: int) -> bytes:
    """Return ``uniform_stream()``: u64le final state + u16le words (decoder order)."""
    if c < 2:
        raise ValueError(f"uniform_encode needs C >= 2, got {c}")
    lower = c << 16
    x = lower
    words = []
    for s in reversed(np.asarray(symbols).reshape(-1).tolist()):
        if x >= 1 << 32:
            words.append(x & 0xFFFF)
            x >>= 16
        x = x * c + s
    words.reverse()
    return x.to_bytes(8, "little") + np.array(words, dtype="<u2").tobytes()


def uniform_decode(data, count: int, c: int):
    """Decode ``count`` symbols of ``uniform_stream()``: (status, at, int64 symbols | 0)."""
    if c < 2:
        raise ValueError(f"uniform_decode needs C >= 2, got {c}")
    buf = memoryview(data).cast("B")
    if len(buf) < 8 or (len(buf) - 8) % 2:
        return US_ERR_SHORT, 0, 0
    lower = c << 16
    x = int.from_bytes(buf[:8], "little")
    if not lower <= x < lower << 16:
        return US_ERR_STATE, 0, 0
    nwords = (len(buf) - 8) // 2
    if nwords > count:
        return US_ERR_WORDS, 8, 0
    if count > uniform_capacity(nwords, c):
        return US_ERR_CAPACITY, 8, 0
    words = np.frombuffer(buf[8:], dtype="<u2").tolist()
    out = np.empty(count, dtype=np.int64)
    wp = 0
    for i in range(count):
        out[i] = x % c
        x //= c
        if x < lower:
            if wp >= nwords:
                return US_ERR_EARLY, 8, 0
            x = (x << 16) | words[wp]
            wp += 1
    if wp != nwords or x != lower:
        return US_ERR_FINAL, 8, 0
    return 0, len(buf), out


def nibbles_to_mask(levels, rows: int, cols: int):
    """int32 levels (nibble - 8) of a bitmap mask -> (status, at, bool mask (rows, cols) | 0): each
    row's ceil(cols / 4) nibbles hold 4 mask bits each, the first in the high bit."""
    ncols = (cols + 3) // 4
    nib = np.asarray(levels, dtype=np.int64).reshape(rows, ncols) + 8
    if nib.size and (nib.min() < 0 or nib.max() > 15):
        return MK_ERR_NIBBLE, 0, 0
    bits = np.unpackbits(nib.astype(np.uint8).reshape(-1, 1), axis=1)[:, 4:].reshape(rows, ncols * 4)
    if bits[:, cols:].any():
        return MK_ERR_PADDING, 0, 0
    return 0, 0, np.ascontiguousarray(bits[:, :cols]).astype(bool)


def expand_patterns(idx, table, m: int):
    """Pattern indices -> (status, at, bool (groups, m) | 0): element k of a group is bit k of
    ``table[index]`` (the bit of value 2^k)."""
    ix = np.asarray(idx, dtype=np.int64).reshape(-1)
    t = np.asarray(table, dtype=np.uint32)
    if ix.size and (ix.min() < 0 or ix.max() >= t.size):
        return MK_ERR_PATTERN, 0, 0
    return 0, 0, ((t[ix][:, None] >> np.arange(m, dtype=np.uint32)) & 1).astype(bool)
