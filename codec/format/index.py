"""``index_payload()`` and ``trailer()`` (spec section 9)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _backend
from ..errors import FormatError, TruncatedError
from ..kernels import index as index_reference
from ..kernels import raise_status
from ..kernels import Field
from ._io import check_crc, take
from .constants import CRC_SIZE, INDEX_ENTRY_FIXED_SIZE, TRAILER_MAGIC, TRAILER_SIZE
from .limits import Limits

__all__ = ["IndexEntry", "Index", "write_index_payload", "read_index_payload", "read_index", "write_trailer",
           "read_trailer"]


class IndexEntry(NamedTuple):
    """One index entry: a layer's name and where its unit lies."""

    name: str
    unit_offset: int
    unit_size: int


class Index(NamedTuple):
    """An index read and checked: each entry's (unit_offset, unit_size) in file order (a count x 2 uint64
    array), the entries' positions by name, and the spans between the first unit and the index that no entry
    covers (position of the next entry, start, end), which may hold only ancillary units (section 5.1)."""

    spans: np.ndarray
    by_name: dict[str, int]
    gaps: list[tuple[int, int, int]]

    def entry(self, name: str, position: int) -> IndexEntry:
        return IndexEntry(name, int(self.spans[position, 0]), int(self.spans[position, 1]))

    @property
    def entries(self) -> list[IndexEntry]:
        return [self.entry(name, i) for name, i in self.by_name.items()]


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
    return read_index(buf, base_offset, limits, layer_count=layer_count, first_unit_offset=first_unit_offset,
                      index_unit_offset=index_unit_offset, trace=trace).entries


def read_index(buf, base_offset: int, limits: Limits, *, layer_count: int, first_unit_offset: int,
               index_unit_offset: int, trace=None) -> Index:
    """Read ``index_payload()`` as :func:`read_index_payload`, with the lookups a reader needs."""
    r = _backend.bit_reader(buf, base_offset, "index", trace)
    count = r.u32le("index_entry_count")
    if count != layer_count:
        raise r.error(f"index_entry_count {count} does not match layer_count {layer_count}", "index_entry_count",
                      at=0)
    if count * INDEX_ENTRY_FIXED_SIZE * 8 > r.bits_left():
        raise r.error(f"{count} entries do not fit in {r.bits_left() // 8} bytes", "index_entry_count", at=0,
                      cls=TruncatedError)
    status, at, value = _backend.index.read_index_entries(buf, count, limits.max_name_bytes, first_unit_offset,
                                                          index_unit_offset, IndexEntry)
    if status:
        # the reasons name what the kernel points at: the name's length field
        length = int.from_bytes(bytes(buf[at:at + 2]), "little") if at + 2 <= len(buf) else 0
        name = bytes(buf[at + 2:at + 2 + length]).decode("utf-8", "replace")
        raise_status(index_reference.ERRORS, status, at, value, path="index", base_offset=base_offset,
                     length=length, limit=limits.max_name_bytes, name=repr(name))
    if trace is not None:
        index = Index(*value)
        _trace_entries(trace, index.entries, base_offset)
        return index
    return Index(*value)


def _trace_entries(trace: list, entries: list[IndexEntry], base_offset: int) -> None:
    bit = (base_offset + 4) * 8
    for i, e in enumerate(entries):
        path = f"index.entry[{i}]"
        name_bits = 16 + 8 * len(e.name.encode("utf-8"))
        trace.append(Field(f"{path}.entry_unit_offset", bit, 64, "u64le", e.unit_offset))
        trace.append(Field(f"{path}.entry_unit_size", bit + 64, 64, "u64le", e.unit_size))
        trace.append(Field(f"{path}.entry_name", bit + 128, name_bits, "st", e.name))
        bit += 128 + name_bits


def write_trailer(index_unit_offset: int, layer_count: int) -> bytes:
    w = _backend.BitWriter()
    w.u64le(index_unit_offset)
    w.u32le(layer_count)
    data = w.getvalue()
    return data + _backend.crc32c(data).to_bytes(CRC_SIZE, "little") + TRAILER_MAGIC


def read_trailer(buf, base_offset: int, *, trace=None) -> tuple[int, int]:
    """Read ``trailer()`` from the last 24 bytes; return (index_unit_offset, trailer_layer_count)."""
    data = take(buf, TRAILER_SIZE, path="trailer", base_offset=base_offset)
    if bytes(data[16:24]) != TRAILER_MAGIC:
        raise FormatError(f"bad trailer_magic {bytes(data[16:24])!r} (file truncated or not a codec bitstream)",
                          path="trailer.trailer_magic", bit_offset=(base_offset + 16) * 8)
    stored = int.from_bytes(data[12:16], "little")
    check_crc(data, 0, 12, stored, path="trailer.trailer_crc32c", base_offset=base_offset)
    r = _backend.bit_reader(data, base_offset, "trailer", trace)
    index_unit_offset = r.u64le("index_unit_offset")
    layer_count = r.u32le("trailer_layer_count")
    r.u32le("trailer_crc32c")
    r.b(8, "trailer_magic")
    return index_unit_offset, layer_count
