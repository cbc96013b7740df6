"""Delta bitstreams (spec 10.1) and coding mode delta (spec 6.10): save_delta / load_file(base=), chains, the
base digest, every dtype's addition, the CLI, and the rules readers and the writer keep."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
import struct
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import codec
from codec import delta


def _model(seed=0, n=6):
    rng = np.random.default_rng(seed)
    out = {f"l{i}.weight": (rng.standard_normal((32, 16)) * 0.05).astype(np.float32) for i in range(n)}
    out["step"] = np.arange(7, dtype=np.int64)
    out["keep"] = rng.random(9) < 0.5
    return out


@pytest.fixture
def base_file(tmp_path):
    path = tmp_path / "base.nnc"
    codec.save_file(_model(), path, policy="int8")
    return path


def test_content_digest_is_the_spec_formula():
    t = {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "é": np.array([True, False]),
         "h": np.array([1.5, -2], dtype=ml_dtypes.bfloat16), "s": np.float64(3.25)}
    h = hashlib.sha256()
    for name, code, a in (("a", 6, t["a"]), ("é", 13, t["é"]), ("h", 4, t["h"]), ("s", 1, np.asarray(t["s"]))):
        raw = name.encode()
        h.update(struct.pack("<I", len(raw)) + raw + bytes([code, a.ndim]) + b"".join(struct.pack("<Q", d) for d in a.shape))
        h.update(a.view(np.uint16).tobytes() if code == 4 else a.astype(a.dtype.newbyteorder("<")).tobytes())
    assert delta.content_digest(t) == h.hexdigest()
    assert delta.content_digest({"a": t["a"]}) != delta.content_digest({"b": t["a"]})


def test_changed_layers_only_and_the_model_back(base_file, tmp_path):
    base = codec.load_file(base_file)
    new = dict(base)
    new["l2.weight"] = base["l2.weight"] + np.float32(0.003) * np.sign(base["l2.weight"])
    new["step"] = base["step"] * 3 - 2**62  # integer differences wrap
    new["keep"] = ~base["keep"]
    upd = tmp_path / "upd.nnc"
    summary = codec.save_delta(new, upd, base=base_file, policy="int8")
    assert (summary["changed"], summary["unchanged"], summary["removed"]) == (3, 5, 0)
    with codec.open(upd) as r:
        assert r.version == (2, 5) and r.keys() == ["l2.weight", "step", "keep"]
        assert {r.header(n).mode_name for n in r.keys()} == {"delta"}
        assert r.metadata["codec.delta.base"] == delta.content_digest(base)
    out = codec.load_file(upd, base=base_file)
    assert list(out) == list(new)
    assert out["step"].tolist() == new["step"].tolist() and out["keep"].tolist() == new["keep"].tolist()
    for name in base:
        if name not in ("l2.weight", "step", "keep"):
            assert out[name].tobytes() == base[name].tobytes()
    err = np.abs(out["l2.weight"] - new["l2.weight"]).max()
    assert 0 < err < 1e-4  # the difference was quantized (8 bits per channel of a 0.003 change)
    assert os.path.getsize(upd) < os.path.getsize(base_file) / 4  # of which ~200 bytes are the change record


def test_no_op_update_costs_little_and_removed_and_new_layers(base_file, tmp_path):
    base = codec.load_file(base_file)
    codec.save_delta(base, tmp_path / "noop.nnc", base=base_file)
    assert os.path.getsize(tmp_path / "noop.nnc") < 1024
    assert [k for k in codec.load_file(tmp_path / "noop.nnc", base=base_file)] == list(base)
    new = {k: v for k, v in base.items() if k != "l1.weight"}
    new["extra"] = np.ones((2, 2), np.float16)
    new["l0.weight"] = base["l0.weight"][:8]  # reshaped: stored whole
    codec.save_delta(new, tmp_path / "u.nnc", base=base_file)
    out = codec.load_file(tmp_path / "u.nnc", base=base_file)
    assert list(out) == [k for k in base if k != "l1.weight"] + ["extra"]
    assert out["l0.weight"].tobytes() == new["l0.weight"].tobytes()
    with codec.open(tmp_path / "u.nnc") as r:
        assert r.metadata["codec.delta.removed"] == ["l1.weight"]


def test_a_chain_of_updates(base_file, tmp_path):
    base = codec.load_file(base_file)
    first = dict(base, **{"l3.weight": base["l3.weight"] + np.float32(0.01)})
    codec.save_delta(first, tmp_path / "u1.nnc", base=base_file, mode="quantized", step=2 ** -12)
    m1 = codec.load_file(tmp_path / "u1.nnc", base=base_file)
    second = dict(m1, **{"l4.weight": m1["l4.weight"] * np.float32(1.01)})
    codec.save_delta(second, tmp_path / "u2.nnc", base=[base_file, tmp_path / "u1.nnc"], mode="quantized",
                     step=2 ** -12)
    m2 = codec.load_file(tmp_path / "u2.nnc", base=[base_file, tmp_path / "u1.nnc"])
    assert m2["l3.weight"].tobytes() == m1["l3.weight"].tobytes()
    assert np.abs(m2["l4.weight"] - second["l4.weight"]).max() <= 2 ** -13 * 1.001
    with pytest.raises(codec.BaseMismatchError, match="itself a delta"):
        codec.load_file(tmp_path / "u2.nnc", base=tmp_path / "u1.nnc")
    with pytest.raises(codec.BaseMismatchError, match="content digest"):
        codec.load_file(tmp_path / "u2.nnc", base=base_file)


def test_refusals(base_file, tmp_path):
    base = codec.load_file(base_file)
    upd = tmp_path / "u.nnc"
    codec.save_delta(dict(base, step=base["step"] + 1), upd, base=base_file)
    with pytest.raises(codec.BaseMismatchError, match="pass base="):
        codec.load_file(upd)
    with pytest.raises(codec.BaseMismatchError, match="content digest"):
        codec.load_file(upd, base=_model(seed=5))
    with pytest.raises(codec.BaseMismatchError, match="not a delta bitstream"):
        codec.load_file(base_file, base=base_file)
    with codec.open(upd) as r:
        with pytest.raises(codec.BaseMismatchError, match="difference to a base"):
            r.get("step")
        assert r.get_difference("step").tolist() == [1] * 7
    with open(upd, "rb") as f, pytest.raises(codec.BaseMismatchError, match="delta bitstream"):
        list(codec.iter_stream(f))
    with pytest.raises(codec.EncodeError, match="save_delta"):
        codec.encode({"w": np.ones(3, np.float32)}, mode="delta")
    with pytest.raises(codec.EncodeError, match="2.5"):
        codec.save_delta(base, tmp_path / "x.nnc", base=base_file, format_version=(2, 4))
    assert not os.path.exists(tmp_path / "x.nnc")


def test_a_base_that_lacks_the_changed_layer_or_has_another_shape(tmp_path):
    digest = delta.content_digest({"w": np.zeros(4, np.float32)})
    buf = io.BytesIO()
    with codec.Writer(buf, metadata={"codec.delta.base": digest}, format_version=(2, 5)) as w:
        w.add_layer("v", np.ones(4, np.float32), mode="delta", delta_mode="raw")
    with pytest.raises(codec.BaseMismatchError, match="lacks"):
        codec.decode(buf.getvalue(), base={"w": np.zeros(4, np.float32)})
    buf = io.BytesIO()
    with codec.Writer(buf, metadata={"codec.delta.base": digest}, format_version=(2, 5)) as w:
        w.add_layer("w", np.ones(5, np.float32), mode="delta", delta_mode="raw")
    with pytest.raises(codec.BaseMismatchError, match="shape"):
        codec.decode(buf.getvalue(), base={"w": np.zeros(4, np.float32)})


def test_inner_mode_delta_is_rejected():
    from tests.helpers import assemble, layer_body
    from codec.format.constants import UnitType

    data = assemble([(UnitType.LAYER, layer_body(shape=(4,), dtype=2, mode=9, mode_params=b"\x09\x00"),
                      np.zeros(4, np.float32).tobytes(), "w")], metadata={"codec.delta.base": "0" * 64},
                    version=(2, 5))
    with codec.open(data) as r, pytest.raises(codec.FormatError, match="cannot itself be coded with mode delta"):
        r.get_difference("w")


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float64, np.float32])
def test_float_addition_follows_the_spec(dtype):
    rng = np.random.default_rng(3)
    b = rng.standard_normal(50).astype(dtype)
    d = (rng.standard_normal(50) * 0.01).astype(dtype)
    buf = io.BytesIO()
    with codec.Writer(buf, metadata={"codec.delta.base": delta.content_digest({"w": b})}, format_version=(2, 5)) as w:
        w.add_layer("w", d, mode="delta", delta_mode="raw")
    out = codec.decode(buf.getvalue(), base={"w": b})["w"]
    if dtype == np.float64:
        want = b + d
    else:
        s = b.astype(np.float32) + d.astype(np.float32)  # binary32, then rounded to the dtype (8.4)
        want = s.astype(dtype)
    assert out.dtype == np.dtype(dtype) and out.tobytes() == np.asarray(want, dtype).tobytes()


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["int8", "uint16", "int32", "uint64"]), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_integer_updates_are_exact(dtype, n, seed):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    b = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    new = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    data = io.BytesIO()
    base = {"x": b, "y": b.copy()}
    items, removed = delta.delta_items([("x", new, {"mode": None}), ("y", b, {"mode": None})], base)
    assert removed == [] and [i[0] for i in items] == (["x"] if n and (new != b).any() else [])
    path = data
    digest = delta.content_digest(base)
    with codec.Writer(path, metadata={"codec.delta.base": digest}, format_version=(2, 5)) as w:
        w.add_layers(items)
    out = codec.decode(data.getvalue(), base=base)
    assert out["x"].tobytes() == new.tobytes() and out["y"].tobytes() == b.tobytes()


def test_cli_encode_decode_and_dump(base_file, tmp_path):
    import safetensors.numpy as stn

    base = codec.load_file(base_file)
    new = dict(base, **{"l5.weight": base["l5.weight"] + np.float32(0.002)})
    stn.save_file(new, str(tmp_path / "new.safetensors"))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "codec", *map(str, args)], capture_output=True, text=True,
                              cwd=tmp_path)
    done = run("encode", "new.safetensors", "-o", "upd.nnc", "--base", base_file, "--policy", "int8")
    assert done.returncode == 0, done.stderr
    assert "1 layers stored, 7 unchanged" in done.stdout
    refused = run("decode", "upd.nnc", "-o", "out.safetensors")
    assert refused.returncode != 0 and "--base" in refused.stderr and not (tmp_path / "out.safetensors").exists()
    done = run("decode", "upd.nnc", "--base", base_file, "-o", "out.safetensors")
    assert done.returncode == 0, done.stderr
    out = stn.load_file(str(tmp_path / "out.safetensors"))
    assert list(out) == list(new) and np.abs(out["l5.weight"] - new["l5.weight"]).max() < 1e-4
    dump = subprocess.run([sys.executable, "-m", "codec.dump", "upd.nnc"], capture_output=True, text=True, cwd=tmp_path)
    assert "delta bitstream of the base with content digest" in dump.stdout and "delta +quantized" in dump.stdout


def test_every_payload_bit_flip_of_a_delta_layer_is_a_checksum_error(base_file):
    base = codec.load_file(base_file)
    buf = io.BytesIO()
    new = dict(base, **{"l0.weight": base["l0.weight"] + np.float32(0.01), "step": base["step"] + 3})
    items, _ = delta.delta_items(((k, v, {"mode": "quantized", "step": 2 ** -10} if v.dtype.kind == "f" else
                                   {"mode": None}) for k, v in new.items()), base)
    with codec.Writer(buf, metadata={"codec.delta.base": delta.content_digest(base)}, format_version=(2, 5)) as w:
        w.add_layers(items)
    data = buf.getvalue()
    with codec.open(data) as r:
        headers = [r.header(n) for n in r]
    assert [h.mode_name for h in headers] == ["delta", "delta"]
    missed = []
    for h in headers:
        for bit in range(h.payload_size * 8):
            damaged = bytearray(data)
            damaged[h.payload_offset + bit // 8] ^= 0x80 >> (bit % 8)
            try:
                codec.decode(bytes(damaged), base=base)
            except codec.ChecksumError as exc:
                if f"{h.path}.unit_payload" in str(exc):
                    continue
                missed.append((h.layer_name, bit, str(exc)))
            except codec.CodecError as exc:
                missed.append((h.layer_name, bit, f"{type(exc).__name__}: {exc}"))
            else:
                missed.append((h.layer_name, bit, "no error"))
    assert missed == []


def test_previous_tensors_of_a_lossy_base(tmp_path):
    original = _model(seed=2)
    codec.save_file(original, tmp_path / "b.nnc", policy="int8")
    decoded = codec.load_file(tmp_path / "b.nnc")
    update = (np.random.default_rng(4).standard_normal((32, 16)) * 1e-3).astype(np.float32)
    new = dict(original, **{"l1.weight": original["l1.weight"] + update})
    with_previous = codec.save_delta(new, tmp_path / "p.nnc", base=tmp_path / "b.nnc", previous=original,
                                     policy="int8")
    without = codec.save_delta(new, tmp_path / "n.nnc", base=tmp_path / "b.nnc", policy="int8")
    assert with_previous["changed"] == 1 and without["changed"] == 6  # every float layer differs from its decode
    assert os.path.getsize(tmp_path / "p.nnc") < os.path.getsize(tmp_path / "n.nnc") / 3
    out = codec.load_file(tmp_path / "p.nnc", base=tmp_path / "b.nnc")
    assert out["l2.weight"].tobytes() == decoded["l2.weight"].tobytes()
    # the base's coding error stays, the update is added (quantized to 8 bits per channel)
    got = out["l1.weight"] - decoded["l1.weight"]
    assert np.abs(got - update).max() <= np.abs(update).max() / 127 + 1e-7
    with pytest.raises(codec.EncodeError, match="previous tensor"):
        codec.save_delta(new, tmp_path / "x.nnc", base=tmp_path / "b.nnc", previous={"l1.weight": update[:3]},
                         policy="int8")


def test_open_with_a_base_decodes_layers_on_demand(base_file, tmp_path):
    base = codec.load_file(base_file)
    new = {k: v for k, v in base.items() if k != "l0.weight"}
    new["step"] = base["step"] + 2
    new["added"] = np.zeros(3, np.int8)
    codec.save_delta(new, tmp_path / "u.nnc", base=base_file)
    with codec.open(tmp_path / "u.nnc", base=base_file) as m:
        assert m.keys() == list(new) and len(m) == len(new) and "l0.weight" not in m
        assert m.changed() == ["step", "added"]
        assert m["step"].tolist() == new["step"].tolist() and m.get("nope") is None
        assert m["l3.weight"].tobytes() == base["l3.weight"].tobytes()
        with pytest.raises(KeyError):
            m["l0.weight"]
    with pytest.raises(codec.BaseMismatchError, match="content digest"):
        codec.open(tmp_path / "u.nnc", base=_model(seed=9))


def test_removed_names_are_checked(base_file):
    base = codec.load_file(base_file)
    buf = io.BytesIO()
    with codec.Writer(buf, metadata={"codec.delta.base": delta.content_digest(base),
                                     "codec.delta.removed": ["no.such.layer"]}, format_version=(2, 5)):
        pass
    with pytest.raises(codec.FormatError, match="which the base lacks"):
        codec.decode(buf.getvalue(), base=base)


def test_the_change_record_and_the_dump_show_what_changed(base_file, tmp_path):
    from codec import dump

    base = codec.load_file(base_file)
    new = dict(base)
    change = np.zeros_like(base["l2.weight"])
    change[:4] = 0.01  # 4 of 32 rows
    new["l2.weight"] = base["l2.weight"] + change
    new["step"] = base["step"].copy()
    new["step"][[1, 5]] += 3
    new["keep"] = base["keep"].copy()
    new["keep"][0] = not new["keep"][0]
    new["extra"] = np.ones(3, np.float32)
    upd = tmp_path / "u.nnc"
    codec.save_delta(new, upd, base=base_file, policy="int8")
    with codec.open(upd) as r:
        record = {c.name: c for c in delta.changes_from_metadata(r.metadata[delta.CHANGES_KEY])}
        doc = dump.summarize(r, file_size=os.path.getsize(upd))
    assert set(record) == {"l2.weight", "step", "keep"}  # a new layer is not a change of a base layer
    w, d = base["l2.weight"].astype(np.float64), (new["l2.weight"].astype(np.float64) - base["l2.weight"])
    c = record["l2.weight"]
    assert (c.elements, c.changed) == (512, int(np.count_nonzero(new["l2.weight"] != base["l2.weight"])))
    six = {"rel": 1e-5}  # the record keeps six significant digits
    assert c.base_energy == pytest.approx(float((w * w).sum()), **six)
    assert c.change_energy == pytest.approx(float((d * d).sum()), **six)
    assert c.rel_change == pytest.approx(np.linalg.norm(d) / np.linalg.norm(w), **six)
    assert c.max_abs_change == pytest.approx(float(np.abs(d).max()), **six)
    s = record["step"]
    assert (s.changed, s.change_energy, s.max_abs_change) == (2, 18.0, 3.0)
    assert (record["keep"].changed, record["keep"].change_energy) == (1, 1.0)
    layers = {layer["name"]: layer for layer in doc["layers"]}
    assert layers["l2.weight"]["change"]["rel_change"] == pytest.approx(c.rel_change)
    assert "change" not in layers["extra"]
    t = doc["change_total"]
    assert (t["layers"], t["float_layers"], t["changed_elements"]) == (3, 1, c.changed + 3)
    assert t["rel_change"] == pytest.approx(c.rel_change)  # the float layers only
    text = dump.render_text(doc, str(upd))
    assert "changes (the writer's record)" in text and f"{100 * c.rel_change:.2f}%" in text
    assert "change" in dump.render_text(doc, str(upd), wide=True).splitlines()[-1]
    # a no-op update records nothing
    codec.save_delta(base, tmp_path / "noop.nnc", base=base_file)
    with codec.open(tmp_path / "noop.nnc") as r:
        assert delta.CHANGES_KEY not in r.metadata
    with pytest.raises(ValueError, match="format 1"):
        delta.changes_from_metadata('{"format": 2, "layers": {}}')
    with pytest.raises(ValueError, match="bad entry"):
        delta.changes_from_metadata('{"format": 1, "layers": {"w": [1, 2]}}')


def test_memory_holds_about_one_layer_of_a_lazy_base(tmp_path):
    """open(base=), save_delta and a chain read the base a layer at a time (8 layers of 256 KiB). The changed
    layer is stored whole (raw): what is measured is the base's handling, not a coder's working set (and the
    pure backend's coders under tracemalloc would take minutes)."""
    import tracemalloc

    rng = np.random.default_rng(3)
    base = {f"l{i}": rng.standard_normal(1 << 16).astype(np.float32) for i in range(8)}
    codec.save_file(base, tmp_path / "base.nnc", mode="raw")
    del base
    layer = 1 << 18

    class Edited(Mapping):  # the new model, also a layer at a time: the base with l3 changed
        def __init__(self, reader):
            self.reader = reader

        def __getitem__(self, name):
            a = self.reader.get(name)
            return a + np.float32(1) if name == "l3" else a

        def __iter__(self):
            return iter(self.reader.keys())

        def __len__(self):
            return len(self.reader.keys())

    def peak(fn):
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    source = codec.open(tmp_path / "base.nnc")
    new = Edited(source)

    def save(path=tmp_path / "u.nnc"):
        codec.save_delta(new, path, base=tmp_path / "base.nnc", mode="raw")

    save(tmp_path / "warm.nnc")  # the imports' allocations are not what is measured

    # the encoder's own working set for the one changed layer
    encoding_alone = peak(lambda: codec.encode({"l3": new["l3"]}, mode="raw"))
    assert peak(save) < encoding_alone + 4 * layer  # the whole base would be 8 more
    source.close()
    with codec.open(tmp_path / "u.nnc") as r:
        assert r.keys() == ["l3"]

    def read():
        with codec.open(tmp_path / "u.nnc", base=tmp_path / "base.nnc") as m:
            for name in m:
                assert m[name].shape == (1 << 16,)
            assert m.spec("l3") == ((1 << 16,), "float32") and m.spec("l0") == ((1 << 16,), "float32")

    with codec.open(tmp_path / "u.nnc") as r:  # the decoder's own working set for the one layer
        decoding_alone = peak(lambda: r.get("l3"))
    read()
    assert peak(read) < decoding_alone + 4 * layer
    second = codec.load_file(tmp_path / "u.nnc", base=tmp_path / "base.nnc")
    second["l5"] = second["l5"] * np.float32(2)
    codec.save_delta(second, tmp_path / "u2.nnc", base=[tmp_path / "base.nnc", tmp_path / "u.nnc"], mode="raw")
    del second

    def chain():
        with codec.open(tmp_path / "u2.nnc", base=[tmp_path / "base.nnc", tmp_path / "u.nnc"]) as m:
            assert len(m) == 8 and m.changed() == ["l5"]
            for name in m:
                assert m[name].shape == (1 << 16,)

    assert peak(chain) < decoding_alone + 4 * layer
