"""Users' workflow: import/export formats, policies, the encode/decode CLI, parallel coding, torch API."""

import io
import json
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import codec
from codec import formats, policy as policies
from codec.errors import EncodeError, FormatError


def model():
    rng = np.random.default_rng(0)
    return [
        ("enc.weight", rng.standard_normal((32, 16)).astype(np.float32), "float32"),
        ("enc.bias", rng.standard_normal(32).astype(np.float32), "float32"),
        ("emb.weight", rng.standard_normal((10, 8)).astype(ml_dtypes.bfloat16), "bfloat16"),
        ("half", rng.standard_normal((4, 4)).astype(np.float16), "float16"),
        ("ids", np.arange(7, dtype=np.int64), "int64"),
        ("flag", np.array(True), "bool"),
        ("empty", np.zeros((0, 3), np.int32), "int32"),
    ]


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("ext", [".safetensors", ".npz", ".pt"])
def test_format_roundtrip(tmp_path, ext):
    if ext == ".pt":
        pytest.importorskip("torch")
    path = tmp_path / f"m{ext}"
    formats.write_tensors(path, model())
    back = {n: a for n, a, _ in formats.read_tensors(path)}
    assert list(back) == [n for n, _, _ in model()]
    for name, array, _ in model():
        assert same(back[name], array), name


def test_safetensors_interoperates_with_the_safetensors_package(tmp_path):
    import safetensors.numpy as stn

    path = tmp_path / "m.safetensors"
    plain = [(n, a, d) for n, a, d in model() if d != "bfloat16"]
    formats.write_tensors(path, plain)
    theirs = stn.load_file(path)
    for name, array, _ in plain:
        assert same(theirs[name], array)
    stn.save_file({"x": np.arange(6, dtype=np.float32).reshape(2, 3)}, tmp_path / "t.safetensors")
    ours = list(formats.read_tensors(tmp_path / "t.safetensors"))
    assert ours[0][0] == "x" and same(ours[0][1], np.arange(6, dtype=np.float32).reshape(2, 3))


def test_onnx_initializers_and_constants(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper, TensorProto

    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    c = np.array([1, 2, 3], dtype=np.int64)
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["const_c"], value=numpy_helper.from_array(c, "const_c")),
         helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=[numpy_helper.from_array(w, "w")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), path)
    back = {n: a for n, a, _ in formats.read_tensors(path)}
    assert same(back["w"], w) and same(back["const_c"], c)


def test_torch_state_dict_api(tmp_path):
    torch = pytest.importorskip("torch")
    from codec import torch as ct

    sd = {"fc.weight": torch.randn(8, 4), "fc.bias": torch.randn(8), "bf": torch.randn(3, 2).to(torch.bfloat16),
          "step": torch.tensor(5)}
    path = tmp_path / "m.nnc"
    ct.save_state_dict(sd, path)
    back = ct.load_state_dict(path)
    assert list(back) == list(sd)
    for k in sd:
        assert back[k].dtype == sd[k].dtype and torch.equal(back[k], sd[k])
    with codec.open(path) as r:
        assert json.loads(r.metadata["codec.policy"])["version"] == 1
    torch.save(sd, tmp_path / "sd.pt")
    back = {n: a for n, a, _ in formats.read_tensors(tmp_path / "sd.pt")}
    assert same(back["fc.weight"], sd["fc.weight"].numpy())


def test_policy_first_match_wins_and_defaults():
    p = policies.load_policy("""
        [defaults]
        mode = "zstd"
        [[rules]]
        name = ["*.bias", "*norm*"]
        mode = "floatplanes"
        [[rules]]
        min_rank = 2
        dtype = "float"
        mode = "quantized"
        bits = 4
        [[rules]]
        min_rank = 2
        mode = "raw"
    """)
    w = np.zeros((4, 4), np.float32)
    assert p.choose("a.bias", np.zeros(4, np.float32), "bias") == ({"mode": "floatplanes"}, 0)
    assert p.choose("a.weight", w, "weight") == ({"mode": "quantized", "bits": 4}, 1)
    assert p.choose("ids", np.zeros((2, 2), np.int64), "other") == ({"mode": "raw"}, 2)
    assert p.choose("x", np.zeros(3, np.int8), "other") == ({"mode": "zstd"}, None)
    assert policies.DEFAULT_POLICY.choose("x", w, "weight")[0] == {}  # the writer's lossless default
    assert policies.DEFAULT_POLICY.choose("x", np.zeros(2, np.int8), "other")[0] == {}


