"""Between user arrays and stored elements: ``layer_dtype`` codes (spec table 5.4), little-endian
storage, bfloat16 without ml_dtypes, the float conversions of spec 8.4."""

from __future__ import annotations

import sys
from typing import Iterator

import numpy as np

from .errors import EncodeError, FormatError, LimitError, UnsupportedError
from .format.constants import DTYPE_NAMES, STORAGE_DTYPE, UNSUPPORTED_DTYPES, DType
from .lazy import PIECE as LAZY_PIECE
from .lazy import PieceArray

__all__ = ["FLOAT_DTYPES", "INTEGER_DTYPES", "CHUNK_BYTES", "dtype_code_of", "storage_dtype", "bfloat16_dtype",
           "user_array", "iter_le_chunks", "allocate", "float_output", "as_float", "is_bf16_bits"]

INTEGER_DTYPES = frozenset({DType.INT8, DType.INT16, DType.INT32, DType.INT64, DType.UINT8, DType.UINT16,
                            DType.UINT32, DType.UINT64, DType.BOOL})
FLOAT_DTYPES = frozenset({DType.FLOAT64, DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16})

#: Chunk size for streaming a layer's bytes through checksums and compressors.
CHUNK_BYTES = 16 << 20

_DTYPE_BY_NUMPY = {np.dtype(name): code for code, name in DTYPE_NAMES.items()
                   if code in STORAGE_DTYPE and name != "bfloat16"}


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


def storage_dtype(header) -> np.dtype:
    """Return the little-endian numpy dtype the payload of ``header`` stores, or raise UnsupportedError."""
    code = header.layer_dtype
    if code in UNSUPPORTED_DTYPES:
        raise UnsupportedError(f"dtype {UNSUPPORTED_DTYPES[code]} is reserved but not supported by this reader",
                               path=f"{header.path}.layer_dtype")
    try:
        return STORAGE_DTYPE[DType(code)]
    except (KeyError, ValueError):
        raise UnsupportedError(f"dtype code {code} is not supported", path=f"{header.path}.layer_dtype") from None


def bfloat16_dtype():
    """``ml_dtypes.bfloat16`` when installed, else None."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def is_bf16_bits(array: np.ndarray, dtype: DType) -> bool:
    """Whether a bfloat16 layer's array holds the raw bits as 16-bit integers."""
    kind = (array.dtype if hasattr(array, "dtype") else np.asarray(array).dtype).kind
    return dtype == DType.BFLOAT16 and kind in "ui"


def float_pieces(array, bf16_bits: bool, need: str):
    """The conversion of a piece of a float layer's array to a numpy float type, for coders that
    read a layer in pieces: bfloat16 (raw bits as 16-bit integers, or ml_dtypes) as float32, other
    floats as they are. Another dtype is an EncodeError: ``need``, then the dtype."""
    if bf16_bits:
        return lambda p: (p.astype(np.uint32) << 16).view(np.float32)
    if array.dtype.name == "bfloat16":
        return lambda p: p.astype(np.float32)
    if array.dtype.kind != "f":
        raise EncodeError(f"{need}, got {array.dtype}")
    return lambda p: p


def as_float(array: np.ndarray, dtype: DType) -> np.ndarray:
    """A float array of a float layer's values (bfloat16 raw bits widened to float32)."""
    a = np.asarray(array)
    if dtype == DType.BFLOAT16 and a.dtype.kind in "ui":
        return (a.astype(np.uint32) << 16).view(np.float32)
    if a.dtype.name == "bfloat16":
        return a.astype(np.float32)
    return a


def user_dtype(header) -> np.dtype:
    """The dtype of the arrays users get for a layer (:func:`user_array`'s)."""
    code = header.layer_dtype
    if code == DType.BOOL:
        return np.dtype(np.bool_)
    if code == DType.BFLOAT16:
        bf16 = bfloat16_dtype()
        return np.dtype(bf16) if bf16 is not None else np.dtype("=u2")
    return storage_dtype(header).newbyteorder("=")


def user_array(header, flat: np.ndarray) -> np.ndarray:
    """Turn decoded storage elements into the array users get: shaped, native order, bool/bfloat16 typed."""
    code = header.layer_dtype
    if code == DType.BOOL:
        if flat.size and int(flat.max()) > 1:
            raise FormatError(f"bool layer holds byte value {int(flat.max())}", path=header.payload_path,
                              bit_offset=header.payload_offset * 8)
        flat = flat.view(np.bool_)
    elif code == DType.BFLOAT16:
        bf16 = bfloat16_dtype()
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
    if isinstance(array, PieceArray):  # each chunk is made: a small one
        step = max(1, min(LAZY_PIECE, chunk_bytes // max(1, array.dtype.itemsize)))
        for start in range(0, array.size, step):
            yield from iter_le_chunks(array[start:start + step], storage, chunk_bytes)
        return
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


def allocate(header, dtype, count: int | None = None) -> np.ndarray:
    """An uninitialized flat output array; a refused allocation is a LimitError, not a crash."""
    count = header.num_elements if count is None else count
    try:
        return np.empty(count, dtype=dtype)
    except (MemoryError, ValueError):
        raise LimitError(f"cannot allocate {count} elements of {np.dtype(dtype)} for the layer",
                         path=f"{header.path}.layer_dim") from None


def float_output(header, flat32: np.ndarray) -> np.ndarray:
    """Convert binary32 values to the layer's float dtype as spec 8.4 says: float64 widened exactly,
    float16 rounded to nearest even, bfloat16 by ``(b + 0x7FFF + ((b >> 16) & 1)) >> 16`` (NaN -> 0x7FC0)."""
    code = header.layer_dtype
    if code == DType.FLOAT32:
        out = flat32
    elif code == DType.FLOAT64:
        out = flat32.astype(np.float64)
    elif code == DType.FLOAT16:
        with np.errstate(over="ignore"):  # beyond float16's range: +-inf, as IEEE rounding gives
            out = flat32.astype(np.float16)
    else:
        bits = flat32.view(np.uint32).astype(np.uint64)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        rounded[np.isnan(flat32)] = 0x7FC0
        bf16 = bfloat16_dtype()
        out = rounded.view(bf16) if bf16 is not None else rounded
    return out.reshape(header.layer_shape)
