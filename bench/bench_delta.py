"""Delta bitstreams (spec 10.1): the size of an update against the size of a full file of the same settings.

MiniLM (all-MiniLM-L6-v2) with a random rank-8 update of 1% relative size to 5% of its tensors (int8 and the
lossless default), a no-op update, and the shipped digits MLP after a few more epochs of SGD on its shipped
test split (only to make an update; every tensor changes). The base file is the original model in the same policy; the delta is written with
``previous=`` the original tensors (a lossy base decodes to other values). Error columns: relative RMSE of
the applied model (base file + delta) and of the full file against the updated float weights.

    python bench/bench_delta.py [--markdown [--write]]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import _common
import codec
from codec import demo


def _rel_error(got: dict, want: dict) -> float:
    num = sum(float(((got[k].astype(np.float64) - want[k]) ** 2).sum()) for k in want if want[k].dtype.kind == "f")
    den = sum(float((want[k].astype(np.float64) ** 2).sum()) for k in want if want[k].dtype.kind == "f")
    return float(np.sqrt(num / den))


def _low_rank_update(model: dict, fraction: float, rank: int, size: float, seed: int) -> tuple[dict, list]:
    rng = np.random.default_rng(seed)
    names = [k for k, v in model.items() if v.ndim == 2 and v.dtype.kind == "f"]
    count = max(1, round(fraction * len(model)))
    chosen = [names[i] for i in np.linspace(0, len(names) - 1, count).round().astype(int)]
    new = dict(model)
    for name in chosen:
        w = model[name]
        u = rng.standard_normal((w.shape[0], rank))
        v = rng.standard_normal((rank, w.shape[1]))
        dw = u @ v
        new[name] = (w + dw * (size * np.linalg.norm(w) / np.linalg.norm(dw))).astype(w.dtype)
    return new, chosen


def _sgd_epochs(params: dict, x, y, epochs: int, lr: float, seed: int) -> dict:
    """A few epochs of plain SGD (cross-entropy) on the MLP: every tensor changes a little."""
    rng = np.random.default_rng(seed)
    p = {k: v.astype(np.float64) for k, v in params.items()}
    x = x.astype(np.float64) / 16.0
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(x)), max(1, len(x) // 32)):
            acts = [x[batch]]
            for i in range(1, 4):
                z = acts[-1] @ p[f"fc{i}.weight"].T + p[f"fc{i}.bias"]
                acts.append(np.maximum(z, 0) if i < 3 else z)
            logits = acts[-1] - acts[-1].max(axis=1, keepdims=True)
            prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            grad = prob
            grad[np.arange(len(batch)), y[batch]] -= 1
            grad /= len(batch)
            for i in range(3, 0, -1):
                gw, gb = grad.T @ acts[i - 1], grad.sum(axis=0)
                if i > 1:
                    grad = (grad @ p[f"fc{i}.weight"]) * (acts[i - 1] > 0)
                p[f"fc{i}.weight"] -= lr * gw
                p[f"fc{i}.bias"] -= lr * gb
    return {k: p[k].astype(params[k].dtype) for k in params}


def measure(label: str, update: str, original: dict, new: dict, policy: str | None, touched: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        base, full, upd = (os.path.join(d, f) for f in ("base.nnc", "full.nnc", "upd.nnc"))
        codec.save_file(original, base, policy=policy)
        codec.save_file(new, full, policy=policy)
        t0 = time.perf_counter()
        summary = codec.save_delta(new, upd, base=base, previous=original, policy=policy)
        encode_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        applied = codec.load_file(upd, base=base)
        apply_s = time.perf_counter() - t0
        full_model = codec.load_file(full)
        sizes = {k: os.path.getsize(p) for k, p in (("base", base), ("full", full), ("delta", upd))}
    return {"model": label, "update": update, "policy": policy or "lossless", "touched": touched,
            "full_bytes": sizes["full"], "delta_bytes": sizes["delta"], "ratio": sizes["delta"] / sizes["full"],
            "stored": summary["changed"], "unchanged": summary["unchanged"],
            "delta_rel_error": _rel_error(applied, new), "full_rel_error": _rel_error(full_model, new),
            "encode_s": encode_s, "apply_s": apply_s}


def print_tables(rows, markdown=False):
    head = ["model", "update", "policy", "tensors touched", "full file", "delta", "delta / full", "stored / unchanged",
            "rel. error: base + delta", "rel. error: full file", "delta encode s", "load with base s"]
    table = [[r["model"], r["update"], r["policy"], r["touched"], f"{r['full_bytes']:,}", f"{r['delta_bytes']:,}",
              f"{100 * r['ratio']:.2f}%", f"{r['stored']} / {r['unchanged']}", f"{r['delta_rel_error']:.5f}",
              f"{r['full_rel_error']:.5f}", f"{r['encode_s']:.2f}", f"{r['apply_s']:.2f}"] for r in rows]
    if markdown:
        print("Delta bitstreams written with `previous=` the original tensors; the full file is the updated model in the "
              "same policy; errors are relative RMSE of the float tensors against the updated weights")
        _common.markdown_table(head, table)
    else:
        _common.plain_table(head, table)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_output_args(parser)
    args = parser.parse_args(argv)
    rows = []
    minilm = _common.minilm_tensors()
    if minilm is not None:
        new, chosen = _low_rank_update(minilm, 0.05, 8, 0.01, seed=1)
        touched = f"{len(chosen)} of {len(minilm)}"
        for policy in ("int8", None):
            rows.append(measure("MiniLM", "rank-8, 1%", minilm, new, policy, touched))
        rows.append(measure("MiniLM", "none (no-op)", minilm, dict(minilm), "int8", f"0 of {len(minilm)}"))
    params, x, y = demo.load_digits_mlp()
    tuned = _sgd_epochs(params, x, y, epochs=3, lr=0.01, seed=2)
    before, after = demo.mlp_accuracy(params, x, y), demo.mlp_accuracy(tuned, x, y)
    for policy in ("int8", None):
        rows.append(measure("digits MLP", f"3 SGD epochs (acc. {before:.3f} -> {after:.3f})", params, tuned, policy,
                            f"{len(params)} of {len(params)}"))
    _common.emit("bench_delta.py", lambda: print_tables(rows, args.markdown), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
