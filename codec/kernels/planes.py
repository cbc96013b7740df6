"""Float-plane assembly in pure Python (numpy): the reference for ``codec._fast.planes``.

A float_planes_payload() (spec 6.5) gives each element's exponent field (through the level coder,
as level = field - centre) and its sign and mantissa bits as byte planes: plane p holds bits
8p .. 8p + 7 of the value ``mantissa | sign << MB`` (MB mantissa bits). These kernels put the pieces
into the elements' bit patterns in place, in unsigned integers of the float's width (uint16, uint32
or uint64, native order). Wrong arguments raise ValueError in both twins.
"""

from __future__ import annotations

import numpy as np

__all__ = ["place_exponents", "merge_plane"]

_WIDTHS = (np.uint16, np.uint32, np.uint64)


def _check(out) -> None:
    if not isinstance(out, np.ndarray) or out.dtype not in _WIDTHS or out.dtype.byteorder not in "=|" \
            or not out.flags.c_contiguous or not out.flags.writeable or out.ndim != 1:
        raise ValueError("out must be a writable contiguous 1-D uint16, uint32 or uint64 array in native order")


def place_exponents(out, centre: int, ebits: int, mbits: int, plane=None) -> int:
    """``out`` holds levels (field - centre) as signed integers of its width: turn each into its
    exponent field in place, ``(level + centre) << mbits``, and then, if ``plane`` is given, merge it
    as byte plane 0 (``merge_plane(out, plane, 0, mbits, ebits)``: one pass instead of two). Returns
    -1, or (nothing changed) the index of the first level whose field is outside 0 .. 2^ebits - 1."""
    _check(out)
    if plane is not None:
        _check_plane(out, plane)
    signed = out.view(f"=i{out.dtype.itemsize}")
    bad = np.flatnonzero((signed < -centre) | (signed >= (1 << ebits) - centre))
    if bad.size:
        return int(bad[0])
    signed += signed.dtype.type(centre)
    out <<= out.dtype.type(mbits)
    if plane is not None:
        merge_plane(out, plane, 0, mbits, ebits)
    return -1


def _check_plane(out, plane) -> np.ndarray:
    p = np.asarray(plane)
    if p.dtype != np.uint8 or p.shape != out.shape:
        raise ValueError("plane must be a uint8 array of out's length")
    return p


def merge_plane(out, plane, shift: int, mbits: int, ebits: int) -> None:
    """OR byte plane ``plane`` (uint8, one byte per element of ``out``), which holds bits
    ``shift`` .. ``shift + 7`` of ``mantissa | sign << mbits``, into the bit patterns: the mantissa
    bits in place, the sign bit (if in this plane) at bit ``mbits + ebits``."""
    _check(out)
    p = _check_plane(out, plane)
    wide = out.dtype.type
    if shift < mbits:
        out |= (p.astype(wide) << wide(shift)) & wide((1 << mbits) - 1)
    if shift <= mbits < shift + 8:
        out |= ((p.astype(wide) >> wide(mbits - shift)) & wide(1)) << wide(mbits + ebits)
