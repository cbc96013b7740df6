"""Masks of the sparse mode: ``mask_block()`` (spec 6.7.1-6.7.5) and pruning helpers.

* Unstructured masks (bitmap): each row's bits are grouped four at a time into nibbles, which go
  through the level coder (spec 7) as levels nibble - 8. Its per-row-class tables follow each
  row's density, and one rANS step covers four elements.
* N:M masks (1 <= N < M <= 16) along an axis: each group of M elements keeps exactly N; the
  group's pattern index among the C(M, N) patterns is coded with a uniform-probability rANS
  (``uniform_stream()``) that costs log2 C(M, N) bits per group (+8 bytes).
* Hierarchical N:M: N1 of every M1 units of M2 elements are kept, and N2 of the M2 elements of a kept unit.
* Hybrid: per block of rows, either N:M along the last axis or dense.

The kernels are the pair ``codec.kernels.masks`` / ``codec._fast.masks``. For users:
:func:`prune_magnitude`, :func:`prune_nm` make masks and :func:`nm_layout` gives the 2:4
sparse-tensor-core layout (also importable as ``codec.masks``).
"""

from __future__ import annotations

import enum
import io
import math
from functools import lru_cache

import numpy as np

from .. import _backend
from ..errors import EncodeError
from ..kernels import masks as kernel_reference
from ..kernels import raise_status
from ..levels import LC_OUT_I32, PIECE_ELEMENTS, LevelSource, decode_levels, level_grid, trace_levels_payload, \
    write_levels

__all__ = ["MaskKind", "PackedMask", "patterns", "pattern_index", "nm_check", "group_view", "prune_magnitude",
           "prune_magnitude_packed", "prune_nm", "prune_nm_packed",
           "nm_layout", "encode_bitmap", "encode_nm", "encode_hierarchical", "encode_hybrid", "read_mask_block"]


class MaskKind(enum.IntEnum):
    """``sp_mask_kind``."""

    BITMAP = 0
    NM = 1
    HIERARCHICAL = 2
    HYBRID = 3


@lru_cache(maxsize=None)
def patterns(n: int, m: int) -> np.ndarray:
    """All M-bit numbers with exactly N bits set, ascending: pattern index -> pattern, where element
    k of a group is the bit of value 2^k (spec 6.7.2)."""
    if not 1 <= n < m <= 16:
        raise EncodeError(f"N:M needs 1 <= N < M <= 16, got {n}:{m}")
    values = np.arange(1 << m, dtype=np.uint32)
    counts = np.zeros(1 << m, dtype=np.int64)
    for k in range(m):
        counts += (values >> k) & 1
    return values[counts == n]


@lru_cache(maxsize=None)
def pattern_index(n: int, m: int) -> np.ndarray:
    """pattern (0 .. 2^M - 1) -> pattern index, or -1 when it does not keep exactly N."""
    table = np.full(1 << m, -1, dtype=np.int64)
    table[patterns(n, m)] = np.arange(math.comb(m, n))
    return table


def group_view(mask: np.ndarray, axis: int, m: int) -> np.ndarray:
    """Return the mask as (groups, M): groups of M consecutive elements along ``axis`` (moved last, C order)."""
    a = np.moveaxis(mask, axis, -1)
    if a.shape[-1] % m:
        raise EncodeError(f"axis {axis} has length {a.shape[-1]}, not a multiple of M={m}")
    return a.reshape(-1, m)


