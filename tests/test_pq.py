"""Coding mode pq (spec 6.9): round trips against the spec's formula, the encoder's intent (same centroids,
same indices), every float dtype and awkward shape, parameters, and malformed payloads."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import codec
from codec import pq
from codec.errors import EncodeError, FormatError, TruncatedError, UnsupportedError


def _encode(tensors, **kw):
    return codec.encode(tensors, mode="pq", **kw)


def _spec_values(stages, n: int) -> np.ndarray:
    """Spec 6.9's values from the stages (stored codebooks and indices), in binary32, stage by stage."""
    x = None
    for s in stages:
        part = s.codebook.astype(np.float32)[s.indices].reshape(-1)[:n]
        x = part if x is None else (x + part).astype(np.float32)
    return x


def _levels(data, name="w"):
    with codec.open(data) as r:
        return r.get(name, levels=True)


@pytest.mark.parametrize("shape,kw", [
    ((64, 32), {"dim": 4}),
    ((64, 32), {"dim": 4, "stages": 2}),
    ((16, 3, 3, 3), {"dim": 2, "centroids": 7}),  # 27 columns: dim does not divide them
    ((1000,), {"dim": 8, "bits": 4}),
    ((5,), {"dim": 16}),  # one vector, cut short
    ((1,), {"dim": 3}),
    ((0, 4), {"dim": 4}),
    ((0,), {}),
    ((), {"dim": 2}),
    ((33, 7), {"dim": 5, "centroids": 300, "codebook": "float32"}),  # escapes: more than 255 indices
])
def test_round_trip_is_the_spec_formula_of_the_encoders_stages(shape, kw):
    rng = np.random.default_rng(1)
    w = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    data = _encode({"w": w}, **kw)
    out = codec.decode(data)["w"]
    assert out.shape == w.shape and out.dtype == np.float32
    stages = _levels(data)
    expected = pq.quantize_pq(w.reshape(-1), dim=kw.get("dim", 4),
                              centroids=kw.get("centroids") or (1 << kw["bits"] if "bits" in kw else 256),
                              stages=kw.get("stages", 1), codebook_dtype=pq.CODEBOOK_DTYPES[kw.get("codebook", "float16")])
    assert len(stages) == len(expected)
    for got, want in zip(stages, expected):
        assert got.codebook.tobytes() == want.codebook.tobytes()
        assert np.array_equal(got.indices, want.indices)
    if w.size:
        assert out.reshape(-1).tobytes() == _spec_values(stages, w.size).tobytes()
    with codec.open(data) as r:
        assert r.version == (2, 4)


def test_every_float_dtype_is_the_float32_values_converted():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((12, 16)).astype(np.float32)
    ref = codec.decode(_encode({"w": w}))["w"]
    for dtype in (np.float64, np.float16):
        out = codec.decode(_encode({"w": w.astype(dtype)}))["w"]
        assert out.dtype == dtype
        data = _encode({"w": w.astype(dtype)})
        assert out.tobytes() == _spec_values(_levels(data), w.size).astype(dtype).reshape(w.shape).tobytes()
    assert ref.tobytes() == _spec_values(_levels(_encode({"w": w})), w.size).reshape(w.shape).tobytes()
    import ml_dtypes

    bf = _encode({"w": w.astype(ml_dtypes.bfloat16)})
    out = codec.decode(bf)["w"]
    assert out.dtype.name == "bfloat16"
    values = _spec_values(_levels(bf), w.size).view(np.uint32).astype(np.uint64)
    rounded = ((values + 0x7FFF + ((values >> 16) & 1)) >> 16).astype(np.uint16)  # spec 8.4
    assert out.view(np.uint16).reshape(-1).tolist() == rounded.tolist()


def test_float64_output_widens_the_binary32_values_exactly():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 8))
    data = _encode({"w": w})
    stages = _levels(data)
    assert codec.decode(data)["w"].tobytes() == _spec_values(stages, w.size).astype(np.float64).tobytes()


def test_residual_stage_lowers_the_error_and_more_centroids_too():
    rng = np.random.default_rng(4)
    w = (rng.standard_normal((128, 64)) * 0.1).astype(np.float32)

    def err(**kw):
        return float(np.abs(codec.decode(_encode({"w": w}, **kw))["w"] - w).mean())
    assert err(dim=4, centroids=16, stages=2) < err(dim=4, centroids=16)
    assert err(dim=4, centroids=256) < err(dim=4, centroids=16)


def test_centroids_ordered_by_use_and_unused_ones_dropped():
    w = np.repeat(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32), [1, 5, 2], axis=0)
    (stage,) = _levels(_encode({"w": w}, dim=2, centroids=8))
    assert stage.codebook.tolist() == [[3.0, 4.0], [5.0, 6.0], [1.0, 2.0]]
    assert stage.indices.tolist() == [2, 0, 0, 0, 0, 0, 1, 1]


def test_decode_into_a_callers_array():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((40, 24)).astype(np.float32)
    data = _encode({"w": w}, stages=2)
    out = np.full(w.shape, 9.0, np.float32)
    with codec.open(data) as r:
        r.get("w", out=out)
    assert out.tobytes() == codec.decode(data)["w"].tobytes()


