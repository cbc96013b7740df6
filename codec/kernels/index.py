"""The entry loop of ``index_payload()`` (spec section 9) in pure Python: the reference for
``codec._fast.index``.

``read_index_entries`` reads the ``count`` entries that follow ``index_entry_count`` and returns
``(status, at, value)`` (see :mod:`codec.kernels`); on success ``value`` is ``(spans, by_name, gaps)``:
a count x 2 uint64 array of each entry's (unit_offset, unit_size), a dict name -> position, and the spans
no entry covers between the first unit and the index, as ``(position of the next entry, start, end)``; on
an error ``value`` is the entry's number. No object per entry: a reader opening a file of thousands of
layers makes entries only for the layers it reads.
Checks per entry, in order: the fixed fields are there; the name's length against the limit; the
name's bytes are there; UTF-8; the unit lies after the previous one and before the index; the name
is new. Then: no bytes after the last entry.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError, LimitError, TruncatedError

__all__ = ["INDEX_ENTRY_FIXED_SIZE", "MIN_UNIT_SIZE", "ERRORS", "read_index_entries"]

#: Bytes of an entry without its name: entry_unit_offset u64le, entry_unit_size u64le, name length u16le.
INDEX_ENTRY_FIXED_SIZE = 18
#: Smallest unit: the fixed unit() fields and unit_header_crc32c.
MIN_UNIT_SIZE = 24

IX_ERR_TRUNCATED = -1
IX_ERR_NAME_LIMIT = -2
IX_ERR_NAME_UTF8 = -3
IX_ERR_ORDER = -4
IX_ERR_DUPLICATE = -5
IX_ERR_TRAILING = -6

#: status -> (error class, element, reason); elements are relative to the index payload.
ERRORS = {
    IX_ERR_TRUNCATED: (TruncatedError, "entry[{}]", "the entry runs past the index payload"),
    IX_ERR_NAME_LIMIT: (LimitError, "entry[{}].entry_name", "a name of {length} bytes exceeds max_name_bytes={limit}"),
    IX_ERR_NAME_UTF8: (FormatError, "entry[{}].entry_name", "the name is not valid UTF-8"),
    IX_ERR_ORDER: (FormatError, "entry[{}].entry_unit_offset",
                   "the unit is out of order, overlaps the previous one or lies outside the layer area"),
    IX_ERR_DUPLICATE: (FormatError, "entry[{}].entry_name", "duplicate layer name {name}"),
    IX_ERR_TRAILING: (FormatError, "", "bytes after the last index entry"),
}


def read_index_entries(buf, count: int, max_name: int, first_unit_offset: int, index_unit_offset: int, entry_type):
    """Entries ``entry_type(name, unit_offset, unit_size)`` from byte 4 of ``buf``: (status, at, value)."""
    data = memoryview(buf).cast("B")
    n = len(data)
    pos = 4
    next_offset = first_unit_offset
    spans = np.empty((count, 2), dtype=np.uint64)
    by_name = {}
    gaps = []
    for i in range(count):
        at = pos
        if pos + INDEX_ENTRY_FIXED_SIZE > n:
            return IX_ERR_TRUNCATED, at, i
        offset = int.from_bytes(data[pos : pos + 8], "little")
        size = int.from_bytes(data[pos + 8 : pos + 16], "little")
        name_len = int.from_bytes(data[pos + 16 : pos + 18], "little")
        pos += INDEX_ENTRY_FIXED_SIZE
        if name_len > max_name:
            return IX_ERR_NAME_LIMIT, pos - 2, i
        if pos + name_len > n:
            return IX_ERR_TRUNCATED, at, i
        try:
            name = bytes(data[pos : pos + name_len]).decode("utf-8")
        except UnicodeDecodeError:
            return IX_ERR_NAME_UTF8, pos - 2, i
        pos += name_len
        if offset < next_offset or offset > index_unit_offset or size > index_unit_offset - offset \
                or size < MIN_UNIT_SIZE:
            return IX_ERR_ORDER, at, i
        if name in by_name:
            return IX_ERR_DUPLICATE, at + 16, i
        if offset > next_offset:
            gaps.append((i, next_offset, offset))
        next_offset = offset + size
        spans[i] = offset, size
        by_name[name] = i
    if pos != n:
        return IX_ERR_TRAILING, pos, 0
    if index_unit_offset > next_offset:
        gaps.append((count, next_offset, index_unit_offset))
    return 0, pos, (spans, by_name, gaps)
