#!/usr/bin/env python3
"""Peak memory of encoding, decoding and reading, per coding mode and per command.

Synthetic models of --gb GB (default 4) made of --layer-mib MiB layers (default 256): float32
weight-like values (each layer a different scale per row), int16 values for the entropy mode, int8
trits and ternary float32 values for the ternary mode. Each row runs in a fresh process and
reports its peak resident set (VmHWM, which starts afresh at exec) and its growth over the
interpreter with codec imported (~33 MiB). Target: growth <= largest layer + 64 MiB, for
every mode of `codec encode`, for `codec decode` to safetensors / npz / pt, for `codec verify` and
for reading every layer (Reader.get in a loop, and iter_stream).

Rows whose encoder holds whole-layer temporaries (codebook, rate-distortion rounding) are measured on
--small-layers layers only (their peak is per layer; a full model would take long): the model
column says what each row used.

    python bench/bench_memory.py [--gb 4] [--layer-mib 256] [--json] [--markdown [--write]] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import HWM_SOURCE, add_output_args, emit  # noqa: E402

MiB = 1 << 20

#: name -> (input kind, encode policy (the [defaults] table), whole-layer encoder: measured on few layers)
ENCODE_ROWS = {
    "raw": ("float32", {"mode": "raw"}, False),
    "zstd": ("float32", {"mode": "zstd"}, False),
    "floatplanes": ("float32", {"mode": "floatplanes"}, False),
    "entropy (int16)": ("int16", {"mode": "entropy"}, False),
    "quantized 8-bit per tensor": ("float32", {"mode": "quantized", "bits": 8}, False),
    "quantized 8-bit per channel": ("float32", {"mode": "quantized", "bits": 8, "granularity": "channel"}, False),
    "quantized 4-bit uniform_zp per channel": ("float32", {"mode": "quantized", "bits": 4, "method": "uniform_zp",
                                                           "granularity": "channel"}, False),
    "ternary (int8 trits)": ("trits", {"mode": "ternary"}, False),
    "ternary (float32 +-alpha)": ("ternary", {"mode": "ternary"}, False),
    "ternary ternarize=true": ("float32", {"mode": "ternary", "ternarize": True}, False),
    "sparse 2:4, raw values": ("float32", {"mode": "sparse", "nm": [2, 4], "values_mode": "raw"}, False),
    "sparse prune 0.5, 8-bit values": ("float32", {"mode": "sparse", "prune": 0.5, "values_mode": "quantized",
                                                   "bits": 8}, False),
    "quantized codebook 4-bit": ("float32", {"mode": "quantized", "bits": 4, "method": "codebook"}, True),
    "quantized 8-bit rdo": ("float32", {"mode": "quantized", "bits": 8, "rdo_lambda": 0.05}, True),
}

#: What a row's child process runs: codec's CLI (argv) or a Python snippet; both then print VmHWM.
CHILD = HWM_SOURCE + r"""
import json, os, sys
import numpy, codec, codec.cli
base = hwm()
kind, payload = sys.argv[1], json.loads(sys.argv[2])
if kind == 'cli':
    rc = codec.cli.main(payload)
else:
    rc = 0
    exec(payload)
print(json.dumps({"rc": rc, "base_mib": base, "peak_mib": hwm()}))
"""

ITERATE = """
with codec.Reader(sys.argv[3]) as r:
    for name in r:
        r.get(name)
"""
STREAM = """
with open(sys.argv[3], 'rb') as f:
    for name, array in codec.iter_stream(f):
        del array
