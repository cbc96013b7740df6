"""Build bitstreams field by field, with valid checksums, to test what readers reject."""

from __future__ import annotations

import numpy as np

from codec import _backend
from codec.errors import CodecError
from codec.format.constants import UnitType
from codec.format import (
    IndexEntry,
    Limits,
    layer_coding_mode,
    padding_size,
    write_index_payload,
    write_network_header,
    write_trailer,
    write_unit_header,
)

ALL_DTYPES = ["float64", "float32", "float16", "int8", "int16", "int32", "int64",
              "uint8", "uint16", "uint32", "uint64", "bool"]


def layer_body(*, index=0, name="w", kind=0, shape=(2,), dtype=2, mode=0, qp=None, mode_params=b"",
               rank=None) -> bytes:
    """A layer_header() body with any field values (no validation)."""
    w = _backend.BitWriter()
    w.ue(0, index)
    w.byte_alignment()
    w.st(name)
    w.u(4, kind)
    w.u(4, len(shape) if rank is None else rank)
    for d in shape:
        w.ue(0, d)
    w.u(8, dtype)
    w.u(8, mode)
    w.u(1, qp is not None)
    w.byte_alignment()
    if qp is not None:
        w.u32le(len(qp))
        w.b(qp)
    w.u32le(len(mode_params))
    w.b(mode_params)
    return w.getvalue()


def unit_padding(offset: int, version, unit_type: int, body: bytes) -> int:
    """The unit_padding of a unit whose header ends at ``offset`` (section 5: by version and, for a
    layer unit of a 2.x file, by its coding_mode; a body that does not parse counts as mode 0)."""
    mode = 0
    if unit_type == UnitType.LAYER and version[0] >= 2:
        try:
            mode = layer_coding_mode(body, Limits())
        except CodecError:
            mode = 0
    return padding_size(offset, version=tuple(version), unit_type=unit_type, coding_mode=mode)


def assemble(units, *, metadata=None, layer_count=None, header=None, version=None) -> bytes:
    """Concatenate a network header, units [(unit_type, body, payload)], an index and a trailer.

    Layer units are indexed under the name parsed from nothing: the caller passes names via
    (unit_type, body, payload, name) tuples when it matters.
    """
    layers = [u for u in units if u[0] == UnitType.LAYER]
    count = len(layers) if layer_count is None else layer_count
    extra = {} if version is None else {"version": version}
    out = bytearray(header if header is not None else write_network_header(layer_count=count, metadata=metadata or {},
                                                                           **extra))
    file_version = (out[8], out[9])
    entries = []
    for unit in units:
        unit_type, body, payload = unit[:3]
        name = unit[3] if len(unit) > 3 else "w"
        offset = len(out)
        head = write_unit_header(unit_type, body, len(payload), _backend.crc32c(payload))
        out += head + bytes(unit_padding(offset + len(head), file_version, unit_type, body)) + payload
        if unit_type == UnitType.LAYER:
            entries.append(IndexEntry(name, offset, len(out) - offset))
    index_offset = len(out)
    index = write_index_payload(entries)
    head = write_unit_header(UnitType.INDEX, b"", len(index), _backend.crc32c(index))
    out += head + bytes(padding_size(index_offset + len(head))) + index
    out += write_trailer(index_offset, count)
    return bytes(out)


def raw_layer(array: np.ndarray, *, index=0, name="w", **fields):
    from codec.dtypes import dtype_code_of

    payload = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    body = layer_body(index=index, name=name, shape=array.shape, dtype=int(dtype_code_of(array)), **fields)
    return (UnitType.LAYER, body, payload, name)
