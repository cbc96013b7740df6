#!/usr/bin/env python3
"""Sparse-mask benchmark: bits per element vs the entropy bounds and the peers, and throughput, in one run.

Masks: i.i.d. at density 0.5, 0.3, 0.1, 0.05, 0.01; all-MiniLM-L6-v2 2-D weights pruned by
magnitude per tensor (keep 0.5 and 0.1) and 2:4 along the input dimension. Printed: bits/element
of our coding vs the global order-0 bound H(p), the per-row bound sum n_r H(p_r) / n, packbits +
zstd -19, and constriction's ANS with the global p (if installed); encode/decode throughput in
M elements/s vs np.unpackbits and zstd -3 decode of the packed bits.

Targets (issue 5): <= 0.98x H(p) on the MiniLM magnitude masks; <= 1.002x H(p) on i.i.d. masks;
2:4 <= 0.647 bits/element; decode >= 500 M elements/s on one core at density <= 0.5.

    python bench/bench_masks.py [--json] [--size 4194304]
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import zstandard

import codec
from codec.modes import masks as M

from _common import best_time, markdown_table as table, minilm_tensors, add_output_args, emit  # noqa: E402


def h(p: float) -> float:
    return 0.0 if p <= 0 or p >= 1 else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def datasets(size: int):
    rng = np.random.default_rng(0)
    out = {}
    for d in (0.5, 0.3, 0.1, 0.05, 0.01):
        out[f"iid d={d}"] = ("bitmap", [rng.random((1024, size // 1024)) < d])
    model = minilm_tensors()
    if model is not None:
        weights = [v for v in model.values() if v.ndim == 2 and v.dtype.kind == "f"]
        out["MiniLM keep 0.5"] = ("bitmap", [M.prune_magnitude(w, 0.5) for w in weights])
        out["MiniLM keep 0.1"] = ("bitmap", [M.prune_magnitude(w, 0.9) for w in weights])
        out["MiniLM 2:4"] = ("nm", [M.prune_nm(w, 2, 4, axis=-1) for w in weights])
    return out


def encode(kind, mask):
    return M.encode_bitmap(mask) if kind == "bitmap" else M.encode_nm(mask, 2, 4, mask.ndim - 1)


def decode(block, shape):
    r = codec._backend.BitReader(block)
    r.path = "mask_block"
    return M.read_mask_block(memoryview(block), r, shape)[1]


def size_row(name, kind, masks):
    n = sum(m.size for m in masks)
    kept = sum(int(m.sum()) for m in masks)
    p = kept / n
    per_row = sum(sum(h(r.mean()) * r.size for r in m.reshape(m.shape[0], -1)) for m in masks) / n
    ours = sum(len(encode(kind, m)) * 8 for m in masks) / n
    cctx = zstandard.ZstdCompressor(level=19)
    zstd = sum(len(cctx.compress(np.packbits(m).tobytes())) * 8 for m in masks) / n
    row = {"mask": name, "kind": kind, "elements": n, "density": p, "H(p)": h(p), "per-row bound": per_row,
           "ours": ours, "packbits+zstd-19": zstd, "ours / H(p)": ours / h(p) if h(p) else None}
    try:
        import constriction

        bits = 0
        for m in masks:
            sym = m.reshape(-1).astype(np.int32)
            model = constriction.stream.model.Categorical(np.array([1 - p, p]), perfect=False)
            coder = constriction.stream.stack.AnsCoder()
            coder.encode_reverse(sym, model)
            bits += coder.num_bits()
        row["constriction ANS"] = bits / n
    except ImportError:
        row["constriction ANS"] = None
    return row


def speed_row(name, kind, mask):
    n = mask.size
    block = encode(kind, mask)
    assert np.array_equal(decode(block, mask.shape), mask)
    t_enc = best_time(lambda: encode(kind, mask))
    t_dec = best_time(lambda: decode(block, mask.shape))
    packed = np.packbits(mask)
    t_unpack = best_time(lambda: np.unpackbits(packed))
    z = zstandard.ZstdCompressor(level=3).compress(packed.tobytes())
    dctx = zstandard.ZstdDecompressor()
    t_z = best_time(lambda: dctx.decompress(z))
    return {"mask": name, "elements": n, "ours_encode_Mel_s": n / t_enc / 1e6, "ours_decode_Mel_s": n / t_dec / 1e6,
            "np_unpackbits_Mel_s": n / t_unpack / 1e6, "zstd3_decode_packed_Mel_s": n / t_z / 1e6}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--size", type=int, default=1 << 22, help="elements of each i.i.d. mask")
    add_output_args(parser)
    args = parser.parse_args(argv)
    data = datasets(args.size)
    sizes = [size_row(name, kind, masks) for name, (kind, masks) in data.items()]
    speeds = [speed_row(name, kind, max(masks, key=lambda m: m.size)) for name, (kind, masks) in data.items()
              if name in ("iid d=0.5", "iid d=0.1", "iid d=0.01", "MiniLM keep 0.5", "MiniLM 2:4")]
    if args.json:
        print(json.dumps({"bits_per_element": sizes, "throughput": speeds}, indent=2))
        return 0
    cols = ["density", "H(p)", "per-row bound", "ours", "ours / H(p)", "packbits+zstd-19", "constriction ANS"]

    def tables():
        print("Bits per element")
        table(["mask", "coding"] + cols,
              [[r["mask"], r["kind"]] + ["-" if r[c] is None else (f"{r[c]:.4f}x" if c == "ours / H(p)" else
                                                                 f"{r[c]:.4f}") for c in cols] for r in sizes])
        print("\nThroughput, M elements/s, one core (largest mask of each set)")
        table(["mask", "elements", "ours encode", "ours decode", "np.unpackbits", "zstd -3 decode of packbits"],
              [[r["mask"], f"{r['elements']:,}", f"{r['ours_encode_Mel_s']:.0f}", f"{r['ours_decode_Mel_s']:.0f}",
                f"{r['np_unpackbits_Mel_s']:.0f}", f"{r['zstd3_decode_packed_Mel_s']:.0f}"] for r in speeds])

    emit("bench_masks.py", tables, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
