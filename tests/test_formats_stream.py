"""The safetensors, npz and PyTorch writers stream: headers from shapes and dtypes, then one tensor
at a time (loaded when written, dropped after). ``codec decode`` uses them, so decoding a model
to a file holds about one layer. The .pt files are written without torch and must load in torch."""

import gc
import os
import subprocess
import sys
import weakref
import zipfile

import numpy as np
import pytest

from codec import formats

ROOT = os.path.join(os.path.dirname(__file__), "..")
#: hwm() for the measuring child processes: peak resident set (VmHWM) in MiB
HWM_SOURCE = """
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) // 1024
"""


def _items():
    rng = np.random.default_rng(0)
    items = [("a", rng.standard_normal((3, 4)).astype(np.float32), "float32"),
             ("b", np.arange(5, dtype=np.uint16), "uint16"),
             ("c", np.array(2.5), "float64"),
             ("d", np.zeros((0, 3), np.int8), "int8"),
             ("e", np.array([True, False, True]), "bool"),
             ("g", np.arange(6, dtype=">i4").reshape(2, 3), "int32"),  # big-endian input
             ("h", np.arange(3, dtype=np.uint64) << np.uint64(60), "uint64"),
             ("i", rng.standard_normal((2, 2, 2)).astype(np.float16), "float16"),
             ("j", np.arange(-4, 4, dtype=np.int64), "int64"),
             ("k", np.arange(4, dtype=np.uint32), "uint32")]
    try:
        import ml_dtypes

        items.append(("f", rng.standard_normal(7).astype(ml_dtypes.bfloat16), "bfloat16"))
    except ImportError:  # pragma: no cover - ml_dtypes is a test dependency
        pass
    return items


def _same(got, ref, dtype):
    ref = np.asarray(ref)
    if dtype == "bfloat16":
        got, ref = np.asarray(got).view(np.uint16), ref.view(np.uint16)
    got = np.asarray(got)
    native = ref.dtype.newbyteorder("=")
    return (got.shape == ref.shape and got.dtype.newbyteorder("=") == native
            and got.astype(native).tobytes() == ref.astype(native).tobytes())


@pytest.mark.parametrize("ext", [".safetensors", ".npz", ".pt"])
def test_round_trip_every_dtype(tmp_path, ext):
    path = tmp_path / f"m{ext}"
    items = _items()
    formats.write_tensors(path, items, metadata={"k": "v"})
    if ext == ".pt":
        pytest.importorskip("torch")  # writing .pt needs no torch; reading it back does
    back = {name: array for name, array, _ in formats.read_tensors(path)}
    assert list(back) == [name for name, _, _ in items] or ext == ".pt"
    for name, array, dtype in items:
        assert _same(back[name], array, dtype), name


