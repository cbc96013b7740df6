"""The encode-time quality report (codec.quality): the measure itself, encode_file's summary, the
warning for a layer past the threshold, and what `codec encode` prints."""

import json
import logging
import math
import subprocess
import sys

import numpy as np
import pytest

import codec
from codec import quality
from codec.api import encode_file


def test_layer_quality_values():
    a = np.array([3.0, 4.0, 0.0], np.float32)
    b = np.array([3.0, 3.0, 0.0], np.float32)
    q = quality.layer_quality("w", "dq", a, b)
    assert q.rel_error == pytest.approx(1 / 5) and q.sqnr_db == pytest.approx(-20 * math.log10(0.2))
    assert q.max_abs_error == 1.0 and q.elements == 3
    exact = quality.layer_quality("w", "dq", a, a)
    assert exact.rel_error == 0.0 and exact.sqnr_db == math.inf
    assert quality.layer_quality("z", "dq", np.zeros(2), np.ones(2)).rel_error == math.inf
    # bfloat16 held as raw bit patterns: compared as values
    bits = np.array([0x3F80, 0x4000], np.uint16)  # 1.0, 2.0
    half = quality.layer_quality("b", "dq", bits, np.array([0x3F80, 0x3F80], np.uint16), dtype=codec.DType.BFLOAT16)
    assert half.rel_error == pytest.approx(1 / math.sqrt(5))
    tot = quality.total([q, exact])
    assert tot.rel_error == pytest.approx(math.sqrt(1 / 50)) and quality.total([]) is None
    with pytest.raises(ValueError, match="3 original elements, 2 decoded"):
        quality.layer_quality("w", "dq", a, b[:2])


def _model(tmp_path):
    import safetensors.numpy as stn

    rng = np.random.default_rng(0)
    path = tmp_path / "m.safetensors"
    stn.save_file({"fc1.weight": (rng.standard_normal((64, 32)) * 0.05).astype(np.float32),
                   "fc1.bias": np.zeros(64, np.float32),
                   "fc2.weight": (rng.standard_normal((10, 64)) * 0.1).astype(np.float32)}, str(path))
    policy = tmp_path / "p.toml"
    policy.write_text('[[rules]]\nname = "fc2*"\nmode = "ternary"\nthreshold = 0.7\n\n'
                      '[[rules]]\nname = "*.weight"\nmode = "dq"\nstep = 0.015625\n')
    return path, policy


def test_encode_file_reports_lossy_layers_and_warns(tmp_path, caplog):
    src, policy = _model(tmp_path)
    with caplog.at_level(logging.WARNING, logger="codec"):
        summary = encode_file(src, tmp_path / "m.nnc", policy=str(policy))
    by_name = {q.name: q for q in summary["quality"]}
    assert sorted(by_name) == ["fc1.weight", "fc2.weight"]  # the lossless bias is not measured
    assert by_name["fc1.weight"].mode == "dq" and 0 < by_name["fc1.weight"].rel_error < 0.2
    assert by_name["fc2.weight"].mode == "ternary" and by_name["fc2.weight"].rel_error > 0.2
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "layer 'fc2.weight' (ternary): relative error" in warned[0]
    # the figures are those of the decoded file against the input
    import safetensors.numpy as stn

    decoded = codec.load_file(tmp_path / "m.nnc")["fc1.weight"]
    w = stn.load_file(str(src))["fc1.weight"]
    assert by_name["fc1.weight"].rel_error == pytest.approx(np.linalg.norm(decoded - w) / np.linalg.norm(w), rel=1e-6)
    lossless = encode_file(src, tmp_path / "l.nnc")
    assert lossless["quality"] == []


