"""The Cython twin of the index entry loop agrees with the pure reference.

The twin returns entries for a valid index and None otherwise (then the reference raises), so the
property is: whenever the twin returns entries, the reference returns the same entries; whenever
the reference accepts, the twin does not reject.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec import _backend
from codec.errors import CodecError
from codec.limits import Limits
from codec.syntax import IndexEntry, write_index_payload, read_index_payload

pytestmark = pytest.mark.skipif(_backend.read_index_entries is None, reason="compiled core not in use")


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
    return bytes(data), len(entries), offset


def reference(data, count, end):
    try:
        return read_index_payload(data, 0, Limits(max_name_bytes=10), layer_count=count, first_unit_offset=100,
                                  index_unit_offset=end, trace=[])
    except CodecError as exc:
        return exc


@given(index_payloads())
def test_twin_matches_reference(case):
    data, count, end = case
    ref = reference(data, count, end)
    fast = _backend.read_index_entries(data, count, 10, 100, end, IndexEntry) if len(data) >= 4 and \
        int.from_bytes(data[:4], "little") == count else None
    if fast is not None:
        assert not isinstance(ref, CodecError), ref
        assert fast == ref and all(type(e) is IndexEntry for e in fast)
    elif not isinstance(ref, CodecError):
        pytest.fail(f"twin rejected a valid index the reference accepts: {ref}")
    # the public function gives the reference's result either way
    try:
        public = read_index_payload(data, 0, Limits(max_name_bytes=10), layer_count=count, first_unit_offset=100,
                                    index_unit_offset=end)
    except CodecError as exc:
        assert isinstance(ref, CodecError) and str(exc) == str(ref)
    else:
        assert public == ref
