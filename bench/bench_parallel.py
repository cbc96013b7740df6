#!/usr/bin/env python3
"""Parallel coding and encoder memory.

1. all-MiniLM-L6-v2: encode and decode time with 1 and 2 workers, and the speed-up, for the default
   lossless policy (floatplanes) and for 8-bit per-channel quantization (target >= 1.7x on 2 cores).
2. Peak RSS of `codec encode` on a synthetic safetensors file of --gb GB (default 4), in a fresh
   process, above the interpreter's baseline after imports, against the largest layer (target
   <= largest layer + 64 MB), for the zstd policy and the default lossless policy.
3. Scale-out by reference: `codec.encode_file` of a --scale-gb GB (default 1) safetensors file with
   `workers=1`, a `ProcessPoolExecutor(2)` and a dask `LocalCluster(n_workers=2)` executor (tasks
   carry a reference to their tensor, not the array): time, speed-up over `workers=1` (target
   >= 1.3x for the cluster), identical bytes, and the writer process's peak RSS. The cluster runs
   twice: as dask starts it, and with MALLOC_TRIM_THRESHOLD_ unset in its workers (dask's nanny sets
   it to 65536, which turns off glibc's adaptive mmap threshold: every piece-sized temporary is then
   a fresh mapping, page-faulted and unmapped).

    python bench/bench_parallel.py [--json] [--gb 4] [--skip-rss] [--scale-gb 1] [--skip-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import codec

from _common import HWM_SOURCE, best_time as best, minilm_tensors, add_output_args, emit  # noqa: E402
MB = 1 << 20


def minilm_rows(repeat: int) -> list[dict]:
    model = minilm_tensors()
    if model is None:
        return []
    floats = {k: v for k, v in model.items() if v.dtype.kind == "f"}
    rows = []
    for label, params in (("lossless (floatplanes)", {"mode": "floatplanes"}),
                          ("8-bit per channel", {"mode": "quantized", "bits": 8, "granularity": "channel"})):
        def enc(workers):
            return codec.encode(floats, workers=workers, **params)

        data = enc(1)
        assert data == enc(2), "bytes differ with 2 workers"
        t_enc1, t_enc2 = best(lambda: enc(1), repeat), best(lambda: enc(2), repeat)
        t_dec1 = best(lambda: codec.decode(data, workers=1), repeat)
        t_dec2 = best(lambda: codec.decode(data, workers=2), repeat)
        rows.append({"policy": label, "bytes": len(data), "encode_1_s": t_enc1, "encode_2_s": t_enc2,
                     "encode_speedup": t_enc1 / t_enc2, "decode_1_s": t_dec1, "decode_2_s": t_dec2,
                     "decode_speedup": t_dec1 / t_dec2})
    return rows


def make_synthetic(path: str, gb: float, distinct: bool = False) -> float:
    """Write a safetensors file of ~gb GB (64 MB float32 layers, weight-like values); return the largest layer MB."""
    from codec import formats

    layer = 16 * MB  # float32 elements per layer: 64 MB
    count = max(1, int(gb * 1024 / 64))
    rng = np.random.default_rng(0)
    row = (rng.standard_normal(4096) * 0.02).astype(np.float32)

    def items():
        for i in range(count):
            if distinct:  # every row its own values (compresses like weights, not like a repeated row)
                yield (f"layers.{i}.weight", (rng.standard_normal((layer // 4096, 4096), dtype=np.float32)
                                              * np.float32(0.02 * (1 + i % 7))), "float32")
            else:
                yield f"layers.{i}.weight", np.tile(row * (1 + i % 7), (layer // 4096, 1)), "float32"

    # write streaming so the generator holds one layer: safetensors needs the header first
    import struct

    header, offset = {}, 0
    for i in range(count):
        header[f"layers.{i}.weight"] = {"dtype": "F32", "shape": [layer // 4096, 4096], "data_offsets": [offset, offset + 4 * layer]}
        offset += 4 * layer
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for _, a, _ in items():
            f.write(a.tobytes())
    del formats
    return 4 * layer / MB


def encode_rss(src: str, policy: str | None) -> dict:
    code = HWM_SOURCE + f"""
import os, sys, tempfile, json
from codec.cli import main
base = hwm()
out = os.path.join(tempfile.mkdtemp(dir=os.path.dirname({src!r})), 'o.nnc')
args = ['encode', {src!r}, '-o', out, '-q'] + ({['--policy', policy] if policy else []!r})
rc = main(args)
size = os.path.getsize(out)
os.unlink(out)
print(json.dumps({{"rc": rc, "base_mb": base, "peak_growth_mb": hwm() - base, "bytes": size}}))
"""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["seconds"] = time.perf_counter() - start
    return result


SCALE = HWM_SOURCE + r"""
import json, os, sys, time
import codec
src, out, how, policy = sys.argv[1:5]
executor = cluster = client = None
if how == "processes":
    from concurrent.futures import ProcessPoolExecutor
    executor = ProcessPoolExecutor(2)
elif how.startswith("dask"):
    if how == "dask-untrimmed":  # dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers; None unsets it
        import dask
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
    from dask.distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    executor = client.get_executor()
base = hwm()
start = time.perf_counter()
codec.encode_file(src, out, policy=policy, executor=executor)
seconds = time.perf_counter() - start
peak = hwm()
if client is not None:
    client.close(); cluster.close()
