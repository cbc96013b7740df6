"""Coding modes: how ``layer_payload`` represents a tensor (spec section 6).

A mode is one ``coding_mode`` value, a ``mode_params`` block (written in the layer header) and a
payload. Modes work in two phases because the layer header, which holds ``mode_params``, is
written before the payload: :meth:`Mode.plan` validates the keyword parameters and returns the
``mode_params`` bytes; :meth:`Mode.write` streams the payload into a sink. Decoding is
:meth:`Mode.decode`, given the parsed :class:`~codec.syntax.LayerHeader` and the payload bytes.

Later coding tools register one more :class:`Mode` with :func:`register_mode`; the container does
not change.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Iterator

import numpy as np
import zstandard

from . import _backend, parallel
from . import levels as levels_mod
from .constants import DTYPE_NAMES, STORAGE_DTYPE, UNSUPPORTED_DTYPES, CodingMode, DType
from .errors import ChecksumError, EncodeError, FormatError, LimitError, UnsupportedError

__all__ = ["Mode", "Plan", "register_mode", "get_mode", "mode_name", "storage_dtype", "user_array",
           "iter_le_chunks", "dtype_code_of"]

#: Chunk size for streaming a layer's bytes through checksums and compressors.
CHUNK_BYTES = 16 << 20


@dataclasses.dataclass
class Plan:
    """What :meth:`Mode.plan` decided: the header blocks and the mode's private state."""

    mode_params: bytes
    state: Any = None
    local_qp_set: bytes | None = None
    dtype: DType | None = None  # the layer_dtype to record, when the mode changes it


class Mode:
    """Base class of a coding mode.

    ``global_qp`` is the parsed global quantization parameter set of the bitstream; modes that
    quantize inherit from it. ``levels=True`` asks a quantized mode for (levels, Effective)
    instead of dequantized values.
    """

    name: str = ""
    mode_id: int = -1
    #: lowest version_minor of the format that defines this mode
    since_minor: int = 0

    def plan(self, array: np.ndarray, dtype: DType, params: dict[str, Any], *, global_qp=None) -> Plan:
        raise NotImplementedError

    def write(self, plan: Plan, array: np.ndarray, dtype: DType, sink) -> None:
        raise NotImplementedError

    def decode(self, header, payload, *, verify: bool = True, global_qp=None, levels: bool = False):
        raise NotImplementedError


def _not_quantized(header, levels: bool) -> None:
    if levels:
        raise ValueError(f"layer {header.layer_name!r} is not quantized (coding mode {mode_name(header.coding_mode)})")


def _verify_payload(header, payload) -> None:
    actual = _backend.crc32c(payload)
    if actual != header.payload_crc32c:
        raise _checksum_error(header, actual)


_MODES: dict[int, Mode] = {}
_MODES_BY_NAME: dict[str, Mode] = {}


def register_mode(mode: Mode) -> Mode:
    """Add a coding mode to the registry (by ``mode.mode_id`` and ``mode.name``)."""
    if mode.mode_id in _MODES or mode.name in _MODES_BY_NAME:
        raise ValueError(f"coding mode {mode.name!r} ({mode.mode_id}) is already registered")
    _MODES[mode.mode_id] = mode
    _MODES_BY_NAME[mode.name] = mode
    return mode


def get_mode(mode: int | str) -> Mode:
    """Return the registered mode for a ``coding_mode`` value or name."""
    if isinstance(mode, str):
        try:
            return _MODES_BY_NAME[mode]
        except KeyError:
            raise EncodeError(f"unknown coding mode {mode!r}; known: {', '.join(sorted(_MODES_BY_NAME))}") from None
    try:
        return _MODES[mode]
    except KeyError:
        raise UnsupportedError(f"coding_mode {mode} is not supported by this reader") from None


def mode_name(mode_id: int) -> str:
    mode = _MODES.get(mode_id)
    return mode.name if mode else f"unknown({mode_id})"


