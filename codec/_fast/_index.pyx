# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Fast twin of the entry loop of codec.syntax.read_index_payload.

It returns the entries when the index is valid and None otherwise; on None the caller runs the
pure reference, which raises the exact error. So both paths agree by construction on every
valid index, and errors always come from the reference.
"""

from libc.stdint cimport uint8_t, uint64_t
from cpython.unicode cimport PyUnicode_DecodeUTF8


cdef inline uint64_t _le(const uint8_t[::1] buf, Py_ssize_t pos, int size) noexcept nogil:
    cdef uint64_t value = 0
    cdef int i
    for i in range(size - 1, -1, -1):
        value = (value << 8) | buf[pos + i]
    return value


def read_index_entries(const uint8_t[::1] buf, Py_ssize_t count, Py_ssize_t max_name,
                       uint64_t first_unit_offset, uint64_t index_unit_offset, entry_type):
    """Return [entry_type(name, unit_offset, unit_size), ...] for the entries after index_entry_count,
    or None if anything is wrong (truncation, limits, order, duplicates, bad UTF-8, trailing bytes)."""
    cdef Py_ssize_t n = buf.shape[0]
    cdef Py_ssize_t pos = 4
    cdef Py_ssize_t i, name_len
    cdef uint64_t offset, size, next_offset = first_unit_offset
    make = tuple.__new__
    entries = []
    names = set()
    for i in range(count):
        if pos + 18 > n:
            return None
        offset = _le(buf, pos, 8)
        size = _le(buf, pos + 8, 8)
        name_len = <Py_ssize_t>_le(buf, pos + 16, 2)
        pos += 18
        if name_len > max_name or pos + name_len > n:
            return None
        if name_len == 0:
            name = ""
        else:
            try:
                name = PyUnicode_DecodeUTF8(<const char *>&buf[pos], name_len, NULL)
            except UnicodeDecodeError:
                return None
        pos += name_len
        # same test as the reference, without overflow: offset + size > index_unit_offset
        if offset < next_offset or offset > index_unit_offset or size > index_unit_offset - offset or size < 24:
            return None
        if name in names:
            return None
        names.add(name)
        next_offset = offset + size
        entries.append(make(entry_type, (name, offset, size)))
    if pos != n:
        return None
    return entries
