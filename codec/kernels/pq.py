"""Product-quantization decoding in pure Python (numpy): the reference for ``codec._fast.pq``.

A pq layer (spec 6.9) stores, per stage, one level per vector of d consecutive elements; the level k
stands for the centroid index j = 2k - 1 (k > 0) or -2k (k <= 0). :func:`gather` turns a stage's levels
into values: it writes (or adds, in binary32) each vector's centroid into the elements. Wrong arguments
raise ValueError in both twins; a level whose index is outside the codebook is reported, not raised.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gather"]


def _check(levels, codebook, out) -> tuple[int, int]:
    if not isinstance(levels, np.ndarray) or levels.dtype != np.int64 or levels.ndim != 1 \
            or not levels.flags.c_contiguous:
        raise ValueError("levels must be a contiguous 1-D int64 array")
    if not isinstance(codebook, np.ndarray) or codebook.dtype != np.float32 or codebook.ndim != 2 \
            or not codebook.flags.c_contiguous or codebook.shape[1] < 1:
        raise ValueError("codebook must be a C-contiguous 2-D float32 array of at least one column")
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.ndim != 1 \
            or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable contiguous 1-D float32 array")
    d = codebook.shape[1]
    if -(-out.size // d) != levels.size:
        raise ValueError(f"out holds {out.size} elements: {levels.size} vectors of {d} need ceil(size / {d}) == "
                         f"{levels.size}")
    return codebook.shape[0], d


def gather(levels, codebook, out, accumulate: bool) -> int:
    """Write (``accumulate`` False) or add (True, binary32 round to nearest) centroid ``codebook[j_v]`` into
    elements ``v*d .. v*d + d - 1`` of ``out`` for every vector v (the last one cut at ``out``'s end), where
    j_v is the index that ``levels[v]`` stands for. Returns -1, or the number of the first vector whose
    index is ``codebook.shape[0]`` or more; then the vectors before it are written and the rest are not."""
    k, d = _check(levels, codebook, out)
    # |level| > K cannot name a centroid; clipping first keeps 2 * level from overflowing
    clipped = np.clip(levels, -k - 1, k + 1)
    index = np.where(clipped > 0, 2 * clipped - 1, -2 * clipped)
    bad = np.flatnonzero(index >= k)
    good = int(bad[0]) if bad.size else levels.size
    n = min(out.size, good * d)
    full = n // d
    values = codebook[index[:full]].reshape(-1)
    if accumulate:
        out[:full * d] += values
    else:
        out[:full * d] = values
    if full < good:  # the last vector, cut short
        tail = codebook[index[full], :n - full * d]
        if accumulate:
            out[full * d:n] += tail
        else:
            out[full * d:n] = tail
    return int(bad[0]) if bad.size else -1