elif executor is not None:
    executor.shutdown()
print(json.dumps({"seconds": seconds, "writer_peak_mb": peak, "writer_growth_mb": peak - base}))
"""


def scale_rows(src: str, policy_path: str, label: str) -> list[dict]:
    import hashlib

    rows = []
    names = {"workers=1": "workers=1", "processes": "ProcessPoolExecutor(2)",
             "dask": "dask LocalCluster(n_workers=2)",
             "dask-untrimmed": "dask LocalCluster(n_workers=2), MALLOC_TRIM_THRESHOLD_ unset"}
    for how in names:
        if how.startswith("dask"):
            try:
                import dask.distributed  # noqa: F401
            except ImportError:
                rows.append({"policy": label, "executor": names[how], "skipped": "dask not installed"})
                continue
        out = os.path.join(os.path.dirname(src), f"scale-{how}.nnc")
        proc = subprocess.run([sys.executable, "-c", SCALE, src, out, how, policy_path], capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        with open(out, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        os.unlink(out)
        rows.append({"policy": label, "executor": names[how], "sha256": digest, **r})
    first = rows[0]
    for r in rows:
        if "seconds" in r:
            r["speedup"] = first["seconds"] / r["seconds"]
            r["identical"] = r["sha256"] == first["sha256"]
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--gb", type=float, default=4.0, help="size of the synthetic model (GB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--scale-gb", type=float, default=1.0, help="size of the scale-out model (GB)")
    parser.add_argument("--skip-scale", action="store_true")
    add_output_args(parser)
    args = parser.parse_args(argv)
    rows = minilm_rows(args.repeat)
    rss = []
    if not args.skip_rss:
        with tempfile.TemporaryDirectory(prefix="codec-par-") as tmp:
            src = os.path.join(tmp, "synthetic.safetensors")
            largest = make_synthetic(src, args.gb)
            total = os.path.getsize(src) / MB
            policy_dir = tempfile.mkdtemp(dir=tmp)
            zstd_policy = os.path.join(policy_dir, "zstd.toml")
            with open(zstd_policy, "w") as f:
                f.write('[defaults]\nmode = "zstd"\n')
            for label, policy in (("zstd", zstd_policy), ("default lossless (floatplanes)", None)):
                r = encode_rss(src, policy)
                rss.append({"policy": label, "model_mb": total, "largest_layer_mb": largest, **r,
                            "target_mb": largest + 64, "pass": r["peak_growth_mb"] <= largest + 64})
    scale = []
    if not args.skip_scale:
        with tempfile.TemporaryDirectory(prefix="codec-scale-") as tmp:
            src = os.path.join(tmp, "synthetic.safetensors")
            make_synthetic(src, args.scale_gb, distinct=True)
            for label, text in (("8-bit per channel", '[defaults]\nmode = "quantized"\nbits = 8\ngranularity = "channel"\n'),
                                ("default lossless (floatplanes)", '[defaults]\nmode = "floatplanes"\n')):
                policy_path = os.path.join(tmp, "policy.toml")
                with open(policy_path, "w") as f:
                    f.write(text)
                scale += scale_rows(src, policy_path, label)
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "minilm": rows, "encoder_rss": rss, "scale_out": scale}, indent=2))
        return 0
    def tables():
        print(f"MiniLM, {os.cpu_count()} CPUs (best of {args.repeat}); target speed-up >= 1.7x on 2 cores")
        print("| policy | bytes | encode 1 worker s | encode 2 workers s | speed-up | decode 1 s | decode 2 s | speed-up |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['policy']} | {r['bytes']:,} | {r['encode_1_s']:.3f} | {r['encode_2_s']:.3f} | "
                  f"{r['encode_speedup']:.2f}x | {r['decode_1_s']:.3f} | {r['decode_2_s']:.3f} | {r['decode_speedup']:.2f}x |")
        if rss:
            print(f"\n`codec encode` of a {rss[0]['model_mb']:,.0f} MB safetensors file (largest layer "
                  f"{rss[0]['largest_layer_mb']:.0f} MB), peak RSS above the interpreter's baseline")
            print("| policy | peak RSS growth MB | target MB | pass | seconds | output bytes |")
            print("|---|---:|---:|---|---:|---:|")
            for r in rss:
                print(f"| {r['policy']} | {r['peak_growth_mb']:.1f} | {r['target_mb']:.0f} | {'yes' if r['pass'] else 'NO'} | "
                      f"{r['seconds']:.1f} | {r['bytes']:,} |")

        if scale:
            print(f"\n`codec.encode_file` of a {args.scale_gb:g} GB safetensors file (64 MB float32 layers) by "
                  "reference; target: dask LocalCluster(n_workers=2) >= 1.3x workers=1, identical bytes")
            print("| policy | executor | seconds | speed-up | identical bytes | writer peak RSS MB |")
            print("|---|---|---:|---:|---|---:|")
            for r in scale:
                if "skipped" in r:
                    print(f"| {r['policy']} | {r['executor']} | - | - | - | {r['skipped']} |")
                    continue
                print(f"| {r['policy']} | {r['executor']} | {r['seconds']:.2f} | {r['speedup']:.2f}x | "
                      f"{'yes' if r['identical'] else 'NO'} | {r['writer_peak_mb']:.0f} |")

    emit("bench_parallel.py", tables, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
