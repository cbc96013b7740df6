"""Dependent (trellis-coded) quantization in pure Python (numpy): the reference for ``codec._fast.trellis``.

The 8-state trellis of spec 8.5 (MPEG NNR's): two scalar quantizers share a step; Q0 reconstructs the
even multiples of it, Q1 zero and the odd ones. Each level's parity moves the state, and the state's
parity picks the quantizer of the next level, so a row of levels k reconstructs as
``q = 2k - sgn(k) * (state & 1)`` multiples of the step.

``reconstruct`` is the decoder (spec 8.5); ``quantize`` is the encoder's Viterbi search, not
normative, but its twins make the same decisions: the arithmetic is float64 in the same order
(additions and products only, no contraction into fused multiply-adds), candidates are visited in
the same order and ties keep the earlier one.

``reconstruct`` follows the twin contract of :mod:`codec.kernels`: it returns ``(status, at, value)``,
status 0 or :data:`DQ_ERR_LEVEL` with the index of the first level whose magnitude is at least
:data:`DQ_LEVEL_LIMIT` (``at`` is 0: the levels are not bytes of the payload).
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError

__all__ = ["DQ_NEXT_STATE", "DQ_NUM_STATES", "DQ_LEVEL_LIMIT", "DQ_ERR_LEVEL", "ERRORS", "reconstruct", "dequantize",
           "quantize"]

#: ``DQ_NEXT_STATE[s][k & 1]``: the state after a level k in state s (spec table 8.5).
DQ_NEXT_STATE = ((0, 2), (7, 5), (1, 3), (6, 4), (2, 0), (5, 7), (3, 1), (4, 6))
DQ_NUM_STATES = 8
#: A dq level's magnitude is below this (spec 8.5).
DQ_LEVEL_LIMIT = 1 << 31

DQ_ERR_LEVEL = -1
#: status -> (error class, element, reason)
ERRORS = {
    DQ_ERR_LEVEL: (FormatError, "level[{}]", "a dq level's magnitude must be below 2^31"),
}

_NEXT = np.array(DQ_NEXT_STATE, dtype=np.int64)


def _check_levels(levels, rows: int, cols: int, writeable: bool = True) -> np.ndarray:
    if not isinstance(levels, np.ndarray) or levels.dtype != np.int64 or levels.ndim != 1:
        raise TypeError("levels must be a 1-D int64 array")
    if rows < 0 or cols < 0 or levels.size != rows * cols:
        raise ValueError(f"levels has {levels.size} elements, not rows * cols = {rows} * {cols}")
    if (writeable and not levels.flags.writeable) or not levels.flags.c_contiguous:
        raise ValueError("levels must be writeable and C-contiguous" if writeable else "levels must be C-contiguous")
    return levels


def reconstruct(levels: np.ndarray, rows: int, cols: int) -> tuple[int, int, int]:
    """Replace each level k of the ``rows`` x ``cols`` grid (C order, int64, in place) by its
    reconstruction q = 2k - sgn(k) * (s & 1), the trellis state s starting at 0 in each row.
    Returns ``(0, 0, 0)``, or ``(DQ_ERR_LEVEL, 0, i)`` for the first level i with |k| >= 2^31
    (the levels are then unchanged)."""
    _check_levels(levels, rows, cols)
    if levels.size == 0:
        return 0, 0, 0
    bad = np.flatnonzero((levels >= DQ_LEVEL_LIMIT) | (levels <= -DQ_LEVEL_LIMIT))
    if bad.size:
        return DQ_ERR_LEVEL, 0, int(bad[0])
    grid = levels.reshape(rows, cols)
    state = np.zeros(rows, dtype=np.int64)
    for t in range(cols):
        k = grid[:, t].copy()
        grid[:, t] = 2 * k - np.sign(k) * (state & 1)
        state = _NEXT[state, k & 1]
    return 0, 0, 0


def dequantize(levels: np.ndarray, rows: int, cols: int, scale: np.ndarray, out: np.ndarray) -> tuple[int, int, int]:
    """Spec 8.5 and 8.4 in one pass: ``out[i] = float32(q_i) * scale[row of i]`` (float32, rounded
    to nearest even) for the reconstructions q of ``levels`` (int64, left unchanged). Statuses as
    :func:`reconstruct`; ``out`` is unchanged on error."""
    _check_levels(levels, rows, cols, writeable=False)
    if not isinstance(scale, np.ndarray) or scale.dtype != np.float32 or scale.shape != (rows,):
        raise TypeError("scale must be a float32 array of one entry per row")
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != (rows * cols,) \
            or not out.flags.writeable:
        raise TypeError("out must be a writeable float32 array of rows * cols elements")
    q = levels.copy()
    status = reconstruct(q, rows, cols)
    if status[0]:
        return status
    if q.size:
        out[:] = (q.reshape(rows, cols).astype(np.float32) * scale[:, None]).reshape(-1)
    return 0, 0, 0


def _check_quantize(x, lam_rate, limit: int, weight) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.float64 or x.ndim != 2 or not x.flags.c_contiguous:
        raise TypeError("x must be a C-contiguous 2-D float64 array")
    if weight is not None and (not isinstance(weight, np.ndarray) or weight.dtype != np.float64
                               or weight.shape != (x.shape[1],)):
        raise TypeError("weight must be None or a float64 array of one entry per column of x")
    if not isinstance(lam_rate, np.ndarray) or lam_rate.dtype != np.float64 or lam_rate.ndim != 1:
        raise TypeError("lam_rate must be a 1-D float64 array")
    if not 0 <= limit < DQ_LEVEL_LIMIT // 2 or lam_rate.size != 2 * limit + 1:
        raise ValueError(f"lam_rate must have 2 * limit + 1 entries for a limit in 0..2^30 - 1 (limit {limit}, "
                         f"{lam_rate.size} entries)")


def quantize(x: np.ndarray, lam_rate: np.ndarray, limit: int, weight: np.ndarray | None = None) -> np.ndarray:
    """The levels (int64, shape of ``x``) minimising, per row, sum (x - q)^2 + lam_rate[k + limit]
    (with ``weight``, a float64 per column: sum weight[col] * (x - q)^2 + lam_rate[k + limit]).

    ``x``: the weights divided by their step (float64, C order, rows x columns, finite);
    ``lam_rate[k + limit]``: lambda times the estimated bits of level k, for |k| <= ``limit``
    (levels are clipped to that range). Each row starts in state 0 and may end in any state.
    For each state the candidates are, in this order, the two levels of its quantizer whose
    reconstructions enclose |x| (with the sign of x), then 0.
    """
    _check_quantize(x, lam_rate, limit, weight)
    rows, cols = x.shape
    out = np.zeros((rows, cols), dtype=np.int64)
    if x.size == 0:
        return out
    block = max(1, (1 << 18) // max(cols, 1))
    with np.errstate(over="ignore"):  # a square beyond float64 is inf, as in C
        for r0 in range(0, rows, block):
            out[r0:r0 + block] = _viterbi(x[r0:r0 + block], lam_rate, limit, weight)
    return out


def _viterbi(x: np.ndarray, lam_rate: np.ndarray, limit: int, weight) -> np.ndarray:
    rows, cols = x.shape
    inf = np.inf
    cost = np.full((rows, DQ_NUM_STATES), inf)
    cost[:, 0] = 0.0
    back_k = np.zeros((cols, rows, DQ_NUM_STATES), dtype=np.int64)
    back_s = np.zeros((cols, rows, DQ_NUM_STATES), dtype=np.int8)
    zero = np.zeros(rows, dtype=np.int64)
    for t in range(cols):
        xt = x[:, t]
        ax = np.abs(xt)
        negative = xt < 0
        new = np.full((rows, DQ_NUM_STATES), inf)
        new_k = np.zeros((rows, DQ_NUM_STATES), dtype=np.int64)
        new_s = np.zeros((rows, DQ_NUM_STATES), dtype=np.int8)
        # the magnitude m of the level whose reconstruction 2m - p is the largest at most |x|
        # (floor((|x| + p) / 2)), for each quantizer p
        base = [np.minimum(np.floor(ax * 0.5), limit).astype(np.int64),
                np.minimum(np.floor((ax + 1.0) * 0.5), limit).astype(np.int64)]
        for s in range(DQ_NUM_STATES):
            p = s & 1
            cs = cost[:, s]
            m0 = base[p]
            for mag in (m0, np.minimum(m0 + 1, limit), zero):
                aq = np.where(mag > 0, 2 * mag - p, 0).astype(np.float64)
                k = np.where(negative, -mag, mag)
                diff = ax - aq
                d = diff * diff if weight is None else weight[t] * (diff * diff)
                c = cs + (d + lam_rate[k + limit])
                odd = mag & 1
                for b in (0, 1):
                    tgt = DQ_NEXT_STATE[s][b]
                    better = (odd == b) & (c < new[:, tgt])
                    new[better, tgt] = c[better]
                    new_k[better, tgt] = k[better]
                    new_s[better, tgt] = s
        cost = new
        back_k[t] = new_k
        back_s[t] = new_s
    state = np.argmin(cost, axis=1)
    ridx = np.arange(rows)
    levels = np.zeros((rows, cols), dtype=np.int64)
    for t in range(cols - 1, -1, -1):
        levels[:, t] = back_k[t, ridx, state]
        state = back_s[t, ridx, state].astype(np.int64)
    return levels
