"""Mode ``dq`` (spec 6.8, 8.5): the reconstruction against the spec's formula written out here, round
trips that reproduce exactly what the encoder chose, the version rules, and the rate-distortion
gain that is the mode's reason to exist."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import codec
from codec import dq, quant
from codec.errors import EncodeError, FormatError
from codec.levels import level_grid

# spec table 8.5, written out again: DQ_NEXT_STATE[s][parity]
NEXT = {0: (0, 2), 1: (7, 5), 2: (1, 3), 3: (6, 4), 4: (2, 0), 5: (5, 7), 6: (3, 1), 7: (4, 6)}


def spec_reconstruct(levels: np.ndarray) -> np.ndarray:
    """Spec 8.5 one level at a time: q = 2k - sgn(k) * (s mod 2), s = NEXT[s][|k| mod 2], per row."""
    out = np.zeros(levels.shape, dtype=np.int64)
    for r, row in enumerate(levels.tolist()):
        s = 0
        for c, k in enumerate(row):
            sgn = (k > 0) - (k < 0)
            out[r, c] = 2 * k - sgn * (s % 2)
            s = NEXT[s][abs(k) % 2]
    return out


def spec_values(levels: np.ndarray, params: quant.QuantParams, shape) -> np.ndarray:
    """float32(q) * step[c] (spec 8.4 with q for the level)."""
    rows, cols = level_grid(shape)
    q = spec_reconstruct(levels.reshape(rows, cols)).reshape(shape)
    steps = np.array([quant.step_of_qp(v, params.qp_density) for v in params.qps], dtype=np.float32)
    if params.granularity == "channel":
        view = [1] * len(shape)
        view[params.axis] = -1
        steps = steps.reshape(view)
    else:
        steps = steps[0]
    return q.astype(np.float32) * steps


def test_reconstruct_follows_the_spec_formula():
    rng = np.random.default_rng(3)
    for rows, cols in ((1, 1), (3, 17), (8, 64), (2, 0)):
        k = rng.integers(-40, 41, (rows, cols)).astype(np.int64)
        got = dq.reconstruct(k.reshape(-1).copy(), rows, cols, path="t")
        assert got.reshape(rows, cols).tolist() == spec_reconstruct(k).tolist()


def test_reconstruct_rejects_large_levels_naming_the_level():
    k = np.zeros(12, np.int64)
    k[7] = 2**31
    with pytest.raises(FormatError, match=r"layers\[0\]\.unit_payload\.level\[7\].*below 2\^31"):
        dq.reconstruct(k, 3, 4, path="layers[0].unit_payload")


float_tensors = st.one_of(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=9),
               elements=st.floats(-4, 4, width=32)),
    st.sampled_from([np.zeros((5, 7), np.float32), np.zeros((0, 3), np.float32), np.array(1.5, np.float32),
                     np.array([3e4, -3e4, 1e-30], np.float32)]),
)


@settings(max_examples=60, deadline=None)
@given(w=float_tensors, choice=st.sampled_from(["step", "bits", "channel", "axis1"]),
       lam=st.sampled_from([0.0, 0.3, 2.0]))
def test_round_trip_gives_the_encoders_levels_reconstructed(w, choice, lam):
    params = {"step": dict(step=2 ** -3), "bits": dict(bits=5), "channel": dict(bits=4, granularity="channel"),
              "axis1": dict(step=2 ** -2, granularity="channel", axis=1)}[choice]
    if choice == "axis1" and w.ndim < 2:
        params = dict(step=2 ** -2)
    if "step" in params and w.size and np.abs(w).max() / params["step"] > 2**15 - 2:
        params = dict(bits=8)
    data = codec.encode({"w": w}, mode="dq", dq_lambda=lam, **params)
    levels, full = dq.quantize_dq(w, dq_lambda=lam, **params)
    want = spec_values(levels, full, w.shape)
    got = codec.decode(data)["w"]
    assert got.dtype == w.dtype and got.shape == w.shape
    assert got.tobytes() == want.astype(w.dtype).tobytes()
    with codec.open(data) as r:
        stored, eff = r.get("w", levels=True)
        assert r.version == (2, 2)
    assert np.array_equal(stored, levels)
    assert eff.method == "uniform"
    if w.size and lam == 0.0 and choice == "step" and "step" in params:
        # without a rate term each weight takes one of the two levels of its quantizer that enclose
        # it (each within 2 Delta) or zero (to reach a better state)
        delta = float(eff.steps.max())
        err = np.abs(got.astype(np.float64) - w)
        assert ((err <= 2 * delta * (1 + 1e-6)) | (got == 0)).all()


@pytest.mark.parametrize("model", ["never", "always"])
@pytest.mark.parametrize("params", [dict(step=2 ** -6), dict(bits=6, granularity="channel"),
                                    dict(step=2 ** -5, granularity="channel", axis=1)])
def test_fused_decoding_gives_the_spec_values(model, params):
    """Levels, trellis and steps in the level decoder's one pass (a step per row) or in two (axis-1
    channels): get, get(out=) and get_rows all give spec 8.5's values, static and adaptive payloads,
    layers wide enough for the vector kernel (with escapes)."""
    from codec import dump
    from codec import levels as lv

    rng = np.random.default_rng(11)
    w = (rng.standard_normal((48, 333)) * 0.05).astype(np.float32)
    w[3, 100] = 40.0  # escapes
    w[40, 7] = -35.0
    previous = lv.set_adaptive(model)
    try:
        data = codec.encode({"w": w}, mode="dq", **params)
    finally:
        lv.set_adaptive(previous)
    levels, full = dq.quantize_dq(w, **params)
    want = spec_values(levels, full, w.shape)
    with codec.open(data) as r:
        assert (r.header("w").mode_name, dump.summarize(r)["layers"][0]["coding"]["levels"]["model"]) \
            == ("dq", "static" if model == "never" else "adaptive")
        assert r.get("w").tobytes() == want.tobytes()
        out = np.full(w.shape, np.nan, np.float32)
        r.get("w", out=out)
        assert out.tobytes() == want.tobytes()
        assert r.get_rows("w", 5, 9).tobytes() == want[5:9].tobytes()


def test_every_float_dtype_and_the_step_meaning():
    rng = np.random.default_rng(4)
    w = rng.laplace(0, 0.05, (32, 48))
    for dtype in (np.float64, np.float32, np.float16):
        a = w.astype(dtype)
        out = codec.decode(codec.encode({"w": a}, mode="dq", step=2 ** -6))["w"]
        assert out.dtype == dtype
    # a range below the smallest step the format holds gets that step (it was an error), in both modes
    tiny = np.array([1e-38, -3e-39], np.float32)
    for mode in ("dq", "quantized"):
        out = codec.decode(codec.encode({"w": tiny}, mode=mode, bits=5))["w"]
        assert (np.abs(out.astype(np.float64) - tiny) <= 2.0 ** -126).all(), (mode, out)
    # the stored step is half the given one (spec 8.5: the union of the two quantizers)
    with codec.open(codec.encode({"w": w.astype(np.float32)}, mode="dq", step=2 ** -6)) as r:
        _, eff = r.get("w", levels=True)
    assert eff.steps.tolist() == [2 ** -7]


def test_fewer_bytes_than_uniform_at_equal_error():
    # the mode's purpose, on Laplacian weights with row scales like a trained layer's: the uniform
    # quantizer's size at dq's squared error (interpolated on a fine grid of steps) is larger
    rng = np.random.default_rng(5)
    w = (rng.laplace(0, 0.02, (96, 288)) * np.exp(rng.normal(0, 0.4, (96, 1)))).astype(np.float32)

    def size_and_mse(mode, step):
        data = codec.encode({"w": w}, mode=mode, step=step)
        return len(data), float(((codec.decode(data)["w"] - w) ** 2).mean())

    for step in (2 ** -8, 2 ** -5):
        size, mse = size_and_mse("dq", step)
        curve = [size_and_mse("quantized", step * 2 ** (j / 8)) for j in range(-6, 7)]
        assert curve[0][1] < mse < curve[-1][1]
        uniform = np.interp(np.log(mse), np.log([m for _, m in curve]), [b for b, _ in curve])
        assert size < 0.99 * uniform, (step, size, uniform)


def test_rate_table_caps_the_cost_of_a_first_nonzero_level():
    # mostly zeros: an order-0 code length would charge -1 and 1 about 9 bits; the trellis sees at most
    # NONZERO_EXTRA_MAX more than a zero, and the other levels keep their code lengths
    levels = np.zeros(4096, np.int64)
    levels[:8] = [1, -1, 1, 2, -2, 3, 1, -1]
    bits = dq.rate_table(levels, 4)
    counts = np.bincount(levels + 4, minlength=9)
    plain = -np.log2(np.maximum(counts, 1) / counts.sum())
    assert bits[3] == bits[5] == pytest.approx(bits[4] + dq.NONZERO_EXTRA_MAX)
    assert plain[5] > bits[4] + dq.NONZERO_EXTRA_MAX
    assert bits[6] == pytest.approx(plain[6]) and bits[2] == pytest.approx(plain[2])
    # a dense tensor never reaches the cap
    dense = np.random.default_rng(1).integers(-3, 4, 4096)
    assert np.allclose(dq.rate_table(dense, 3), -np.log2(np.bincount(dense + 3) / dense.size))


def test_a_tensor_of_small_weights_is_not_erased(monkeypatch):
    # weights 4x smaller than the step: without the cap each trellis pass makes non-zero levels
    # rarer and dearer, and 99.8% of the levels end zero (an error of 99% of the weights' size)
    w = (np.random.default_rng(0).standard_normal((64, 256)) * 0.008).astype(np.float32)

    def zeros_and_error():
        d = codec.decode(codec.encode({"w": w}, mode="dq", step=2 ** -5))["w"]
        return float((d == 0).mean()), float(np.sqrt(((d - w) ** 2).mean() / (w ** 2).mean()))

    zeros, error = zeros_and_error()
    monkeypatch.setattr(dq, "NONZERO_EXTRA_MAX", np.inf)
    zeros_uncapped, error_uncapped = zeros_and_error()
    assert zeros_uncapped > 0.99 and error_uncapped > 0.98
    assert zeros < 0.92 and error < 0.8


def test_versions():
    w = np.ones((4, 4), np.float32)
    assert codec.open(codec.encode({"w": w}, mode="quantized", step=0.5)).version == (2, 1)
    assert codec.open(codec.encode({"w": w}, mode="dq", step=0.5)).version == (2, 2)
    for version, text in (((2, 0), "2.0"), ((1, 1), "1.x")):
        with pytest.raises(EncodeError, match=f"mode 'dq' needs format version 2.2 or later .*{text} readers"):
            with codec.Writer(io.BytesIO(), format_version=version) as wr:
                wr.add_layer("w", w, mode="dq", step=0.5)
    # a sparse layer with dq values makes the file 2.2 too
    sparse = codec.encode({"w": np.eye(4, dtype=np.float32)}, mode="sparse", values_mode="dq", step=0.5)
    assert codec.open(sparse).version == (2, 2)
    assert codec.decode(sparse)["w"].tolist() == np.eye(4).tolist()


def test_encoder_errors():
    with pytest.raises(EncodeError, match="mode 'dq' codes float tensors, not int64"):
        codec.encode({"x": np.arange(3)}, mode="dq")
    with pytest.raises(EncodeError, match="NaN"):
        codec.encode({"x": np.array([1.0, np.nan])}, mode="dq")
    with pytest.raises(EncodeError, match=r"parameter 'bits' must be int in 2\.\.16"):
        codec.encode({"x": np.ones(3)}, mode="dq", bits=1)
    with pytest.raises(EncodeError, match="levels of 18 bits"):
        codec.encode({"x": np.array([1.0, 70000.0])}, mode="dq", step=1.0)
    with pytest.raises(EncodeError, match="takes no parameter 'method'"):
        codec.encode({"x": np.ones(3)}, mode="dq", method="uniform_zp")


def test_global_quantization_and_policy():
    w = np.random.default_rng(6).standard_normal((8, 16)).astype(np.float32)
    buf = io.BytesIO()
    with codec.Writer(buf, quantization={"step": 2 ** -4}) as wr:
        wr.add_layer("w", w, mode="dq")
    levels, full = dq.quantize_dq(w, step=2 ** -4)
    assert codec.decode(buf.getvalue())["w"].tobytes() == spec_values(levels, full, w.shape).tobytes()
    from codec import policy

    p = policy.load_policy('[[rules]]\nname = "*.weight"\nmode = "dq"\nbits = 6\ngranularity = "channel"\n')
    action, rule = p.choose("fc.weight", w, "weight")
    array, params = policy.apply(action, w)
    assert rule == 0 and params == {"mode": "dq", "bits": 6, "granularity": "channel"}
    levels, full = dq.quantize_dq(w, bits=6, granularity="channel")
    out = codec.decode(codec.encode({"fc.weight": array}, **params))["fc.weight"]
    assert out.tobytes() == spec_values(levels, full, w.shape).tobytes()
    with pytest.raises(EncodeError, match="takes no parameter 'method'"):
        policy.load_policy('[[rules]]\nmode = "dq"\nmethod = "codebook"\n')


def test_dump_shows_the_mode():
    from codec import dump

    data = codec.encode({"w": np.random.default_rng(7).standard_normal((8, 16)).astype(np.float32)},
                        mode="dq", bits=4, granularity="channel")
    with codec.open(data) as r:
        doc = dump.summarize(r)
    coding = doc["layers"][0]["coding"]
    assert coding["trellis"] == "8 states" and coding["bits"] == 4 and len(coding["qps"]) == 8
    assert "dq 4b ch0 steps" in dump.render_text(doc, "x.nnc", wide=True)
    assert "dq 4b/ch 2^" in dump.render_text(doc, "x.nnc")
    names = {f.path.rsplit(".", 1)[-1] for f in dump.walk(data)}
    assert "dq_trellis" in names


def test_importance_weights_the_error_per_input_channel():
    rng = np.random.default_rng(9)
    w = rng.laplace(0, 0.05, (32, 24)).astype(np.float32)
    plain, _ = dq.quantize_dq(w, step=2 ** -4)
    # equal importances are no importances (scaled to mean 1: the same decisions)
    same, _ = dq.quantize_dq(w, step=2 ** -4, importance=np.full(24, 7.0))
    assert np.array_equal(plain, same)
    # the important columns get a smaller error, the others a larger one
    imp = np.where(np.arange(24) < 12, 10.0, 0.1)
    weighted, params = dq.quantize_dq(w, step=2 ** -4, importance=imp)
    delta = quant.step_of_qp(params.qps[0], params.qp_density)

    def col_mse(levels):
        q = spec_reconstruct(levels) * delta
        return ((q - w) ** 2)[:, :12].mean(), ((q - w) ** 2)[:, 12:].mean()

    (hi_plain, lo_plain), (hi_w, lo_w) = col_mse(plain), col_mse(weighted)
    assert hi_w < hi_plain and lo_w > lo_plain
    # per input channel of a convolution: each channel's weight covers its kernel positions
    conv = rng.laplace(0, 0.05, (8, 3, 2, 2)).astype(np.float32)
    by_channel, _ = dq.quantize_dq(conv, step=2 ** -4, importance=[1.0, 5.0, 0.5])
    by_column, _ = dq.quantize_dq(conv, step=2 ** -4, importance=np.repeat([1.0, 5.0, 0.5], 4))
    assert np.array_equal(by_channel, by_column)
    data = codec.encode({"w": w}, mode="dq", step=2 ** -4, importance=imp)
    assert codec.decode(data)["w"].tobytes() == spec_values(weighted, params, w.shape).tobytes()
    with pytest.raises(EncodeError, match="needs one per input channel \\(24\\) or per column \\(24\\)"):
        dq.quantize_dq(w, step=2 ** -4, importance=np.ones(5))
    with pytest.raises(EncodeError, match="finite and non-negative"):
        dq.quantize_dq(w, step=2 ** -4, importance=-np.ones(24))
    with pytest.raises(EncodeError, match="cannot be given in a policy"):
        from codec import policy

        policy.load_policy('[[rules]]\nmode = "dq"\nimportance = [1.0, 2.0]\n')


def test_collect_importance_with_torch():
    torch = pytest.importorskip("torch")
    from codec.torch import collect_importance

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(3 * 4 * 4, 5))
    batches = [torch.randn(4, 2, 6, 6) for _ in range(3)]
    imp = collect_importance(model, batches)
    assert sorted(imp) == ["0.weight", "3.weight"]
    x = torch.cat(batches).double()
    assert np.allclose(imp["0.weight"], (x ** 2).mean(dim=(0, 2, 3)).numpy())
    with torch.no_grad():
        hidden = torch.nn.Flatten()(torch.relu(model[0](torch.cat(batches)))).double()
    assert np.allclose(imp["3.weight"], (hidden ** 2).mean(dim=0).numpy())
    assert imp["0.weight"].shape == (2,) and imp["3.weight"].shape == (48,)
    assert model.training  # the mode is restored
    w = model[3].weight.detach().numpy()
    out = codec.decode(codec.encode({"fc": w}, mode="dq", bits=4, importance=imp["3.weight"]))["fc"]
    assert out.shape == w.shape
