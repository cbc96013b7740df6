"""``codec.safe_open``: safetensors' reading API over a codec bitstream, so that code written for
``safetensors.safe_open`` works by changing the import.

    with codec.safe_open("model.nnc", framework="pt") as f:
        for name in f.keys():
            tensor = f.get_tensor(name)
        rows = f.get_slice("embeddings.word_embeddings.weight")[1000:1010]

Raw layers are read without a copy where the framework allows (a read-only view of the memory map
for ``np``). A slice whose first index is an int or a slice with a positive step decodes only the
chunks of rows that hold those rows where the layer's levels are coded in chunks (entropy, quantized
and dq layers of rank >= 2 in a 2.x file, about 2^20 levels a chunk); other slices and modes decode
the layer, then slice it. ``metadata()`` returns the file's metadata as str -> str, as safetensors
does (other value types as JSON).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .format import CodingMode
from .reader import Reader

__all__ = ["safe_open"]

_FRAMEWORKS = ("np", "numpy", "pt", "torch")


class _Slice:
    """What ``get_slice`` returns: shape and dtype without decoding, the data when indexed."""

    def __init__(self, handle: "safe_open", name: str):
        self._handle, self._name = handle, name
        self._header = handle._reader.header(name)

    def get_shape(self) -> list[int]:
        return list(self._header.shape)

    def get_dtype(self) -> str:
        return _SAFETENSORS_DTYPES.get(self._header.dtype_name, self._header.dtype_name.upper())

    def __getitem__(self, index) -> Any:
        reader = self._handle._reader
        rows = None if self._header.coding_mode == CodingMode.RAW else _row_range(index, self._header.layer_shape)
        if rows is None:
            array = reader.get(self._name, copy=False)[index]  # a view of a raw layer: no copy
        else:
            start, stop, rest = rows
            array = reader.get_rows(self._name, start, stop)[rest]  # only the chunks that hold the rows
        return self._handle._convert(np.ascontiguousarray(array) if self._handle._torch else array)


def _row_range(index, shape: tuple[int, ...]):
    """``(start, stop, rest)`` when ``index`` selects rows start..stop-1 along axis 0 by an int or a slice with a
    positive step (``rest`` indexes those rows as ``index`` did the layer), else None (the layer is decoded)."""
    key = index if isinstance(index, tuple) else (index,)
    if not shape or not key:
        return None
    first, n = key[0], shape[0]
    if isinstance(first, (int, np.integer)) and not isinstance(first, (bool, np.bool_)):
        i = int(first)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for axis 0 with size {n}")
        i %= n
        return i, i + 1, (0,) + key[1:]
    if isinstance(first, slice):
        start, stop, step = first.indices(n)
        if step < 0:
            return None
        stop = max(start, stop)
        return start, stop, (slice(0, stop - start, step),) + key[1:]
    return None


_SAFETENSORS_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int8": "I8",
                       "int16": "I16", "int32": "I32", "int64": "I64", "uint8": "U8", "uint16": "U16",
                       "uint32": "U32", "uint64": "U64", "bool": "BOOL"}


class safe_open:  # noqa: N801 - the name of the safetensors function it stands in for
    """Open a codec bitstream with safetensors' API: ``keys()``, ``metadata()``,
    ``get_tensor(name)``, ``get_slice(name)``; a context manager.

    ``framework``: ``"np"`` (numpy arrays; raw layers as read-only views of the map) or ``"pt"``
    (torch tensors, sharing the decoded array's memory, moved to ``device``).
    """

    def __init__(self, filename: str | os.PathLike, framework: str = "np", device: str = "cpu"):
        if framework not in _FRAMEWORKS:
            raise ValueError(f"framework must be one of {', '.join(_FRAMEWORKS)}, got {framework!r}")
        self._torch = framework in ("pt", "torch")
        self._device = device
        if not self._torch and device != "cpu":
            raise ValueError(f"framework {framework!r} holds arrays in memory: device must be 'cpu', got {device!r}")
        self._reader = Reader(filename)

    def __enter__(self) -> "safe_open":
        return self

    def __exit__(self, *exc) -> None:
        self._reader.close()

    def keys(self) -> list[str]:
        """The tensor names, in file order."""
        return self._reader.keys()

    def offset_keys(self) -> list[str]:
        return self._reader.keys()

    def metadata(self) -> dict[str, str] | None:
        """The metadata as str -> str (None when the file has none), as safetensors returns it."""
        meta = self._reader.metadata
        if not meta:
            return None
        return {k: v if isinstance(v, str) else json.dumps(_plain(v)) for k, v in meta.items()}

    def get_tensor(self, name: str) -> Any:
        if name not in self._reader:
            raise KeyError(name)  # safetensors raises SafetensorError, a subclass of Exception
        if self._torch:
            return self._convert(self._reader.get(name))
        return self._reader.get(name, copy=False)

    def get_slice(self, name: str) -> _Slice:
        if name not in self._reader:
            raise KeyError(name)
        return _Slice(self, name)

    def _convert(self, array: np.ndarray) -> Any:
        if not self._torch:
            return array
        import torch

        if not array.flags.writeable:  # a view of the map: torch wants writable memory
            array = array.copy()
        array = np.ascontiguousarray(array)
        if array.dtype.name == "bfloat16":  # ml_dtypes' bfloat16: the same bits, no copy
            tensor = torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
        else:
            tensor = torch.from_numpy(array)
        return tensor if self._device == "cpu" else tensor.to(self._device)


def _plain(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
