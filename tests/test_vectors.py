"""Golden vectors (spec/vectors/): decode to the described content; re-encode to the same bytes."""

import glob
import io
import json
import os

import numpy as np
import pytest
import zstandard

import codec

VECTOR_DIR = os.path.join(os.path.dirname(__file__), "..", "spec", "vectors")
VECTORS = sorted(glob.glob(os.path.join(VECTOR_DIR, "*.nnc")))
REJECT = sorted(glob.glob(os.path.join(VECTOR_DIR, "reject", "*.nnc")))
ZSTD_MODES = {"zstd", "floatplanes"}  # their bytes depend on the libzstd that wrote them


def typed(value):
    if value["type"] == "list":
        return [typed(v) for v in value["value"]]
    if value["type"] == "bytes":
        return bytes.fromhex(value["value"])
    if value["type"] == "float" and isinstance(value["value"], str):
        return float(value["value"])
    return value["value"]


def expected_array(layer, key="data_hex"):
    dtype = "<u2" if layer["dtype"] == "bfloat16" else np.dtype(layer["dtype"]).newbyteorder("<")
    return np.frombuffer(bytes.fromhex(layer[key]), dtype=dtype).reshape(layer["shape"])


def load(path):
    with open(path[:-4] + ".json", encoding="utf-8") as f:
        return json.load(f)


def test_vectors_exist():
    # append-only: every vector the README lists is there with its description, and nothing else
    import re

    readme = open(os.path.join(VECTOR_DIR, "README.md"), encoding="utf-8").read()
    listed = set(re.findall(r"^\| (\d{3}-[\w-]+) \|", readme, flags=re.M))
    present = {os.path.basename(p)[:-4] for p in VECTORS}
    assert len(listed) >= 9 and listed == present
    for name in listed:
        assert os.path.exists(os.path.join(VECTOR_DIR, name + ".json"))
    rejects = {os.path.basename(p)[:-4] for p in REJECT}
    assert len(rejects) >= 25
    for name in rejects:
        assert os.path.exists(os.path.join(VECTOR_DIR, "reject", name + ".json"))


@pytest.mark.parametrize("path", VECTORS, ids=os.path.basename)
def test_decode(path):
    desc = load(path)
    data = open(path, "rb").read()
    assert len(data) == desc["file_bytes"]
    with codec.open(path) as r:
        r.verify()
        assert f"{r.version[0]}.{r.version[1]}" == desc["format_version"]
        meta = {k: typed(v) for k, v in desc["metadata"].items()}
        for unit in desc.get("unit_metadata", []):  # metadata units (spec 5.7) follow, in file order
            meta.update({k: typed(v) for k, v in unit.items()})
        assert list(r.metadata) == list(meta)
        for k in meta:
            assert repr(r.metadata[k]) == repr(meta[k])
        assert r.keys() == [layer["name"] for layer in desc["layers"]]
        for layer in desc["layers"]:
            h = r.header(layer["name"])
            assert (h.kind_name, h.dtype_name, list(h.shape), h.mode_name) == (
                layer["kind"], layer["dtype"], layer["shape"], layer["mode"])
            # a delta layer (spec 6.10) decodes to its difference to the base
            got = r.get_difference(layer["name"]) if layer["mode"] == "delta" else r.get(layer["name"])
            if layer["dtype"] == "bfloat16":
                got = got.view(np.uint16)
            assert got.astype(got.dtype.newbyteorder("<")).tobytes() == bytes.fromhex(layer["data_hex"])
            if "levels" in layer:
                levels, _ = r.get(layer["name"], levels=True)
                assert levels.reshape(-1).tolist() == layer["levels"]
            if "stages" in layer:  # pq (spec 6.9): the stored centroids and the indices of every stage
                stages = r.get(layer["name"], levels=True)
                assert [(s.codebook.astype(s.codebook.dtype.newbyteorder("<")).tobytes().hex(), s.indices.tolist())
                        for s in stages] == [(s["codebook_hex"], s["indices"]) for s in layer["stages"]]


@pytest.mark.parametrize("path", [p for p in VECTORS if "base_vector" in load(p)], ids=os.path.basename)
def test_delta_vector_applies_to_its_base(path):
    """A delta bitstream (spec 10.1) decodes with its base vector to the model its JSON lists, and refuses
    no base and a wrong one."""
    desc = load(path)
    base = os.path.join(os.path.dirname(path), desc["base_vector"] + ".nnc")
    model = codec.load_file(path, base=base)
    assert [(k, v.dtype.name, list(v.shape)) for k, v in model.items()] == [
        (a["name"], a["dtype"], a["shape"]) for a in desc["applied"]]
    for a in desc["applied"]:
        v = model[a["name"]]
        v = v.view(np.uint16) if v.dtype.name == "bfloat16" else v
        assert v.astype(v.dtype.newbyteorder("<")).tobytes() == bytes.fromhex(a["data_hex"])
    with pytest.raises(codec.BaseMismatchError, match="delta bitstream"):
        codec.load_file(path)
    with pytest.raises(codec.BaseMismatchError, match="content digest"):
        codec.load_file(path, base=path.replace(os.path.basename(path), "005-quantized-entropy.nnc"))


