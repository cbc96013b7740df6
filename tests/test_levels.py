"""Level coder (spec 7): round trips on arbitrary integer sequences, pure == fast, tables, malformed payloads."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from codec import levels
from codec import rans as pure_rans
from codec.errors import CodecError, FormatError

try:
    from codec._fast import _rans as fast_rans
except ImportError:
    fast_rans = None

int64s = st.integers(-(2**63), 2**63 - 1)


@st.composite
def level_arrays(draw):
    rows = draw(st.integers(0, 12))
    cols = draw(st.integers(0, 40))
    kind = draw(st.sampled_from(["small", "laplace", "huge", "zeros", "alternating", "any"]))
    n = rows * cols
    if kind == "small":
        q = draw(hnp.arrays(np.int64, n, elements=st.integers(-3, 3)))
    elif kind == "laplace":
        seed = draw(st.integers(0, 2**32 - 1))
        scale = np.random.default_rng(seed).uniform(0.1, 50, size=(rows, 1))
        q = np.rint(np.random.default_rng(seed).laplace(0, 1, (rows, cols)) * scale).astype(np.int64).reshape(-1)
    elif kind == "huge":
        q = draw(hnp.arrays(np.int64, n, elements=int64s))
    elif kind == "zeros":
        q = np.zeros(n, np.int64)
    elif kind == "alternating":
        q = np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int64) * draw(st.integers(1, 1000))
    else:
        q = draw(hnp.arrays(np.int64, n, elements=st.integers(-300, 300)))
    return q, rows, cols


@given(level_arrays(), st.sampled_from([1, 2, 16]))
def test_roundtrip(case, max_classes):
    q, rows, cols = case
    payload = levels.encode_levels(q, rows, cols, max_classes=max_classes)
    assert np.array_equal(levels.decode_levels(payload, rows, cols), q)


@pytest.mark.parametrize("q", [np.zeros(0, np.int64), np.array([5]), np.array([-(2**63)]), np.array([2**63 - 1]),
                               np.zeros(1000, np.int64), np.array([1, -1] * 500)])
def test_edge_sequences(q):
    payload = levels.encode_levels(q, 1, q.size)
    assert np.array_equal(levels.decode_levels(payload, 1, q.size), q)


def test_all_zero_layer_costs_only_the_header_and_states():
    payload = levels.encode_levels(np.zeros(100_000, np.int64), 100, 1000)
    assert len(payload) <= 8 * 4 + 8


@pytest.mark.skipif(fast_rans is None, reason="compiled core not built")
@given(level_arrays())
def test_pure_and_fast_kernels_agree(case):
    q, rows, cols = case
    n = q.size
    E = int(min(127, np.abs(q).max())) if n and q.min() > -(2**63) else 127
    escaped = (q > E) | (q < -E)  # not np.abs: abs(-2^63) overflows
    sym = np.where(escaped, 2 * E + 1, q + E).astype(np.uint8) if n else np.zeros(0, np.uint8)
    row_class = (np.arange(rows) % 2).astype(np.uint8)
    A = 2 * E + 2
    counts = np.stack([np.bincount(sym.reshape(rows, cols)[row_class == k].ravel(), minlength=A)
                       if rows and cols else np.zeros(A, np.int64) for k in range(2)])
    freq = np.array([levels.freqs_from_codes(levels.codes_from_counts(c)) if c.sum() else [PROB // A] * A
                     for c, PROB in zip(counts, (levels.PROB_SCALE,) * 2)], dtype=np.uint32)
    freq[:, 0] += levels.PROB_SCALE - freq.sum(axis=1)
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, axis=1)[:, :-1]
    a = pure_rans.encode(sym, row_class, cols, freq, cum)
    b = fast_rans.encode(sym, row_class, cols, freq, cum)
    assert a == b
    fc, sy = levels._slot_tables(freq)
    escapes = q[escaped].tolist()
    outs = []
    for kernel in (pure_rans, fast_rans):
        out = np.empty(n, np.int64)
        outs.append((kernel.decode(a[2], a[1], fc, sy, row_class, rows, cols, E, escapes, 0, out), out))
    assert outs[0][0] == outs[1][0] == 0
    assert np.array_equal(outs[0][1], q) and np.array_equal(outs[1][1], q)


@pytest.mark.skipif(fast_rans is None, reason="compiled core not built")
@given(level_arrays(), st.binary(max_size=64), st.integers(0, 10**6))
def test_pure_and_fast_agree_on_damaged_words(case, junk, cut):
    q, rows, cols = case
    payload = levels.encode_levels(q, rows, cols)
    # decode the same damaged payload with both kernels: same error, or same output
    results = []
    import codec._backend as backend

    for kernel in (pure_rans, fast_rans):
        saved = backend.rans
        backend.rans = kernel
        try:
            damaged = payload[: len(payload) - (cut % (len(payload) + 1))] + junk
            try:
                results.append(("ok", levels.decode_levels(damaged, rows, cols).tolist()))
            except CodecError as exc:
                results.append(("error", type(exc).__name__, str(exc)))
        finally:
            backend.rans = saved
    assert results[0] == results[1]


def test_freqs_from_codes_sums_to_scale_and_is_deterministic():
    rng = np.random.default_rng(0)
    for _ in range(200):
        codes = [int(c) for c in rng.integers(0, 65, size=rng.integers(1, 257))]
        if not any(codes):
            codes[0] = 1
        f = levels.freqs_from_codes(codes)
        assert sum(f) == levels.PROB_SCALE
        assert all((fi > 0) == (c > 0) for fi, c in zip(f, codes))


def test_tables_cost_little():
    counts = np.bincount(np.clip(np.rint(np.random.default_rng(1).laplace(0, 20, 100000)).astype(int), -127, 127) + 127, minlength=256)
    codes = levels.codes_from_counts(counts)
    exact = -(counts[counts > 0] * np.log2(counts[counts > 0] / counts.sum())).sum()
    coded = levels._coding_bits(counts, levels.freqs_from_codes(codes))
    assert coded / exact < 1.002  # quantized log tables lose < 0.2%
    assert levels._table_bits(codes) < 8 * 200


def test_row_classes_beat_one_table_on_rows_of_different_scale():
    rng = np.random.default_rng(2)
    scale = np.exp(rng.normal(0, 0.6, size=(256, 1)))
    q = np.rint(rng.laplace(0, 4, (256, 512)) * scale).astype(np.int64)
    one = len(levels.encode_levels(q, 256, 512, max_classes=1))
    many = len(levels.encode_levels(q, 256, 512))
    h0 = levels.order0_entropy_bits(q) / 8
    assert many < one
    assert many < 0.99 * h0  # below the layer's order-0 entropy


@pytest.mark.parametrize("mutate, match", [
    (lambda p: p[:-2], "rANS"),
    (lambda p: p + b"\x00\x00", "rANS"),
    (lambda p: p + b"\x00", "odd number of bytes"),
    (lambda p: b"\xff" + p[1:], None),
])
def test_malformed_payloads(mutate, match):
    q = np.rint(np.random.default_rng(3).laplace(0, 5, 2000)).astype(np.int64)
    payload = levels.encode_levels(q, 20, 100)
    with pytest.raises(CodecError, match=match):
        levels.decode_levels(mutate(payload), 20, 100)


@given(st.binary(max_size=200), st.integers(0, 30), st.integers(0, 30))
def test_random_payloads_raise_only_codec_errors(data, rows, cols):
    try:
        out = levels.decode_levels(data, rows, cols)
    except CodecError:
        return
    assert out.shape == (rows * cols,)


def test_escape_limit_checked():
    from codec import _backend

    w = _backend.BitWriter()
    w.ue(0, 200)
    w.u(4, 0)
    w.byte_alignment()
    with pytest.raises(FormatError, match="lc_escape_limit 200 exceeds 127"):
        levels.decode_levels(w.getvalue(), 1, 1)


@pytest.mark.skipif(fast_rans is None, reason="compiled core not built")
@given(level_arrays())
def test_symbol_mapping_twins_agree(case):
    q, rows, cols = case
    a = pure_rans.symbols(q, rows, cols)
    b = fast_rans.symbols(q, rows, cols)
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])


@pytest.mark.skipif(fast_rans is None, reason="compiled core not built")
def test_encoder_retries_when_the_capacity_hint_is_too_small():
    q = np.rint(np.random.default_rng(9).laplace(0, 20, 5000)).astype(np.int64)
    E, sym, counts = fast_rans.symbols(q, 1, q.size)
    freq = np.array([levels.freqs_from_codes(levels.codes_from_counts(counts[0]))], dtype=np.uint32)
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, axis=1)[:, :-1]
    rc = np.zeros(1, np.uint8)
    full = fast_rans.encode(sym, rc, q.size, freq, cum)
    tiny = fast_rans.encode(sym, rc, q.size, freq, cum, 3)  # far too small: falls back to the worst case
    assert full == tiny == pure_rans.encode(sym, rc, q.size, freq, cum)
