"""The one-call API: save_file / load_file / encode / decode / open."""

from __future__ import annotations

import io
import os
from typing import Any, Mapping

import numpy as np

from .limits import DEFAULT_LIMITS, Limits
from .reader import Reader
from .writer import Writer

__all__ = ["save_file", "load_file", "encode", "decode", "open"]


def _write_all(writer: Writer, tensors: Mapping[str, Any], mode: str, mode_params: dict) -> None:
    for name, array in tensors.items():
        writer.add_layer(name, array, mode=mode, **mode_params)


def save_file(tensors: Mapping[str, Any], path: str | os.PathLike, /, *, metadata: Mapping[str, Any] | None = None,
              mode: str = "zstd", **mode_params: Any) -> None:
    """Write ``tensors`` (an ordered mapping of name -> array) to ``path`` atomically.

    Every layer uses coding mode ``mode`` with ``mode_params``; use :class:`Writer` to choose per layer.
    """
    with Writer(path, metadata=metadata) as writer:
        _write_all(writer, tensors, mode, mode_params)


def encode(tensors: Mapping[str, Any], /, *, metadata: Mapping[str, Any] | None = None, mode: str = "zstd",
           **mode_params: Any) -> bytes:
    """Return the bitstream of ``tensors`` as bytes (same layout as :func:`save_file` writes)."""
    buf = io.BytesIO()
    writer = Writer(buf, metadata=metadata)
    _write_all(writer, tensors, mode, mode_params)
    writer.close()
    return buf.getvalue()


def _read_all(reader: Reader) -> dict[str, np.ndarray]:
    # Each layer is checked against max_decoded_bytes before it is allocated (Reader.get);
    # the running total bounds the whole call.
    out = {}
    total = 0
    for position, name in enumerate(reader):
        array = reader.get(name)
        total += array.nbytes
        reader.limits.check("max_decoded_bytes", total, path=f"layers[{position}]")
        out[name] = array
    return out


def load_file(path: str | os.PathLike, /, *, limits: Limits | None = None, verify: bool = True) -> dict[str, np.ndarray]:
    """Read every layer of the file at ``path`` into a dict of name -> array, in file order."""
    with Reader(path, limits=limits, verify=verify) as reader:
        return _read_all(reader)


def decode(data, /, *, limits: Limits | None = None, verify: bool = True) -> dict[str, np.ndarray]:
    """Decode a bitstream held in memory (bytes-like) into a dict of name -> array."""
    with Reader(data, limits=limits, verify=verify) as reader:
        return _read_all(reader)


def open(source, /, *, limits: Limits | None = None, verify: bool = True) -> Reader:  # noqa: A001
    """Open a bitstream for lazy, random access; use as a context manager.

    ``source`` is a path (memory-mapped) or bytes-like data. See :class:`codec.Reader`.

    Examples
    --------
    >>> import codec, numpy as np
    >>> data = codec.encode({"w": np.arange(6, dtype=np.int32).reshape(2, 3)})
    >>> with codec.open(data) as r:
    ...     r.keys(), r.header("w").shape, int(r.get("w").sum())
    (['w'], (2, 3), 15)
    """
    return Reader(source, limits=limits or DEFAULT_LIMITS, verify=verify)
