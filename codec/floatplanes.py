"""Lossless coding of float tensors by planes (spec section 6.5).

Each element's bits are split into the exponent field and the rest (sign and mantissa). The
exponents of trained weights take few values with a skewed, row-dependent distribution: they go
through the level coder (rANS with per-row classes). Sign and mantissa bits are nearly random:
they are stored as byte planes, each plane raw or zstd-compressed, whichever is smaller.
"""

from __future__ import annotations

import numpy as np
import zstandard

from . import levels as lc
from .constants import DType
from .errors import FormatError

__all__ = ["LAYOUT", "encode_planes", "decode_planes"]

#: dtype -> (storage uint dtype, exponent bits, mantissa bits, exponent centre, rest bytes)
LAYOUT = {
    DType.FLOAT64: (np.dtype("<u8"), 11, 52, 1023, 7),
    DType.FLOAT32: (np.dtype("<u4"), 8, 23, 127, 3),
    DType.FLOAT16: (np.dtype("<u2"), 5, 10, 15, 2),
    DType.BFLOAT16: (np.dtype("<u2"), 8, 7, 127, 1),
}
PLANE_RAW, PLANE_ZSTD = 0, 1


#: Elements per chunk when splitting fields: temporaries stay ~chunk-sized, not layer-sized.
CHUNK = 1 << 20
#: Bytes of a plane tried with zstd before compressing the whole plane.
SAMPLE = 1 << 20


def encode_planes(bits: np.ndarray, dtype: DType, rows: int, cols: int, *, level: int = 3, write=None):
    """Write ``float_planes_payload()`` for the raw bit patterns ``bits`` (flat, unsigned) through
    ``write`` as its parts are made; without ``write``, return the payload as bytes.

    Memory: the exponents as int16 (2 bytes per element) and one byte plane at a time.
    """
    if write is None:
        parts = []
        encode_planes(bits, dtype, rows, cols, level=level, write=lambda b: parts.append(bytes(b)))
        return b"".join(parts)
    storage, ebits, mbits, centre, nrest = LAYOUT[dtype]
    wide = storage.newbyteorder("=").type
    u = np.ascontiguousarray(bits).view(storage.newbyteorder("=")).reshape(-1)
    n = u.size
    emask, mmask = wide((1 << ebits) - 1), wide((1 << mbits) - 1)
    # int8 exponents when they fit (no inf/NaN in float32/bfloat16; always for float16), else int16
    # (8-bit fields span -127..128 around their centre: int8 unless the top value, inf/NaN, occurs)
    small = ebits <= 5 or (ebits == 8 and (n == 0 or int((u & (emask << wide(mbits))).max() >> wide(mbits)) < 255))
    exponent = np.empty(n, dtype=np.int8 if small else np.int16)
    for start in range(0, n, CHUNK):
        chunk = u[start : start + CHUNK]
        exponent[start : start + CHUNK] = (((chunk >> wide(mbits)) & emask).astype(np.int16) - centre).astype(
            exponent.dtype)
    exp_payload = lc.encode_levels(exponent, rows, cols)
    del exponent
    write(len(exp_payload).to_bytes(4, "little"))
    write(exp_payload)
    del exp_payload
    cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
    plane = np.empty(n, dtype=np.uint8)
    for p in range(nrest):
        for start in range(0, n, CHUNK):
            chunk = u[start : start + CHUNK]
            rest = (chunk & mmask) | ((chunk >> wide(mbits + ebits)) << wide(mbits))  # sign above the mantissa
            plane[start : start + CHUNK] = (rest >> wide(8 * p)) & wide(0xFF)
        raw = memoryview(plane)
        # low mantissa planes are noise: if a 1 MiB sample does not shrink by 1%, keep the plane raw
        # (no layer-sized compression buffer, and no time spent)
        sample = raw[: SAMPLE]
        worth = n > 0 and len(cctx.compress(sample)) < 0.99 * len(sample)
        packed = cctx.compress(raw) if worth else b""
        mode, data = (PLANE_ZSTD, packed) if worth and len(packed) < n else (PLANE_RAW, raw)
        write(bytes([mode]) + len(data).to_bytes(4, "little"))
        write(data)
        del packed, data


def decode_planes(payload, dtype: DType, rows: int, cols: int, *, path: str, base_offset: int) -> np.ndarray:
    """Decode ``float_planes_payload()`` into the flat bit patterns (storage uint dtype)."""
    storage, ebits, mbits, centre, nrest = LAYOUT[dtype]
    n = rows * cols
    buf = memoryview(payload).cast("B")
    pos = 0

    def take(size: int, what: str):
        nonlocal pos
        if pos + size > len(buf):
            raise FormatError(f"{what} runs past the payload", path=f"{path}.{what}", bit_offset=(base_offset + pos) * 8)
        chunk = buf[pos : pos + size]
        pos += size
        return chunk

    exp_size = int.from_bytes(take(4, "fp_exponent_size"), "little")
    exp_at = pos
    exponent = lc.decode_levels(take(exp_size, "fp_exponents"), rows, cols, out_kind=3, path=f"{path}.fp_exponents",
                                base_offset=base_offset + exp_at)
    exponent += centre
    if n and (exponent.min() < 0 or exponent.max() >= (1 << ebits)):
        raise FormatError("decoded exponent outside its field", path=f"{path}.fp_exponents",
                          bit_offset=(base_offset + exp_at) * 8)
    wide = np.uint64 if storage.itemsize == 8 else np.uint32
    result = exponent.astype(wide) << wide(mbits)
    dctx = zstandard.ZstdDecompressor()
    for p in range(nrest):
        mode = take(1, f"fp_plane[{p}].fp_plane_mode")[0]
        size = int.from_bytes(take(4, f"fp_plane[{p}].fp_plane_size"), "little")
        at = pos
        data = take(size, f"fp_plane[{p}].fp_plane_data")
        if mode == PLANE_ZSTD:
            try:
                if zstandard.frame_content_size(data) != n:
                    raise FormatError(f"plane {p} frame does not hold {n} bytes", path=f"{path}.fp_plane[{p}]",
                                      bit_offset=(base_offset + at) * 8)
                plane = np.frombuffer(dctx.decompress(data, max_output_size=n), dtype=np.uint8)
            except zstandard.ZstdError as exc:
                raise FormatError(f"plane {p}: {exc}", path=f"{path}.fp_plane[{p}]",
                                  bit_offset=(base_offset + at) * 8) from None
        elif mode == PLANE_RAW:
            plane = np.frombuffer(data, dtype=np.uint8)
        else:
            raise FormatError(f"unknown fp_plane_mode {mode}", path=f"{path}.fp_plane[{p}]",
                              bit_offset=(base_offset + at - 5) * 8)
        if plane.size != n:
            raise FormatError(f"plane {p} holds {plane.size} bytes, expected {n}", path=f"{path}.fp_plane[{p}]",
                              bit_offset=(base_offset + at) * 8)
        shift = 8 * p
        if shift < mbits:
            part = plane.astype(wide) << wide(shift)
            result |= part & wide((1 << mbits) - 1)
        if shift <= mbits < shift + 8:  # the plane holding the sign bit
            result |= ((plane.astype(wide) >> wide(mbits - shift)) & wide(1)) << wide(mbits + ebits)
    if pos != len(buf):
        raise FormatError(f"{len(buf) - pos} bytes after the last plane", path=path, bit_offset=(base_offset + pos) * 8)
    return result.astype(storage)
