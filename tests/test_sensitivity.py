"""Per-layer sensitivity (codec.sensitivity): the measurement against a model whose answer is known, the step
factors, the JSON file, and the steps encode_file / a policy / the CLI give each layer."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import codec
from codec import sensitivity as sens
from codec.errors import EncodeError


def _two_layer_model(seed=0):
    """y = [x1 @ A, x2 @ B] with x2 ten times x1: B's output moves 100x more per unit of squared error."""
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal((400, 16))
    x2 = 10 * rng.standard_normal((400, 16))
    tensors = {"A": rng.standard_normal((16, 8)).astype(np.float32), "B": rng.standard_normal((16, 8)).astype(np.float32),
               "bias": np.zeros(8, np.float32)}

    def forward(t):
        return np.concatenate([x1 @ t["A"], x2 @ t["B"]], axis=1)

    return tensors, forward


def test_measure_finds_the_more_sensitive_layer():
    tensors, forward = _two_layer_model()
    s = sens.measure(tensors, forward)
    assert set(s) == {"A", "B"}  # rank >= 2 float tensors by default
    # E|x dW|^2 = E[x^2] * SSE / (outputs per row): A's inputs have variance 1, B's 100
    assert s["B"] / s["A"] == pytest.approx(100, rel=0.2)
    assert s["A"] == pytest.approx(1 / 16, rel=0.2)  # per output element: one of 16 columns' worth
    assert sens.measure(tensors, forward, names=["bias"])["bias"] == 0.0  # all zero: no noise to add
    with pytest.raises(ValueError, match="rel_noise"):
        sens.measure(tensors, forward, rel_noise=0)


def test_step_scales_follow_the_square_root_and_the_clip():
    scales = sens.step_scales({"a": 1.0, "b": 4.0, "c": 0.25, "d": 1e-6, "e": 1e6, "zero": 0.0})
    assert scales["a"] == 1.0  # the median
    assert scales["b"] == 0.5 and scales["c"] == 2.0
    assert scales["d"] == sens.DEFAULT_CLIP and scales["e"] == 1 / sens.DEFAULT_CLIP
    assert scales["zero"] == sens.DEFAULT_CLIP
    assert sens.step_scales({"a": 1.0, "d": 1e-6}, clip=2.0)["d"] == 2.0
    assert sens.step_scales({"a": 0.0}) == {"a": 1.0}
    with pytest.raises(ValueError, match="clip"):
        sens.step_scales({"a": 1.0}, clip=0.5)


def test_the_json_file(tmp_path):
    path = tmp_path / "s.json"
    sens.save({"w": 1.5, "v": 0}, path)
    assert sens.load(path) == {"w": 1.5, "v": 0.0}
    assert json.loads(path.read_text()) == {"w": 1.5, "v": 0.0}
    for bad in ({"w": -1}, {"w": float("nan")}, {"w": "x"}):
        with pytest.raises(EncodeError, match="finite number >= 0"):
            sens.load(bad)
    path.write_text("[1, 2]")
    with pytest.raises(EncodeError, match="not a JSON object"):
        sens.load(path)
    path.write_text("{")
    with pytest.raises(EncodeError, match="not a JSON object"):
        sens.load(path)


def _steps(path) -> dict:
    with codec.open(path) as r:
        return {name: r.get(name, levels=True)[1].steps.max() for name in r.keys()}


