"""Ternary weights: trits in {-1, 0, +1} times a scale alpha (spec section 6.6).

Three payload schemes, all lossless for the trits:

* ``flag`` (flag-plus-nonzero): two trits form a 4-bit item (trit codes 0 -> 00, +1 -> 01,
  -1 -> 11; the first trit in the high bits); a flag string has one bit per item (0 for the
  all-zero item 0000); each non-zero item becomes a 3-bit code (table ``NONZERO_ITEMS``). An
  optional second stage compresses the flag string the same way, in 4-bit groups of flags, and
  may be repeated (``levels``).
* ``base3``: five trits per byte, ``sum (t_k + 1) * 3^(4-k)`` (1.6 bits per trit).
* ``entropy``: the trits as levels through the level coder (spec section 7), whose per-row-class
  tables reach the order-0 entropy or go below it.

This module is the pure-Python (numpy) reference; ``codec._fast._ternary`` is its compiled twin.
It also holds the helpers for users with float weights: :func:`ternarize` (TWN rule) and
:func:`split_ternary` (exact pass-through of already-ternary arrays).
"""

from __future__ import annotations

import numpy as np

from .errors import EncodeError, FormatError

__all__ = ["ternarize", "split_ternary", "NONZERO_ITEMS", "flag_encode", "flag_decode", "base3_encode",
           "base3_decode", "SCHEMES"]

SCHEMES = ("flag", "base3", "entropy")
#: The eight non-zero 4-bit items, in the order of their 3-bit codes 0..7 (spec table 6.6.1).
NONZERO_ITEMS = (0b0001, 0b0011, 0b0100, 0b0101, 0b0111, 0b1100, 0b1101, 0b1111)
_TRIT_CODE = {0: 0b00, 1: 0b01, -1: 0b11}
MAX_FLAG_LEVELS = 15

_CODE_OF_ITEM = np.full(16, -1, dtype=np.int64)
_CODE_OF_ITEM[list(NONZERO_ITEMS)] = np.arange(8)
_TRIT_OF_CODE2 = np.array([0, 1, 2, 3], dtype=np.int64)  # 2-bit code -> index; 0b10 is invalid
_TRITS_OF_ITEM = np.zeros((16, 2), dtype=np.int8)
for _item in range(16):
    for _k, _shift in enumerate((2, 0)):
        _c = (_item >> _shift) & 3
        _TRITS_OF_ITEM[_item, _k] = {0: 0, 1: 1, 3: -1}.get(_c, 0)


# ---------------------------------------------------------------------------------------------
# helpers for users
# ---------------------------------------------------------------------------------------------
def ternarize(w, *, axis: int | None = None, threshold: float = 0.7) -> np.ndarray:
    """Return the TWN ternarization of ``w`` as a float array with values in {-alpha, 0, +alpha}.

    Threshold ``delta = threshold * mean|w|`` (per tensor, or per slice along ``axis``);
    ``alpha`` = mean |w| over the weights above the threshold (the least-squares optimum for that
    support). Returns the same dtype as ``w`` (float32 for integer input).
    """
    a = np.asarray(w)
    dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float32)
    x = a.astype(np.float64)
    if axis is None:
        red, keep = None, False
    else:
        if not -x.ndim <= axis < x.ndim:
            raise EncodeError(f"axis {axis} does not exist in a tensor of rank {x.ndim}")
        red, keep = tuple(i for i in range(x.ndim) if i != axis % x.ndim), True
    mag = np.abs(x)
    delta = threshold * (mag.mean(axis=red, keepdims=keep) if x.size else 0.0)
    support = mag > delta
    count = support.sum(axis=red, keepdims=keep)
    alpha = np.where(count > 0, (mag * support).sum(axis=red, keepdims=keep) / np.maximum(count, 1), 0.0)
    return (np.sign(x) * support * alpha).astype(dtype)


