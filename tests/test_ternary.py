"""Ternary coding (spec 6.6): the exact flag-plus-nonzero scheme, base-3, entropy, mode selection."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec
from codec import ternary as T
from codec.errors import EncodeError, FormatError, TruncatedError
from codec.kernels import ternary as K
from codec.modes import ternary as M
from tests.twins import check

EXAMPLE = np.array([0, 0, 1, 0, 0, 0, -1, 1, 0, 0, 0, 0, 0, 1, 0, 0], dtype=np.int8)


def decoded(status_at_value):
    status, _, value = status_at_value
    assert status == 0, K.ERRORS[status]
    return value


def test_worked_example_bits():
    payload = check("ternary", "flag_encode", EXAMPLE, 0)
    assert payload.hex() == "00525800"  # levels 0, flags 01010010, codes 010 110 000 (+ zero padding)
    assert K._items(EXAMPLE).tolist() == [0b0000, 0b0100, 0b0000, 0b1101, 0b0000, 0b0000, 0b0001, 0b0000]
    assert np.array_equal(decoded(check("ternary", "flag_decode", payload, 16)), EXAMPLE)


def test_nonzero_code_table():
    assert K.NONZERO_ITEMS == (0b0001, 0b0011, 0b0100, 0b0101, 0b0111, 0b1100, 0b1101, 0b1111)
    for item in K.NONZERO_ITEMS:
        assert K._items(K.TRITS_OF_ITEM[item]).tolist() == [item]


@st.composite
def trit_arrays(draw):
    n = draw(st.sampled_from([0, 1, 2, 3, 7, 8, 15, 16, 17, 100, 1001]) | st.integers(0, 300))
    z = draw(st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < z, 0, rng.choice([-1, 1], n)).astype(np.int8)


@given(trit_arrays(), st.sampled_from([None, 0, 1, 2]))
def test_flag_roundtrip_and_twins(t, levels):
    payload = check("ternary", "flag_encode", t, levels)
    assert np.array_equal(decoded(check("ternary", "flag_decode", payload, t.size)), t)


@given(trit_arrays())
def test_base3_roundtrip_and_twins(t):
    payload = check("ternary", "base3_encode", t)
    assert len(payload) == (t.size + 4) // 5
    assert np.array_equal(decoded(check("ternary", "base3_decode", payload, t.size)), t)


@given(trit_arrays(), st.integers(1, 5))
def test_every_scheme_roundtrips_and_auto_is_never_larger(t, rows):
    if t.size % rows:
        rows = 1
    cols = t.size // rows if rows else 0
    sizes = {}
    for scheme in ("flag", "base3", "entropy", "auto"):
        payload = M.encode_payload(t, rows, cols, scheme)
        assert np.array_equal(M.decode_payload(payload, rows, cols, path="x", base_offset=0), t)
        sizes[scheme] = len(payload)
    assert sizes["auto"] == min(sizes["flag"], sizes["base3"], sizes["entropy"])


def test_second_stage_helps_sparse_trits():
    t = np.zeros(100_000, np.int8)
    t[::97] = 1
    one = check("ternary", "flag_encode", t, 0)
    best = check("ternary", "flag_encode", t)
    assert best[0] >= 1 and len(best) < len(one) / 3


@given(st.binary(max_size=60), st.integers(0, 200))
def test_random_payloads_give_a_status_or_trits_in_both_kernels(data, n):
    for name in ("flag_decode", "base3_decode"):
        status, at, value = check("ternary", name, data, n)
        if status == 0:
            assert value.shape == (n,) and value.dtype == np.int8
        else:
            assert status in K.ERRORS and 0 <= at <= len(data)


def _status(payload, n, name="flag_decode"):
    status, at, detail = check("ternary", name, payload, n)
    return K.ERRORS[status][1].format(detail), K.ERRORS[status][2], at


def test_malformed_flag_payloads():
    t = np.array([1, 0, -1, -1, 0, 0, 1, 1] * 20, np.int8)
    good = check("ternary", "flag_encode", t, 0)
    assert _status(good[:-2], t.size) == ("tn_codes", "the code string runs past the payload", 11)
    assert _status(good + b"\x00", t.size) == ("tn_codes", "bytes follow tn_codes", len(good))
    bad = bytearray(good)
    bad[1] = bad[2] = 0xFF  # flags claiming more non-zero items than there are codes
    assert _status(bytes(bad), t.size)[1] == "the code string runs past the payload"
    sparse = np.zeros(64, np.int8)
    sparse[5] = 1
    two = bytearray(check("ternary", "flag_encode", sparse, 1))
    two[2] = 0x00  # the level-1 item nibble -> 0000
    assert _status(bytes(two), 64) == ("tn_flag_items[1]", "an item of a set flag is 0000", 2)
    assert _status(b"\xc8", 4) == ("tn_flag_levels", "tn_flag_levels exceeds 15", 0)
    assert _status(check("ternary", "flag_encode", np.array([1, 1], np.int8), 0), 1) == \
        ("tn_codes", "the padding trit is not zero", 2)


def test_malformed_base3():
    assert _status(b"\xf3", 5, "base3_decode") == ("tn_base3_digits", "a byte exceeds 242", 0)
    assert _status(bytes([0]), 3, "base3_decode") == ("tn_base3_digits", "a padding trit is not zero", 0)
    assert _status(b"\x79\x79", 3, "base3_decode")[1] == "the payload is not ceil(N / 5) bytes"


def _layer_payload(data, name="w"):
    with codec.open(data) as r:
        h = r.header(name)
    return h, bytearray(data)


def _reseal(data, h):
    """Recompute the payload CRC of layer header ``h`` after a change to its payload."""
    from codec import _backend

    payload = bytes(data[h.payload_offset:h.payload_offset + h.payload_size])
    unit = h.unit_offset
    crc_at = unit + 16
    data[crc_at:crc_at + 4] = _backend.crc32c(payload).to_bytes(4, "little")
    end = unit + h.unit_header_size - 4
    data[end:end + 4] = _backend.crc32c(bytes(data[unit:end])).to_bytes(4, "little")
    return bytes(data)


def test_damaged_payloads_name_the_element_and_its_file_offset():
    """The same full message in both backends (CI runs this file with each)."""
    t = np.array([1, 0, -1, -1, 0, 0, 1, 1] * 20, np.int8)
    data = codec.encode({"w": t}, mode="ternary", scheme="flag")
    h, raw = _layer_payload(data)
    cut = bytearray(raw)
    cut[h.payload_offset + 1] = 0xFF  # tn_flag_levels 255
    with pytest.raises(FormatError) as info:
        codec.decode(_reseal(cut, h))
    assert str(info.value) == f"layers[0].unit_payload.tn_flag_levels at byte {h.payload_offset + 1}: " \
                              "tn_flag_levels exceeds 15"
    flags = bytearray(raw)
    flags[h.payload_offset + 2] = 0xFF  # more set flags than codes
    with pytest.raises(TruncatedError) as info:
        codec.decode(_reseal(flags, h))
    assert str(info.value) == f"layers[0].unit_payload.tn_codes at byte {h.payload_offset + 2 + 10}: " \
                              "the code string runs past the payload"
    data = codec.encode({"w": t.astype(np.float32)}, mode="ternary", scheme="base3")
    h, raw = _layer_payload(data)
    raw[h.payload_offset + 3] = 250
    with pytest.raises(FormatError) as info:
        codec.decode(_reseal(raw, h))
    assert str(info.value) == f"layers[0].unit_payload.tn_base3_digits at byte {h.payload_offset + 3}: " \
                              "a byte exceeds 242"


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
        chosen = M.SCHEMES[r.payload("w")[0]]
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
    with pytest.raises(EncodeError, match="parameter 'scheme' must be one of 'auto', 'flag', 'base3', 'entropy'"):
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


# ---------------------------------------------------------------------------------------------
# spec 6.6 rules (fixed together with the spec)
# ---------------------------------------------------------------------------------------------
def test_bool_tensors_are_not_ternary():
    with pytest.raises(EncodeError, match="mode 'ternary' codes float or integer tensors, not bool"):
        codec.encode({"b": np.array([True, False])}, mode="ternary")


def test_zeros_decode_as_positive_zero_whatever_the_alpha():
    from tests.helpers import assemble, layer_body

    params = bytes([255]) + (1).to_bytes(4, "little") + np.float64(-0.5).tobytes()
    payload = M.encode_payload(np.array([1, 0, -1, 0], np.int8), 1, 4, "base3")
    body = layer_body(shape=(4,), dtype=2, mode=5, mode_params=params)
    out = codec.decode(assemble([(1, body, payload, "w")]))["w"]
    assert out.tolist() == [-0.5, 0.0, 0.5, 0.0] and not np.signbit(out[[1, 3]]).any()


@pytest.mark.parametrize("alpha", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("code", [1, 2])
def test_zeros_stay_positive_zero_with_a_non_finite_alpha(alpha, code):
    # inf * 0 is NaN (and a numpy warning) if the zeros are multiplied: they are +0.0 (spec 6.6)
    import warnings

    from tests.helpers import assemble, layer_body

    params = bytes([255]) + (1).to_bytes(4, "little") + np.float64(alpha).tobytes()
    payload = M.encode_payload(np.array([1, 0, -1, 0], np.int8), 1, 4, "base3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = codec.decode(assemble([(1, layer_body(shape=(4,), dtype=code, mode=5, mode_params=params), payload,
                                      "w")]))["w"]
    assert out[[1, 3]].tolist() == [0.0, 0.0] and not np.signbit(out[[1, 3]]).any()
    assert np.array_equal(out[[0, 2]], np.array([alpha, -alpha], out.dtype), equal_nan=True)


@pytest.mark.parametrize("dtype, code", [(np.float16, 3), (ml_dtypes.bfloat16, 4)])
def test_alpha_is_rounded_once_to_binary32_then_to_the_dtype(dtype, code):
    """spec 6.6: t * alpha in binary64, rounded to binary32, then converted as in section 8.4."""
    from tests.helpers import assemble, layer_body

    # 1 + 2^-11 + 2^-40: rounding to binary32 first gives 1 + 2^-11 (a float16 tie, to even: 1.0);
    # rounding binary64 directly to float16 would give 1 + 2^-10. Same for bfloat16 at 2^-8.
    step = 2.0 ** -11 if dtype is np.float16 else 2.0 ** -8
    alpha = 1 + step + 2.0 ** -40
    params = bytes([255]) + (1).to_bytes(4, "little") + np.float64(alpha).tobytes()
    payload = M.encode_payload(np.array([1, -1], np.int8), 1, 2, "base3")
    out = codec.decode(assemble([(1, layer_body(shape=(2,), dtype=code, mode=5, mode_params=params), payload, "w")]))
    expected = np.array([alpha, -alpha]).astype(np.float32).astype(dtype)
    assert out["w"].tobytes() == expected.tobytes() and float(out["w"][0]) == 1.0


def test_integer_layers_reject_what_their_dtype_cannot_hold():
    from tests.helpers import assemble, layer_body

    one = bytes([255]) + (1).to_bytes(4, "little") + np.float64(1.0).tobytes()
    payload = M.encode_payload(np.array([1, -1], np.int8), 1, 2, "base3")
    with pytest.raises(FormatError, match="a trit -1 in a uint8 layer"):
        codec.decode(assemble([(1, layer_body(shape=(2,), dtype=9, mode=5, mode_params=one), payload, "w")]))
    for dtype in (13,):  # bool
        with pytest.raises(FormatError, match="mode ternary cannot hold dtype bool"):
            codec.decode(assemble([(1, layer_body(shape=(2,), dtype=dtype, mode=5, mode_params=one), payload, "w")]))
    two = bytes([255]) + (1).to_bytes(4, "little") + np.float64(2.0).tobytes()
    with pytest.raises(FormatError, match="an integer ternary layer has one alpha of 1.0"):
        codec.decode(assemble([(1, layer_body(shape=(2,), dtype=5, mode=5, mode_params=two), payload, "w")]))


@pytest.mark.parametrize("level", [2, -2, 127])
def test_entropy_coded_trits_outside_the_trits_are_refused(level):
    # valid level coding of a value that is not a trit: an error, never a silent +-2 alpha
    from codec import levels as L

    good = np.array([-1, 0, 1, 1, 0, -1], np.int64)
    ok = bytes([M.TernaryScheme.ENTROPY]) + L.encode_levels(good, 2, 3)
    assert np.array_equal(M.decode_payload(ok, 2, 3, path="w", base_offset=0), good)
    bad = good.copy()
    bad[4] = level
    payload = bytes([M.TernaryScheme.ENTROPY]) + L.encode_levels(bad, 2, 3)
    with pytest.raises(FormatError, match="outside -1..1") as info:
        M.decode_payload(payload, 2, 3, path="w", base_offset=0)
    assert info.value.path == "w.lc_rans_words"
