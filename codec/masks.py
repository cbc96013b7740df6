"""Sparse masks (spec section 6.7): coding of boolean masks, N:M patterns, and pruning helpers.

* Unstructured masks: each row's bits are grouped four at a time into nibbles, which go through
  the level coder (spec 7) as levels nibble - 8. Its per-row-class tables follow each row's
  density, and one rANS step covers four elements.
* N:M masks (1 <= N < M <= 16) along an axis: each group of M elements keeps exactly N; the
  group's pattern index among the C(M, N) patterns is coded with a uniform-probability rANS that
  costs log2 C(M, N) bits per group (+8 bytes).
* Hierarchical N:M: N1 of every M1 groups are kept, and N2 of every M2 elements inside kept groups.
* Hybrid: per block of rows, either N:M or dense.

This module is the pure-Python reference; ``codec._fast._masks`` has the compiled twins of the
pattern coder.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .errors import EncodeError, FormatError

__all__ = ["patterns", "pattern_index", "nm_check", "uniform_encode", "uniform_decode", "prune_magnitude",
           "prune_nm", "group_view"]

UNIFORM_WORD = 16


@lru_cache(maxsize=None)
def patterns(n: int, m: int) -> np.ndarray:
    """All M-bit masks with exactly N bits set, ascending (pattern index -> mask, bit k = element k)."""
    if not 1 <= n < m <= 16:
        raise EncodeError(f"N:M needs 1 <= N < M <= 16, got {n}:{m}")
    values = np.arange(1 << m, dtype=np.uint32)
    counts = np.zeros(1 << m, dtype=np.int64)
    for k in range(m):
        counts += (values >> k) & 1
    return values[counts == n]


@lru_cache(maxsize=None)
def pattern_index(n: int, m: int) -> np.ndarray:
    """mask (0 .. 2^M - 1) -> pattern index, or -1 when the mask does not keep exactly N."""
    table = np.full(1 << m, -1, dtype=np.int64)
    table[patterns(n, m)] = np.arange(math.comb(m, n))
    return table


def group_view(mask: np.ndarray, axis: int, m: int) -> np.ndarray:
    """Return the mask as (groups, M) with groups of M consecutive elements along ``axis``."""
    a = np.moveaxis(mask, axis, -1)
    if a.shape[-1] % m:
        raise EncodeError(f"axis {axis} has length {a.shape[-1]}, not a multiple of M={m}")
    return a.reshape(-1, m)


def group_masks(groups: np.ndarray) -> np.ndarray:
    """Bit k of each group's mask = element k of the group."""
    weights = (1 << np.arange(groups.shape[1], dtype=np.int64))
    return (groups.astype(np.int64) * weights).sum(axis=1)


def nm_check(mask: np.ndarray, n: int, m: int, axis: int) -> np.ndarray:
    """Return the pattern index of every group; EncodeError naming the first group that is not N:M."""
    groups = group_view(mask, axis, m)
    idx = pattern_index(n, m)[group_masks(groups)]
    bad = np.flatnonzero(idx < 0)
    if bad.size:
        g = int(bad[0])
        raise EncodeError(f"mask is not {n}:{m} along axis {axis}: group {g} keeps {int(groups[g].sum())} of {m}")
    return idx


# ---------------------------------------------------------------------------------------------
# uniform rANS (spec 6.7.3): symbols in [0, C), state 64 bits in [C * 2^16, C * 2^32)
# ---------------------------------------------------------------------------------------------
def uniform_encode(symbols: np.ndarray, c: int) -> bytes:
    """Return u64le final state + u16le words (decoder order) coding ``symbols`` uniformly over C."""
    lower = c << 16
    x = lower
    words = []
    for s in reversed(symbols.tolist()):
        if x >= 1 << 32:
            words.append(x & 0xFFFF)
            x >>= 16
        x = x * c + s
    words.reverse()
    return x.to_bytes(8, "little") + np.array(words, dtype="<u2").tobytes()


def uniform_decode(data, count: int, c: int, *, path: str = "mask", base_offset: int = 0) -> np.ndarray:
    """Decode ``count`` symbols; the data must end exactly with the final state back at C * 2^16."""
    buf = memoryview(data).cast("B")
    if len(buf) < 8 or (len(buf) - 8) % 2:
        raise FormatError("uniform rANS stream is truncated or has an odd length", path=path,
                          bit_offset=base_offset * 8)
    lower = c << 16
    x = int.from_bytes(buf[:8], "little")
    if not lower <= x < lower << 16:
        raise FormatError("uniform rANS initial state out of range", path=path, bit_offset=base_offset * 8)
    words = np.frombuffer(buf[8:], dtype="<u2").tolist()
    if len(words) > count:
        raise FormatError(f"{len(words)} words for {count} symbols", path=path, bit_offset=(base_offset + 8) * 8)
    out = np.empty(count, dtype=np.int64)
    wp = 0
    for i in range(count):
        out[i] = x % c
        x //= c
        if x < lower:
            if wp >= len(words):
                raise FormatError("uniform rANS words end early", path=path, bit_offset=(base_offset + 8) * 8)
            x = (x << 16) | words[wp]
            wp += 1
    if wp != len(words) or x != lower:
        raise FormatError("uniform rANS stream does not end in its initial state (corrupt)", path=path,
                          bit_offset=(base_offset + 8) * 8)
    return out


