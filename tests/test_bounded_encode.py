"""Encoders that work piece by piece (bounded memory) give the bytes of the whole-layer encoders:
the level coder in pieces (carried rANS states, words spooled to a temporary file), quantizers
computing levels on demand, float planes streamed through zstd, ternary payloads chosen by size.
Piece sizes are made tiny here so that small arrays cross many piece boundaries."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codec
from codec import dump, levels, policy, quant, spool
from codec.modes import floatplanes, ternary


def _whole_levels(q, rows, cols, max_classes=16):
    """The level coder with one piece (the reference: no carried states, nothing spooled)."""
    old = levels.PIECE_ELEMENTS
    levels.PIECE_ELEMENTS = max(1, rows * cols)
    try:
        return levels.encode_levels(q, rows, cols, max_classes=max_classes)
    finally:
        levels.PIECE_ELEMENTS = old


@pytest.fixture
def tiny_pieces(monkeypatch):
    monkeypatch.setattr(levels, "PIECE_ELEMENTS", 37)
    monkeypatch.setattr(spool, "SPOOL_MEMORY", 64)  # spill the rANS words to a file almost at once
    monkeypatch.setattr(floatplanes, "CHUNK", 50)
    monkeypatch.setattr(floatplanes, "SAMPLE", 50)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(0, 9), cols=st.integers(0, 90), scale=st.sampled_from([0, 0.5, 3, 60, 1e4]),
       max_classes=st.sampled_from([1, 3, 16]), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32]))
def test_levels_in_pieces_are_the_whole_layer(rows, cols, scale, max_classes, seed, dtype):
    rng = np.random.default_rng(seed)
    q = np.rint(rng.laplace(0, scale, (rows, cols)) * (1 + np.arange(rows)[:, None] % 3))
    info = np.iinfo(dtype)
    q = np.clip(q, info.min, info.max).astype(dtype)
    whole = _whole_levels(q, rows, cols, max_classes)
    old = levels.PIECE_ELEMENTS, spool.SPOOL_MEMORY
    levels.PIECE_ELEMENTS, spool.SPOOL_MEMORY = 7, 16
    try:
        pieces = levels.encode_levels(q, rows, cols, max_classes=max_classes)
    finally:
        levels.PIECE_ELEMENTS, spool.SPOOL_MEMORY = old
    assert pieces == whole
    if q.size:
        assert np.array_equal(levels.decode_levels(pieces, rows, cols), q.reshape(-1).astype(np.int64))


def test_levels_source_must_cover_the_layer():
    class Gappy(levels.LevelSource):
        def pieces(self):
            return [(0, 3), (4, 10)]

        def levels(self, start, stop):
            return np.zeros(stop - start, np.int64)

    with pytest.raises(codec.EncodeError, match="cover its elements"):
        levels.write_levels(Gappy(2, 5), io.BytesIO())


@pytest.mark.parametrize("params", [dict(bits=8), dict(bits=4, granularity="channel"),
                                    dict(bits=5, granularity="channel", axis=1),
                                    dict(bits=3, granularity="channel", axis=2),
                                    dict(method="uniform_zp", bits=4, granularity="channel", axis=1),
                                    dict(method="uniform_zp", bits=6), dict(step=0.01),
                                    dict(method="codebook", bits=3), dict(bits=8, rdo_lambda=0.1)])
def test_quantizer_pieces_are_the_levels(params):
    # 6 * 26 * 33 = 5,148 elements: rdo_lambda applies from quant.RDO_MIN_ELEMENTS
    w = (np.random.default_rng(3).standard_normal((6, 26, 33)) * 0.1).astype(np.float32)
    levels_whole, p_whole = quant._quantize_whole(w, method=params.get("method", "uniform"),
                                                  bits=params.get("bits"), step=params.get("step"),
                                                  granularity=params.get("granularity", "tensor"),
                                                  axis=params.get("axis", 0), qp_density=quant.DEFAULT_DENSITY,
                                                  rdo_lambda=params.get("rdo_lambda"))
    for piece_elements in (1, 5, 13, 100, 10**6):
        source, p = quant.quantize_source(w, piece_elements=piece_elements, **params)
        assert p == p_whole
        got = np.concatenate([source.levels(a, b) for a, b in source.pieces()])
        assert np.array_equal(got, levels_whole.reshape(-1))


def test_step_without_bits_reports_the_width_from_the_maximum():
    w = np.array([[0.5, -3.0], [1e-3, 2.0]], np.float32)
    _, p = quant.quantize_source(w, step=0.01)
    assert p.bits == int(np.rint(3.0 / quant.step_of_qp(p.qps[0], p.qp_density))).bit_length() + 1
    with pytest.raises(codec.EncodeError, match="limit is 16"):
        quant.quantize_source(w * 1e6, step=0.01)


@pytest.mark.parametrize("mode,params,make", [
    ("quantized", dict(bits=6, granularity="channel"), lambda r: r.standard_normal((9, 40)).astype(np.float32)),
    ("quantized", dict(method="uniform_zp", bits=4, granularity="channel", axis=1),
     lambda r: r.standard_normal((9, 40)).astype(np.float32)),
    ("entropy", {}, lambda r: np.rint(r.laplace(0, 30, (9, 40))).astype(np.int16)),
    ("entropy", {}, lambda r: np.rint(r.laplace(0, 300, 333)).astype(np.int64)),
    ("floatplanes", {}, lambda r: (r.standard_normal((9, 40)) * 0.01).astype(np.float32)),
    ("floatplanes", {}, lambda r: np.round(r.standard_normal(500), 1).astype(np.float64)),
    ("ternary", dict(scheme="entropy"), lambda r: r.integers(-1, 2, (9, 40)).astype(np.int8)),
    ("ternary", dict(scheme="base3"), lambda r: r.integers(-1, 2, 1003).astype(np.int8)),
    ("ternary", {}, lambda r: (r.integers(-1, 2, (9, 40)) * 0.25).astype(np.float32)),
])
def test_modes_in_pieces_write_the_same_file(tiny_pieces, monkeypatch, mode, params, make):
    array = make(np.random.default_rng(11))
    small = codec.encode({"w": array}, mode=mode, **params)
    monkeypatch.undo()  # the same layer with the default (large) pieces
    if mode != "floatplanes":  # a zstd stream fed in chunks may cut its blocks elsewhere than one call
        assert codec.encode({"w": array}, mode=mode, **params) == small
    out = codec.decode(small)["w"]
    if mode == "quantized":
        assert out.shape == array.shape and np.abs(out - array).max() < 0.5
    else:
        assert out.tobytes() == array.tobytes()


def test_floatplanes_streamed_planes_round_trip(tiny_pieces, monkeypatch):
    # planes longer than CHUNK are compressed as a stream (the frame still records their size)
    monkeypatch.setattr(floatplanes, "CHUNK", 1000)
    w = np.random.default_rng(2).choice(np.float32([0.5, -0.25, 1.75, 3.0, 0.1]), 4321)
    data = codec.encode({"w": w}, mode="floatplanes")
    with codec.Reader(data) as r:
        planes = dump.summarize(r)["layers"][0]["coding"]["planes"]
    assert "zstd" in {p["mode"] for p in planes}
    assert codec.decode(data)["w"].tobytes() == w.tobytes()


def test_ternary_auto_keeps_the_smallest_scheme():
    rng = np.random.default_rng(5)
    for t in (rng.integers(-1, 2, 5000), rng.choice([-1, 0, 0, 0, 0, 0, 0, 1], 5000), np.zeros(5000)):
        t = t.astype(np.int8)
        sizes = {s: len(ternary.encode_payload(t, 1, t.size, s)) for s in ternary.SCHEMES}
        auto = ternary.encode_payload(t, 1, t.size)
        best = min(sizes, key=lambda s: (sizes[s], ternary.SCHEMES.index(s)))
        assert auto == ternary.encode_payload(t, 1, t.size, best)
    assert sizes["base3"] == 1 + (t.size + 4) // 5


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 700), zeros=st.sampled_from([0.0, 0.5, 0.9, 1.0]),
       scheme=st.sampled_from(("auto",) + ternary.SCHEMES), piece=st.sampled_from([16, 48, 160]),
       seed=st.integers(0, 2**32 - 1))
def test_ternary_payload_in_pieces_is_the_whole_layer(n, zeros, scheme, piece, seed):
    rng = np.random.default_rng(seed)
    t = np.where(rng.random(n) < zeros, 0, rng.choice([-1, 1], n)).astype(np.int8)
    rows, cols = (n // 7, 7) if n % 7 == 0 else (1, n)
    whole = {"flag": codec._backend.ternary.flag_encode(t), "base3": codec._backend.ternary.base3_encode(t),
             "entropy": _whole_levels(t, rows, cols)}
    best = min(whole, key=lambda s: (len(whole[s]), ternary.SCHEMES.index(s))) if scheme == "auto" else scheme
    old = (levels.PIECE_ELEMENTS, ternary.PIECE_ELEMENTS, spool.SPOOL_MEMORY)
    levels.PIECE_ELEMENTS, ternary.PIECE_ELEMENTS, spool.SPOOL_MEMORY = 37, piece, 64
    try:
        # float +-alpha input: its trits are made piece by piece (TritSource), never as a whole array
        # the source's grid is the layer's (adaptive contexts restart at each row)
        source, alphas = ternary.ternary_source((t.astype(np.float32) * np.float32(0.375)).reshape(rows, cols))
        out = io.BytesIO()
        ternary.write_payload(source, rows, cols, out, scheme)
    finally:
        levels.PIECE_ELEMENTS, ternary.PIECE_ELEMENTS, spool.SPOOL_MEMORY = old
    assert out.getvalue() == bytes([ternary.SCHEMES.index(best)]) + whole[best]
    assert alphas.tolist() == [0.375 if t.any() else 0.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, "bfloat16"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_ternary_threshold_codes_what_ternarize_returns(dtype, axis, monkeypatch):
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    monkeypatch.setattr(levels, "PIECE_ELEMENTS", 37)
    w = (np.random.default_rng(3).standard_normal((13, 29)) * 0.05).astype(dtype)
    w[4] = 0  # a slice without trits (alpha 0)
    fused = codec.encode({"w": w}, mode="ternary", threshold=0.7, axis=axis)
    assert fused == codec.encode({"w": codec.ternary.ternarize(w, axis=axis)}, mode="ternary", axis=axis)
    # the policy's ternarize = true is the same
    array, params = policy.apply({"mode": "ternary", "ternarize": True, **({} if axis is None else
                                                                                 {"axis": axis})}, w)
    assert array is w and codec.encode({"w": array}, **params) == fused


def test_ternary_errors_come_before_the_payload():
    w = np.array([[0.5, -0.5], [0.5, 0.25]], np.float32)
    with pytest.raises(codec.EncodeError, match=r"values are not ternary: 0\.25 is neither 0 nor \+-0\.5"):
        ternary.TernaryMode().plan(w, codec.dtypes.DType.FLOAT32, {})
    with pytest.raises(codec.EncodeError, match="channel 1"):
        ternary.TernaryMode().plan(w, codec.dtypes.DType.FLOAT32, {"axis": 0})
    with pytest.raises(codec.EncodeError, match="NaN or infinity"):
        codec.encode({"w": np.array([np.nan, 1.0], np.float32)}, mode="ternary", threshold=0.7)
    with pytest.raises(codec.EncodeError, match=r"the TWN rule \(threshold=, ternarize\) ternarizes float tensors, "
                                                r"not int8"):
        codec.encode({"w": np.array([1, 0], np.int8)}, mode="ternary", threshold=0.7)


def test_spool_orders_and_spills(tmp_path):
    s = spool.Spool(memory=5)
    for block in (b"ab", b"cde", b"fgh", b"", b"ij"):
        s.add(block)
    assert s.file is not None and s.size == 10
    out = io.BytesIO()
    s.write_to(out, reverse=True)
    assert out.getvalue() == b"ijfghcdeab" and s.file is None
    s = spool.Spool()
    s.add(b"xy")
    out = io.BytesIO()
    s.write_to(out)
    assert out.getvalue() == b"xy" and s.file is None


def test_decode_levels_into_a_given_buffer():
    q = np.array([[3, -2, 100, 0], [1, 1, -127, 5]], np.int64)
    payload = levels.encode_levels(q, 2, 4)
    out = np.full(8, 77, np.int16)
    got = levels.decode_levels(payload, 2, 4, out_kind=levels.LC_OUT_I16, out=out)
    assert got is out and out.tolist() == q.reshape(-1).tolist()
    with pytest.raises(ValueError, match="out must be"):
        levels.decode_levels(payload, 2, 4, out_kind=levels.LC_OUT_I16, out=np.empty(8, np.int32))
    wide = levels.encode_levels(np.array([1, 40000, -3], np.int64), 1, 3)
    with pytest.raises(codec.FormatError, match="does not fit int16"):
        levels.decode_levels(wide, 1, 3, out_kind=levels.LC_OUT_I16)
    assert levels.decode_levels(wide, 1, 3, out_kind=levels.LC_OUT_I32).tolist() == [1, 40000, -3]


@pytest.fixture
def pieces_from_file(monkeypatch):
    from codec import reader

    monkeypatch.setattr(reader, "_PIECES_BYTES", 0)  # every float-planes payload read in pieces
    monkeypatch.setattr(floatplanes, "CHUNK", 64)


def _floatplanes_file(tmp_path):
    rng = np.random.default_rng(12)
    layers = {"f32": np.round(rng.standard_normal((9, 70)), 1).astype(np.float32),
              "f16": rng.standard_normal(333).astype(np.float16),
              "f64": rng.choice([0.5, 1.5, -2.0], 200).astype(np.float64),
              "noise": rng.standard_normal(500).astype(np.float32), "empty": np.zeros((0, 3), np.float32)}
    path = tmp_path / "fp.nnc"
    codec.save_file(layers, path, mode="floatplanes")
    return path, layers


def test_floatplanes_read_in_pieces_from_a_file(tmp_path, pieces_from_file):
    path, layers = _floatplanes_file(tmp_path)
    with codec.Reader(path) as r:
        for name, array in layers.items():
            assert r.get(name).tobytes() == array.tobytes(), name
    data = path.read_bytes()
    with codec.Reader(data) as r:  # not a file: the whole payload, as before
        assert r.get("f32").tobytes() == layers["f32"].tobytes()


def test_floatplanes_in_pieces_fail_as_the_whole_payload_does(tmp_path, pieces_from_file):
    # without checksums, a damaged payload gives the same error (or the same values) either way
    path, _ = _floatplanes_file(tmp_path)
    data = path.read_bytes()
    with codec.Reader(data) as r:
        headers = [r.header(n) for n in ("f32", "f16")]
    damaged_path = tmp_path / "damaged.nnc"
    for h in headers:
        for bit in range(0, h.payload_size * 8, 3):
            damaged = bytearray(data)
            damaged[h.payload_offset + bit // 8] ^= 0x80 >> (bit % 8)
            damaged_path.write_bytes(bytes(damaged))
            outcomes = []
            for source in (bytes(damaged), damaged_path):
                with codec.Reader(source, verify=False) as r:
                    try:
                        outcomes.append(r.get(h.layer_name).tobytes())
                    except codec.CodecError as exc:
                        outcomes.append(f"{type(exc).__name__}: {exc}")
            assert outcomes[0] == outcomes[1], (h.layer_name, bit, outcomes)
            with codec.Reader(damaged_path) as r, pytest.raises(codec.ChecksumError):
                r.get(h.layer_name)


def test_floatplanes_in_pieces_see_a_truncated_file(tmp_path, pieces_from_file):
    path, _ = _floatplanes_file(tmp_path)
    with codec.Reader(path) as r:
        with open(path, "r+b") as f:
            f.truncate(r.header("f32").payload_offset + 10)
        with pytest.raises(codec.FileChangedError):
            r.get("f32")


@pytest.fixture
def tiny_mask_pieces(monkeypatch):
    from codec.modes import masks, sparse
    monkeypatch.setattr(levels, "PIECE_ELEMENTS", 37)
    monkeypatch.setattr(masks, "PIECE_ELEMENTS", 24)
    monkeypatch.setattr(masks.PackedMask, "BLOCK", 16)
    monkeypatch.setattr(sparse.KeptValues, "STEP", 9)
    return masks, sparse


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.sampled_from([(0,), (1,), (13,), (203,), (7, 9), (5, 64), (3, 4, 8), (2, 0, 4)]),
       density=st.sampled_from([0.0, 0.05, 0.5, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_packed_masks_and_kept_values_are_the_bool_ones(tiny_mask_pieces, shape, density, seed):
    masks, sparse = tiny_mask_pieces
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < density
    w = rng.standard_normal(shape).astype(np.float32)
    pm = masks.PackedMask.from_bool(mask)
    assert pm.count == mask.sum() and np.array_equal(pm.unpack(), mask)
    kept = sparse.KeptValues(w.reshape(-1), pm)
    assert np.array_equal(np.asarray(kept), w[mask])
    for a in range(0, kept.size + 1, 7):
        for b in (a, a + 1, a + 30, kept.size):
            assert np.array_equal(kept[a:b], w[mask][a:b])
    # the bitmap block made from the packed mask is the levels of the whole bool mask's nibbles
    rows, cols = levels.level_grid(shape)
    m = np.concatenate([mask.reshape(rows, cols), np.zeros((rows, -cols % 4), bool)], axis=1).astype(np.int16)
    nib = m[:, 0::4] * 8 + m[:, 1::4] * 4 + m[:, 2::4] * 2 + m[:, 3::4]
    assert masks.encode_bitmap(pm) == bytes([0]) + _whole_levels(nib - 8, rows, (cols + 3) // 4)


@pytest.mark.parametrize("shape, n, m", [((6, 8), 2, 4), ((3, 48), 1, 16), ((40,), 3, 5), ((2, 3, 12), 5, 12)])
def test_nm_pruning_in_pieces_is_the_whole_tensor(tiny_mask_pieces, shape, n, m):
    masks, _ = tiny_mask_pieces
    w = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    w.reshape(-1)[::7] = 0.5  # ties
    pm = masks.prune_nm_packed(w, n, m)
    whole = masks.prune_nm(w, n, m)
    assert np.array_equal(pm.unpack(), whole)
    assert masks.encode_nm(pm, n, m, len(shape) - 1) == masks.encode_nm(whole, n, m, len(shape) - 1)
    assert np.array_equal(masks.prune_magnitude_packed(w, 0.3).unpack(), masks.prune_magnitude(w, 0.3))


@pytest.mark.parametrize("values", [{"values_mode": "raw"}, {"values_mode": "zstd"},
                                    {"values_mode": "quantized", "bits": 6}, {"values_mode": "floatplanes"},
                                    {"values_mode": "quantized", "method": "codebook", "bits": 3}])
@pytest.mark.parametrize("how", [{"nm": [2, 4]}, {"prune": 0.7}, {}])
def test_sparse_values_gathered_in_pieces_give_the_same_file(tiny_mask_pieces, monkeypatch, values, how):
    w = np.random.default_rng(6).standard_normal((24, 40)).astype(np.float32)
    w[w < -1] = 0
    action = {"mode": "sparse", **how, **values}

    def encode():
        array, params = policy.apply(action, w)
        return codec.encode({"w": array}, **params)

    small = encode()
    monkeypatch.undo()
    assert encode() == small
    out = codec.decode(small)["w"]
    assert ((out == w) | (out == 0) | (values.get("values_mode") == "quantized")).all()
