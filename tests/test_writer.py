"""Writer: streaming, atomic replacement, errors on bad input, usable after a failed layer."""

import io
import os

import numpy as np
import pytest

import codec
import codec.modes
from codec.errors import EncodeError


def leftovers(directory):
    return [p for p in os.listdir(directory) if p.endswith(".tmp")]


def test_atomic_replace_on_exception(tmp_path):
    target = tmp_path / "m.nnc"
    codec.save_file({"old": np.arange(3)}, target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with codec.Writer(target) as w:
            w.add_layer("a", np.ones(1000))
            raise RuntimeError("boom")
    assert target.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_atomic_when_encoding_fails(tmp_path):
    target = tmp_path / "m.nnc"
    codec.save_file({"old": np.arange(3)}, target)
    before = target.read_bytes()
    with pytest.raises(EncodeError):
        codec.save_file({"a": np.ones(3), "b": np.array(["strings"])}, target)
    assert target.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_no_file_until_close(tmp_path):
    target = tmp_path / "m.nnc"
    w = codec.Writer(target)
    w.add_layer("a", np.ones(10))
    assert not target.exists()
    assert len(leftovers(tmp_path)) == 1
    w.close()
    assert target.exists() and leftovers(tmp_path) == []
    w.close()  # idempotent


def test_abandoned_writer_cleans_up(tmp_path):
    w = codec.Writer(tmp_path / "m.nnc")
    w.add_layer("a", np.ones(10))
    w.abort()
    assert os.listdir(tmp_path) == []


def test_failed_layer_leaves_writer_usable(monkeypatch):
    buf = io.BytesIO()
    w = codec.Writer(buf)
    w.add_layer("a", np.arange(5, dtype=np.int32), mode="raw")
    real = codec.modes.raw.RawMode.write

    def broken(self, plan, array, dtype, sink):
        sink.write(b"\x01\x02\x03")
        raise OSError("disk full")

    monkeypatch.setattr(codec.modes.raw.RawMode, "write", broken)
    with pytest.raises(OSError, match="disk full"):
        w.add_layer("b", np.arange(5, dtype=np.int32), mode="raw")
    monkeypatch.setattr(codec.modes.raw.RawMode, "write", real)
    w.add_layer("b", np.arange(6, dtype=np.int32), mode="raw")
    w.close()
    out = codec.decode(buf.getvalue())
    assert list(out) == ["a", "b"] and out["b"].tolist() == list(range(6))


@pytest.mark.parametrize("bad, match", [
    (lambda w: w.add_layer("a", np.ones(2)) or w.add_layer("a", np.ones(2)), "duplicate layer name 'a'"),
    (lambda w: w.add_layer("a", np.array(["x"])), "dtype <U1 is not supported"),
    (lambda w: w.add_layer("a", np.array([1 + 2j])), "dtype complex128 is not supported"),
    (lambda w: w.add_layer("a", np.ones((1,) * 9)), r"layers\[0\]\.layer_rank: rank 9 exceeds 8"),
    (lambda w: w.add_layer("a", np.ones(2), mode="nope"), "unknown coding mode 'nope'"),
    (lambda w: w.add_layer("a", np.ones(2), mode="raw", level=3), "mode 'raw' takes no parameter 'level'"),
    (lambda w: w.add_layer("a", np.ones(2), mode="zstd", level=99), "mode 'zstd' parameter 'level' must be int in -7..22, got 99"),
    (lambda w: w.add_layer("a", np.ones(2), kind="tensor"), "unknown layer kind 'tensor'"),
    (lambda w: w.add_layer("a", np.ones(2), dtype="float8"), "dtype= only accepts 'bfloat16'"),
    (lambda w: w.add_layer("a", np.ones(2, np.float32), dtype="bfloat16"), "needs an array of 2-byte integers"),
    (lambda w: w.add_layer("\ud800", np.ones(2)), "lone surrogate"),
    (lambda w: w.add_layer("x" * 70000, np.ones(2)), "more than max_name_bytes=4096 UTF-8 bytes is refused by readers"),
    (lambda w: w.add_layer(3, np.ones(2)), "layer name must be a str"),
])
def test_encode_errors(bad, match):
    w = codec.Writer(io.BytesIO())
    with pytest.raises(EncodeError, match=match):
        bad(w)


@pytest.mark.parametrize("meta, match", [
    ({"a": 2**63}, "does not fit int64"),
    ({"a": {"b": 1}}, "metadata value of type dict"),
    ({1: 2}, "metadata key 1 is not a str"),
    ({"a": [[[[[[[[[1]]]]]]]]]}, "nested deeper than max_nesting=8"),
    ([("a", 1)], "metadata must be a mapping"),
])
def test_metadata_errors(meta, match):
    with pytest.raises(EncodeError, match=match):
        codec.encode({}, metadata=meta)


def test_numpy_scalars_and_tuples_in_metadata():
    data = codec.encode({}, metadata={"i": np.int32(3), "f": np.float32(0.5), "b": np.bool_(True), "t": (1, "x")})
    with codec.open(data) as r:
        assert r.metadata == {"i": 3, "f": 0.5, "b": True, "t": [1, "x"]}


def test_explicit_kind():
    buf = io.BytesIO()
    with codec.Writer(buf) as w:
        w.add_layer("x", np.ones(3), kind="embedding")
        w.add_layer("y", np.ones(3), kind=codec.LayerKind.BIAS)
    with codec.open(buf.getvalue()) as r:
        assert r.header("x").kind_name == "embedding" and r.header("y").kind_name == "bias"


def test_non_contiguous_and_big_endian_inputs_stream_in_chunks(monkeypatch):
    a = np.arange(40 * 30, dtype=">f4").reshape(40, 30)[::2, ::3]
    calls = []
    real = codec.dtypes.iter_le_chunks

    def spy(array, storage, chunk_bytes=64):
        for chunk in real(array, storage, 64):
            calls.append(len(chunk))
            yield chunk

    monkeypatch.setattr(codec.modes.raw, "iter_le_chunks", spy)
    out = codec.decode(codec.encode({"a": a}, mode="raw"))["a"]
    np.testing.assert_array_equal(out, a)
    assert len(calls) > 1 and max(calls) <= 80


def test_writer_to_file_object_at_offset():
    buf = io.BytesIO()
    buf.write(b"prefix")
    with codec.Writer(buf) as w:
        w.add_layer("a", np.arange(3))
    assert codec.decode(buf.getvalue()[6:])["a"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("write", ["writer", "safetensors", "npz", "pt"])
def test_durable_writes_fsync_then_rename(tmp_path, monkeypatch, write):
    # the bytes reach the disk before the rename makes them visible, and the rename itself is
    # made durable (fsync of the directory) before the writer returns
    import stat

    from codec import formats

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(("fsync", kind))
        return real_fsync(fd)

    def replace(src, dst):
        assert os.path.getsize(src) > 0 and not os.path.exists(dst)
        events.append(("replace", os.path.basename(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / f"out.{'nnc' if write == 'writer' else write}"
    if write == "writer":
        with codec.Writer(target) as w:
            w.add_layer("w", np.ones(4, np.float32))
    else:
        formats.write_tensors(target, [("w", np.ones(4, np.float32), "float32")])
    assert events == [("fsync", "file"), ("replace", target.name), ("fsync", "dir")]
    assert sorted(os.listdir(tmp_path)) == [target.name]
