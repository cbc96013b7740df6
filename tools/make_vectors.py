#!/usr/bin/env python3
"""Write the golden vectors of spec/vectors/ that are missing; never overwrite one.

Each vector is NNN-name.nnc plus NNN-name.json describing its exact content: metadata (typed, as
codec-dump --json), and per layer name, kind, dtype, shape, coding mode and the little-endian raw
bytes of its elements in hex. tests/test_vectors.py decodes every .nnc and compares it with its
JSON, and re-encodes the JSON content to check the bytes are identical.

Vectors are append-only: a format change gets new vectors (and a version bump), old ones stay.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import zstandard

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import codec  # noqa: E402
import codec.masks  # noqa: E402,F401
from codec.dump import _json_value  # noqa: E402

VECTOR_DIR = os.path.join(os.path.dirname(__file__), "..", "spec", "vectors")


def _bf16_bits(values) -> np.ndarray:
    return (np.asarray(values, np.float32).view(np.uint32) >> 16).astype(np.uint16)


def _vectors():
    """(name, description, metadata, [(layer, array, mode, kind, dtype_override)])"""
    yield "001-empty", "no layers, no metadata", {}, []
    yield "002-raw-all-dtypes", "one raw layer per supported dtype; scalar, empty and odd shapes", {
        "int": -(2**63), "float": -0.0, "bool": True, "str": "héllo", "bytes": b"\x00\xff",
        "list": [1, [2.5, "x"], b""], "empty_list": [],
    }, [
        ("f64", np.array([1.5, -np.inf, np.nan, 5e-324]), "raw", None, None),
        ("f32", np.arange(-3, 4, dtype=np.float32).reshape(7, 1) / 3, "raw", None, None),
        ("f16", np.array([[65504, -0.0, 1e-7]], dtype=np.float16), "raw", None, None),
        ("bf16", _bf16_bits([1.0, -2.0, 3.14159]), "raw", "weight", "bfloat16"),
        ("i8", np.array([-128, 0, 127], dtype=np.int8), "raw", None, None),
        ("i16", np.array([-32768, 32767], dtype=np.int16), "raw", None, None),
        ("i32", np.array(-(2**31), dtype=np.int32), "raw", None, None),
        ("i64", np.array([[2**63 - 1]], dtype=np.int64), "raw", None, None),
        ("u8", np.zeros((0, 5), dtype=np.uint8), "raw", None, None),
        ("u16", np.array([65535], dtype=np.uint16), "raw", None, None),
        ("u32", np.arange(3 * 5 * 1, dtype=np.uint32).reshape(3, 5, 1), "raw", None, None),
        ("u64", np.array([2**64 - 1], dtype=np.uint64), "raw", None, None),
        ("mask", np.array([[True, False, True]]), "raw", "other", None),
        ("rank8", np.arange(2, dtype=np.float32).reshape(1, 1, 1, 1, 1, 1, 1, 2), "raw", None, None),
    ]
    rng = np.random.default_rng(7)
    yield "003-zstd", "zstd layers (re-encoding is byte-identical only with the same libzstd)", {
        "model": "golden"}, [
        ("encoder.weight", (rng.standard_normal((33, 17)) * 0.05).astype(np.float32), "zstd", None, None),
        ("encoder.bias", np.zeros(33, dtype=np.float32), "zstd", None, None),
        ("empty", np.zeros((4, 0), dtype=np.int16), "zstd", None, None),
        ("scalar", np.array(7, dtype=np.uint8), "zstd", None, None),
    ]
    yield "004-unicode-names", "unicode and control-character names, every kind", {
        "ключ": "значение", "emoji 🎉": 1}, [
        ("слой.weight", np.ones((2, 2), np.float32), "raw", "weight", None),
        ("tab\tnew\nline\x1b[31m", np.ones(1, np.float32), "raw", "bias", None),
        ("\u202eevil", np.ones(1, np.float32), "raw", "norm", None),
        ("", np.ones((1, 3), np.float32), "raw", "embedding", None),
    ]


def _quantized_vectors():
    rng = np.random.default_rng(11)
    w = (rng.standard_normal((12, 10)) * 0.05 * np.exp(rng.normal(0, 0.4, (12, 1)))).astype(np.float32)
    yield "005-quantized-entropy", "format 1.1: quantized layers (every method, per channel, global set) and entropy layers", {
        "note": "global quantization bits=6"}, [
        ("q.tensor", w, "quantized", "weight", None, {}),
        ("q.channel", w, "quantized", "weight", None, {"granularity": "channel", "bits": 8}),
        ("q.zp", w, "quantized", "weight", None, {"method": "uniform_zp", "bits": 4}),
        ("q.codebook", w, "quantized", "weight", None, {"method": "codebook", "bits": 3}),
        ("q.fp16.step", w.astype(np.float16), "quantized", "weight", None, {"step": 2 ** -7}),
        ("q.axis1", w, "quantized", "weight", None, {"granularity": "channel", "axis": 1, "bits": 5}),
        ("e.int8", np.clip(np.rint(rng.laplace(0, 9, (6, 7))), -128, 127).astype(np.int8), "entropy", None, None, {}),
        ("e.big", np.array([0, 5, -(2 ** 63), 2 ** 63 - 1, 300], dtype=np.int64), "entropy", None, None, {}),
        ("e.mask", rng.random((4, 4)) < 0.3, "entropy", "other", None, {}),
        ("e.empty", np.zeros((0, 2), np.uint16), "entropy", None, None, {}),
    ], {"bits": 6}


def _ternary_vectors():
    from codec.ternary import ternarize

    rng = np.random.default_rng(13)
    example = np.array([0, 0, 1, 0, 0, 0, -1, 1, 0, 0, 0, 0, 0, 1, 0, 0], dtype=np.int8)
    w = ternarize(rng.standard_normal((6, 10)).astype(np.float32), axis=0)
    sparse = np.zeros((8, 32), np.float32)
    sparse[rng.random((8, 32)) < 0.05] = 0.125
    yield "006-ternary", "format 1.1: ternary layers; 'example' is the worked example of spec 6.6.2", {}, [
        ("example", example, "ternary", "weight", None, {"scheme": "flag"}),
        ("w.flag", w, "ternary", "weight", None, {"scheme": "flag", "axis": 0}),
        ("w.base3", w, "ternary", "weight", None, {"scheme": "base3", "axis": 0}),
        ("w.entropy", w, "ternary", "weight", None, {"scheme": "entropy", "axis": 0}),
        ("sparse.auto", sparse, "ternary", "weight", None, {}),
        ("odd", np.array([1, -1, 0, 1, -1], np.int8), "ternary", "other", None, {"scheme": "flag"}),
    ]


def _floatplanes_vectors():
    rng = np.random.default_rng(17)
    rows = (rng.standard_normal((24, 40)) * np.exp(rng.normal(-3, 0.5, (24, 1)))).astype(np.float32)
    special = np.array([[0.0, -0.0, np.inf, -np.inf], [np.nan, 1e-45, -3.4e38, 1.0]], np.float32)
    smooth = np.repeat(np.linspace(-1, 1, 64, dtype=np.float32)[None], 64, axis=0)  # planes that zstd shrinks
    yield "007-floatplanes", "format 1.1: floatplanes layers of every float dtype (int8 and int16 exponent paths, " \
        "raw and zstd planes), empty and scalar", {}, [
        ("f32.rows", rows, "floatplanes", "weight", None, {}),
        ("f32.special", special, "floatplanes", "other", None, {}),
        ("f32.smooth", smooth, "floatplanes", "weight", None, {"level": 19}),
        ("f64", rows[:5].astype(np.float64), "floatplanes", "weight", None, {}),
        ("f16", rows[:7].astype(np.float16), "floatplanes", "weight", None, {}),
        ("bf16", _bf16_bits(rows[:6].reshape(-1)).reshape(6, 40), "floatplanes", "weight", "bfloat16", {}),
        ("empty", np.zeros((3, 0), np.float32), "floatplanes", "other", None, {}),
        ("scalar", np.array(-2.5, np.float16), "floatplanes", "other", None, {}),
    ]


def _sparse_vectors():
    rng = np.random.default_rng(19)
    w = rng.standard_normal((8, 32)).astype(np.float32)
    keep = rng.random((8, 32)) < 0.3
    bitmap = np.where(keep, w, 0).astype(np.float32)
    nm = np.where(codec.masks.prune_nm(w, 2, 4), w, 0).astype(np.float32)
    nm_axis0 = np.where(codec.masks.prune_nm(w, 1, 4, axis=0), w, 0).astype(np.float32)
    groups = np.zeros((8, 8, 4), bool)  # hierarchical: 1 of 2 units of 4 kept, 2 of 4 in a kept unit
    for r in range(8):
        for b in range(4):
            groups[r, 2 * b + rng.integers(0, 2), rng.choice(4, 2, replace=False)] = True
    hier = np.where(groups.reshape(8, 32), w, 0).astype(np.float32)
    ints = rng.integers(1, 500, (12, 16)).astype(np.int16) * rng.choice([-1, 1], (12, 16)).astype(np.int16)
    hybrid_mask = np.ones((12, 16), bool)
    hybrid_mask[4:8] = codec.masks.prune_nm(rng.standard_normal((4, 16)), 2, 4)
    hybrid_mask[8:] = codec.masks.prune_nm(rng.standard_normal((4, 16)), 2, 4)
    hybrid = np.where(hybrid_mask, ints, 0).astype(np.int16)
    trits = np.where(keep, np.sign(w) * 0.25, 0).astype(np.float32)
    yield "008-sparse", "format 1.1: sparse layers of every mask kind (bitmap, N:M along the last axis and axis 0, " \
        "hierarchical, hybrid) and several value modes (raw, quantized with a local qp_set, entropy, floatplanes, " \
        "ternary with its parameter block)", {}, [
        ("bitmap.raw", bitmap, "sparse", "weight", None, {}),
        ("nm.quantized", nm, "sparse", "weight", None, {"nm": [2, 4], "values_mode": "quantized", "bits": 6}),
        ("nm.axis0.entropy", np.where(nm_axis0 != 0, 7, 0).astype(np.int8), "sparse", "weight", None,
         {"nm": [1, 4], "axis": 0, "values_mode": "entropy"}),
        ("hierarchical.floatplanes", hier, "sparse", "weight", None,
         {"nm": [[1, 2], [2, 4]], "values_mode": "floatplanes"}),
        ("hybrid.entropy", hybrid, "sparse", "weight", None, {"nm": [2, 4], "hybrid": 4, "values_mode": "entropy"}),
        ("bitmap.ternary", trits, "sparse", "weight", None, {"values_mode": "ternary"}),
        ("all.dropped", np.zeros((2, 5), np.float32), "sparse", "other", None, {}),
    ]


def _levels_v2_vectors():
    rng = np.random.default_rng(29)
    w = (rng.standard_normal((64, 72)) * 0.05 * np.exp(rng.normal(0, 0.5, (64, 1)))).astype(np.float32)
    small = np.clip(np.rint(rng.laplace(0, 2, (9, 13))), -20, 20).astype(np.int8)
    mid = np.clip(np.rint(rng.laplace(0, 6, (40, 40))), -300, 300).astype(np.int16)
    mid[3, 5], mid[30, 1] = -30000, 32767  # escapes
    trits = np.where(rng.random((20, 64)) < 0.5, 0, rng.choice([-1, 1], (20, 64))).astype(np.int8)
    planes = (rng.standard_normal((16, 48)) * 0.1).astype(np.float32)
    values = np.where(rng.random((12, 40)) < 0.25, rng.standard_normal((12, 40)), 0).astype(np.float32)
    yield "010-levels-v2", "format 2.0: the level coder of spec 7.4 (2, 4 and 8 states as the reference encoder " \
        "chooses them by layer size) in every mode that codes levels", {}, [
        ("entropy.s2", small, "entropy", None, None, {}),
        ("entropy.s4", mid, "entropy", None, None, {}),
        ("quantized.s8", w, "quantized", "weight", None, {"step": 2 ** -7}),
        ("quantized.channel", w[:20], "quantized", "weight", None, {"bits": 5, "granularity": "channel"}),
        ("ternary.entropy", trits, "ternary", None, None, {"scheme": "entropy"}),
        ("floatplanes", planes, "floatplanes", None, None, {}),
        ("sparse.bitmap", values, "sparse", None, None, {"values_mode": "quantized", "bits": 6}),
    ]


def _levels_adaptive_vectors():
    # convolution-like layers at a coarse step: where the adaptive contexts of spec 7.5 pay
    rng = np.random.default_rng(31)
    conv = (rng.standard_normal((24, 16, 3, 3)) * np.exp(rng.normal(0, 0.7, (24, 16, 1, 1))) * 0.05).astype(np.float32)
    local = np.repeat(rng.laplace(0, 3, (30, 6)), 8, axis=1) * rng.random((30, 48))
    ints = np.clip(np.rint(local), -100, 100).astype(np.int8)
    ints[4, 7] = 127
    trits = np.where(np.repeat(rng.random((32, 12)) < 0.3, 6, axis=1) * rng.random((32, 72)) > 0.2,
                     rng.choice([-1, 1], (32, 72)), 0).astype(np.int8)
    yield "012-levels-adaptive", "format 2.1: adaptive binary contexts (lc_model 1, spec 7.5) where the reference " \
        "encoder finds them >= 1% smaller than static tables, static tables elsewhere", {}, [
        ("conv.step4", conv, "quantized", "weight", None, {"step": 2 ** -4}),
        ("conv.step6", conv, "quantized", "weight", None, {"step": 2 ** -6}),
        ("conv.channel", conv, "quantized", "weight", None, {"bits": 4, "granularity": "channel"}),
        ("entropy.local", ints, "entropy", None, None, {}),
        ("ternary.entropy", trits, "ternary", None, None, {"scheme": "entropy"}),
        ("noise.static", np.rint(rng.laplace(0, 4, (8, 300))).astype(np.int16), "entropy", None, None, {}),
    ]


def _dq_vectors():
    rng = np.random.default_rng(37)
    conv = (rng.standard_normal((16, 8, 3, 3)) * np.exp(rng.normal(0, 0.6, (16, 1, 1, 1))) * 0.05).astype(np.float32)
    dense = (rng.laplace(0, 0.03, (12, 40))).astype(np.float32)
    values = np.where(rng.random((10, 32)) < 0.3, rng.standard_normal((10, 32)) * 0.1, 0).astype(np.float32)
    yield "013-dq", "format 2.2: dependent quantization (coding mode 7, spec 6.8 and 8.5): per tensor and per " \
        "channel steps (axis 0 and another axis), every float dtype, a vector (one row), an empty tensor and the " \
        "kept values of a sparse layer", {}, [
        ("conv.step", conv, "dq", "weight", None, {"step": 2 ** -4}),
        ("conv.channel", conv, "dq", "weight", None, {"bits": 4, "granularity": "channel"}),
        ("conv.axis1", conv, "dq", "weight", None, {"step": 2 ** -5, "granularity": "channel", "axis": 1}),
        ("dense.f16", dense.astype(np.float16), "dq", "weight", None, {"step": 2 ** -6, "qp_density": 2}),
        ("dense.bf16", _bf16_bits(dense[:3].reshape(-1)).reshape(3, 40), "dq", "weight", "bfloat16", {"bits": 3}),
        ("dense.f64", dense[3:5].astype(np.float64), "dq", "weight", None, {"step": 2 ** -7, "dq_lambda": 0.0}),
        ("vector", dense[5], "dq", "bias", None, {"step": 2 ** -5}),
        ("empty", np.zeros((0, 4), np.float32), "dq", "weight", None, {"step": 2 ** -5}),
        ("sparse.values", values, "sparse", None, None, {"values_mode": "dq", "step": 2 ** -5}),
    ]


def _metadata_unit_vectors():
    """(name, description, metadata, layers, quantization, unit_metadata): the quality report the
    encoder stores, as encode_file measures it, and a second metadata unit after it."""
    from codec import quality

    rng = np.random.default_rng(41)
    w = rng.laplace(0, 0.05, (12, 20)).astype(np.float32)
    t = rng.standard_normal((8, 16)).astype(np.float32)
    layers = [
        ("fc.weight", w, "dq", "weight", None, {"step": 2 ** -5}),
        ("fc.bias", w[0], "floatplanes", "bias", None),
        ("tern.weight", t, "ternary", "weight", None, {"threshold": 0.7}),
    ]
    decoded = codec.decode(build({}, layers))
    report = quality.to_metadata([quality.layer_quality(n, m, a, decoded[n]) for n, a, m, *_ in layers
                                  if m not in quality.LOSSLESS_MODES])
    yield "014-metadata-unit", "format 2.3: metadata units (spec 5.7) after the layers: the encoder's quality " \
        "report (codec.quality) and a second unit with typed values; the file's metadata is the network " \
        "header's entries, then the units'", {"model": "golden"}, layers, None, \
        [{quality.METADATA_KEY: report}, {"note": "late", "scores": [1, 2.5, True]}]


def _pq_vectors():
    rng = np.random.default_rng(43)
    dense = (rng.laplace(0, 0.03, (12, 40))).astype(np.float32)
    conv = (rng.standard_normal((8, 3, 3, 3)) * 0.1).astype(np.float32)
    yield "015-pq", "format 2.4: product quantization (coding mode 8, spec 6.9): one and two stages, float16 and " \
        "float32 codebooks, a vector dimension that does not divide the rows (one row of indices), a last vector " \
        "cut short, more than 255 centroids (escaped indices), every float dtype, an empty tensor", {}, [
        ("dense.d4", dense, "pq", "weight", None, {"dim": 4, "centroids": 16}),
        ("dense.residual", dense, "pq", "weight", None, {"dim": 4, "centroids": 8, "stages": 2}),
        ("dense.f32", dense[:4], "pq", "weight", None, {"dim": 2, "bits": 3, "codebook": "float32"}),
        ("conv.d2", conv, "pq", "weight", None, {"dim": 2, "centroids": 12}),
        ("odd", dense.reshape(-1)[:37], "pq", "bias", None, {"dim": 8, "centroids": 3}),
        ("many", rng.standard_normal((30, 40)).astype(np.float32), "pq", "weight", None, {"dim": 2, "centroids": 400}),
        ("f16", dense[:2].astype(np.float16), "pq", "weight", None, {"dim": 4, "centroids": 5}),
        ("f64", dense[2:4].astype(np.float64), "pq", "weight", None, {"dim": 5, "centroids": 6}),
        ("bf16", _bf16_bits(dense[4:6].reshape(-1)).reshape(2, 40), "pq", "weight", "bfloat16", {"dim": 4, "centroids": 9}),
        ("empty", np.zeros((0, 4), np.float32), "pq", "weight", None, {}),
    ]


def _lowrank_vectors():
    from codec.lowrank import factorize

    rng = np.random.default_rng(53)
    conv = (rng.standard_normal((16, 4)) @ rng.standard_normal((4, 27)) * 0.05).astype(np.float32).reshape(16, 3, 3, 3)
    dense = rng.laplace(0, 0.05, (8, 12)).astype(np.float32)
    # the factors are given (factors=): LAPACK's SVD may round differently on another machine
    c1, z1 = factorize(conv.reshape(16, 27), 4, 0.5)
    c2, z2 = factorize(dense, 3, 1.0)
    yield "018-lowrank-sparse", "format 2.6: quantized sparse weight decomposition (coding mode 10, spec 6.11): a " \
        "convolution as C (16 x 4, quantized per row) @ Z (4 x 27, half its entries kept), a dense layer as rank 3 " \
        "with a dense Z, bfloat16 output", {}, [
        ("conv.weight", conv, "lowrank_sparse", "weight", None, {"factors": (c1, z1), "c_bits": 6, "z_bits": 5}),
        ("dense.weight", _bf16_bits(dense.reshape(-1)).reshape(8, 12), "lowrank_sparse", "weight", "bfloat16",
         {"factors": (c2, z2)}),
    ]


#: a delta vector's base vector (name, bytes), by the delta vector's name
_BASES: dict[str, tuple[str, bytes]] = {}


def _delta_vectors():
    from codec import delta

    rng = np.random.default_rng(47)
    w = rng.laplace(0, 0.05, (16, 24)).astype(np.float32)
    bias = rng.standard_normal(16).astype(np.float32)
    counts = rng.integers(-300, 300, (4, 6)).astype(np.int16)
    mask = rng.random((3, 5)) < 0.5
    old = rng.standard_normal((5, 4)).astype(np.float32)
    same = rng.standard_normal((2, 3)).astype(np.float32)
    base_layers = [
        ("fc.weight", w, "quantized", "weight", None, {"step": 2 ** -6}),
        ("fc.bias", bias, "floatplanes", "bias", None),
        ("counts", counts, "entropy", None, None),
        ("mask", mask, "entropy", None, None),
        ("old.weight", old, "raw", "weight", None),
        ("same.weight", same, "zstd", "weight", None),
    ]
    yield "016-delta-base", "format 2.5: the base model of 017-delta (an ordinary bitstream)", {"model": "base"}, \
        base_layers
    base_data = build({"model": "base"}, base_layers)
    decoded = codec.decode(base_data)
    fc_diff = (rng.standard_normal((16, 24)) * 0.002).astype(np.float32)
    new_counts = counts.copy()
    new_counts[1, 2] = 32767  # the difference wraps
    new_counts[0, 0] = -32768
    new_mask = mask.copy()
    new_mask[2, 4] = not new_mask[2, 4]
    layers = [
        ("fc.weight", fc_diff, "delta", "weight", None, {"delta_mode": "quantized", "step": 2 ** -10}),
        ("fc.bias", (bias + 0.5).astype(np.float32), "floatplanes", "bias", None),
        ("counts", new_counts - counts, "delta", None, None, {"delta_mode": "entropy"}),
        ("mask", np.logical_xor(new_mask, mask), "delta", None, None, {"delta_mode": "raw"}),
        ("new.weight", rng.standard_normal((3, 3)).astype(np.float16), "raw", "weight", None),
    ]
    _BASES["017-delta"] = ("016-delta-base", base_data)
    yield "017-delta", "format 2.5: a delta bitstream (spec 10.1) of 016-delta-base: a quantized difference (mode 9 " \
        "over quantized), an int16 difference that wraps (over entropy), a bool xor (over raw), a float layer stored " \
        "whole, a new layer, a removed layer (codec.delta.removed) and an unchanged one (absent); `applied` is the " \
        "decoded model", {"model": "update", delta.BASE_KEY: delta.content_digest(decoded),
                          delta.REMOVED_KEY: ["old.weight"]}, layers


def describe(name, description, metadata, layers, data: bytes, quantization=None, unit_metadata=()) -> dict:
    out = {
        "description": description,
        "format_version": "{}.{}".format(*codec.open(data).version),
        "zstd_version": zstandard.ZSTD_VERSION,
        "file_bytes": len(data),
        "metadata": {k: _json_value(v) for k, v in codec.format.normalize_metadata(metadata).items()},
        "layers": [],
    }
    if quantization:
        out["quantization"] = quantization
    if unit_metadata:
        out["unit_metadata"] = [{k: _json_value(v) for k, v in codec.format.normalize_metadata(m).items()}
                                for m in unit_metadata]
    base_name, base_data = _BASES.get(name, (None, None))
    decoded = codec.decode(data) if base_data is None else codec.decode(data, base=base_data)
    if base_data is not None:  # a delta bitstream: its base vector and the model it decodes to
        out["base_vector"] = base_name
        out["applied"] = [{"name": k, "dtype": v.dtype.name, "shape": list(v.shape),
                           "data_hex": (v.view(np.uint16) if v.dtype.name == "bfloat16" else v)
                           .astype(v.dtype.newbyteorder("<") if v.dtype.name != "bfloat16" else "<u2").tobytes().hex()}
                          for k, v in decoded.items()]
    for layer, array, mode, kind, dtype, *rest in layers:
        params = rest[0] if rest else {}

        def le_hex(a):
            a = np.asarray(a)
            if a.dtype.name == "bfloat16":
                a = a.view(np.uint16)
            return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes().hex()

        entry = {
            "name": layer,
            "kind": kind or codec.writer.guess_kind(layer, array).name.lower(),
            "dtype": dtype or array.dtype.name,
            "shape": list(array.shape),
            "mode": mode,
            "data_hex": le_hex(decoded[layer] if mode != "delta" else codec.open(data).get_difference(layer)),
        }
        if params:
            entry["params"] = {k: v for k, v in params.items() if k != "factors"}
            if "factors" in params:  # arrays: as little-endian float32 bytes and their shapes
                entry["factors"] = [{"shape": list(np.shape(f)), "hex": le_hex(np.asarray(f, np.float32))}
                                    for f in params["factors"]]
        if mode == "pq":  # the encoder's centroids (as stored) and indices, stage by stage
            entry["input_hex"] = le_hex(array)
            with codec.open(data) as r:
                stages = r.get(layer, levels=True)
            entry["stages"] = [{"codebook_hex": le_hex(s.codebook), "indices": s.indices.tolist()} for s in stages]
        elif mode in ("quantized", "dq"):
            entry["input_hex"] = le_hex(array)
            with codec.open(data) as r:
                levels, _ = r.get(layer, levels=True)
            entry["levels"] = levels.reshape(-1).tolist()
        elif le_hex(array) != entry["data_hex"]:  # lossy values (a sparse layer's quantized values)
            entry["input_hex"] = le_hex(array)
        out["layers"].append(entry)
    return out


def build(metadata, layers, quantization=None, format_version=None, unit_metadata=()) -> bytes:
    import io

    buf = io.BytesIO()
    with codec.Writer(buf, metadata=metadata, quantization=quantization, format_version=format_version) as w:
        for layer, array, mode, kind, dtype, *rest in layers:
            w.add_layer(layer, array, mode=mode, kind=kind, dtype=dtype, **(rest[0] if rest else {}))
        for entries in unit_metadata:
            w.append_metadata(entries)
    return buf.getvalue()


def main() -> int:
    os.makedirs(VECTOR_DIR, exist_ok=True)
    for name, description, metadata, layers, *rest in [*_vectors(), *_quantized_vectors(), *_ternary_vectors(),
                                                        *_floatplanes_vectors(), *_sparse_vectors(),
                                                        *_levels_v2_vectors(), *_levels_adaptive_vectors(),
                                                        *_dq_vectors(), *_metadata_unit_vectors(), *_pq_vectors(),
                                                        *_delta_vectors(), *_lowrank_vectors()]:
        quantization = rest[0] if rest else None
        unit_metadata = rest[1] if len(rest) > 1 else ()
        bin_path = os.path.join(VECTOR_DIR, f"{name}.nnc")
        json_path = os.path.join(VECTOR_DIR, f"{name}.json")
        if os.path.exists(bin_path) or os.path.exists(json_path):
            print(f"keep    {name} (exists; vectors are append-only)")
            continue
        # the vectors written while the format was 1.x are 1.x files (the writer bumps the minor)
        data = build(metadata, layers, quantization, (1, 0) if name < "010" else (2, 0) if name < "012" else None,
                     unit_metadata)
        with open(bin_path, "wb") as f:
            f.write(data)
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(describe(name, description, metadata, layers, data, quantization, unit_metadata), f, indent=1,
                      ensure_ascii=True)
            f.write("\n")
        print(f"wrote   {name} ({len(data)} bytes)")
    from hand_vectors import write_hand_built

    write_hand_built(VECTOR_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