# ---------------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------------
def dtype_code_of(array: np.ndarray, override: str | None = None) -> DType:
    """Return the ``layer_dtype`` of ``array``.

    ``override="bfloat16"`` marks a 2-byte integer array as the raw bits of bfloat16 values (for
    users without ``ml_dtypes``); arrays of ``ml_dtypes.bfloat16`` are recognised by themselves.
    """
    dt = array.dtype
    if override is not None:
        if override != "bfloat16":
            raise EncodeError(f"dtype= only accepts 'bfloat16' (to mark uint16 raw bits), got {override!r}")
        if dt.name == "bfloat16" or (dt.kind in "ui" and dt.itemsize == 2):
            return DType.BFLOAT16
        raise EncodeError(f"dtype='bfloat16' needs an array of 2-byte integers (raw bits), got {dt}")
    if dt.name == "bfloat16":  # ml_dtypes.bfloat16
        return DType.BFLOAT16
    code = _DTYPE_BY_NUMPY.get(dt.newbyteorder("=")) if dt.kind in "biuf" else None
    if code is None:
        supported = ", ".join(n for c, n in DTYPE_NAMES.items() if c in STORAGE_DTYPE)
        raise EncodeError(f"dtype {dt} is not supported (supported: {supported})")
    return code


_DTYPE_BY_NUMPY = {np.dtype(name): code for code, name in DTYPE_NAMES.items() if code in STORAGE_DTYPE and name != "bfloat16"}


def storage_dtype(header) -> np.dtype:
    """Return the little-endian numpy dtype the payload of ``header`` stores, or raise UnsupportedError."""
    code = header.layer_dtype
    if code in UNSUPPORTED_DTYPES:
        raise UnsupportedError(f"dtype {UNSUPPORTED_DTYPES[code]} is reserved but not supported by this reader",
                               path=f"layers[{header.layer_index}].layer_dtype")
    try:
        return STORAGE_DTYPE[DType(code)]
    except (KeyError, ValueError):
        raise UnsupportedError(f"dtype code {code} is not supported",
                               path=f"layers[{header.layer_index}].layer_dtype") from None


def _bfloat16_dtype():
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def user_array(header, flat: np.ndarray) -> np.ndarray:
    """Turn decoded storage elements into the array users get: shaped, native order, bool/bfloat16 typed."""
    code = header.layer_dtype
    if code == DType.BOOL:
        if flat.size and int(flat.max()) > 1:
            raise FormatError(f"bool layer holds byte value {int(flat.max())}",
                              path=f"layers[{header.layer_index}].layer_payload")
        flat = flat.view(np.bool_)
    elif code == DType.BFLOAT16:
        bf16 = _bfloat16_dtype()
        flat = flat.astype("=u2", copy=False)
        if bf16 is not None:
            flat = flat.view(bf16)
    elif sys.byteorder != "little":
        flat = flat.astype(flat.dtype.newbyteorder("="))
    return flat.reshape(header.layer_shape)


