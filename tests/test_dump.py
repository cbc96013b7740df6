"""codec-dump and the codec CLI, run as subprocesses like a user would."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import codec
from codec.dump import escape, walk

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "codec", *args], capture_output=True, text=True, **kw)


def run_dump(*args):
    # the console script's module entry point, so the test does not depend on PATH
    code = "import sys; from codec.dump import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "m.nnc"
    with codec.Writer(p, metadata={"arch": "mlp", "nan": float("nan"), "blob": b"\x01\x02", "l": [1, [2]]}) as w:
        w.add_layer("fc.weight", np.ones((8, 4), np.float32), mode="zstd")
        w.add_layer("fc.bias", np.zeros(8, np.float32), mode="raw")
        w.add_layer("empty", np.zeros((0, 3), np.int8), mode="raw")
    return p


def test_table(path):
    proc = run_dump("--wide", str(path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "format version 1.0" in out and "3 layers" in out
    assert "fc.weight" in out and "zstd" in out and "8x4" in out
    line = next(ln for ln in out.splitlines() if " fc.bias " in ln)
    assert line.split()[2:9] == ["bias", "float32", "8", "raw", "-", "32", "32.000"]
    # the default view: 80 columns, the whole file's figures first, the name last
    out = run_dump(str(path)).stdout
    assert all(len(line) <= 80 for line in out.splitlines()[1:])  # the first line names the file
    assert "format 1.0, 3 layers, 40 elements" in out and "bits per element" in out and "share of the file:" in out
    assert "larger than raw" in out  # 40 elements: the framing outweighs them
    row = next(ln for ln in out.splitlines() if ln.endswith(" fc.bias"))
    assert row.split()[:3] == ["32.00", str(round(100 * 32 / path.stat().st_size, 1)), "raw"]


def test_filters_and_metadata_view(tmp_path):
    p = tmp_path / "f.nnc"
    rng = np.random.default_rng(0)
    with codec.Writer(p, metadata={"policy": '{"rules": [{"mode": "dq", "step": 0.01}], "x": ' + "1" * 200 + "}"}) as w:
        for i in range(3):
            w.add_layer(f"encoder.layer.{i}.attention.self.query.weight", rng.standard_normal((16, 8)).astype(
                np.float32), mode="dq", step=2 ** -4)
            w.add_layer(f"encoder.layer.{i}.attention.self.query.bias", np.zeros(16, np.float32), mode="raw")
    out = run_dump("--layers", "*LAYER.1.*", "--mode", "dq", str(p)).stdout
    rows = [ln for ln in out.splitlines() if ln.endswith(".weight")]
    assert rows == [next(ln for ln in out.splitlines() if "attention.self.query.weight" in ln)]
    assert "encoder.layer.1." in out and "encoder.layer.0." not in out and "(1 of 6 layers shown)" in out
    assert "dq 8b 2^-4.0" in rows[0] or "dq " in rows[0]
    doc = json.loads(run_dump("--json", "--mode", "raw", str(p)).stdout)
    assert doc["filtered"] and {layer["mode"] for layer in doc["layers"]} == {"raw"} and len(doc["layers"]) == 3
    full = run_dump("--metadata", str(p)).stdout
    assert '"step": 0.01' in full and "1" * 200 in full and "attention" not in full  # in full, no layers
    assert "..." in run_dump(str(p)).stdout  # the table view shortens it


def test_json_schema(path):
    proc = run_dump("--json", "--verify", str(path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "codec-dump/2" and doc["version"] == "1.0" and doc["verified"] is True
    assert doc["file_bytes"] == path.stat().st_size
    assert doc["metadata"]["arch"] == {"type": "str", "value": "mlp"}
    assert doc["metadata"]["nan"] == {"type": "float", "value": "nan"}
    assert doc["metadata"]["blob"] == {"type": "bytes", "value": "0102"}
    assert doc["metadata"]["l"]["value"][1] == {"type": "list", "value": [{"type": "int", "value": 2}]}
    keys = {"index", "name", "kind", "dtype", "shape", "elements", "mode", "local_qp_set_bytes", "mode_params_bytes",
            "coding", "coding_text",
            "unit_offset", "header_bytes", "payload_offset", "payload_bytes", "payload_crc32c", "raw_bytes",
            "bits_per_element", "ratio_vs_raw", "check"}
    for layer in doc["layers"]:
        assert set(layer) == keys
        assert layer["payload_offset"] % 64 == 0
    bias = doc["layers"][1]
    assert (bias["payload_bytes"], bias["raw_bytes"], bias["bits_per_element"], bias["ratio_vs_raw"]) == (32, 32, 32.0, 1.0)
    assert doc["layers"][2]["bits_per_element"] is None


def leaves_tile(fields, size_bits):
    """The innermost elements (those holding no other) cover the file exactly, in order."""
    spans = [(f.bit_offset, f.bit_offset + f.bits) for f in fields]
    leaves = []
    for i, (a, b) in enumerate(spans):
        if a == b:
            continue
        inner = any(j != i and c >= a and d <= b and c < d and (d - c < b - a or j > i)
                    for j, (c, d) in enumerate(spans))
        if not inner:
            leaves.append((a, b, fields[i].path))
    position = 0
    for a, b, name in sorted(leaves):
        assert a == position, (name, a, position)
        position = b
    assert position == size_bits


def test_fields_cover_every_bit(path):
    fields = walk(path.read_bytes())
    leaves_tile(fields, path.stat().st_size * 8)
    assert [f.bit_offset for f in fields] == sorted(f.bit_offset for f in fields)
    proc = run_dump("--fields", str(path))
    assert proc.returncode == 0
    assert "network_header.nnc_magic" in proc.stdout and "ue(0)" in proc.stdout and "trailer.trailer_magic" in proc.stdout
    assert "layers[1].coding_mode = raw (0)" in proc.stdout and "layers[0].layer_dtype = float32 (2)" in proc.stdout
    doc = json.loads(run_dump("--fields", "--json", str(path)).stdout)
    assert doc["fields"][0] == {"path": "network_header.nnc_magic", "bit_offset": 0, "bits": 64, "descriptor": "b(8)",
                                "value": "894e4e430d0a1a0a"}
    mode = next(f for f in doc["fields"] if f["path"] == "layers[0].coding_mode")
    assert mode["value"] == {"name": "zstd", "value": 1}


def test_bad_files_exit_2_with_one_line(tmp_path, path):
    bad = tmp_path / "bad.nnc"
    bad.write_bytes(b"\x1b[2J hostile")
    for args in ([str(bad)], [str(tmp_path / "missing.nnc")]):
        proc = run_dump(*args)
        assert proc.returncode == 2
        assert proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("codec-dump: error: ")
    data = bytearray(path.read_bytes())
    with codec.open(path) as r:
        off = r.header("fc.bias").payload_offset
    data[off] ^= 1
    bad.write_bytes(bytes(data))
    assert run_dump(str(bad)).returncode == 0  # the table does not decode payloads
    proc = run_dump("--verify", str(bad))
    assert proc.returncode == 2 and "FAILED" in proc.stdout and "crc32c mismatch" in proc.stderr


def test_hostile_names_are_escaped(tmp_path):
    p = tmp_path / "evil.nnc"
    evil = "\x1b]0;pwned\x07\x1b[31mred\u202e\r\n"
    codec.save_file({evil: np.ones(1)}, p, metadata={evil: evil})
    for args in ([str(p)], ["--fields", str(p)], ["--verify", str(p)]):
        proc = run_dump(*args)
        assert proc.returncode == 0
        assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout and "\u202e" not in proc.stdout
        assert "\\x1b]0;pwned\\x07" in proc.stdout
    doc = json.loads(run_dump("--json", str(p)).stdout)
    assert doc["layers"][0]["name"] == evil  # JSON keeps the exact name, escaped by JSON itself


def test_escape():
    assert escape("plain.name") == "plain.name"
    assert escape("a\tb") == "a\\x09b"
    assert escape("\u202e") == "\\u202e"
    assert escape("日本") == "日本"


def test_cli_demo_info_verify(tmp_path):
    out = tmp_path / "demo.nnc"
    proc = run("demo", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "round trip is bit-exact" in proc.stdout and "checksums: all ok" in proc.stdout
    rows = {line.rsplit(None, 3)[0].strip(): line.split() for line in proc.stdout.splitlines()
            if line.startswith(("raw ", "lossless", "8-bit", "ternary"))}
    accuracy = {k: float(v[-1]) for k, v in rows.items()}
    assert accuracy["raw"] > 0.9 and accuracy["lossless (floatplanes)"] == accuracy["raw"]  # lossless is lossless
    assert accuracy["8-bit per channel"] >= accuracy["raw"] - 0.02
    proc = run("info", str(out))
    assert proc.returncode == 0 and "22 layers" in proc.stdout
    proc = run("verify", str(out))
    assert proc.returncode == 0 and "ok" in proc.stdout
    data = bytearray(out.read_bytes())
    data[-30] ^= 4
    out.write_bytes(bytes(data))
    for cmd in ("verify", "info", "dump"):
        proc = run(cmd, str(out))
        assert proc.returncode == 2 and proc.stderr.startswith(f"codec {cmd}: error: ")


def test_cli_help_and_usage():
    proc = run("--help")
    assert proc.returncode == 0 and "examples:" in proc.stdout and "codec demo" in proc.stdout
    assert run("dump", "--help").returncode == 0
    proc = run()
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_tools_shim(path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "codec_dump.py"), "--json", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)["schema"] == "codec-dump/2"


def test_quantization_column_and_json(tmp_path):
    p = tmp_path / "q.nnc"
    w = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32) * 0.1
    with codec.Writer(p, quantization={"bits": 6}) as wr:
        wr.add_layer("a", w, mode="quantized", step=2 ** -7)
        wr.add_layer("b", w, mode="quantized", granularity="channel")
        wr.add_layer("c", w, mode="quantized", method="codebook", bits=3)
    out = run_dump("--wide", str(p)).stdout
    assert "uniform 6b step 2^-7.00" in out  # bits inherited from the global set
    assert "uniform 6b ch0 steps" in out
    assert "codebook 3b cb8" in out
    out = run_dump(str(p)).stdout
    assert "int6 2^-7.0" in out and "int6/ch 2^" in out and "codebook 3b" in out
    doc = json.loads(run_dump("--json", str(p)).stdout)
    qa, qb = doc["layers"][0]["coding"], doc["layers"][1]["coding"]
    assert qa["step_min"] == 2 ** -7 and qa["bits"] == 6 and "qps" in qa
    assert qb["granularity"] == "channel" and len(qb["qps"]) == 16 and "bits" not in qb["local_fields"]


def test_sparse_columns_and_json(tmp_path):
    from codec import masks

    p = tmp_path / "s.nnc"
    w = np.random.default_rng(1).standard_normal((32, 64)).astype(np.float32)
    m24 = masks.prune_nm(w, 2, 4)
    with codec.Writer(p) as wr:
        wr.add_layer("nm", np.where(m24, w, 0), mode="sparse", mask=m24, nm=(2, 4))
        wr.add_layer("bm", np.where(masks.prune_magnitude(w, 0.9), w, 0), mode="sparse", values_mode="zstd")
    out = run_dump("--wide", str(p)).stdout
    assert "2:4 d=0.500 mask" in out and "bitmap d=0.100 mask" in out and "+zstd" in out
    out = run_dump(str(p)).stdout
    assert "sparse 2:4 +raw" in out and "sparse d=0.10 +zstd" in out
    doc = json.loads(run_dump("--json", str(p)).stdout)
    s0, s1 = doc["layers"][0]["coding"], doc["layers"][1]["coding"]
    assert s0["nm"] == [2, 4] and s0["kept"] == 1024 and abs(s0["mask_bits_per_element"] - 0.65) < 0.05
    assert s1["mask_kind"] == "bitmap" and abs(s1["density"] - 0.1) < 1e-3 and s1["values_mode"] == "zstd"


def test_ratio_vs_raw_of_a_compressed_layer(tmp_path):
    from codec import dump

    data = codec.encode({"zeros": np.zeros((64, 64), np.float32), "noise": np.random.default_rng(0).integers(
        0, 255, 4096, dtype=np.uint8)}, mode="zstd")
    with codec.Reader(data) as r:
        layers = {layer["name"]: layer for layer in dump.summarize(r)["layers"]}
    zeros = layers["zeros"]
    assert zeros["raw_bytes"] == 64 * 64 * 4 and zeros["payload_bytes"] < 100
    assert zeros["ratio_vs_raw"] == pytest.approx(zeros["raw_bytes"] / zeros["payload_bytes"], rel=1e-3)
    assert zeros["ratio_vs_raw"] > 100 and zeros["bits_per_element"] < 0.2
    assert layers["noise"]["ratio_vs_raw"] < 1.0  # incompressible: the frame is a little larger
