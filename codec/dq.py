"""Dependent quantization (spec 8.5): the encoder's trellis search and the decoder's reconstruction.

A dq layer stores levels k and a step Delta; along each row of the level grid an 8-state machine
picks, for every weight, one of two quantizers: Q0 (the even multiples of Delta) or Q1 (zero and
the odd multiples). The encoder chooses the levels of a whole row jointly (a Viterbi search on
squared error + lambda * estimated bits), which places reconstruction points more densely than one
scalar quantizer of the same rate: at equal size the error is smaller (MPEG NNR's dependent
quantization; 3-6% fewer bits than uniform rounding at equal quality in ``bench/bench_rd.py``).

The user's ``step`` is that of the uniform quantizer a dq layer replaces, each of Q0 and Q1 alone
has that spacing; the stored step (the qp of spec 8.2) is Delta = step / 2, the spacing of their union.
"""

from __future__ import annotations

import math

import numpy as np

from . import _backend
from .errors import EncodeError
from .kernels import raise_status
from .levels import level_grid
from .quant import (DEFAULT_DENSITY, GRANULARITIES, MAX_DENSITY, MIN_STEP, QuantParams, _channel_view, qp_for_step,
                    step_of_qp)

__all__ = ["DEFAULT_LAMBDA", "PASSES", "quantize_dq", "reconstruct", "dequantize"]

#: Lambda of the trellis cost, in units of Delta^2 per bit. Swept over 0.1..1.0 on MiniLM (bits at
#: equal embedding cosine and at equal weight error) and YOLOv8n (equal weight error): 0.3 was the
#: best or within 1% of the best at every step from 2^-8 to 2^-4; larger trades error for bits.
DEFAULT_LAMBDA = 0.3
#: Trellis passes: the first estimates bits from uniform rounding, each next from the previous levels.
PASSES = 2
#: the largest level magnitude (bits <= 16, as for the quantized mode)
_MAX_LEVEL = (1 << 15) - 1
#: bits charged for a level the previous pass never produced
_UNSEEN_EXTRA = 1.0
#: the most bits the trellis charges a level of magnitude 1 beyond a zero: see rate_table
NONZERO_EXTRA_MAX = 2.0


def rate_table(levels: np.ndarray, limit: int) -> np.ndarray:
    """Estimated bits of each level -limit..limit: the order-0 code length of ``levels``' histogram
    (a level never seen costs one bit more than the rarest seen), with levels -1 and 1 charged at most
    NONZERO_EXTRA_MAX bits more than 0.

    Why the cap: in a tensor whose weights are small against the step, rounding leaves most levels
    zero, so a non-zero level is rare and expensive, so the trellis zeroes more of them, and the next
    pass makes them rarer still. Without it the last feed-forward matrices of paraphrase-MiniLM-L3-v2
    (weights 4x smaller than the other layers') came out 97-99.5% zero at step 2^-5, with an error
    of 90% of their own magnitude (NNCodec with DQ: 60%); what is right for the squared error of
    the whole model erased the function of those layers. Tensors with a few percent of zeros never
    reach the cap."""
    counts = np.bincount(np.clip(levels.reshape(-1), -limit, limit) + limit, minlength=2 * limit + 1)
    total = counts.sum()
    bits = np.empty(2 * limit + 1)
    seen = counts > 0
    bits[seen] = -np.log2(counts[seen] / total) if total else 0.0
    bits[~seen] = (bits[seen].max() if seen.any() else 0.0) + _UNSEEN_EXTRA
    if limit >= 1:
        bits[[limit - 1, limit + 1]] = np.minimum(bits[[limit - 1, limit + 1]], bits[limit] + NONZERO_EXTRA_MAX)
    return bits