def iter_le_chunks(array: np.ndarray, storage: np.dtype, chunk_bytes: int = CHUNK_BYTES) -> Iterator[memoryview]:
    """Yield the little-endian bytes of ``array`` in C order, at most ~``chunk_bytes`` at a time.

    No copy when the array is C-contiguous and already in storage byte order; otherwise one chunk
    of rows at a time is converted, so memory stays bounded by the chunk, not the layer.
    """
    if array.dtype.name == "bfloat16":
        array = array.view(np.uint16)
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    if array.size == 0:
        return
    if array.flags.c_contiguous and array.dtype == storage:
        flat = memoryview(array.reshape(-1).view(np.uint8))
        for start in range(0, len(flat), chunk_bytes):
            yield flat[start : start + chunk_bytes]
        return
    if array.ndim == 0:
        yield memoryview(np.ascontiguousarray(array, dtype=storage).reshape(-1).view(np.uint8))
        return
    row_bytes = max(1, array[0].size * storage.itemsize)
    rows = max(1, chunk_bytes // row_bytes)
    for start in range(0, array.shape[0], rows):
        chunk = np.ascontiguousarray(array[start : start + rows], dtype=storage)
        yield memoryview(chunk.reshape(-1).view(np.uint8))


#: Bound on a zstd frame's content size relative to its compressed size (section 6.2).
ZSTD_MAX_EXPANSION = 1 << 16


def allocate(header, storage: np.dtype) -> np.ndarray:
    """Return an uninitialized flat output array; a refused allocation is a LimitError, not a crash."""
    try:
        return np.empty(header.num_elements, dtype=storage)
    except MemoryError:
        raise LimitError(f"cannot allocate {header.num_elements * storage.itemsize} bytes for the layer",
                         path=f"layers[{header.layer_index}].shape") from None


def _expected_nbytes(header, storage: np.dtype) -> int:
    return header.num_elements * storage.itemsize


def _checksum_error(header, actual: int) -> ChecksumError:
    return ChecksumError(
        f"payload crc32c mismatch: stored 0x{header.payload_crc32c:08x}, computed 0x{actual:08x}",
        path=f"layers[{header.layer_index}].layer_payload",
        bit_offset=header.payload_offset * 8,
    )


def _no_params(mode: str, params: dict[str, Any]) -> None:
    if params:
        raise EncodeError(f"mode {mode!r} takes no parameter {sorted(params)[0]!r}")


def _zstd_level(params: dict) -> int:
    """Pop and check the ``level`` parameter (zstd compression level, default 3)."""
    level = params.pop("level", 3)
    if not isinstance(level, (int, np.integer)) or isinstance(level, bool) or not -7 <= level <= 22:
        raise EncodeError(f"zstd level must be an int in -7..22, got {level!r}")
    return int(level)


def _begin_level_decode(mode: str, header, payload, verify: bool, allowed) -> tuple[int, int]:
    """The common start of the level-coded modes: no mode_params, a dtype the mode can hold, the
    payload checksum; return the level grid (rows, cols) of spec 7.1."""
    _check_empty_params(header, mode)
    if header.layer_dtype not in allowed:
        raise FormatError(f"mode {mode} cannot hold dtype {header.dtype_name}",
                          path=f"layers[{header.layer_index}].layer_dtype")
    if verify:
        _verify_payload(header, payload)
    return levels_mod.level_grid(header.layer_shape)


def _check_empty_params(header, mode: str) -> None:
    if header.mode_params:
        raise FormatError(f"mode {mode} has no mode_params, got {len(header.mode_params)} bytes",
                          path=f"layers[{header.layer_index}].mode_params")


# ---------------------------------------------------------------------------------------------
# raw: the little-endian element bytes
# ---------------------------------------------------------------------------------------------
class RawMode(Mode):
    """``coding_mode`` 0: the elements' little-endian bytes in C order; aligned, so mmap-able."""

    name = "raw"
    mode_id = CodingMode.RAW

    def plan(self, array, dtype, params, *, global_qp=None):
        _no_params(self.name, params)
        return Plan(b"")

    def write(self, plan, array, dtype, sink):
        for chunk in iter_le_chunks(array, STORAGE_DTYPE[dtype]):
            sink.write(chunk)

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False):
        _not_quantized(header, levels)
        _check_empty_params(header, self.name)
        storage = storage_dtype(header)
        nbytes = _expected_nbytes(header, storage)
        if header.payload_size != nbytes:
            raise FormatError(f"raw payload holds {header.payload_size} bytes, shape and dtype need {nbytes}",
                              path=f"layers[{header.layer_index}].unit_payload_size")
        out = allocate(header, storage)
        dst = out.view(np.uint8)
        if verify:
            actual = parallel.crc32c_copy(dst, payload)
            if actual != header.payload_crc32c:
                raise _checksum_error(header, actual)
        elif nbytes:
            dst[:] = np.frombuffer(payload, dtype=np.uint8)
        return user_array(header, out)


# ---------------------------------------------------------------------------------------------
# zstd: one Zstandard frame of the raw bytes
# ---------------------------------------------------------------------------------------------
class ZstdMode(Mode):
    """``coding_mode`` 1: one Zstandard frame (RFC 8878) with its content size, of the raw bytes.

    Parameters: ``level`` (int, -7..22, default 3). The level is not stored: decoding does not need it.
    """

    name = "zstd"
    mode_id = CodingMode.ZSTD

    def plan(self, array, dtype, params, *, global_qp=None):
        params = dict(params)
        level = _zstd_level(params)
        _no_params(self.name, params)
        return Plan(b"", level)

    def write(self, plan, array, dtype, sink):
        nbytes = array.size * STORAGE_DTYPE[dtype].itemsize
        cctx = zstandard.ZstdCompressor(level=plan.state, write_content_size=True, write_checksum=False)
        with cctx.stream_writer(sink, size=nbytes, closefd=False, write_size=1 << 20) as writer:
            for chunk in iter_le_chunks(array, STORAGE_DTYPE[dtype]):
                writer.write(chunk)

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False):
        _not_quantized(header, levels)
        _check_empty_params(header, self.name)
        storage = storage_dtype(header)
        nbytes = _expected_nbytes(header, storage)
        path = f"layers[{header.layer_index}].layer_payload"
        if verify:
            _verify_payload(header, payload)
        try:
            content_size = zstandard.frame_content_size(payload)
        except zstandard.ZstdError as exc:
            raise FormatError(f"not a zstd frame: {exc}", path=path, bit_offset=header.payload_offset * 8) from None
        if content_size != nbytes:
            raise FormatError(f"zstd frame content size {content_size} differs from the layer's {nbytes} bytes",
                              path=path, bit_offset=header.payload_offset * 8)
        # No valid zstd frame expands more than 32768:1 (a 4-byte RLE block yields at most 128 KiB),
        # so a larger claim is rejected before the output is allocated.
        if nbytes > ZSTD_MAX_EXPANSION * len(payload) + (1 << 20):
            raise FormatError(f"zstd frame of {len(payload)} bytes cannot hold {nbytes} bytes", path=path,
                              bit_offset=header.payload_offset * 8)
        out = allocate(header, storage)
        view = memoryview(out.view(np.uint8))
        filled = 0
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(payload, read_across_frames=False)
            while filled < nbytes:
                got = reader.readinto(view[filled:])
                if not got:
                    break
                filled += got
            extra = reader.read(1)
        except zstandard.ZstdError as exc:
            raise FormatError(f"zstd frame is corrupt: {exc}", path=path, bit_offset=header.payload_offset * 8) from None
        if filled != nbytes or extra:
            raise FormatError(f"zstd frame decodes to {'more' if extra else filled} bytes, expected {nbytes}",
                              path=path, bit_offset=header.payload_offset * 8)
        return user_array(header, out)


