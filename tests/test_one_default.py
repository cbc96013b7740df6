"""One lossless default everywhere: save_file, encode, Writer and the CLI without a mode or policy
choose the same per-tensor mode (floatplanes for floats, entropy for integers and bool, raw where
that is not smaller), and save_file / encode take a policy."""

import json
import subprocess
import sys

import numpy as np
import pytest

import codec
from codec.errors import EncodeError


def _tensors():
    rng = np.random.default_rng(0)
    return {
        "w": (rng.standard_normal((64, 48)) * 0.02).astype(np.float32),     # floatplanes pays
        "ids": np.repeat(np.arange(8, dtype=np.int64), 40),                  # entropy pays
        "mask": rng.random(500) < 0.05,                                      # bool: entropy
        "tiny": np.array([1.5], np.float32),                                 # nothing to gain: raw
        "noise": rng.integers(0, 256, 300, dtype=np.uint8),                  # incompressible: raw
    }


EXPECTED = {"w": "floatplanes", "ids": "entropy", "mask": "entropy", "tiny": "raw", "noise": "raw"}


def _modes(data_or_path) -> dict:
    with codec.open(data_or_path) as r:
        return {n: r.header(n).mode_name for n in r}


def test_every_entry_point_picks_the_same_lossless_mode(tmp_path):
    tensors = _tensors()
    data = codec.encode(tensors)
    assert _modes(data) == EXPECTED
    codec.save_file(tensors, tmp_path / "s.nnc")
    assert (tmp_path / "s.nnc").read_bytes() == data
    with codec.Writer(tmp_path / "w.nnc") as w:
        for name, array in tensors.items():
            w.add_layer(name, array)
    assert (tmp_path / "w.nnc").read_bytes() == data
    assert codec.encode(tensors, workers=3) == data  # the parallel path decides alike
    from safetensors.numpy import save_file

    save_file(tensors, str(tmp_path / "in.safetensors"))
    proc = subprocess.run([sys.executable, "-m", "codec", "encode", str(tmp_path / "in.safetensors"), "-o",
                           str(tmp_path / "cli.nnc")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert _modes(tmp_path / "cli.nnc") == EXPECTED
    assert "5 x lossless (coded as 2 entropy, 1 floatplanes, 2 raw)" in proc.stdout
    for name, array in codec.load_file(tmp_path / "cli.nnc").items():
        assert np.array_equal(array, tensors[name])


def test_save_file_and_encode_take_a_policy(tmp_path):
    tensors = _tensors()
    policy = '[[rules]]\nname = "w"\nmode = "quantized"\nbits = 8\n'
    data = codec.encode(tensors, policy=policy)
    assert _modes(data) == {**EXPECTED, "w": "quantized"}
    with codec.open(data) as r:
        assert json.loads(r.metadata["codec.policy"])["rules"][0]["mode"] == "quantized"
    codec.save_file(tensors, tmp_path / "p.nnc", policy=policy, metadata={"arch": "x"})
    assert (tmp_path / "p.nnc").read_bytes() != data  # the extra metadata
    assert _modes(tmp_path / "p.nnc") == _modes(data)
    with pytest.raises(ValueError, match="either mode= .* or policy="):
        codec.encode(tensors, mode="zstd", policy=policy)
    with pytest.raises(EncodeError, match="searched by encode_file"):
        codec.encode(tensors, policy=policy + "[target]\nbits = 4\n")


def test_parameters_without_a_mode_are_an_error():
    with pytest.raises(EncodeError, match=r"parameters \['level'\] need a mode"):
        codec.encode({"w": np.ones(4, np.float32)}, level=3)
