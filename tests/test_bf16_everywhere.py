"""bfloat16 checkpoints (the most common published dtype) work with the plain install: ml_dtypes is a
dependency, and the CLI, the API and the torch adapter keep bfloat16 bit-exact."""

import subprocess
import sys

import numpy as np
import pytest

import codec


def test_ml_dtypes_is_a_dependency():
    from importlib.metadata import requires

    assert any(r.startswith("ml_dtypes") and "extra" not in r for r in requires("codec"))


def _bf16(tmp_path):
    import ml_dtypes
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {"w": rng.standard_normal((16, 8)).astype(ml_dtypes.bfloat16),
               "b": rng.standard_normal(16).astype(ml_dtypes.bfloat16),
               "ids": np.arange(6, dtype=np.int64)}
    path = tmp_path / "bf16.safetensors"
    save_file(tensors, str(path))
    return path, tensors


def test_cli_round_trip_of_a_bf16_checkpoint(tmp_path):
    src, tensors = _bf16(tmp_path)
    run = [sys.executable, "-m", "codec"]
    for args in (["encode", str(src), "-o", str(tmp_path / "m.nnc")],
                 ["decode", str(tmp_path / "m.nnc"), "-o", str(tmp_path / "r.safetensors")]):
        proc = subprocess.run(run + args, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    with codec.open(tmp_path / "m.nnc") as r:
        assert {n: r.header(n).dtype_name for n in r} == {"w": "bfloat16", "b": "bfloat16", "ids": "int64"}
        for n, a in tensors.items():
            assert r[n].dtype == a.dtype and np.array_equal(r[n].view(np.uint8), a.view(np.uint8))


def test_api_and_torch_adapter_with_bf16(tmp_path):
    src, tensors = _bf16(tmp_path)
    codec.save_file(tensors, tmp_path / "a.nnc")
    back = codec.load_file(tmp_path / "a.nnc")
    assert all(np.array_equal(back[n].view(np.uint8), a.view(np.uint8)) for n, a in tensors.items())
    torch = pytest.importorskip("torch")
    import codec.torch as ct

    sd = {"w": torch.randn(4, 4).to(torch.bfloat16)}
    ct.save_state_dict(sd, tmp_path / "t.nnc")
    out = ct.load_state_dict(tmp_path / "t.nnc")
    assert out["w"].dtype == torch.bfloat16 and torch.equal(out["w"], sd["w"])
