"""codec: layered bitstreams for compressed neural-network models.

Public API::

    codec.save_file(tensors, path, *, metadata=None, mode="zstd", **mode_params)
    codec.load_file(path) -> dict[str, np.ndarray]
    codec.encode(tensors, *, mode="zstd", **mode_params) -> bytes
    codec.decode(data) -> dict[str, np.ndarray]
    codec.open(path) -> Reader        # lazy: keys(), metadata, header(name), get(name), verify()
    codec.Writer(path, *, metadata=None).add_layer(name, array, *, mode=..., **mode_params)
    codec.iter_stream(binary_stream)  # sequential, works on pipes
    codec.masks, codec.ternary        # helpers that prepare tensors (pruning, ternarization)

The format is specified in spec/bitstream.md. ``codec.backend`` is ``"fast"`` when the Cython
core is in use and ``"pure"`` otherwise (``CODEC_PUREPYTHON=1`` forces it).
"""

from __future__ import annotations

from . import errors, masks, ternary
from ._backend import BACKEND as backend
from .api import decode, encode, encode_file, load_file, open, save_delta, save_file
from .format import VERSION_MAJOR, VERSION_MINOR, CodingMode, DType, LayerHeader, LayerKind, Limits, NetworkHeader
from .errors import (
    BaseMismatchError,
    ChecksumError,
    CodecError,
    EncodeError,
    FileChangedError,
    FormatError,
    LimitError,
    PerformanceWarning,
    TruncatedError,
    UnsupportedError,
)
from .reader import Reader, StreamReader, iter_stream
from .safe import safe_open
from .writer import Writer

__version__ = "0.1.0"
FORMAT_VERSION = (VERSION_MAJOR, VERSION_MINOR)

__all__ = [
    "__version__",
    "FORMAT_VERSION",
    "backend",
    "errors",
    "masks",
    "ternary",
    "save_file",
    "save_delta",
    "encode_file",
    "load_file",
    "encode",
    "decode",
    "open",
    "Reader",
    "StreamReader",
    "iter_stream",
    "safe_open",
    "Writer",
    "Limits",
    "LayerHeader",
    "NetworkHeader",
    "CodingMode",
    "DType",
    "LayerKind",
    "CodecError",
    "FormatError",
    "TruncatedError",
    "ChecksumError",
    "UnsupportedError",
    "LimitError",
    "EncodeError",
    "PerformanceWarning",
    "FileChangedError",
    "BaseMismatchError",
]
