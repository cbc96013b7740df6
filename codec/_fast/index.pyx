# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The entry loop of index_payload(): twin of codec.kernels.index (same entries, same statuses)."""

from libc.stdint cimport uint8_t, uint64_t
from cpython.unicode cimport PyUnicode_DecodeUTF8

import numpy as np

cdef enum:
    INDEX_ENTRY_FIXED_SIZE = 18
    MIN_UNIT_SIZE = 24
    IX_ERR_TRUNCATED = -1
    IX_ERR_NAME_LIMIT = -2
    IX_ERR_NAME_UTF8 = -3
    IX_ERR_ORDER = -4
    IX_ERR_DUPLICATE = -5
    IX_ERR_TRAILING = -6


cdef inline uint64_t _le(const uint8_t *buf, Py_ssize_t pos, int size) noexcept nogil:
    # a pointer, not a typed memoryview: passing a memoryview costs an atomic reference count per call
    cdef uint64_t value = 0
    cdef int i
    for i in range(size - 1, -1, -1):
        value = (value << 8) | buf[pos + i]
    return value


def read_index_entries(buf, Py_ssize_t count, Py_ssize_t max_name, uint64_t first_unit_offset,
                       uint64_t index_unit_offset, entry_type):
    """The entries from byte 4 of ``buf``: (status, at, value), value on success ``(spans, by_name, gaps)``: a
    count x 2 uint64 array of (unit_offset, unit_size), a dict name -> position and the spans between units
    ``(position of the next entry, start, end)``; on an error the entry's number. ``entry_type`` is unused (the
    reader makes entries when it needs them)."""
    cdef const uint8_t[::1] data = memoryview(buf).cast("B")
    cdef Py_ssize_t n = data.shape[0]
    cdef const uint8_t *raw = &data[0] if n else NULL
    cdef Py_ssize_t pos = 4, at
    cdef Py_ssize_t i, name_len
    cdef uint64_t offset, size, next_offset = first_unit_offset
    spans = np.empty((count, 2), dtype=np.uint64)
    cdef uint64_t[:, ::1] sp = spans
    by_name = {}
    gaps = []
    for i in range(count):
        at = pos
        if pos + INDEX_ENTRY_FIXED_SIZE > n:
            return IX_ERR_TRUNCATED, at, i
        offset = _le(raw, pos, 8)
        size = _le(raw, pos + 8, 8)
        name_len = <Py_ssize_t>_le(raw, pos + 16, 2)
        pos += INDEX_ENTRY_FIXED_SIZE
        if name_len > max_name:
            return IX_ERR_NAME_LIMIT, pos - 2, i
        if pos + name_len > n:
            return IX_ERR_TRUNCATED, at, i
        if name_len == 0:
            name = ""
        else:
            try:
                name = PyUnicode_DecodeUTF8(<const char *>raw + pos, name_len, NULL)
            except UnicodeDecodeError:
                return IX_ERR_NAME_UTF8, pos - 2, i
        pos += name_len
        # offset + size > index_unit_offset, without overflow
        if offset < next_offset or offset > index_unit_offset or size > index_unit_offset - offset \
                or size < MIN_UNIT_SIZE:
            return IX_ERR_ORDER, at, i
        if name in by_name:
            return IX_ERR_DUPLICATE, at + 16, i
        if offset > next_offset:
            gaps.append((i, next_offset, offset))
        next_offset = offset + size
        sp[i, 0] = offset
        sp[i, 1] = size
        by_name[name] = i
    if pos != n:
        return IX_ERR_TRAILING, pos, 0
    if index_unit_offset > next_offset:
        gaps.append((count, next_offset, index_unit_offset))
    return 0, pos, (spans, by_name, gaps)