def test_encode_file_scales_each_layers_step(tmp_path):
    import safetensors.numpy as stn

    rng = np.random.default_rng(1)
    t = {n: rng.standard_normal((32, 24)).astype(np.float32) for n in ("a", "b", "c")}
    stn.save_file(t, str(tmp_path / "m.safetensors"))
    policy = {"rules": [{"name": "a", "mode": "quantized", "bits": 8},
                        {"mode": "dq", "step": 2 ** -6}]}
    sens.save({"a": 1e-9, "b": 1.0, "c": 0.0625}, tmp_path / "s.json")  # c 16x as sensitive as b: half the step
    summary = codec.encode_file(tmp_path / "m.safetensors", tmp_path / "o.nnc", policy=policy,
                                sensitivity=tmp_path / "s.json")
    steps = _steps(tmp_path / "o.nnc")
    plain = codec.encode_file(tmp_path / "m.safetensors", tmp_path / "p.nnc", policy=policy)
    base = _steps(tmp_path / "p.nnc")
    # the median of (1e-9, 0.0625, 1) is c's: c keeps its step, b (16x as sensitive) gets a quarter of it
    # (sqrt(1/16)); a has bits=, not step=: untouched
    assert steps["a"] == base["a"]
    assert steps["c"] == pytest.approx(base["c"]) and steps["b"] == pytest.approx(base["b"] / 4)
    assert summary["sensitivity"] == 1 and plain["sensitivity"] == 0
    with codec.open(tmp_path / "o.nnc") as r:
        assert r.metadata["codec.sensitivity"].startswith("s.json sha256:")
    # the same through a policy's sensitivity file, and with a target search on top (steps keep their ratios)
    (tmp_path / "p.toml").write_text('sensitivity = "s.json"\n[[rules]]\nmode = "dq"\nstep = 0.015625\n')
    codec.encode_file(tmp_path / "m.safetensors", tmp_path / "q.nnc", policy=str(tmp_path / "p.toml"))
    got = _steps(tmp_path / "q.nnc")
    assert got["c"] == pytest.approx(base["c"]) and got["b"] == pytest.approx(base["b"] / 4)
    codec.encode_file(tmp_path / "m.safetensors", tmp_path / "t.nnc", policy=str(tmp_path / "p.toml"), target_bits=5.0)
    got = _steps(tmp_path / "t.nnc")
    assert math.log2(got["c"] / got["b"]) == pytest.approx(2)


def test_save_file_with_a_policy_dict_and_the_cli(tmp_path):
    import safetensors.numpy as stn

    rng = np.random.default_rng(2)
    t = {n: rng.standard_normal((16, 16)).astype(np.float32) for n in ("x", "y")}
    sens.save({"x": 1.0, "y": 1.0 / 64}, tmp_path / "s.json")
    policy = {"sensitivity": str(tmp_path / "s.json"), "rules": [{"mode": "quantized", "step": 2 ** -6}]}
    codec.save_file(t, tmp_path / "f.nnc", policy=policy)
    steps = _steps(tmp_path / "f.nnc")
    # the median (the upper of two) is x's; y, 64x less sensitive, would get 8x the step: the clip keeps 4x
    assert steps["x"] == pytest.approx(2 ** -6) and steps["y"] == pytest.approx(2 ** -6 * 4)
    stn.save_file(t, str(tmp_path / "m.safetensors"))
    (tmp_path / "p.toml").write_text('[[rules]]\nmode = "quantized"\nstep = 0.015625\n')
    done = subprocess.run([sys.executable, "-m", "codec", "encode", "m.safetensors", "-o", "c.nnc", "--policy",
                           "p.toml", "--sensitivity", "s.json"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _steps(tmp_path / "c.nnc") == _steps(tmp_path / "f.nnc")
    bad = subprocess.run([sys.executable, "-m", "codec", "encode", "m.safetensors", "-o", "d.nnc", "--sensitivity",
                          "missing.json"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode != 0 and "missing.json" in bad.stderr and not os.path.exists(tmp_path / "d.nnc")


def test_collect_sensitivity_with_torch():
    torch = pytest.importorskip("torch")
    from codec.torch import collect_sensitivity

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    with torch.no_grad():
        model[2].weight.mul_(10)  # the first layer's errors are amplified 10x by the second
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [torch.randn(64, 8) for _ in range(3)]
    s = collect_sensitivity(model, batches)
    assert set(s) == {"0.weight", "2.weight"}
    assert s["0.weight"] > 5 * s["2.weight"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # restored
    assert collect_sensitivity(model, batches) == s  # seeded
