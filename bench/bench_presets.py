"""The built-in presets (``codec encode --policy NAME``, codec/presets.py) on real models: bits per
parameter, weight error and encode time through ``codec.encode_file`` (the target search of the dq
presets included), and on all-MiniLM-L6-v2 the sentence-embedding cosine (bench_rd.py's measure).
On the YOLOv8n convnet (nudenet 3.4.2) the weight error only. The figures in the presets'
descriptions come from this script.

    python bench/bench_presets.py [--markdown [--write]] [--sentences N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import codec  # noqa: E402
from codec import quality  # noqa: E402
from codec.presets import PRESETS  # noqa: E402
from _common import add_output_args, convnet_tensors, emit, markdown_table, minilm_path  # noqa: E402


def measure(name: str, source: str, model_quality, log) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "m.nnc")
        for preset in PRESETS:
            t0 = time.perf_counter()
            summary = codec.encode_file(source, out, policy=preset)
            seconds = time.perf_counter() - t0
            decoded = codec.load_file(out)
            total = quality.total(summary["quality"])
            row = {"model": name, "preset": preset, "bits_per_param": os.path.getsize(out) * 8 / summary["elements"],
                   "rel_error": total.rel_error if total else 0.0, "encode_s": seconds,
                   "passes": len(summary["target"]["tried"]) if "target" in summary else 1}
            if model_quality is not None:
                row.update(model_quality(decoded))
            rows.append(row)
            log(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=300, help="MiniLM evaluation sentences")
    add_output_args(parser)
    args = parser.parse_args(argv)

    def log(row):
        extra = f", mean cosine {row['mean_cosine']:.5f}" if "mean_cosine" in row else ""
        print(f"  {row['model']} {row['preset']}: {row['bits_per_param']:.3f} b/param, rel. error "
              f"{row['rel_error']:.4f}{extra}, {row['encode_s']:.1f} s ({row['passes']} passes)", file=sys.stderr)

    rows = []
    path = minilm_path()
    if path:
        from bench_rd import minilm_quality

        rows += measure("MiniLM", path, minilm_quality(args.sentences), log)
    conv = convnet_tensors()
    if conv:
        from safetensors.numpy import save_file

        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "yolov8n.safetensors")
            save_file({k: np.ascontiguousarray(v) for k, v in conv.items()}, src)
            rows += measure("YOLOv8n", src, None, log)

    def tables():
        print("One encode_file call per preset (the dq presets search their step: several passes); bits per "
              "parameter of the whole file, relative error of the lossy layers' weights (the quality report)")
        markdown_table(["model", "preset", "bits/param", "rel. error", "mean cosine", "encode s", "passes"],
                       [[r["model"], r["preset"], f"{r['bits_per_param']:.3f}", f"{r['rel_error']:.4f}",
                         f"{r['mean_cosine']:.5f}" if "mean_cosine" in r else "-", f"{r['encode_s']:.1f}",
                         str(r["passes"])] for r in rows])

    emit("bench_presets.py", tables, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