"""


def write_model(path: str, kind: str, layers: int, layer_bytes: int) -> None:
    """A safetensors file of ``layers`` layers of ``layer_bytes`` bytes (one layer in memory at a time)."""
    dtype = {"float32": np.float32, "ternary": np.float32, "int16": np.int16, "trits": np.int8}[kind]
    itemsize = np.dtype(dtype).itemsize
    cols = 4096
    rows = layer_bytes // itemsize // cols
    header, offset = {}, 0
    for i in range(layers):
        header[f"layers.{i}.weight"] = {"dtype": {"float32": "F32", "ternary": "F32", "int16": "I16", "trits": "I8"}[kind],
                                        "shape": [rows, cols], "data_offsets": [offset, offset + rows * cols * itemsize]}
        offset += rows * cols * itemsize
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for i in range(layers):
            scale = (0.02 * (1 + (np.arange(rows) % 5))).astype(np.float32)[:, None]
            if kind == "float32":
                a = rng.standard_normal((rows, cols), dtype=np.float32) * scale
            elif kind == "int16":
                a = np.rint(rng.standard_normal((rows, cols), dtype=np.float32) * 20 * scale / 0.02).astype(np.int16)
            else:
                t = rng.choice(np.array([-1, 0, 0, 1], np.int8), size=(rows, cols))
                a = t if kind == "trits" else t.astype(np.float32) * np.float32(0.05)
            f.write(a.tobytes())
            del a


def run_child(kind: str, payload, *extra: str) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, json.dumps(payload), *extra], capture_output=True,
                          text=True)
    if proc.returncode:
        raise RuntimeError(f"{kind} {payload}: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["seconds"] = time.perf_counter() - start
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=4.0, help="size of each synthetic model (GiB)")
    parser.add_argument("--layer-mib", type=int, default=256, help="bytes of each layer (MiB)")
    parser.add_argument("--small-layers", type=int, default=2, help="layers of the whole-layer encoders' models")
    parser.add_argument("--only", nargs="*", help="only these rows (names as printed)")
    parser.add_argument("--dir", help="where the models go (default: a temporary folder; needs ~4x --gb)")
    parser.add_argument("--json", action="store_true")
    add_output_args(parser)
    args = parser.parse_args(argv)
    layer_bytes = args.layer_mib * MiB
    layers = max(1, round(args.gb * 1024 / args.layer_mib))
    target = args.layer_mib + 64
    rows = []
    with tempfile.TemporaryDirectory(prefix="codec-mem-", dir=args.dir) as tmp:
        models = {}

        def model(kind: str, count: int) -> str:
            key = (kind, count)
            if key not in models:
                models[key] = os.path.join(tmp, f"{kind}-{count}.safetensors")
                write_model(models[key], kind, count, layer_bytes)
            return models[key]

        def keep(row: str) -> bool:
            return not args.only or row in args.only

        def record(command: str, row: str, model_mib: float, result: dict) -> None:
            rows.append({"command": command, "row": row, "model_mib": model_mib, "layer_mib": args.layer_mib,
                         "peak_mib": result["peak_mib"], "growth_mib": result["peak_mib"] - result["base_mib"],
                         "target_mib": target, "pass": result["peak_mib"] - result["base_mib"] <= target,
                         "seconds": result["seconds"]})
            print(f"{command} {row}: peak {result['peak_mib']:.0f} MiB", file=sys.stderr, flush=True)

        encoded = None
        for row, (kind, policy, whole) in ENCODE_ROWS.items():
            if not keep(row):
                continue
            count = min(layers, args.small_layers) if whole else layers
            src = model(kind, count)
            policy_path = os.path.join(tmp, "policy.json")
            with open(policy_path, "w") as f:
                json.dump({"defaults": policy}, f)
            out = os.path.join(tmp, "out.nnc")
            result = run_child("cli", ["encode", src, "-o", out, "--policy", policy_path, "-q", "-f"])
            record("encode", row, os.path.getsize(src) / MiB, result)
            if row == "floatplanes":
                encoded = os.path.join(tmp, "lossless.nnc")
                os.replace(out, encoded)
        if encoded is None and any(keep(r) for r in ("safetensors", "npz", "pt", "verify", "Reader.get loop",
                                                     "iter_stream")):
            encoded = os.path.join(tmp, "lossless.nnc")
            run_child("cli", ["encode", model("float32", layers), "-o", encoded, "-q", "-f"])
        model_mib = layers * args.layer_mib
        for ext in ("safetensors", "npz", "pt"):
            if keep(ext):
                out = os.path.join(tmp, f"decoded.{ext}")
                record("decode", ext, model_mib, run_child("cli", ["decode", encoded, "-o", out, "-q", "-f"]))
                os.unlink(out)
        if keep("verify"):
            record("verify", "verify", model_mib, run_child("cli", ["verify", encoded]))
        if keep("Reader.get loop"):
            record("read", "Reader.get loop", model_mib, run_child("py", ITERATE, encoded))
        if keep("iter_stream"):
            record("read", "iter_stream", model_mib, run_child("py", STREAM, encoded))
    if args.json:
        print(json.dumps({"layer_mib": args.layer_mib, "target_mib": target, "rows": rows}, indent=2))
        return 0

    def tables():
        print(f"Peak resident memory (VmHWM) of one process per row, {args.layer_mib} MiB layers. Growth: above the "
              f"interpreter with codec imported; target: growth <= largest layer + 64 MiB = {target} MiB.")
        print("| command | row | model MiB | peak MiB | growth MiB | target MiB | pass | seconds |")
        print("|---|---|---:|---:|---:|---:|---|---:|")
        for r in rows:
            print(f"| {r['command']} | {r['row']} | {r['model_mib']:,.0f} | {r['peak_mib']:,.0f} | "
                  f"{r['growth_mib']:,.0f} | {r['target_mib']} | {'yes' if r['pass'] else 'NO'} | {r['seconds']:.1f} |")

    emit("bench_memory.py", tables, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