# ---------------------------------------------------------------------------------------------
# entropy: integer tensors, lossless, through the level coder
# ---------------------------------------------------------------------------------------------
class EntropyMode(Mode):
    """``coding_mode`` 2: integer (or bool) elements coded losslessly as levels (spec 7)."""

    name = "entropy"
    mode_id = CodingMode.ENTROPY
    since_minor = 1

    def plan(self, array, dtype, params, *, global_qp=None):
        params = dict(params)
        max_classes = params.pop("max_classes", levels_mod.MAX_CLASSES)
        _no_params(self.name, params)
        if dtype not in _INTEGER_DTYPES:
            raise EncodeError(f"mode 'entropy' codes integer or bool tensors, not {DTYPE_NAMES[dtype]}")
        if dtype == DType.UINT64 and array.size and int(array.max()) >= 1 << 63:
            raise EncodeError("mode 'entropy' needs uint64 values below 2^63")
        return Plan(b"", max_classes)

    def write(self, plan, array, dtype, sink):
        rows, cols = levels_mod.level_grid(array.shape)
        sink.write(levels_mod.encode_levels(np.asarray(array).astype(np.int64), rows, cols, max_classes=plan.state))

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False):
        _not_quantized(header, levels)
        storage = storage_dtype(header)
        rows, cols = _begin_level_decode(self.name, header, payload, verify, _INTEGER_DTYPES)
        flat = levels_mod.decode_levels(payload, rows, cols, path=f"layers[{header.layer_index}].layer_payload",
                                        base_offset=header.payload_offset)
        info = np.iinfo(storage) if storage.kind in "iu" else None
        lo, hi = (0, 1) if header.layer_dtype == DType.BOOL else (info.min, info.max)
        if flat.size and (flat.min() < lo or flat.max() > hi):
            raise FormatError(f"decoded value outside the range of {header.dtype_name}",
                              path=f"layers[{header.layer_index}].layer_payload", bit_offset=header.payload_offset * 8)
        return user_array(header, flat.astype(storage))


_INTEGER_DTYPES = {DType.INT8, DType.INT16, DType.INT32, DType.INT64, DType.UINT8, DType.UINT16, DType.UINT32,
                   DType.UINT64, DType.BOOL}
_FLOAT_DTYPES = {DType.FLOAT64, DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16}


