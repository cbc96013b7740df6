"""What lossy coding did to each tensor: relative error and SQNR of the decoded values against the
original ones (before any policy preparation such as ternarization or pruning).

``encode_file`` (and so ``codec encode``) measures every layer whose mode is not lossless and logs a
warning for each one whose relative error exceeds :data:`WARN_REL_ERROR`; the CLI prints the table.
The report is stored in the file under :data:`METADATA_KEY` (a metadata unit, spec 5.7:
:func:`to_metadata`), where ``codec-dump`` reads it (:func:`from_metadata`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable

import numpy as np

from .dtypes import as_float

__all__ = ["LOSSLESS_MODES", "METADATA_KEY", "WARN_REL_ERROR", "LayerQuality", "layer_quality", "measure", "total",
           "warning_text", "warn_about", "to_metadata", "from_metadata"]

#: The metadata key of the report ``encode_file`` stores (in a metadata unit, spec 5.7).
METADATA_KEY = "codec.quality"

_log = logging.getLogger("codec")

#: Modes that reproduce their input exactly (nothing to measure).
LOSSLESS_MODES = frozenset({"raw", "zstd", "floatplanes", "entropy", "lossless"})  # lossless: the writer's default
#: A layer whose relative error exceeds this gets a warning: at 0.2 the weights keep less than
#: 14 dB of SQNR, where networks not trained for the setting (ternary, 2:4, 2-3 bits) lose accuracy.
WARN_REL_ERROR = 0.2


@dataclasses.dataclass(frozen=True)
class LayerQuality:
    """One layer: ``rel_error`` = ||w - w'|| / ||w||, ``sqnr_db`` = -20 log10(rel_error)
    (inf when exact), ``max_abs_error``; energies in float64 over the finite elements."""

    name: str
    mode: str
    elements: int
    rel_error: float
    sqnr_db: float
    max_abs_error: float
    signal_energy: float
    error_energy: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def layer_quality(name: str, mode: str, original, decoded, *, dtype=None) -> LayerQuality:
    """Compare one tensor with its decoded values (float64, finite elements only); ``dtype``: the
    layer's ``layer_dtype`` (bfloat16 tensors held as raw 16-bit patterns are widened first)."""
    a = np.asarray(as_float(np.asarray(original), dtype), dtype=np.float64).reshape(-1)
    b = np.asarray(as_float(np.asarray(decoded), dtype), dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"{name}: {a.size} original elements, {b.size} decoded")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    signal = float(np.dot(a, a))
    diff = a - b
    error = float(np.dot(diff, diff))
    rel = math.sqrt(error / signal) if signal > 0 else (0.0 if error == 0 else math.inf)
    sqnr = -20.0 * math.log10(rel) if 0 < rel < math.inf else (math.inf if rel == 0 else -math.inf)
    return LayerQuality(name, mode, int(keep.size), rel, sqnr, float(np.abs(diff).max()) if diff.size else 0.0,
                        signal, error)


def measure(originals: Iterable[tuple[str, np.ndarray]], reader, *, warn: bool = True) -> list[LayerQuality]:
    """The quality of every lossy layer of an open :class:`codec.Reader` (or a
    :class:`codec.Writer` that has written them: it reads them back) whose original tensor
    ``originals`` yields (name, array), one layer in memory at a time."""
    out = []
    for name, original in originals:
        if name not in reader:
            continue
        header = reader.header(name)
        if header.mode_name in LOSSLESS_MODES:
            continue
        q = layer_quality(name, header.mode_name, original, reader.get(name), dtype=header.layer_dtype)
        out.append(q)
    if warn:
        warn_about(out)
    return out


def warn_about(layers: Iterable[LayerQuality]) -> None:
    """Log a warning for each layer whose relative error exceeds :data:`WARN_REL_ERROR`."""
    for q in layers:
        if q.rel_error > WARN_REL_ERROR:
            _log.warning("%s", warning_text(q))


def total(layers: list[LayerQuality]) -> LayerQuality | None:
    """The energy-weighted total over ``layers`` (None when empty)."""
    if not layers:
        return None
    signal = sum(q.signal_energy for q in layers)
    error = sum(q.error_energy for q in layers)
    rel = math.sqrt(error / signal) if signal > 0 else 0.0
    return LayerQuality("(all lossy layers)", "-", sum(q.elements for q in layers), rel,
                        -20.0 * math.log10(rel) if rel > 0 else math.inf, max(q.max_abs_error for q in layers),
                        signal, error)


def warning_text(q: LayerQuality) -> str:
    return (f"layer {q.name!r} ({q.mode}): relative error {q.rel_error:.3f} (SQNR {q.sqnr_db:.1f} dB) exceeds "
            f"{WARN_REL_ERROR}; a network not trained for this setting (ternary, 2:4, 2-3 bits) usually loses "
            "accuracy: check the model, or use a finer step or more bits for this layer")


def _finite(x: float):
    return x if math.isfinite(x) else None


def _of_energies(name: str, mode: str, elements: int, signal, error, max_abs) -> LayerQuality:
    signal = math.inf if signal is None else float(signal)
    error = math.inf if error is None else float(error)
    rel = math.sqrt(error / signal) if 0 < signal < math.inf else (0.0 if error == 0 else math.inf)
    sqnr = -20.0 * math.log10(rel) if 0 < rel < math.inf else (math.inf if rel == 0 else -math.inf)
    return LayerQuality(name, mode, int(elements), rel, sqnr, math.inf if max_abs is None else float(max_abs),
                        signal, error)


def to_metadata(layers: list[LayerQuality]) -> str:
    """The report as the JSON text stored under :data:`METADATA_KEY`: ``{"format": 1,
    "warn_rel_error": ..., "layers": {name: [mode, elements, signal_energy, error_energy,
    max_abs_error]}}`` (energies: sums of squares in float64; null where not finite). Relative
    error and SQNR follow from the energies, totals from their sums."""
    import json

    doc = {"format": 1, "warn_rel_error": WARN_REL_ERROR,
           "layers": {q.name: [q.mode, q.elements, _finite(q.signal_energy), _finite(q.error_energy),
                               _finite(q.max_abs_error)] for q in layers}}
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


def from_metadata(text: str) -> list[LayerQuality]:
    """The layers of a report written by :func:`to_metadata`; ValueError when it is not one."""
    import json

    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("format") != 1 or not isinstance(doc.get("layers"), dict):
        raise ValueError("not a codec.quality report of format 1")
    out = []
    for name, entry in doc["layers"].items():
        if not (isinstance(entry, list) and len(entry) == 5 and isinstance(entry[0], str)
                and isinstance(entry[1], int)
                and all(v is None or isinstance(v, (int, float)) for v in entry[2:])):
            raise ValueError(f"codec.quality: bad entry for layer {name!r}")
        out.append(_of_energies(name, *entry))
    return out