def split_ternary(w, *, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (int8 trits, float64 alphas) of an array whose values are in {-alpha, 0, +alpha}.

    One alpha per tensor, or per slice along ``axis``. Integer input must already be trits
    (alpha 1). Raises EncodeError if the values are not ternary that way (nothing is rounded).
    """
    a = np.asarray(w)
    if a.dtype.name == "bfloat16":
        a = a.astype(np.float32)
    if a.dtype.kind in "iub":
        t = a.astype(np.int64)
        if t.size and (t.min() < -1 or t.max() > 1):
            raise EncodeError("integer ternary input must hold only -1, 0 and 1")
        return t.astype(np.int8), np.ones(1)
    if a.dtype.kind != "f":
        raise EncodeError(f"ternary input must be float or integer trits, got {a.dtype}")
    x = a.astype(np.float64)
    if not np.isfinite(x).all():
        raise EncodeError("ternary input holds NaN or infinity")
    if axis is None:
        slices = x.reshape(1, -1)
    else:
        if not -x.ndim <= axis < x.ndim:
            raise EncodeError(f"axis {axis} does not exist in a tensor of rank {x.ndim}")
        slices = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    mag = np.abs(slices)
    alphas = mag.max(axis=1) if slices.size else np.zeros(slices.shape[0])
    bad = (mag != 0) & (mag != alphas[:, None])
    if bad.any():
        row, col = np.argwhere(bad)[0]
        where = f" (channel {row})" if axis is not None else ""
        raise EncodeError(f"values are not ternary{where}: {slices[row, col]!r} is neither 0 nor +-{alphas[row]!r}; "
                          "use codec.ternary.ternarize() first")
    trits = np.sign(slices).astype(np.int8)
    if axis is not None:
        moved = list(x.shape)
        moved.insert(0, moved.pop(axis % x.ndim))
        trits = np.moveaxis(trits.reshape(moved), 0, axis % x.ndim)
    return trits.reshape(x.shape), alphas


# ---------------------------------------------------------------------------------------------
# flag-plus-nonzero (reference)
# ---------------------------------------------------------------------------------------------
def _items(trits: np.ndarray) -> np.ndarray:
    t = trits.reshape(-1).astype(np.int64)
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


def flag_level_sizes(n_trits: int, levels: int) -> list[int]:
    """Bit lengths m_0 .. m_levels of the flag strings (m_0 = number of items)."""
    sizes = [(n_trits + 1) // 2]
    for _ in range(levels):
        sizes.append((sizes[-1] + 3) // 4)
    return sizes


def _group_flags(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One flag-compression level: 4-bit groups of flags -> (group flags, non-zero groups)."""
    padded = np.concatenate([flags, np.zeros(-flags.size % 4, dtype=bool)]).astype(np.int64)
    groups = (padded[0::4] << 3) | (padded[1::4] << 2) | (padded[2::4] << 1) | padded[3::4]
    nz = groups != 0
    return nz, groups[nz]


def flag_encode_from_flags(flags: np.ndarray, tail: bytes, levels: int | None = None) -> bytes:
    """Assemble ``ternary_flag()`` from the item flags and the packed 3-bit codes.

    ``levels=None`` adds flag-compression levels while the payload strictly shrinks.
    """
    top, stages = flags, []
    size = len(_pack_bits(top)) + len(tail)
    while levels is None or len(stages) < levels:
        if len(stages) == MAX_FLAG_LEVELS or (levels is None and top.size <= 1):
            if levels is not None:
                raise EncodeError(f"cannot apply {levels} flag levels")
            break
        nz, groups = _group_flags(top)
        packed = _pack_fields(groups, 4)
        new_size = len(_pack_bits(nz)) + len(packed) + sum(len(s) for s in stages) + len(tail)
        if levels is None and new_size >= size:
            break
        top, size = nz, new_size
        stages.append(packed)
    out = bytearray([len(stages)])
    out += _pack_bits(top)
    for packed in reversed(stages):
        out += packed
    out += tail
    return bytes(out)


def flag_encode(trits: np.ndarray, levels: int | None = None) -> bytes:
    """Return ``ternary_flag()`` (spec 6.6.2) of int8 trits."""
    items = _items(trits)
    flags = items != 0
    return flag_encode_from_flags(flags, _pack_fields(_CODE_OF_ITEM[items[flags]], 3), levels)


def _unpack_bits(buf: np.ndarray, pos: int, nbits: int, what: str, path: str, base: int) -> tuple[np.ndarray, int]:
    nbytes = (nbits + 7) // 8
    if pos + nbytes > buf.size:
        raise FormatError(f"{what} runs past the payload", path=f"{path}.{what}", bit_offset=(base + pos) * 8)
    bits = np.unpackbits(buf[pos : pos + nbytes])
    if bits[nbits:].any():
        raise FormatError(f"padding bits of {what} are not zero", path=f"{path}.{what}",
                          bit_offset=(base + pos) * 8 + nbits)
    return bits[:nbits].astype(bool), pos + nbytes


def _unpack_fields(buf, pos, count, width, what, path, base):
    bits, pos = _unpack_bits(buf, pos, count * width, what, path, base)
    values = bits.reshape(count, width).astype(np.int64) @ (1 << np.arange(width - 1, -1, -1)) if count else \
        np.zeros(0, np.int64)
    return values, pos


def flag_decode(payload, n_trits: int, *, path: str = "layer_payload", base_offset: int = 0) -> np.ndarray:
    """Decode ``ternary_flag()`` into int8 trits (reference)."""
    buf = np.frombuffer(payload, dtype=np.uint8)
    if buf.size < 1:
        raise FormatError("tn_flag_levels missing", path=f"{path}.tn_flag_levels", bit_offset=base_offset * 8)
    levels = int(buf[0])
    if levels > MAX_FLAG_LEVELS:
        raise FormatError(f"tn_flag_levels {levels} exceeds {MAX_FLAG_LEVELS}", path=f"{path}.tn_flag_levels",
                          bit_offset=base_offset * 8)
    sizes = flag_level_sizes(n_trits, levels)
    flags, pos = _unpack_bits(buf, 1, sizes[levels], f"tn_flags[{levels}]", path, base_offset)
    for level in range(levels, 0, -1):
        count = int(flags.sum())
        groups, pos = _unpack_fields(buf, pos, count, 4, f"tn_flag_items[{level}]", path, base_offset)
        if (groups == 0).any():
            raise FormatError(f"flag level {level} holds an all-zero item marked non-zero",
                              path=f"{path}.tn_flag_items[{level}]", bit_offset=(base_offset + pos) * 8)
        expanded = np.zeros(flags.size * 4, dtype=bool)
        nz_idx = np.flatnonzero(flags)
        for k in range(4):
            expanded[nz_idx * 4 + k] = (groups >> (3 - k)) & 1
        if expanded[sizes[level - 1]:].any():
            raise FormatError(f"flag level {level} sets padding flags", path=f"{path}.tn_flag_items[{level}]",
                              bit_offset=(base_offset + pos) * 8)
        flags = expanded[: sizes[level - 1]]
    count = int(flags.sum())
    codes, pos = _unpack_fields(buf, pos, count, 3, "tn_codes", path, base_offset)
    if pos != buf.size:
        raise FormatError(f"{buf.size - pos} bytes after the codes", path=path, bit_offset=(base_offset + pos) * 8)
    items = np.zeros(flags.size, dtype=np.int64)
    items[flags] = np.asarray(NONZERO_ITEMS, dtype=np.int64)[codes]
    trits = _TRITS_OF_ITEM[items].reshape(-1)
    if n_trits % 2 and trits[-1] != 0:
        raise FormatError("the padding trit is not zero", path=f"{path}.tn_codes", bit_offset=(base_offset + pos) * 8)
    return trits[:n_trits].copy()


# ---------------------------------------------------------------------------------------------
# base-3 (reference)
# ---------------------------------------------------------------------------------------------
_POW3 = np.array([81, 27, 9, 3, 1], dtype=np.int64)


def base3_encode(trits: np.ndarray) -> bytes:
    t = trits.reshape(-1).astype(np.int64) + 1
    t = np.concatenate([t, np.ones(-t.size % 5, dtype=np.int64)])
    return (t.reshape(-1, 5) @ _POW3).astype(np.uint8).tobytes()


def base3_decode(payload, n_trits: int, *, path: str = "layer_payload", base_offset: int = 0) -> np.ndarray:
    buf = np.frombuffer(payload, dtype=np.uint8).astype(np.int64)
    if buf.size != (n_trits + 4) // 5:
        raise FormatError(f"base-3 payload of {buf.size} bytes for {n_trits} trits", path=path,
                          bit_offset=base_offset * 8)
    if buf.size and buf.max() > 242:
        i = int(np.argmax(buf > 242))
        raise FormatError(f"base-3 byte {int(buf[i])} exceeds 242", path=path, bit_offset=(base_offset + i) * 8)
    digits = (buf[:, None] // _POW3) % 3
    trits = (digits.reshape(-1) - 1).astype(np.int8)
    if trits[n_trits:].any():
        raise FormatError("padding trits are not zero", path=path, bit_offset=(base_offset + buf.size - 1) * 8)
    return trits[:n_trits].copy()


# ---------------------------------------------------------------------------------------------
# payload: ternary_payload() = tn_scheme u8 + the scheme's data (spec 6.6)
# ---------------------------------------------------------------------------------------------
def encode_payload(trits: np.ndarray, rows: int, cols: int, scheme: str = "auto") -> bytes:
    """Return ``ternary_payload()``; ``auto`` keeps the smallest scheme (flag, base3, entropy order on ties)."""
    from . import _backend
    from . import levels as lc

    t = np.ascontiguousarray(trits, dtype=np.int8).reshape(-1)
    kernels = _backend.ternary
    candidates = {}
    if scheme in ("auto", "flag"):
        candidates["flag"] = kernels.flag_encode(t)
    if scheme in ("auto", "base3"):
        candidates["base3"] = kernels.base3_encode(t)
    if scheme in ("auto", "entropy"):
        candidates["entropy"] = lc.encode_levels(t.astype(np.int64), rows, cols)
    if not candidates:
        raise EncodeError(f"scheme must be 'auto', 'flag', 'base3' or 'entropy', got {scheme!r}")
    name = min(candidates, key=lambda k: (len(candidates[k]), SCHEMES.index(k)))
    return bytes([SCHEMES.index(name)]) + candidates[name]


def payload_scheme(payload) -> str | None:
    """Return the scheme name of a ternary payload (None if unknown)."""
    b = memoryview(payload).cast("B")
    return SCHEMES[b[0]] if len(b) and b[0] < len(SCHEMES) else None


def decode_payload(payload, rows: int, cols: int, *, path: str, base_offset: int) -> np.ndarray:
    """Decode ``ternary_payload()`` into flat int8 trits."""
    from . import _backend
    from . import levels as lc

    buf = memoryview(payload).cast("B")
    n = rows * cols
    if not len(buf):
        raise FormatError("tn_scheme missing", path=f"{path}.tn_scheme", bit_offset=base_offset * 8)
    scheme = buf[0]
    body = buf[1:]
    where = dict(path=path, base_offset=base_offset + 1)
    if scheme == 0:
        trits = _backend.ternary.flag_decode(body, n)
        return trits if trits is not None else flag_decode(body, n, **where)
    if scheme == 1:
        trits = _backend.ternary.base3_decode(body, n)
        return trits if trits is not None else base3_decode(body, n, **where)
    if scheme == 2:
        levels = lc.decode_levels(body, rows, cols, out_kind=3, **where)
        if levels.size and (levels.min() < -1 or levels.max() > 1):
            raise FormatError("entropy-coded trit outside -1..1", path=path, bit_offset=(base_offset + 1) * 8)
        return levels.astype(np.int8)
    raise FormatError(f"unknown tn_scheme {scheme}", path=f"{path}.tn_scheme", bit_offset=base_offset * 8)