@pytest.mark.parametrize("doc, match", [
    ('{"rules": [{"mode": "quantized", "bitz": 3}]}', "rules\\[0\\]: mode 'quantized' takes no parameter 'bitz'"),
    ('{"rulez": []}', "unknown key 'rulez'"),
    ('{"rules": [{"mode": "lzma"}]}', "mode must be one of"),
    ('{"defaults": {"mode": "raw", "level": 3}}', "defaults: mode 'raw' takes no parameter 'level'"),
    ("rules = [", "not valid TOML/JSON"),
])
def test_policy_errors_name_the_key(doc, match):
    with pytest.raises(EncodeError, match=match):
        policies.load_policy(doc)


def test_policy_actions_prune_and_ternarize():
    w = np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32)
    array, params = policies.apply({"mode": "sparse", "nm": [2, 4], "values_mode": "quantized", "bits": 8}, w)
    data = codec.encode({"w": array}, **params)
    assert (codec.decode(data)["w"] != 0).sum() == w.size // 2
    array, params = policies.apply({"mode": "ternary", "ternarize": True, "axis": 0}, w)
    assert len(np.unique(np.abs(codec.decode(codec.encode({"w": array}, **params))["w"][0]))) <= 2


@pytest.mark.parametrize("mode, params", [("zstd", {}), ("quantized", {"bits": 6}), ("floatplanes", {}),
                                          ("entropy", {})])
def test_identical_bytes_with_1_and_2_workers(mode, params):
    rng = np.random.default_rng(2)
    if mode == "entropy":
        tensors = {f"l{i}": rng.integers(-50, 50, (40, 30)) for i in range(8)}
    else:
        tensors = {f"l{i}": rng.standard_normal((40, 30)).astype(np.float32) for i in range(8)}
    one = codec.encode(tensors, mode=mode, **params)
    two = codec.encode(tensors, mode=mode, workers=2, **params)
    assert one == two
    a, b = codec.decode(one), codec.decode(one, workers=2)
    assert all(same(a[k], b[k]) for k in tensors)


def test_executor_argument():
    from concurrent.futures import ThreadPoolExecutor

    tensors = {f"l{i}": np.full((10, 10), i, np.float32) for i in range(5)}
    with ThreadPoolExecutor(3) as ex:
        assert codec.encode(tensors, mode="zstd", executor=ex) == codec.encode(tensors, mode="zstd")


def test_add_layers_duplicate_name():
    w = codec.Writer(io.BytesIO())
    with pytest.raises(EncodeError, match="duplicate layer name 'a'"):
        w.add_layers([("a", np.ones(2), {"mode": "raw"}), ("a", np.ones(2), {"mode": "raw"})], workers=2)


def run(*args):
    return subprocess.run([sys.executable, "-m", "codec", *args], capture_output=True, text=True)


def test_cli_encode_decode(tmp_path):
    src = tmp_path / "m.safetensors"
    formats.write_tensors(src, model())
    policy = tmp_path / "p.toml"
    policy.write_text('[[rules]]\nname = "enc.weight"\nmode = "quantized"\nbits = 8\n')
    out = tmp_path / "m.nnc"
    proc = run("encode", str(src), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "default policy (lossless)" in proc.stdout and "floatplanes" in proc.stdout
    back = tmp_path / "back.safetensors"
    assert run("decode", str(out), "-o", str(back), "--workers", "2").returncode == 0
    restored = {n: a for n, a, _ in formats.read_tensors(back)}
    for name, array, _ in model():
        assert same(restored[name], array), name
    q = tmp_path / "q.nnc"
    proc = run("encode", str(src), "-o", str(q), "--policy", str(policy), "--workers", "2", "-q")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    with codec.open(q) as r:
        assert r.header("enc.weight").mode_name == "quantized"
        assert json.loads(r.metadata["codec.policy"])["rules"][0]["bits"] == 8
    for args, needle in [(("encode", str(tmp_path / "missing.safetensors"), "-o", str(q)), "no such file"),
                         (("encode", str(src), "-o", str(tmp_path / "x.nnc"), "--policy", str(tmp_path / "none.toml")),
                          "none.toml' does not exist"),
                         (("decode", str(src), "-o", str(back)), "not a codec bitstream"),
                         (("decode", str(out), "-o", str(tmp_path / "x.txt")), "unsupported file type")]:
        proc = run(*args)
        assert proc.returncode == 2, args
        assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr, proc.stderr


def test_unsupported_torch_content(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2), "name": "text"}, tmp_path / "bad.pt")
    with pytest.raises(EncodeError, match="'name' is a str, not a tensor"):
        list(formats.read_tensors(tmp_path / "bad.pt"))


def test_malformed_safetensors(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(FormatError, match="does not fit the file"):
        list(formats.read_tensors(bad))