def _written_by_the_writer(path):
    return not load(path).get("hand_built")


#: Encoder choices made differently since a vector was written (its bytes stay valid, and the reader's
#: results do not change): the settings that give back its bytes. 013-dq: the trellis's cap on the
#: cost of a level of magnitude 1 (codec.dq.NONZERO_EXTRA_MAX, stop 24) changes 10 levels of its
#: mostly zero dense.bf16.
ENCODER_THEN = {"013-dq.nnc": [("codec.dq.NONZERO_EXTRA_MAX", float("inf"))]}


@pytest.mark.parametrize("path", [p for p in VECTORS if _written_by_the_writer(p)], ids=os.path.basename)
def test_reencode_identical(path, monkeypatch):
    for target, value in ENCODER_THEN.get(os.path.basename(path), []):
        monkeypatch.setattr(target, value)
    desc = load(path)
    modes = {layer["mode"] for layer in desc["layers"]} | {layer.get("params", {}).get("values_mode")
                                                           for layer in desc["layers"]}
    if modes & ZSTD_MODES and tuple(desc["zstd_version"]) != tuple(zstandard.ZSTD_VERSION):
        pytest.skip(f"zstd frames compressed by libzstd {desc['zstd_version']}, this is {zstandard.ZSTD_VERSION}")
    buf = io.BytesIO()
    # a 1.x vector is re-encoded as a 1.x file (levels of spec 7.2); the writer picks the minor
    major = int(desc["format_version"].split(".")[0])
    with codec.Writer(buf, metadata={k: typed(v) for k, v in desc["metadata"].items()},
                      quantization=desc.get("quantization"),
                          format_version=(1, 0) if major == 1 else tuple(map(int, desc["format_version"].split(".")))) as w:
        for layer in desc["layers"]:
            source = expected_array(layer, "input_hex" if "input_hex" in layer else "data_hex")
            params = dict(layer.get("params", {}))
            if "factors" in layer:  # lowrank_sparse (spec 6.11): the factors the vector was made from
                params["factors"] = [np.frombuffer(bytes.fromhex(f["hex"]), "<f4").reshape(f["shape"])
                                     for f in layer["factors"]]
            w.add_layer(layer["name"], source, mode=layer["mode"], kind=layer["kind"],
                        dtype="bfloat16" if layer["dtype"] == "bfloat16" else None, **params)
        for unit in desc.get("unit_metadata", []):
            w.append_metadata({k: typed(v) for k, v in unit.items()})
    assert buf.getvalue() == open(path, "rb").read()


def test_every_registered_mode_has_a_vector():
    from codec.modes import registered_modes

    seen = set()
    for path in VECTORS:
        for layer in load(path)["layers"]:
            seen |= {layer["mode"], layer.get("params", {}).get("values_mode", layer["mode"])}
    missing = {m.name for m in registered_modes()} - seen
    assert not missing, f"coding modes without a golden vector: {sorted(missing)}"


@pytest.mark.parametrize("path", REJECT, ids=os.path.basename)
def test_reject(path):
    """Every path of the reader refuses the file with the recorded error class and message."""
    desc = load(path)
    if "retired" in desc:
        pytest.skip(desc["retired"])
    with pytest.raises(codec.CodecError) as info:
        codec.load_file(path)
    assert (type(info.value).__name__, str(info.value)) == (desc["error"], desc["message"])
    with pytest.raises(codec.CodecError) as info, open(path, "rb") as f:
        for _ in codec.iter_stream(f):
            pass
    assert type(info.value).__name__ == desc["stream_error"]
    with pytest.raises(codec.CodecError):
        with codec.open(path) as r:
            r.verify()
            for name in r:
                r.get(name)


def test_reject_vectors_exist():
    assert len(REJECT) >= 20


@pytest.mark.parametrize("path", VECTORS, ids=os.path.basename)
def test_stream_decode(path):
    desc = load(path)
    if "base_vector" in desc:  # a delta bitstream: a stream cannot take its base
        with open(path, "rb") as f, pytest.raises(codec.BaseMismatchError, match="delta bitstream"):
            list(codec.iter_stream(f))
        return
    with open(path, "rb") as f:
        streamed = list(codec.iter_stream(f))
    assert [name for name, _ in streamed] == [layer["name"] for layer in desc["layers"]]
    for (name, got), layer in zip(streamed, desc["layers"]):
        if layer["dtype"] == "bfloat16":
            got = got.view(np.uint16)
        assert got.shape == tuple(layer["shape"]), name
        assert got.astype(got.dtype.newbyteorder("<")).tobytes() == bytes.fromhex(layer["data_hex"]), name


def test_adaptive_vector_has_both_models():
    # 012-levels-adaptive covers lc_model 1 (spec 7.5) in several modes and a layer that stays static
    from codec.dump import summarize

    path = os.path.join(VECTOR_DIR, "012-levels-adaptive.nnc")
    with codec.open(path) as reader:
        doc = summarize(reader)
    models = {}
    for layer in doc["layers"]:
        coding = layer["coding"]
        summary = coding.get("levels", coding) if coding else {}
        models[layer["name"]] = summary.get("model")
    assert models["noise.static"] == "static"
    assert sum(m == "adaptive" for m in models.values()) >= 4, models