# ---------------------------------------------------------------------------------------------
# pruning helpers (for users with dense weights)
# ---------------------------------------------------------------------------------------------
def prune_magnitude(w, fraction: float, *, per_row: bool = False) -> np.ndarray:
    """Return the mask (True = kept) keeping the largest-magnitude ``1 - fraction`` of ``w``
    (per tensor, or per row of the first axis). Ties are broken by position (stable)."""
    a = np.abs(np.asarray(w, dtype=np.float64))
    if not 0.0 <= fraction <= 1.0:
        raise EncodeError(f"fraction must be in [0, 1], got {fraction}")
    rows = a.reshape(a.shape[0], -1) if (per_row and a.ndim >= 1 and a.shape[0]) else a.reshape(1, -1)
    keep = rows.shape[1] - int(round(fraction * rows.shape[1]))
    mask = np.zeros(rows.shape, dtype=bool)
    if keep > 0:
        order = np.argsort(-rows, axis=1, kind="stable")[:, :keep]
        np.put_along_axis(mask, order, True, axis=1)
    return mask.reshape(a.shape)


def prune_nm(w, n: int, m: int, *, axis: int = -1) -> np.ndarray:
    """Return the N:M mask keeping the N largest magnitudes of every M consecutive elements along ``axis``."""
    a = np.abs(np.asarray(w, dtype=np.float64))
    patterns(n, m)  # validates n, m
    axis %= max(a.ndim, 1)
    groups = group_view(a, axis, m)
    order = np.argsort(-groups, axis=1, kind="stable")[:, :n]
    kept = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(kept, order, True, axis=1)
    moved = list(np.moveaxis(a, axis, -1).shape)
    return np.moveaxis(kept.reshape(moved), -1, axis)


# ---------------------------------------------------------------------------------------------
# mask_block() (spec 6.7.1): kind byte + the kind's data
# ---------------------------------------------------------------------------------------------
KIND_BITMAP, KIND_NM, KIND_HIER, KIND_HYBRID = 0, 1, 2, 3
KIND_NAMES = {KIND_BITMAP: "bitmap", KIND_NM: "nm", KIND_HIER: "hierarchical", KIND_HYBRID: "hybrid"}


def _kernels():
    from . import _backend

    return _backend.masks


def _uniform(data, count, c, path, base):
    out = _kernels().uniform_decode(data, count, c)
    return out if out is not None else uniform_decode(data, count, c, path=path, base_offset=base)


def bitmap_grid(shape) -> tuple[int, int]:
    """Rows and row length of a mask of ``shape`` (spec 7.1's grid)."""
    from .levels import level_grid

    return level_grid(tuple(shape))


