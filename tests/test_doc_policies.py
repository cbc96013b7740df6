"""The policies printed in spec/policy.md and the README run on a real BERT-style checkpoint layout
(int64 buffers, LayerNorm, embeddings), and a rule that cannot code a tensor names both."""

import os
import re

import numpy as np
import pytest

import codec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _toml_blocks(relpath: str) -> list[str]:
    text = open(os.path.join(ROOT, relpath), encoding="utf-8").read()
    return re.findall(r"```toml\n(.*?)```", text, flags=re.S)


def _bert_layout(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    h, v, f = 64, 500, 128

    def w(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    tensors = {"embeddings.word_embeddings.weight": w(v, h), "embeddings.position_embeddings.weight": w(128, h),
               "embeddings.token_type_embeddings.weight": w(2, h),
               "embeddings.position_ids": np.arange(128, dtype=np.int64)[None],
               "embeddings.LayerNorm.weight": np.ones(h, np.float32), "embeddings.LayerNorm.bias": w(h)}
    for name, shape in [("attention.self.query", (h, h)), ("attention.self.key", (h, h)),
                        ("attention.self.value", (h, h)), ("attention.output.dense", (h, h)),
                        ("intermediate.dense", (f, h)), ("output.dense", (h, f))]:
        tensors[f"encoder.layer.0.{name}.weight"] = w(*shape)
        tensors[f"encoder.layer.0.{name}.bias"] = w(shape[0])
    tensors["encoder.layer.0.attention.output.LayerNorm.weight"] = np.ones(h, np.float32)
    tensors["pooler.dense.weight"] = w(h, h)
    path = tmp_path / "bert.safetensors"
    save_file(tensors, str(path))
    return path, tensors


@pytest.mark.parametrize("where, index", [("spec/policy.md", 0), ("README.md", 0), ("README.md", 1), ("README.md", 2)])
def test_documented_policy_runs_on_a_bert_checkpoint(tmp_path, where, index):
    src, tensors = _bert_layout(tmp_path)
    doc = _toml_blocks(where)[index]
    out = tmp_path / "m.nnc"
    summary = codec.encode_file(src, out, policy=doc)
    assert summary["layers"] == len(tensors)
    decoded = codec.load_file(out)
    assert np.array_equal(decoded["embeddings.position_ids"], tensors["embeddings.position_ids"])
    with codec.open(out) as r:
        modes = {n: r.header(n).mode_name for n in r}
    # the "*norm*" / "*LayerNorm*" globs reach LayerNorm (globs are case-insensitive): lossless
    assert modes["embeddings.LayerNorm.weight"] == "floatplanes" or modes["embeddings.LayerNorm.weight"] == "raw"
    assert np.array_equal(decoded["embeddings.LayerNorm.bias"], tensors["embeddings.LayerNorm.bias"])
    assert modes["encoder.layer.0.intermediate.dense.weight"] not in ("floatplanes", "raw", "entropy")


def test_the_vocabulary_rule_gives_the_token_table_4x_the_step(tmp_path):
    doc = _toml_blocks("README.md")[2]
    rng = np.random.default_rng(1)
    tensors = {"embeddings.word_embeddings.weight": (rng.standard_normal((16000, 64)) * 0.05).astype(np.float32),
               "embeddings.position_embeddings.weight": (rng.standard_normal((128, 64)) * 0.05).astype(np.float32),
               "encoder.dense.weight": (rng.standard_normal((64, 64)) * 0.05).astype(np.float32)}
    codec.save_file(tensors, tmp_path / "v.nnc", policy=doc)
    with codec.open(tmp_path / "v.nnc") as r:
        steps = {n: float(r.get(n, levels=True)[1].steps.max()) for n in r}
    assert steps["embeddings.word_embeddings.weight"] == 4 * steps["encoder.dense.weight"]
    assert steps["embeddings.position_embeddings.weight"] == steps["encoder.dense.weight"]  # a small table


def test_a_rule_that_cannot_code_a_tensor_names_both(tmp_path):
    src, _ = _bert_layout(tmp_path)
    with pytest.raises(codec.EncodeError) as info:
        codec.encode_file(src, tmp_path / "x.nnc", policy='[[rules]]\nname = "embeddings.*"\nmode = "quantized"\n'
                                                           'bits = 8\n')
    message = str(info.value)
    assert "tensor 'embeddings.position_ids' (int64, shape (1, 128)): policy.rules[0] chose mode 'quantized'" in message
    assert "codes float tensors, not int64" in message and 'dtype = "float"' in message


@pytest.mark.parametrize("doc, message", [
    ('[[rules]]\ndtype = "flaot"\nmode = "raw"\n', "match key 'dtype' must be float, int, bool or a dtype name"),
    ('[[rules]]\ndtype = "flaot"\nmode = "raw"\n', "(did you mean 'float'?)"),
    ('[[rules]]\nkind = "embeding"\nmode = "raw"\n', "(did you mean 'embedding'?)"),
    ('[[rules]]\nnme = "x"\nmode = "raw"\n', "takes no parameter 'nme' (its parameters: none; did you mean 'name'?)"),
    ('[[rules]]\nmode = "quantzed"\n', "(did you mean 'quantized'?)"),
    ('[[rules]]\nmode = "quantized"\nbitz = 4\n', "did you mean 'bits'?"),
    ('[[rules]]\nmode = "quantized"\nbits = 20\n', "policy.rules[0]: mode 'quantized' parameter 'bits' must be int in 1..16"),
    ('[[rules]]\nmin_rank = "2"\nmode = "raw"\n', "match key 'min_rank' must be an int in 0..8"),
    ('[[rules]]\nname = []\nmode = "raw"\n', "match key 'name' must be a glob or a list of globs"),
    ('[[rules]]\nmax_elements = -1\nmode = "raw"\n', "match key 'max_elements' must be an int >= 0"),
])
def test_policies_are_checked_when_loaded(doc, message):
    from codec.policy import load_policy

    with pytest.raises(codec.EncodeError) as info:
        load_policy(doc)
    assert message in str(info.value)


def test_name_globs_are_case_insensitive():
    from codec.policy import load_policy

    p = load_policy('[[rules]]\nname = "*norm*"\nmode = "raw"\n')
    assert p.choose("encoder.LayerNorm.weight", np.ones(3, np.float32), "norm") == ({"mode": "raw"}, 0)
