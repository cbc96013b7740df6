"""Coding mode ``floatplanes`` (spec 6.5): float tensors, lossless, by planes.

Each element's bits are split into the exponent field and the rest (sign and mantissa). The
exponents of trained weights take few values with a skewed, row-dependent distribution: they go
through the level coder (rANS with per-row classes). Sign and mantissa bits are nearly random:
they are stored as byte planes, each plane raw or zstd-compressed, whichever is smaller.
"""

from __future__ import annotations

import enum
import threading

import numpy as np
import zstandard

from .. import _backend
from ..dtypes import FLOAT_DTYPES
from ..errors import FormatError
from ..format.constants import STORAGE_DTYPE, CodingMode, DType
from ..levels import LC_OUT_I16, LC_OUT_I32, LC_OUT_I64, LevelSource, code_levels, decode_levels, level_grid, trace_levels_payload
from ..spool import Spool
from .base import Mode, Plan, payload_checksum_error, register_mode
from .zstd import LEVEL

__all__ = ["FloatPlanesMode", "LAYOUT", "PlaneMode", "encode_planes", "decode_planes"]

#: dtype -> (storage uint dtype, exponent bits EB, mantissa bits MB, exponent centre, rest planes P)
LAYOUT = {
    DType.FLOAT64: (np.dtype("<u8"), 11, 52, 1023, 7),
    DType.FLOAT32: (np.dtype("<u4"), 8, 23, 127, 3),
    DType.FLOAT16: (np.dtype("<u2"), 5, 10, 15, 2),
    DType.BFLOAT16: (np.dtype("<u2"), 8, 7, 127, 1),
}


class PlaneMode(enum.IntEnum):
    """``fp_plane_mode``."""

    RAW = 0
    ZSTD = 1


#: Elements per chunk when splitting fields: temporaries stay ~chunk-sized, not layer-sized.
CHUNK = 1 << 20
#: Bytes of a plane tried with zstd before compressing the whole plane.
SAMPLE = 1 << 20


class _Exponents(LevelSource):
    """The exponent fields minus their centre, read from the bit patterns piece by piece."""

    def __init__(self, u: np.ndarray, rows: int, cols: int, ebits: int, mbits: int, centre: int):
        super().__init__(rows, cols)
        self.u, self.centre = u, centre
        wide = u.dtype.type
        self.shift, self.mask = wide(mbits), wide((1 << ebits) - 1)

    def levels(self, start: int, stop: int) -> np.ndarray:
        field = (self.u[start:stop] >> self.shift) & self.mask
        return field.astype(np.int16) - np.int16(self.centre)


def encode_planes(bits: np.ndarray, dtype: DType, rows: int, cols: int, *, level: int = 3, write=None,
                  levels_version: int = 3):
    """Write ``float_planes_payload()`` for the raw bit patterns ``bits`` (flat, unsigned) through
    ``write`` as its parts are made; without ``write``, return the payload as bytes.

    Memory: a few bytes per element of one CHUNK, and the coded exponents and one compressed plane
    (whose sizes precede them) in a Spool.
    """
    if write is None:
        parts = []
        encode_planes(bits, dtype, rows, cols, level=level, write=lambda b: parts.append(bytes(b)),
                      levels_version=levels_version)
        return b"".join(parts)
    storage, ebits, mbits, centre, nrest = LAYOUT[dtype]
    wide = storage.newbyteorder("=").type
    u = np.ascontiguousarray(bits).view(storage.newbyteorder("=")).reshape(-1)
    n = u.size
    mmask = wide((1 << mbits) - 1)
    exponents = code_levels(_Exponents(u, rows, cols, ebits, mbits, centre), version=levels_version)
    write(exponents.size.to_bytes(4, "little"))
    exponents.write_to(_Writer(write))
    del exponents
    cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)

    def plane_chunks(p):
        for start in range(0, n, CHUNK):
            chunk = u[start : start + CHUNK]
            rest = (chunk & mmask) | ((chunk >> wide(mbits + ebits)) << wide(mbits))  # sign above the mantissa
            yield ((rest >> wide(8 * p)) & wide(0xFF)).astype(np.uint8)

    for p in range(nrest):
        first = next(plane_chunks(p), np.zeros(0, np.uint8))
        # low mantissa planes are noise: if a 1 MiB sample does not shrink by 1%, keep the plane raw
        # (no compression buffer, and no time spent)
        sample = memoryview(first)[:SAMPLE]
        packed = None
        if n > 0 and len(cctx.compress(sample)) < 0.99 * len(sample):
            packed = Spool()
            if n <= CHUNK:
                packed.add(cctx.compress(first))
            else:  # streamed: the frame records the plane's size
                stream = cctx.compressobj(size=n)
                for chunk in plane_chunks(p):
                    packed.add(stream.compress(chunk))
                packed.add(stream.flush())
            if packed.size >= n:
                packed.close()
                packed = None
        if packed is not None:
            write(bytes([PlaneMode.ZSTD]) + packed.size.to_bytes(4, "little"))
            packed.write_to(_Writer(write))
        else:
            write(bytes([PlaneMode.RAW]) + n.to_bytes(4, "little"))
            for chunk in plane_chunks(p):
                write(chunk)


