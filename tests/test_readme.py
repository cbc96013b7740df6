"""The README's examples run: its Python block, its first shell block (the everyday commands) and the
policy it shows as int8.toml, in a scratch folder with a small model."""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    save_file({"enc.weight": (rng.standard_normal((64, 48)) * 0.05).astype(np.float32),
               "enc.bias": rng.standard_normal(64).astype(np.float32),
               "enc.LayerNorm.weight": np.ones(64, np.float32),
               "ids": np.arange(20, dtype=np.int64)}, str(tmp_path / "model.safetensors"))
    int8 = _blocks("toml")[0]  # the README introduces its first policy as int8.toml
    (tmp_path / "int8.toml").write_text(int8)
    (tmp_path / "policy.toml").write_text(int8)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_python_example_runs(scratch):
    pytest.importorskip("torch")  # the example reads a layer as a torch tensor

    class Client:  # stands in for a dask client
        def get_executor(self):
            return ThreadPoolExecutor(2)

    scope = {"client": Client()}
    exec(compile(_blocks("python")[0], "README.md", "exec"), scope)
    assert (scratch / "m8.nnc").exists() and scope["levels"].dtype.kind == "i"


def test_the_everyday_commands_run(scratch):
    commands = [line.split("#")[0].strip() for line in _blocks("bash")[1].splitlines()]
    commands = [c for c in commands if c]
    assert len(commands) >= 5
    for command in commands:
        argv = command.split()
        tool = {"codec": [sys.executable, "-m", "codec"], "codec-dump": [sys.executable, "-m", "codec.dump"]}[argv[0]]
        proc = subprocess.run(tool + argv[1:], capture_output=True, text=True)
        assert proc.returncode == 0, (command, proc.stderr)
    assert (scratch / "restored.safetensors").exists() and (scratch / "model_dq.nnc").exists()
