"""A reader whose file changes under it raises, never dies (SIGBUS); a closed reader says so; reading
or verifying a whole file keeps the resident memory at about one layer."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import codec


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.nnc"
    rng = np.random.default_rng(0)
    codec.save_file({"raw": rng.standard_normal((256, 256)).astype(np.float32),
                     "packed": rng.standard_normal((256, 256)).astype(np.float32)}, path, mode="raw")
    with codec.Writer(path) as w:
        w.add_layer("raw", rng.standard_normal((256, 256)).astype(np.float32), mode="raw")
        w.add_layer("packed", rng.standard_normal((256, 256)).astype(np.float32), mode="floatplanes")
    return path


def test_closed_reader_says_so(model):
    r = codec.open(model)
    r.close()
    for call in (lambda: r.get("raw"), lambda: r.header("raw"), lambda: r.payload("raw"), r.verify):
        with pytest.raises(ValueError, match="^the reader is closed$"):
            call()


SCRIPT = r"""
import os, sys
import codec
path, how, layer = sys.argv[1:]
r = codec.open(path)
if how == "truncate":
    os.truncate(path, os.path.getsize(path) // 3)
else:  # rewritten in place, same size (cp other.nnc f.nnc)
    data = open(path, "rb").read()
    with open(path, "r+b") as f:
        f.write(bytes(len(data)))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
for call in (lambda: r.get(layer), r.verify):
    try:
        call()
        print("decoded")
    except codec.FileChangedError as exc:
        print("FileChangedError", exc)
"""


@pytest.mark.parametrize("how", ["truncate", "rewrite"])
@pytest.mark.parametrize("layer", ["raw", "packed"])
def test_a_file_changed_under_the_reader_raises(model, how, layer):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(model), how, layer], capture_output=True, text=True)
    assert proc.returncode == 0, f"the process died ({proc.returncode}): {proc.stderr[-500:]}"
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("FileChangedError") for line in lines), proc.stdout
    assert repr(str(model)) in lines[0] and "open it again" in lines[0]


def test_a_file_replaced_by_rename_keeps_reading_the_old_one(model, tmp_path):
    with codec.open(model) as r:
        other = tmp_path / "other.nnc"
        codec.save_file({"raw": np.zeros(3, np.float32)}, other, mode="raw")
        os.replace(other, model)  # what codec's writer does: the open file keeps its inode
        assert r.get("raw").shape == (256, 256)


RSS_SCRIPT = r"""
import resource, sys
import codec
path = sys.argv[1]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with codec.open(path) as r:
    r.verify()
    for name, array in r.items():
        del array
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_verify_and_reading_every_layer_keep_memory_at_about_one_layer(tmp_path):
    path = tmp_path / "big.nnc"
    layer = np.ones((1024, 4096), np.float32)  # 16 MiB
    with codec.Writer(path) as w:
        for i in range(8):
            w.add_layer(f"l{i}", layer + i, mode="raw")
    proc = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) < 48, f"resident memory grew by {proc.stdout.strip()} MiB for a 128 MiB file"