# ---------------------------------------------------------------------------------------------
# quantized: float tensors as entropy-coded levels plus quantization parameters
# ---------------------------------------------------------------------------------------------
class QuantizedMode(Mode):
    """``coding_mode`` 3: levels of a float tensor (spec 7), dequantized with the layer's effective
    quantization parameters (spec 8). Parameters: ``bits``, ``step``, ``method``
    ("uniform" | "uniform_zp" | "codebook"), ``granularity`` ("tensor" | "channel"), ``axis``,
    ``qp_density``, ``rdo_lambda``, ``max_classes``; unset ones come from the writer's global
    quantization parameters."""

    name = "quantized"
    mode_id = CodingMode.QUANTIZED
    since_minor = 1
    _KEYS = ("bits", "step", "method", "granularity", "axis", "qp_density", "rdo_lambda")

    def plan(self, array, dtype, params, *, global_qp=None):
        from . import quant

        params = dict(params)
        max_classes = params.pop("max_classes", levels_mod.MAX_CLASSES)
        unknown = sorted(set(params) - set(self._KEYS))
        if unknown:
            raise EncodeError(f"mode 'quantized' takes no parameter {unknown[0]!r}")
        if dtype not in _FLOAT_DTYPES:
            raise EncodeError(f"mode 'quantized' needs a float tensor, got {DTYPE_NAMES[dtype]}; "
                              f"integer tensors use mode='entropy'")
        g = global_qp or quant.QuantParams()
        kwargs = {
            "method": params.get("method", g.method or "uniform"),
            "bits": params.get("bits", g.bits),
            "granularity": params.get("granularity", g.granularity or "tensor"),
            "axis": params.get("axis", g.axis or 0),
            "qp_density": params.get("qp_density", g.qp_density if g.qp_density is not None else quant.DEFAULT_DENSITY),
            "rdo_lambda": params.get("rdo_lambda"),
        }
        step = params.get("step")
        if step is None and g.qps is not None and len(g.qps) == 1 and "bits" not in params:
            step = quant.step_of_qp(g.qps[0], g.qp_density)
            kwargs["qp_density"] = g.qp_density
        if dtype == DType.BFLOAT16 and array.dtype.kind in "ui":  # raw bfloat16 bits
            array = (array.astype(np.uint32) << 16).view(np.float32)
        levels, full = quant.quantize(array, step=step, **kwargs)
        local = full.without(g)
        return Plan(b"", (levels, max_classes), quant.write_qp_set_data(local) if not local.is_empty() else None)

    def write(self, plan, array, dtype, sink):
        levels, max_classes = plan.state
        rows, cols = levels_mod.level_grid(levels.shape)
        sink.write(levels_mod.encode_levels(levels, rows, cols, max_classes=max_classes))

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False):
        from . import quant

        path = f"layers[{header.layer_index}]"
        rows, cols = _begin_level_decode(self.name, header, payload, verify, _FLOAT_DTYPES)
        local = quant.read_qp_set_data(header.local_qp_set or b"", path=f"{path}.local_qp_set")
        eff = quant.resolve(local, global_qp or quant.QuantParams(), header.layer_shape, path=f"{path}.local_qp_set")
        where = dict(path=f"{path}.layer_payload", base_offset=header.payload_offset)
        if levels:
            flat = levels_mod.decode_levels(payload, rows, cols, **where)
            return flat.reshape(header.layer_shape), eff
        if eff.method == "codebook":
            flat = levels_mod.decode_levels(payload, rows, cols, out_kind=2, codebook=eff.codebook, **where)
        elif eff.steps.size == 1 or (eff.axis == 0 and len(header.layer_shape) >= 2):
            # fused: the kernel writes (level - zero_point[row]) * step[row] directly
            scale = np.broadcast_to(eff.steps, (rows,)) if eff.steps.size == 1 else eff.steps
            zps = np.broadcast_to(eff.zero_points, (rows,)) if eff.zero_points.size == 1 else eff.zero_points
            flat = levels_mod.decode_levels(payload, rows, cols, out_kind=1, scale=scale, zero_point=zps, **where)
        else:
            flat = levels_mod.decode_levels(payload, rows, cols, **where)
            flat = quant.dequantize(flat.reshape(header.layer_shape), eff).reshape(-1)
        return _float_output(header, flat)


def _float_output(header, flat32: np.ndarray) -> np.ndarray:
    """Convert float32 values to the layer's float dtype (round to nearest even)."""
    code = header.layer_dtype
    if code == DType.FLOAT32:
        out = flat32
    elif code == DType.FLOAT64:
        out = flat32.astype(np.float64)
    elif code == DType.FLOAT16:
        out = flat32.astype(np.float16)
    else:  # bfloat16: round to nearest even on the raw bits
        bits = flat32.view(np.uint32).astype(np.uint64)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        nan = np.isnan(flat32)
        rounded[nan] = 0x7FC0
        bf16 = _bfloat16_dtype()
        out = rounded.view(bf16) if bf16 is not None else rounded
        return out.reshape(header.layer_shape)
    return out.reshape(header.layer_shape)


