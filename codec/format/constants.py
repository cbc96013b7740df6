"""Numbers fixed by the specification (spec/bitstream.md): magic, version, sizes, enum tables.

The one Python source of the container's constants; the level coder's live in
``codec.kernels.rans`` beside the C header they must match (``tests/test_constants.py``).
"""

from __future__ import annotations

import enum

import numpy as np

# Index sizes live with the index kernel pair, whose C twin needs them too.
from ..kernels.index import INDEX_ENTRY_FIXED_SIZE, MIN_UNIT_SIZE  # noqa: F401

#: ``nnc_magic``: 8 bytes at the start of every bitstream. The high bit, CR LF, ^Z and LF catch
#: 7-bit and text-mode transfer damage, as PNG's signature does.
MAGIC = b"\x89NNC\r\n\x1a\n"

#: ``version_major``/``version_minor`` written by this implementation (its newest version).
VERSION_MAJOR = 2
VERSION_MINOR = 6
#: The versions this implementation reads: the newest ``version_minor`` it knows of each
#: ``version_major`` (spec section 11). Version 1.x files code levels with the payload of spec
#: 7.2, version 2.x files with that of spec 7.4 (2.1 and later: with lc_model 1 of spec 7.5).
KNOWN_VERSIONS = {1: 1, 2: 6}


def levels_version(version_major: int, version_minor: int = 0) -> int:
    """The ``levels_payload()`` syntax of a file of this version: 1 (spec 7.2, 1.x), 2 (7.4, 2.0)
    or 3 (7.4 with lc_model 1 of 7.5, 2.1 and later)."""
    if version_major == 1:
        return 1
    return 2 if version_minor == 0 else 3

#: ``unit_start_code``: 3 bytes opening every unit.
UNIT_START_CODE = b"NNU"

#: ``trailer_magic``: the last 8 bytes of a bitstream.
TRAILER_MAGIC = b"NNCINDEX"

#: Size of ``trailer()`` in bytes.
TRAILER_SIZE = 24

#: Unit payloads start at a file offset that is a multiple of this.
PAYLOAD_ALIGNMENT = 64

#: Size of the fixed prefix of ``unit()`` (start code .. unit_payload_crc32c).
UNIT_PREFIX_SIZE = 20

#: Size of the fixed prefix of ``network_header()`` (magic .. network_flags).
NETWORK_PREFIX_SIZE = 20

#: Size of a stored CRC32C (``u32le``).
CRC_SIZE = 4

#: ``layer_rank`` is at most this (section 5.2).
MAX_RANK = 8

#: Most UTF-8 bytes of an ``st`` string (its length is a u16le).
MAX_STRING_BYTES = 0xFFFF

#: Bit 7 of ``unit_type``: the unit is ancillary and a reader that does not know it skips it.
UNIT_ANCILLARY_BIT = 0x80


class UnitType(enum.IntEnum):
    """``unit_type`` values (bit 7 clear: critical; set: ancillary, skippable)."""

    LAYER = 0x01
    INDEX = 0x02
    #: ancillary, assigned in version 2.3: metadata learned after the layers (section 5.7)
    METADATA = 0x81


class LayerKind(enum.IntEnum):
    """``layer_kind``: what role a tensor plays. Informative; decoding does not depend on it."""

    WEIGHT = 0
    BIAS = 1
    NORM = 2
    EMBEDDING = 3
    OTHER = 4


class CodingMode(enum.IntEnum):
    """``coding_mode`` (table 5.6): how ``unit_payload`` represents the tensor. Each value has one
    module in ``codec.modes`` registered under the lower-case name."""

    RAW = 0
    ZSTD = 1
    ENTROPY = 2
    QUANTIZED = 3
    FLOATPLANES = 4
    TERNARY = 5
    SPARSE = 6
    DQ = 7
    PQ = 8
    DELTA = 9
    LOWRANK_SPARSE = 10


class ValueType(enum.IntEnum):
    """``value_type`` of a metadata value."""

    INT = 0
    FLOAT = 1
    BOOL = 2
    STR = 3
    BYTES = 4
    LIST = 5


class DType(enum.IntEnum):
    """``layer_dtype`` codes. 0 is invalid so that zeroed bytes are not a valid header."""

    FLOAT64 = 1
    FLOAT32 = 2
    FLOAT16 = 3
    BFLOAT16 = 4
    INT8 = 5
    INT16 = 6
    INT32 = 7
    INT64 = 8
    UINT8 = 9
    UINT16 = 10
    UINT32 = 11
    UINT64 = 12
    BOOL = 13
    # Assigned, but not decodable by this version: UnsupportedError.
    FLOAT8_E4M3 = 32
    FLOAT8_E5M2 = 33
    FLOAT4_E2M1 = 34


#: Little-endian numpy storage type of each supported dtype (bfloat16 is stored as its raw bits).
STORAGE_DTYPE: dict[DType, np.dtype] = {
    DType.FLOAT64: np.dtype("<f8"),
    DType.FLOAT32: np.dtype("<f4"),
    DType.FLOAT16: np.dtype("<f2"),
    DType.BFLOAT16: np.dtype("<u2"),
    DType.INT8: np.dtype("i1"),
    DType.INT16: np.dtype("<i2"),
    DType.INT32: np.dtype("<i4"),
    DType.INT64: np.dtype("<i8"),
    DType.UINT8: np.dtype("u1"),
    DType.UINT16: np.dtype("<u2"),
    DType.UINT32: np.dtype("<u4"),
    DType.UINT64: np.dtype("<u8"),
    DType.BOOL: np.dtype("u1"),
}

UNSUPPORTED_DTYPES = {DType.FLOAT8_E4M3: "float8_e4m3", DType.FLOAT8_E5M2: "float8_e5m2", DType.FLOAT4_E2M1: "float4_e2m1"}

DTYPE_NAMES: dict[DType, str] = {
    DType.FLOAT64: "float64",
    DType.FLOAT32: "float32",
    DType.FLOAT16: "float16",
    DType.BFLOAT16: "bfloat16",
    DType.INT8: "int8",
    DType.INT16: "int16",
    DType.INT32: "int32",
    DType.INT64: "int64",
    DType.UINT8: "uint8",
    DType.UINT16: "uint16",
    DType.UINT32: "uint32",
    DType.UINT64: "uint64",
    DType.BOOL: "bool",
    **UNSUPPORTED_DTYPES,
}
DTYPE_BY_NAME: dict[str, DType] = {name: code for code, name in DTYPE_NAMES.items()}


def coding_mode_name(value: int) -> str:
    """The name of a ``coding_mode`` value (``"unknown(N)"`` for a value table 5.6 does not assign)."""
    try:
        return CodingMode(value).name.lower()
    except ValueError:
        return f"unknown({value})"