class _Writer:
    """A ``write`` function as a sink."""

    def __init__(self, write):
        self.write = write


def read_float_planes_payload(r, dtype: DType, rows: int, cols: int):
    """Read ``float_planes_payload()`` (spec 6.5): (exponents payload and its file offset, [(mode, data, offset)])."""
    nrest = LAYOUT[dtype][4]
    exp_size = r.u32le("fp_exponent_size")
    exp_at = r.base_offset + r.pos // 8
    exponents = r.view(exp_size, "fp_exponents")
    planes = []
    for p in range(nrest):
        mode = r.u8(f"fp_plane[{p}].fp_plane_mode", enum=PlaneMode)
        if mode not in (PlaneMode.RAW, PlaneMode.ZSTD):
            raise r.error(f"unknown fp_plane_mode {mode}", f"fp_plane[{p}].fp_plane_mode", at=r.pos - 8)
        size = r.u32le(f"fp_plane[{p}].fp_plane_size")
        at = r.base_offset + r.pos // 8
        planes.append((mode, r.view(size, f"fp_plane[{p}].fp_plane_data"), at))
    if r.bits_left():
        raise r.error(f"{r.bits_left() // 8} bytes after the last plane")
    return (exponents, exp_at), planes


def decode_planes(payload, dtype: DType, rows: int, cols: int, *, path: str, base_offset: int,
                  levels_version: int = 3) -> np.ndarray:
    """Decode ``float_planes_payload()`` into the flat bit patterns (storage uint dtype).

    Memory: the output and CHUNK-sized temporaries. The exponents are decoded into the output
    itself (as signed integers of its width) and shifted in place; each plane is decompressed in
    CHUNK-sized pieces and merged as it comes.
    """
    (exponents, exp_at), planes = read_float_planes_payload(_backend.bit_reader(payload, base_offset, path), dtype, rows,
                                                            cols)
    return _assemble(exponents, exp_at, [(mode, _ViewReader(data), len(data), at) for mode, data, at in planes],
                     dtype, rows, cols, path=path, levels_version=levels_version)


def decode_planes_from(payload, dtype: DType, rows: int, cols: int, *, path: str, base_offset: int,
                       levels_version: int = 3):
    """:func:`decode_planes` for a payload read in pieces (``payload.read_at(offset, size)``, e.g. a
    large payload of a file): the planes never wait in memory whole. Returns None, having read only
    their sizes, when the payload's layout is not sound: the caller then decodes the whole payload
    with :func:`decode_planes`, whose errors name what is wrong."""
    nrest = LAYOUT[dtype][4]
    size = len(payload)
    if size < 4:
        return None
    pos = 4 + int.from_bytes(payload.read_at(0, 4), "little")
    exp_end = pos
    planes = []
    for _ in range(nrest):
        if pos + 5 > size:
            return None
        head = payload.read_at(pos, 5)
        mode, plane_size = head[0], int.from_bytes(head[1:5], "little")
        if mode not in (PlaneMode.RAW, PlaneMode.ZSTD) or pos + 5 + plane_size > size:
            return None
        planes.append((PlaneMode(mode), _PieceReader(payload, pos + 5, plane_size), plane_size,
                       base_offset + pos + 5))
        pos += 5 + plane_size
    if pos != size:
        return None
    return _assemble(payload.read_at(4, exp_end - 4), base_offset + 4, planes, dtype, rows, cols, path=path,
                     levels_version=levels_version)


