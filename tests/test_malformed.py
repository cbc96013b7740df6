"""Hostile and damaged input: only CodecError subclasses, with the element and position named,
quickly, and without allocations sized by untrusted fields."""

import io
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec
from codec import _backend
from codec.format.constants import MAGIC, VERSION_MINOR, UnitType
from codec.errors import ChecksumError, CodecError, FormatError, LimitError, TruncatedError, UnsupportedError
from codec.format import write_network_header
from tests.helpers import assemble, layer_body, raw_layer


def small_file() -> bytes:
    model = {
        "a.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "a.bias": np.array([1, -1], dtype=np.int8),
    }
    buf = io.BytesIO()
    with codec.Writer(buf, metadata={"k": [1, "v"], "f": 0.5}) as w:
        w.add_layer("a.weight", model["a.weight"], mode="zstd")
        w.add_layer("a.bias", model["a.bias"], mode="raw")
    return buf.getvalue()


def read_everything(data: bytes):
    """Decode a bitstream every way there is: random access with verify, and sequentially."""
    with codec.open(data) as r:
        r.verify()
        out = {name: r.get(name) for name in r}
    stream = {name: a for name, a in codec.iter_stream(io.BytesIO(data))}
    return out, stream


def test_small_file_is_valid():
    out, stream = read_everything(small_file())
    assert list(out) == list(stream) == ["a.weight", "a.bias"]


def test_truncation_at_every_byte():
    data = small_file()
    for n in range(len(data)):
        with pytest.raises(CodecError):
            read_everything(data[:n])


