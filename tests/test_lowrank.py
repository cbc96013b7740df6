"""Coding mode lowrank_sparse (spec 6.11): the product formula, the factors the encoder chose, dtypes,
parameters and malformed payloads."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import codec
from codec.errors import EncodeError, FormatError, TruncatedError
from codec.lowrank import factorize


def _spec_product(c, z):
    c, z = np.asarray(c, np.float32), np.asarray(z, np.float32)
    x = (c[:, 0:1] * z[0:1, :]).astype(np.float32)
    for t in range(1, c.shape[1]):
        x = (x + (c[:, t:t + 1] * z[t:t + 1, :]).astype(np.float32)).astype(np.float32)
    return x


def _coded(array, mode, **params):
    return codec.decode(codec.encode({"x": array}, mode=mode, **params))["x"]


def test_decoded_layer_is_the_product_of_the_coded_factors():
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((24, 6)) @ rng.standard_normal((6, 30)) * 0.02).astype(np.float32).reshape(24, 5, 6)
    c, z = factorize(w.reshape(24, 30), 6, 0.5)
    out = codec.decode(codec.encode({"w": w}, mode="lowrank_sparse", factors=(c, z), c_bits=7, z_bits=6))["w"]
    qc = _coded(c, "quantized", bits=7, granularity="channel")
    qz = _coded(z, "sparse", values_mode="quantized", bits=6)
    assert out.shape == w.shape and out.reshape(24, 30).tobytes() == _spec_product(qc, qz).tobytes()
    assert np.count_nonzero(z) == 90


def test_error_falls_with_rank_and_density():
    rng = np.random.default_rng(2)
    w = (rng.standard_normal((40, 40)) * 0.05).astype(np.float32)

    def err(**kw):
        out = _coded(w, "lowrank_sparse", c_bits=12, z_bits=12, **kw)
        return float(np.sqrt(((out - w) ** 2).mean() / (w ** 2).mean()))
    assert err(rank=40, density=1.0) < 0.01
    assert err(rank=20, density=1.0) < err(rank=10, density=1.0) < err(rank=5, density=1.0)
    assert err(rank=20, density=0.5) < err(rank=20, density=0.2)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, "bfloat16"])
def test_other_float_dtypes_convert_the_binary32_product(dtype):
    import ml_dtypes

    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 10)).astype(np.float32)
    c, z = factorize(w, 3, 1.0)
    ref = codec.decode(codec.encode({"w": w}, mode="lowrank_sparse", factors=(c, z)))["w"]
    typed = w.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    out = codec.decode(codec.encode({"w": typed}, mode="lowrank_sparse", factors=(c, z)))["w"]
    if dtype == "bfloat16":
        bits = ref.view(np.uint32).astype(np.uint64)
        assert out.view(np.uint16).tolist() == (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)).tolist()
    else:
        assert out.dtype == dtype and out.tobytes() == ref.astype(dtype).tobytes()


@pytest.mark.parametrize("array,params,message", [
    (np.ones(8, np.float32), {}, "rank >= 2"),
    (np.ones((4, 4), np.float32), {"density": 0.0}, "density"),
    (np.ones((4, 4), np.float32), {"factors": (np.ones((4, 2)), np.ones((3, 4)))}, "factors must be"),
    (np.ones((4, 4), np.int8), {}, "float"),
    (np.full((4, 4), np.inf, np.float32), {}, "finite"),
])
def test_parameters_and_inputs_are_checked(array, params, message):
    with pytest.raises(EncodeError, match=message):
        codec.encode({"w": array}, mode="lowrank_sparse", **params)


def test_rank_is_capped_by_the_level_grid():
    w = np.random.default_rng(5).standard_normal((3, 40)).astype(np.float32)
    data = codec.encode({"w": w}, mode="lowrank_sparse", rank=32, density=1.0, c_bits=12, z_bits=12)
    with codec.open(data) as r:
        assert codec.modes.get_mode("lowrank_sparse").params_of(r.header("w")) == 3
    assert np.abs(codec.decode(data)["w"] - w).max() < 1e-2


def _with(data, *, params=None, payload=None):
    from tools.hand_vectors import _layer, _one

    body, old = _layer(data, "w")
    with codec.open(data) as r:
        h = r.header("w")
    if params is not None:
        assert body.endswith(h.mode_params)
        body = body[:-len(h.mode_params)] + params
    return _one(body, old if payload is None else payload, "w", (2, 6))


def test_malformed_payloads():
    rng = np.random.default_rng(4)
    data = codec.encode({"w": rng.standard_normal((8, 8)).astype(np.float32)}, mode="lowrank_sparse", rank=2)
    with codec.open(data) as r:
        h = r.header("w")
    payload = bytearray(data[h.payload_offset:h.payload_offset + h.payload_size])
    with pytest.raises(FormatError, match="lrs_rank 0 is outside 1..8"):
        codec.decode(_with(data, params=struct.pack("<I", 0)))
    with pytest.raises(FormatError, match="lrs_rank 9 is outside"):
        codec.decode(_with(data, params=struct.pack("<I", 9)))
    bad = bytearray(payload)
    bad[0] = 9
    with pytest.raises(FormatError, match="lrs_factor_mode 9"):
        codec.decode(_with(data, payload=bytes(bad)))
    with pytest.raises(TruncatedError):
        codec.decode(_with(data, payload=bytes(payload[:20])))
    with pytest.raises(FormatError, match="ends the payload"):
        codec.decode(_with(data, payload=bytes(payload) + b"\0"))