class _ViewReader:
    """A file-like reader of a buffer, without copying it."""

    def __init__(self, data):
        self.data, self.pos = memoryview(data).cast("B"), 0

    def read(self, n: int = -1):
        return bytes(self.read_view(n))  # a CHUNK at most (zstandard wants bytes)

    def read_view(self, n: int = -1):
        """``read`` without a copy (raw planes)."""
        end = len(self.data) if n is None or n < 0 else min(len(self.data), self.pos + n)
        chunk, self.pos = self.data[self.pos:end], end
        return chunk


class _PieceReader:
    """A file-like reader of bytes start..start+size of a payload read in pieces."""

    def __init__(self, payload, start: int, size: int):
        self.payload, self.start, self.size, self.pos = payload, start, size, 0

    def read(self, n: int = -1):
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        chunk = self.payload.read_at(self.start + self.pos, end - self.pos) if end > self.pos else b""
        self.pos = end
        return chunk

    read_view = read  # its pieces are read from the file: fresh bytes either way


def _assemble(exponents, exp_at: int, planes, dtype: DType, rows: int, cols: int, *, path: str,
              levels_version: int = 3) -> np.ndarray:
    """The bit patterns from the exponent payload and the planes, (mode, reader, size, file offset)."""
    storage, ebits, mbits, centre, nrest = LAYOUT[dtype]
    n = rows * cols
    native = storage.newbyteorder("=")
    result = np.empty(n, dtype=native)
    out_kind = {8: LC_OUT_I64, 4: LC_OUT_I32, 2: LC_OUT_I16}[storage.itemsize]
    decode_levels(exponents, rows, cols, out_kind=out_kind, path=f"{path}.fp_exponents", base_offset=exp_at,
                  out=result.view(f"=i{storage.itemsize}"), version=levels_version)
    kernels = _backend.planes
    exponent_error = dict(path=f"{path}.fp_exponents", bit_offset=exp_at * 8)
    # a raw plane 0 (mantissa noise) is merged as the exponents are placed: one pass over the output
    fused = planes[0][0] == PlaneMode.RAW
    if not fused and kernels.place_exponents(result, centre, ebits, mbits) >= 0:
        raise FormatError("decoded exponent outside its field", **exponent_error)
    for p, (mode, reader, size, at) in enumerate(planes):
        where = dict(path=f"{path}.fp_plane[{p}].fp_plane_data", bit_offset=at * 8)
        if mode == PlaneMode.ZSTD:
            head = bytes(reader.read(18))  # a frame header is at most 18 bytes
            try:
                if zstandard.frame_content_size(head) != n:
                    raise FormatError(f"the plane's frame does not hold {n} bytes", **where)
            except zstandard.ZstdError as exc:
                raise FormatError(f"zstd frame is corrupt: {exc}", **where) from None
            pieces = _decompressed(_decompressor(), _Prefixed(head, reader), n, where)
        else:
            if size != n:
                raise FormatError(f"the plane holds {size} bytes, expected {n}", **where)
            pieces = ((start, np.frombuffer(reader.read_view(min(CHUNK, n - start)), np.uint8))
                      for start in range(0, n, CHUNK))
        for start, plane in pieces:
            piece = result[start:start + plane.size]
            if p == 0 and fused:
                if kernels.place_exponents(piece, centre, ebits, mbits, plane) >= 0:
                    raise FormatError("decoded exponent outside its field", **exponent_error)
            else:
                kernels.merge_plane(piece, plane, 8 * p, mbits, ebits)
    return result.astype(storage, copy=False)


class _Prefixed:
    """A reader that gives ``head`` back before the rest of ``reader``."""

    def __init__(self, head: bytes, reader):
        self.head, self.reader = head, reader

    def read(self, n: int = -1):
        if self.head:
            chunk = self.head if n is None or n < 0 or n >= len(self.head) else self.head[:n]
            self.head = self.head[len(chunk):]
            return chunk
        return self.reader.read(n)


