"""Quantization parameter sets (spec 8), quantizers, and the 'quantized' and 'entropy' coding modes."""

import io
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec
from codec import quant
from codec.errors import CodecError, EncodeError, FormatError
from codec.quant import QuantParams


def weights(shape=(32, 24), seed=0, scale=0.05):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale * np.exp(rng.normal(0, 0.3, (shape[0],) + (1,) * (len(shape) - 1)))
            ).astype(np.float32)


def roundtrip(tensors, *, quantization=None, **kw):
    buf = io.BytesIO()
    with codec.Writer(buf, quantization=quantization) as w:
        for name, (array, params) in tensors.items():
            w.add_layer(name, array, **params)
    return buf.getvalue()


def test_step_formula_matches_nnr():
    # step = (2^d + qp mod 2^d) * 2^(floor(qp / 2^d) - d)
    assert quant.step_of_qp(-32, 2) == 2.0 ** -8
    assert quant.step_of_qp(-16, 2) == 2.0 ** -4
    assert quant.step_of_qp(1, 2) == 1.25
    assert quant.step_of_qp(-1, 2) == 0.875
    for d in range(0, 8):
        for qp in range(-300, 300, 7):
            assert quant.step_of_qp(qp, d) < quant.step_of_qp(qp + 1, d)
            if quant.qp_in_range(qp, d):
                assert quant.qp_for_step(quant.step_of_qp(qp, d), d) == qp


def test_step_range_is_the_normal_binary32_range():
    """spec 8.2: floor(qp / 2^d) in -126..127, i.e. steps in [2^-126, 2^128); 1.5 * 2^127 is valid."""
    assert quant.step_of_qp(quant.qp_for_step(1.5 * 2.0 ** 127, 2), 2) == 1.5 * 2.0 ** 127
    assert quant.step_of_qp(quant.qp_for_step(2.0 ** -126, 0), 0) == 2.0 ** -126
    for step in (2.0 ** 128, 2.0 ** -127):
        with pytest.raises(EncodeError, match="outside the steps the format holds"):
            quant.qp_for_step(step, 2)
    for qp, density in ((127 * 4 + 3, 2), (-126 * 4, 2)):
        assert quant.read_qp_set_data(quant.write_qp_set_data(QuantParams(qp_density=density, qps=(qp,)))).qps == (qp,)
    data = quant.write_qp_set_data(QuantParams(qp_density=2, qps=(0, 128 * 4)))
    with pytest.raises(FormatError, match=r"^q\.qp_delta\[1\] at bit \d+: qp 512 \(density 2\) gives a step outside"):
        quant.read_qp_set_data(data, path="q")


qp_sets = st.builds(
    QuantParams,
    method=st.none() | st.sampled_from(quant.METHODS),
    bits=st.none() | st.integers(1, 16),
    granularity=st.none(),
    axis=st.none(),
    qp_density=st.none(),
    qps=st.none(),
    zero_points=st.none() | st.lists(st.integers(-1000, 1000), min_size=1, max_size=5).map(tuple),
    codebook=st.none() | st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=5).map(tuple),
)


@given(qp_sets, st.none() | st.tuples(st.sampled_from(quant.GRANULARITIES), st.integers(0, 7)),
       st.none() | st.tuples(st.integers(0, 7), st.lists(st.integers(-400, 400), min_size=1, max_size=6)))
def test_qp_set_data_roundtrip(base, gran, steps):
    import dataclasses

    p = base
    if gran:
        p = dataclasses.replace(p, granularity=gran[0], axis=gran[1])
    if steps:
        qps = tuple(q for q in steps[1] if quant.qp_in_range(q, steps[0])) or (0,)
        p = dataclasses.replace(p, qp_density=steps[0], qps=qps)
    assert quant.read_qp_set_data(quant.write_qp_set_data(p)) == p


