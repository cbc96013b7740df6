"""The built-in example model of ``codec demo``.

A small transformer-like model (about 0.2 M parameters) generated deterministically from a fixed
seed, with the tensor kinds and dtypes a real checkpoint has: an embedding, float32 weights and
biases, layer norms, an int8 weight with its float scales, bfloat16 weights (as raw bits) and a
boolean attention mask. Weights are Gaussian with the per-row scale spread of trained layers, so
sizes and ratios are in the range seen on real models.
"""

from __future__ import annotations

import numpy as np

__all__ = ["build_demo_model", "DEMO_METADATA", "DEMO_POLICIES", "load_digits_mlp", "mlp_accuracy"]

DEMO_METADATA = {
    "codec.demo": True,
    "model": "demo-transformer-tiny",
    "seed": 20261121,
    "hidden_size": 64,
    "layers": 2,
    "vocab": ["<pad>", "<unk>", "hello", "world"],
    "dropout": 0.1,
}


_LOSSLESS = {"mode": "floatplanes"}

#: The policies ``codec demo`` compares on the digits MLP (spec/policy.md): 2-D weights coded as
#: named, biases lossless.
DEMO_POLICIES = {
    "raw": {"defaults": {"mode": "raw"}},
    "lossless (floatplanes)": {"defaults": _LOSSLESS},
    "8-bit per channel": {"defaults": _LOSSLESS, "rules": [
        {"min_rank": 2, "mode": "quantized", "bits": 8, "granularity": "channel"}]},
    "4-bit per channel": {"defaults": _LOSSLESS, "rules": [
        {"min_rank": 2, "mode": "quantized", "bits": 4, "granularity": "channel"}]},
    "uniform, step 2^-2": {"defaults": _LOSSLESS, "rules": [
        {"min_rank": 2, "mode": "quantized", "step": 0.25}]},
    "dq, step 2^-2": {"defaults": _LOSSLESS, "rules": [
        {"min_rank": 2, "mode": "dq", "step": 0.25}]},
    "ternary (TWN)": {"defaults": _LOSSLESS, "rules": [
        {"min_rank": 2, "mode": "ternary", "ternarize": True, "axis": 0}]},
    "2:4 sparse + 8-bit": {"defaults": _LOSSLESS, "rules": [
        {"min_rank": 2, "mode": "sparse", "nm": [2, 4], "values_mode": "quantized", "bits": 8}]},
}


def _rows(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    # Rows of a trained layer differ in scale; draw a log-normal scale per output row.
    scale = np.exp(rng.normal(-3.0, 0.3, size=(shape[0], 1)))
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def build_demo_model(seed: int = 20261121) -> dict[str, np.ndarray]:
    """Return the demo model: an ordered dict of layer name -> array (same for the same seed)."""
    rng = np.random.default_rng(seed)
    hidden, vocab, ff = 64, 512, 256
    model: dict[str, np.ndarray] = {}
    model["embeddings.word_embeddings.weight"] = _rows(rng, (vocab, hidden))
    model["embeddings.position_ids"] = np.arange(128, dtype=np.int64)
    model["embeddings.LayerNorm.weight"] = (1 + 0.05 * rng.standard_normal(hidden)).astype(np.float32)
    model["embeddings.LayerNorm.bias"] = (0.02 * rng.standard_normal(hidden)).astype(np.float32)
    for i in range(2):
        p = f"encoder.layer.{i}."
        model[p + "attention.qkv.weight"] = _rows(rng, (3 * hidden, hidden))
        model[p + "attention.qkv.bias"] = (0.01 * rng.standard_normal(3 * hidden)).astype(np.float32)
        model[p + "attention.output.weight"] = _rows(rng, (hidden, hidden))
        model[p + "attention.output.LayerNorm.weight"] = (1 + 0.05 * rng.standard_normal(hidden)).astype(np.float32)
        ffw = _rows(rng, (ff, hidden))
        scale = np.abs(ffw).max(axis=1, keepdims=True) / 127.0
        model[p + "intermediate.weight_int8"] = np.round(ffw / scale).astype(np.int8)
        model[p + "intermediate.weight_scale"] = scale.astype(np.float16).reshape(-1)
        bf = _rows(rng, (hidden, ff))
        model[p + "output.weight_bf16"] = (bf.view(np.uint32) >> 16).astype(np.uint16)  # bfloat16 bits
        model[p + "output.bias"] = (0.01 * rng.standard_normal(hidden)).astype(np.float64)
    model["attention_mask"] = np.tril(np.ones((16, 16), dtype=bool))
    model["pooler.step"] = np.array(12345, dtype=np.uint32)
    return model


def load_digits_mlp() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Return (weights, x_test, y_test) of the shipped MLP (tools/train_demo_model.py made it)."""
    from importlib import resources

    with resources.files("codec").joinpath("data/digits_mlp.npz").open("rb") as f:
        with np.load(f) as z:
            params = {k: z[k] for k in z.files if k not in ("x_test", "y_test")}
            return params, z["x_test"], z["y_test"]


def mlp_accuracy(params: dict[str, np.ndarray], x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Accuracy of the MLP with these weights on the test split (inputs 0..16 scaled to 0..1)."""
    out = x_test.astype(np.float32) / 16.0
    for i in range(1, 4):
        out = out @ np.asarray(params[f"fc{i}.weight"], np.float32).T + np.asarray(params[f"fc{i}.bias"], np.float32)
        out = np.maximum(out, 0) if i < 3 else out
    return float((out.argmax(axis=1) == y_test).mean())