_local = threading.local()


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's zstd context (making one costs ~6-11 us, a small tensor's whole decode time over again;
    a context serves one frame at a time, so one per thread)."""
    dctx = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = _local.dctx = zstandard.ZstdDecompressor()
    return dctx


def _decompressed(dctx, data, n: int, where: dict):
    """(start, bytes as uint8) pieces of a zstd plane of n bytes, CHUNK bytes at a time."""
    start = 0
    try:
        for chunk in dctx.read_to_iter(data, read_size=CHUNK, write_size=CHUNK):
            if start + len(chunk) > n:
                raise FormatError(f"the plane holds more than {n} bytes", **where)
            yield start, np.frombuffer(chunk, dtype=np.uint8)
            start += len(chunk)
    except zstandard.ZstdError as exc:
        raise FormatError(f"zstd frame is corrupt: {exc}", **where) from None
    if start != n:
        raise FormatError(f"the plane holds {start} bytes, expected {n}", **where)


@register_mode
class FloatPlanesMode(Mode):
    """``coding_mode`` 4: float tensors, lossless; exponents through the level coder, sign and
    mantissa as byte planes, each raw or zstd."""

    name = "floatplanes"
    mode_id = CodingMode.FLOATPLANES
    since_minor = 1
    codes_levels = True
    dtypes = FLOAT_DTYPES
    params = (LEVEL,)

    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        self.check_dtype(dtype)
        return Plan(b"", params.get("level", LEVEL.default), levels_version=levels_version)

    def write(self, plan, array, dtype, sink):
        a = np.asarray(array)
        if a.dtype.name == "bfloat16":
            a = a.view(np.uint16)
        if dtype != DType.BFLOAT16:  # native byte order, so the bit fields are read correctly
            a = np.ascontiguousarray(a, dtype=STORAGE_DTYPE[dtype].newbyteorder("="))
        bits = np.ascontiguousarray(a).view(LAYOUT[dtype][0].newbyteorder("=")).reshape(-1)
        rows, cols = level_grid(array.shape)
        encode_planes(bits, dtype, rows, cols, level=plan.state, write=sink.write, levels_version=plan.levels_version)

    #: the reader may give a large payload as an object read in pieces (``read_at``, ``crc32c``)
    reads_in_pieces = True

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        from ..dtypes import storage_dtype, user_array

        rows, cols = level_grid(header.layer_shape)
        where = dict(path=header.payload_path, base_offset=header.payload_offset, levels_version=header.levels_version)
        bits = None
        if hasattr(payload, "read_at"):  # a large payload of a file, read in pieces
            self.check_decode_options(header, levels, format)
            self.check_header(header)
            self.params_of(header)
            if verify and (actual := payload.crc32c()) != header.payload_crc32c:
                raise payload_checksum_error(header, actual)
            bits = decode_planes_from(payload, DType(header.layer_dtype), rows, cols, **where)
            if bits is None:  # an unsound layout: the whole payload, whose reader names the fault
                payload, verify = payload.read_at(0, len(payload)), False
        if bits is None:
            self.begin_decode(header, payload, verify=verify, levels=levels, format=format)
            bits = decode_planes(payload, DType(header.layer_dtype), rows, cols, **where)
        storage = storage_dtype(header)
        return user_array(header, bits.view(storage) if header.layer_dtype != DType.BFLOAT16 else bits)

    def summarize(self, header, payload, *, global_qp=None):
        dtype = DType(header.layer_dtype)
        rows, cols = level_grid(header.layer_shape)
        r = _backend.bit_reader(payload, header.payload_offset, header.payload_path)
        (exponents, _), planes = read_float_planes_payload(r, dtype, rows, cols)
        return {"exponent_bytes": len(exponents),
                "planes": [{"mode": PlaneMode(mode).name.lower(), "bytes": len(data)} for mode, data, _ in planes]}

    def summary_text(self, summary):
        return "exp {:,}B planes {}".format(summary["exponent_bytes"],
                                             "/".join(p["mode"] for p in summary["planes"]))

    def trace(self, header, payload, trace, *, global_qp=None):
        self.params_of(header, trace=trace)
        path = header.payload_path
        rows, cols = level_grid(header.layer_shape)
        r = _backend.bit_reader(payload, header.payload_offset, path, trace)
        (exponents, exp_at), _ = read_float_planes_payload(r, DType(header.layer_dtype), rows, cols)
        trace_levels_payload(exponents, rows, cols, path=f"{path}.fp_exponents", base_offset=exp_at, trace=trace,
                             version=header.levels_version)