def test_override_rules():
    g = QuantParams(method="uniform", bits=4, granularity="channel", axis=1, qp_density=2, qps=(-20,))
    local = QuantParams(bits=6, qp_density=3, qps=(-30, -31))
    eff = quant.resolve(local, g, (5, 2), path="x")
    assert (eff.method, eff.bits, eff.granularity, eff.axis, eff.qp_density, eff.qps) == (
        "uniform", 6, "channel", 1, 3, (-30, -31))
    eff = quant.resolve(QuantParams(), g, (5, 1), path="x")
    assert eff.qps == (-20,) and eff.bits == 4  # everything inherited
    eff = quant.resolve(QuantParams(qp_density=2, qps=(-8,)), QuantParams(), (3,), path="x")
    assert (eff.method, eff.bits, eff.granularity) == ("uniform", 8, "tensor")  # defaults
    with pytest.raises(FormatError, match="no step size"):
        quant.resolve(QuantParams(), QuantParams(bits=3), (3,), path="x")
    with pytest.raises(FormatError, match="3 step sizes for 5 channels"):
        quant.resolve(QuantParams(granularity="channel", axis=0, qp_density=2, qps=(1, 2, 3)), QuantParams(),
                      (5, 2), path="x")
    with pytest.raises(FormatError, match="qp_axis 3 does not exist"):
        quant.resolve(QuantParams(granularity="channel", axis=3, qp_density=2, qps=(1,)), QuantParams(), (5, 2),
                      path="x")
    assert g.without(g).is_empty()
    assert local.over(g).without(g) == QuantParams(bits=6, qp_density=3, qps=(-30, -31))


CASES = [
    dict(),
    dict(bits=4),
    dict(bits=12, granularity="channel"),
    dict(bits=6, granularity="channel", axis=1),
    dict(step=2 ** -7),
    dict(method="uniform_zp", bits=3),
    dict(method="uniform_zp", bits=8, granularity="channel"),
    dict(method="codebook", bits=2),
    dict(method="codebook", bits=5),
    dict(bits=4, rdo_lambda=0.05),
]


def test_rdo_moves_levels_of_a_large_tensor_and_rounds_a_small_one():
    big = weights((64, quant.RDO_MIN_ELEMENTS // 64))
    nearest, p = quant.quantize(big, bits=4)
    chosen, p_rdo = quant.quantize(big, bits=4, rdo_lambda=0.2)
    assert p_rdo == p
    moved = chosen != nearest
    assert moved.any() and np.abs(chosen - nearest).max() == 1
    # the rate term moves levels towards the more probable (smaller) magnitudes
    assert (np.abs(chosen[moved]) < np.abs(nearest[moved])).mean() > 0.9
    small = big[:, :-1]  # one column short of RDO_MIN_ELEMENTS: rounded to nearest
    assert small.size < quant.RDO_MIN_ELEMENTS
    assert np.array_equal(quant.quantize(small, bits=4, rdo_lambda=0.2)[0], quant.quantize(small, bits=4)[0])


@pytest.mark.parametrize("params", CASES, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "default")
@pytest.mark.parametrize("shape", [(32, 24), (7,), (), (4, 3, 5), (0, 3)])
def test_decode_returns_exact_levels_and_documented_values(params, shape):
    w = weights(shape) if shape else np.float32(0.3) * np.ones((), np.float32)
    if shape == (0, 3):
        w = np.zeros(shape, np.float32)
    if params.get("axis", 0) >= len(shape) and params.get("granularity") == "channel" and len(shape) >= 2:
        with pytest.raises(EncodeError, match="does not exist"):
            quant.quantize(w, **params)
        return
    levels, full = quant.quantize(w, **params)
    data = roundtrip({"w": (w, dict(mode="quantized", **params))})
    with codec.open(data) as r:
        got_levels, eff = r.get("w", levels=True)
        values = r.get("w")
    assert np.array_equal(got_levels, levels)
    expected = quant.dequantize(levels, eff)
    assert values.dtype == np.float32 and values.shape == w.shape
    assert values.tobytes() == np.asarray(expected, np.float32).tobytes()  # bit-exact to the spec formula
    if w.size and params.get("method", "uniform") == "uniform" and "step" not in params and "rdo_lambda" not in params:
        # round to nearest: error at most half a step
        step = eff.steps.max()
        assert np.abs(values - w).max() <= step / 2 + 1e-7


@pytest.mark.parametrize("dtype", [np.float64, np.float16, ml_dtypes.bfloat16])
def test_output_in_the_layer_dtype(dtype):
    w = weights().astype(dtype)
    data = roundtrip({"w": (w, dict(mode="quantized", bits=8))})
    with codec.open(data) as r:
        values = r.get("w")
        levels, eff = r.get("w", levels=True)
    assert values.dtype == np.dtype(dtype)
    ref = quant.dequantize(levels, eff).astype(np.float32)
    assert np.array_equal(values.astype(np.float32), ref.astype(dtype).astype(np.float32))


def test_bfloat16_raw_bits_input():
    w = weights()
    bits = (w.view(np.uint32) >> 16).astype(np.uint16)
    data = roundtrip({"w": (bits, dict(mode="quantized", dtype="bfloat16", bits=8))})
    out = codec.decode(data)["w"]
    assert out.dtype == ml_dtypes.bfloat16
    assert np.abs(out.astype(np.float32) - w).max() < 0.01


def test_global_parameters_are_inherited_and_not_repeated():
    w = weights()
    data = roundtrip({"a": (w, dict(mode="quantized")), "b": (w, dict(mode="quantized", bits=8))},
                     quantization={"bits": 4, "granularity": "channel"})
    with codec.open(data) as r:
        assert r.global_qp.bits == 4 and r.global_qp.granularity == "channel"
        la, ea = r.get("a", levels=True)
        lb, eb = r.get("b", levels=True)
        local_a = quant.read_qp_set_data(r.header("a").local_qp_set)
        assert local_a.bits is None and local_a.granularity is None  # inherited, not repeated
        assert local_a.qps is not None  # per-channel steps are per layer
    assert ea.bits == 4 and np.abs(la).max() <= 7
    assert eb.bits == 8 and np.abs(lb).max() > 7
    assert ea.granularity == eb.granularity == "channel"


def test_global_step():
    w = weights()
    data = roundtrip({"a": (w, dict(mode="quantized"))}, quantization={"step": 2 ** -8, "qp_density": 2})
    with codec.open(data) as r:
        levels, eff = r.get("a", levels=True)
        assert r.header("a").local_qp_set is None or quant.read_qp_set_data(r.header("a").local_qp_set).qps is None
    assert eff.steps[0] == 2 ** -8
    assert np.array_equal(levels, np.rint(w.astype(np.float64) / 2 ** -8).astype(np.int64))


def test_version_is_the_lowest_needed():
    assert codec.open(codec.encode({"a": np.ones(3)}, mode="raw")).version == (1, 0)
    # level-coded layers: version 2.1 (the level coder of spec 7.4 with 7.5), or 2.0 or 1.1 when asked for
    assert codec.open(roundtrip({"a": (weights(), dict(mode="quantized"))})).version == (2, 1)
    assert codec.open(codec.encode({"a": np.arange(3)}, mode="entropy")).version == (2, 1)
    assert codec.open(codec.encode({"a": np.arange(3)}, mode="entropy", format_version=(2, 0))).version == (2, 0)
    old = codec.encode({"a": np.arange(3)}, mode="entropy", format_version=(1, 0))
    assert codec.open(old).version == (1, 1)
    assert codec.decode(old)["a"].tolist() == [0, 1, 2]
    assert codec.open(codec.encode({"a": np.ones(3)}, mode="raw", format_version=(2, 0))).version == (2, 0)
    with pytest.raises(ValueError, match="format_version must be one of"):
        codec.encode({"a": np.ones(3)}, format_version=(1, 2))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                                   np.bool_])
