"""``unit()`` framing and ``layer_header()`` (spec section 5).

Integrity first: a unit header's checksum is checked *before* its variable part is parsed, so a
corrupted length field inside it never drives a parse.
"""

from __future__ import annotations

import dataclasses
import math
import struct

from .. import _backend
from ..errors import EncodeError, FormatError, LimitError, UnsupportedError
from ..kernels import Field
from ._io import check_crc, finish_structure, take
from .constants import (
    CRC_SIZE,
    DTYPE_NAMES,
    MAX_RANK,
    MIN_UNIT_SIZE,
    PAYLOAD_ALIGNMENT,
    UNIT_ANCILLARY_BIT,
    UNIT_PREFIX_SIZE,
    UNIT_START_CODE,
    VERSION_MAJOR,
    VERSION_MINOR,
    levels_version,
    CodingMode,
    DType,
    LayerKind,
    UnitType,
    coding_mode_name,
)
from .limits import Limits
from .metadata import encode_str
from .network import read_qp_set, write_qp_set

__all__ = ["LayerHeader", "UnitHeader", "padding_size", "layer_coding_mode", "write_unit_header", "write_layer_header",
           "read_unit_header", "MIN_UNIT_HEADER_SIZE"]

#: Smallest ``unit_header_size``: the fixed fields and ``unit_header_crc32c`` (and so the smallest unit).
MIN_UNIT_HEADER_SIZE = MIN_UNIT_SIZE


def padding_size(offset: int, *, version: tuple[int, int] = (1, 1), unit_type: int = UnitType.LAYER,
                 coding_mode: int = CodingMode.RAW) -> int:
    """Return the number of ``unit_padding`` bytes after a unit header ending at ``offset`` (section
    5): up to a multiple of 64, so that a raw payload can be used in place; none in a 2.x file for a
    layer unit whose coding_mode is 2 or more (entropy-coded payloads gain nothing from alignment),
    nor for a metadata unit (2.3 and later)."""
    if version[0] >= 2 and unit_type == UnitType.LAYER and coding_mode >= UNPADDED_MODES_FROM:
        return 0
    if is_metadata_unit(unit_type, version):
        return 0
    return -offset % PAYLOAD_ALIGNMENT


#: The first version whose unit_type 0x81 is the metadata unit (section 5.7); before, it is an
#: unknown ancillary unit.
METADATA_UNIT_VERSION = (2, 3)


def is_metadata_unit(unit_type: int, version: tuple[int, int]) -> bool:
    return unit_type == UnitType.METADATA and tuple(version) >= METADATA_UNIT_VERSION


#: In a 2.x file, layer units of these coding modes (2 and up) have no unit_padding.
UNPADDED_MODES_FROM = 2


def layer_coding_mode(body, limits: Limits) -> int:
    """The coding_mode of a ``layer_header()`` (``body``: its bytes after the unit prefix), parsed
    without checking the header's checksum: a sequential reader needs it to know the padding
    before it reads the unit (and then checks everything). Raises CodecError."""
    return read_layer_header(_backend.bit_reader(body, 0, "layer_header"), limits, None).coding_mode


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
    #: file offsets of the qp_set_data of local_qp_set and of mode_params (error positions, traces)
    local_qp_set_offset: int = 0
    mode_params_offset: int = 0
    #: syntax paths of mode_params, local_qp_set and the payload, when they are not the layer unit's
    #: (the kept values of a sparse layer are a layer nested in its payload)
    paths: tuple[str, str, str] | None = None
    #: the ``levels_payload()`` syntax of the file (1: spec 7.2 in version 1.x files; 2: spec 7.4)
    levels_version: int = 3

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
    def path(self) -> str:
        """The syntax path of this layer in error messages: ``layers[i]``."""
        return f"layers[{self.layer_index}]"

    @property
    def params_path(self) -> str:
        return self.paths[0] if self.paths else f"{self.path}.mode_params"

    @property
    def qp_path(self) -> str:
        return self.paths[1] if self.paths else f"{self.path}.local_qp_set"

    @property
    def payload_path(self) -> str:
        return self.paths[2] if self.paths else f"{self.path}.unit_payload"

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
        return coding_mode_name(self.coding_mode)

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
    size = UNIT_PREFIX_SIZE + len(body) + CRC_SIZE
    w = _backend.BitWriter()
    w.b(UNIT_START_CODE)
    w.u8(unit_type)
    w.u32le(size)
    w.u64le(payload_size)
    w.u32le(payload_crc32c)
    w.b(body)
    data = w.getvalue()
    return data + _backend.crc32c(data).to_bytes(CRC_SIZE, "little")


