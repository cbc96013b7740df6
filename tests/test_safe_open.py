"""codec.safe_open stands in for safetensors.safe_open: the same script runs on both, changing only
the import; raw layers come out zero-copy; the reader is a full read-only Mapping."""

import collections.abc

import numpy as np
import pytest

import codec

SCRIPT = """
out = {}
with safe_open(PATH, framework="np") as f:
    out["keys"] = sorted(f.keys())
    out["meta"] = f.metadata()
    for name in f.keys():
        out[name] = f.get_tensor(name)
        s = f.get_slice(name)
        out[name + ":shape"] = s.get_shape()
        out[name + ":dtype"] = s.get_dtype()
        out[name + ":rows"] = s[0:2]
"""


def _tensors():
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((6, 4)).astype(np.float32), "ids": np.arange(12, dtype=np.int64).reshape(3, 4),
            "h": rng.standard_normal((5, 3)).astype(np.float16)}


def test_the_same_script_on_safetensors_and_codec(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    tensors = _tensors()
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata={"format": "np"})
    codec.save_file(tensors, tmp_path / "m.nnc", metadata={"format": "np"})
    results = []
    for opener, path in ((safetensors.safe_open, tmp_path / "m.safetensors"), (codec.safe_open, tmp_path / "m.nnc")):
        scope = {"safe_open": opener, "PATH": str(path)}
        exec(SCRIPT, scope)
        results.append(scope["out"])
    ours, theirs = results[1], results[0]
    assert ours.keys() == theirs.keys()
    for key in theirs:
        if isinstance(theirs[key], np.ndarray):
            assert ours[key].dtype == theirs[key].dtype and np.array_equal(ours[key], theirs[key]), key
        else:
            assert ours[key] == theirs[key], key


def test_torch_framework(tmp_path):
    torch = pytest.importorskip("torch")
    import ml_dtypes

    tensors = {**_tensors(), "b": np.arange(6, dtype=np.float32).astype(ml_dtypes.bfloat16)}
    codec.save_file(tensors, tmp_path / "m.nnc")
    with codec.safe_open(tmp_path / "m.nnc", framework="pt") as f:
        for name, a in tensors.items():
            t = f.get_tensor(name)
            assert isinstance(t, torch.Tensor)
            if name == "b":
                assert t.dtype == torch.bfloat16 and t.float().tolist() == a.astype(np.float32).tolist()
            else:
                assert np.array_equal(t.numpy(), a)
        assert f.get_slice("w")[1:3].shape == (2, 4)
    from codec.torch import load_state_dict

    sd = load_state_dict(tmp_path / "m.nnc", device="cpu")
    assert sd["w"].device.type == "cpu" and np.array_equal(sd["w"].numpy(), tensors["w"])
    with pytest.raises(ValueError, match="framework must be one of"):
        codec.safe_open(tmp_path / "m.nnc", framework="jax")


def test_zero_copy_raw_layers_and_the_mapping_protocol(tmp_path):
    tensors = _tensors()
    with codec.Writer(tmp_path / "m.nnc") as w:
        w.add_layer("raw", tensors["w"], mode="raw")
        w.add_layer("packed", tensors["w"], mode="floatplanes")
    with codec.open(tmp_path / "m.nnc") as r:
        assert isinstance(r, collections.abc.Mapping)
        view = r.get("raw", copy=False)
        assert not view.flags.owndata and not view.flags.writeable and np.array_equal(view, tensors["w"])
        assert view.ctypes.data % 64 == 0  # the payload is aligned in the map
        with pytest.raises(ValueError):
            view[0, 0] = 1.0
        copied = r.get("raw")
        assert copied.flags.writeable and np.array_equal(copied, view)
        assert r.get("packed", copy=False).flags.writeable  # a decoded layer is a new array anyway
        assert r.get("missing") is None and r.get("missing", 0) == 0
        assert dict(r.items()).keys() == {"raw", "packed"} and len(list(r.values())) == 2
        assert r == r and r != codec.open(tmp_path / "m.nnc")
    # a damaged raw payload is still caught with copy=False
    data = bytearray((tmp_path / "m.nnc").read_bytes())
    with codec.open(bytes(data)) as r:
        offset = r.header("raw").payload_offset
    data[offset] ^= 1
    with codec.open(bytes(data)) as r:
        with pytest.raises(codec.ChecksumError):
            r.get("raw", copy=False)
        assert r.get("raw", copy=False, verify=False)[0, 0] != tensors["w"][0, 0]
