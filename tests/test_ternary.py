"""Ternary coding (spec 6.6): the exact flag-plus-nonzero scheme, base-3, entropy, mode selection."""


import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec
from codec import ternary as T
from codec.errors import CodecError, EncodeError, FormatError

try:
    from codec._fast import _ternary as F
except ImportError:
    F = None

needs_fast = pytest.mark.skipif(F is None, reason="compiled core not built")

EXAMPLE = np.array([0, 0, 1, 0, 0, 0, -1, 1, 0, 0, 0, 0, 0, 1, 0, 0], dtype=np.int8)


def test_worked_example_bits():
    payload = T.flag_encode(EXAMPLE, levels=0)
    assert payload.hex() == "00525800"  # levels 0, flags 01010010, codes 010 110 000 (+ zero padding)
    assert T._items(EXAMPLE).tolist() == [0b0000, 0b0100, 0b0000, 0b1101, 0b0000, 0b0000, 0b0001, 0b0000]
    assert np.array_equal(T.flag_decode(payload, 16), EXAMPLE)
    if F is not None:
        assert F.flag_encode(EXAMPLE, 0) == payload
        assert np.array_equal(F.flag_decode(payload, 16), EXAMPLE)


def test_nonzero_code_table():
    assert T.NONZERO_ITEMS == (0b0001, 0b0011, 0b0100, 0b0101, 0b0111, 0b1100, 0b1101, 0b1111)
    for code, item in enumerate(T.NONZERO_ITEMS):
        t = T._TRITS_OF_ITEM[item]
        assert T._items(t).tolist() == [item]


@st.composite
def trit_arrays(draw):
    n = draw(st.sampled_from([0, 1, 2, 3, 7, 8, 15, 16, 17, 100, 1001]) | st.integers(0, 300))
    z = draw(st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < z, 0, rng.choice([-1, 1], n)).astype(np.int8)


@given(trit_arrays(), st.sampled_from([None, 0, 1, 2]))
def test_flag_roundtrip_and_twins(t, levels):
    try:
        payload = T.flag_encode(t, levels)
    except EncodeError:
        assert levels and t.size <= 4 ** levels  # not enough flags for that many levels
        return
    assert np.array_equal(T.flag_decode(payload, t.size), t)
    if F is not None:
        assert F.flag_encode(t, levels) == payload
        assert np.array_equal(F.flag_decode(payload, t.size), t)


@given(trit_arrays())
def test_base3_roundtrip_and_twins(t):
    payload = T.base3_encode(t)
    assert len(payload) == (t.size + 4) // 5
    assert np.array_equal(T.base3_decode(payload, t.size), t)
    if F is not None:
        assert F.base3_encode(t) == payload
        assert np.array_equal(F.base3_decode(payload, t.size), t)


@given(trit_arrays(), st.integers(1, 5))
def test_every_scheme_roundtrips_and_auto_is_never_larger(t, rows):
    if t.size % rows:
        rows = 1
    cols = t.size // rows if rows else 0
    sizes = {}
    for scheme in ("flag", "base3", "entropy", "auto"):
        payload = T.encode_payload(t, rows, cols, scheme)
        assert np.array_equal(T.decode_payload(payload, rows, cols, path="x", base_offset=0), t)
        sizes[scheme] = len(payload)
    assert sizes["auto"] == min(sizes["flag"], sizes["base3"], sizes["entropy"])


def test_second_stage_helps_sparse_trits():
    t = np.zeros(100_000, np.int8)
    t[::97] = 1
    one = T.flag_encode(t, levels=0)
    best = T.flag_encode(t)
    assert best[0] >= 1 and len(best) < len(one) / 3


@given(st.binary(max_size=60), st.integers(0, 200))
def test_random_payloads_raise_only_codec_errors(data, n):
    for fn in (T.flag_decode, T.base3_decode):
        try:
            out = fn(data, n)
        except CodecError:
            continue
        assert out.shape == (n,)
        if F is not None:
            fast = getattr(F, fn.__name__)(data, n)
            assert fast is not None and np.array_equal(fast, out)


