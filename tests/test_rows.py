"""Row ranges: ``Reader.get_rows`` and ``safe_open().get_slice()[...]`` decode only the chunks of rows
(spec 7.4) that hold the rows asked for, and give exactly the rows a whole decode gives."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import codec
from codec import levels
from codec.format.constants import CRC_SIZE

ROWS, COLS = 97, 24  # small chunks below: 97 rows in chunks of 6 rows


@pytest.fixture(scope="module")
def chunked_files(tmp_path_factory):
    """One file per level-coded setting, written with chunks of ~128 levels (6 rows) instead of ~2^20."""
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((ROWS, COLS)) * 0.05).astype(np.float32)
    w3 = (rng.standard_normal((ROWS, 3, 8)) * 0.05).astype(np.float32)
    ints = rng.integers(-300, 300, (ROWS, COLS)).astype(np.int32)
    ints[5, 7] = 2**30  # an escape in one chunk
    cases = {
        "entropy": ({"t": ints}, dict(mode="entropy")),
        "bool": ({"t": rng.random((ROWS, COLS)) < 0.3}, dict(mode="entropy")),
        "int8/channel": ({"t": w}, dict(mode="quantized", bits=8, granularity="channel")),
        "uniform/tensor": ({"t": w}, dict(mode="quantized", step=2**-7)),
        "uniform_zp/channel": ({"t": w}, dict(mode="quantized", method="uniform_zp", bits=4, granularity="channel")),
        "channel axis 1": ({"t": w}, dict(mode="quantized", bits=6, granularity="channel", axis=1)),
        "codebook": ({"t": w}, dict(mode="quantized", method="codebook", bits=3)),
        "rank 3": ({"t": w3}, dict(mode="quantized", bits=8, granularity="channel")),
        "dq/tensor": ({"t": w}, dict(mode="dq", step=2**-6)),
        "dq/channel": ({"t": w}, dict(mode="dq", bits=5, granularity="channel")),
        "dq/channel axis 1": ({"t": w}, dict(mode="dq", bits=5, granularity="channel", axis=1)),
        "bfloat16": ({"t": w.astype(codec.dtypes.bfloat16_dtype())}, dict(mode="quantized", bits=8)),
    }
    saved = levels.LC_CHUNK_ELEMENTS
    levels.LC_CHUNK_ELEMENTS = 128
    previous = levels.set_adaptive("auto")
    files = {}
    try:
        root = tmp_path_factory.mktemp("rows")
        for i, (label, (tensors, params)) in enumerate(cases.items()):
            path = root / f"{i}.nnc"
            codec.save_file(tensors, path, **params)
            files[label] = path
        levels.set_adaptive("always")  # the other level model (spec 7.5)
        for label in ("entropy", "int8/channel", "dq/channel"):
            tensors, params = cases[label]
            path = root / f"adaptive-{len(files)}.nnc"
            codec.save_file(tensors, path, **params)
            files[label + " adaptive"] = path
    finally:
        levels.LC_CHUNK_ELEMENTS = saved
        levels.set_adaptive(previous)
    return files


def _chunks(reader, name="t"):
    header = reader.header(name)
    rows, cols = levels.level_grid(header.layer_shape)
    from codec import _backend

    # entropy, quantized and dq payloads are one levels_payload()
    return levels.read_levels_payload(_backend.bit_reader(reader.payload(name), header.payload_offset, "p"), rows,
                                      cols, version=header.levels_version).chunks


def test_the_fixture_has_many_chunks(chunked_files):
    for label, path in chunked_files.items():
        with codec.open(path) as r:
            assert len(_chunks(r)) >= 10, label


@pytest.mark.parametrize("label", ["entropy", "bool", "int8/channel", "uniform/tensor", "uniform_zp/channel",
                                   "channel axis 1", "codebook", "rank 3", "dq/tensor", "dq/channel",
                                   "dq/channel axis 1", "bfloat16", "entropy adaptive", "int8/channel adaptive",
                                   "dq/channel adaptive"])
def test_rows_equal_the_whole_decode(chunked_files, label):
    with codec.open(chunked_files[label]) as r:
        full = r.get("t")
        for start, stop in [(0, 1), (0, ROWS), (5, 6), (5, 7), (6, 12), (11, 13), (40, 90), (96, 97), (30, 30),
                            (-3, None), (90, 500), (50, 10)]:
            got = r.get_rows("t", start, stop)
            expected = full[start:stop]
            assert got.dtype == expected.dtype and got.shape == expected.shape, (label, start, stop)
            assert np.array_equal(got.view(np.uint8), np.ascontiguousarray(expected).view(np.uint8)), \
                (label, start, stop)


def test_only_the_chunks_that_hold_the_rows_are_decoded(chunked_files, monkeypatch):
    seen = []
    decode_chunks = levels._decode_chunks

    def spy(p, chunks, *args, **kwargs):
        seen.append([(c.row0, c.row1) for c in chunks])
        return decode_chunks(p, chunks, *args, **kwargs)

    monkeypatch.setattr(levels, "_decode_chunks", spy)
    with codec.open(chunked_files["int8/channel"]) as r:
        r.get_rows("t", 13, 14)
        r.get_rows("t", 11, 19)
        r.get("t")
    one, span, whole = seen
    assert len(one) == 1 and one[0][0] <= 13 < one[0][1]
    assert span[0][0] <= 11 and span[-1][1] >= 19 and len(span) <= 3
    assert len(whole) >= 10 and whole[0][0] == 0 and whole[-1][1] == ROWS


def test_a_damaged_chunk_elsewhere_does_not_stop_other_rows(chunked_files, tmp_path):
    """Rows far from a damaged chunk decode (verify=False), the damaged rows and the whole layer raise."""
    path = chunked_files["entropy"]
    with codec.open(path) as r:
        header = r.header("t")
        good = r.get("t")
        last = _chunks(r)[-1]
    data = bytearray(path.read_bytes())
    at = last.words_offset + 2  # inside the last chunk's rANS words
    data[at] ^= 0xFF
    damaged = tmp_path / "damaged.nnc"
    damaged.write_bytes(bytes(data))
    with codec.open(damaged, verify=False) as r:
        assert np.array_equal(r.get_rows("t", 0, 10), good[:10])
        with pytest.raises(codec.errors.CodecError):
            r.get("t")
        with pytest.raises(codec.errors.CodecError):
            r.get_rows("t", last.row0, last.row1)
    with codec.open(damaged) as r:  # verified: the payload checksum covers every chunk
        with pytest.raises(codec.errors.ChecksumError):
            r.get_rows("t", 0, 10)
    assert header.payload_size > CRC_SIZE


@settings(max_examples=60, deadline=None)
@given(label=st.sampled_from(["int8/channel", "dq/channel", "entropy", "channel axis 1", "rank 3"]),
       start=st.integers(-120, 120), stop=st.one_of(st.none(), st.integers(-120, 120)),
       step=st.sampled_from([None, 1, 2, 5, -1, -3]), col=st.sampled_from([None, 0, -1, slice(2, 9, 3)]),
       as_int=st.booleans())
def test_get_slice_equals_numpy_indexing(chunked_files, label, start, stop, step, col, as_int):
    with codec.open(chunked_files[label]) as r:
        full = r.get("t")
    if as_int:
        if not -ROWS <= start < ROWS:
            with codec.safe_open(chunked_files[label]) as f, pytest.raises(IndexError):
                f.get_slice("t")[start]
            return
        first = start
    else:
        first = slice(start, stop, step)
    index = first if col is None else (first, col)
    with codec.safe_open(chunked_files[label]) as f:
        got = f.get_slice("t")[index]
    assert np.array_equal(got, full[index])


def test_get_slice_other_indexes_decode_the_layer(chunked_files):
    with codec.open(chunked_files["int8/channel"]) as r:
        full = r.get("t")
    with codec.safe_open(chunked_files["int8/channel"]) as f:
        s = f.get_slice("t")
        for index in [(Ellipsis, 3), [1, 5, 90], np.array([3, 3]), (None, 4), ()]:
            assert np.array_equal(s[index], full[index])


def test_rows_of_other_layers(tmp_path):
    """Raw, zstd, floatplanes, 1-D, scalar and empty layers: get_rows slices what get gives."""
    rng = np.random.default_rng(1)
    tensors = {"raw": rng.standard_normal((9, 4)).astype(np.float32), "vec": np.arange(10, dtype=np.int16),
               "scalar": np.array(3.5, dtype=np.float32), "empty": np.zeros((0, 5), np.int32),
               "flat": rng.standard_normal((7, 3)).astype(np.float32)}
    path = tmp_path / "m.nnc"
    codec.save_file(tensors, path, policy={"rules": [{"name": "raw", "mode": "raw"}]})
    with codec.open(path) as r:
        for name in ("raw", "vec", "empty", "flat"):
            for start, stop in [(0, 2), (3, 100), (-2, None), (4, 4)]:
                assert np.array_equal(r.get_rows(name, start, stop), tensors[name][start:stop])
        with pytest.raises(ValueError, match="scalar"):
            r.get_rows("scalar", 0, 1)
        with pytest.raises(KeyError):
            r.get_rows("nope", 0, 1)
        view = r.get_rows("raw", 1, 3)
        assert view.flags.writeable  # a copy, not the read-only view of the map
