"""Metadata units (spec 5.7, format 2.3) and the quality report encode_file stores in one."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import codec
from codec import quality
from codec.errors import ChecksumError, EncodeError, FormatError, LimitError
from codec.format import Limits
from codec.format.constants import UnitType
from codec.format.metadata import write_metadata_unit_payload
from tests.helpers import assemble, raw_layer


def _write(metadata=None, units=(), **kw) -> bytes:
    buf = io.BytesIO()
    with codec.Writer(buf, metadata=metadata, **kw) as w:
        w.add_layer("a", np.arange(6, dtype=np.float32).reshape(2, 3), mode="raw")
        for entries in units:
            w.append_metadata(entries)
        w.add_layer("b", np.arange(40, dtype=np.int16), mode="entropy")
    return buf.getvalue()


def _stream_metadata(data: bytes) -> dict:
    s = codec.StreamReader(io.BytesIO(data))
    for _ in s:
        pass
    return s.metadata


def test_both_readers_list_header_then_unit_entries():
    data = _write({"arch": "mlp"}, [{"late": 1.5, "tags": ["x", 2]}, {"z": True}])
    with codec.open(data) as r:
        assert r.version == (2, 3)
        assert list(r.metadata.items()) == [("arch", "mlp"), ("late", 1.5), ("tags", ["x", 2]), ("z", True)]
        assert r["b"].tolist() == list(range(40))
    assert _stream_metadata(data) == {"arch": "mlp", "late": 1.5, "tags": ["x", 2], "z": True}
    # no unit: the file stays at the version its layers need, and the metadata is the header's
    assert codec.open(_write({"arch": "mlp"})).version == (2, 1)


def test_metadata_unit_has_no_padding_and_is_not_indexed():
    data = _write(units=[{"k": "v"}])
    payload = write_metadata_unit_payload({"k": "v"})
    at = data.index(payload)
    # the 24-byte unit header is followed by the payload at once, whatever the offset
    assert data[at - 24:at - 21] == b"NNU" and data[at - 21] == UnitType.METADATA
    with codec.open(data) as r:
        assert r.keys() == ["a", "b"]


def test_writer_refuses_repeated_keys_and_old_versions():
    w = codec.Writer(io.BytesIO(), metadata={"arch": "mlp"})
    with pytest.raises(EncodeError, match="metadata key 'arch' is already in this file"):
        w.append_metadata({"arch": "cnn"})
    w.append_metadata({"x": 1})
    with pytest.raises(EncodeError, match="metadata key 'x' is already in this file"):
        w.append_metadata({"x": 2})
    w.close()
    with pytest.raises(EncodeError, match=r"metadata units need format version 2.3 or later .*2.2 readers"):
        codec.Writer(io.BytesIO(), format_version=(2, 2)).append_metadata({"x": 1})
    with pytest.raises(EncodeError, match="Writer is closed"):
        w.append_metadata({"y": 1})


@pytest.mark.parametrize("case, error, message", [
    ("repeat", FormatError, "metadata key 'arch' repeats a key of the network header or an earlier metadata unit"),
    ("tail", FormatError, "1 bytes after metadata()"),
    ("crc", ChecksumError, "metadata unit payload crc32c mismatch"),
])
def test_bad_metadata_units_are_refused_by_both_readers(case, error, message):
    payload = write_metadata_unit_payload({"arch": "cnn"} if case == "repeat" else {"note": "xyz"})
    if case == "tail":
        payload += b"\0"
    data = bytearray(assemble([raw_layer(np.arange(4, dtype=np.float32)), (UnitType.METADATA, b"", payload)],
                              metadata={"arch": "mlp"}, version=(2, 3)))
    if case == "crc":
        data[data.index(b"xyz")] ^= 1
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        codec.open(bytes(data))
    assert "metadata_unit[0]" in str(info.value)
    with pytest.raises(error):
        _stream_metadata(bytes(data))


def test_unit_type_0x81_before_2_3_is_an_unknown_ancillary_unit():
    data = assemble([raw_layer(np.arange(4, dtype=np.float32)), (UnitType.METADATA, b"anything", b"not metadata")],
                    metadata={"arch": "mlp"}, version=(2, 2))
    with codec.open(data) as r:
        assert r.metadata == {"arch": "mlp"} and r["w"].tolist() == [0, 1, 2, 3]
    assert _stream_metadata(data) == {"arch": "mlp"}


def test_metadata_units_count_against_max_metadata_bytes():
    data = _write(units=[{"blob": b"\0" * 3000}])
    codec.open(data).close()
    for read in (lambda lim: codec.open(data, limits=lim).close(),
                 lambda lim: list(codec.iter_stream(io.BytesIO(data), limits=lim))):
        with pytest.raises(LimitError, match="max_metadata_bytes"):
            read(Limits(max_metadata_bytes=2000))


def _model(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    src = tmp_path / "m.safetensors"
    save_file({"fc.weight": rng.standard_normal((48, 32)).astype(np.float32),
               "fc.bias": rng.standard_normal(48).astype(np.float32),
               "t.weight": rng.standard_normal((16, 16)).astype(np.float32)}, str(src))
    policy = tmp_path / "p.toml"
    policy.write_text('[[rules]]\nname = "fc.weight"\nmode = "dq"\nstep = 0.125\n'
                      '[[rules]]\nname = "t.weight"\nmode = "ternary"\nternarize = true\n')
    return src, policy


def test_encode_file_stores_the_quality_report(tmp_path, caplog):
    src, policy = _model(tmp_path)
    out = tmp_path / "m.nnc"
    summary = codec.encode_file(src, out, policy=policy)
    with codec.open(out) as r:
        stored = quality.from_metadata(r.metadata[quality.METADATA_KEY])
        assert r.version == (2, 3)
        # measured against the input, on what the file decodes to
        fresh = [quality.layer_quality(n, r.header(n).mode_name, a, r[n])
                 for n, a, _ in codec.formats.read_tensors(str(src)) if n != "fc.bias"]
    assert [q.name for q in stored] == [q.name for q in summary["quality"]] == ["fc.weight", "t.weight"]
    for a, b, c in zip(stored, summary["quality"], fresh):
        assert a.mode == b.mode == c.mode and a.elements == c.elements
        assert a.rel_error == pytest.approx(c.rel_error, rel=1e-12) and a.sqnr_db == pytest.approx(b.sqnr_db)
    assert stored[1].rel_error > quality.WARN_REL_ERROR
    assert any("t.weight" in rec.getMessage() for rec in caplog.records)
    # an older format version gets no report in the file, the summary still has it
    old = tmp_path / "old.nnc"
    summary = codec.encode_file(src, old, policy=policy, format_version=(2, 2))
    assert len(summary["quality"]) == 2
    with codec.open(old) as r:
        assert quality.METADATA_KEY not in r.metadata and r.version == (2, 2)
    # a lossless encode measures nothing and adds no unit
    codec.encode_file(src, tmp_path / "lossless.nnc")
    with codec.open(tmp_path / "lossless.nnc") as r:
        assert quality.METADATA_KEY not in r.metadata


def test_encode_file_to_a_file_object(tmp_path):
    src, policy = _model(tmp_path)
    buf = io.BytesIO()
    summary = codec.encode_file(src, buf, policy=policy)
    with codec.open(buf.getvalue()) as r:
        assert [q.name for q in quality.from_metadata(r.metadata[quality.METADATA_KEY])] == \
            [q.name for q in summary["quality"]]


def test_target_bits_counts_the_report(tmp_path):
    src, policy = _model(tmp_path)
    policy.write_text('[[rules]]\nname = "*.weight"\nmode = "dq"\nstep = 0.125\n')
    out = tmp_path / "t.nnc"
    elements = 48 * 32 + 48 + 256
    summary = codec.encode_file(src, out, policy=policy, target_bits=5.0)
    assert out.stat().st_size * 8 / elements == summary["target"]["bits"] <= 5.0
    with codec.open(out) as r:
        assert quality.METADATA_KEY in r.metadata


def test_report_round_trip_and_rejects():
    q = [quality.layer_quality("w", "dq", np.array([3.0, 4.0]), np.array([3.0, 4.5])),
         quality.layer_quality("z", "ternary", np.zeros(3), np.ones(3)),
         quality.layer_quality("e", "dq", np.ones(2), np.ones(2))]
    text = quality.to_metadata(q)
    json.loads(text)  # strict JSON: no NaN or Infinity
    back = quality.from_metadata(text)
    assert [b.rel_error for b in back] == [q[0].rel_error, math.inf, 0.0]
    assert back[0].sqnr_db == pytest.approx(q[0].sqnr_db) and back[2].sqnr_db == math.inf
    for bad in ("[]", '{"format": 2, "layers": {}}', '{"format": 1, "layers": {"w": ["dq", 1.5, 1, 1, 1]}}'):
        with pytest.raises(ValueError):
            quality.from_metadata(bad)


def test_dump_shows_the_report(tmp_path):
    src, policy = _model(tmp_path)
    out = tmp_path / "m.nnc"
    codec.encode_file(src, out, policy=policy)
    run = [sys.executable, "-m", "codec.dump"]
    text = subprocess.run(run + ["--wide", str(out)], capture_output=True, text=True, check=True).stdout
    assert "SQNR dB" in text and "quality (stored by the encoder)" in text
    text = subprocess.run(run + [str(out)], capture_output=True, text=True, check=True).stdout
    assert "SQNR" in text.splitlines()[text.splitlines().index(next(ln for ln in text.splitlines()
                                                                    if ln.strip().startswith("bits")))]
    assert "lossy layers: relative error" in text
    doc = json.loads(subprocess.run(run + ["--json", str(out)], capture_output=True, text=True, check=True).stdout)
    layers = {layer["name"]: layer for layer in doc["layers"]}
    assert "quality" not in layers["fc.bias"] and layers["t.weight"]["quality"]["rel_error"] > 0.2
    assert 0 < doc["quality_total"]["rel_error"] < layers["t.weight"]["quality"]["rel_error"]
    fields = subprocess.run(run + ["--fields", str(out)], capture_output=True, text=True, check=True).stdout
    assert "unit.unit_payload.metadata[0].metadata_key = codec.quality" in fields