def column_weights(importance, shape: tuple[int, ...], cols: int) -> np.ndarray | None:
    """Per-column float64 weights of the level grid from per-input-channel or per-column importances
    (scaled to mean 1; None without importances or when they are all zero)."""
    if importance is None:
        return None
    imp = np.asarray(importance, dtype=np.float64).reshape(-1)
    if not np.isfinite(imp).all() or (imp < 0).any():
        raise EncodeError("importance must be finite and non-negative")
    if imp.size == cols:
        weight = imp
    elif len(shape) >= 2 and imp.size == shape[1] and cols % max(shape[1], 1) == 0:
        weight = np.repeat(imp, cols // shape[1]) if shape[1] else imp
    else:
        raise EncodeError(f"importance has {imp.size} entries; a tensor of shape {tuple(shape)} needs one per input "
                          f"channel ({shape[1] if len(shape) >= 2 else '-'}) or per column ({cols})")
    mean = weight.mean() if weight.size else 0.0
    return np.ascontiguousarray(weight / mean) if mean > 0 else None


def quantize_dq(w: np.ndarray, *, bits: int | None = None, step: float | None = None, granularity: str = "tensor",
                axis: int = 0, qp_density: int = DEFAULT_DENSITY, dq_lambda: float = DEFAULT_LAMBDA,
                importance=None) -> tuple[np.ndarray, QuantParams]:
    """Quantize a float array with the trellis; return (int64 levels of its shape, the complete
    local QuantParams: method uniform, the steps Delta = step / 2).

    ``step`` (rounded to the qp grid) or ``bits`` (|level| <= 2^(bits-1) - 1, the step the smallest
    grid step that reaches the largest magnitude, per tensor or per channel) as in the quantized
    mode; ``dq_lambda`` weighs estimated bits against squared error in units of Delta^2.
    ``importance``: non-negative weights of the squared error per input channel (``shape[1]``
    entries, each covering the columns of its channel) or per column of the level grid, for
    instance the mean squared activation feeding each input (:func:`codec.torch.collect_importance`);
    scaled to mean 1, so that lambda keeps its meaning.
    """
    if granularity not in GRANULARITIES:
        raise EncodeError(f"granularity must be 'tensor' or 'channel', got {granularity!r}")
    if not 0 <= qp_density <= MAX_DENSITY:
        raise EncodeError(f"qp_density must be in 0..{MAX_DENSITY}")
    if bits is not None and not 2 <= bits <= 16:
        raise EncodeError(f"bits must be in 2..16 for dq, got {bits}")
    w = np.asarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise EncodeError("cannot quantize NaN or infinite values")
    if granularity == "channel" and (w.ndim < 2 or w.size == 0):
        granularity = "tensor"
    if granularity == "channel" and not 0 <= axis < w.ndim:
        raise EncodeError(f"axis {axis} does not exist in a tensor of rank {w.ndim}")
    if bits is None and step is None:
        bits = 8
    ch = _channel_view(w, granularity, axis)
    top = (1 << (bits - 1)) - 1 if bits else None
    half = 1 << qp_density  # qp - 2^d halves the step exactly (spec 8.2)
    if step is not None:
        qps = [qp_for_step(step, qp_density) - half] * ch.shape[0]
    else:
        amax = np.abs(ch).max(axis=1) if ch.size else np.zeros(ch.shape[0])
        qps = [qp_for_step(max(a / top, 2 * MIN_STEP) if a > 0 else 1.0, qp_density, at_least=True) - half
               for a in amax]
    for qp in qps:
        if not -126 <= math.floor(qp / half) <= 127:
            raise EncodeError(f"step {step_of_qp(qp + half, qp_density)} is out of range for dq: its half must be a "
                              "normal float32 number")
    deltas = np.array([step_of_qp(q, qp_density) for q in qps])
    # x = w / Delta in the layout of the level grid (rows = dim 0), whatever the channel axis
    if granularity == "channel":
        view = [1] * w.ndim
        view[axis] = -1
        x = w / deltas.reshape(view)
    else:
        x = w / deltas[0]
    shape = w.shape
    x = np.ascontiguousarray(x.reshape(level_grid(shape)))
    if top is None:
        # step given: levels as large as the largest magnitude needs, the width recorded in bits
        need = int(np.floor(np.abs(x).max() * 0.5)) if x.size else 0
        if need > _MAX_LEVEL:
            raise EncodeError(f"step {step} gives levels of {need.bit_length() + 1} bits; the limit is 16 "
                              "(use a larger step)")
        limit = min(need + 1, _MAX_LEVEL)
    else:
        limit = top
    weight = column_weights(importance, shape, x.shape[1])
    levels = np.clip(np.rint(x * 0.5), -limit, limit).astype(np.int64)
    for _ in range(PASSES):
        lam_rate = dq_lambda * rate_table(levels, limit)
        levels = _backend.trellis.quantize(x, lam_rate, limit, weight)
    if top is None:
        bits = max(2, int(np.abs(levels).max()).bit_length() + 1) if levels.size else 2
    per_channel = granularity == "channel"
    params = QuantParams(method="uniform", bits=bits, granularity=granularity, axis=axis if per_channel else 0,
                         qp_density=qp_density, qps=tuple(qps) if per_channel else (qps[0],))
    return levels.reshape(shape), params


def dequantize(levels: np.ndarray, rows: int, cols: int, steps: np.ndarray, *, path: str,
               base_offset: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """The float32 values of decoded levels (int64, C order) with one step per row (spec 8.5, 8.4), into ``out``
    (a flat float32 array of as many elements) if given."""
    if out is None:
        out = np.empty(levels.size, dtype=np.float32)
    status, at, value = _backend.trellis.dequantize(levels, rows, cols, np.ascontiguousarray(steps, np.float32), out)
    if status:
        raise_status(_backend.trellis.ERRORS, status, at, value, path=path, base_offset=base_offset)
    return out


def reconstruct(levels: np.ndarray, rows: int, cols: int, *, path: str, base_offset: int = 0) -> np.ndarray:
    """Turn decoded levels (int64, C order, in place) into the multiples q of Delta (spec 8.5)."""
    status, at, value = _backend.trellis.reconstruct(levels, rows, cols)
    if status:
        raise_status(_backend.trellis.ERRORS, status, at, value, path=path, base_offset=base_offset)
    return levels
