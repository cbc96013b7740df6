"""Bit I/O: descriptors against an independent oracle (bitstring), and pure == fast."""

import bitstring
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec.kernels import bitio
from codec.errors import EncodeError, FormatError, TruncatedError

try:
    from codec._fast import bitio as fast
except ImportError:  # pure-only build
    fast = None

BACKENDS = [bitio] + ([fast] if fast is not None else [])
both = pytest.mark.parametrize("mod", BACKENDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])

# A program is a list of (descriptor, arg, value) to write then read back.
ops = st.one_of(
    st.tuples(st.just("u"), st.integers(0, 64)).flatmap(
        lambda t: st.tuples(st.just("u"), st.just(t[1]), st.integers(0, (1 << t[1]) - 1))),
    st.tuples(st.just("ue"), st.integers(0, 8)).flatmap(
        lambda t: st.tuples(st.just("ue"), st.just(t[1]),
                            st.one_of(st.integers(0, 300), st.integers(0, (1 << 64) - (1 << t[1]) - 1)))),
    st.tuples(st.just("se"), st.integers(0, 8)).flatmap(
        lambda t: st.tuples(st.just("se"), st.just(t[1]), st.integers(-(1 << 62), 1 << 62))),
    st.tuples(st.just("align"), st.just(0), st.just(0)),
    st.tuples(st.just("u32le"), st.just(0), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("i64le"), st.just(0), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("st"), st.just(0), st.text(max_size=10)),
)


def run_program(mod, program):
    w = mod.BitWriter()
    for op, arg, value in program:
        if op in ("u32le", "i64le", "st"):
            w.byte_alignment()
            getattr(w, op)(value)
        elif op == "align":
            w.byte_alignment()
        else:
            getattr(w, op)(arg, value)
    w.byte_alignment()
    data = w.getvalue()
    r = mod.BitReader(data)
    for op, arg, value in program:
        if op in ("u32le", "i64le", "st"):
            r.byte_alignment()
            assert getattr(r, op)() == value
        elif op == "align":
            r.byte_alignment()
        else:
            assert getattr(r, op)(arg) == value
    return data


@given(st.lists(ops, max_size=30))
def test_program_roundtrip_and_backends_agree(program):
    outputs = {m.__name__: run_program(m, program) for m in BACKENDS}
    assert len(set(outputs.values())) == 1


@given(st.lists(st.integers(0, 10**6), max_size=20), st.lists(st.integers(-(10**6), 10**6), max_size=20))
def test_exp_golomb_matches_bitstring(ues, ses):
    # bitstring implements 0th-order ue/se as in H.264: an independent oracle for our codes.
    for mod in BACKENDS:
        w = mod.BitWriter()
        for v in ues:
            w.ue(0, v)
        for v in ses:
            w.se(0, v)
        w.byte_alignment()
        expected = bitstring.BitArray()
        for v in ues:
            expected.append(bitstring.Bits(ue=v))
        for v in ses:
            expected.append(bitstring.Bits(se=v))
        expected.append(bitstring.Bits(uint=0, length=-len(expected) % 8) if len(expected) % 8 else bitstring.Bits())
        assert w.getvalue() == expected.tobytes()


@given(st.lists(st.tuples(st.integers(1, 64), st.data()), max_size=20))
def test_u_matches_bitstring(fields):
    spec = []
    for n, data in fields:
        spec.append((n, data.draw(st.integers(0, (1 << n) - 1))))
    for mod in BACKENDS:
        w = mod.BitWriter()
        for n, v in spec:
            w.u(n, v)
        w.byte_alignment()
        expected = bitstring.BitArray()
        for n, v in spec:
            expected.append(bitstring.Bits(uint=v, length=n))
        expected.append(bitstring.Bits(uint=0, length=-len(expected) % 8) if len(expected) % 8 else bitstring.Bits())
        assert w.getvalue() == expected.tobytes()


def test_exp_golomb_examples_from_spec():
    examples = {(0, 0): "1", (0, 1): "010", (0, 2): "011", (0, 3): "00100", (0, 7): "0001000",
                (1, 0): "10", (1, 1): "11", (1, 2): "0100"}
    for mod in BACKENDS:
        for (k, v), bits in examples.items():
            w = mod.BitWriter()
            w.ue(k, v)
            w.byte_alignment()
            assert bitstring.Bits(w.getvalue()).bin[: len(bits)] == bits
    se = {0: 0, 1: 1, -1: 2, 2: 3, -2: 4}
    for mod in BACKENDS:
        for v, code in se.items():
            a, b = mod.BitWriter(), mod.BitWriter()
            a.se(0, v)
            b.ue(0, code)
            a.byte_alignment()
            b.byte_alignment()
            assert a.getvalue() == b.getvalue()