def group_masks(groups: np.ndarray) -> np.ndarray:
    """The pattern of each group: element k is the bit of value 2^k (computed a piece at a time:
    no int64 copy of a layer's mask)."""
    m = groups.shape[1]
    out = np.empty(groups.shape[0], dtype=np.int64)
    weights = (1 << np.arange(m, dtype=np.int64)).astype(np.int32 if m < 31 else np.int64)
    step = max(1, PIECE_ELEMENTS // max(m, 1))
    for g in range(0, groups.shape[0], step):
        out[g:g + step] = groups[g:g + step].astype(weights.dtype) @ weights
    return out


def _index_dtype(n: int, m: int):
    """The narrowest unsigned type of the pattern indices (C(M, N) <= C(16, 8) = 12870)."""
    return np.uint8 if math.comb(m, n) <= 256 else np.uint16


def nm_check(mask: np.ndarray, n: int, m: int, axis: int) -> np.ndarray:
    """Return the pattern index of every group; EncodeError naming the first group that is not N:M.
    (A piece of groups at a time; the indices in the narrowest unsigned type.)"""
    groups = group_view(mask, axis, m)
    table = pattern_index(n, m)
    idx = np.empty(groups.shape[0], dtype=_index_dtype(n, m))
    step = max(1, PIECE_ELEMENTS // max(m, 1))
    for start in range(0, groups.shape[0], step):
        piece = table[group_masks(groups[start:start + step])]
        bad = np.flatnonzero(piece < 0)
        if bad.size:
            g = start + int(bad[0])
            raise EncodeError(f"mask is not {n}:{m} along axis {axis}: group {g} keeps {int(groups[g].sum())} of {m}")
        idx[start:start + step] = piece
    return idx


# ---------------------------------------------------------------------------------------------
# packed masks: what the encoder holds of a layer's mask (an eighth of a bool array)
# ---------------------------------------------------------------------------------------------
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


class PackedMask:
    """A mask as packed bits (``np.packbits`` order: element k of the flattened tensor is bit
    7 - k % 8 of byte k // 8), with the kept count before each block of ``BLOCK`` elements so
    that the elements holding kept values i..j are found without unpacking the mask."""

    BLOCK = 1 << 16

    def __init__(self, bits: np.ndarray, shape):
        self.bits, self.shape = bits, tuple(int(d) for d in shape)
        self.size = math.prod(self.shape)
        per = self.BLOCK // 8
        counts = [int(_POPCOUNT[bits[a:a + per]].sum(dtype=np.int64)) for a in range(0, bits.size, per)]
        self.cum = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        self.count = int(self.cum[-1])

    @classmethod
    def from_bool(cls, mask) -> "PackedMask":
        mask = np.asarray(mask)
        return cls(np.packbits(mask.reshape(-1)), mask.shape)

    @classmethod
    def from_pieces(cls, shape, pieces) -> "PackedMask":
        """From consecutive bool pieces, each a multiple of 8 elements long but the last."""
        size = math.prod(shape)
        bits = np.zeros((size + 7) // 8, dtype=np.uint8)
        at = 0
        for piece in pieces:
            packed = np.packbits(piece.reshape(-1))
            bits[at // 8:at // 8 + packed.size] = packed
            at += piece.size
        if at != size:
            raise AssertionError(f"mask pieces cover {at} of {size} elements")
        return cls(bits, shape)

    def get(self, start: int, stop: int) -> np.ndarray:
        """The mask of flat elements start..stop-1 (bool)."""
        first = start // 8
        bits = np.unpackbits(self.bits[first:(stop + 7) // 8])
        return bits[start - 8 * first:stop - 8 * first].view(bool)

    def unpack(self) -> np.ndarray:
        return np.unpackbits(self.bits, count=self.size).view(bool).reshape(self.shape)

    def first_block(self, kept: int) -> int:
        """The block that holds kept value ``kept`` (or the last block)."""
        return int(np.searchsorted(self.cum, kept, side="right")) - 1


def _piece_step(m: int = 1) -> int:
    """Elements of a mask piece: a multiple of 8 (whole packed bytes) and of m (whole groups)."""
    unit = 8 * m // math.gcd(8, m)
    return max(unit, PIECE_ELEMENTS // unit * unit)


# ---------------------------------------------------------------------------------------------
# pruning helpers (for users with dense weights)
# ---------------------------------------------------------------------------------------------
def prune_magnitude(w, fraction: float, *, per_row: bool = False) -> np.ndarray:
    """Return the mask (True = kept) keeping the largest-magnitude ``1 - fraction`` of ``w``
    (per tensor, or per row of the first axis). Ties are broken by position (the earlier is kept);
    NaN magnitudes count as the smallest."""
    a = np.asarray(w)
    if per_row and a.ndim >= 1 and a.shape[0]:
        _check_fraction(fraction)
        return np.stack([_keep_largest(r.reshape(-1), r.size - int(round(fraction * r.size))).reshape(r.shape)
                         for r in a]) if a.shape[0] else np.zeros(a.shape, bool)
    return prune_magnitude_packed(a, fraction).unpack()


def prune_magnitude_packed(w, fraction: float) -> PackedMask:
    """:func:`prune_magnitude` per tensor as a :class:`PackedMask` (no bool array of the tensor)."""
    _check_fraction(fraction)
    a = np.asarray(w)
    flat = a.reshape(-1)
    return PackedMask.from_pieces(a.shape, _largest_pieces(flat, a.size - int(round(fraction * a.size))))


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction <= 1.0:
        raise EncodeError(f"fraction must be in [0, 1], got {fraction}")


def _magnitude_keys(x: np.ndarray) -> np.ndarray:
    """Unsigned keys ordered as |x| with NaN below everything (bit patterns of non-negative floats
    order as their values)."""
    if x.dtype.name == "bfloat16" or x.dtype.kind != "f":
        x = x.astype(np.float32 if x.dtype.itemsize <= 4 else np.float64)
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    bits = np.abs(x).view(np.uint32 if x.dtype.itemsize == 4 else np.uint64)
    keys = bits + bits.dtype.type(1)
    keys[np.isnan(x)] = 0
    return keys


def _keep_largest(flat: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` largest magnitudes of ``flat`` (ties: the earlier), as a bool array."""
    mask = np.empty(flat.size, dtype=bool)
    at = 0
    for piece in _largest_pieces(flat, keep):
        mask[at:at + piece.size] = piece
        at += piece.size
    return mask


def _largest_pieces(flat: np.ndarray, keep: int):
    """The mask of the ``keep`` largest magnitudes of ``flat`` (ties: the earlier) in consecutive
    pieces of a multiple of 8 elements, by radix selection of the threshold key over pieces: no
    sorted or float64 copy of the tensor."""
    step = _piece_step()
    if keep <= 0 or keep >= flat.size:
        for start in range(0, flat.size, step):
            yield np.full(min(step, flat.size - start), keep > 0, dtype=bool)
        return
    width = 64 if flat.dtype.itemsize > 4 else 32
    prefix, remaining = 0, keep  # the keep-th largest key: its high bits, and its rank among them
    for shift in range(width - 16, -1, -16):
        hist = np.zeros(1 << 16, dtype=np.int64)
        for start in range(0, flat.size, step):
            keys = _magnitude_keys(flat[start:start + step])
            if shift + 16 < width:
                keys = keys[(keys >> keys.dtype.type(shift + 16)) == prefix]
            hist += np.bincount(((keys >> keys.dtype.type(shift)) & keys.dtype.type(0xFFFF)).astype(np.int64),
                                minlength=1 << 16)
        above = np.cumsum(hist[::-1])  # above[j]: keys in the bins from the top down to bin 65535 - j
        j = int(np.searchsorted(above, remaining))
        bin_ = (1 << 16) - 1 - j
        remaining -= int(above[j] - hist[bin_])
        prefix = (prefix << 16) | bin_
    # keep every key above the threshold, and its first `remaining` equals in order
    for start in range(0, flat.size, step):
        keys = _magnitude_keys(flat[start:start + step])
        piece = keys > prefix
        if remaining:
            equal = np.flatnonzero(keys == prefix)[:remaining]
            piece[equal] = True
            remaining -= equal.size
        yield piece


def prune_nm(w, n: int, m: int, *, axis: int = -1) -> np.ndarray:
    """Return the N:M mask keeping the N largest magnitudes of every M consecutive elements along
    ``axis`` (ties: the earlier element; NaN magnitudes count as the smallest)."""
    a = np.asarray(w)
    patterns(n, m)  # validates n, m
    axis %= max(a.ndim, 1)
    groups = group_view(a, axis, m)
    kept = np.empty(groups.shape, dtype=bool)
    step = max(1, PIECE_ELEMENTS // (m * m))
    for g in range(0, groups.shape[0], step):
        kept[g:g + step] = _nm_keep(groups[g:g + step], n)
    moved = list(np.moveaxis(a, axis, -1).shape)
    return np.moveaxis(kept.reshape(moved), -1, axis)


def prune_nm_packed(w, n: int, m: int, *, axis: int = -1) -> PackedMask:
    """:func:`prune_nm` as a :class:`PackedMask`; along the last axis (groups in memory order) a
    piece of groups at a time, with no bool array of the tensor."""
    a = np.asarray(w)
    patterns(n, m)
    if a.ndim == 0 or axis % a.ndim != a.ndim - 1:
        return PackedMask.from_bool(prune_nm(a, n, m, axis=axis))
    if a.shape[-1] % m:
        raise EncodeError(f"axis {a.ndim - 1} has length {a.shape[-1]}, not a multiple of M={m}")
    flat = a.reshape(-1)
    step = _piece_step(m)
    return PackedMask.from_pieces(a.shape, (_nm_keep(flat[start:start + step].reshape(-1, m), n).reshape(-1)
                                            for start in range(0, flat.size, step)))


def _nm_keep(groups: np.ndarray, n: int) -> np.ndarray:
    """Of each group (a row), the N elements kept: an element is kept when fewer than N others
    of its group come before it in the order "larger magnitude first, then earlier" (the stable
    descending sort). NaN magnitudes count as the smallest."""
    m = groups.shape[1]
    earlier = np.tri(m, m, -1, dtype=bool)  # earlier[i, j]: j < i
    mag = np.abs(groups.astype(np.float64))
    mag[np.isnan(mag)] = -1.0
    xi, xj = mag[:, :, None], mag[:, None, :]
    rank = (xj > xi).sum(axis=2) + ((xj == xi) & earlier).sum(axis=2)
    return rank < n


def nm_layout(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2:4 sparse-tensor-core layout of a 2:4 mask along the last axis of a (rows, K) tensor (spec 6.7.5).

    Returns (values (rows, K/2) in group order, metadata (rows, K/16) uint16): the 2-bit position
    (0..3) of kept value j of a row inside its group of 4 is at bits 2*(j mod 8) of word j // 8.
    """
    rows, k = mask.shape
    if k % 16:
        raise ValueError("the 2:4 layout needs rows whose length is a multiple of 16")
    pos = np.nonzero(mask.reshape(rows, k // 4, 4))[2].reshape(rows, k // 2).astype(np.uint16)
    shifts = 2 * np.arange(8, dtype=np.uint16)
    meta = (pos.reshape(rows, k // 16, 8) << shifts).sum(axis=2, dtype=np.uint16)
    return values.reshape(rows, k // 2), meta


# ---------------------------------------------------------------------------------------------
# mask_block() writers
# ---------------------------------------------------------------------------------------------
def encode_bitmap(mask, *, levels_version: int = 3) -> bytes:
    """Bitmap mask_block: nibbles of each row (first element in the high bit, rows zero-padded) as
    levels (``levels_payload()`` of ``levels_version``); ``mask`` a bool array or a
    :class:`PackedMask` (then made a piece at a time)."""
    pm = mask if isinstance(mask, PackedMask) else PackedMask.from_bool(mask)
    out = io.BytesIO()
    out.write(bytes([MaskKind.BITMAP]))
    write_levels(_BitmapNibbles(pm), out, version=levels_version)
    return out.getvalue()


class _BitmapNibbles(LevelSource):
    """The levels of a bitmap mask_block: nibble - 8 over the grid rows x ceil(cols / 4)."""

    def __init__(self, pm: PackedMask):
        rows, cols = level_grid(pm.shape)
        super().__init__(rows, (cols + 3) // 4)
        self.pm, self.elements = pm, cols

    def levels(self, start: int, stop: int) -> np.ndarray:
        c4, cols = self.cols, self.elements
        out = np.empty(stop - start, dtype=np.int16)
        k = start
        while k < stop:
            r, k0 = divmod(k, c4)
            if k0 == 0 and stop - k >= c4:  # whole rows
                nrows = (stop - k) // c4
                bits = self.pm.get(r * cols, (r + nrows) * cols).reshape(nrows, cols)
                take = nrows * c4
            else:  # part of a row
                k1 = min(c4, k0 + stop - k)
                bits = self.pm.get(r * cols + 4 * k0, r * cols + min(cols, 4 * k1)).reshape(1, -1)
                take = k1 - k0
            pad = -bits.shape[1] % 4
            if pad:
                bits = np.concatenate([bits, np.zeros((bits.shape[0], pad), bool)], axis=1)
            nib = bits.reshape(-1, 4).astype(np.int16) @ np.array([8, 4, 2, 1], np.int16)
            out[k - start:k - start + take] = nib - 8
            k += take
        return out


def encode_nm(mask, n: int, m: int, axis: int) -> bytes:
    """N:M mask_block: sp_n, sp_m, sp_axis, then the pattern indices as a uniform_stream().
    ``mask`` a bool array or a :class:`PackedMask` (along the last axis, read a piece at a time)."""
    if isinstance(mask, PackedMask):
        idx = _nm_indices(mask, n, m) if mask.shape and axis == len(mask.shape) - 1 else \
            nm_check(mask.unpack(), n, m, axis)
    else:
        idx = nm_check(mask, n, m, axis)
    return bytes([MaskKind.NM, n, m, axis]) + _backend.masks.uniform_encode(idx, math.comb(m, n))


def _nm_indices(pm: PackedMask, n: int, m: int) -> np.ndarray:
    """:func:`nm_check` of a packed mask along its last axis (groups in memory order)."""
    axis = len(pm.shape) - 1
    if pm.shape[-1] % m:
        raise EncodeError(f"axis {axis} has length {pm.shape[-1]}, not a multiple of M={m}")
    table = pattern_index(n, m)
    idx = np.empty(pm.size // m, dtype=_index_dtype(n, m))
    step = _piece_step(m)
    for start in range(0, pm.size, step):
        groups = pm.get(start, min(pm.size, start + step)).reshape(-1, m)
        piece = table[group_masks(groups)]
        bad = np.flatnonzero(piece < 0)
        if bad.size:
            g = start // m + int(bad[0])
            raise EncodeError(f"mask is not {n}:{m} along axis {axis}: group {g} keeps "
                              f"{int(groups[bad[0]].sum())} of {m}")
        idx[start // m:start // m + piece.size] = piece
    return idx


def encode_hierarchical(mask: np.ndarray, levels, axis: int) -> bytes:
    """Hierarchical N:M mask_block: sp_n1 .. sp_axis, sp_stream1_size, then the two uniform streams."""
    (n1, m1), (n2, m2) = levels
    groups = group_view(mask, axis, m2)  # the units of M2 elements
    kept_units = groups.any(axis=1)
    if kept_units.size % m1:
        raise EncodeError(f"axis {axis} does not hold whole blocks of {m1}x{m2} elements")
    units = kept_units.reshape(-1, m1)
    idx1 = pattern_index(n1, m1)[group_masks(units)]
    bad = np.flatnonzero(idx1 < 0)
    if bad.size:
        raise EncodeError(f"mask is not hierarchical {n1}:{m1} of {m2}-groups: block {int(bad[0])} keeps "
                          f"{int(units[bad[0]].sum())} groups")
    idx2 = pattern_index(n2, m2)[group_masks(groups[kept_units])]
    bad = np.flatnonzero(idx2 < 0)
    if bad.size:
        raise EncodeError(f"mask is not {n2}:{m2} inside kept groups: kept group {int(bad[0])} is not")
    s1 = _backend.masks.uniform_encode(idx1, math.comb(m1, n1))
    s2 = _backend.masks.uniform_encode(idx2, math.comb(m2, n2))
    return bytes([MaskKind.HIERARCHICAL, n1, m1, n2, m2, axis]) + len(s1).to_bytes(4, "little") + s1 + s2


def encode_hybrid(mask: np.ndarray, n: int, m: int, block_rows: int) -> bytes:
    """Hybrid mask_block: per block of ``block_rows`` rows, N:M along the last axis if it is, else dense."""
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
    stream = _backend.masks.uniform_encode(np.concatenate(idx) if idx else np.zeros(0, np.int64), math.comb(m, n))
    return bytes([MaskKind.HYBRID, n, m]) + block_rows.to_bytes(4, "little") + packed + stream


# ---------------------------------------------------------------------------------------------
# mask_block() reader: one function per kind; the reader may trace (codec-dump --fields)
# ---------------------------------------------------------------------------------------------
def _tracing(r) -> bool:
    return getattr(r, "trace", None) is not None


def _check(status, at, value, r, start):
    if status:
        raise_status(kernel_reference.ERRORS, status, at, value, path=r.path, base_offset=r.base_offset + start)
    return value


def _uniform_stream(block, r, size: int, count: int, c: int, prefix: str = "") -> np.ndarray:
    """``uniform_stream()`` of ``size`` bytes at the reader's position: ``count`` symbols in [0, c)."""
    start = r.pos // 8
    if start + size > len(block):
        raise r.error(f"the stream of {size} bytes runs past the mask block", f"{prefix}us_state")
    data = block[start:start + size]
    if _tracing(r) and size >= 8 and size % 2 == 0:
        r.u64le(f"{prefix}us_state")
        r.view(size - 8, f"{prefix}us_words")
    else:
        r.view(size)
    status, at, value = _backend.masks.uniform_decode(data, count, c)
    return _check(status, at, value, r, start)


def _expand_groups(idx: np.ndarray, n: int, m: int, r, start: int) -> np.ndarray:
    status, at, value = _backend.masks.expand_patterns(idx, patterns(n, m), m)
    return _check(status, at, value, r, start)


def _from_groups(groups: np.ndarray, shape, axis: int) -> np.ndarray:
    moved = list(shape)
    moved.append(moved.pop(axis))
    return np.moveaxis(groups.reshape(moved), -1, axis)


def _check_nm(r, n: int, m: int, name: str, at: int) -> None:
    if not 1 <= n < m <= 16:
        raise r.error(f"N:M {n}:{m} is outside 1 <= N < M <= 16", name, at=at)


def _check_groups(r, shape, axis: int, multiple: int, name: str, at: int) -> None:
    if axis >= len(shape):
        raise r.error(f"sp_axis {axis} does not exist in a tensor of rank {len(shape)}", name, at=at)
    if shape[axis] % multiple:
        raise r.error(f"axis {axis} of shape {tuple(shape)} does not hold whole groups of {multiple}", name, at=at)


def read_bitmap(block, r, shape, levels_version: int = 3) -> np.ndarray:
    """Bitmap (kind 0): levels_payload() of the nibbles, the rest of the block."""
    rows, cols = level_grid(tuple(shape))
    ncols = (cols + 3) // 4
    start = r.pos // 8
    data = block[start:]
    if _tracing(r):
        trace_levels_payload(data, rows, ncols, path=r.path, base_offset=r.base_offset + start, trace=r.trace,
                             version=levels_version)
    r.view(len(data))
    levels = decode_levels(data, rows, ncols, out_kind=LC_OUT_I32, path=r.path, base_offset=r.base_offset + start,
                           version=levels_version)
    status, at, mask = _backend.masks.nibbles_to_mask(levels, rows, cols)
    return _check(status, at, mask, r, start).reshape(shape)


def read_nm(block, r, shape) -> np.ndarray:
    """N:M (kind 1): sp_n, sp_m, sp_axis, uniform_stream() of the pattern indices."""
    at = r.pos
    n = r.u8("sp_n")
    m = r.u8("sp_m")
    axis = r.u8("sp_axis")
    _check_nm(r, n, m, "sp_n", at)
    _check_groups(r, shape, axis, m, "sp_axis", at + 16)
    count = math.prod(shape) // m
    idx = _uniform_stream(block, r, len(block) - r.pos // 8, count, math.comb(m, n))
    return _from_groups(_expand_groups(idx, n, m, r, 0), shape, axis)


def read_hierarchical(block, r, shape) -> np.ndarray:
    """Hierarchical N:M (kind 2): sp_n1, sp_m1, sp_n2, sp_m2, sp_axis, sp_stream1_size, two uniform streams."""
    at = r.pos
    n1, m1, n2, m2 = (r.u8(name) for name in ("sp_n1", "sp_m1", "sp_n2", "sp_m2"))
    axis = r.u8("sp_axis")
    _check_nm(r, n1, m1, "sp_n1", at)
    _check_nm(r, n2, m2, "sp_n2", at + 16)
    _check_groups(r, shape, axis, m1 * m2, "sp_axis", at + 32)
    size1 = r.u32le("sp_stream1_size")
    blocks = math.prod(shape) // (m1 * m2)
    idx1 = _uniform_stream(block, r, size1, blocks, math.comb(m1, n1), "level1.")
    units = _expand_groups(idx1, n1, m1, r, 0).reshape(-1)
    idx2 = _uniform_stream(block, r, len(block) - r.pos // 8, int(units.sum()), math.comb(m2, n2), "level2.")
    groups = np.zeros((units.size, m2), dtype=bool)
    groups[units] = _expand_groups(idx2, n2, m2, r, 0)
    return _from_groups(groups, shape, axis)


def read_hybrid(block, r, shape) -> np.ndarray:
    """Hybrid (kind 3, rank >= 2): sp_n, sp_m, sp_block_rows, sp_block_flags, uniform_stream()."""
    if len(shape) < 2:
        raise r.error(f"a hybrid mask needs rank >= 2, the layer has rank {len(shape)}", "sp_mask_kind",
                      at=r.pos - 8)
    axis = len(shape) - 1
    at = r.pos
    n = r.u8("sp_n")
    m = r.u8("sp_m")
    _check_nm(r, n, m, "sp_n", at)
    _check_groups(r, shape, axis, m, "sp_m", at + 8)
    block_rows = r.u32le("sp_block_rows")
    if block_rows == 0:
        raise r.error("sp_block_rows is 0", "sp_block_rows", at=r.pos - 32)
    nblocks = -(-shape[0] // block_rows)
    flag_bytes = r.b((nblocks + 7) // 8, "sp_block_flags")
    flags = np.unpackbits(np.frombuffer(flag_bytes, np.uint8))
    if flags[nblocks:].any():
        raise r.error("padding bits of sp_block_flags are set", "sp_block_flags", at=r.pos - 8 * len(flag_bytes))
    flags = flags[:nblocks].astype(bool)
    row_elems = math.prod(shape[1:])
    sparse_rows = sum(min(block_rows, shape[0] - b * block_rows) for b in np.flatnonzero(flags))
    idx = _uniform_stream(block, r, len(block) - r.pos // 8, sparse_rows * row_elems // m, math.comb(m, n))
    mask = np.ones(shape, dtype=bool)
    pos = 0
    for b in np.flatnonzero(flags):
        lo, hi = b * block_rows, min(shape[0], (b + 1) * block_rows)
        count = (hi - lo) * row_elems // m
        mask[lo:hi] = _expand_groups(idx[pos:pos + count], n, m, r, 0).reshape((hi - lo,) + tuple(shape[1:]))
        pos += count
    return mask


_READERS = {MaskKind.BITMAP: read_bitmap, MaskKind.NM: read_nm, MaskKind.HIERARCHICAL: read_hierarchical,
            MaskKind.HYBRID: read_hybrid}


def read_mask_block(block, r, shape, *, levels_version: int = 3) -> tuple[int, np.ndarray]:
    """Read and decode ``mask_block()`` (the whole of ``block``, read by ``r``): (kind, bool mask of
    ``shape``); a bitmap's levels are a ``levels_payload()`` of ``levels_version``."""
    kind = r.u8("sp_mask_kind", enum=MaskKind)
    if kind not in _READERS:
        raise r.error(f"unknown sp_mask_kind {kind}", "sp_mask_kind", at=r.pos - 8)
    if kind == MaskKind.BITMAP:
        return kind, read_bitmap(block, r, tuple(shape), levels_version)
    return kind, _READERS[kind](block, r, tuple(shape))