# ---------------------------------------------------------------------------------------------
# floatplanes: float tensors kept lossless, exponents entropy-coded, mantissa planes
# ---------------------------------------------------------------------------------------------
class FloatPlanesMode(Mode):
    """``coding_mode`` 4: float tensors, lossless (spec 6.5). Exponents through the level coder,
    sign and mantissa as byte planes, each raw or zstd. Parameter: ``level`` (zstd level of the
    planes, default 3)."""

    name = "floatplanes"
    mode_id = CodingMode.FLOATPLANES
    since_minor = 1

    def plan(self, array, dtype, params, *, global_qp=None):
        params = dict(params)
        level = _zstd_level(params)
        _no_params(self.name, params)
        if dtype not in _FLOAT_DTYPES:
            raise EncodeError(f"mode 'floatplanes' codes float tensors, not {DTYPE_NAMES[dtype]}")
        return Plan(b"", level)

    def write(self, plan, array, dtype, sink):
        from . import floatplanes

        a = np.asarray(array)
        if a.dtype.name == "bfloat16":
            a = a.view(np.uint16)
        if dtype != DType.BFLOAT16:  # native byte order, so the bit fields are read correctly
            a = np.ascontiguousarray(a, dtype=STORAGE_DTYPE[dtype].newbyteorder("="))
        bits = np.ascontiguousarray(a).view(floatplanes.LAYOUT[dtype][0].newbyteorder("=")).reshape(-1)
        rows, cols = levels_mod.level_grid(array.shape)
        floatplanes.encode_planes(bits, dtype, rows, cols, level=plan.state, write=sink.write)

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False):
        from . import floatplanes

        _not_quantized(header, levels)
        rows, cols = _begin_level_decode(self.name, header, payload, verify, _FLOAT_DTYPES)
        bits = floatplanes.decode_planes(payload, DType(header.layer_dtype), rows, cols,
                                         path=f"layers[{header.layer_index}].layer_payload",
                                         base_offset=header.payload_offset)
        storage = storage_dtype(header)
        return user_array(header, bits.view(storage) if header.layer_dtype != DType.BFLOAT16 else bits)


# ---------------------------------------------------------------------------------------------
# ternary: trits in {-1, 0, +1} times alpha
# ---------------------------------------------------------------------------------------------
class TernaryMode(Mode):
    """``coding_mode`` 5 (spec 6.6): ternary tensors. Input: a float array with values in
    {-alpha, 0, +alpha} (alpha per tensor, or per slice along ``axis``) or an integer array of
    trits. Parameters: ``scheme`` ("auto" | "flag" | "base3" | "entropy"), ``axis``."""

    name = "ternary"
    mode_id = CodingMode.TERNARY
    since_minor = 1

    def plan(self, array, dtype, params, *, global_qp=None):
        from . import ternary

        params = dict(params)
        scheme = params.pop("scheme", "auto")
        axis = params.pop("axis", None)
        _no_params(self.name, params)
        if scheme not in ("auto", *ternary.SCHEMES):
            raise EncodeError(f"scheme must be 'auto', 'flag', 'base3' or 'entropy', got {scheme!r}")
        if dtype not in _FLOAT_DTYPES and dtype not in _INTEGER_DTYPES:
            raise EncodeError(f"mode 'ternary' needs float or integer input, got {DTYPE_NAMES[dtype]}")
        if axis is not None and dtype in _INTEGER_DTYPES:
            raise EncodeError("integer trits have no alpha: axis= applies to float input")
        a = np.asarray(array)
        if dtype == DType.BFLOAT16 and a.dtype.kind in "ui":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        if axis is not None:
            if not -a.ndim <= axis < a.ndim or a.ndim == 0:
                raise EncodeError(f"axis {axis} does not exist in a tensor of rank {a.ndim}")
            axis %= a.ndim
            if axis > 7:
                raise EncodeError("the alpha axis must be < 8")
        trits, alphas = ternary.split_ternary(a, axis=axis)
        w = _backend.BitWriter()
        w.u8(255 if axis is None else axis)
        w.u32le(len(alphas))
        for value in alphas.tolist():
            w.f64le(value)
        return Plan(w.getvalue(), (trits, scheme))

    def write(self, plan, array, dtype, sink):
        from . import ternary

        trits, scheme = plan.state
        rows, cols = levels_mod.level_grid(trits.shape)
        sink.write(ternary.encode_payload(trits, rows, cols, scheme))

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False):
        from . import ternary

        path = f"layers[{header.layer_index}]"
        r = _backend.BitReader(header.mode_params)
        r.path = f"{path}.mode_params"
        axis = r.u8("tn_axis")
        count = r.u32le("tn_alpha_count")
        if count * 64 != r.bits_left():
            raise FormatError(f"{count} alphas do not fill mode_params", path=f"{path}.mode_params")
        alphas = np.array([r.f64le("tn_alpha") for _ in range(count)], dtype=np.float64)
        shape = header.layer_shape
        if axis == 255:
            if count != 1:
                raise FormatError("per-tensor ternary layer needs one alpha", path=f"{path}.mode_params")
        elif axis >= len(shape) or count != shape[axis]:
            raise FormatError(f"alpha axis {axis} with {count} alphas does not fit shape {shape}",
                              path=f"{path}.mode_params")
        if header.layer_dtype not in _FLOAT_DTYPES and header.layer_dtype not in _INTEGER_DTYPES:
            raise FormatError(f"mode ternary cannot produce dtype {header.dtype_name}", path=f"{path}.layer_dtype")
        if verify:
            _verify_payload(header, payload)
        rows, cols = levels_mod.level_grid(shape)
        trits = ternary.decode_payload(payload, rows, cols, path=f"{path}.layer_payload",
                                       base_offset=header.payload_offset).reshape(shape)
        if levels:
            return trits, alphas
        if header.layer_dtype in _INTEGER_DTYPES:
            return user_array(header, trits.reshape(-1).astype(storage_dtype(header)))
        if axis != 255:
            bshape = [1] * len(shape)
            bshape[axis] = -1
            alphas = alphas.reshape(bshape)
        values = trits * alphas  # float64: exactly +-alpha or 0
        if header.layer_dtype == DType.FLOAT64:
            return values
        if header.layer_dtype == DType.BFLOAT16:
            return _float_output(header, values.astype(np.float32).reshape(-1))
        return values.astype(STORAGE_DTYPE[DType(header.layer_dtype)].newbyteorder("="))


