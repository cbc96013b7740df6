"""Damaged files on every read path, each path on its own (a path that stops checking must not be
hidden by another that raises first): every bit flip and every truncation of a file that holds
every coding mode and variant. Also the safety rules that hand-made mutants showed untested:
rANS final states, verify=False, the stream reader's index checks, limits at the value."""

import io

import numpy as np
import pytest

import codec
from codec import _backend, levels
from codec.errors import ChecksumError, CodecError, FormatError, LimitError, TruncatedError
from codec.format import IndexEntry, write_index_payload


def every_mode_file() -> bytes:
    rng = np.random.default_rng(8)
    w = (rng.standard_normal((4, 8)) * 0.1).astype(np.float32)
    nm = np.where(codec.masks.prune_nm(w, 2, 4), w, 0).astype(np.float32)
    layers = [
        ("raw", w, dict(mode="raw")),
        ("zstd", w, dict(mode="zstd")),
        ("entropy", np.rint(w * 300).astype(np.int16), dict(mode="entropy")),
        ("quantized", w, dict(mode="quantized", method="uniform_zp", bits=4, granularity="channel")),
        ("codebook", w, dict(mode="quantized", method="codebook", bits=2)),
        ("dq", w, dict(mode="dq", bits=4, granularity="channel")),
        ("pq", w, dict(mode="pq", dim=4, centroids=16, stages=2)),
        ("lowrank", w, dict(mode="lowrank_sparse", rank=2, density=0.5)),
        ("floatplanes", w, dict(mode="floatplanes")),
        ("ternary.flag", np.sign(np.rint(w * 10)).astype(np.int8), dict(mode="ternary", scheme="flag")),
        ("ternary.base3", np.sign(np.rint(w * 10)).astype(np.int8), dict(mode="ternary", scheme="base3")),
        ("ternary.entropy", codec.ternary.ternarize(w, axis=0), dict(mode="ternary", scheme="entropy", axis=0)),
        ("sparse.bitmap", np.where(np.abs(w) > 0.1, w, 0), dict(mode="sparse", values_mode="quantized", bits=8)),
        ("sparse.nm", nm, dict(mode="sparse", nm=(2, 4), values_mode="floatplanes")),
        ("sparse.dq", nm, dict(mode="sparse", nm=(2, 4), values_mode="dq", step=2 ** -5)),
        ("sparse.hier", np.where(np.tile([1, 1, 0, 0, 0, 0, 0, 0], (4, 1)) > 0, w, 0).astype(np.float32),
         dict(mode="sparse", nm=[(1, 2), (2, 4)], values_mode="raw")),
        ("sparse.hybrid", np.vstack([w[:2], nm[2:]]), dict(mode="sparse", nm=(2, 4), hybrid=2, values_mode="zstd")),
    ]
    buf = io.BytesIO()
    with codec.Writer(buf) as writer:
        for name, array, params in layers:
            writer.add_layer(name, array, **params)
    return buf.getvalue()


DATA = every_mode_file()


def _get_all(data):
    with codec.Reader(data) as r:
        return [r.get(name) for name in r]


def _stream(data):
    return [a for _, a in codec.iter_stream(io.BytesIO(data))]


def _verify(data):
    with codec.Reader(data) as r:
        r.verify()


PATHS = {"decode": codec.decode, "get": _get_all, "stream": _stream, "verify": _verify}


def _layers():
    with codec.Reader(DATA) as r:
        return [r.header(name) for name in r]


def test_the_file_holds_every_mode():
    from codec.modes import registered_modes

    # delta layers need a delta bitstream and its base: tests/test_delta.py damages one
    assert {h.mode_name for h in _layers()} == {m.name for m in registered_modes()} - {"delta"}
    reference = codec.decode(DATA)
    for name, path in PATHS.items():
        if name != "verify":
            out = path(DATA)
            assert len(out) == len(reference)


