"""The index entry loop (spec 9): both kernels agree on valid and mutated index payloads, and the
public reader raises the kernel's error with the full syntax path and position."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec.errors import CodecError, LimitError, TruncatedError
from codec.format import IndexEntry, Limits, read_index_payload, write_index_payload
from tests.twins import check


@st.composite
def index_payloads(draw):
    names = draw(st.lists(st.text(max_size=12), max_size=8, unique=True))
    offset = 100
    entries = []
    for name in names:
        size = draw(st.integers(24, 500))
        offset += draw(st.integers(0, 3))
        entries.append(IndexEntry(name, offset, size))
        offset += size
    data = bytearray(write_index_payload(entries))
    for _ in range(draw(st.integers(0, 3))):  # mutations
        if data and draw(st.booleans()):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif draw(st.booleans()):
            data = data[: draw(st.integers(0, len(data)))]
        else:
            data += draw(st.binary(max_size=3))
    return bytes(data), len(entries), offset, entries


@given(index_payloads())
def test_kernels_agree_and_the_reader_follows_them(case):
    data, count, end, entries = case
    status = None
    if len(data) >= 4 and int.from_bytes(data[:4], "little") == count and count * 18 <= len(data) - 4:
        status, _, value = check("index", "read_index_entries", data, count, 10, 100, end, IndexEntry)
        if status == 0:
            spans, by_name, gaps = value
            assert spans.dtype == np.uint64 and spans.shape == (count, 2) and len(by_name) == count
            listed = [IndexEntry(name, int(spans[i, 0]), int(spans[i, 1])) for name, i in by_name.items()]
            assert list(by_name.values()) == list(range(count))
            # the spans no entry covers, from the first unit (100) to the index (end)
            expected_gaps, start = [], 100
            for i, e in enumerate(listed + [IndexEntry("", end, 0)]):
                if e.unit_offset > start:
                    expected_gaps.append((i, start, e.unit_offset))
                start = e.unit_offset + e.unit_size
            assert gaps == expected_gaps
    try:
        got = read_index_payload(data, 0, Limits(max_name_bytes=10), layer_count=count, first_unit_offset=100,
                                 index_unit_offset=end)
    except CodecError as exc:
        assert status != 0
        assert str(exc).startswith("index")
    else:
        assert status == 0 and got == listed
        if all(len(e.name.encode()) <= 10 for e in entries) and data == write_index_payload(entries):
            assert got == entries


def test_error_messages_name_the_entry():
    entries = [IndexEntry("a", 100, 40), IndexEntry("b", 140, 30)]
    data = write_index_payload(entries)
    with pytest.raises(TruncatedError) as info:
        read_index_payload(data[:-1], 5000, Limits(), layer_count=2, first_unit_offset=100, index_unit_offset=400)
    assert str(info.value) == "index.entry[1] at byte 5023: the entry runs past the index payload"
    with pytest.raises(LimitError) as info:
        read_index_payload(write_index_payload([IndexEntry("abc", 100, 40)]), 0, Limits(max_name_bytes=2),
                           layer_count=1, first_unit_offset=100, index_unit_offset=400)
    assert str(info.value) == "index.entry[0].entry_name at byte 20: a name of 3 bytes exceeds max_name_bytes=2"


@pytest.mark.parametrize("size,ok", [(23, False), (24, True)])
def test_unit_size_minimum(size, ok):
    # MIN_UNIT_SIZE (24) is the smallest unit: both twins accept it and refuse one less
    from codec.format import IndexEntry, write_index_payload

    data = write_index_payload([IndexEntry("a", 100, size), IndexEntry("b", 200, 30)])
    status = check("index", "read_index_entries", data, 2, 10, 100, 400, IndexEntry)[0]
    assert (status == 0) == ok