# ---------------------------------------------------------------------------------------------
# sparse: a coded mask plus the kept values in any value mode
# ---------------------------------------------------------------------------------------------
class _ListSink:
    def __init__(self):
        self.parts = []

    def write(self, data):
        self.parts.append(bytes(memoryview(data).cast("B")))
        return len(self.parts[-1])

    def flush(self):
        pass


class SparseMode(Mode):
    """``coding_mode`` 6 (spec 6.7): a mask (True = kept) and the kept values. Parameters:
    ``mask`` (bool array; default: the non-zero elements), ``nm=(N, M)`` for an N:M mask along
    ``axis`` (default -1), ``nm=[(N1, M1), (N2, M2)]`` for hierarchical N:M, ``hybrid=block_rows``
    with ``nm`` for blocks of rows that are N:M or dense, ``values_mode`` (default "raw") and that
    mode's parameters for the kept values."""

    name = "sparse"
    mode_id = CodingMode.SPARSE
    since_minor = 1

    def plan(self, array, dtype, params, *, global_qp=None):
        from . import masks

        params = dict(params)
        mask = params.pop("mask", None)
        nm = params.pop("nm", None)
        axis = params.pop("axis", -1)
        hybrid = params.pop("hybrid", None)
        values_mode = params.pop("values_mode", "raw")
        a = np.asarray(array)
        if mask is None:
            mask = a != 0 if a.dtype.kind != "V" and a.dtype.name != "bfloat16" else a.view(np.uint16) != 0
        else:
            mask = np.asarray(mask)
            if mask.dtype != np.bool_ or mask.shape != a.shape:
                raise EncodeError(f"mask must be a bool array of shape {a.shape}, got {mask.dtype} {mask.shape}")
        if nm is None:
            if hybrid is not None:
                raise EncodeError("hybrid= needs nm=(N, M)")
            block = masks.encode_bitmap(mask)
        else:
            if a.ndim == 0:
                raise EncodeError("N:M masks need a tensor of rank >= 1")
            axis_n = axis % a.ndim if -a.ndim <= axis < a.ndim else None
            if axis_n is None or axis_n > 255:
                raise EncodeError(f"axis {axis} does not exist in a tensor of rank {a.ndim}")
            levels = [tuple(x) for x in nm] if isinstance(nm[0], (tuple, list)) else None
            if hybrid is not None:
                if levels or axis_n != a.ndim - 1:
                    raise EncodeError("hybrid masks take one N:M along the last axis")
                if not isinstance(hybrid, (int, np.integer)) or not 1 <= hybrid < 1 << 32:
                    raise EncodeError(f"hybrid must be a positive number of rows, got {hybrid!r}")
                block = masks.encode_hybrid(mask, int(nm[0]), int(nm[1]), int(hybrid))
            elif levels:
                if len(levels) != 2:
                    raise EncodeError("hierarchical N:M takes two levels [(N1, M1), (N2, M2)]")
                for n_, m_ in levels:
                    masks.patterns(n_, m_)
                block = masks.encode_hierarchical(mask, levels, axis_n)
            else:
                masks.patterns(int(nm[0]), int(nm[1]))
                block = masks.encode_nm(mask, int(nm[0]), int(nm[1]), axis_n)
        values = a[mask]
        coding = get_mode(values_mode)
        if isinstance(coding, SparseMode):
            raise EncodeError("the kept values cannot themselves be sparse")
        vplan = coding.plan(values, dtype, params, global_qp=global_qp)
        return Plan(b"", (block, int(mask.sum()), coding, vplan, values))

    def write(self, plan, array, dtype, sink):
        block, kept, coding, vplan, values = plan.state
        w = _backend.BitWriter()
        w.u64le(kept)
        w.u32le(len(block))
        w.b(block)
        w.u8(coding.mode_id)
        w.u32le(len(vplan.mode_params))
        w.b(vplan.mode_params)
        w.u8(vplan.local_qp_set is not None)
        if vplan.local_qp_set is not None:
            w.u32le(len(vplan.local_qp_set))
            w.b(vplan.local_qp_set)
        sink.write(w.getvalue())
        inner = _ListSink()
        coding.write(vplan, values, dtype, inner)
        for part in inner.parts:
            sink.write(part)

    @staticmethod
    def parse(header, payload):
        """Return (kept_count, mask_block, values_mode, values_params, values_qp, values_offset)."""
        path = f"layers[{header.layer_index}].layer_payload"
        r = _backend.BitReader(payload, base_offset=header.payload_offset)
        r.path = path
        kept = r.u64le("sp_kept_count")
        size = r.u32le("sp_mask_size")
        start = r.pos // 8
        r.b(size, "mask_block")
        block = memoryview(payload).cast("B")[start:start + size]
        vmode = r.u8("sp_values_mode")
        vparams = r.b(r.u32le("sp_values_params_size"), "sp_values_params")
        vqp = None
        if r.u8("sp_values_qp_present"):
            vqp = r.b(r.u32le("qp_set_size"), "qp_set_data")
        return kept, block, start, vmode, vparams, vqp, r.pos // 8

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        import dataclasses as dc

        from . import masks

        path = f"layers[{header.layer_index}]"
        if format not in ("dense", "bitmap", "nm"):
            raise ValueError(f"format must be 'dense', 'bitmap' or 'nm', got {format!r}")
        _check_empty_params(header, self.name)
        if verify:
            _verify_payload(header, payload)
        kept, block, block_at, vmode, vparams, vqp, values_at = self.parse(header, payload)
        if kept > header.num_elements:
            raise FormatError(f"sp_kept_count {kept} exceeds the {header.num_elements} elements",
                              path=f"{path}.layer_payload")
        kind, mask = masks.decode_mask(block, header.layer_shape, path=f"{path}.mask_block",
                                       base_offset=header.payload_offset + block_at)
        if int(mask.sum()) != kept:
            raise FormatError(f"mask keeps {int(mask.sum())} elements, sp_kept_count says {kept}",
                              path=f"{path}.mask_block")
        coding = get_mode(vmode)
        if isinstance(coding, SparseMode):
            raise FormatError("sparse values cannot be sparse", path=f"{path}.layer_payload")
        inner = dc.replace(header, layer_shape=(kept,), coding_mode=vmode, mode_params=vparams, local_qp_set=vqp,
                           payload_offset=header.payload_offset + values_at,
                           payload_size=len(payload) - values_at)
        values = coding.decode(inner, memoryview(payload).cast("B")[values_at:], verify=False, global_qp=global_qp,
                               levels=levels)
        if levels:
            return mask, values
        if format == "bitmap":
            return np.packbits(mask.reshape(-1)), values
        if format == "nm":
            # block: kind, N, M, axis
            if kind != masks.KIND_NM or mask.ndim != 2 or tuple(block[1:4]) != (2, 4, 1):
                raise ValueError("format='nm' needs a 2-D layer with a 2:4 mask along the last axis")
            return masks.nm_layout(values, mask)
        out = np.zeros(header.layer_shape, dtype=values.dtype)
        out[mask] = values
        return out


register_mode(RawMode())
register_mode(ZstdMode())
register_mode(EntropyMode())
register_mode(QuantizedMode())
register_mode(FloatPlanesMode())
register_mode(TernaryMode())
register_mode(SparseMode())