def test_pt_loads_in_torch(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "m.pt"
    items = _items()
    formats.write_tensors(path, items)
    for mmap in (False, True):
        sd = torch.load(path, weights_only=True, mmap=mmap)
        assert list(sd) == [name for name, _, _ in items]
        for name, array, dtype in items:
            t = sd[name]
            got = t.view(torch.int16).numpy().view(np.uint16) if dtype == "bfloat16" else t.numpy()
            assert _same(got, array, dtype) and str(t.dtype) == f"torch.{dtype}", name


def test_pt_storages_are_aligned(tmp_path):
    path = tmp_path / "m.pt"
    formats.write_tensors(path, _items())
    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        members = [i for i in zf.infolist() if "/data/" in i.filename]
        assert members
        for info in members:
            f.seek(info.header_offset + 26)
            name_len, extra_len = np.frombuffer(f.read(4), "<u2")
            assert (info.header_offset + 30 + int(name_len) + int(extra_len)) % 64 == 0
        assert zf.read("archive/byteorder") == b"little" and zf.read("archive/version") == b"3"


@pytest.mark.parametrize("ext", [".safetensors", ".npz", ".pt"])
def test_one_tensor_at_a_time(tmp_path, ext):
    live = []
    order = []

    def loader(i):
        def load():
            gc.collect()
            assert all(ref() is None for ref in live), f"tensor {i} loaded while an earlier one is held"
            array = np.full((64, 64), i, dtype=np.float32)
            live.append(weakref.ref(array))
            order.append(i)
            return array
        return load

    items = [formats.LazyTensor(f"t{i}", (64, 64), "float32", loader(i)) for i in range(5)]
    formats.write_tensors(tmp_path / f"m{ext}", items)
    assert order == list(range(5))
    if ext == ".pt":
        pytest.importorskip("torch")  # writing .pt needs no torch; reading it back does
    back = {name: array for name, array, _ in formats.read_tensors(tmp_path / f"m{ext}")}
    assert [int(back[f"t{i}"][0, 0]) for i in range(5)] == list(range(5))


def test_lazy_tensor_must_match_its_header(tmp_path):
    item = formats.LazyTensor("w", (2, 3), "float32", lambda: np.zeros((3, 2), np.float32))
    with pytest.raises(formats.EncodeError, match="shape"):
        formats.write_tensors(tmp_path / "m.safetensors", [item])
    assert not os.path.exists(tmp_path / "m.safetensors")


@pytest.mark.parametrize("ext", [".safetensors", ".npz", ".pt"])
def test_decode_cli_holds_about_one_layer(tmp_path, ext):
    # 8 layers of 24 MiB: decoding the whole model into memory first would need 192 MiB more
    code = """
import resource, sys, numpy as np, codec
with codec.Writer(sys.argv[1]) as w:
    for i in range(8):
        w.add_layer(f"w{i}", np.full((6 << 20,), i, np.float32), mode="zstd")
"""
    src, out = tmp_path / "m.nnc", tmp_path / f"out{ext}"
    subprocess.run([sys.executable, "-c", code, str(src)], check=True, cwd=ROOT)
    measure = """
import resource, subprocess, sys, os
proc = subprocess.Popen([sys.executable, "-c", "import codec, numpy"])
_, _, base = os.wait4(proc.pid, 0)
proc = subprocess.Popen([sys.executable, "-m", "codec", "decode", "-q", sys.argv[1], "-o", sys.argv[2]])
_, status, ru = os.wait4(proc.pid, 0)
print(status, (ru.ru_maxrss - base.ru_maxrss) // 1024)
"""
    result = subprocess.run([sys.executable, "-c", measure, str(src), str(out)], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    status, grown_mib = (int(v) for v in result.stdout.split())
    assert status == 0, result.stderr
    assert grown_mib < 24 * 3 + 32, f"decode to {ext} grew by {grown_mib} MiB for 24 MiB layers"
    back = {name: array for name, array, _ in formats.read_tensors(out)} if ext != ".pt" else None
    if back is not None:
        assert [float(back[f"w{i}"][-1]) for i in range(8)] == [float(i) for i in range(8)]


def test_iter_stream_holds_one_layer_and_its_payload(tmp_path):
    # the generator must not keep the previous layer (or its payload) while it reads the next
    src = tmp_path / "m.nnc"
    make = """
import sys, numpy as np, codec
with codec.Writer(sys.argv[1]) as w:
    for i in range(8):
        w.add_layer(f"w{i}", np.full((6 << 20,), i, np.float32), mode="raw")
"""
    subprocess.run([sys.executable, "-c", make, str(src)], check=True, cwd=ROOT)
    measure = HWM_SOURCE + """
import sys, codec
base = hwm()
with open(sys.argv[1], 'rb') as f:
    for name, array in codec.iter_stream(f):
        assert float(array[-1]) == float(name[1:])
        del array
print(hwm() - base)
"""
    grown = int(subprocess.run([sys.executable, "-c", measure, str(src)], capture_output=True, text=True,
                               cwd=ROOT, check=True).stdout)
    assert grown < 24 * 3 + 16, f"iter_stream grew by {grown} MiB for 24 MiB layers"


def _outcome(fn):
    try:
        return ("ok", [(name, a.dtype.str, a.shape, a.tobytes()) for name, a in fn()])
    except Exception as exc:  # noqa: BLE001 - the outcome compared
        return ("raise", type(exc).__name__, str(exc))


def test_iter_stream_spools_large_payloads_of_piecewise_modes_with_the_same_outcomes(monkeypatch):
    # payloads above reader._PIECES_BYTES of a mode that reads in pieces go to a temporary file;
    # whatever the bytes (valid, flipped, truncated, verify on or off) the outcome must be the one
    # of the in-memory path
    import io

    import codec
    from codec import reader

    data = codec.encode({"a": np.random.default_rng(3).standard_normal((40, 50)).astype(np.float32),
                         "b": np.random.default_rng(4).standard_normal(999).astype(np.float16),
                         "c": np.zeros(0, np.float32),
                         "d": np.random.default_rng(5).standard_normal((7, 3))}, mode="floatplanes")
    r = codec.open(data)
    spans = [(r.header(k).payload_offset, r.header(k).payload_size) for k in r.keys()]
    cases = [(data, True), (data, False)]
    for offset, size in spans:
        for at in (0, 3, 4, size // 2, size - 1):
            if at < size:
                flipped = bytearray(data)
                flipped[offset + at] ^= 0x10
                cases += [(bytes(flipped), True), (bytes(flipped), False)]
        cases.append((data[:offset + size // 2], True))
    spooled = []

    def run(blob, verify):
        return _outcome(lambda: list(codec.iter_stream(io.BytesIO(blob), verify=verify)))

    monkeypatch.setattr(reader, "_PIECES_BYTES", 1 << 40)
    expected = [run(blob, verify) for blob, verify in cases]
    monkeypatch.setattr(reader, "_PIECES_BYTES", 16)
    real_spool = reader._Stream.spool

    def counting_spool(self, n, path, *, crc):
        spooled.append(n)
        return real_spool(self, n, path, crc=crc)

    monkeypatch.setattr(reader._Stream, "spool", counting_spool)
    for (blob, verify), want in zip(cases, expected):
        assert run(blob, verify) == want
    assert spooled and expected[0][0] == "ok"
    assert [a for _, _, _, a in expected[0][1]] == [codec.open(data).get(k).tobytes() for k in r.keys()]


@pytest.mark.skipif(__import__("codec").backend == "pure", reason="the pure level decoder takes minutes on 24M levels")
def test_iter_stream_of_a_pipe_holds_the_layer_not_its_payload(tmp_path):
    # float planes of 24 MiB layers (19 MiB payloads) from a pipe: growth about one layer
    src = tmp_path / "fp.nnc"
    make = """
import sys, numpy as np, codec
rng = np.random.default_rng(0)
with codec.Writer(sys.argv[1]) as w:
    for i in range(3):
        w.add_layer(f"w{i}", rng.standard_normal(6 << 20).astype(np.float32), mode="floatplanes")
"""
    subprocess.run([sys.executable, "-c", make, str(src)], check=True, cwd=ROOT)
    measure = HWM_SOURCE + """
import sys, codec
base = hwm()
for name, array in codec.iter_stream(sys.stdin.buffer):
    del array
print(hwm() - base)
"""
    with open(src, "rb") as f:
        grown = int(subprocess.run([sys.executable, "-c", measure], stdin=f, capture_output=True, text=True,
                                   cwd=ROOT, check=True).stdout)
    assert grown < 24 + 16, f"iter_stream grew by {grown} MiB for 24 MiB float-plane layers of 19 MiB payloads"