@both
def test_extreme_values(mod):
    w = mod.BitWriter()
    w.u(64, 2**64 - 1)
    w.ue(0, 2**64 - 2)
    w.ue(5, 2**64 - 33)
    w.se(0, 2**63 - 1)
    w.se(0, -(2**63 - 1))
    w.byte_alignment()
    r = mod.BitReader(w.getvalue())
    assert r.u(64) == 2**64 - 1
    assert r.ue(0) == 2**64 - 2
    assert r.ue(5) == 2**64 - 33
    assert r.se(0) == 2**63 - 1
    assert r.se(0) == -(2**63 - 1)


def errors_of(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - we compare the exact type and message
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("case", [
    lambda m: m.BitWriter().u(3, 8),
    lambda m: m.BitWriter().u(3, -1),
    lambda m: m.BitWriter().ue(0, -1),
    lambda m: m.BitWriter().ue(0, 2**64 - 1),
    lambda m: m.BitWriter().ue(3, 2**64 - 8),
    lambda m: m.BitWriter().se(0, -(2**63)),
    lambda m: m.BitWriter().u32le(2**32),
    lambda m: m.BitWriter().u16le(-1),
    lambda m: m.BitWriter().u_array(4, [1, 16, -3]),
    lambda m: m.BitWriter().ue_array(0, [5, -1]),
    lambda m: m.BitReader(b"\x00").ue(0),
    lambda m: m.BitReader(b"\x00" * 9).ue(0, "x"),
    lambda m: m.BitReader(b"\x00" * 9).ue(60, "x"),
    lambda m: m.BitReader(b"\xff").u(9, "field"),
    lambda m: _unaligned_nonzero(m),
    lambda m: m.BitReader(b"\x05\x00ab").st("name"),
    lambda m: m.BitReader(b"\x02\x00\xff\xfe").st("name"),
    lambda m: m.BitReader(b"\x10\x00" + b"a" * 16).st("name", max_bytes=8),
    lambda m: m.BitReader(b"\x01\x02").u32le("n"),
    lambda m: m.BitReader(b"\xff").u_array(3, 3, "arr"),
    lambda m: m.BitReader(b"\x00").ue_array(0, 9, "arr"),
])
def test_errors_identical(case):
    results = {m.__name__: errors_of(lambda: case(m)) for m in BACKENDS}
    values = list(results.values())
    assert values[0] is not None, "case should raise"
    assert all(v == values[0] for v in values), results


def _unaligned_nonzero(m):
    r = m.BitReader(b"\x81", base_offset=10)
    r.path = "layers[2]"
    r.u(1, "flag")
    r.byte_alignment()


def test_error_messages_name_path_and_offset():
    r = bitio.BitReader(b"\x81", base_offset=10)
    r.path = "layers[2]"
    r.u(1, "flag")
    with pytest.raises(FormatError, match=r"^layers\[2\]\.alignment_zero_bits at bit 81: alignment bits are not zero"):
        r.byte_alignment()
    with pytest.raises(TruncatedError) as info:
        bitio.BitReader(b"\xff", base_offset=3).u(16, "x")
    assert info.value.bits_needed == 16 and info.value.bits_available == 8
    assert str(info.value) == "x at byte 3: need 16 bits, 8 left"
    with pytest.raises(EncodeError):
        bitio.BitWriter().u(2, 4)


@both
@given(st.integers(0, 64), st.lists(st.integers(0, 2**64 - 1), max_size=50))
def test_u_array_roundtrip(mod, n, values):
    values = [v & ((1 << n) - 1) for v in values]
    w = mod.BitWriter()
    w.u(3, 5)  # start unaligned
    w.u_array(n, np.array(values, dtype=np.uint64))
    w.byte_alignment()
    data = w.getvalue()
    ref = bitio.BitWriter()
    ref.u(3, 5)
    for v in values:
        ref.u(n, v)
    ref.byte_alignment()
    assert data == ref.getvalue()
    r = mod.BitReader(data)
    r.u(3)
    assert r.u_array(n, len(values)).tolist() == values


@both
@given(st.integers(0, 10), st.lists(st.integers(0, 2**40), max_size=50))
def test_ue_array_roundtrip(mod, k, values):
    w = mod.BitWriter()
    w.ue_array(k, np.array(values, dtype=np.uint64))
    w.byte_alignment()
    r = mod.BitReader(w.getvalue())
    assert r.ue_array(k, len(values)).tolist() == values


def test_trace_records_fields():
    trace = []
    w = bitio.BitWriter()
    w.ue(0, 3)
    w.u(3, 5)
    w.byte_alignment()
    w.u16le(513)
    r = bitio.BitReader(w.getvalue(), base_offset=100, trace=trace)
    r.path = "x"
    r.ue(0, "a")
    r.u(3, "b")
    r.byte_alignment()
    r.u16le("c")
    assert [(f.path, f.bit_offset, f.bits, f.descriptor, f.value) for f in trace] == [
        ("x.a", 800, 5, "ue(0)", 3), ("x.b", 805, 3, "u(3)", 5), ("x.c", 808, 16, "u16le", 513)]

