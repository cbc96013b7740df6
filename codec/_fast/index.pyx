# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The entry loop of index_payload(): twin of codec.kernels.index (same entries, same statuses)."""

from libc.stdint cimport uint8_t, uint64_t
from cpython.unicode cimport PyUnicode_DecodeUTF8

cdef enum:
    INDEX_ENTRY_FIXED_SIZE = 18
    MIN_UNIT_SIZE = 24
    IX_ERR_TRUNCATED = -1
    IX_ERR_NAME_LIMIT = -2
    IX_ERR_NAME_UTF8 = -3
    IX_ERR_ORDER = -4
    IX_ERR_DUPLICATE = -5
    IX_ERR_TRAILING = -6


cdef inline uint64_t _le(const uint8_t[::1] buf, Py_ssize_t pos, int size) noexcept nogil:
    cdef uint64_t value = 0
    cdef int i
    for i in range(size - 1, -1, -1):
        value = (value << 8) | buf[pos + i]
    return value


def read_index_entries(buf, Py_ssize_t count, Py_ssize_t max_name, uint64_t first_unit_offset,
                       uint64_t index_unit_offset, entry_type):
    """Entries ``entry_type(name, unit_offset, unit_size)`` from byte 4 of ``buf``: (status, at, list | entry)."""
    cdef const uint8_t[::1] data = memoryview(buf).cast("B")
    cdef Py_ssize_t n = data.shape[0]
    cdef Py_ssize_t pos = 4, at
    cdef Py_ssize_t i, name_len
    cdef uint64_t offset, size, next_offset = first_unit_offset
    make = tuple.__new__
    entries = []
    names = set()
    for i in range(count):
        at = pos
        if pos + INDEX_ENTRY_FIXED_SIZE > n:
            return IX_ERR_TRUNCATED, at, i
        offset = _le(data, pos, 8)
        size = _le(data, pos + 8, 8)
        name_len = <Py_ssize_t>_le(data, pos + 16, 2)
        pos += INDEX_ENTRY_FIXED_SIZE
        if name_len > max_name:
            return IX_ERR_NAME_LIMIT, pos - 2, i
        if pos + name_len > n:
            return IX_ERR_TRUNCATED, at, i
        if name_len == 0:
            name = ""
        else:
            try:
                name = PyUnicode_DecodeUTF8(<const char *>&data[pos], name_len, NULL)
            except UnicodeDecodeError:
                return IX_ERR_NAME_UTF8, pos - 2, i
        pos += name_len
        # offset + size > index_unit_offset, without overflow
        if offset < next_offset or offset > index_unit_offset or size > index_unit_offset - offset \
                or size < MIN_UNIT_SIZE:
            return IX_ERR_ORDER, at, i
        if name in names:
            return IX_ERR_DUPLICATE, at + 16, i
        names.add(name)
        next_offset = offset + size
        entries.append(make(entry_type, (name, offset, size)))
    if pos != n:
        return IX_ERR_TRAILING, pos, 0
    return 0, pos, entries
