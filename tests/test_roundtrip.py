"""Property: decode(encode(model)) == model, bit for bit, through every API and coding mode."""

import io
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec
from tests.strategies import arrays, metadata, models

MODES = ["raw", "zstd"]


def assert_same(got: np.ndarray, expected: np.ndarray):
    expected = np.asarray(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype.newbyteorder("=")
    assert got.dtype.isnative
    # compare bit patterns: NaN payloads and -0.0 must survive
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(expected.astype(got.dtype)).tobytes()


def same_metadata(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_metadata(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("mode", MODES)
@given(model=models(), meta=metadata)
def test_encode_decode(mode, model, meta):
    data = codec.encode(model, metadata=meta, mode=mode)
    out = codec.decode(data)
    assert list(out) == list(model)
    for name, array in model.items():
        assert_same(out[name], array)
    with codec.open(data) as r:
        assert set(r.metadata) == set(meta)
        for key, value in meta.items():
            assert same_metadata(r.metadata[key], list(value) if isinstance(value, tuple) else value)


@pytest.mark.parametrize("mode", MODES)
@given(array=arrays(), level=st.integers(-7, 22))
def test_one_layer_every_dtype(mode, array, level):
    params = {"level": level} if mode == "zstd" else {}
    data = codec.encode({"x": array}, mode=mode, **params)
    assert_same(codec.decode(data)["x"], array)
    layers = list(codec.iter_stream(io.BytesIO(data)))
    assert [n for n, _ in layers] == ["x"]
    assert_same(layers[0][1], array)


@given(model=models(max_layers=4))
def test_save_load_file(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("rt") / "m.nnc"
    codec.save_file(model, path, mode="zstd")
    out = codec.load_file(path)
    assert list(out) == list(model)
    for name, array in model.items():
        assert_same(out[name], array)


@pytest.mark.parametrize("mode", MODES)
def test_edge_tensors(mode):
    model = {
        "empty": np.zeros((0,), np.float32),
        "empty3d": np.zeros((2, 0, 3), np.int64),
        "scalar": np.array(np.pi),
        "one": np.array([7], np.int8),
        "odd": np.arange(7 * 3 * 5, dtype=np.uint16).reshape(7, 3, 5),
        "huge": np.array([np.finfo(np.float64).max, -np.inf, np.nan, 2**63 - 1], dtype=np.float64),
        "int_extremes": np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max]),
        "zeros": np.zeros((64, 64), np.float32),
        "rank8": np.ones((1, 2, 1, 2, 1, 2, 1, 2), np.float16),
        "bools": np.array([True, False, True]),
    }
    out = codec.decode(codec.encode(model, mode=mode))
    for name, array in model.items():
        assert_same(out[name], array)


@pytest.mark.parametrize("mode", MODES)
def test_bfloat16(mode):
    values = np.array([[1.0, -2.5, np.inf], [np.nan, 0.0, -0.0]], dtype=ml_dtypes.bfloat16)
    out = codec.decode(codec.encode({"bf": values}, mode=mode))["bf"]
    assert out.dtype == ml_dtypes.bfloat16
    assert out.view(np.uint16).tobytes() == values.view(np.uint16).tobytes()
    # raw bits marked with dtype="bfloat16" decode to the same
    bits = values.view(np.uint16)
    w = io.BytesIO()
    with codec.Writer(w) as writer:
        writer.add_layer("bf", bits, mode=mode, dtype="bfloat16")
    with codec.open(w.getvalue()) as r:
        assert r.header("bf").dtype_name == "bfloat16"
        assert r.get("bf").view(np.uint16).tobytes() == bits.tobytes()


def test_bfloat16_without_ml_dtypes_gives_raw_bits(monkeypatch):
    import codec.dtypes

    monkeypatch.setattr(codec.dtypes, "bfloat16_dtype", lambda: None)
    bits = np.array([0x3F80, 0xC020], dtype=np.uint16)
    w = io.BytesIO()
    with codec.Writer(w) as writer:
        writer.add_layer("bf", bits, mode="raw", dtype="bfloat16")
    out = codec.decode(w.getvalue())["bf"]
    assert out.dtype == np.uint16 and out.tolist() == bits.tolist()


def test_zero_layers_and_many_layers():
    assert codec.decode(codec.encode({})) == {}
    model = {f"layer{i}": np.full(i % 5, i, dtype=np.int32) for i in range(300)}
    out = codec.decode(codec.encode(model, mode="raw"))
    assert list(out) == list(model)
    assert all((out[k] == v).all() for k, v in model.items())


def test_unicode_names_and_order():
    model = {"z": np.ones(1), "ä.weight": np.ones(2), "层": np.ones(3), "🎉": np.ones(4), "": np.ones(5), "a\x00b": np.ones(6)}
    out = codec.decode(codec.encode(model))
    assert list(out) == list(model)


def test_payloads_are_64_byte_aligned():
    model = {f"l{i}": np.arange(i, dtype=np.float32) for i in range(10)}
    with codec.open(codec.encode(model, mode="raw")) as r:
        for name in r:
            assert r.header(name).payload_offset % 64 == 0


def test_returned_arrays_are_writable_and_independent(tmp_path):
    path = tmp_path / "m.nnc"
    codec.save_file({"a": np.arange(4.0)}, path, mode="raw")
    with codec.open(path) as r:
        a = r.get("a")
    a[0] = 42  # still valid after the reader (and its mmap) closed
    assert codec.load_file(path)["a"][0] == 0


def test_encode_is_deterministic():
    model = {"w": np.random.default_rng(1).standard_normal((50, 20)).astype(np.float32)}
    assert codec.encode(model, metadata={"a": 1}) == codec.encode(model, metadata={"a": 1})