@pytest.mark.parametrize("path", list(PATHS))
def test_every_payload_bit_flip_is_a_checksum_error(path):
    read = PATHS[path]
    missed = []
    for h in _layers():
        for bit in range(h.payload_size * 8):
            damaged = bytearray(DATA)
            damaged[h.payload_offset + bit // 8] ^= 0x80 >> (bit % 8)
            try:
                read(bytes(damaged))
            except ChecksumError as exc:
                assert f"{h.path}.unit_payload" in str(exc)
                continue
            except CodecError as exc:  # another error first: the payload checksum was not checked first
                missed.append((h.layer_name, bit, f"{type(exc).__name__}: {exc}"))
                continue
            missed.append((h.layer_name, bit, "no error"))
    assert missed == []


@pytest.mark.parametrize("path", ["decode", "stream"])  # the two parsers (get and verify: as decode's)
def test_every_bit_flip_is_detected(path):
    read = PATHS[path]
    undetected = []
    for bit in range(len(DATA) * 8):
        damaged = bytearray(DATA)
        damaged[bit // 8] ^= 0x80 >> (bit % 8)
        try:
            read(bytes(damaged))
        except CodecError:
            continue
        undetected.append(bit)
    assert undetected == []


@pytest.mark.parametrize("path", list(PATHS))
def test_every_truncation_is_an_error(path):
    read = PATHS[path]
    for n in range(len(DATA)):
        with pytest.raises(CodecError):
            read(DATA[:n])


def test_get_with_verify_false_skips_only_the_checksum():
    h = next(h for h in _layers() if h.layer_name == "raw")
    damaged = bytearray(DATA)
    damaged[h.payload_offset] ^= 0x01
    with codec.Reader(bytes(damaged)) as r:
        with pytest.raises(ChecksumError):
            r.get("raw")
        changed = r.get("raw", verify=False)
    with codec.Reader(bytes(damaged), verify=False) as r:
        assert r.get("raw").tobytes() == changed.tobytes()
    assert changed.tobytes() != codec.decode(DATA)["raw"].tobytes()


@pytest.mark.parametrize("shape", [(8, 50), (16, 200), (1, 1000)])
def test_every_flip_of_the_rans_states_is_caught(shape):
    # the final-state check covers every state: a flipped lc_rans_state always raises; a flipped
    # word almost always (rANS has no redundancy of its own: the payload checksum is the guard)
    rng = np.random.default_rng(4)
    q = np.rint(rng.laplace(0, 2, shape)).astype(np.int64)
    payload = levels.encode_levels(q, *shape)
    parsed = levels.read_levels_payload(_backend.bit_reader(payload, 0, "p"), *shape)
    words_offset = parsed.words_offset
    states_offset = words_offset - 4 * len(parsed.states)
    silent = {"states": [], "words": []}
    for bit in range(states_offset * 8, len(payload) * 8):
        damaged = bytearray(payload)
        damaged[bit // 8] ^= 0x80 >> (bit % 8)
        try:
            out = levels.decode_levels(bytes(damaged), *shape)
        except FormatError:
            continue
        if not np.array_equal(out, q.reshape(-1)):
            silent["states" if bit < words_offset * 8 else "words"].append(bit)
    assert silent["states"] == []
    assert len(silent["words"]) <= (len(payload) - words_offset) * 8 // 1000, silent


def _with_index(data: bytes, entries) -> bytes:
    """The file with another index payload (same size), every checksum recomputed."""
    from codec.format import padding_size, read_trailer, write_unit_header

    index_offset, _ = read_trailer(data[-24:], len(data) - 24)
    payload = write_index_payload(entries)
    header = write_unit_header(2, b"", len(payload), _backend.crc32c(payload))
    return data[:index_offset] + header + bytes(padding_size(index_offset + len(header))) + payload + data[-24:]


def test_stream_reader_checks_the_index_against_the_units():
    with codec.Reader(DATA) as r:
        entries = [IndexEntry(name, r.header(name).unit_offset, r.header(name).unit_size) for name in r]
    assert _with_index(DATA, entries) == DATA
    wrong_size = [e._replace(unit_size=e.unit_size + 8) if i == 3 else e for i, e in enumerate(entries)]
    wrong_name = [e._replace(name="other") if i == 5 else e for i, e in enumerate(entries)]
    wrong_offset = [e._replace(unit_offset=e.unit_offset + 8) if i == 2 else e for i, e in enumerate(entries)]
    for bad in (wrong_size, wrong_name, wrong_offset):
        for path in ("stream", "get", "decode"):
            with pytest.raises(FormatError):
                PATHS[path](_with_index(DATA, bad))


def test_stream_reader_checks_the_trailer():
    from codec.format import write_trailer

    index_offset = int.from_bytes(DATA[-24:-16], "little")
    for trailer in (write_trailer(index_offset, 12), write_trailer(index_offset + 8, 13)):
        damaged = DATA[:-24] + trailer
        for path in ("stream", "get", "decode"):
            with pytest.raises(FormatError):
                PATHS[path](damaged)


def test_limits_accept_the_value_and_refuse_one_past():
    names = {h.layer_name: h for h in _layers()}
    biggest = max(h.num_elements for h in names.values())
    longest_name = max(len(n.encode()) for n in names)
    header_bytes = max(h.unit_header_size for h in names.values())
    nbytes = max(h.num_elements * codec.dtypes.storage_dtype(h).itemsize for h in names.values())
    with codec.Reader(DATA) as r:
        metadata_bytes = r.network_header.network_header_size
    at = dict(max_layers=len(names), max_elements_per_layer=biggest, max_name_bytes=longest_name,
              max_header_bytes=header_bytes, max_metadata_bytes=metadata_bytes)
    for field, value in at.items():
        codec.decode(DATA, limits=codec.Limits(**{field: value}))
        with pytest.raises(LimitError, match=field):
            codec.decode(DATA, limits=codec.Limits(**{field: value - 1}))
    with codec.Reader(DATA, limits=codec.Limits(max_decoded_bytes=nbytes)) as r:
        for name in r:
            r.get(name)
    with codec.Reader(DATA, limits=codec.Limits(max_decoded_bytes=nbytes - 1)) as r:
        with pytest.raises(LimitError, match="max_decoded_bytes"):
            for name in r:
                r.get(name)
    total = sum(a.nbytes for a in codec.decode(DATA).values())
    codec.decode(DATA, limits=codec.Limits(max_decoded_bytes=total))
    with pytest.raises(LimitError, match="max_decoded_bytes"):
        codec.decode(DATA, limits=codec.Limits(max_decoded_bytes=total - 1))


def test_rank_nine_is_a_format_error_not_a_limit():
    from tests.helpers import assemble, layer_body

    data = assemble([(1, layer_body(shape=(1,) * 9, rank=9), b"", "w")])
    with pytest.raises(FormatError) as info:
        codec.decode(data)
    assert not isinstance(info.value, LimitError) and "rank 9 exceeds 8" in str(info.value)
    data = assemble([(1, layer_body(shape=(1,) * 8, rank=8), b"\x00\x00\x80\x3f", "w")])
    assert codec.decode(data)["w"].shape == (1,) * 8


@pytest.mark.parametrize("limit,ok", [(127, True), (128, False)])
def test_escape_limit_127_is_the_largest(limit, ok):
    w = _backend.BitWriter()
    w.ue(0, limit)
    w.u(4, 0)
    alphabet = 2 * limit + 2
    levels.write_table(w, [1] + [0] * (alphabet - 1))
    w.ue(0, 0)
    w.byte_alignment()
    payload = w.getvalue() + (1 << 16).to_bytes(4, "little") * levels.LC_STATES
    if ok:
        assert levels.decode_levels(payload, 1, 0, version=1).size == 0
    else:
        with pytest.raises(FormatError, match="lc_escape_limit 128 exceeds 127"):
            levels.decode_levels(payload, 1, 0, version=1)


def _levels_payload(n_escapes: int, words: bytes = b"", cut_bits: int = 0) -> bytes:
    """A levels_payload() with E = 0 (symbols: level 0, escape), one class, n_escapes escapes of +1."""
    w = _backend.BitWriter()
    w.ue(0, 0)  # lc_escape_limit
    w.u(4, 0)  # one class
    levels.write_table(w, [1, 1])
    w.ue(0, n_escapes)
    for _ in range(n_escapes):
        w.u(1, 0)
        w.ue(0, 0)  # magnitude 0 + E + 1 = 1
    w.byte_alignment()
    data = w.getvalue() + (1 << 16).to_bytes(4, "little") * levels.LC_STATES + words
    return data[:len(data) - cut_bits // 8] if cut_bits else data


def test_escape_count_at_and_past_the_levels():
    with pytest.raises(FormatError, match=r"lc_escape_count 5 exceeds the levels or the payload"):
        levels.decode_levels(_levels_payload(5), 1, 4, version=1)
    with pytest.raises(CodecError) as info:
        levels.decode_levels(_levels_payload(4), 1, 4, version=1)  # as many as levels: past that check
    assert "lc_escape_count" not in str(info.value)


def test_escape_count_against_the_bits_left():
    # each escape takes at least 2 bits: a count the rest of the payload cannot hold is refused
    # when it is read, even by one or two bits
    hits = 0
    for count in range(150, 170):
        whole = _levels_payload(count)
        r = _backend.bit_reader(whole, 0, "p")
        r.ue(0, "e")
        r.u(4, "k")
        levels.read_table(r, 2, "t")
        r.ue(0, "c")
        position = r.pos  # bits up to and including lc_escape_count
        for short in (1, 2):
            if (position + 2 * count - short) % 8 == 0:
                cut = whole[:(position + 2 * count - short) // 8]
                with pytest.raises(TruncatedError, match=f"lc_escape_count {count} exceeds the levels or the payload"):
                    levels.decode_levels(cut, 1, 300, version=1)
                hits += 1
    assert hits >= 4


def test_more_rans_words_than_levels():
    with pytest.raises(FormatError, match=r"5 rANS words, at most 4 allowed"):
        levels.decode_levels(_levels_payload(0, words=b"\x01\x00" * 5), 1, 4, version=1)
    with pytest.raises(CodecError) as info:
        levels.decode_levels(_levels_payload(0, words=b"\x01\x00" * 4), 1, 4, version=1)
    assert "at most" not in str(info.value)


@pytest.mark.parametrize("dtype, ebits, centre", [("float32", 8, 127), ("float16", 5, 15)])
@pytest.mark.parametrize("edge", ["below", "above"])
def test_decoded_exponents_outside_their_field_are_refused(dtype, ebits, centre, edge):
    # a well-formed exponent payload (valid level coding) whose levels leave the exponent field:
    # the first level one past the range, the rest at its ends (which decode)
    from codec.format.constants import DType
    from codec.modes import floatplanes

    dt = DType.FLOAT32 if dtype == "float32" else DType.FLOAT16
    a = np.linspace(-2, 2, 24).astype(dtype)
    payload = floatplanes.encode_planes(a.view(f"u{a.itemsize}"), dt, 4, 6)
    exp_size = int.from_bytes(payload[:4], "little")
    rest = payload[4 + exp_size:]
    ends = np.array([-centre, (1 << ebits) - 1 - centre] * 12, dtype=np.int64)
    ok = levels.encode_levels(ends, 4, 6)
    decoded = floatplanes.decode_planes(len(ok).to_bytes(4, "little") + ok + rest, dt, 4, 6, path="w", base_offset=0)
    assert decoded.size == 24
    bad = ends.copy()
    bad[0] = -centre - 1 if edge == "below" else (1 << ebits) - centre
    coded = levels.encode_levels(bad, 4, 6)
    with pytest.raises(FormatError, match="decoded exponent outside its field") as info:
        floatplanes.decode_planes(len(coded).to_bytes(4, "little") + coded + rest, dt, 4, 6, path="w", base_offset=0)
    assert info.value.path == "w.fp_exponents"
