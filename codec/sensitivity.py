"""Per-layer sensitivity: how much a model's output moves per unit of squared weight error in each layer,
and the step of each layer that follows from it.

Equal steps give the least total *weight* error for a size, but layers matter unequally to the output:
on all-MiniLM-L6-v2 the word embedding (half the weights) moves the sentence embeddings 30-60x less per
unit of squared error than the encoder's matrices, and the token-type embedding ~1000x more. Giving each
layer a step in proportion to ``1 / sqrt(sensitivity)`` equalises the output error's rate-distortion
slopes (the high-rate optimum); clipped to a factor ``clip`` either way, because the high-rate model
fails at very coarse steps. bench/bench_rd.py measures what it buys at equal embedding quality.

The sensitivities are measured on calibration data: :func:`measure` (any model as a numpy function of its
tensors) or :func:`codec.torch.collect_sensitivity` (a torch module). They are stored as a JSON object
``{name: sensitivity}`` (:func:`save`, :func:`load`) and used by ``codec encode --sensitivity FILE``,
``encode_file(sensitivity=...)`` and a policy's ``sensitivity = "FILE"``: each layer whose policy action
is mode ``quantized`` or ``dq`` with ``step=`` gets ``step * scale`` (on the step grid).
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any, Callable, Mapping

import numpy as np

from .errors import EncodeError

__all__ = ["DEFAULT_CLIP", "DEFAULT_REL_NOISE", "measure", "step_scales", "load", "save"]

_log = logging.getLogger("codec")

#: the largest factor by which a layer's step moves from the median layer's, either way
DEFAULT_CLIP = 4.0
#: the noise of a measurement: this fraction of the layer's RMS (small: the output stays in its linear range)
DEFAULT_REL_NOISE = 0.01


def measure(tensors: Mapping[str, np.ndarray], forward: Callable[[dict], Any], /, *, names=None,
            rel_noise: float = DEFAULT_REL_NOISE, seed: int = 0, progress=None) -> dict[str, float]:
    """The sensitivity of each tensor in ``names`` (default: the float tensors of rank >= 2): the mean
    squared change of ``forward(tensors)`` (the model's outputs on calibration data, any array) when
    Gaussian noise of ``rel_noise`` times the tensor's RMS is added to it, per unit of the noise's sum of
    squares. One forward pass per tensor, plus one for the reference; ``progress(name)`` after each."""
    if not (rel_noise > 0 and math.isfinite(rel_noise)):
        raise ValueError(f"rel_noise must be a positive finite number, got {rel_noise!r}")
    tensors = dict(tensors)
    if names is None:
        names = [k for k, v in tensors.items() if np.asarray(v).ndim >= 2 and np.asarray(v).dtype.kind == "f"]
    reference = np.asarray(forward(tensors), dtype=np.float64)
    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        w = np.asarray(tensors[name])
        rms = float(np.sqrt(np.mean(np.square(w, dtype=np.float64)))) if w.size else 0.0
        if rms == 0.0:
            out[name] = 0.0
            continue
        noise = (rng.standard_normal(w.shape) * (rel_noise * rms)).astype(w.dtype)
        sse = float(np.sum(np.square(noise, dtype=np.float64)))
        moved = np.asarray(forward({**tensors, name: w + noise}), dtype=np.float64)
        if moved.shape != reference.shape:
            raise ValueError(f"forward gave shape {moved.shape} with {name!r} perturbed, {reference.shape} without")
        out[name] = float(np.mean(np.square(moved - reference))) / sse if sse > 0 else 0.0
        if progress:
            progress(name)
    return out


def step_scales(sensitivity: Mapping[str, float], /, *, clip: float = DEFAULT_CLIP) -> dict[str, float]:
    """Each layer's step factor: ``sqrt(median / sensitivity)`` within ``[1 / clip, clip]`` (the median of
    the positive sensitivities; a layer of sensitivity 0 gets ``clip``)."""
    if not (clip >= 1 and math.isfinite(clip)):
        raise ValueError(f"clip must be a finite number >= 1, got {clip!r}")
    positive = sorted(v for v in sensitivity.values() if v > 0)
    if not positive:
        return {name: 1.0 for name in sensitivity}
    median = positive[len(positive) // 2]
    return {name: float(min(clip, max(1.0 / clip, math.sqrt(median / v)))) if v > 0 else float(clip)
            for name, v in sensitivity.items()}


def _check(items, where: str) -> dict[str, float]:
    out = {}
    for name, value in items:
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if not isinstance(name, str) or not (math.isfinite(v) and v >= 0):
            raise EncodeError(f"{where}: the sensitivity of {name!r} must be a finite number >= 0, got {value!r}")
        out[name] = v
    return out


def load(source) -> dict[str, float]:
    """Sensitivities by tensor name from a dict or a JSON file (``{name: value}``, as :func:`save` writes)."""
    if isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        try:
            with open(where, encoding="utf-8") as f:
                doc = json.load(f)
        except ValueError as exc:
            raise EncodeError(f"{where}: not a JSON object of sensitivities ({exc})") from None
        if not isinstance(doc, dict):
            raise EncodeError(f"{where}: not a JSON object of sensitivities")
        return _check(doc.items(), where)
    return _check(dict(source).items(), "sensitivity")


def save(sensitivity: Mapping[str, float], path: str | os.PathLike, /) -> None:
    """Write sensitivities as a JSON object (atomically)."""
    from .atomic import AtomicFile

    text = json.dumps(_check(dict(sensitivity).items(), "sensitivity"), indent=1) + "\n"
    out = AtomicFile(path, mode="wb")
    try:
        out.file.write(text.encode("utf-8"))
    except BaseException:
        out.abort()
        raise
    out.commit()