def encode_bitmap(mask: np.ndarray) -> bytes:
    """Nibbles of each row (4 bits, first element in the high bit, rows zero-padded) as levels."""
    from .levels import encode_levels

    rows, cols = bitmap_grid(mask.shape)
    m = mask.reshape(rows, cols).astype(np.uint8)
    pad = -cols % 4
    if pad:
        m = np.concatenate([m, np.zeros((rows, pad), np.uint8)], axis=1)
    nib = (m[:, 0::4] << 3) | (m[:, 1::4] << 2) | (m[:, 2::4] << 1) | m[:, 3::4]
    return bytes([KIND_BITMAP]) + encode_levels(nib.astype(np.int64) - 8, rows, (cols + 3) // 4)


def decode_bitmap(data, shape, path, base) -> np.ndarray:
    from .levels import decode_levels

    rows, cols = bitmap_grid(shape)
    ncols = (cols + 3) // 4
    levels = decode_levels(data, rows, ncols, out_kind=3, path=path, base_offset=base)
    fast = getattr(_kernels(), "nibbles_to_mask", None)
    if fast is not None:
        mask = fast(levels, rows, cols)
        if mask is not None:
            return mask.reshape(shape)
    nib = levels + 8
    if nib.size and (nib.min() < 0 or nib.max() > 15):
        raise FormatError("mask nibble outside 0..15", path=path, bit_offset=base * 8)
    bits = np.unpackbits(nib.astype(np.uint8).reshape(-1, 1), axis=1)[:, 4:].reshape(rows, ncols * 4)
    if bits[:, cols:].any():
        raise FormatError("mask padding bits are set", path=path, bit_offset=base * 8)
    return bits[:, :cols].astype(bool).reshape(shape)


def encode_nm(mask: np.ndarray, n: int, m: int, axis: int) -> bytes:
    idx = nm_check(mask, n, m, axis)
    return bytes([KIND_NM, n, m, axis]) + _kernels().uniform_encode(idx, math.comb(m, n))


def _expand_groups(idx: np.ndarray, n: int, m: int) -> np.ndarray:
    fast = getattr(_kernels(), "expand_patterns", None)
    if fast is not None:
        out = fast(idx, patterns(n, m), m)
        if out is not None:
            return out
    masks = patterns(n, m)[idx]
    return ((masks[:, None] >> np.arange(m, dtype=np.uint32)) & 1).astype(bool)


def _from_groups(groups: np.ndarray, shape, axis: int) -> np.ndarray:
    moved = list(shape)
    moved.append(moved.pop(axis))
    return np.moveaxis(groups.reshape(moved), -1, axis)


def _check_nm_header(n, m, axis, shape, path, base, multiple=None):
    if not 1 <= n < m <= 16:
        raise FormatError(f"bad N:M {n}:{m}", path=path, bit_offset=base * 8)
    if axis >= len(shape) or shape[axis] % (multiple or m):
        raise FormatError(f"axis {axis} of shape {tuple(shape)} does not hold whole groups of {multiple or m}",
                          path=path, bit_offset=base * 8)


def decode_nm(data, shape, path, base) -> np.ndarray:
    buf = memoryview(data).cast("B")
    if len(buf) < 3:
        raise FormatError("N:M header truncated", path=path, bit_offset=base * 8)
    n, m, axis = buf[0], buf[1], buf[2]
    _check_nm_header(n, m, axis, shape, path, base)
    count = math.prod(shape) // m
    idx = _uniform(buf[3:], count, math.comb(m, n), path, base + 3)
    return _from_groups(_expand_groups(idx, n, m), shape, axis)


def encode_hierarchical(mask: np.ndarray, levels, axis: int) -> bytes:
    (n1, m1), (n2, m2) = levels
    groups = group_view(mask, axis, m2)  # level-2 groups (units of level 1)
    kept_units = groups.any(axis=1)
    units = kept_units.reshape(-1, m1) if kept_units.size % m1 == 0 else None
    if units is None:
        raise EncodeError(f"axis {axis} does not hold whole blocks of {m1}x{m2} elements")
    idx1 = pattern_index(n1, m1)[group_masks(units)]
    bad = np.flatnonzero(idx1 < 0)
    if bad.size:
        raise EncodeError(f"mask is not hierarchical {n1}:{m1} of {m2}-groups: block {int(bad[0])} keeps "
                          f"{int(units[bad[0]].sum())} groups")
    idx2 = pattern_index(n2, m2)[group_masks(groups[kept_units])]
    bad = np.flatnonzero(idx2 < 0)
    if bad.size:
        raise EncodeError(f"mask is not {n2}:{m2} inside kept groups: kept group {int(bad[0])} is not")
    k = _kernels()
    s1 = k.uniform_encode(idx1, math.comb(m1, n1))
    s2 = k.uniform_encode(idx2, math.comb(m2, n2))
    return bytes([KIND_HIER, n1, m1, n2, m2, axis]) + len(s1).to_bytes(4, "little") + s1 + s2


def decode_hierarchical(data, shape, path, base) -> np.ndarray:
    buf = memoryview(data).cast("B")
    if len(buf) < 9:
        raise FormatError("hierarchical header truncated", path=path, bit_offset=base * 8)
    n1, m1, n2, m2, axis = buf[0], buf[1], buf[2], buf[3], buf[4]
    _check_nm_header(n1, m1, axis, shape, path, base, m1 * m2)
    _check_nm_header(n2, m2, axis, shape, path, base, m1 * m2)
    size1 = int.from_bytes(buf[5:9], "little")
    if 9 + size1 > len(buf):
        raise FormatError("hierarchical stream 1 runs past the block", path=path, bit_offset=(base + 5) * 8)
    blocks = math.prod(shape) // (m1 * m2)
    idx1 = _uniform(buf[9:9 + size1], blocks, math.comb(m1, n1), path, base + 9)
    units = _expand_groups(idx1, n1, m1).reshape(-1)
    idx2 = _uniform(buf[9 + size1:], int(units.sum()), math.comb(m2, n2), path, base + 9 + size1)
    groups = np.zeros((units.size, m2), dtype=bool)
    groups[units] = _expand_groups(idx2, n2, m2)
    return _from_groups(groups, shape, axis)


def encode_hybrid(mask: np.ndarray, n: int, m: int, block_rows: int) -> bytes:
    """Per block of ``block_rows`` rows: N:M along the last axis if it is, else dense (all kept)."""
    if mask.ndim < 2:
        raise EncodeError("hybrid masks need rank >= 2 (blocks of rows, N:M along the last axis)")
    rows = mask.shape[0]
    axis = mask.ndim - 1
    flags, idx = [], []
    for start in range(0, rows, block_rows):
        block = mask[start:start + block_rows]
        if block.all():
            flags.append(0)
            continue
        try:
            idx.append(nm_check(block, n, m, axis))
        except EncodeError as exc:
            raise EncodeError(f"hybrid block at row {start} is neither dense nor {n}:{m}: {exc}") from None
        flags.append(1)
    packed = np.packbits(np.array(flags, dtype=np.uint8)).tobytes()
    stream = _kernels().uniform_encode(np.concatenate(idx) if idx else np.zeros(0, np.int64), math.comb(m, n))
    return bytes([KIND_HYBRID, n, m]) + block_rows.to_bytes(4, "little") + packed + stream


def decode_hybrid(data, shape, path, base) -> np.ndarray:
    buf = memoryview(data).cast("B")
    if len(buf) < 6 or len(shape) < 2:
        raise FormatError("hybrid header truncated or rank < 2", path=path, bit_offset=base * 8)
    n, m = buf[0], buf[1]
    block_rows = int.from_bytes(buf[2:6], "little")
    axis = len(shape) - 1
    _check_nm_header(n, m, axis, shape, path, base)
    if block_rows == 0:
        raise FormatError("hybrid block_rows is 0", path=path, bit_offset=(base + 2) * 8)
    nblocks = -(-shape[0] // block_rows)
    nflag_bytes = (nblocks + 7) // 8
    if 6 + nflag_bytes > len(buf):
        raise FormatError("hybrid flags run past the block", path=path, bit_offset=(base + 6) * 8)
    flags = np.unpackbits(np.frombuffer(buf[6:6 + nflag_bytes], np.uint8))
    if flags[nblocks:].any():
        raise FormatError("hybrid flag padding is set", path=path, bit_offset=(base + 6) * 8)
    flags = flags[:nblocks].astype(bool)
    row_elems = math.prod(shape[1:])
    sparse_rows = sum(min(block_rows, shape[0] - b * block_rows) for b in np.flatnonzero(flags))
    idx = _uniform(buf[6 + nflag_bytes:], sparse_rows * row_elems // m, math.comb(m, n), path, base + 6 + nflag_bytes)
    mask = np.ones(shape, dtype=bool)
    pos = 0
    for b in np.flatnonzero(flags):
        lo, hi = b * block_rows, min(shape[0], (b + 1) * block_rows)
        count = (hi - lo) * row_elems // m
        mask[lo:hi] = _expand_groups(idx[pos:pos + count], n, m).reshape((hi - lo,) + tuple(shape[1:]))
        pos += count
    return mask


def decode_mask(data, shape, *, path: str, base_offset: int) -> tuple[int, np.ndarray]:
    """Decode ``mask_block()``; return (kind, bool mask of ``shape``)."""
    buf = memoryview(data).cast("B")
    if not len(buf):
        raise FormatError("sp_mask_kind missing", path=path, bit_offset=base_offset * 8)
    kind = buf[0]
    decoders = {KIND_BITMAP: decode_bitmap, KIND_NM: decode_nm, KIND_HIER: decode_hierarchical,
                KIND_HYBRID: decode_hybrid}
    if kind not in decoders:
        raise FormatError(f"unknown sp_mask_kind {kind}", path=path, bit_offset=base_offset * 8)
    return kind, decoders[kind](buf[1:], tuple(shape), path, base_offset + 1)


def nm_layout(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2:4 sparse-tensor-core layout of a 2:4 mask along the last axis of a (rows, K) tensor.

    Returns (values (rows, K/2) in group order, metadata (rows, K/16) uint16): the 2-bit position
    (0..3) of kept value j of a row inside its group of 4 is at bits 2*(j mod 8) of word j // 8.
    """
    rows, k = mask.shape
    if k % 16:
        raise ValueError("the 2:4 layout needs rows whose length is a multiple of 16")
    pos = np.nonzero(mask.reshape(rows, k // 4, 4))[2].reshape(rows, k // 2).astype(np.uint16)
    shifts = (2 * np.arange(8, dtype=np.uint16))
    meta = (pos.reshape(rows, k // 16, 8) << shifts).sum(axis=2, dtype=np.uint16)
    return values.reshape(rows, k // 2), meta