def test_every_single_bit_flip_is_detected():
    data = small_file()
    undetected = []
    for i in range(len(data) * 8):
        damaged = bytearray(data)
        damaged[i // 8] ^= 0x80 >> (i % 8)
        try:
            read_everything(bytes(damaged))
        except CodecError:
            continue
        undetected.append(i)
    assert undetected == []


def test_every_payload_bit_flip_raises_checksum_error():
    arr = np.random.default_rng(3).integers(0, 255, 200, dtype=np.uint8)
    data = codec.encode({"x": arr}, mode="raw")
    with codec.open(data) as r:
        h = r.header("x")
    for i in range(h.payload_size * 8):
        damaged = bytearray(data)
        damaged[h.payload_offset + i // 8] ^= 0x80 >> (i % 8)
        with codec.open(bytes(damaged)) as r:
            with pytest.raises(ChecksumError, match=r"^layers\[0\]\.unit_payload at byte \d+: payload crc32c"):
                r.get("x")


@given(st.binary(max_size=400))
def test_random_bytes(data):
    for candidate in (data, MAGIC + data, small_file()[:40] + data):
        with pytest.raises(CodecError):
            read_everything(candidate)


def test_not_a_bitstream_message():
    with pytest.raises(FormatError, match=r"^network_header\.nnc_magic at byte 0: not a codec bitstream"):
        codec.decode(b"GGUF" + bytes(100))
    with pytest.raises(TruncatedError):
        codec.decode(b"")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.nnc"
    p.write_bytes(b"")
    with pytest.raises(TruncatedError, match="file is empty"):
        codec.open(p)


def peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_2_to_the_60_elements():
    unit = (UnitType.LAYER, layer_body(shape=(2**30, 2**30), dtype=2), b"\x00" * 16, "w")
    data = assemble([unit])
    with pytest.raises(LimitError, match=r"^layers\[0\]\.layer_dim at bit \d+: 1152921504606846976 elements exceed"):
        codec.decode(data)
    # With the limits raised, the machine's memory (reserved, not touched) stops it before any work.
    huge = codec.Limits(max_elements_per_layer=2**62, max_decoded_bytes=2**64)
    for mode in (0, 1):
        data = assemble([(UnitType.LAYER, layer_body(shape=(2**30, 2**30), dtype=2, mode=mode), b"\x28\xb5\x2f\xfd" + bytes(12), "w")])
        peak = peak_bytes(lambda: pytest.raises(LimitError, codec.decode, data, limits=huge))
        assert peak < 4 << 20


def test_10_to_the_9_layers():
    header = write_network_header(layer_count=10**9, metadata={})
    data = assemble([], header=header, layer_count=10**9)
    with pytest.raises(LimitError, match=r"layer_count at byte 12: 1000000000 exceeds max_layers"):
        codec.decode(data)
    big = codec.Limits(max_layers=2**32)
    peak = peak_bytes(lambda: pytest.raises(FormatError, codec.decode, data, limits=big))
    assert peak < 4 << 20
    with pytest.raises(CodecError):
        list(codec.iter_stream(io.BytesIO(data), limits=big))


def test_rank_12_message():
    data = assemble([(UnitType.LAYER, layer_body(shape=(1,) * 12, rank=12), b"", "w")])
    with pytest.raises(FormatError, match=r"^layers\[0\]\.layer_rank at bit \d+: rank 12 exceeds 8$"):
        codec.decode(data)


def test_huge_metadata_counts():
    def header_with(body: bytes) -> bytes:
        w = _backend.BitWriter()
        w.b(MAGIC)
        w.u8(1)
        w.u8(0)
        w.u32le(20 + 4 + len(body) + 4)
        w.u32le(0)
        w.u16le(0)
        w.u32le(0)
        w.b(body)
        head = w.getvalue()
        return head + _backend.crc32c(head).to_bytes(4, "little")

    cases = [
        (b"\xff\xff\xff\xff", TruncatedError, "metadata_count"),  # 4e9 entries
        (b"\x01\x00\x00\x00" + b"\x01\x00k" + b"\x03\xff\xff\xff\xff", TruncatedError, "value_size"),
        (b"\x01\x00\x00\x00" + b"\x01\x00k" + b"\x05\x04\x00\x00\x00\xff\xff\xff\xff", FormatError, "list_count"),
        (b"\x01\x00\x00\x00" + b"\xff\xff" + b"k" * 10, CodecError, "metadata_key"),
        (b"\x02\x00\x00\x00" + (b"\x01\x00k" + b"\x02\x01\x00\x00\x00\x01") * 2, FormatError, "duplicate metadata key"),
        (b"\x01\x00\x00\x00" + b"\x01\x00k" + b"\x02\x01\x00\x00\x00\x07", FormatError, "bool value must be 0 or 1"),
        (b"\x01\x00\x00\x00" + b"\x01\x00k" + b"\x00\x04\x00\x00\x00abcd", FormatError, "int value_size must be 8"),
        (b"\x01\x00\x00\x00" + b"\x01\x00k" + b"\x03\x02\x00\x00\x00\xff\xfe", FormatError, "invalid UTF-8"),
    ]
    for body, error, match in cases:
        data = assemble([], header=header_with(body))
        with pytest.raises(error, match=match):
            codec.decode(data)


def test_deep_list_nesting_limit():
    value = 1
    for _ in range(8):
        value = [value]
    data = codec.encode({}, metadata={"deep": value})
    codec.decode(data)
    with pytest.raises(LimitError, match="nested deeper than max_nesting=3"):
        codec.decode(data, limits=codec.Limits(max_nesting=3))


def test_unknown_major_version():
    data = bytearray(small_file())
    data[8] = 3
    with pytest.raises(UnsupportedError, match=r"version 3\.x is not supported \(this reader knows 1\.x and 2\.x\)"):
        codec.decode(bytes(data))


def test_reserved_dtypes_and_unknown_mode_parse_but_do_not_decode():
    units = [
        (UnitType.LAYER, layer_body(index=0, name="fp8", dtype=32), b"\x00\x00", "fp8"),
        (UnitType.LAYER, layer_body(index=1, name="fp4", dtype=34), b"\x00", "fp4"),
        (UnitType.LAYER, layer_body(index=2, name="future", dtype=2, mode=77), b"\x00" * 8, "future"),
        raw_layer(np.arange(2, dtype=np.float32), index=3, name="ok"),
    ]
    data = assemble(units)
    with codec.open(data) as r:
        assert r.header("fp8").dtype_name == "float8_e4m3"
        assert r.header("future").mode_name == "unknown(77)"
        with pytest.raises(UnsupportedError, match=r"^layers\[0\]\.layer_dtype: dtype float8_e4m3 is reserved"):
            r.get("fp8")
        with pytest.raises(UnsupportedError, match="float4_e2m1"):
            r.get("fp4")
        with pytest.raises(UnsupportedError, match="coding_mode 77 is not supported"):
            r.get("future")
        assert r.get("ok").tolist() == [0, 1]
        r.verify()


def test_unknown_dtype_code_rejected():
    data = assemble([(UnitType.LAYER, layer_body(dtype=99), b"\x00" * 8, "w")])
    with pytest.raises(FormatError, match="unknown dtype code 99"):
        codec.decode(data)


def test_reserved_kind_reads_as_other():
    data = assemble([raw_layer(np.ones(2, np.float32), kind=12)])
    with codec.open(data) as r:
        assert r.header("w").kind_name == "other"


def test_ancillary_units_are_skipped_critical_rejected():
    layer0 = raw_layer(np.ones(2, np.float32), index=0, name="a")
    layer1 = raw_layer(np.zeros(3, np.int16), index=1, name="b")
    data = assemble([layer0, (0x90, b"private", b"ancillary payload"), layer1])
    out, stream = read_everything(data)
    assert list(out) == list(stream) == ["a", "b"]
    data = assemble([layer0, (0x05, b"", b"critical"), layer1])
    with pytest.raises(UnsupportedError, match="unknown critical unit_type 0x05"):
        read_everything(data)
    with pytest.raises(UnsupportedError, match="unknown critical unit_type 0x05"):
        list(codec.iter_stream(io.BytesIO(data)))


def test_newer_minor_version_may_append_header_fields():
    body = layer_body(shape=(2,), dtype=2) + b"NEWFIELD"
    header = bytearray(write_network_header(layer_count=1, metadata={}))
    header[9] = VERSION_MINOR + 1  # a newer minor version than this reader's
    header[-4:] = _backend.crc32c(bytes(header[:-4])).to_bytes(4, "little")
    data = assemble([(UnitType.LAYER, body, b"\x00" * 8, "w")], header=bytes(header))
    out, stream = read_everything(data)
    assert out["w"].tolist() == [0.0, 0.0]
    # The same bytes in a file of this reader's own minor version are an error.
    with pytest.raises(FormatError, match="8 unparsed bytes before the checksum"):
        codec.decode(assemble([(UnitType.LAYER, body, b"\x00" * 8, "w")]))


def test_layer_index_and_name_must_match_index():
    units = [raw_layer(np.ones(1, np.float32), index=5, name="w")]
    with pytest.raises(FormatError, match=r"layers\[0\]\.layer_index at byte \d+: layer_index 5 does not match"):
        codec.decode(assemble(units))
    units = [(UnitType.LAYER, layer_body(name="x"), b"\x00" * 8, "w")]
    with pytest.raises(FormatError, match="differs from the index name"):
        codec.decode(assemble(units))


def test_duplicate_layer_names_rejected():
    units = [raw_layer(np.ones(1, np.float32), index=0, name="w"), raw_layer(np.ones(1, np.float32), index=1, name="w")]
    with pytest.raises(FormatError, match="duplicate layer name 'w'"):
        codec.decode(assemble(units))


def test_raw_payload_size_must_match_shape():
    data = assemble([(UnitType.LAYER, layer_body(shape=(3,), dtype=2), b"\x00" * 8, "w")])
    with pytest.raises(FormatError, match="raw payload holds 8 bytes, shape and dtype need 12"):
        codec.decode(data)


def test_bool_layer_with_bad_byte():
    data = assemble([(UnitType.LAYER, layer_body(shape=(2,), dtype=13), b"\x01\x02", "w")])
    with pytest.raises(FormatError, match="bool layer holds byte value 2"):
        codec.decode(data)


@pytest.mark.parametrize("payload, match", [
    (b"not a frame", "not a zstd frame"),
    (None, "content size"),
    ("trailing", "decodes to more"),
])
def test_zstd_frame_errors(payload, match):
    import zstandard

    raw = np.arange(4, dtype=np.float32).tobytes()
    if payload is None:
        payload = zstandard.ZstdCompressor(write_content_size=False).compress(raw)
    elif payload == "trailing":
        payload = zstandard.ZstdCompressor().compress(raw) + zstandard.ZstdCompressor().compress(raw)
    data = assemble([(UnitType.LAYER, layer_body(shape=(4,), dtype=2, mode=1), payload, "w")])
    with pytest.raises(FormatError, match=match):
        codec.decode(data)


def test_nonzero_padding_rejected():
    data = bytearray(codec.encode({"w": np.ones(3, np.float32)}, mode="raw"))
    with codec.open(bytes(data)) as r:
        h = r.header("w")
    data[h.payload_offset - 1] = 1
    with pytest.raises(FormatError, match="unit_padding bytes are not zero"):
        codec.decode(bytes(data))


def test_huge_unit_header_size_limit():
    data = bytearray(codec.encode({"w": np.ones(3, np.float32)}, mode="raw"))
    with codec.open(bytes(data)) as r:
        h = r.header("w")
    data[h.unit_offset + 4 : h.unit_offset + 8] = (2**31).to_bytes(4, "little")
    with pytest.raises(LimitError, match="unit_header_size"):
        codec.decode(bytes(data))
    with pytest.raises(LimitError, match="unit_header_size"):
        list(codec.iter_stream(io.BytesIO(bytes(data))))


def test_long_names_limit():
    data = assemble([raw_layer(np.ones(1), name="n" * 5000)])  # the writer refuses to write it
    with pytest.raises(LimitError, match="5000 bytes exceeds max_name_bytes=4096"):
        codec.decode(data)
    assert list(codec.decode(data, limits=codec.Limits(max_name_bytes=8000))) == ["n" * 5000]


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        codec.decode(b"garbage")


@pytest.mark.parametrize("mode, dtype, name", [(2, 2, "entropy"), (3, 7, "quantized"), (4, 9, "floatplanes")])
def test_level_modes_reject_dtypes_they_cannot_hold(mode, dtype, name):
    data = assemble([(UnitType.LAYER, layer_body(shape=(4,), dtype=dtype, mode=mode), b"\x00" * 40, "w")])
    with pytest.raises(FormatError, match=rf"layers\[0\]\.layer_dtype: mode {name} cannot hold dtype"):
        codec.decode(data)
