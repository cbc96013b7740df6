#!/usr/bin/env python3
"""Ternary benchmark: bits per trit of every scheme vs the order-0 entropy and the peers, and
encode/decode throughput, in one run.

Distributions: all-MiniLM-L6-v2 2-D weights TWN-ternarized per tensor (coded layer by layer),
Gaussian weights TWN-ternarized, and i.i.d. trits with zero fractions 0.3, 0.5, 0.7, 0.9.
Peers: GGUF TQ1_0 / TQ2_0 (``gguf.quants``, scales included), zstd -19 of 2-bit packed trits,
and constriction's ANS coder (throughput) when installed.

Targets (issue 4): auto <= 1.005x H0 on every distribution; flag-plus-nonzero decode >= 1000 M
trits/s and entropy decode >= 300 M trits/s on one core.

    pip install gguf constriction   # optional peers
    python bench/bench_ternary.py [--json] [--size 4194304]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import zstandard

from codec import _backend
from codec import levels as lc
from codec.modes import ternary as T

from _common import best_time, markdown_table as table, minilm_tensors, add_output_args, emit  # noqa: E402


def h0_bits(t: np.ndarray) -> float:
    return lc.order0_entropy_bits(t) if t.size else 0.0


def distributions(size: int):
    rng = np.random.default_rng(0)
    out = {}
    model = minilm_tensors()
    if model is not None:
        layers = [np.sign(T.ternarize(v)).astype(np.int8) for v in model.values() if v.ndim == 2 and v.dtype.kind == "f"]
        out["MiniLM TWN"] = layers
    rows = 1024
    g = rng.standard_normal((rows, size // rows)).astype(np.float32)
    out["Gaussian TWN"] = [np.sign(T.ternarize(g)).astype(np.int8)]
    for z in (0.3, 0.5, 0.7, 0.9):
        t = np.where(rng.random((rows, size // rows)) < z, 0, rng.choice(np.array([-1, 1], np.int8), (rows, size // rows)))
        out[f"iid z={z}"] = [t.astype(np.int8)]
    return out


def gguf_bits(layers, qtype_name):
    try:
        from gguf import quants
        from gguf.constants import GGMLQuantizationType as Q
    except ImportError:
        return None
    q = getattr(Q, qtype_name)
    total_bits = 0
    n = 0
    for t in layers:
        flat = t.reshape(-1).astype(np.float32)
        pad = -flat.size % 256
        blocks = np.concatenate([flat, np.zeros(pad, np.float32)]).reshape(-1, 256)
        packed = quants.quantize(blocks, q)
        total_bits += packed.nbytes * 8
        n += t.size
    return total_bits / n


def pack2(t: np.ndarray) -> bytes:
    codes = (t.reshape(-1).astype(np.int64) & 3).astype(np.uint8)  # 0, 1, 3
    codes = np.concatenate([codes, np.zeros(-codes.size % 4, np.uint8)]).reshape(-1, 4)
    return (codes[:, 0] << 6 | codes[:, 1] << 4 | codes[:, 2] << 2 | codes[:, 3]).astype(np.uint8).tobytes()


def sizes_row(name, layers):
    n = sum(t.size for t in layers)
    h0 = sum(h0_bits(t) for t in layers)
    row = {"distribution": name, "trits": n, "zero_fraction": float(sum((t == 0).sum() for t in layers) / n),
           "H0": h0 / n}
    for scheme in ("flag", "base3", "entropy", "auto"):
        bits = 0
        for t in layers:
            rows, cols = lc.level_grid(t.shape)
            bits += len(T.encode_payload(t, rows, cols, scheme)) * 8
        row[scheme] = bits / n
    row["flag L=0"] = sum(len(_backend.ternary.flag_encode(t, levels=0)) * 8 for t in layers) / n
    row["TQ1_0"] = gguf_bits(layers, "TQ1_0")
    row["TQ2_0"] = gguf_bits(layers, "TQ2_0")
    cctx = zstandard.ZstdCompressor(level=19)
    row["zstd-19 2-bit"] = sum(len(cctx.compress(pack2(t))) * 8 for t in layers) / n
    row["2-bit"] = 2.0
    return row


def speed_rows(t: np.ndarray) -> list[dict]:
    """Throughput on one big trit array (M trits/s), ours and the peers."""
    n = t.size
    rows, cols = lc.level_grid(t.shape)
    flat = t.reshape(-1)
    out = []
    k = _backend.ternary
    for scheme, enc, dec in (
        ("flag", lambda: k.flag_encode(flat), lambda p: k.flag_decode(p, n)[2]),
        ("base3", lambda: k.base3_encode(flat), lambda p: k.base3_decode(p, n)[2]),
        ("entropy", lambda: lc.encode_levels(flat.astype(np.int64), rows, cols),
         lambda p: lc.decode_levels(p, rows, cols, out_kind=3)),
    ):
        payload = enc()
        assert np.array_equal(np.asarray(dec(payload)).reshape(-1), flat)
        out.append({"coder": f"ours {scheme}", "encode_Mtrits_s": n / best_time(enc) / 1e6,
                    "decode_Mtrits_s": n / best_time(lambda: dec(payload)) / 1e6})
    try:
        from gguf import quants
        from gguf.constants import GGMLQuantizationType as Q

        blocks = np.concatenate([flat.astype(np.float32), np.zeros(-n % 256, np.float32)]).reshape(-1, 256)
        packed = quants.quantize(blocks, Q.TQ1_0)
        out.append({"coder": "gguf TQ1_0 (numpy)", "encode_Mtrits_s": n / best_time(lambda: quants.quantize(blocks, Q.TQ1_0), 1) / 1e6,
                    "decode_Mtrits_s": n / best_time(lambda: quants.dequantize(packed, Q.TQ1_0)) / 1e6})
    except ImportError:
        pass
    try:
        import constriction

        symbols = (flat.astype(np.int32) + 1)
        probs = np.bincount(symbols, minlength=3).astype(np.float64) / n
        probs = np.maximum(probs, 1e-9)
        model = constriction.stream.model.Categorical(probs / probs.sum(), perfect=False)

        def c_enc():
            coder = constriction.stream.stack.AnsCoder()
            coder.encode_reverse(symbols, model)
            return coder.get_compressed()

        compressed = c_enc()

        def c_dec():
            return constriction.stream.stack.AnsCoder(compressed).decode(model, n)

        assert np.array_equal(c_dec(), symbols)
        out.append({"coder": "constriction ANS", "encode_Mtrits_s": n / best_time(c_enc, 1) / 1e6,
                    "decode_Mtrits_s": n / best_time(c_dec, 1) / 1e6})
    except ImportError:
        pass
    packed2 = pack2(t)
    z = zstandard.ZstdCompressor(level=19).compress(packed2)
    d = zstandard.ZstdDecompressor()
    out.append({"coder": "zstd -19 of 2-bit packed (decode only)", "encode_Mtrits_s": None,
                "decode_Mtrits_s": n / best_time(lambda: d.decompress(z)) / 1e6})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--size", type=int, default=1 << 22, help="trits per synthetic distribution")
    add_output_args(parser)
    args = parser.parse_args(argv)
    dists = distributions(args.size)
    size_rows = [sizes_row(name, layers) for name, layers in dists.items()]
    speeds = {name: speed_rows(dists[name][0]) for name in ("Gaussian TWN", "iid z=0.9")}
    if args.json:
        print(json.dumps({"bits_per_trit": size_rows, "throughput": speeds}, indent=2))
        return 0
    def tables():
        cols = ["zero_fraction", "H0", "auto", "flag", "flag L=0", "base3", "entropy", "TQ1_0", "TQ2_0", "zstd-19 2-bit"]
        print("Bits per trit (payload bytes included; TQ1_0/TQ2_0 include their fp16 block scales)")
        rows = []
        for r in size_rows:
            rows.append([r["distribution"]] + [("-" if r[c] is None else f"{r[c]:.4f}") for c in cols] +
                        [f"{r['auto'] / r['H0']:.4f}x" if r["H0"] else "-"])
        table(["distribution"] + cols + ["auto / H0"], rows)
        for name, rs in speeds.items():
            print(f"\nThroughput on {name} ({dists[name][0].size:,} trits, one core), M trits/s")
            table(["coder", "encode", "decode"], [[r["coder"], "-" if r["encode_Mtrits_s"] is None else f"{r['encode_Mtrits_s']:.0f}",
                                                  f"{r['decode_Mtrits_s']:.0f}"] for r in rs])

    emit("bench_ternary.py", tables, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
