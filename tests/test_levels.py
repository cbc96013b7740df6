"""Level coder (spec 7): round trips on arbitrary integer sequences, pure == fast, tables, malformed payloads."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from codec import levels
from codec.errors import CodecError, FormatError
from codec.kernels.rans import LC_PROB_SCALE
from tests.twins import check

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


@given(level_arrays(), st.sampled_from([1, 2, 4, 8, 16, 32]), st.integers(1, 120), st.sampled_from([1, 3]))
@settings(deadline=None)
def test_roundtrip_v2_every_state_count_and_chunking(case, nstates, chunk_elements, threads):
    """Version 2: any state count, chunks of any size (one row up to the whole layer), on one or
    several threads: the levels come back; version 1 of the same levels decodes to the same."""
    q, rows, cols = case
    saved = levels.lc_plan_states, levels.LC_CHUNK_ELEMENTS
    try:
        levels.lc_plan_states, levels.LC_CHUNK_ELEMENTS = (lambda n: nstates), chunk_elements
        payload = levels.encode_levels(q, rows, cols, adaptive="never")
        plan = levels.lc_plan_chunks(rows, cols)
    finally:
        levels.lc_plan_states, levels.LC_CHUNK_ELEMENTS = saved
    p = levels.read_levels_payload(__import__("codec")._backend.BitReader(payload), rows, cols)
    assert len(p.states) == nstates and p.version == 3 and p.model == levels.LC_MODEL_STATIC
    if rows * cols:
        assert [c.row0 for c in p.chunks] == plan
        assert p.chunks[-1].row1 == rows and sum(c.esc1 - c.esc0 for c in p.chunks) == len(p.escapes)
    assert np.array_equal(levels.decode_levels(payload, rows, cols, threads=threads), q)
    v1 = levels.encode_levels(q, rows, cols, version=1)
    assert np.array_equal(levels.decode_levels(v1, rows, cols, version=1), q)


@given(level_arrays(), st.integers(1, 120), st.sampled_from([1, 3]), st.sampled_from(["always", "auto", "never"]))
@settings(deadline=None)
def test_roundtrip_adaptive_contexts(case, chunk_elements, threads, adaptive):
    """lc_model 1 (spec 7.5) and the encoder's choice: any chunking, one or several threads; the
    levels come back, and "auto" keeps the static payload unless the adaptive one is >= 1% smaller."""
    q, rows, cols = case
    saved = levels.LC_CHUNK_ELEMENTS
    try:
        levels.LC_CHUNK_ELEMENTS = chunk_elements
        payload = levels.encode_levels(q, rows, cols, adaptive=adaptive)
        static = levels.encode_levels(q, rows, cols, adaptive="never")
    finally:
        levels.LC_CHUNK_ELEMENTS = saved
    p = levels.read_levels_payload(__import__("codec")._backend.BitReader(payload), rows, cols)
    if adaptive == "always" and q.size:
        assert p.model == levels.LC_MODEL_ADAPTIVE and len(p.states) == 1
    if p.model == levels.LC_MODEL_ADAPTIVE and adaptive == "auto":
        assert len(payload) <= len(static) * (1 - levels.LA_MIN_GAIN)
    if adaptive == "never":
        assert payload == static
    assert np.array_equal(levels.decode_levels(payload, rows, cols, threads=threads), q)


@given(level_arrays(), st.integers(0, 7))
def test_adaptive_kernels_agree_and_cost_is_the_code_length(case, k0):
    q, rows, cols = case
    top = int(np.abs(q.astype(np.float64)).max()) if q.size else 0
    E = min(127, top)
    lv = check("adaptive", "clip_levels", q, E)
    status, state, words = check("adaptive", "encode", lv, cols, E, k0)
    assert status == 0
    bits = check("adaptive", "cost", lv, cols, E, k0, check("adaptive", "cost_table")) / 2**16
    # rANS codes within a few bits of the ideal code length: the state's 32 bits, rounding
    assert abs(len(words) * 8 + 16 - bits) <= 32 + 0.01 * bits
    escapes = q[(q > E) | (q < -E)].tolist()
    out = check("adaptive", "decode", words, state, rows, cols, E, k0, escapes, 0, np.empty(q.size, np.int64))
    assert out[0] == 0 and np.array_equal(out[2], q)


def test_adaptive_contexts_win_on_locally_correlated_levels():
    # neighbouring magnitudes alike (a convolution's kernels): the contexts see it, static tables do not
    rng = np.random.default_rng(4)
    q = np.rint(rng.laplace(0, 1, (64, 288)) * np.repeat(rng.gamma(0.7, 1.5, (64, 32)), 9, axis=1)).astype(np.int64)
    static = levels.encode_levels(q, 64, 288, adaptive="never")
    auto = levels.encode_levels(q, 64, 288)
    p = levels.read_levels_payload(__import__("codec")._backend.BitReader(auto), 64, 288)
    assert p.model == levels.LC_MODEL_ADAPTIVE and len(auto) < 0.95 * len(static)
    assert np.array_equal(levels.decode_levels(auto, 64, 288), q.reshape(-1))
    # i.i.d. levels of a large layer: static tables, the adaptive coder not even tried past its sample
    iid = np.rint(rng.laplace(0, 5, (40, 4000))).astype(np.int64)
    p = levels.read_levels_payload(__import__("codec")._backend.BitReader(levels.encode_levels(iid, 40, 4000)), 40, 4000)
    assert p.model == levels.LC_MODEL_STATIC


def test_adaptive_chunk_without_words(monkeypatch):
    # a chunk of zeros codes no words: the next chunk's words must still be its own
    monkeypatch.setattr(levels, "LC_CHUNK_ELEMENTS", 1)
    q = np.zeros(26, np.int64)
    q[16] = 3
    payload = levels.encode_levels(q, 2, 13, adaptive="always")
    p = levels.read_levels_payload(__import__("codec")._backend.BitReader(payload), 2, 13)
    assert len(p.chunks) == 2 and len(p.chunks[0].words) == 0 and len(p.chunks[1].words) > 0
    assert np.array_equal(levels.decode_levels(payload, 2, 13), q)


def test_adaptive_needs_format_2_1():
    q = np.rint(np.random.default_rng(1).laplace(0, 2, (8, 50))).astype(np.int64)
    with pytest.raises(ValueError, match="adaptive must be"):
        levels.encode_levels(q, 8, 50, adaptive="yes")
    for version in (1, 2):  # 1.x and 2.0 payloads: static tables whatever is asked
        payload = levels.encode_levels(q, 8, 50, version=version, adaptive="always")
        p = levels.read_levels_payload(__import__("codec")._backend.BitReader(payload), 8, 50, version=version)
        assert p.model == levels.LC_MODEL_STATIC
    adaptive = levels.encode_levels(q, 8, 50, adaptive="always")
    from codec.errors import UnsupportedError
    with pytest.raises(UnsupportedError, match="lc_model 1 is reserved"):
        levels.decode_levels(adaptive, 8, 50, version=2)
    previous = levels.set_adaptive("never")
    try:
        assert levels.encode_levels(q, 8, 50) == levels.encode_levels(q, 8, 50, adaptive="never")
    finally:
        levels.set_adaptive(previous)
    with pytest.raises(ValueError, match="adaptive must be"):
        levels.set_adaptive("sometimes")


def test_v2_chunks_follow_the_reference_plan(monkeypatch):
    monkeypatch.setattr(levels, "LC_CHUNK_ELEMENTS", 1000)
    assert levels.lc_plan_chunks(0, 5) == [0] and levels.lc_plan_chunks(7, 0) == [0]
    assert levels.lc_plan_chunks(10, 100) == [0]
    assert levels.lc_plan_chunks(25, 100) == [0, 9, 18]  # 3 chunks of ceil(25 / 3) rows
    assert levels.lc_plan_chunks(3, 5000) == [0, 1, 2]  # a row longer than a chunk: one row each
    assert [levels.lc_plan_states(n) for n in (0, 1023, 1024, 4096, 1 << 15, 1 << 17)] == [2, 2, 4, 8, 16, 32]


@given(st.binary(min_size=1, max_size=60), st.integers(0, 12), st.integers(0, 12))
def test_random_v2_headers_raise_only_codec_errors(head, rows, cols):
    # a random header (chunk fields included) before valid-looking states: CodecError or levels
    data = head + (1 << 16).to_bytes(4, "little") * 40
    try:
        out = levels.decode_levels(data, rows, cols, threads=2)
    except CodecError:
        return
    assert out.shape == (rows * cols,)


@pytest.mark.parametrize("q", [np.zeros(0, np.int64), np.array([5]), np.array([-(2**63)]), np.array([2**63 - 1]),
                               np.zeros(1000, np.int64), np.array([1, -1] * 500)])
def test_edge_sequences(q):
    payload = levels.encode_levels(q, 1, q.size)
    assert np.array_equal(levels.decode_levels(payload, 1, q.size), q)


def test_all_zero_layer_costs_only_the_header_and_states():
    payload = levels.encode_levels(np.zeros(100_000, np.int64), 100, 1000, version=1)
    assert len(payload) <= 8 * 4 + 8
    # version 2: 16 states for 10^5 levels (the encoder's choice), one chunk
    payload = levels.encode_levels(np.zeros(100_000, np.int64), 100, 1000)
    assert len(payload) <= 16 * 4 + 8


@given(level_arrays())
def test_pure_and_fast_kernels_agree(case):
    q, rows, cols = case
    n = q.size
    E, sym, _ = check("rans", "symbols", q, rows, cols)
    row_class = (np.arange(rows) % 2).astype(np.uint8)
    A = 2 * E + 2
    counts = np.stack([np.bincount(sym.reshape(rows, cols)[row_class == k].ravel(), minlength=A)
                       if rows and cols else np.zeros(A, np.int64) for k in range(2)])
    freq = np.array([levels.freqs_from_codes(levels.codes_from_counts(c)) if c.sum() else [LC_PROB_SCALE // A] * A
                     for c in counts], dtype=np.uint32)
    freq[:, 0] += LC_PROB_SCALE - freq.sum(axis=1)
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, axis=1)[:, :-1]
    status, states, words = check("rans", "encode", sym, row_class, cols, freq, cum)
    assert status == 0
    fc, sy = check("rans", "build_tables", freq)
    escaped = sym == 2 * E + 1
    status, _, out = check("rans", "decode", words, states, fc, sy, row_class, rows, cols, E, q[escaped].tolist(), 0,
                           np.empty(n, np.int64))
    assert status == 0 and np.array_equal(out, q)


@given(level_arrays(), st.binary(max_size=64), st.integers(0, 10**6))
def test_pure_and_fast_agree_on_damaged_words(case, junk, cut):
    q, rows, cols = case
    payload = levels.encode_levels(q, rows, cols)
    damaged = payload[: len(payload) - (cut % (len(payload) + 1))] + junk
    try:
        r = __import__("codec")._backend.BitReader(damaged)
        p = levels.read_levels_payload(r, rows, cols)
    except CodecError:
        return
    if p.model == levels.LC_MODEL_ADAPTIVE:
        for chunk in p.chunks:
            check("adaptive", "decode", chunk.words, chunk.states[0], chunk.row1 - chunk.row0, cols, p.escape_limit,
                  p.eg_order, p.escapes[chunk.esc0:chunk.esc1], 0, np.empty((chunk.row1 - chunk.row0) * cols, np.int64))
        return
    fc, sy = check("rans", "build_tables", p.freqs)
    check("rans", "decode", p.words, p.states, fc, sy, p.row_class, rows, cols, p.escape_limit, p.escapes, 0,
          np.empty(rows * cols, np.int64))


def test_freqs_from_codes_sums_to_scale_and_is_deterministic():
    rng = np.random.default_rng(0)
    for _ in range(200):
        codes = [int(c) for c in rng.integers(0, 65, size=rng.integers(1, 257))]
        if not any(codes):
            codes[0] = 1
        f = levels.freqs_from_codes(codes)
        assert sum(f) == LC_PROB_SCALE
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


def test_encoder_retries_when_the_capacity_hint_is_too_small():
    q = np.rint(np.random.default_rng(9).laplace(0, 20, 5000)).astype(np.int64)
    E, sym, counts = check("rans", "symbols", q, 1, q.size)
    freq = np.array([levels.freqs_from_codes(levels.codes_from_counts(counts[0]))], dtype=np.uint32)
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, axis=1)[:, :-1]
    rc = np.zeros(1, np.uint8)
    full = check("rans", "encode", sym, rc, q.size, freq, cum)
    tiny = check("rans", "encode", sym, rc, q.size, freq, cum, 3)  # far too small: falls back to the worst case
    assert full == tiny


def test_damaged_words_name_the_element_and_its_file_offset():
    q = np.rint(np.random.default_rng(3).laplace(0, 5, 2000)).astype(np.int64)
    payload = levels.encode_levels(q, 20, 100, version=1)
    r = __import__("codec")._backend.BitReader(payload)
    words_at = levels.read_levels_payload(r, 20, 100, version=1).words_offset
    with pytest.raises(FormatError) as info:
        levels.decode_levels(payload[:-2], 20, 100, path="layers[3].unit_payload", base_offset=1000, version=1)
    assert str(info.value) == f"layers[3].unit_payload.lc_rans_words at byte {1000 + words_at}: " \
                              "rANS words end before the last level"
    bad_state = bytearray(payload)
    bad_state[words_at - 4 * 8 + 4 * 2:words_at - 4 * 8 + 4 * 3] = bytes(4)
    with pytest.raises(FormatError) as info:
        levels.decode_levels(bytes(bad_state), 20, 100, path="x", base_offset=1000, version=1)
    assert str(info.value) == f"x.lc_rans_state[2] at byte {1000 + words_at - 24}: rANS initial state below 2^16"


def test_damaged_chunks_name_the_chunk_and_its_file_offset(monkeypatch):
    # version 2: an error inside a chunk names lc_chunk[c] and the offset of that chunk's element
    monkeypatch.setattr(levels, "LC_CHUNK_ELEMENTS", 600)
    q = np.rint(np.random.default_rng(3).laplace(0, 5, 2000)).astype(np.int64)
    payload = levels.encode_levels(q, 20, 100)
    p = levels.read_levels_payload(__import__("codec")._backend.BitReader(payload), 20, 100)
    assert len(p.chunks) == 4 and [c.row0 for c in p.chunks] == [0, 5, 10, 15]
    S = len(p.states)
    last = p.chunks[-1]
    with pytest.raises(FormatError) as info:
        levels.decode_levels(payload[:-2], 20, 100, path="layers[3].unit_payload", base_offset=1000)
    assert str(info.value) == f"layers[3].unit_payload.lc_chunk[3].lc_rans_words at byte {1000 + last.words_offset}: " \
                              "rANS words end before the last level"
    second = p.chunks[1]
    bad_state = bytearray(payload)
    at = second.words_offset - 4 * S + 4 * 2
    bad_state[at:at + 4] = bytes(4)
    for threads in (1, 3):
        with pytest.raises(FormatError) as info:
            levels.decode_levels(bytes(bad_state), 20, 100, path="x", base_offset=1000, threads=threads)
        assert str(info.value) == f"x.lc_chunk[1].lc_rans_state[2] at byte {1000 + at}: rANS initial state below 2^16"


def test_affine_output_beyond_binary32_is_infinite_without_a_warning():
    # (level - zero point) * step rounds to +-inf past binary32's range, in both backends (CI runs
    # this file with each), and numpy's overflow warning is not raised (the C kernel raises none)
    import warnings

    from codec.kernels.rans import LC_OUT_AFFINE

    payload = levels.encode_levels(np.array([1 << 40, -(1 << 40), 1, 0], np.int64), 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = levels.decode_levels(payload, 2, 2, out_kind=LC_OUT_AFFINE, scale=np.full(2, 2.0 ** 100, np.float32),
                                   zero_point=np.zeros(2, np.int64))
    assert out.tolist() == [np.inf, -np.inf, 2.0 ** 100, 0.0]


def _scalar_codes(counts):
    total = int(sum(counts))
    return [0 if n == 0 else int(min(64, max(1, 1 + round(-4 * math.log2(n / total))))) for n in counts]


@given(st.lists(st.one_of(st.integers(0, 6), st.integers(0, 1 << 40), st.sampled_from([0, 1, 2, 4, 1 << 20])),
                min_size=1, max_size=300).filter(any))
def test_table_codes_and_sizes_are_the_scalar_formulas(counts):
    # the encoder's vectorised codes (spec 7.2's reference encoder) and table sizes equal the
    # scalar formula and what the bit writer writes
    from codec import _backend
    codes = levels.codes_from_counts(np.array(counts, np.int64))
    assert codes == _scalar_codes(counts)
    w = _backend.BitWriter()
    levels.write_table(w, codes)
    assert levels._table_bits(codes) == w.pos
    w = _backend.BitWriter()
    levels.write_table(w, [0] * len(codes))
    assert levels._table_bits([0] * len(codes)) == w.pos


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_chunk_threads_work_in_a_forked_child(monkeypatch):
    # the decoder's thread pool does not survive a fork: a child that decodes on threads makes its own
    import os

    monkeypatch.setattr(levels, "LC_CHUNK_ELEMENTS", 500)
    q = np.rint(np.random.default_rng(5).laplace(0, 4, (40, 100))).astype(np.int64)
    payload = levels.encode_levels(q, 40, 100)
    assert np.array_equal(levels.decode_levels(payload, 40, 100, threads=2), q.reshape(-1))  # the pool exists
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if it decodes on threads (a hang ends at the alarm)
        import signal

        signal.alarm(30)
        try:
            ok = np.array_equal(levels.decode_levels(payload, 40, 100, threads=2), q.reshape(-1))
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_chunks_share_one_spool(monkeypatch):
    # every chunk's words go to one spool: one memory budget and at most one temporary file per
    # layer, however many chunks (a spool per chunk kept up to 4 MiB each in memory)
    import codec.spool as spool_module

    opened = []
    real = spool_module.tempfile.TemporaryFile
    monkeypatch.setattr(spool_module, "SPOOL_MEMORY", 256)
    monkeypatch.setattr(spool_module.tempfile, "TemporaryFile", lambda *a, **k: opened.append(1) or real(*a, **k))
    monkeypatch.setattr(levels, "LC_CHUNK_ELEMENTS", 1000)
    monkeypatch.setattr(levels, "PIECE_ELEMENTS", 1500)  # pieces across chunk boundaries
    q = np.rint(np.random.default_rng(8).laplace(0, 9, (60, 100))).astype(np.int64)
    for adaptive in ("never", "always"):  # ("auto" may code a layer both ways: two spools)
        opened.clear()
        payload = levels.encode_levels(q, 60, 100, adaptive=adaptive)
        p = levels.read_levels_payload(__import__("codec")._backend.BitReader(payload), 60, 100)
        assert len(p.chunks) == 6 and len(opened) == 1
        assert p.model == (levels.LC_MODEL_STATIC if adaptive == "never" else levels.LC_MODEL_ADAPTIVE)
        assert np.array_equal(levels.decode_levels(payload, 60, 100), q.reshape(-1))


def test_decode_levels_fitting_decodes_narrow_or_declines(monkeypatch):
    """decode_levels_fitting: the levels as int32 / int16, from one chunk or several, equal to decode_levels';
    None (nothing decoded) when an escaped level does not fit; and an entropy-mode int32 layer of several
    chunks round-trips through it."""
    import codec

    monkeypatch.setattr(levels, "LC_CHUNK_ELEMENTS", 1000)  # chunks of 25 rows here (2^20 levels by default)
    rng = np.random.default_rng(11)
    rows, cols = 110, 40
    q = np.rint(rng.laplace(0, 20, (rows, cols))).astype(np.int64)
    q[5, 7], q[90, 3] = 30000, -31000  # escapes that fit int16
    payload = levels.encode_levels(q, rows, cols)
    assert len(levels.read_levels_payload(levels._backend.bit_reader(payload, 0, "p"), rows, cols).chunks) > 1
    for kind, dtype in ((levels.LC_OUT_I32, np.int32), (levels.LC_OUT_I16, np.int16)):
        got = levels.decode_levels_fitting(payload, rows, cols, out_kind=kind)
        assert got.dtype == dtype and np.array_equal(got, q.reshape(-1))
    q[9, 9] = 40000  # no longer fits int16; 1 << 40 fits neither
    payload = levels.encode_levels(q, rows, cols)
    assert levels.decode_levels_fitting(payload, rows, cols, out_kind=levels.LC_OUT_I16) is None
    assert np.array_equal(levels.decode_levels_fitting(payload, rows, cols, out_kind=levels.LC_OUT_I32), q.reshape(-1))
    small = np.array([[1, -2, 1 << 40], [0, 3, 4]], np.int64)
    assert levels.decode_levels_fitting(levels.encode_levels(small, 2, 3), 2, 3, out_kind=levels.LC_OUT_I32) is None
    with pytest.raises(ValueError, match="out_kind"):
        levels.decode_levels_fitting(payload, rows, cols, out_kind=levels.LC_OUT_I64)
    # damage is reported as decode_levels reports it (the same reader)
    bad = bytearray(payload)
    bad[len(bad) // 2] ^= 0x5A
    with pytest.raises(CodecError) as wide:
        levels.decode_levels(bytes(bad), rows, cols)
    with pytest.raises(CodecError) as narrow:
        levels.decode_levels_fitting(bytes(bad), rows, cols, out_kind=levels.LC_OUT_I32)
    assert (type(narrow.value), str(narrow.value)) == (type(wide.value), str(wide.value))
    t = q.astype(np.int32)
    out = codec.decode(codec.encode({"t": t}, mode="entropy"))["t"]
    assert out.dtype == np.int32 and np.array_equal(out, t)
