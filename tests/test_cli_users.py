"""The CLI as a new user meets it: pipes, checkpoints, progress only on a terminal, exit codes."""

import subprocess
import sys

import numpy as np
import pytest

import codec

CLI = [sys.executable, "-m", "codec"]


def _src(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {"w": rng.standard_normal((32, 16)).astype(np.float32), "ids": np.arange(10, dtype=np.int64)}
    path = tmp_path / "m.safetensors"
    save_file(tensors, str(path))
    return path, tensors


def test_encode_to_stdout_and_decode_from_stdin(tmp_path):
    src, tensors = _src(tmp_path)
    proc = subprocess.run(CLI + ["encode", str(src), "-o", "-"], capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "-").exists()
    data = proc.stdout
    assert data.startswith(b"\x89NNC") and b"(stdout): 2 layers" in proc.stderr  # the summary goes to stderr
    assert all(np.array_equal(codec.decode(data)[n], a) for n, a in tensors.items())
    out = tmp_path / "back.safetensors"
    proc = subprocess.run(CLI + ["decode", "-", "-o", str(out)], input=data, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    from safetensors.numpy import load_file

    assert all(np.array_equal(load_file(str(out))[n], a) for n, a in tensors.items())
    proc = subprocess.run(CLI + ["decode", "-", "-o", "-"], input=data, capture_output=True, text=False)
    assert proc.returncode == 2 and b"the output format follows the file name's extension" in proc.stderr


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path):
    src, _ = _src(tmp_path)
    proc = subprocess.run(CLI + ["encode", str(src), "-o", str(tmp_path / "a.nnc")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "" and "2 layers" in proc.stdout
    proc = subprocess.run(CLI + ["decode", str(tmp_path / "a.nnc"), "-o", str(tmp_path / "a.npz")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers: must be at least 1, got 0"),
    (["--workers", "two"], "--workers: not an integer"),
    (["--target-size", "lots"], "a size such as 12MB"),
])
def test_bad_arguments_exit_2(tmp_path, args, message):
    src, _ = _src(tmp_path)
    proc = subprocess.run(CLI + ["encode", str(src), "-o", str(tmp_path / "x.nnc")] + args, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "x.nnc").exists()


def test_training_checkpoints_are_unwrapped_or_explained(tmp_path):
    torch = pytest.importorskip("torch")
    layer = torch.nn.Linear(4, 3)
    for key in ("model", "state_dict", "model_state_dict"):
        path = tmp_path / f"{key}.pt"
        torch.save({key: layer.state_dict(), "step": 5, "optimizer": {"lr": 0.1}}, path)
        out = tmp_path / f"{key}.nnc"
        proc = subprocess.run(CLI + ["encode", str(path), "-o", str(out)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert codec.load_file(out).keys() == {"weight", "bias"}
    torch.save({"a": {"x": torch.ones(2), "n": 3}, "b": 1}, tmp_path / "odd.pt")
    proc = subprocess.run(CLI + ["encode", str(tmp_path / "odd.pt"), "-o", str(tmp_path / "odd.nnc")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "a checkpoint whose entries 'a' are dicts" in proc.stderr
    assert "torch.save(checkpoint['a'], 'model.pt')" in proc.stderr


def test_source_metadata_survives_a_lossless_round_trip(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    tensors = {"w": np.ones((3, 2), np.float32)}
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata={"format": "pt", "codec.fake": "x"})
    for args in (["encode", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "m.nnc")],
                 ["decode", str(tmp_path / "m.nnc"), "-o", str(tmp_path / "back.safetensors")]):
        proc = subprocess.run(CLI + args, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    with codec.open(tmp_path / "m.nnc") as r:
        assert r.metadata["format"] == "pt" and "codec.fake" not in r.metadata  # codec.* keys are this run's
    with safe_open(str(tmp_path / "back.safetensors"), framework="np") as f:
        assert f.metadata()["format"] == "pt"


def test_progress_restarts_for_each_pass_of_a_target_search(monkeypatch):
    import io

    from codec import cli

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    bar = cli._Progress({"a": 10, "b": 30}, "encoding", quiet=False)
    for name in ("a", "b", "a", "b", "a"):  # three passes over the same two tensors
        bar(name)
    assert bar.passes == 3 and bar.seen == {"a"}
    bar.close()
    assert "encoding (pass 3)" in err.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: nothing drawn
    assert cli._Progress({"a": 1}, "encoding", quiet=False).quiet