def test_malformed_flag_payloads():
    t = np.array([1, 0, -1, -1, 0, 0, 1, 1] * 20, np.int8)
    good = T.flag_encode(t, levels=0)
    with pytest.raises(FormatError, match="tn_codes runs past the payload"):
        T.flag_decode(good[:-2], t.size)  # truncated nonzero string
    with pytest.raises(FormatError, match="bytes after the codes"):
        T.flag_decode(good + b"\x00", t.size)
    # flags claiming more non-zero items than there are codes
    bad = bytearray(good)
    bad[1] = 0xFF
    bad[2] = 0xFF
    with pytest.raises(FormatError):
        T.flag_decode(bytes(bad), t.size)
    # an all-zero group marked non-zero in the second stage
    sparse = np.zeros(64, np.int8)
    sparse[5] = 1
    two = bytearray(T.flag_encode(sparse, levels=1))
    two[2] = 0x00  # the level-1 item nibble -> 0000
    with pytest.raises(FormatError, match="all-zero item marked non-zero"):
        T.flag_decode(bytes(two), 64)
    with pytest.raises(FormatError, match="tn_flag_levels 200"):
        T.flag_decode(b"\xc8", 4)
    with pytest.raises(FormatError, match="padding trit"):
        T.flag_decode(T.flag_encode(np.array([1, 1], np.int8), levels=0), 1)


def test_malformed_base3():
    with pytest.raises(FormatError, match="exceeds 242"):
        T.base3_decode(b"\xf3", 5)
    with pytest.raises(FormatError, match="padding trits"):
        T.base3_decode(bytes([0]), 3)  # digits 0 = trit -1 in the padding
    with pytest.raises(FormatError, match="2 bytes for 3 trits"):
        T.base3_decode(b"\x79\x79", 3)


# ---------------------------------------------------------------------------------------------
# the coding mode
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("scheme", ["auto", "flag", "base3", "entropy"])
def test_mode_roundtrip(dtype, axis, scheme):
    rng = np.random.default_rng(0)
    w = T.ternarize(rng.standard_normal((20, 13)).astype(np.float32), axis=axis).astype(dtype)
    data = codec.encode({"w": w}, mode="ternary", scheme=scheme, axis=axis)
    with codec.open(data) as r:
        out = r.get("w")
        trits, alphas = r.get("w", levels=True)
        chosen = T.payload_scheme(r.payload("w"))
    assert out.dtype == np.dtype(dtype)
    assert np.array_equal(out.astype(np.float64), w.astype(np.float64))
    assert trits.dtype == np.int8 and set(np.unique(trits).tolist()) <= {-1, 0, 1}
    assert alphas.size == (1 if axis is None else w.shape[axis])
    if scheme != "auto":
        assert chosen == scheme


def test_integer_trits_and_empty():
    t = np.array([[1, 0, -1], [0, 0, 1]], np.int8)
    assert np.array_equal(codec.decode(codec.encode({"t": t}, mode="ternary"))["t"], t)
    e = np.zeros((0, 4), np.float32)
    assert codec.decode(codec.encode({"e": e}, mode="ternary"))["e"].shape == (0, 4)
    s = np.float32(0.5) * np.ones((), np.float32)
    assert codec.decode(codec.encode({"s": s}, mode="ternary"))["s"] == 0.5


def test_ternarize_twn():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((8, 100))
    tw = T.ternarize(w)
    delta = 0.7 * np.abs(w).mean()
    support = np.abs(w) > delta
    assert np.array_equal(tw != 0, support)
    assert np.allclose(np.abs(tw[support]), np.abs(w[support]).mean())
    per_row = T.ternarize(w, axis=0)
    trits, alphas = T.split_ternary(per_row, axis=0)
    assert alphas.shape == (8,) and np.array_equal(trits * alphas[:, None], per_row)


def test_not_ternary_is_an_error():
    with pytest.raises(EncodeError, match="values are not ternary"):
        codec.encode({"w": np.array([0.5, -0.5, 0.25])}, mode="ternary")
    with pytest.raises(EncodeError, match="channel 1"):
        T.split_ternary(np.array([[1.0, -1.0], [2.0, 3.0]]), axis=0)
    with pytest.raises(EncodeError, match="only -1, 0 and 1"):
        codec.encode({"w": np.array([2, 0], np.int8)}, mode="ternary")
    with pytest.raises(EncodeError, match="scheme must be"):
        codec.encode({"w": np.zeros(3)}, mode="ternary", scheme="huffman")


def test_ternary_layer_in_dump_and_checksums(tmp_path):
    p = tmp_path / "t.nnc"
    w = T.ternarize(np.random.default_rng(2).standard_normal((64, 64)).astype(np.float32))
    codec.save_file({"w": w}, p, mode="ternary")
    with codec.open(p) as r:
        r.verify()
        assert r.header("w").mode_name == "ternary"


def test_worked_example_golden_vector():
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "spec", "vectors", "006-ternary.nnc")
    with codec.open(path) as r:
        assert bytes(r.payload("example")).hex() == "0000525800"  # tn_scheme 0, then spec 6.6.2's bytes
        assert np.array_equal(r.get("example"), EXAMPLE)
