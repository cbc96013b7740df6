"""One read/write function pair per syntax table of spec/bitstream.md.

Field names are the spec's element names. Readers take a buffer that starts at the structure,
the absolute file offset of that start (for error positions), the :class:`~codec.limits.Limits`,
and optionally a ``trace`` list that collects every element (``codec-dump --fields``).

Integrity first: every structure with a checksum is checked *before* its variable part is parsed,
so corrupted length fields inside it never drive a parse.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, NamedTuple

from . import _backend
from .bitio import BitReader as PureBitReader
from .constants import (
    DTYPE_NAMES,
    MAGIC,
    NETWORK_PREFIX_SIZE,
    PAYLOAD_ALIGNMENT,
    TRAILER_MAGIC,
    TRAILER_SIZE,
    UNIT_ANCILLARY_BIT,
    UNIT_PREFIX_SIZE,
    UNIT_START_CODE,
    VERSION_MAJOR,
    VERSION_MINOR,
    LayerKind,
    UnitType,
    ValueType,
)
from .errors import ChecksumError, EncodeError, FormatError, LimitError, TruncatedError, UnsupportedError
from .limits import MAX_RANK, Limits

_log = logging.getLogger(__name__)

#: Bytes of ``index_entry()`` without its name.
INDEX_ENTRY_FIXED_SIZE = 18
#: Most UTF-8 bytes of a layer name or metadata key (``st`` has a u16le length).
MAX_NAME_BYTES = 0xFFFF


def _reader(buf, base_offset: int, trace):
    # The compiled reader cannot trace; the pure one is the reference and traces.
    if trace is not None:
        return PureBitReader(buf, base_offset=base_offset, trace=trace)
    return _backend.BitReader(buf, base_offset=base_offset)


def padding_size(offset: int) -> int:
    """Return the number of ``unit_padding`` bytes after a unit header ending at ``offset``."""
    return -offset % PAYLOAD_ALIGNMENT


def _check_crc(buf, start: int, end: int, stored: int, *, path: str, base_offset: int) -> None:
    actual = _backend.crc32c(buf[start:end])
    if actual != stored:
        raise ChecksumError(
            f"crc32c mismatch: stored 0x{stored:08x}, computed 0x{actual:08x}",
            path=path,
            bit_offset=(base_offset + end) * 8,
        )


def _slice(buf, size: int, *, path: str, base_offset: int):
    if len(buf) < size:
        raise TruncatedError(
            f"need {size} bytes, {len(buf)} left",
            path=path,
            bit_offset=base_offset * 8,
            bits_needed=size * 8,
            bits_available=len(buf) * 8,
        )
    return buf[:size]


# ---------------------------------------------------------------------------------------------
# metadata() and typed_value()
# ---------------------------------------------------------------------------------------------
class UnknownValue(bytes):
    """A metadata value whose ``value_type`` this reader does not know (kept as its raw bytes)."""

    value_type: int

    def __new__(cls, value_type: int, data: bytes):
        obj = super().__new__(cls, data)
        obj.value_type = value_type
        return obj


def _normalize_value(value, path: str, depth: int, limits: Limits):
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if not -(1 << 63) <= value < (1 << 63):
            raise EncodeError(f"metadata int {value} does not fit int64", path=path)
        return value
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        if depth >= limits.max_nesting:
            raise EncodeError(f"metadata lists nested deeper than max_nesting={limits.max_nesting}", path=path)
        return [_normalize_value(v, f"{path}[{i}]", depth + 1, limits) for i, v in enumerate(value)]
    raise EncodeError(
        f"metadata value of type {type(value).__name__} is not int, float, bool, str, bytes or list", path=path
    )


def normalize_metadata(metadata, limits: Limits | None = None) -> dict[str, Any]:
    """Return ``metadata`` as a dict of supported values; raise EncodeError for anything else."""
    limits = limits or Limits()
    if metadata is None:
        return {}
    try:
        items = list(metadata.items())
    except AttributeError:
        raise EncodeError(f"metadata must be a mapping, got {type(metadata).__name__}") from None
    out = {}
    for key, value in items:
        if not isinstance(key, str):
            raise EncodeError(f"metadata key {key!r} is not a str")
        _encode_str(key, f"metadata[{key!r}]")
        out[key] = _normalize_value(value, f"metadata[{key!r}]", 0, limits)
    return out


def _encode_str(text: str, path: str) -> bytes:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError("string is not valid unicode (lone surrogate)", path=path) from None
    if len(raw) > MAX_NAME_BYTES:
        raise EncodeError(f"string of {len(raw)} UTF-8 bytes exceeds {MAX_NAME_BYTES}", path=path)
    return raw


def write_typed_value(w, value) -> None:
    """Write ``typed_value()``: value_type u8, value_size u32le, value_data."""
    if isinstance(value, bool):
        w.u8(ValueType.BOOL)
        w.u32le(1)
        w.u8(int(value))
    elif isinstance(value, int):
        w.u8(ValueType.INT)
        w.u32le(8)
        w.i64le(value)
    elif isinstance(value, float):
        w.u8(ValueType.FLOAT)
        w.u32le(8)
        w.f64le(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        w.u8(ValueType.STR)
        w.u32le(len(raw))
        w.b(raw)
    elif isinstance(value, bytes):
        w.u8(ValueType.BYTES)
        w.u32le(len(value))
        w.b(value)
    elif isinstance(value, list):
        inner = _backend.BitWriter()
        inner.u32le(len(value))
        for item in value:
            write_typed_value(inner, item)
        data = inner.getvalue()
        w.u8(ValueType.LIST)
        w.u32le(len(data))
        w.b(data)
    else:  # normalize_metadata rules this out
        raise EncodeError(f"unsupported metadata value {value!r}")


def read_typed_value(r, name: str, depth: int, limits: Limits):
    """Read ``typed_value()``; unknown value types come back as :class:`UnknownValue`."""
    start = r.pos
    value_type = r.u8(f"{name}.value_type")
    value_size = r.u32le(f"{name}.value_size")
    if value_size * 8 > r.bits_left():
        raise r.error(f"value_size {value_size} exceeds the {r.bits_left() // 8} bytes left", f"{name}.value_size",
                      cls=TruncatedError)
    end = r.pos + value_size * 8
    if value_type == ValueType.INT:
        if value_size != 8:
            raise r.error(f"int value_size must be 8, got {value_size}", f"{name}.value_size", at=start)
        value = r.i64le(f"{name}.value_int")
    elif value_type == ValueType.FLOAT:
        if value_size != 8:
            raise r.error(f"float value_size must be 8, got {value_size}", f"{name}.value_size", at=start)
        value = r.f64le(f"{name}.value_float")
    elif value_type == ValueType.BOOL:
        if value_size != 1:
            raise r.error(f"bool value_size must be 1, got {value_size}", f"{name}.value_size", at=start)
        raw = r.u8(f"{name}.value_bool")
        if raw > 1:
            raise r.error(f"bool value must be 0 or 1, got {raw}", f"{name}.value_bool", at=r.pos - 8)
        value = bool(raw)
    elif value_type == ValueType.STR:
        raw = r.b(value_size, f"{name}.value_str")
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise r.error(f"invalid UTF-8 at string byte {exc.start}", f"{name}.value_str", at=end - value_size * 8) from None
    elif value_type == ValueType.BYTES:
        value = r.b(value_size, f"{name}.value_bytes")
    elif value_type == ValueType.LIST:
        if depth >= limits.max_nesting:
            raise r.error(f"metadata lists nested deeper than max_nesting={limits.max_nesting}", name, at=start,
                          cls=LimitError)
        count = r.u32le(f"{name}.list_count")
        # Each element takes at least 5 bytes (value_type and value_size).
        if count * 5 * 8 > end - r.pos:
            raise r.error(f"list_count {count} does not fit in value_size {value_size}", f"{name}.list_count",
                          at=r.pos - 32)
        value = [read_typed_value(r, f"{name}[{i}]", depth + 1, limits) for i in range(count)]
    else:
        # A newer minor version may add value types; value_size lets us step over them.
        _log.warning("%s: skipping metadata value of unknown value_type %d", r.where(name), value_type)
        value = UnknownValue(value_type, r.b(value_size, f"{name}.value_data"))
    if r.pos != end:
        raise r.error(f"value_size {value_size} does not match the value's {(r.pos - start) // 8 - 5} bytes",
                      f"{name}.value_size", at=start + 8)
    return value


def write_metadata(w, metadata: dict[str, Any]) -> None:
    """Write ``metadata()``: metadata_count u32le, then key and typed_value() per entry."""
    w.u32le(len(metadata))
    for key, value in metadata.items():
        w.st(key)
        write_typed_value(w, value)


def read_metadata(r, limits: Limits) -> dict[str, Any]:
    count = r.u32le("metadata_count")
    # Each entry takes at least 7 bytes (empty key: 2, value_type and value_size: 5).
    if count * 7 * 8 > r.bits_left():
        raise r.error(f"metadata_count {count} exceeds what {r.bits_left() // 8} bytes can hold", "metadata_count",
                      at=r.pos - 32, cls=TruncatedError)
    metadata: dict[str, Any] = {}
    for i in range(count):
        key_pos = r.pos
        key = r.st(f"metadata[{i}].metadata_key", max_bytes=limits.max_name_bytes)
        if key in metadata:
            raise r.error(f"duplicate metadata key {key!r}", f"metadata[{i}].metadata_key", at=key_pos)
        value = read_typed_value(r, f"metadata[{i}]", 0, limits)
        if not isinstance(value, UnknownValue):
            metadata[key] = value
    return metadata


# ---------------------------------------------------------------------------------------------
# qp_set(): reserved for the quantization parameter sets (length-prefixed so old readers skip it)
# ---------------------------------------------------------------------------------------------
def write_qp_set(w, data: bytes) -> None:
    w.u32le(len(data))
    w.b(data)


def read_qp_set(r, name: str) -> bytes:
    size = r.u32le(f"{name}.qp_set_size")
    return r.b(size, f"{name}.qp_set_data")


# ---------------------------------------------------------------------------------------------
# network_header()
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class NetworkHeader:
    """Decoded ``network_header()``."""

    version_major: int
    version_minor: int
    network_header_size: int
    layer_count: int
    network_flags: int
    global_qp_set: bytes
    metadata: dict[str, Any]


def write_network_header(*, layer_count: int, metadata: dict[str, Any], global_qp_set: bytes = b"",
                         network_flags: int = 0, version_minor: int = VERSION_MINOR) -> bytes:
    """Return the bytes of ``network_header()``; ``metadata`` must be normalized."""
    body = _backend.BitWriter()
    write_qp_set(body, global_qp_set)
    write_metadata(body, metadata)
    body = body.getvalue()
    size = NETWORK_PREFIX_SIZE + len(body) + 4
    w = _backend.BitWriter()
    w.b(MAGIC)
    w.u8(VERSION_MAJOR)
    w.u8(version_minor)
    w.u32le(size)
    w.u32le(layer_count)
    w.u16le(network_flags)
    w.b(body)
    data = w.getvalue()
    return data + _backend.crc32c(data).to_bytes(4, "little")


def network_header_size(prefix) -> int:
    """Return ``network_header_size`` from the first 20 bytes, after checking magic and version."""
    r = _backend.BitReader(_slice(prefix, NETWORK_PREFIX_SIZE, path="network_header", base_offset=0))
    r.path = "network_header"
    magic = r.b(8, "nnc_magic")
    if magic != MAGIC:
        raise FormatError(f"not a codec bitstream: magic {magic!r}", path="network_header.nnc_magic", bit_offset=0)
    major = r.u8("version_major")
    if major != VERSION_MAJOR:
        raise UnsupportedError(f"version {major}.x is not supported (this reader knows {VERSION_MAJOR}.x)",
                               path="network_header.version_major", bit_offset=64)
    r.u8("version_minor")
    size = r.u32le("network_header_size")
    if size < NETWORK_PREFIX_SIZE + 4 + 8:
        raise FormatError(f"network_header_size {size} is smaller than the smallest header",
                          path="network_header.network_header_size", bit_offset=80)
    return size


def read_network_header(buf, limits: Limits, *, trace=None) -> NetworkHeader:
    """Read ``network_header()`` from the start of ``buf`` (which holds at least the header)."""
    size = network_header_size(buf)
    limits.check("max_metadata_bytes", size, path="network_header.network_header_size", bit_offset=80)
    data = _slice(buf, size, path="network_header", base_offset=0)
    stored = int.from_bytes(data[size - 4 : size], "little")
    _check_crc(data, 0, size - 4, stored, path="network_header.network_header_crc32c", base_offset=0)
    r = _reader(data[: size - 4], 0, trace)
    r.path = "network_header"
    r.b(8, "nnc_magic")
    version_major = r.u8("version_major")
    version_minor = r.u8("version_minor")
    r.u32le("network_header_size")
    layer_count = r.u32le("layer_count")
    network_flags = r.u16le("network_flags")
    limits.check("max_layers", layer_count, path="network_header.layer_count", bit_offset=96)
    global_qp = read_qp_set(r, "global_qp_set")
    metadata = read_metadata(r, limits)
    _finish_structure(r, version_minor, "network_header")
    tail = _reader(data, 0, trace)
    tail.pos = (size - 4) * 8
    tail.path = "network_header"
    tail.u32le("network_header_crc32c")
    return NetworkHeader(version_major, version_minor, size, layer_count, network_flags, global_qp, metadata)


def _finish_structure(r, version_minor: int, name: str) -> None:
    # A newer minor version may append fields before the checksum; older readers step over them.
    left = r.bits_left()
    if left:
        if version_minor > VERSION_MINOR:
            r.pos += left
        else:
            raise r.error(f"{left // 8} unparsed bytes before the checksum", name)


# ---------------------------------------------------------------------------------------------
# unit() framing and layer_header()
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LayerHeader:
    """Decoded ``layer_header()`` plus where its unit and payload lie in the file."""

    layer_index: int
    layer_name: str
    layer_kind: int
    layer_shape: tuple[int, ...]
    layer_dtype: int
    coding_mode: int
    local_qp_set: bytes | None
    mode_params: bytes
    unit_offset: int
    unit_header_size: int
    payload_offset: int
    payload_size: int
    payload_crc32c: int

    @property
    def name(self) -> str:
        return self.layer_name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.layer_shape

    @property
    def num_elements(self) -> int:
        return math.prod(self.layer_shape)

    @property
    def kind_name(self) -> str:
        try:
            return LayerKind(self.layer_kind).name.lower()
        except ValueError:
            return "other"  # reserved kinds read as "other" (spec 5.3)

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES.get(self.layer_dtype, f"unknown({self.layer_dtype})")

    @property
    def mode_name(self) -> str:
        from .modes import mode_name

        return mode_name(self.coding_mode)

    @property
    def unit_size(self) -> int:
        return self.payload_offset + self.payload_size - self.unit_offset


@dataclasses.dataclass(frozen=True)
class UnitHeader:
    """The fixed ``unit()`` fields, with the parsed layer header for layer units."""

    unit_type: int
    unit_header_size: int
    unit_payload_size: int
    unit_payload_crc32c: int
    unit_offset: int
    payload_offset: int
    layer: LayerHeader | None = None


def write_unit_header(unit_type: int, body: bytes, payload_size: int, payload_crc32c: int) -> bytes:
    """Return ``unit()`` up to and including ``unit_header_crc32c`` (no padding)."""
    size = UNIT_PREFIX_SIZE + len(body) + 4
    w = _backend.BitWriter()
    w.b(UNIT_START_CODE)
    w.u8(unit_type)
    w.u32le(size)
    w.u64le(payload_size)
    w.u32le(payload_crc32c)
    w.b(body)
    data = w.getvalue()
    return data + _backend.crc32c(data).to_bytes(4, "little")


def write_layer_header(*, layer_index: int, layer_name: str, layer_kind: int, layer_shape, layer_dtype: int,
                       coding_mode: int, local_qp_set: bytes | None, mode_params: bytes) -> bytes:
    """Return the bytes of ``layer_header()`` (the body of a layer unit's header)."""
    if len(layer_shape) > MAX_RANK:
        raise EncodeError(f"rank {len(layer_shape)} exceeds {MAX_RANK}", path=f"layers[{layer_index}].shape")
    w = _backend.BitWriter()
    w.ue(0, layer_index)
    w.byte_alignment()
    _encode_str(layer_name, f"layers[{layer_index}].layer_name")
    w.st(layer_name)
    w.u(4, layer_kind)
    w.u(4, len(layer_shape))
    for dim in layer_shape:
        w.ue(0, dim)
    w.u(8, layer_dtype)
    w.u(8, coding_mode)
    w.u(1, 0 if local_qp_set is None else 1)
    w.byte_alignment()
    if local_qp_set is not None:
        write_qp_set(w, local_qp_set)
    w.u32le(len(mode_params))
    w.b(mode_params)
    return w.getvalue()


def read_unit_header(buf, unit_offset: int, limits: Limits, *, version_minor: int = VERSION_MINOR,
                     layer_position: int | None = None, trace=None) -> UnitHeader:
    """Read ``unit()`` up to the payload from ``buf`` (starting at file offset ``unit_offset``).

    Checks the start code, the header size against the limits, the header checksum, and that the
    padding is zero. ``layer_position`` is the expected ``layer_index`` (the count of layer units
    before this one) and names the unit in errors.
    """
    path = "unit" if layer_position is None else f"layers[{layer_position}]"
    prefix = _slice(buf, UNIT_PREFIX_SIZE, path=path, base_offset=unit_offset)
    r = _reader(prefix, unit_offset, trace)
    r.path = path
    start_code = r.b(3, "unit_start_code")
    if start_code != UNIT_START_CODE:
        raise FormatError(f"bad unit_start_code {start_code!r}", path=f"{path}.unit_start_code",
                          bit_offset=unit_offset * 8)
    unit_type = r.u8("unit_type")
    header_size = r.u32le("unit_header_size")
    payload_size = r.u64le("unit_payload_size")
    payload_crc = r.u32le("unit_payload_crc32c")
    if header_size < UNIT_PREFIX_SIZE + 4:
        raise FormatError(f"unit_header_size {header_size} is smaller than {UNIT_PREFIX_SIZE + 4}",
                          path=f"{path}.unit_header_size", bit_offset=(unit_offset + 4) * 8)
    limits.check("max_header_bytes", header_size, path=f"{path}.unit_header_size", bit_offset=(unit_offset + 4) * 8)
    header = _slice(buf, header_size, path=path, base_offset=unit_offset)
    stored = int.from_bytes(header[header_size - 4 : header_size], "little")
    _check_crc(header, 0, header_size - 4, stored, path=f"{path}.unit_header_crc32c", base_offset=unit_offset)
    pad = padding_size(unit_offset + header_size)
    payload_offset = unit_offset + header_size + pad
    layer = None
    body = _reader(header[: header_size - 4], unit_offset, trace)
    body.pos = UNIT_PREFIX_SIZE * 8
    body.path = path
    if unit_type == UnitType.LAYER:
        layer = _read_layer_header(body, limits, layer_position, version_minor)
        layer = dataclasses.replace(layer, unit_offset=unit_offset, unit_header_size=header_size,
                                    payload_offset=payload_offset, payload_size=payload_size,
                                    payload_crc32c=payload_crc)
        _finish_structure(body, version_minor, "layer_header")
    elif unit_type == UnitType.INDEX:
        _finish_structure(body, version_minor, "index_header")
    elif unit_type & UNIT_ANCILLARY_BIT:
        body.pos += body.bits_left()  # unknown ancillary unit: skipped by the caller
    else:
        raise UnsupportedError(f"unknown critical unit_type 0x{unit_type:02x}", path=f"{path}.unit_type",
                               bit_offset=(unit_offset + 3) * 8)
    tail = _reader(header, unit_offset, trace)
    tail.pos = (header_size - 4) * 8
    tail.path = path
    tail.u32le("unit_header_crc32c")
    padding = _slice(buf[header_size:], pad, path=f"{path}.unit_padding", base_offset=unit_offset + header_size)
    if any(padding):
        raise FormatError("unit_padding bytes are not zero", path=f"{path}.unit_padding",
                          bit_offset=(unit_offset + header_size) * 8)
    if trace is not None and pad:
        from .bitio import Field

        trace.append(Field(f"{path}.unit_padding", (unit_offset + header_size) * 8, pad * 8, f"b({pad})", bytes(pad)))
    return UnitHeader(unit_type, header_size, payload_size, payload_crc, unit_offset, payload_offset, layer)


def _read_layer_header(r, limits: Limits, layer_position, version_minor) -> LayerHeader:
    start = r.pos
    layer_index = r.ue(0, "layer_index")
    if layer_position is not None and layer_index != layer_position:
        raise r.error(f"layer_index {layer_index} does not match the unit's position {layer_position}",
                      "layer_index", at=start)
    r.byte_alignment()
    layer_name = r.st("layer_name", max_bytes=limits.max_name_bytes)
    layer_kind = r.u(4, "layer_kind")
    rank_pos = r.pos
    layer_rank = r.u(4, "layer_rank")
    if layer_rank > MAX_RANK:
        raise r.error(f"rank {layer_rank} exceeds {MAX_RANK}", "shape", at=rank_pos)
    if layer_rank > limits.max_rank:
        raise r.error(f"rank {layer_rank} exceeds max_rank={limits.max_rank}", "shape", at=rank_pos, cls=LimitError)
    shape = []
    for i in range(layer_rank):
        shape.append(r.ue(0, f"layer_dim[{i}]"))
    elements = math.prod(shape)
    if elements > limits.max_elements_per_layer:
        raise r.error(f"{elements} elements exceed max_elements_per_layer={limits.max_elements_per_layer}",
                      "shape", at=rank_pos, cls=LimitError)
    dtype_pos = r.pos
    layer_dtype = r.u(8, "layer_dtype")
    if layer_dtype not in DTYPE_NAMES:
        raise r.error(f"unknown dtype code {layer_dtype}", "layer_dtype", at=dtype_pos)
    coding_mode = r.u(8, "coding_mode")
    local_qp_present_flag = r.u(1, "local_qp_present_flag")
    r.byte_alignment()
    local_qp = read_qp_set(r, "local_qp_set") if local_qp_present_flag else None
    mode_params_size = r.u32le("mode_params_size")
    mode_params = r.b(mode_params_size, "mode_params")
    return LayerHeader(layer_index, layer_name, layer_kind, tuple(shape), layer_dtype, coding_mode, local_qp,
                       mode_params, 0, 0, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# index_payload() and trailer()
# ---------------------------------------------------------------------------------------------
class IndexEntry(NamedTuple):
    """One ``index_entry``: a layer's name and where its unit lies."""

    name: str
    unit_offset: int
    unit_size: int


def write_index_payload(entries: list[IndexEntry]) -> bytes:
    w = _backend.BitWriter()
    w.u32le(len(entries))
    for e in entries:
        w.u64le(e.unit_offset)
        w.u64le(e.unit_size)
        w.st(e.name)
    return w.getvalue()


def read_index_payload(buf, base_offset: int, limits: Limits, *, layer_count: int, first_unit_offset: int,
                       index_unit_offset: int, trace=None) -> list[IndexEntry]:
    """Read ``index_payload()`` and check it describes non-overlapping units in file order."""
    if trace is None and _backend.read_index_entries is not None and len(buf) >= 4:
        count = int.from_bytes(buf[:4], "little")
        if count == layer_count:
            entries = _backend.read_index_entries(buf, count, limits.max_name_bytes, first_unit_offset,
                                                     index_unit_offset, IndexEntry)
            if entries is not None:
                return entries
        # anything wrong: the reference below raises the precise error
    r = _reader(buf, base_offset, trace)
    r.path = "index"
    count = r.u32le("index_entry_count")
    if count != layer_count:
        raise r.error(f"index_entry_count {count} does not match layer_count {layer_count}", "index_entry_count",
                      at=0)
    if count * INDEX_ENTRY_FIXED_SIZE * 8 > r.bits_left():
        raise r.error(f"{count} entries do not fit in {r.bits_left() // 8} bytes", "index_entry_count", at=0,
                      cls=TruncatedError)
    entries = []
    names = set()
    next_offset = first_unit_offset
    max_name = limits.max_name_bytes
    for i in range(count):
        at = r.pos
        r.path = f"index.entry[{i}]"
        offset = r.u64le("entry_unit_offset")
        size = r.u64le("entry_unit_size")
        name = r.st("entry_name", max_bytes=max_name)
        if offset < next_offset or offset + size > index_unit_offset or size < UNIT_PREFIX_SIZE + 4:
            raise r.error(f"unit at {offset} of {size} bytes is out of order or outside the layer area", at=at)
        if name in names:
            raise r.error(f"duplicate layer name {name!r}", "entry_name", at=at + 128)
        names.add(name)
        next_offset = offset + size
        entries.append(IndexEntry(name, offset, size))
    r.path = "index"
    if r.bits_left():
        raise r.error(f"{r.bits_left() // 8} bytes after the last index entry", "index")
    return entries


def write_trailer(index_unit_offset: int, layer_count: int) -> bytes:
    w = _backend.BitWriter()
    w.u64le(index_unit_offset)
    w.u32le(layer_count)
    data = w.getvalue()
    return data + _backend.crc32c(data).to_bytes(4, "little") + TRAILER_MAGIC


def read_trailer(buf, base_offset: int, *, trace=None) -> tuple[int, int]:
    """Read ``trailer()`` from the last 24 bytes; return (index_unit_offset, trailer_layer_count)."""
    data = _slice(buf, TRAILER_SIZE, path="trailer", base_offset=base_offset)
    if bytes(data[16:24]) != TRAILER_MAGIC:
        raise FormatError(f"bad trailer_magic {bytes(data[16:24])!r} (file truncated or not a codec bitstream)",
                          path="trailer.trailer_magic", bit_offset=(base_offset + 16) * 8)
    stored = int.from_bytes(data[12:16], "little")
    _check_crc(data, 0, 12, stored, path="trailer.trailer_crc32c", base_offset=base_offset)
    r = _reader(data, base_offset, trace)
    r.path = "trailer"
    index_unit_offset = r.u64le("index_unit_offset")
    layer_count = r.u32le("trailer_layer_count")
    r.u32le("trailer_crc32c")
    r.b(8, "trailer_magic")
    return index_unit_offset, layer_count


__all__ = [
    "NetworkHeader",
    "LayerHeader",
    "UnitHeader",
    "IndexEntry",
    "UnknownValue",
    "normalize_metadata",
    "padding_size",
    "write_network_header",
    "read_network_header",
    "network_header_size",
    "write_unit_header",
    "write_layer_header",
    "read_unit_header",
    "write_metadata",
    "read_metadata",
    "write_typed_value",
    "read_typed_value",
    "write_qp_set",
    "read_qp_set",
    "write_index_payload",
    "read_index_payload",
    "write_trailer",
    "read_trailer",
]
