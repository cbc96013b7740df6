"""Reader: lazy random access, headers without decoding, metadata, verify, sequential pipe reading."""

import subprocess
import sys

import numpy as np
import pytest

import codec
from codec.errors import ChecksumError, FormatError, TruncatedError


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    return {
        "emb.weight": rng.standard_normal((40, 8)).astype(np.float32),
        "fc.weight": rng.standard_normal((8, 8)).astype(np.float16),
        "fc.bias": np.zeros(8, np.float32),
        "ln.weight": np.ones(8, np.float32),
        "step": np.array(3, np.int64),
    }


@pytest.fixture
def path(tmp_path, model):
    p = tmp_path / "model.nnc"
    codec.save_file(model, p, metadata={"arch": "mlp", "n": 5}, mode="zstd")
    return p


def test_mapping_interface(path, model):
    with codec.open(path) as r:
        assert r.keys() == list(model)
        assert list(r) == list(model)
        assert len(r) == 5
        assert "fc.bias" in r and "nope" not in r
        assert r.metadata == {"arch": "mlp", "n": 5}
        assert r.version == (1, 0)
        np.testing.assert_array_equal(r["fc.weight"], model["fc.weight"])
        assert [k for k, _ in r.items()] == list(model)
        with pytest.raises(KeyError):
            r["nope"]
        assert r.get("nope") is None and r.get("nope", 5) == 5  # the Mapping protocol


def test_header_fields(path, model):
    with codec.open(path) as r:
        h = r.header("emb.weight")
        assert (h.layer_index, h.layer_name, h.shape, h.dtype_name, h.mode_name, h.kind_name) == (
            0, "emb.weight", (40, 8), "float32", "zstd", "embedding")
        assert r.header("fc.bias").kind_name == "bias"
        assert r.header("ln.weight").kind_name == "norm"
        assert r.header("step").kind_name == "other"
        assert h.local_qp_set is None and h.mode_params == b""


def test_header_does_not_decode_payload(path):
    # Corrupt one payload: header() still works, get() of that layer fails, others still decode.
    data = bytearray(path.read_bytes())
    with codec.open(path) as r:
        h = r.header("fc.weight")
    data[h.payload_offset + 1] ^= 0x10
    with codec.open(bytes(data)) as r:
        assert r.header("fc.weight").shape == (8, 8)
        r.get("emb.weight")
        with pytest.raises(ChecksumError, match=r"layers\[1\]\.unit_payload at byte \d+: payload crc32c mismatch"):
            r.get("fc.weight")
        with pytest.raises(ChecksumError):
            r.verify()


def test_verify_passes_on_good_file(path):
    with codec.open(path) as r:
        r.verify()


def test_reader_from_bytes_and_close(path, model):
    data = path.read_bytes()
    r = codec.open(data)
    assert r.keys() == list(model)
    r.close()
    r.close()  # idempotent


def test_verify_false_skips_payload_crc(path):
    data = bytearray(path.read_bytes())
    with codec.open(path) as r:
        h = r.header("fc.bias")
    with codec.open(path, verify=False) as r:
        r.get("fc.bias")
    # flip the stored payload CRC inside the unit header: header CRC catches it regardless
    data[h.unit_offset + 16] ^= 1
    with codec.open(bytes(data)) as r:
        with pytest.raises(ChecksumError, match="unit_header_crc32c"):
            r.get("fc.bias", verify=False)


def test_iter_stream_through_a_pipe(path, model):
    code = (
        "import sys, codec\n"
        "for name, a in codec.iter_stream(sys.stdin.buffer):\n"
        "    print(name, a.dtype, a.shape, float(a.astype('f8').sum()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], input=path.read_bytes(), capture_output=True, check=True)
    lines = proc.stdout.decode().splitlines()
    assert [ln.split()[0] for ln in lines] == list(model)
    assert lines[2].startswith("fc.bias float32 (8,)")


class Unseekable:
    def __init__(self, data):
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n=-1):
        n = 7 if n < 0 else min(n, 7)  # short reads, like a pipe
        chunk = bytes(self._data[self._pos:self._pos + n])
        self._pos += len(chunk)
        return chunk


def test_iter_stream_short_reads_and_metadata(path, model):
    reader = codec.StreamReader(Unseekable(path.read_bytes()))
    assert reader.metadata == {"arch": "mlp", "n": 5}
    got = {h.layer_name: a for h, a in reader}
    assert list(got) == list(model)
    for k in model:
        np.testing.assert_array_equal(got[k], model[k])


def test_iter_stream_detects_truncation_and_trailing_bytes(path):
    data = path.read_bytes()
    with pytest.raises(TruncatedError):
        list(codec.iter_stream(Unseekable(data[:-5])))
    with pytest.raises(FormatError, match="bytes after the trailer"):
        list(codec.iter_stream(Unseekable(data + b"\x00")))


def test_failed_open_of_a_path_closes_cleanly(tmp_path, path):
    bad = tmp_path / "bad.nnc"
    data = bytearray(path.read_bytes())
    data[-30] ^= 4
    bad.write_bytes(bytes(data))
    for _ in range(3):
        with pytest.raises(codec.CodecError):
            codec.open(bad)


def test_payload_view_outlives_close(path):
    r = codec.open(path)
    view = r.payload("fc.bias")
    r.close()
    assert len(bytes(view)) == r_size(path)


def r_size(path):
    with codec.open(path) as r:
        return r.header("fc.bias").payload_size