def test_cli_prints_the_report_and_the_warning_after_the_progress(tmp_path):
    src, policy = _model(tmp_path)
    out = tmp_path / "m.nnc"
    proc = subprocess.run([sys.executable, "-m", "codec", "encode", str(src), "-o", str(out), "--policy", str(policy)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "quality of the 2 lossy layers" in proc.stdout and "ternary    fc2.weight" in proc.stdout
    assert proc.stderr.count("warning: layer 'fc2.weight' (ternary)") == 1


def _laplace_model(tmp_path):
    import safetensors.numpy as stn

    rng = np.random.default_rng(1)
    path = tmp_path / "big.safetensors"
    stn.save_file({"a.weight": rng.laplace(0, 0.03, (128, 96)).astype(np.float32),
                   "b.weight": rng.laplace(0, 0.01, (64, 128)).astype(np.float32),
                   "b.bias": rng.standard_normal(64).astype(np.float32)}, str(path))
    return path


POLICY = '[[rules]]\nmin_rank = 2\nmode = "dq"\nstep = 0.0078125\n\n[[rules]]\nmode = "floatplanes"\n'


@pytest.mark.parametrize("target", [3.0, 1.7])
def test_target_bits_gives_the_largest_file_not_above_the_target(tmp_path, target):
    src = _laplace_model(tmp_path)
    out = tmp_path / "t.nnc"
    summary = encode_file(src, out, policy=POLICY, target_bits=target)
    t = summary["target"]
    elements = 128 * 96 + 64 * 128 + 64
    assert t["bits"] == pytest.approx(out.stat().st_size * 8 / elements)
    assert t["bits"] <= target
    best = min(j for j, b in t["tried"].items() if b <= target)
    assert t["qp_offset"] == best and t["qp_density"] == 4
    # the next finer step of the grid was tried and is above the target: nothing larger fits
    assert t["tried"][best - 1] > target
    with codec.open(out) as r:
        _, eff = r.get("a.weight", levels=True)
    from codec.quant import qp_for_step, step_of_qp

    assert eff.steps[0] == step_of_qp(qp_for_step(0.0078125, 4) + best - 16, 4)  # dq stores half the step
    assert {q.name for q in summary["quality"]} == {"a.weight", "b.weight"}


def test_target_bits_errors(tmp_path):
    src = _laplace_model(tmp_path)
    with pytest.raises(codec.EncodeError, match="no layer here has one"):
        encode_file(src, tmp_path / "x.nnc", policy='[[rules]]\nmode = "floatplanes"\n', target_bits=3.0)
    with pytest.raises(ValueError, match="needs a path target"):
        import io

        encode_file(src, io.BytesIO(), policy=POLICY, target_bits=3.0)
    with pytest.raises(codec.EncodeError, match="lossless layers alone may exceed"):
        encode_file(src, tmp_path / "y.nnc", policy=POLICY, target_bits=0.01)


def test_cli_target_bits(tmp_path):
    src = _laplace_model(tmp_path)
    policy = tmp_path / "p.toml"
    policy.write_text(POLICY)
    proc = subprocess.run([sys.executable, "-m", "codec", "encode", str(src), "-o", str(tmp_path / "o.nnc"),
                           "--policy", str(policy), "--target-bits", "2.5"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "target 2.5 bits per parameter: 2.4" in proc.stdout or "target 2.5 bits per parameter: 2.3" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "codec", "encode", str(src), "-o", str(tmp_path / "p.nnc"),
                          "--target-bits", "-1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "must be a positive number" in bad.stderr


def test_target_size_gives_the_largest_file_not_above_it(tmp_path):
    src = _laplace_model(tmp_path)
    out = tmp_path / "s.nnc"
    summary = encode_file(src, out, policy=POLICY, target_size="5kB")
    t = summary["target"]
    assert t["kind"] == "size" and t["limit"] == 5000
    assert t["value"] == out.stat().st_size <= 5000
    best = t["qp_offset"]
    assert best == min(j for j, b in t["tried"].items() if b <= 5000) and t["tried"][best - 1] > 5000


def test_max_rel_error_gives_the_coarsest_step_that_keeps_it(tmp_path):
    src = _laplace_model(tmp_path)
    out = tmp_path / "e.nnc"
    summary = encode_file(src, out, policy=POLICY, max_rel_error=0.05)
    t = summary["target"]
    assert t["kind"] == "max_rel_error"
    total = quality.total(summary["quality"]).rel_error
    assert t["value"] == pytest.approx(total) and total <= 0.05
    best = t["qp_offset"]
    assert best == max(j for j, e in t["tried"].items() if e <= 0.05) and t["tried"][best + 1] > 0.05
    # the file holds the report of the pass it kept
    with codec.open(out) as r:
        stored = quality.total(quality.from_metadata(r.metadata[quality.METADATA_KEY]))
    assert stored.rel_error == pytest.approx(total)
    # a ternary layer the target cannot scale keeps the error above the limit
    with pytest.raises(codec.EncodeError, match="max_rel_error 0.05: the best pass gives relative error"):
        encode_file(src, tmp_path / "t.nnc", max_rel_error=0.05,
                    policy='[[rules]]\nname = "a.weight"\nmode = "ternary"\nternarize = true\n' + POLICY)


def test_policy_target_table(tmp_path):
    src = _laplace_model(tmp_path)
    out = tmp_path / "p.nnc"
    summary = encode_file(src, out, policy=POLICY + "\n[target]\nbits = 2.0\n")
    assert summary["target"]["kind"] == "bits" and summary["target"]["bits"] <= 2.0
    with codec.open(out) as r:
        assert json.loads(r.metadata["codec.policy"])["target"] == {"bits": 2.0}
    # a target given to the call wins over the policy's
    summary = encode_file(src, out, policy=POLICY + "\n[target]\nbits = 2.0\n", target_size=6000)
    assert summary["target"]["kind"] == "size"
    for bad, message in [("[target]\nbits = -1\n", "policy.target.bits: a positive number"),
                         ("[target]\nsize = '12 parsecs'\n", "policy.target.size: a size such as"),
                         ("[target]\nbits = 2\nsize = 5\n", "a table with one of bits, size, max_rel_error"),
                         ("[target]\nquality = 2\n", "unknown key 'quality'")]:
        with pytest.raises(codec.EncodeError, match=message):
            encode_file(src, tmp_path / "x.nnc", policy=POLICY + "\n" + bad)
    with pytest.raises(ValueError, match="at most one of"):
        encode_file(src, out, policy=POLICY, target_bits=2.0, max_rel_error=0.1)


def test_cli_target_size_and_max_rel_error(tmp_path):
    src = _laplace_model(tmp_path)
    policy = tmp_path / "p.toml"
    policy.write_text(POLICY)
    run = [sys.executable, "-m", "codec", "encode", str(src), "--policy", str(policy)]
    proc = subprocess.run(run + ["-o", str(tmp_path / "a.nnc"), "--target-size", "6KB"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "target 6,000 bytes: " in proc.stdout and (tmp_path / "a.nnc").stat().st_size <= 6000
    proc = subprocess.run(run + ["-o", str(tmp_path / "b.nnc"), "--max-rel-error", "0.02"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "max relative error 0.02: 0.01" in proc.stdout
    both = subprocess.run(run + ["-o", str(tmp_path / "c.nnc"), "--max-rel-error", "0.02", "--target-bits", "2"],
                          capture_output=True, text=True)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    bad = subprocess.run(run + ["-o", str(tmp_path / "d.nnc"), "--target-size", "lots"], capture_output=True, text=True)
    assert bad.returncode == 2 and "a size such as 12MB" in bad.stderr


def test_importance_file_from_the_api_the_policy_and_the_cli(tmp_path):
    import safetensors.numpy as stn

    src = _laplace_model(tmp_path)
    rng = np.random.default_rng(5)
    imp = {"a.weight": rng.gamma(0.5, 1.0, 96), "b.weight": rng.gamma(0.5, 1.0, 128)}
    stn.save_file({k: v.astype(np.float32) for k, v in imp.items()}, str(tmp_path / "imp.safetensors"))
    plain = encode_file(src, tmp_path / "plain.nnc", policy=POLICY)
    weighted = encode_file(src, tmp_path / "w.nnc", policy=POLICY, importance=imp)
    assert plain["importance"] == 0 and weighted["importance"] == 2
    # the same as giving importance= per layer to the writer
    expect = {}
    with codec.open(tmp_path / "w.nnc") as r:
        for name in ("a.weight", "b.weight"):
            source = dict((n, a) for n, a, _ in codec.formats.read_tensors(str(src)))[name]
            one = codec.decode(codec.encode({name: source}, mode="dq", step=0.0078125, importance=imp[name]))
            expect[name] = one[name]
            assert np.array_equal(r[name], expect[name])
    # importances weigh some columns' error more: the total error differs from the plain encode
    assert quality.total(weighted["quality"]).rel_error != quality.total(plain["quality"]).rel_error
    # a policy names the file (relative to the policy file); the metadata records its name and hash
    policy = tmp_path / "p.toml"
    policy.write_text('importance = "imp.safetensors"\n' + POLICY)
    summary = encode_file(src, tmp_path / "p.nnc", policy=policy)
    assert summary["importance"] == 2
    with codec.open(tmp_path / "p.nnc") as r:
        assert r.metadata["codec.importance"].startswith("imp.safetensors sha256:")
        assert json.loads(r.metadata["codec.policy"])["importance"] == "imp.safetensors"
        assert all(np.array_equal(r[n], expect[n]) for n in expect)
    proc = subprocess.run([sys.executable, "-m", "codec", "encode", str(src), "-o", str(tmp_path / "c.nnc"),
                           "--policy", str(tmp_path / "p.toml"), "--importance",
                           str(tmp_path / "imp.safetensors")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    cli = codec.load_file(tmp_path / "c.nnc")
    assert all(np.array_equal(cli[n], expect[n]) for n in expect)
    with pytest.raises(codec.EncodeError, match="importance 'a.weight' must be a 1-D vector"):
        encode_file(src, tmp_path / "x.nnc", policy=POLICY, importance={"a.weight": -np.ones(96)})
    with pytest.raises(codec.EncodeError, match="importance has 5 entries"):
        encode_file(src, tmp_path / "x.nnc", policy=POLICY, importance={"a.weight": np.ones(5)})
    with pytest.raises(codec.EncodeError, match="policy.importance"):
        encode_file(src, tmp_path / "x.nnc", policy="importance = 3\n" + POLICY)
