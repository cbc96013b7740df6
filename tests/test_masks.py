"""Sparse layers (spec 6.7): mask codings, N:M, hierarchical, hybrid, outputs, helpers, malformed input."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import codec
from codec import masks as M
from codec.errors import CodecError, EncodeError, FormatError
from codec.modes import masks as MM
from tests.twins import check


def sparse_roundtrip(w, **params):
    data = codec.encode({"w": w}, mode="sparse", **params)
    return data, codec.decode(data)["w"]


@st.composite
def masked(draw):
    shape = draw(st.sampled_from([(0,), (1,), (7,), (5, 9), (3, 4, 5), (16, 33), ()]))
    density = draw(st.sampled_from([0.0, 0.01, 0.1, 0.5, 0.9, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.standard_normal(shape).astype(np.float32)
    mask = rng.random(shape) < density
    return w, mask


@given(masked(), st.sampled_from(["raw", "zstd", "floatplanes", "quantized"]))
def test_bitmap_roundtrip_every_density(case, values_mode):
    w, mask = case
    wm = np.where(mask, w, 0).astype(np.float32)
    params = {"bits": 8} if values_mode == "quantized" else {}
    data, out = sparse_roundtrip(wm, mask=mask, values_mode=values_mode, **params)
    assert out.shape == wm.shape and out.dtype == np.float32
    if values_mode == "quantized":
        assert np.abs(out - wm).max(initial=0) <= np.abs(wm).max(initial=0) / 127 + 1e-6
    else:
        assert np.array_equal(out, wm)
    with codec.open(data) as r:
        bits, values = r.get("w", format="bitmap")
    assert np.array_equal(np.unpackbits(bits)[: mask.size].astype(bool), mask.reshape(-1))
    assert values.size == mask.sum()


NM_PAIRS = [(n, m) for m in range(2, 17) for n in range(1, m)]


@pytest.mark.parametrize("n,m", NM_PAIRS)
def test_every_nm(n, m):
    rng = np.random.default_rng(n * 31 + m)
    w = rng.standard_normal((3, 2 * m)).astype(np.float32)
    mask = M.prune_nm(w, n, m, axis=-1)
    assert (mask.reshape(3, 2, m).sum(axis=2) == n).all()
    wm = np.where(mask, w, 0)
    data, out = sparse_roundtrip(wm, mask=mask, nm=(n, m))
    assert np.array_equal(out, wm)


@given(st.sampled_from(NM_PAIRS), st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_uniform_coder_twins_and_size(pair, seed, groups):
    n, m = pair
    c = math.comb(m, n)
    idx = np.random.default_rng(seed).integers(0, c, groups)
    data = check("masks", "uniform_encode", idx, c)
    status, _, out = check("masks", "uniform_decode", data, groups, c)
    assert status == 0 and np.array_equal(out, idx)
    assert len(data) <= 8 + 2 * math.ceil(groups * math.log2(c) / 16) + 2
    # the capacity bound used to refuse huge counts before allocating never refuses a valid stream
    assert groups <= check("masks", "uniform_capacity", (len(data) - 8) // 2, c)


def test_2_4_costs_log2_6_over_4():
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 6, 200_000)
    bits = len(check("masks", "uniform_encode", idx, 6)) * 8 / (idx.size * 4)
    assert bits <= 0.647 and bits >= math.log2(6) / 4


def test_nm_rejects_non_nm_mask_naming_the_group():
    mask = np.ones((2, 8), bool)
    mask[1, 4:] = [True, False, False, True]
    mask[0] = [True, True, False, False, True, False, True, False]
    with pytest.raises(EncodeError, match="group 2 keeps 4 of 4"):
        codec.encode({"w": np.ones((2, 8))}, mode="sparse", mask=mask, nm=(2, 4))


def test_nm_from_nonzeros_and_axis0():
    w = np.random.default_rng(1).standard_normal((8, 6)).astype(np.float32)
    mask = M.prune_nm(w, 1, 4, axis=0)
    wm = np.where(mask, w, 0)
    _, out = sparse_roundtrip(wm, nm=(1, 4), axis=0)  # mask = the non-zeros
    assert np.array_equal(out, wm)


def test_hierarchical_and_hybrid():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((6, 32)).astype(np.float32)
    # level 1: 1 of every 2 groups of 4 kept; level 2: 2:4 inside kept groups -> density 1/4
    groups = np.zeros((6, 8, 4), bool)
    for r in range(6):
        for b in range(4):
            g = 2 * b + rng.integers(0, 2)
            groups[r, g, rng.choice(4, 2, replace=False)] = True
    mask = groups.reshape(6, 32)
    wm = np.where(mask, w, 0)
    data, out = sparse_roundtrip(wm, mask=mask, nm=[(1, 2), (2, 4)])
    assert np.array_equal(out, wm) and mask.mean() == 0.25
    bad = mask.copy()
    bad[0, :8] = True
    with pytest.raises(EncodeError, match="hierarchical"):
        codec.encode({"w": w}, mode="sparse", mask=bad, nm=[(1, 2), (2, 4)])
    hybrid = np.ones((12, 16), bool)
    hybrid[4:8] = M.prune_nm(rng.standard_normal((4, 16)), 2, 4)
    wm = np.where(hybrid, rng.standard_normal((12, 16)), 0).astype(np.float32)
    data, out = sparse_roundtrip(wm, mask=hybrid, nm=(2, 4), hybrid=4)
    assert np.array_equal(out, wm)
    hybrid[0, 0] = False
    with pytest.raises(EncodeError, match="row 0 is neither dense nor 2:4"):
        codec.encode({"w": wm}, mode="sparse", mask=hybrid, nm=(2, 4), hybrid=4)


def test_2_4_tensor_core_layout_matches_numpy():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 32)).astype(np.float32)
    mask = M.prune_nm(w, 2, 4)
    data = codec.encode({"w": np.where(mask, w, 0)}, mode="sparse", mask=mask, nm=(2, 4))
    with codec.open(data) as r:
        values, meta = r.get("w", format="nm")
    # direct construction: per row, kept values in order; 2-bit in-group positions, 8 per uint16, LSB first
    exp_values = np.stack([w[r][mask[r]] for r in range(4)])
    exp_meta = np.zeros((4, 2), np.uint16)
    for r in range(4):
        positions = [k % 4 for k in range(32) if mask[r, k]]
        for j, p in enumerate(positions):
            exp_meta[r, j // 8] |= p << (2 * (j % 8))
    assert np.array_equal(values, exp_values) and np.array_equal(meta, exp_meta)
    with pytest.raises(ValueError, match="2:4 mask along the last axis"):
        codec.open(codec.encode({"w": w}, mode="sparse", mask=mask)).get("w", format="nm")
    with pytest.raises(ValueError, match="format='bitmap' is not offered by layer 'w' \\(raw\\)"):
        codec.open(codec.encode({"w": w}, mode="raw")).get("w", format="bitmap")


def test_levels_of_quantized_values():
    w = np.random.default_rng(4).standard_normal((8, 8)).astype(np.float32)
    mask = M.prune_magnitude(w, 0.5)
    data = codec.encode({"w": np.where(mask, w, 0)}, mode="sparse", mask=mask, values_mode="quantized", bits=6)
    with codec.open(data) as r:
        got_mask, (levels, params) = r.get("w", levels=True)
    assert np.array_equal(got_mask, mask) and levels.shape == (mask.sum(),) and params.bits == 6


def test_pruning_helpers():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((10, 20))
    m = M.prune_magnitude(w, 0.9)
    assert m.sum() == 20 and np.abs(w[m]).min() >= np.abs(w[~m]).max()
    m = M.prune_magnitude(w, 0.5, per_row=True)
    assert (m.sum(axis=1) == 10).all()
    m = M.prune_nm(w, 2, 4, axis=1)
    assert (m.reshape(10, 5, 4).sum(axis=2) == 2).all()
    with pytest.raises(EncodeError, match="not a multiple of M=3"):
        M.prune_nm(w, 1, 3, axis=1)
    with pytest.raises(EncodeError, match="1 <= N < M <= 16"):
        M.patterns(4, 4)


def test_row_density_differences_cost_less_than_global_entropy():
    rng = np.random.default_rng(6)
    density = rng.uniform(0.02, 0.6, size=(256, 1))
    mask = rng.random((256, 1024)) < density
    block = MM.encode_bitmap(mask)
    p = mask.mean()
    h = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    assert len(block) * 8 / mask.size < 0.95 * h


def _read_block(data, shape):
    r = codec._backend.BitReader(data, base_offset=100)
    r.path = "layers[0].unit_payload.mask_block"
    return MM.read_mask_block(memoryview(data), r, shape)


@given(st.binary(max_size=80), st.sampled_from([(4, 8), (16,), (2, 3, 4)]))
def test_random_mask_blocks_raise_only_codec_errors(data, shape):
    try:
        kind, mask = _read_block(data, shape)
    except CodecError as exc:
        assert str(exc).startswith("layers[0].unit_payload.mask_block")
        return
    assert mask.shape == shape and mask.dtype == np.bool_


def test_malformed_sparse_payloads():
    w = np.random.default_rng(7).standard_normal((8, 16)).astype(np.float32)
    mask = M.prune_nm(w, 2, 4)
    data = bytearray(codec.encode({"w": np.where(mask, w, 0)}, mode="sparse", mask=mask, nm=(2, 4)))
    with codec.open(bytes(data)) as r:
        h = r.header("w")
    from codec.modes import get_mode

    mode = get_mode("sparse")
    payload = bytes(data[h.payload_offset:h.payload_offset + h.payload_size])
    bad_count = (65).to_bytes(8, "little") + payload[8:]
    with pytest.raises(FormatError, match="sp_kept_count says 65"):
        mode.decode(h, bad_count, verify=False)
    with pytest.raises(CodecError):
        mode.decode(h, payload[:20], verify=False)
    wrong_kind = payload[:12] + b"\x09" + payload[13:]
    with pytest.raises(FormatError) as info:
        mode.decode(h, wrong_kind, verify=False)
    assert str(info.value) == f"layers[0].unit_payload.mask_block.sp_mask_kind at byte {h.payload_offset + 12}: " \
                              "unknown sp_mask_kind 9"
    too_many = (10**6).to_bytes(8, "little") + payload[8:]
    with pytest.raises(FormatError, match="sp_kept_count 1000000 exceeds the layer's 128 elements"):
        mode.decode(h, too_many, verify=False)


def test_damaged_nm_stream_names_the_element_and_its_file_offset():
    """The same full message in both backends (CI runs this file with each)."""
    w = np.random.default_rng(8).standard_normal((8, 16)).astype(np.float32)
    mask = M.prune_nm(w, 2, 4)
    data = codec.encode({"w": np.where(mask, w, 0)}, mode="sparse", mask=mask, nm=(2, 4))
    with codec.open(data) as r:
        h = r.header("w")
    payload = bytearray(data[h.payload_offset:h.payload_offset + h.payload_size])
    stream = 12 + 4  # sp_kept_count, sp_mask_size, then sp_mask_kind, sp_n, sp_m, sp_axis
    payload[stream:stream + 8] = (1).to_bytes(8, "little")  # us_state below C * 2^16
    from codec.modes import get_mode

    with pytest.raises(FormatError) as info:
        get_mode("sparse").decode(h, bytes(payload), verify=False)
    assert str(info.value) == f"layers[0].unit_payload.mask_block.us_state at byte {h.payload_offset + stream}: " \
                              "the initial state is outside [C * 2^16, C * 2^32)"


@given(st.integers(0, 6), st.integers(0, 13), st.integers(0, 2**32 - 1))
def test_expansion_kernels_match_reference(rows, cols, seed):
    rng = np.random.default_rng(seed)
    ncols = (cols + 3) // 4
    levels = rng.integers(-9, 9, (rows, ncols)).astype(np.int32)
    nib = levels + 8
    valid = (nib >= 0).all() and (nib <= 15).all()
    status, _, out = check("masks", "nibbles_to_mask", levels, rows, cols)
    if valid:
        bits = np.unpackbits(nib.astype(np.uint8).reshape(-1, 1), axis=1)[:, 4:].reshape(rows, ncols * 4)
        if bits[:, cols:].any():
            assert status != 0
        else:
            assert status == 0 and np.array_equal(out, bits[:, :cols].astype(bool))
    else:
        assert status != 0
    table = M.patterns(2, 4)
    idx = rng.integers(-1, 7, 10)
    status, _, out = check("masks", "expand_patterns", idx, table, 4)
    if ((idx < 0) | (idx >= 6)).any():
        assert status != 0
    else:
        assert np.array_equal(out, ((table[idx][:, None] >> np.arange(4)) & 1).astype(bool))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_prune_nm_is_the_stable_descending_sort(data):
    # the reference: per group, argsort of -|w| (stable; NaN last), keep the first N
    m = data.draw(st.sampled_from([2, 4, 8, 16]))
    n = data.draw(st.integers(1, m - 1))
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    shape[axis] = m * data.draw(st.integers(1, 3))
    w = np.array(data.draw(st.lists(st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, float("nan"), 0.3, -7.0]),
                                    min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
                 np.float32).reshape(shape)
    a = np.abs(w.astype(np.float64))
    groups = np.moveaxis(a, axis, -1).reshape(-1, m)
    order = np.argsort(-groups, axis=1, kind="stable")[:, :n]
    kept = np.zeros(groups.shape, bool)
    np.put_along_axis(kept, order, True, axis=1)
    expected = np.moveaxis(kept.reshape(np.moveaxis(a, axis, -1).shape), -1, axis)
    assert np.array_equal(M.prune_nm(w, n, m, axis=axis), expected)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_prune_magnitude_is_the_stable_descending_sort(data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.float16]))
    values = data.draw(st.lists(st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, float("nan"), 0.3, -7.0, 1e-30,
                                                 float("inf")]) | st.floats(-10, 10, width=16),
                                min_size=0, max_size=60))
    w = np.array(values, dtype=dtype).reshape(-1)
    fraction = data.draw(st.floats(0, 1))
    per_row = data.draw(st.booleans()) and w.size % 3 == 0 and w.size > 0
    if per_row:
        w = w.reshape(3, -1)
    a = np.abs(w.astype(np.float64))
    rows = a.reshape(a.shape[0], -1) if per_row else a.reshape(1, -1)
    keep = rows.shape[1] - int(round(fraction * rows.shape[1]))
    expected = np.zeros(rows.shape, bool)
    if keep > 0:
        np.put_along_axis(expected, np.argsort(-rows, axis=1, kind="stable")[:, :keep], True, axis=1)
    for piece in (None, 3):
        if piece:
            import codec.modes.masks as MMod
            old, MMod.PIECE_ELEMENTS = MMod.PIECE_ELEMENTS, piece
        try:
            got = M.prune_magnitude(w, fraction, per_row=per_row)
        finally:
            if piece:
                MMod.PIECE_ELEMENTS = old
        assert np.array_equal(got, expected.reshape(w.shape))
