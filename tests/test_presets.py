"""Built-in presets: usable by name wherever a policy is; each is a valid policy."""

import json
import subprocess
import sys

import numpy as np
import pytest

import codec
from codec import quality
from codec.policy import load_policy
from codec.presets import PRESETS


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_valid_policy(name):
    policy = load_policy(name)
    assert policy.preset == name
    doc = json.loads(policy.to_json())
    assert doc["preset"] == name and load_policy(policy.to_json()).to_json() == policy.to_json()


def _model(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(2)
    tensors = {"enc.weight": rng.laplace(0, 0.03, (96, 64)).astype(np.float32),
               "enc.bias": rng.standard_normal(96).astype(np.float32),
               "position_ids": np.arange(32, dtype=np.int64)[None]}
    path = tmp_path / "m.safetensors"
    save_file(tensors, str(path))
    return path, tensors


def test_presets_from_the_cli(tmp_path):
    src, tensors = _model(tmp_path)
    sizes = {}
    for name in ("lossless", "int8", "int4", "dq"):
        out = tmp_path / f"{name}.nnc"
        proc = subprocess.run([sys.executable, "-m", "codec", "encode", str(src), "-o", str(out), "--policy", name],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        sizes[name] = out.stat().st_size
        with codec.open(out) as r:
            modes = {n: r.header(n).mode_name for n in r}
            assert json.loads(r.metadata["codec.policy"])["preset"] == name
            assert modes["position_ids"] == "entropy" and modes["enc.bias"] in ("floatplanes", "raw")
            assert np.array_equal(r["position_ids"], tensors["position_ids"])
        assert modes["enc.weight"] == {"lossless": "floatplanes", "int8": "quantized", "int4": "quantized",
                                       "dq": "dq"}[name]
    assert sizes["lossless"] > sizes["int8"] > sizes["int4"]
    # dq searched its step for a 3% weight error
    with codec.open(tmp_path / "dq.nnc") as r:
        report = quality.from_metadata(r.metadata[quality.METADATA_KEY])
    assert 0.02 < quality.total(report).rel_error <= 0.03
    proc = subprocess.run([sys.executable, "-m", "codec", "encode", str(src), "-o", str(tmp_path / "x.nnc"),
                           "--policy", "int7.toml"], capture_output=True, text=True)
    assert proc.returncode != 0 and "does not exist (built-in presets: lossless, int8" in proc.stderr


def test_presets_in_the_api(tmp_path):
    _, tensors = _model(tmp_path)
    data = codec.encode(tensors, policy="int8")
    with codec.open(data) as r:
        assert r.header("enc.weight").mode_name == "quantized"
    with pytest.raises(codec.EncodeError, match="searched by encode_file"):
        codec.encode(tensors, policy="dq")