@given(data=st.data())
def test_entropy_mode_every_integer_dtype(dtype, data):
    info = np.iinfo(dtype) if dtype is not np.bool_ else None
    hi = min(info.max, 2**63 - 1) if info else 1
    lo = info.min if info else 0
    shape = data.draw(st.sampled_from([(0,), (1,), (17,), (6, 9), (2, 3, 4), ()]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kind = data.draw(st.sampled_from(["full", "small"]))
    if kind == "full":
        a = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64 if dtype is not np.uint64 else np.uint64)
    else:
        a = np.clip(np.rint(rng.laplace(0, 3, size=shape)), lo, hi)
    a = np.asarray(a).astype(dtype)
    out = codec.decode(codec.encode({"x": a}, mode="entropy"))["x"]
    assert out.dtype == a.dtype and out.shape == a.shape and np.array_equal(out, a)


def test_mode_errors():
    with pytest.raises(EncodeError, match="mode 'quantized' codes float tensors, not int64"):
        codec.encode({"x": np.arange(3)}, mode="quantized")
    with pytest.raises(EncodeError, match="codes integer or bool tensors"):
        codec.encode({"x": np.ones(3)}, mode="entropy")
    with pytest.raises(EncodeError, match="below 2\\^63"):
        codec.encode({"x": np.array([2**64 - 1], np.uint64)}, mode="entropy")
    with pytest.raises(EncodeError, match="takes no parameter 'levels'"):
        codec.encode({"x": np.ones(3)}, mode="quantized", levels=3)
    with pytest.raises(EncodeError, match="NaN"):
        codec.encode({"x": np.array([np.nan])}, mode="quantized")
    with pytest.raises(EncodeError, match="bits=1"):
        codec.encode({"x": np.ones(3)}, mode="quantized", bits=1)
    with pytest.raises(EncodeError, match="unknown quantization key 'bitz'"):
        codec.Writer(io.BytesIO(), quantization={"bitz": 3})
    with pytest.raises(ValueError, match=r"\(raw\) has no levels to return apart from its values: levels=True is "
                                         r"for quantized, ternary, sparse, dq, pq layers"):
        codec.open(codec.encode({"x": np.ones(3)}, mode="raw")).get("x", levels=True)


def test_quantized_size_beats_raw_and_zstd():
    w = weights((256, 256))
    q = codec.encode({"w": w}, mode="quantized", bits=8)
    z = codec.encode({"w": w}, mode="zstd")
    assert len(q) < len(z) / 3


@given(st.binary(max_size=40))
def test_malformed_qp_sets_raise_codec_errors(data):
    try:
        p = quant.read_qp_set_data(data)
    except CodecError:
        return
    assert isinstance(p, QuantParams)


def test_codebook_is_lloyd_optimal_on_two_clusters():
    w = np.concatenate([np.full(100, -1.0), np.full(50, 2.0)]).astype(np.float32)
    levels, p = quant.quantize(w, method="codebook", bits=1)
    assert sorted(p.codebook) == [-1.0, 2.0]
    assert math.isclose(np.abs(np.asarray(p.codebook)[levels] - w).max(), 0.0)


# ---------------------------------------------------------------------------------------------
# floatplanes: lossless float coding (spec 6.5)
# ---------------------------------------------------------------------------------------------
FLOAT_BITS = {np.float64: np.uint64, np.float32: np.uint32, np.float16: np.uint16, ml_dtypes.bfloat16: np.uint16}


@pytest.mark.parametrize("dtype", list(FLOAT_BITS), ids=lambda d: np.dtype(d).name)
@given(data=st.data())
def test_floatplanes_bit_exact_on_any_bit_pattern(dtype, data):
    from hypothesis.extra import numpy as hnp

    shape = data.draw(st.sampled_from([(0,), (1,), (7,), (5, 6), (2, 3, 4), ()]))
    kind = data.draw(st.sampled_from(["any", "weights"]))
    if kind == "any":  # NaN payloads, infinities, subnormals, -0.0
        bits = data.draw(hnp.arrays(FLOAT_BITS[dtype], shape))
        a = bits.view(dtype)
    else:
        a = (np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal(shape) * 0.05).astype(dtype)
    out = codec.decode(codec.encode({"x": a}, mode="floatplanes"))["x"]
    assert out.dtype == np.dtype(dtype) and out.shape == a.shape
    assert out.view(FLOAT_BITS[dtype]).tobytes() == a.view(FLOAT_BITS[dtype]).tobytes()


def test_floatplanes_compresses_weights_better_than_zstd():
    import zstandard

    w = weights((256, 256))
    fp = codec.encode({"w": w}, mode="floatplanes")
    z = zstandard.ZstdCompressor(level=3).compress(w.tobytes())
    assert len(fp) < len(z)


def test_floatplanes_zstd_context_serves_threads_and_survives_a_corrupt_frame():
    """floatplanes keeps one zstd context per thread: layers decoded on several threads at once come out
    whole, and a frame that fails part-way leaves the thread's context fit for the next layer."""
    from codec import _backend
    from codec.modes.floatplanes import PlaneMode, read_float_planes_payload

    rng = np.random.default_rng(5)
    # bfloat16 values held as float32: the low mantissa planes are zero, so zstd codes them
    tensors = {f"t{i}": (rng.standard_normal((64, 50)) * 0.05).astype(ml_dtypes.bfloat16).astype(np.float32)
               for i in range(12)}
    blob = codec.encode(tensors, mode="floatplanes")
    with codec.open(blob) as r:
        h = r.header("t3")
        payload = blob[h.payload_offset:h.payload_offset + h.payload_size]
        _, planes = read_float_planes_payload(_backend.bit_reader(payload, h.payload_offset, "p"), h.layer_dtype,
                                              64, 50)
    zstd_at = [(at, len(data)) for mode, data, at in planes if mode == PlaneMode.ZSTD]
    assert zstd_at  # the case this test is about
    for _ in range(3):
        out = codec.decode(blob, workers=4)
        assert all(out[k].tobytes() == v.tobytes() for k, v in tensors.items())
    at, size = zstd_at[0]
    damaged = bytearray(blob)
    damaged[at + size - 6] ^= 0xFF  # inside the frame's blocks: the decoder fails part-way
    with pytest.raises(FormatError, match="zstd"):
        codec.decode(bytes(damaged), verify=False)
    out = codec.decode(blob)  # the same thread, its context used again
    assert all(out[k].tobytes() == v.tobytes() for k, v in tensors.items())


def test_floatplanes_errors():
    with pytest.raises(EncodeError, match="codes float tensors"):
        codec.encode({"x": np.arange(3)}, mode="floatplanes")
    data = bytearray(codec.encode({"x": weights((8, 8))}, mode="floatplanes"))
    with codec.open(bytes(data)) as r:
        h = r.header("x")
    for cut in (1, 5, 40):
        bad = codec.open(bytes(data))
        with pytest.raises(CodecError):
            from codec.modes import get_mode

            get_mode("floatplanes").decode(h, bytes(data[h.payload_offset:h.payload_offset + h.payload_size - cut]),
                                           verify=False)
        bad.close()


@pytest.mark.parametrize("shape, axis", [((6, 5), 1), ((6, 5), 0), ((7,), 0), ((2, 3, 4), 2), ((3, 4), 0)])
@pytest.mark.parametrize("shared", ["step", "zero_point"])
def test_shared_and_per_channel_fields_combine(shape, axis, shared):
    """spec 8.3: step sizes and zero points number 1 or one per channel, independently. A shared
    step with a zero point per channel used to decode with zero point 0 (or out of bounds)."""
    from codec.levels import encode_levels, level_grid
    from tests.helpers import assemble, layer_body

    rng = np.random.default_rng(len(shape) * 10 + axis)
    levels = rng.integers(0, 16, shape)
    channels = shape[axis]
    zps = tuple(int(z) for z in rng.integers(0, 16, channels))
    qps = tuple(quant.qp_for_step(2.0 ** -k, 4) for k in rng.integers(2, 6, channels))
    if shared == "step":
        qps = qps[:1]
    else:
        zps = zps[:1]
    local = QuantParams(method="uniform_zp", bits=4, granularity="channel", axis=axis, qp_density=4, qps=qps,
                        zero_points=zps)
    body = layer_body(shape=shape, dtype=2, mode=3, qp=quant.write_qp_set_data(local))
    out = codec.decode(assemble([(1, body, encode_levels(levels, *level_grid(shape)), "w")]))["w"]
    bshape = [1] * len(shape)
    bshape[axis] = -1
    steps = np.array([quant.step_of_qp(q, 4) for q in qps], np.float32).reshape(bshape if len(qps) > 1 else [1])
    zero = np.array(zps, np.int64).reshape(bshape if len(zps) > 1 else [1])
    expected = (levels - zero).astype(np.float32) * steps
    assert out.dtype == np.float32 and out.tobytes() == expected.astype(np.float32).tobytes()


def test_unit_padding_by_version_and_mode():
    # 2.x: raw and zstd payloads start at a multiple of 64, the other modes' right after their
    # header; 1.x: every payload at a multiple of 64 (spec section 5)
    tensors = {"raw": np.arange(7, dtype=np.float32), "e": np.arange(50) % 7 - 3, "z": np.ones(9, np.float32),
               "q": weights()}
    modes = {"raw": "raw", "e": "entropy", "z": "zstd", "q": "quantized"}

    def write(version):
        buf = io.BytesIO()
        with codec.Writer(buf, format_version=version) as w:
            for name, a in tensors.items():
                w.add_layer(name, a, mode=modes[name])
        return buf.getvalue()

    for version, unpadded in (((1, 0), set()), (None, {"e", "q"})):
        data = write(version)
        with codec.open(data) as r:
            for name in tensors:
                h = r.header(name)
                if name in unpadded:
                    assert h.payload_offset == h.unit_offset + h.unit_header_size
                else:
                    assert h.payload_offset % 64 == 0
        streamed = dict(codec.iter_stream(io.BytesIO(data)))
        decoded = codec.decode(data)
        assert all(np.array_equal(streamed[k], decoded[k]) for k in tensors)
    assert len(write(None)) < len(write((1, 0)))