def write_layer_header(*, layer_index: int, layer_name: str, layer_kind: int, layer_shape, layer_dtype: int,
                       coding_mode: int, local_qp_set: bytes | None, mode_params: bytes) -> bytes:
    """Return the bytes of ``layer_header()`` (the body of a layer unit's header)."""
    if len(layer_shape) > MAX_RANK:
        raise EncodeError(f"rank {len(layer_shape)} exceeds {MAX_RANK}", path=f"layers[{layer_index}].layer_rank")
    w = _backend.BitWriter()
    w.ue(0, layer_index)
    w.byte_alignment()
    encode_str(layer_name, f"layers[{layer_index}].layer_name")
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


#: unit_type, unit_header_size, unit_payload_size and unit_payload_crc32c, after the start code
_UNIT_PREFIX_TAIL = struct.Struct("<BIQI")


def read_unit_header(buf, unit_offset: int, limits: Limits, *, version: tuple[int, int] = (VERSION_MAJOR, VERSION_MINOR),
                     layer_position: int | None = None, trace=None) -> UnitHeader:
    """Read ``unit()`` up to the payload from ``buf`` (starting at file offset ``unit_offset``).

    Checks the start code, the header size against the limits, the header checksum, and that the
    padding is zero. ``layer_position`` is the expected ``layer_index`` (the count of layer units
    before this one) and names the unit in errors.
    """
    path = "unit" if layer_position is None else f"layers[{layer_position}]"
    prefix = take(buf, UNIT_PREFIX_SIZE, path=path, base_offset=unit_offset)
    if trace is None:  # the fixed-size fields in one unpack (a small layer's fixed cost)
        start_code = bytes(prefix[:3])
        unit_type, header_size, payload_size, payload_crc = _UNIT_PREFIX_TAIL.unpack_from(prefix, 3)
    else:
        r = _backend.bit_reader(prefix, unit_offset, path, trace)
        start_code = r.b(3, "unit_start_code")
    if start_code != UNIT_START_CODE:
        raise FormatError(f"bad unit_start_code {start_code!r}", path=f"{path}.unit_start_code",
                          bit_offset=unit_offset * 8)
    if trace is not None:
        unit_type = r.u8("unit_type", enum=UnitType)
        header_size = r.u32le("unit_header_size")
        payload_size = r.u64le("unit_payload_size")
        payload_crc = r.u32le("unit_payload_crc32c")
    if header_size < MIN_UNIT_HEADER_SIZE:
        raise FormatError(f"unit_header_size {header_size} is smaller than {MIN_UNIT_HEADER_SIZE}",
                          path=f"{path}.unit_header_size", bit_offset=(unit_offset + 4) * 8)
    limits.check("max_header_bytes", header_size, path=f"{path}.unit_header_size", bit_offset=(unit_offset + 4) * 8)
    header = take(buf, header_size, path=path, base_offset=unit_offset)
    stored = int.from_bytes(header[header_size - CRC_SIZE : header_size], "little")
    check_crc(header, 0, header_size - CRC_SIZE, stored, path=f"{path}.unit_header_crc32c", base_offset=unit_offset)
    layer = None
    body = _backend.bit_reader(header[: header_size - CRC_SIZE], unit_offset, path, trace)
    body.pos = UNIT_PREFIX_SIZE * 8
    pad = 0
    if unit_type == UnitType.LAYER:
        fields = _read_layer_fields(body, limits, layer_position)
        pad = padding_size(unit_offset + header_size, version=version, coding_mode=fields[5])
        payload_offset = unit_offset + header_size + pad
        # built once with where it lies (dataclasses.replace is a small layer's measurable cost)
        layer = LayerHeader(*fields[:8], unit_offset, header_size, payload_offset, payload_size, payload_crc,
                            *fields[8:], levels_version=levels_version(*version))
        finish_structure(body, version, "layer_header")
    elif unit_type == UnitType.INDEX:
        pad = padding_size(unit_offset + header_size, version=version, unit_type=UnitType.INDEX)
        finish_structure(body, version, "index_header")
    elif is_metadata_unit(unit_type, version):
        finish_structure(body, version, "metadata_unit_header")  # unit_header_data is empty (section 5.7)
        pad = 0
    elif unit_type & UNIT_ANCILLARY_BIT:
        pad = padding_size(unit_offset + header_size, version=version, unit_type=UnitType.INDEX)
        body.view(body.bits_left() // 8, "unit_header_data")  # an unknown ancillary unit: skipped
    else:
        raise UnsupportedError(f"unknown critical unit_type 0x{unit_type:02x}", path=f"{path}.unit_type",
                               bit_offset=(unit_offset + 3) * 8)
    if trace is not None:  # the checksum, checked above, as a traced field
        tail = _backend.bit_reader(header, unit_offset, path, trace)
        tail.pos = (header_size - CRC_SIZE) * 8
        tail.u32le("unit_header_crc32c")
    if pad:
        padding = take(buf[header_size:], pad, path=f"{path}.unit_padding", base_offset=unit_offset + header_size)
        if any(padding):
            raise FormatError("unit_padding bytes are not zero", path=f"{path}.unit_padding",
                              bit_offset=(unit_offset + header_size) * 8)
    if trace is not None and pad:
        trace.append(Field(f"{path}.unit_padding", (unit_offset + header_size) * 8, pad * 8, f"b({pad})", bytes(pad)))
    return UnitHeader(unit_type, header_size, payload_size, payload_crc, unit_offset, unit_offset + header_size + pad,
                      layer)


def read_layer_header(r, limits: Limits, layer_position) -> LayerHeader:
    """Read ``layer_header()`` (section 5.2); the caller fills in where the unit lies."""
    fields = _read_layer_fields(r, limits, layer_position)
    return LayerHeader(*fields[:8], 0, 0, 0, 0, 0, *fields[8:])


def _read_layer_fields(r, limits: Limits, layer_position) -> tuple:
    """The fields of ``layer_header()`` in LayerHeader's order, without the unit's placement:
    layer_index .. mode_params, then local_qp_set_offset and mode_params_offset."""
    start = r.pos
    layer_index = r.ue(0, "layer_index")
    if layer_position is not None and layer_index != layer_position:
        raise r.error(f"layer_index {layer_index} does not match the unit's position {layer_position}",
                      "layer_index", at=start)
    r.byte_alignment()
    layer_name = r.st("layer_name", max_bytes=limits.max_name_bytes)
    layer_kind = r.u(4, "layer_kind", enum=LayerKind)
    rank_pos = r.pos
    layer_rank = r.u(4, "layer_rank")
    if layer_rank > MAX_RANK:
        raise r.error(f"rank {layer_rank} exceeds {MAX_RANK}", "layer_rank", at=rank_pos)
    if layer_rank > limits.max_rank:
        raise r.error(f"rank {layer_rank} exceeds max_rank={limits.max_rank}", "layer_rank", at=rank_pos,
                      cls=LimitError)
    shape = []
    for i in range(layer_rank):
        at = r.pos
        dim = r.ue(0, f"layer_dim[{i}]")
        if dim > limits.max_elements_per_layer:  # an empty tensor's other dimensions too
            raise r.error(f"{dim} exceeds max_elements_per_layer={limits.max_elements_per_layer}", f"layer_dim[{i}]",
                          at=at, cls=LimitError)
        shape.append(dim)
    elements = math.prod(shape)
    if elements > limits.max_elements_per_layer:
        raise r.error(f"{elements} elements exceed max_elements_per_layer={limits.max_elements_per_layer}",
                      "layer_dim", at=rank_pos, cls=LimitError)
    dtype_pos = r.pos
    layer_dtype = r.u(8, "layer_dtype", enum=DType)
    if layer_dtype not in DTYPE_NAMES:
        raise r.error(f"unknown dtype code {layer_dtype}", "layer_dtype", at=dtype_pos)
    coding_mode = r.u(8, "coding_mode", enum=CodingMode)
    local_qp_present_flag = r.u(1, "local_qp_present_flag")
    r.byte_alignment()
    local_qp_offset = r.base_offset + r.pos // 8 + 4
    local_qp = read_qp_set(r, "local_qp_set") if local_qp_present_flag else None
    mode_params_size = r.u32le("mode_params_size")
    mode_params_offset = r.base_offset + r.pos // 8
    mode_params = r.b(mode_params_size, "mode_params")
    return (layer_index, layer_name, layer_kind, tuple(shape), layer_dtype, coding_mode, local_qp, mode_params,
            local_qp_offset, mode_params_offset)