@pytest.mark.parametrize("kw,message", [
    ({"centroids": 4, "bits": 2}, "not both"),
    ({"dim": 17}, "dim"),
    ({"stages": 3}, "stages"),
    ({"codebook": "bfloat16"}, "codebook"),
    ({"centroids": 0}, "centroids"),
])
def test_parameters_are_checked(kw, message):
    with pytest.raises(EncodeError, match=message):
        _encode({"w": np.ones((4, 4), np.float32)}, **kw)


def test_non_finite_values_and_integer_tensors_are_refused():
    with pytest.raises(EncodeError, match="finite"):
        _encode({"w": np.array([[1.0, np.nan]], np.float32)})
    with pytest.raises(EncodeError, match="float"):
        _encode({"w": np.ones((4, 4), np.int32)})
    with pytest.raises(EncodeError, match="float16's range"):
        _encode({"w": np.full((4, 4), 1e6, np.float32)})
    assert codec.decode(_encode({"w": np.full((4, 4), 1e6, np.float32)}, codebook="float32"))["w"][0, 0] == 1e6


def test_older_format_versions_cannot_hold_pq():
    buf = io.BytesIO()
    with pytest.raises(EncodeError, match="2.4"):
        with codec.Writer(buf, format_version=(2, 0)) as w:
            w.add_layer("w", np.ones((4, 4), np.float32), mode="pq")


def test_policy_rule_and_dump_summary():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((32, 16)).astype(np.float32)
    data = codec.encode({"fc.weight": w}, policy={"rules": [{"name": "*weight", "mode": "pq", "dim": 2,
                                                             "centroids": 16}]})
    (stage,) = _levels(data, "fc.weight")
    assert stage.codebook.shape[1] == 2 and len(stage.codebook) <= 16
    from codec import dump

    with codec.open(data) as r:
        doc = dump.summarize(r)
    assert "pq d2 K" in dump.render_text(doc, "x.nnc")
    summary = codec.modes.get_mode("pq").summarize(*_header_and_payload(data, "fc.weight"))
    assert summary["dim"] == 2 and summary["centroids"] == [len(stage.codebook)] and summary["codebook"] == "float16"
    assert codec.modes.get_mode("pq").summary_text(summary).startswith("pq d2 K")


def _header_and_payload(data, name):
    with codec.open(data) as r:
        h = r.header(name)
    return h, data[h.payload_offset:h.payload_offset + h.payload_size]


# ---------------------------------------------------------------------------------------------
# malformed payloads (the CRCs recomputed: these reach the mode's parser)
# ---------------------------------------------------------------------------------------------
def _with_payload(data, payload: bytes) -> bytes:
    from tools.hand_vectors import _layer, _one

    body, _ = _layer(data, "w")
    return _one(body, payload, "w", (2, 4))


def _with_params(data, params: bytes) -> bytes:
    from tools.hand_vectors import _layer, _one

    body, payload = _layer(data, "w")
    old = _header_and_payload(data, "w")[0].mode_params
    assert body.endswith(old)
    return _one(body[:-len(old)] + params, payload, "w", (2, 4)) if len(params) == len(old) else None


@pytest.fixture
def small():
    rng = np.random.default_rng(7)
    return _encode({"w": rng.standard_normal((8, 8)).astype(np.float32)}, dim=4, centroids=4)


@pytest.mark.parametrize("params,error,message", [
    (b"\x00\x01\x00", FormatError, "pq_dim 0"),
    (b"\x11\x01\x00", FormatError, "pq_dim 17"),
    (b"\x04\x03\x00", FormatError, "pq_num_stages 3"),
    (b"\x04\x01\x02", UnsupportedError, "pq_codebook_dtype 2 is reserved"),
])
def test_bad_mode_params(small, params, error, message):
    bad = _with_params(small, params)
    with pytest.raises(error, match=message):
        codec.decode(bad)


def test_bad_payloads(small):
    h, payload = _header_and_payload(small, "w")
    k = struct.unpack_from("<H", payload)[0] + 1
    size_at = 2 + k * 4 * 2
    with pytest.raises(TruncatedError, match="pq_codebook"):
        codec.decode(_with_payload(small, payload[:2] + b"\xff\xff"))
    longer = bytearray(payload)
    struct.pack_into("<I", longer, size_at, struct.unpack_from("<I", payload, size_at)[0] + 1)
    with pytest.raises(FormatError, match="ends the payload"):
        codec.decode(_with_payload(small, bytes(longer)))
    # one centroid fewer: some index is now outside the codebook
    fewer = bytearray(payload[:2 + (k - 1) * 8]) + payload[size_at:]
    struct.pack_into("<H", fewer, 0, k - 2)
    with pytest.raises(FormatError, match="outside the codebook"):
        codec.decode(_with_payload(small, bytes(fewer)))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 70), st.integers(1, 6), st.integers(1, 40), st.integers(1, 2), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_property_round_trip(n, dim, centroids, stages, as_matrix, seed):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(n) * rng.uniform(0.01, 10)).astype(np.float32)
    if as_matrix and n % 2 == 0 and n:
        w = w.reshape(2, n // 2)
    data = _encode({"w": w}, dim=dim, centroids=centroids, stages=stages, seed=seed % 1000)
    out = codec.decode(data)["w"]
    got = _levels(data)
    assert all(len(s.codebook) <= centroids for s in got)
    if n:
        assert out.reshape(-1).tobytes() == _spec_values(got, n).tobytes()
    with codec.open(data) as r:
        r.verify()
