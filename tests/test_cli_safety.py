"""No data loss from the command line: inputs are never written over, outputs only with --force,
files get the permissions a plain open() would give, and SIGTERM/SIGHUP/SIGKILL leave no temporary
file behind (a killed process's file is removed by the next write to the same target)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import codec
from codec.formats import write_tensors


def cli(*args, umask=None, **kw):
    return subprocess.run([sys.executable, "-m", "codec", *args], capture_output=True, text=True,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None, **kw)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.safetensors"
    write_tensors(path, [("w", np.arange(64, dtype=np.float32).reshape(8, 8), "float32")])
    return path


def test_refuses_to_write_onto_the_input(model, tmp_path):
    before = model.read_bytes()
    link = tmp_path / "hard.safetensors"
    os.link(model, link)
    sym = tmp_path / "sym.safetensors"
    sym.symlink_to(model)
    for out in (model, link, sym):
        proc = cli("encode", str(model), "-o", str(out), "-f")
        assert proc.returncode == 2 and "refusing to write onto the input" in proc.stderr, proc.stderr
    assert model.read_bytes() == before
    encoded = tmp_path / "codec-bitstream.npz"  # any name: the output's extension picks the format
    assert cli("encode", str(model), "-o", str(encoded)).returncode == 0
    proc = cli("decode", str(encoded), "-o", str(encoded), "-f")
    assert proc.returncode == 2 and "refusing to write onto the input" in proc.stderr


def test_an_existing_output_needs_force(model, tmp_path):
    out = tmp_path / "out.nnc"
    out.write_bytes(b"keep me")
    proc = cli("encode", str(model), "-o", str(out))
    assert proc.returncode == 2 and "exists: use -f/--force" in proc.stderr and out.read_bytes() == b"keep me"
    assert cli("encode", str(model), "-o", str(out), "--force").returncode == 0
    assert list(codec.load_file(out)) == ["w"]


def test_bad_output_paths_fail_before_any_work_and_name_the_users_path(model, tmp_path):
    proc = cli("encode", str(model), "-o", str(tmp_path / "nodir" / "out.nnc"))
    assert proc.returncode == 2 and "nodir" in proc.stderr and ".tmp" not in proc.stderr
    proc = cli("encode", str(model), "-o", str(tmp_path))
    assert proc.returncode == 2 and "is a directory" in proc.stderr
    with pytest.raises(OSError) as info:
        codec.Writer(tmp_path / "nodir" / "out.nnc")
    assert "out.nnc" in str(info.value) and ".tmp" not in str(info.value)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_umask_mode(model, tmp_path, umask, mode):
    out = tmp_path / "out.nnc"
    assert cli("encode", str(model), "-o", str(out), umask=umask).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == mode
    back = tmp_path / "back.npz"
    assert cli("decode", str(out), "-o", str(back), umask=umask).returncode == 0
    assert stat.S_IMODE(back.stat().st_mode) == mode


def test_a_replaced_file_keeps_its_mode(model, tmp_path):
    out = tmp_path / "out.nnc"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    assert cli("encode", str(model), "-o", str(out), "-f", umask=0o077).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def _slow_encode(tmp_path):
    src = tmp_path / "big.safetensors"
    write_tensors(src, [(f"w{i}", np.random.default_rng(i).standard_normal((512, 2048)).astype(np.float32), "float32")
                        for i in range(8)])
    policy = tmp_path / "slow.toml"
    policy.write_text('[defaults]\nmode = "quantized"\nbits = 8\nrdo_lambda = 0.1\n')  # slow on purpose
    return src, policy


def _temporary_files(directory):
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_removes_the_temporary_file(tmp_path, sig, code):
    src, policy = _slow_encode(tmp_path)
    out = tmp_path / "out.nnc"
    proc = subprocess.Popen([sys.executable, "-m", "codec", "encode", str(src), "-o", str(out), "--policy", str(policy),
                             "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _temporary_files(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.fail(f"the encode ended (exit {proc.returncode}) before it could be interrupted: "
                    f"{proc.stderr.read()[-2000:]}")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert f"terminated by signal {int(sig)}" in err, err
    assert not _temporary_files(tmp_path), (_temporary_files(tmp_path), err)
    assert not out.exists(), err


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(model, tmp_path):
    out = tmp_path / "out.nnc"
    stale = tmp_path / ".out.nnc.999999999.abcdefgh.tmp"  # no such process
    stale.write_bytes(b"left by a SIGKILL")
    alive = tmp_path / f".out.nnc.{os.getpid()}.abcdefgh.tmp"  # a live process's: kept
    alive.write_bytes(b"in use")
    other = tmp_path / ".other.nnc.999999999.abcdefgh.tmp"  # another target's: kept
    other.write_bytes(b"not ours")
    assert cli("encode", str(model), "-o", str(out)).returncode == 0
    assert not stale.exists() and alive.exists() and other.exists()


def test_a_signal_just_after_the_temporary_file_is_created_still_removes_it(tmp_path, monkeypatch):
    # a signal handler may run between any two bytecodes: the name must be registered before the
    # file exists, or a signal right after its creation leaves it behind
    from codec import atomic

    real_open = os.open

    def open_then_interrupt(path, flags, mode=0o777):
        real_open(path, flags, mode)
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "open", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic.AtomicFile(tmp_path / "out.nnc")
    monkeypatch.undo()
    assert _temporary_files(tmp_path)
    atomic.remove_temporary_files()
    assert not _temporary_files(tmp_path)
