"""Every kernel pair (codec.kernels.<stem> and codec._fast.<stem>) has the same functions with the
same signatures, and gives the same results and errors on valid and damaged input (tests/twins.py).

The per-kernel test modules (test_levels, test_ternary, test_masks, test_bitio, test_crc32c,
test_index_twin) run their properties through the same helper; this module holds a fixed set of
valid and damaged cases for every public function, and fails when a function has none.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from codec.format import IndexEntry, write_index_payload
from codec.kernels import bitio as bitio_reference
from codec.kernels import rans as rans_reference
from codec.levels import codes_from_counts, freqs_from_codes
from tests.twins import CHECKED, FAST, PURE, check, check_calls


def public_callables(module) -> dict[str, object]:
    """Functions and classes a kernel module defines (not the names it imports)."""
    return {name: obj for name, obj in vars(module).items()
            if not name.startswith("_") and callable(obj) and getattr(obj, "__module__", None) == module.__name__}


def _params(fn) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.skipif(FAST is None, reason="compiled core not built")
@pytest.mark.parametrize("stem", sorted(PURE))
def test_twin_has_every_function_with_the_same_signature(stem):
    for name, ref in public_callables(PURE[stem]).items():
        twin = getattr(FAST[stem], name, None)
        assert twin is not None, f"codec._fast.{stem} lacks {name}"
        if inspect.isclass(ref):
            for attr, method in vars(ref).items():
                if attr.startswith("_") or not callable(method):
                    continue
                assert callable(getattr(twin, attr, None)), f"{stem}.{name} lacks {attr}"
                assert _params(method) == _params(getattr(twin, attr)), f"{stem}.{name}.{attr}"
        else:
            assert _params(ref) == _params(twin), f"{stem}.{name}"


# ---------------------------------------------------------------------------------------------
# cases: valid and damaged input for every public function
# ---------------------------------------------------------------------------------------------
def _bitio():
    data = bytes([0b10110010, 0x4F, 0xFF, 0x00]) + (7).to_bytes(2, "little") + "héllo!".encode()[:6] + bytes(24)
    check_calls("bitio", "BitReader", (data,), {"base_offset": 10}, [
        ("u", (3, "a"), {}), ("ue", (0, "b"), {}), ("se", (1, "c"), {}), ("byte_alignment", (), {}),
        ("u8", ("d",), {}), ("u16le", ("e",), {}), ("b", (1, "f"), {}), ("view", (1, "g"), {}),
        ("st", ("h",), {}), ("u32le", (), {}), ("u64le", (), {}), ("i64le", (), {}), ("f32le", (), {}),
        ("f64le", (), {}), ("bits_left", (), {}), ("is_byte_aligned", (), {}), ("where", ("x",), {}),
        ("u_array", (3, 4, "arr"), {}), ("ue_array", (0, 2, "arr2"), {}), ("error", ("why", "x"), {}),
    ])
    # damaged: truncation, non-zero alignment bits, an endless Exp-Golomb prefix, limits, bad UTF-8
    check_calls("bitio", "BitReader", (b"\x01",), {}, [("u", (9, "x"), {})])
    check_calls("bitio", "BitReader", (b"\xff",), {}, [("u", (1, "x"), {}), ("byte_alignment", (), {})])
    check_calls("bitio", "BitReader", (bytes(9),), {}, [("ue", (0, "x"), {})])
    check_calls("bitio", "BitReader", (b"\x05\x00abcde",), {}, [("st", ("s",), {"max_bytes": 4})])
    check_calls("bitio", "BitReader", (b"\x02\x00\xff\xfe",), {}, [("st", ("s",), {})])
    check_calls("bitio", "BitReader", (b"\x01\x02",), {}, [("u", (4, "x"), {}), ("u8", ("y",), {})])
    check_calls("bitio", "BitReader", (b"\x01",), {}, [("u_array", (4, 3, "x"), {})])
    check_calls("bitio", "BitReader", (b"\x01",), {}, [("ue_array", (0, 9, "x"), {})])
    check_calls("bitio", "BitReader", (b"\x01",), {}, [("view", (2, "x"), {})])
    check_calls("bitio", "BitWriter", (), {}, [
        ("u", (3, 5), {}), ("ue", (0, 9), {}), ("se", (2, -7), {}), ("byte_alignment", (), {}), ("u8", (255,), {}),
        ("u16le", (65535,), {}), ("u32le", (1,), {}), ("u64le", (2,), {}), ("i64le", (-3,), {}),
        ("f32le", (1.5,), {}), ("f64le", (-0.0,), {}), ("b", (b"xyz",), {}), ("st", ("héllo",), {}),
        ("u_array", (5, np.arange(7)), {}), ("ue_array", (1, [0, 3, 200]), {}), ("is_byte_aligned", (), {}),
    ])
    for call in [("u", (3, 8), {}), ("ue", (0, -1), {}), ("se", (0, 1 << 64), {}), ("u8", (256,), {}),
                 ("i64le", (1 << 63,), {}), ("u_array", (2, [1, 4]), {}), ("ue_array", (0, [-1]), {}),
                 ("st", ("x" * 10,), {"max_bytes": 3})]:
        check_calls("bitio", "BitWriter", (), {}, [call])
    check_calls("bitio", "BitWriter", (), {}, [("u", (3, 1), {}), ("u8", (1,), {})])


def _crc32c():
    data = bytes(range(256)) * 300
    check("crc32c", "crc32c", data)
    check("crc32c", "crc32c", data[:7], 0x12345678)
    check("crc32c", "crc32c", b"")
    check("crc32c", "crc32c_combine", 0xE3069283, 0x1234, 77)
    check("crc32c", "crc32c_combine", 1, 2, 0)
    check("crc32c", "crc32c_copy", bytearray(len(data)), data)
    with pytest.raises(ValueError):
        check("crc32c", "crc32c_copy", bytearray(3), b"abcd")


def _index():
    entries = [IndexEntry("a", 100, 40), IndexEntry("ü", 140, 30), IndexEntry("", 200, 24)]
    good = write_index_payload(entries)
    spans, by_name, gaps = check("index", "read_index_entries", good, 3, 100, 100, 400, IndexEntry)[2]
    assert spans.tolist() == [[e.unit_offset, e.unit_size] for e in entries]
    assert by_name == {e.name: i for i, e in enumerate(entries)}
    assert gaps == [(2, 170, 200), (3, 224, 400)]  # between units 1 and 2, and from the last unit to the index
    bad = [good[:-1], good + b"\x00", good[:20],
           good.replace("ü".encode(), b"\xff\xfe"),
           write_index_payload([IndexEntry("a", 100, 40), IndexEntry("a", 140, 30), IndexEntry("b", 200, 24)]),
           write_index_payload([IndexEntry("a", 100, 40), IndexEntry("b", 120, 30), IndexEntry("c", 200, 24)]),
           write_index_payload([IndexEntry("a", 100, 4), IndexEntry("b", 140, 30), IndexEntry("c", 200, 24)]),
           write_index_payload([IndexEntry("a" * 200, 100, 40), IndexEntry("b", 140, 30), IndexEntry("c", 200, 24)])]
    for data in bad:
        assert check("index", "read_index_entries", data, 3, 100, 100, 400, IndexEntry)[0] < 0


def _rans():
    rng = np.random.default_rng(1)
    q = np.clip(np.rint(rng.laplace(0, 3, (6, 50))), -20, 20).astype(np.int64)
    q[2, 3] = 1000  # an escape
    E, sym, counts = check("rans", "symbols", q, 6, 50)
    check("rans", "symbols", np.zeros(0, np.int16), 0, 0)
    check("rans", "symbols", np.array([-(2**63), 2**63 - 1, 5], np.int64), 1, 3)
    row_class = (np.arange(6) % 2).astype(np.uint8)
    freq = np.array([freqs_from_codes(codes_from_counts(counts[row_class == k].sum(axis=0))) for k in range(2)],
                    dtype=np.uint32)
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, axis=1)[:, :-1]
    status, states, words = check("rans", "encode", sym, row_class, 50, freq, cum)
    assert status == 0
    check("rans", "encode", sym, row_class, 50, freq, cum, 3)  # capacity too small: retried
    # in pieces, last first, each starting where the next left the states: the same words
    for cuts in ([0, 137, 300], [0, 1, 50, 299, 300], [0, 100, 200, 300]):
        pieces, carried = [], None
        for a, b in reversed(list(zip(cuts, cuts[1:]))):
            status_p, carried, piece = check("rans", "encode", sym[a:b], row_class, 50, freq, cum, -1, carried, a)
            assert status_p == 0
            pieces.insert(0, piece)
        assert (carried, b"".join(pieces)) == (states, words)
    with pytest.raises(ValueError, match="states must be 8"):
        check("rans", "encode", sym[:10], row_class, 50, freq, cum, -1, [1 << 16] * 7, 0)
    with pytest.raises(ValueError, match="fewer rows"):
        check("rans", "encode", sym[:10], row_class, 50, freq, cum, -1, None, 295)
    zero = freq.copy()
    zero[:, sym[0]] = 0
    check("rans", "encode", sym, row_class, 50, zero, cum)
    fc, sy = check("rans", "build_tables", freq)
    check("rans", "build_tables", np.zeros((2, 4), np.uint32))
    escapes = q.reshape(-1)[sym == 2 * E + 1].tolist()
    args = (fc, sy, row_class, 6, 50, E, escapes)
    check("rans", "decode", words, states, *args, 0, np.empty(300, np.int64))
    check("rans", "decode", words, states, *args, 3, np.empty(300, np.int32))
    check("rans", "decode", words, states, *args, 4, np.empty(300, np.int16))
    scale, zp = np.full(6, 0.5, np.float32), np.arange(6, dtype=np.int64)
    check("rans", "decode", words, states, *args, 1, np.empty(300, np.float32), scale, zp)
    # damaged: a cut word stream, extra words, a bad state, a wrong escape list, codebook range
    check("rans", "decode", words[:-2], states, *args, 0, np.empty(300, np.int64))
    check("rans", "decode", words + b"\x01\x00", states, *args, 0, np.empty(300, np.int64))
    check("rans", "decode", words, [5] + states[1:], *args, 0, np.empty(300, np.int64))
    check("rans", "decode", words, states, *args[:-1], escapes + [7], 0, np.empty(300, np.int64))
    # one escape symbol more than the list holds: an error where it is met (no read past the list)
    outcome = check("rans", "decode", words, states, *args[:-1], escapes[:-1], 0, np.empty(300, np.int64))
    assert outcome[0] == rans_reference.LC_ERR_ESCAPES
    # level - zero point beyond int64: an error, not a wrapped value (both backends)
    big = np.array([[2**62] * 8], np.int64)
    big[0, 3] = 2**63 - 1
    E2, sym2, counts2 = check("rans", "symbols", big, 1, 8)
    freq2 = np.array([freqs_from_codes(codes_from_counts(counts2[0]))], np.uint32)
    cum2 = np.zeros_like(freq2)
    cum2[:, 1:] = np.cumsum(freq2, axis=1)[:, :-1]
    _, states2, words2 = check("rans", "encode", sym2, np.zeros(1, np.uint8), 8, freq2, cum2)
    fc2, sy2 = check("rans", "build_tables", freq2)
    affine = (fc2, sy2, np.zeros(1, np.uint8), 1, 8, E2, big.reshape(-1).tolist(), 1, np.empty(8, np.float32))
    status = check("rans", "decode", words2, states2, *affine, np.ones(1, np.float32), np.array([-5], np.int64))[0]
    assert status == rans_reference.LC_ERR_AFFINE_RANGE
    assert check("rans", "decode", words2, states2, *affine, np.ones(1, np.float32), np.array([5], np.int64))[0] == 0
    # the escapes as the decoder passes them (an int64 array): the difference must not wrap in the reference
    # (a fuzz finding: the pure twin read 2^63 - 1 + 5 as a negative int64 and went on)
    as_array = affine[:6] + (np.array(affine[6], np.int64),) + affine[7:]
    status = check("rans", "decode", words2, states2, *as_array, np.ones(1, np.float32), np.array([-5], np.int64))[0]
    assert status == rans_reference.LC_ERR_AFFINE_RANGE
    check("rans", "decode", words, states, *args, 2, np.empty(300, np.float32), None, None, np.zeros(3, np.float32))
    flipped = bytearray(words)
    flipped[len(flipped) // 2] ^= 0x40
    check("rans", "decode", bytes(flipped), states, *args, 0, np.empty(300, np.int64))
    _rans_states_and_simd(rng)
    _rans_read_tables(rng)
    _rans_count_symbols(rng)
    _rans_decode_payload(rng)
    _rans_decode_payload_rules()


def _count(sym, group, start, cols, hist):
    """count_symbols in both backends, each on its own copy of ``hist`` (it adds to its argument):
    the same counts; returns them."""
    ref = hist.copy()
    PURE["rans"].count_symbols(sym, group, start, cols, ref)
    if FAST is not None:
        fast = hist.copy()
        FAST["rans"].count_symbols(sym, group, start, cols, fast)
        assert fast.tobytes() == ref.tobytes(), "rans.count_symbols: counts differ"
    CHECKED.add(("rans", "count_symbols", "ok"))
    return ref


def _rans_count_symbols(rng):
    # every row's symbols land in its group's row of the counts, whatever piece they come in
    for rows, cols, alphabet, groups in [(7, 13, 9, 3), (1, 1, 2, 1), (40, 4, 256, 16), (3, 1000, 255, 2)]:
        sym = rng.integers(0, alphabet, rows * cols).astype(np.uint8)
        sym[: cols // 2] = alphabet - 1  # a run of one symbol
        group = rng.integers(0, groups, rows).astype(np.uint8)
        expected = np.zeros((groups, alphabet), np.int64)
        np.add.at(expected, (np.repeat(group, cols), sym), 1)
        for cuts in ([0, rows * cols], [0, 1, cols + 3, rows * cols], [0, rows * cols - 1, rows * cols]):
            hist = np.zeros((groups, alphabet), np.int64)
            for a, b in zip(cuts, cuts[1:]):
                hist = _count(sym[a:b], group, a, cols, hist)
            assert hist.tolist() == expected.tolist()
    ok = (np.zeros(4, np.uint8), np.zeros(2, np.uint8), 0, 2)
    assert _count(*ok, np.full((1, 1), 5, np.int64)).tolist() == [[9]]  # added to what is there
    _count(np.zeros(0, np.uint8), np.zeros(0, np.uint8), 0, 0, np.zeros((1, 1), np.int64))
    for bad, message in [((np.zeros(4, np.int16),) + ok[1:], "uint8"), (ok[:2] + (3, 2), "fewer rows"),
                         ((np.full(4, 3, np.uint8),) + ok[1:], "outside hist"), (ok[:2] + (0, 0), "cols"),
                         ((ok[0], np.full(2, 1, np.uint8)) + ok[2:], "outside hist")]:
        with pytest.raises(ValueError, match=message):
            check("rans", "count_symbols", *bad, np.zeros((1, 3), np.int64))
    with pytest.raises(ValueError, match="writable"):
        check("rans", "count_symbols", *ok, np.zeros((1, 3), np.int32))


def _rans_read_tables(rng):
    """read_tables: the tables' frequencies or None, the same in both backends, on written tables,
    cut ones, damaged ones and random bytes; on success the element-wise reader agrees."""
    from codec import levels

    for trial in range(40):
        K = int(rng.integers(1, 5))
        alphabet = int(rng.choice([2, 3, 10, 36, 256]))
        w = bitio_reference.BitWriter()
        w.u(int(rng.integers(0, 8)), 0)  # the tables start anywhere in a byte
        all_codes = []
        for k in range(K):
            codes = [0] * alphabet
            if rng.random() < 0.85:
                lo = int(rng.integers(0, alphabet))
                hi = int(rng.integers(lo, alphabet))
                for s in range(lo, hi + 1):
                    codes[s] = int(rng.integers(0, 65)) if rng.random() < 0.7 else 0
                codes[lo], codes[hi] = max(1, codes[lo]), max(1, codes[hi])
            levels.write_table(w, codes)
            all_codes.append(codes)
        w.byte_alignment()
        data = w.getvalue()
        for offset in range(8):
            got = check("rans", "read_tables", data, offset, K, alphabet)
            if got is not None:
                r = bitio_reference.BitReader(data, bit_offset=offset)
                ref = np.stack([levels.read_table(r, alphabet, "t") for _ in range(K)])
                assert got[0] == r.pos
                assert np.array_equal(got[1], levels.freq_rows_from_codes(ref).astype(np.uint32))
        for cut in (len(data) - 1, len(data) // 2, 0):
            check("rans", "read_tables", data[:cut], 0, K, alphabet)
        damaged = bytearray(data)
        if damaged:
            damaged[int(rng.integers(0, len(damaged)))] ^= 1 << int(rng.integers(0, 8))
            check("rans", "read_tables", bytes(damaged), 0, K, alphabet)
        check("rans", "read_tables", rng.bytes(int(rng.integers(0, 40))), 0, K, alphabet)
    # a range whose first or last symbol is absent (code 0): refused (None) by both
    for deltas in ((1, -1), (0, 1), (3, -3, 2, -2)):
        w = bitio_reference.BitWriter()
        w.ue(0, len(deltas))
        w.ue(0, 1)
        for d in deltas:
            w.se(0, d)
        w.byte_alignment()
        assert check("rans", "read_tables", w.getvalue(), 0, 1, 8) is None
    for K, alphabet in ((1, 1), (3, 2), (2, 37), (4, 256), (0, 5)):
        codes = rng.integers(0, 65, (K, alphabet))
        codes[rng.random((K, alphabet)) < 0.4] = 0
        check("rans", "freq_rows_from_codes", codes)
        check("rans", "freq_rows_from_codes", np.where(codes > 0, 1, 0))  # equal weights: ties
        check("rans", "freq_rows_from_codes", np.zeros((K, alphabet), np.int64))
    for bad in (np.zeros(3, np.int64), np.zeros((1, 257), np.int64), np.full((1, 2), 65), np.full((1, 2), -1)):
        with pytest.raises(ValueError, match="codes must be"):
            check("rans", "freq_rows_from_codes", bad)
    with pytest.raises(ValueError, match="bitpos outside data"):
        check("rans", "read_tables", b"\x00", 9, 1, 2)
    with pytest.raises(ValueError, match="read_tables needs"):
        check("rans", "read_tables", b"\x00", 0, 17, 2)
    with pytest.raises(ValueError, match="read_tables needs"):
        check("rans", "read_tables", b"\x00", 0, 1, 257)


def _element_path(payload, rows, cols, version, out_kind, out, scale, zero_point, codebook):
    """What decode_levels does when decode_payload does not take a payload: the values, or the error."""
    from codec import _backend, levels
    from codec.errors import CodecError

    try:
        p = levels.read_levels_payload(_backend.bit_reader(payload, 0, "p"), rows, cols, version=version)
        return levels._decode_chunks(p, p.chunks, cols, out_kind=out_kind, scale=scale, zero_point=zero_point,
                                     codebook=codebook, path="p", out=out, threads=1)
    except CodecError as exc:
        return exc


def _rans_decode_payload(rng):
    """decode_payload: a small layer's whole payload in one call, or None. Both backends agree; what it
    takes it decodes as the element-by-element path does (values), and it takes nothing that path rejects
    (on valid payloads of one chunk it must take them: otherwise the fast path would be dead)."""
    from codec import levels

    taken = 0
    for trial in range(48):
        rows, cols = int(rng.integers(1, 12)), int(rng.choice([1, 3, 9, 40, 301]))
        scale = float(rng.choice([0.3, 2, 9, 60]))
        q = np.rint(rng.laplace(0, scale, (rows, cols))).astype(np.int64)
        if trial % 5 == 0:
            q.reshape(-1)[int(rng.integers(0, q.size))] = int(rng.choice([300, -5000, 1 << 40]))  # an escape
        if trial % 7 == 0:
            q[:] = 0
        version = 2 if trial % 6 == 0 else 3
        adaptive = ("never", "always", "auto")[trial % 3] if version == 3 else None
        payload = levels.encode_levels(q, rows, cols, version=version, adaptive=adaptive,
                                       max_classes=int(rng.choice([1, 4, 16])))
        n = rows * cols
        steps = np.linspace(0.5, 2, rows).astype(np.float32)
        zps = np.arange(rows, dtype=np.int64) - 2
        book = np.linspace(-1, 1, 64).astype(np.float32)
        kinds = [(0, np.int64, (None, None, None)), (3, np.int32, (None, None, None)),
                 (4, np.int16, (None, None, None)), (1, np.float32, (steps, zps, None)), (5, np.float32, (steps,
                                                                                                          None, None))]
        if q.min() >= 0 and q.max() < 64:
            kinds.append((2, np.float32, (None, None, book)))
        damaged = bytearray(payload)
        damaged[int(rng.integers(0, len(damaged)))] ^= 1 << int(rng.integers(0, 8))
        cases = [payload, payload[:-1], payload[:-2], payload[: len(payload) // 2], bytes(damaged),
                 rng.bytes(int(rng.integers(0, 30)))]
        for data in cases:
            for kind, dtype, (sc, zp, cb) in kinds:
                got = check("rans", "decode_payload", data, rows, cols, version, kind, None, sc, zp, cb)
                want = _element_path(data, rows, cols, version, kind, None, sc, zp, cb)
                if got is None:  # a valid payload of one chunk is taken, unless its levels do not fit the output
                    assert data is not payload or not isinstance(want, np.ndarray), (trial, kind)
                    continue
                taken += 1
                assert isinstance(want, np.ndarray), (trial, kind, want)  # taken only what the reader takes
                assert got.dtype == dtype and got.tobytes() == want.tobytes(), (trial, kind)
            # into a given array: written in place; a wrong one is not taken
            out = np.full(n, -7, np.int64)
            got = check("rans", "decode_payload", data, rows, cols, version, 0, out)
            assert got is None or got.tobytes() == _element_path(data, rows, cols, version, 0, None, None, None,
                                                                  None).tobytes()
        for wrong in (np.empty(n + 1, np.int64), np.empty(n, np.int32), np.empty((n, 1), np.int64)):
            assert check("rans", "decode_payload", payload, rows, cols, version, 0, wrong) is None
    assert taken > 200
    q = np.arange(12, dtype=np.int64).reshape(3, 4)
    payload = levels.encode_levels(q, 3, 4)
    for args in ((payload, 3, 4, 1, 0), (payload, 0, 4, 3, 0), (payload, 3, 4, 3, 9), (payload, 3, 4, 3, 1),
                 (payload, 3, 4, 3, 1, None, np.ones(2, np.float32), np.zeros(3, np.int64)), (payload, 3, 4, 3, 2)):
        assert check("rans", "decode_payload", *args) is None  # version 1, empty, unknown kind, missing inputs


def _hand_payload(*, E=1, K=1, log2_states=0, model=0, k0=0, tables=None, row_class=(), escapes=(),
                  chunks_minus1=0, align=0, states=None, words=b""):
    """A version 2 levels_payload() written field by field (spec 7.4), valid or not."""
    from codec import levels

    w = bitio_reference.BitWriter()
    w.ue(0, E)
    w.u(4, K - 1)
    w.u(3, log2_states)
    w.u(2, model)
    if model == 1:
        w.u(3, k0)
    else:
        for codes in tables:
            levels.write_table(w, codes)
        for c in row_class:
            w.u((K - 1).bit_length(), c)
    w.ue(0, len(escapes))
    for e in escapes:
        w.u(1, 1 if e < 0 else 0)
        w.ue(0, abs(e) - E - 1)
    w.ue(0, chunks_minus1)
    if align:
        w.u(1, 1)  # a one where byte_alignment() wants zero bits (then the rest of the byte)
    w.byte_alignment()
    data = w.getvalue()
    for x in states if states is not None else [1 << 16] * (1 << log2_states):
        data += int(x).to_bytes(4, "little")
    return data + words


def _one_symbol(alphabet, symbol):
    codes = [0] * alphabet
    codes[symbol] = 1
    return codes


def _rans_decode_payload_rules():
    """Payloads that break one rule of spec 7.4 each, built by hand so that the decoder alone would not
    notice (single-symbol tables read no words): decode_payload takes none of them (the reader rejects
    them), and takes the same payloads with the rule kept."""
    from codec import levels

    def expect(payload, rows, cols, *, version=3, taken):
        got = check("rans", "decode_payload", payload, rows, cols, version, 0)
        want = _element_path(payload, rows, cols, version, 0, None, None, None, None)
        if taken:
            assert got is not None and isinstance(want, np.ndarray) and got.tobytes() == want.tobytes()
        else:
            assert got is None and not isinstance(want, np.ndarray), want

    # E: the largest escape limit, one past it (its alphabet, 2E + 2, would not fit the kernel's tables)
    for E, ok in ((127, True), (128, False), (200, False)):
        expect(_hand_payload(E=E, tables=[_one_symbol(2 * E + 2, E + 3)]), 2, 3, taken=ok)
    # row classes: each within K, each used class with a non-empty table (K = 1 too)
    three = [_one_symbol(6, 1), _one_symbol(6, 2), _one_symbol(6, 4)]
    expect(_hand_payload(E=2, K=3, tables=three, row_class=[0, 1, 2, 2]), 4, 5, taken=True)
    expect(_hand_payload(E=2, K=3, tables=three, row_class=[0, 1, 3, 2]), 4, 5, taken=False)
    expect(_hand_payload(E=2, K=3, tables=[three[0], [0] * 6, three[2]], row_class=[0, 0, 2, 2]), 4, 5, taken=True)
    expect(_hand_payload(E=2, K=3, tables=[three[0], [0] * 6, three[2]], row_class=[0, 1, 2, 2]), 4, 5, taken=False)
    expect(_hand_payload(E=2, tables=[[0] * 6]), 4, 5, taken=False)
    # byte_alignment's zero bits; the states' and the words' bytes
    expect(_hand_payload(E=2, tables=[three[0]], align=1), 4, 5, taken=False)
    expect(_hand_payload(E=2, tables=[three[0]], log2_states=2), 4, 5, taken=True)
    expect(_hand_payload(E=2, tables=[three[0]], log2_states=2)[:-1], 4, 5, taken=False)
    expect(_hand_payload(E=2, tables=[three[0]], log2_states=6, states=[1 << 16] * 64), 4, 5, taken=False)
    expect(_hand_payload(E=2, tables=[three[0]], words=b"\x00" * 42), 4, 5, taken=False)  # 21 words > 20 levels
    expect(_hand_payload(E=2, tables=[three[0]], states=[(1 << 16) - 1]), 4, 5, taken=False)
    # escapes: their count within the levels and the bits left
    expect(_hand_payload(E=2, tables=[_one_symbol(6, 5)], escapes=[7] * 20), 4, 5, taken=True)
    expect(_hand_payload(E=2, tables=[_one_symbol(6, 5)], escapes=[7] * 21), 4, 5, taken=False)
    # one chunk only (two chunks decode the element-by-element way)
    assert check("rans", "decode_payload", _hand_payload(E=2, tables=[three[0]], chunks_minus1=1), 4, 5, 3, 0) is None
    # lc_model 1: not in a 2.0 file (version 2), and only with one class and one state
    adaptive = levels.encode_levels(np.arange(-10, 10).reshape(4, 5), 4, 5, adaptive="always")
    expect(adaptive, 4, 5, taken=True)
    expect(adaptive, 4, 5, version=2, taken=False)
    expect(_hand_payload(E=2, K=2, model=1), 4, 5, taken=False)
    expect(_hand_payload(E=2, model=1, log2_states=1), 4, 5, taken=False)
    expect(_hand_payload(E=2, model=2, tables=[three[0]]), 4, 5, taken=False)


def _rans_states_and_simd(rng):
    """Version 2 state counts (1..32) in both backends, and the compiled decoder with its AVX2 group
    kernel on and off (16 and 32 states): identical words, states, outputs and errors."""
    from tests.twins import CHECKED, FAST, PURE
    rows, cols = 7, 203  # rows of an odd length: every position of a group starts some row
    q = np.clip(np.rint(rng.laplace(0, 4, (rows, cols))), -30, 30).astype(np.int64)
    q[rng.random((rows, cols)) < 0.01] = 500  # escapes, inside vector groups too
    E, sym, counts = check("rans", "symbols", q, rows, cols)
    row_class = (np.arange(rows) % 2).astype(np.uint8)
    freq = np.array([freqs_from_codes(codes_from_counts(counts[row_class == k].sum(axis=0))) for k in range(2)],
                    dtype=np.uint32)
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, axis=1)[:, :-1]
    fc, sy = check("rans", "build_tables", freq)
    escapes = q.reshape(-1)[sym == 2 * E + 1].tolist()
    n = rows * cols
    scale, zp = np.linspace(0.1, 3, rows).astype(np.float32), np.arange(rows, dtype=np.int64) - 3
    for nstates in (1, 2, 4, 8, 16, 32):
        status, states, words = check("rans", "encode", sym, row_class, cols, freq, cum, nstates=nstates)
        assert status == 0 and len(states) == nstates
        flipped = bytearray(words)
        flipped[len(flipped) // 3] ^= 0x10
        for simd in (False, True):
            for mod in (PURE["rans"],) + ((FAST["rans"],) if FAST is not None else ()):
                mod.set_simd(simd)
            try:
                for data in (words, words[:-2], bytes(flipped)):
                    args = (data, states, fc, sy, row_class, rows, cols, E, escapes)
                    status = check("rans", "decode", *args, 0, np.empty(n, np.int64))[0]
                    assert (status == 0) == (data is words) or data is not words and data != words[:-2]
                    check("rans", "decode", *args, 3, np.empty(n, np.int32))
                    check("rans", "decode", *args, 4, np.empty(n, np.int16))
                    check("rans", "decode", *args, 1, np.empty(n, np.float32), scale, zp)
                    check("rans", "decode", *args, 1, np.empty(n, np.float32), scale, zp + (1 << 40))
                    check("rans", "decode", *args, 2, np.empty(n, np.float32), None, None,
                          np.linspace(-1, 1, 2000).astype(np.float32))
                    dq = check("rans", "decode", *args, 5, np.empty(n, np.float32), scale)  # LC_OUT_DQ
                    if data is words:  # the levels, then the trellis: the same values
                        want = np.empty(n, np.float32)
                        assert PURE["trellis"].dequantize(q.reshape(-1).copy(), rows, cols, scale, want)[0] == 0
                        assert dq[0] == 0 and dq[2].tobytes() == want.tobytes()
                        big = list(escapes)
                        big[len(big) // 2] = 1 << 31  # a level the trellis does not take
                        assert check("rans", "decode", data, states, fc, sy, row_class, rows, cols, E, big, 5,
                                     np.empty(n, np.float32), scale)[0] == -12
            finally:
                for mod in (PURE["rans"],) + ((FAST["rans"],) if FAST is not None else ()):
                    mod.set_simd(True)
    with pytest.raises(ValueError, match="nstates must be"):
        check("rans", "encode", sym, row_class, cols, freq, cum, nstates=3)
    with pytest.raises(ValueError, match="nstates must be"):
        check("rans", "decode", words, states[:3], fc, sy, row_class, rows, cols, E, escapes, 0, np.empty(n, np.int64))
    # the switch: the reference has no vector kernel; the compiled twin reports its CPU's
    assert PURE["rans"].simd_available() is False and PURE["rans"].set_simd(True) is False
    if FAST is not None:
        assert isinstance(FAST["rans"].simd_available(), bool)
        assert FAST["rans"].set_simd(True) is True
    CHECKED.update({("rans", "simd_available", "ok"), ("rans", "set_simd", "ok")})


def _ternary():
    rng = np.random.default_rng(2)
    for n in (0, 1, 7, 16, 301):
        t = np.where(rng.random(n) < 0.6, 0, rng.choice([-1, 1], n)).astype(np.int8)
        for levels in (None, 0, 1, 2):
            payload = check("ternary", "flag_encode", t, levels)
            check("ternary", "flag_decode", payload, n)
        check("ternary", "base3_decode", check("ternary", "base3_encode", t), n)
        check("ternary", "flag_level_sizes", n, 3)
        # the piecewise encoder: item flags, head and codes with a carry between pieces of 16 trits
        flags, nonzero = check("ternary", "flag_item_flags", t)
        for levels in (None, 0, 1):
            head = check("ternary", "flag_head", flags, (n + 1) // 2, nonzero, levels)
        codes, carry = b"", (0, 0)
        for start in range(0, n, 16):
            piece, *carry = check("ternary", "flag_codes", t[start:start + 16], *carry)
            codes += piece
        tail = bytes([(carry[0] << (8 - carry[1])) & 0xFF]) if carry[1] else b""
        assert head + codes + tail == check("ternary", "flag_encode", t, 1)
    with pytest.raises(Exception):
        check("ternary", "flag_head", b"\x00", 4, 0, 16)
    # int8 values beyond the trits: their signs (the compiled encoder is branch-free there)
    check("ternary", "flag_encode", np.array([5, -7, 0, 127, -128, 0, 1, 0, 0, 2, -1, 0, 0, 0, 3, 3, -2], np.int8))
    with pytest.raises(Exception):
        check("ternary", "flag_encode", np.zeros(4, np.int8), 16)
    sparse = np.zeros(400, np.int8)
    sparse[::37] = 1
    deep = check("ternary", "flag_encode", sparse, 2)
    damaged = [b"", b"\x10", b"\x00", b"\x00\x01", deep[:-1], deep + b"\x00", deep[:3] + b"\x00" + deep[4:],
               bytes([2, 0xFF]) + deep[2:], b"\x00\x80\x00", b"\x00\x80\xff", b"\x00\x00\x00"]
    for payload in damaged:
        for n in (7, 400):
            check("ternary", "flag_decode", payload, n)
    for payload, n in [(b"\xf3", 5), (b"\x79", 4), (b"\x00\x00", 5), (b"", 0)]:
        check("ternary", "base3_decode", payload, n)
    for _ in range(200):
        check("ternary", "flag_decode", rng.integers(0, 256, rng.integers(0, 12), dtype=np.uint8).tobytes(),
              int(rng.integers(0, 40)))


def _masks():
    rng = np.random.default_rng(3)
    for n, m in [(1, 2), (2, 4), (5, 16)]:
        c = math.comb(m, n)
        idx = rng.integers(0, c, 50)
        data = check("masks", "uniform_encode", idx, c)
        # the narrow index types the encoder holds give the same stream
        for narrow in (np.uint8, np.uint16, np.int16):
            if c <= np.iinfo(narrow).max + 1:
                assert check("masks", "uniform_encode", idx.astype(narrow), c) == data
        check("masks", "uniform_decode", data, 50, c)
        check("masks", "uniform_capacity", (len(data) - 8) // 2, c)
        for damaged, count in [(data[:-2], 50), (data + b"\x00\x00", 50), (data[:7], 50), (data[:9], 50),
                               (b"\xff" * 8 + data[8:], 50), (data, 49), (data, 10**9), (data, 51)]:
            check("masks", "uniform_decode", damaged, count, c)
        check("masks", "expand_patterns", idx, np.arange(c, dtype=np.uint32), m)
        check("masks", "expand_patterns", np.array([c]), np.arange(c, dtype=np.uint32), m)
    levels = rng.integers(-8, 8, (3, 2)).astype(np.int32)
    check("masks", "nibbles_to_mask", levels, 3, 8)
    check("masks", "nibbles_to_mask", levels, 3, 6)  # padding bits may be set: an error when they are
    check("masks", "nibbles_to_mask", levels - 9, 3, 8)
    with pytest.raises(ValueError):
        check("masks", "uniform_decode", b"", 0, 1)


def _in_place(stem: str, name: str, out: np.ndarray, *args):
    """Run an in-place kernel in both backends on copies of ``out``: the same result, the same ``out``."""
    from tests.twins import CHECKED, FAST, PURE
    ref_out = out.copy()
    ref = getattr(PURE[stem], name)(ref_out, *args)
    if FAST is not None:
        fast_out = out.copy()
        assert getattr(FAST[stem], name)(fast_out, *args) == ref, f"{stem}.{name}: results differ"
        assert fast_out.tobytes() == ref_out.tobytes(), f"{stem}.{name}: outputs differ"
    CHECKED.add((stem, name, "ok"))
    out[...] = ref_out
    return ref


def _planes():
    rng = np.random.default_rng(4)
    for dtype, ebits, mbits, centre in [(np.uint32, 8, 23, 127), (np.uint16, 5, 10, 15), (np.uint16, 8, 7, 127),
                                        (np.uint64, 11, 52, 1023)]:
        signed = np.dtype(dtype).str.replace("u", "i")
        for n in (0, 1, 17, 300, 10_000):  # the compiled twin works in blocks of 4,096
            levels = rng.integers(-centre, (1 << ebits) - centre, n).astype(signed)
            out = levels.view(dtype).copy()
            assert _in_place("planes", "place_exponents", out, centre, ebits, mbits) == -1
            planes = [rng.integers(0, 256, n, dtype=np.uint8) for _ in range((mbits + 1 + 7) // 8)]
            for p, plane in enumerate(planes):
                _in_place("planes", "merge_plane", out, plane, 8 * p, mbits, ebits)
            # plane 0 merged as the exponents are placed: the same words
            fused = levels.view(dtype).copy()
            assert _in_place("planes", "place_exponents", fused, centre, ebits, mbits, planes[0]) == -1
            for p, plane in enumerate(planes[1:], 1):
                _in_place("planes", "merge_plane", fused, plane, 8 * p, mbits, ebits)
            assert fused.tobytes() == out.tobytes()
            for where in sorted({n // 2, n - 1}) if n else ():
                for bad in (-centre - 1, (1 << ebits) - centre, np.iinfo(signed).min, np.iinfo(signed).max):
                    damaged = levels.copy()
                    damaged[where] = bad
                    for plane in (None, planes[0]):
                        words = damaged.view(dtype).copy()
                        assert _in_place("planes", "place_exponents", words, centre, ebits, mbits, plane) == where
                        assert words.tobytes() == damaged.tobytes()  # nothing changed, in either twin
    # the bit patterns are the floats': a float32 round trip through fields and planes
    x = rng.standard_normal(50).astype(np.float32)
    bits = x.view(np.uint32)
    out = (((bits >> 23) & 0xFF).astype(np.int32) - 127).view(np.uint32)
    _in_place("planes", "place_exponents", out, 127, 8, 23)
    rest = (bits & 0x7FFFFF) | ((bits >> 31) << 23)
    for p in range(3):
        _in_place("planes", "merge_plane", out, ((rest >> (8 * p)) & 0xFF).astype(np.uint8), 8 * p, 23, 8)
    assert out.tobytes() == bits.tobytes()
    for args in [(np.zeros(3, np.int32), 127, 8, 23), (np.zeros((2, 3), np.uint32), 127, 8, 23)]:
        with pytest.raises(ValueError, match="out must be"):
            check("planes", "place_exponents", *args)
    with pytest.raises(ValueError, match="plane must be"):
        check("planes", "merge_plane", np.zeros(3, np.uint32), np.zeros(2, np.uint8), 0, 23, 8)
    with pytest.raises(ValueError, match="plane must be"):
        check("planes", "place_exponents", np.zeros(3, np.uint32), 127, 8, 23, np.zeros(3, np.int8))


def _adaptive():
    from codec.kernels import adaptive as ref

    rng = np.random.default_rng(2)
    table = check("adaptive", "cost_table")
    q = np.rint(rng.laplace(0, 6, (5, 40))).astype(np.int64)
    q[1, 7], q[3, 0] = 500, -400  # escapes of both signs
    E = 30
    lv = check("adaptive", "clip_levels", q, E)
    escapes = q.reshape(-1)[np.abs(q.reshape(-1)) > E].tolist()
    singles = [check("adaptive", "cost", lv, 40, E, k0, table) for k0 in range(8)]
    assert min(singles) > 0
    # several orders in one walk: each the single order's cost, in the order asked
    assert check("adaptive", "costs", lv, 40, E, list(range(8)), table) == singles
    assert check("adaptive", "costs", lv, 40, E, [5, 1, 2], table) == [singles[5], singles[1], singles[2]]
    for e in (0, 2, 3):  # no remainder bins, or its first ones
        small = check("adaptive", "clip_levels", q, e)
        assert check("adaptive", "costs", small, 40, e, [0, 1], table) == [
            check("adaptive", "cost", small, 40, e, k, table) for k in (0, 1)]
    with pytest.raises(ValueError):
        check("adaptive", "costs", lv, 40, E, list(range(9)), table)
    status, state, words = check("adaptive", "encode", lv, 40, E, 2)
    assert status == 0
    for e in (0, 1, 2, 3):  # the small escape limits: the gt flags and the remainder end early
        small = check("adaptive", "clip_levels", q, e)
        st_e, x_e, w_e = check("adaptive", "encode", small, 40, e, 0)
        esc_e = q.reshape(-1)[np.abs(q.reshape(-1)) > e].tolist()
        out = check("adaptive", "decode", w_e, x_e, 5, 40, e, 0, esc_e, 0, np.empty(200, np.int64))
        assert out[0] == 0 and out[2].tolist() == q.reshape(-1).tolist()
    check("adaptive", "encode", np.zeros(0, np.int16), 0, 0, 0)
    check("adaptive", "decode", b"", 1 << 16, 0, 0, 0, 0, [], 0, np.empty(0, np.int64))
    args = (5, 40, E, 2, escapes)
    assert check("adaptive", "decode", words, state, *args, 0, np.empty(200, np.int64))[0] == 0
    check("adaptive", "decode", words, state, *args, 3, np.empty(200, np.int32))
    check("adaptive", "decode", words, state, *args, 4, np.empty(200, np.int16))
    scale, zp = np.full(5, 0.25, np.float32), np.arange(5, dtype=np.int64)
    check("adaptive", "decode", words, state, *args, 1, np.empty(200, np.float32), scale, zp)
    huge = np.full(5, -(2**63), np.int64)
    assert check("adaptive", "decode", words, state, *args, 1, np.empty(200, np.float32), scale,
                 huge)[0] == ref.LA_ERR_AFFINE_RANGE
    assert check("adaptive", "decode", words, state, *args, 2, np.empty(200, np.float32), None, None,
                 np.zeros(3, np.float32))[0] == ref.LA_ERR_CODEBOOK
    dq = check("adaptive", "decode", words, state, *args, 5, np.empty(200, np.float32), scale)  # LC_OUT_DQ
    want = np.empty(200, np.float32)
    assert PURE["trellis"].dequantize(q.reshape(-1).copy(), 5, 40, scale, want)[0] == 0
    assert dq[0] == 0 and dq[2].tobytes() == want.tobytes()
    far = list(escapes)
    far[0] = 1 << 31  # (of escapes[0]'s sign)
    assert check("adaptive", "decode", words, state, 5, 40, E, 2, far, 5, np.empty(200, np.float32),
                 scale)[0] == ref.LC_ERR_DQ_LEVEL
    # damaged: cut and extra words, a bad state, escape lists too short, too long, of the wrong sign
    assert check("adaptive", "decode", words[:-2], state, *args, 0, np.empty(200, np.int64))[0] < 0
    assert check("adaptive", "decode", words + b"\x01\x00", state, *args, 0,
                 np.empty(200, np.int64))[0] == ref.LA_ERR_WORDS_LEFT
    assert check("adaptive", "decode", words, 5, *args, 0, np.empty(200, np.int64))[:2] == (ref.LA_ERR_BAD_STATE, -4)
    assert check("adaptive", "decode", words, state, 5, 40, E, 2, escapes[:1], 0,
                 np.empty(200, np.int64))[0] == ref.LA_ERR_ESCAPES
    assert check("adaptive", "decode", words, state, 5, 40, E, 2, escapes + [99], 0,
                 np.empty(200, np.int64))[0] == ref.LA_ERR_ESCAPES
    assert check("adaptive", "decode", words, state, 5, 40, E, 2, [-v for v in escapes], 0,
                 np.empty(200, np.int64))[0] == ref.LA_ERR_ESCAPE_SIGN
    # a smaller escape limit than the words were coded for: magnitudes past E + 1 or long prefixes
    seen = set()
    for e, k in ((3, 2), (10, 0), (29, 2), (30, 0), (30, 7)):
        seen.add(check("adaptive", "decode", words, state, 5, 40, e, k, escapes, 0, np.empty(200, np.int64))[0])
    assert ref.LA_ERR_MAGNITUDE in seen, seen
    # random words (this seed was found by search) run into a prefix of more than 7 ones
    junk = np.random.default_rng(23)
    junk_words, junk_state = junk.integers(0, 256, 64, dtype=np.uint8).tobytes(), int(junk.integers(1 << 16, 1 << 32))
    assert check("adaptive", "decode", junk_words, junk_state, 1, 16, 127, 0, [], 0,
                 np.empty(16, np.int64))[0] == ref.LA_ERR_PREFIX
    # and many more random word streams: every error where the reference finds it
    statuses = set()
    for _ in range(300):
        junk_words = junk.integers(0, 256, int(junk.integers(0, 40)) * 2, dtype=np.uint8).tobytes()
        e, k = int(junk.integers(0, 128)), int(junk.integers(0, 8))
        statuses.add(check("adaptive", "decode", junk_words, int(junk.integers(1 << 16, 1 << 32)), 2, 8, e, k,
                           [5000, -5000], 0, np.empty(16, np.int64))[0])
    assert {ref.LA_ERR_PREFIX, ref.LA_ERR_MAGNITUDE, ref.LA_ERR_WORDS_TRUNCATED} <= statuses, statuses
    for j in range(0, len(words), 7):
        flipped = bytearray(words)
        flipped[j] ^= 1 << (j % 8)
        check("adaptive", "decode", bytes(flipped), state, *args, 0, np.empty(200, np.int64))
        check("adaptive", "decode", words, state ^ (1 << (j % 31)), *args, 0, np.empty(200, np.int64))
    with pytest.raises(ValueError, match="clipped"):
        check("adaptive", "encode", np.array([5, -40], np.int16), 2, 30, 0)
    with pytest.raises(ValueError, match="k0 must be"):
        check("adaptive", "cost", lv, 40, E, 8, table)
    with pytest.raises(ValueError, match="E must be"):
        check("adaptive", "decode", words, state, 5, 40, 128, 0, [], 0, np.empty(200, np.int64))
    with pytest.raises(ValueError, match="2\\^15 entries"):
        check("adaptive", "cost", lv, 40, E, 0, table[:10])
    with pytest.raises(ValueError, match="E must be"):
        check("adaptive", "clip_levels", q, -1)


def _trellis():
    from codec.kernels import trellis as ref

    rng = np.random.default_rng(5)
    shapes = [(0, 0), (3, 0), (0, 4), (1, 1), (1, 2), (2, 3), (4, 37), (7, 64)]
    for i, (rows, cols) in enumerate(shapes * 3):
        x = rng.laplace(0, float(rng.uniform(0.3, 12)), (rows, cols))
        if i % 3 == 1:
            x = np.round(x * 2) / 2  # ties between candidates: the earlier one stays
            x[x == 0] = -0.0
        limit = int(rng.integers(0, 24))
        lam_rate = rng.uniform(0, 4, 2 * limit + 1) if i % 4 else np.zeros(2 * limit + 1)
        levels = check("trellis", "quantize", x, lam_rate, limit)
        assert levels.shape == (rows, cols) and (np.abs(levels) <= limit).all()
        q = levels.reshape(-1).copy()
        assert _in_place("trellis", "reconstruct", q, rows, cols) == (0, 0, 0)
        if i == len(shapes):  # and once on a larger grid where the optimum matters
            rows, cols, limit = 6, 50, 40
            x = rng.laplace(0, 3.0, (rows, cols))
            lam_rate = np.zeros(2 * limit + 1)
            q = check("trellis", "quantize", x, lam_rate, limit).reshape(-1)
            _in_place("trellis", "reconstruct", q, rows, cols)
        if x.size and not lam_rate.any() and limit > np.abs(x).max() + 2:
            # no rate, nothing clipped: the search's squared error is at most that of the greedy path
            # (each weight to the nearest level of its state's quantizer), one of the paths it weighs
            greedy = 0.0
            for row in x:
                state = 0
                for v in row:
                    p = state & 1
                    m = np.floor((abs(v) + p) / 2)
                    mag = min((m, m + 1), key=lambda c: abs(abs(v) - (2 * c - p if c > 0 else 0)))
                    greedy += (abs(v) - (2 * mag - p if mag > 0 else 0)) ** 2
                    state = ref.DQ_NEXT_STATE[state][int(mag) & 1]
            assert ((q.reshape(rows, cols) - x) ** 2).sum() <= greedy + 1e-9
        if i % 2 and cols:  # weighted squared error per column (importance)
            weight = rng.uniform(0, 3, cols)
            weight[0] = 0.0
            check("trellis", "quantize", x, lam_rate, limit, weight)
    # beyond the limit, huge magnitudes clip
    check("trellis", "quantize", np.array([[1e12, -1e12, 3.0, 1e300]]), np.ones(7), 3)
    with pytest.raises(TypeError, match="one entry per column"):
        check("trellis", "quantize", np.zeros((2, 3)), np.zeros(3), 1, np.ones(2))
    # levels reconstruct whatever their source; the first level of magnitude >= 2^31 is reported
    q = rng.integers(-9, 10, 60).astype(np.int64)
    assert _in_place("trellis", "reconstruct", q.copy(), 6, 10) == (0, 0, 0)
    for bad in (2**31, -(2**31), 2**62):
        damaged = q.copy()
        damaged[[17, 40]] = bad
        assert _in_place("trellis", "reconstruct", damaged, 6, 10) == (ref.DQ_ERR_LEVEL, 0, 17)
    # fused with the scaling: the same values as reconstruct then float32(q) * scale of the row
    def dequantize_both(levels, rows, cols, scale):
        from tests.twins import CHECKED, FAST, PURE

        results = []
        for twins in (PURE, FAST) if FAST is not None else (PURE,):
            out = np.full(rows * cols, 7.0, np.float32)  # unchanged on error
            results.append((twins["trellis"].dequantize(levels, rows, cols, scale, out), out.tobytes()))
        assert all(r == results[0] for r in results), "trellis.dequantize: results differ"
        CHECKED.add(("trellis", "dequantize", "ok" if results[0][0][0] == 0 else "error"))
        return results[0][0], np.frombuffer(results[0][1], np.float32)

    scale = rng.uniform(1e-3, 4, 6).astype(np.float32)
    status, fused = dequantize_both(q, 6, 10, scale)
    plain = q.copy()
    _in_place("trellis", "reconstruct", plain, 6, 10)
    assert status == (0, 0, 0)
    assert fused.tobytes() == (plain.reshape(6, 10).astype(np.float32) * scale[:, None]).reshape(-1).tobytes()
    huge = q.copy()
    huge[[3, 50]] = -(2**31)
    status, out = dequantize_both(huge, 6, 10, scale)
    assert status == (ref.DQ_ERR_LEVEL, 0, 3) and (out == 7.0).all()
    assert dequantize_both(np.zeros(0, np.int64), 0, 5, np.zeros(0, np.float32))[0] == (0, 0, 0)
    with pytest.raises(TypeError, match="one entry per row"):
        check("trellis", "dequantize", q, 6, 10, scale[:5], np.zeros(60, np.float32))
    with pytest.raises(TypeError, match="rows \\* cols elements"):
        check("trellis", "dequantize", q, 6, 10, scale, np.zeros(59, np.float32))
    edge = np.array([2**31 - 1, -(2**31 - 1)], np.int64)
    _in_place("trellis", "reconstruct", edge, 1, 2)
    assert edge.tolist() == [2**32 - 2, -(2**32 - 2)]  # state 0, then (k odd) state 2: both even multiples
    with pytest.raises(TypeError, match="1-D int64"):
        check("trellis", "reconstruct", np.zeros(4, np.int32), 2, 2)
    with pytest.raises(ValueError, match="rows \\* cols"):
        check("trellis", "reconstruct", np.zeros(4, np.int64), 3, 2)
    with pytest.raises(TypeError, match="float64"):
        check("trellis", "quantize", np.zeros((2, 2), np.float32), np.zeros(3), 1)
    with pytest.raises(ValueError, match="2 \\* limit \\+ 1"):
        check("trellis", "quantize", np.zeros((2, 2)), np.zeros(4), 1)
    with pytest.raises(ValueError, match="2 \\* limit \\+ 1"):
        check("trellis", "quantize", np.zeros((2, 2)), np.zeros(3), -1)


def _pq():
    from tests.twins import CHECKED, FAST, PURE

    def gather(levels, codebook, n, accumulate, start=None):
        results = []
        for twins in (PURE, FAST) if FAST is not None else (PURE,):
            out = np.full(n, 0.25, np.float32) if start is None else start.copy()
            results.append((twins["pq"].gather(levels, codebook, out, accumulate), out.tobytes()))
        assert all(r == results[0] for r in results), "pq.gather: results differ"
        CHECKED.add(("pq", "gather", "ok" if results[0][0] == -1 else "error"))
        return results[0][0], np.frombuffer(results[0][1], np.float32)

    rng = np.random.default_rng(8)
    for k, d, n in [(1, 1, 0), (1, 4, 3), (5, 2, 9), (256, 4, 1000), (300, 3, 31), (7, 16, 16 * 5 - 1)]:
        cb = rng.standard_normal((k, d)).astype(np.float32)
        v = -(-n // d)
        index = rng.integers(0, k, v)
        levels = np.where(index & 1, (index + 1) >> 1, -(index >> 1)).astype(np.int64)
        status, out = gather(levels, cb, n, False)
        assert status == -1 and out.tobytes() == cb[index].reshape(-1)[:n].tobytes()
        status, twice = gather(levels, cb, n, True, start=out)
        assert status == -1 and twice.tobytes() == (out + cb[index].reshape(-1)[:n]).tobytes()
        if v:  # damaged: an index at or past K, an extreme level; the vectors before it are written
            for bad in (k, 2**62, -(2**63), 2**63 - 1):
                damaged = levels.copy()
                at = v // 2
                damaged[at] = (bad + 1) >> 1 if bad == k and bad & 1 else -(bad >> 1) if bad == k else bad
                assert gather(damaged, cb, n, False)[0] == at
    with pytest.raises(ValueError, match="ceil"):
        check("pq", "gather", np.zeros(3, np.int64), np.zeros((2, 4), np.float32), np.zeros(13, np.float32), False)
    with pytest.raises(ValueError, match="int64"):
        check("pq", "gather", np.zeros(3, np.int32), np.zeros((2, 4), np.float32), np.zeros(12, np.float32), False)
    with pytest.raises(ValueError, match="float32 array of at least"):
        check("pq", "gather", np.zeros(3, np.int64), np.zeros((2, 4)), np.zeros(12, np.float32), False)


CASES = {"bitio": _bitio, "crc32c": _crc32c, "index": _index, "rans": _rans, "adaptive": _adaptive,
         "ternary": _ternary, "masks": _masks, "planes": _planes, "trellis": _trellis, "pq": _pq}


@pytest.mark.parametrize("stem", sorted(CASES))
def test_twins_agree(stem):
    CASES[stem]()
    pure = public_callables(PURE[stem])
    ran = {name.split(".")[0] for s, name, _ in CHECKED if s == stem}
    assert set(pure) <= ran, f"{stem}: no case for {sorted(set(pure) - ran)}"
    decoders = {name for name, fn in pure.items() if name.endswith("decode") or name == "read_index_entries"}
    rejected = {name for s, name, kind in CHECKED if s == stem and kind == "error"}
    assert decoders <= rejected, f"{stem}: no damaged input for {sorted(decoders - rejected)}"


def test_every_kernel_stem_has_cases():
    assert sorted(CASES) == sorted(PURE)
