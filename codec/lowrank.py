"""Quantized sparse weight decomposition (spec 6.11): W ~ C @ Z with C dense (rows x rank) and Z sparse
(rank x cols). The encoder's factorization and the decoder's fixed-order product."""

from __future__ import annotations

import numpy as np

from .errors import EncodeError

__all__ = ["factorize", "product"]


def factorize(w: np.ndarray, rank: int, density: float, *, iters: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """C (rows x rank) and Z (rank x cols, with at most ``density`` of its entries non-zero) approximately
    minimising ||W - C Z||: the truncated SVD, then alternating least squares of C and of Z's kept entries
    (the largest in magnitude), each kept set chosen again after every Z fit."""
    w = np.asarray(w, dtype=np.float64)
    rows, cols = w.shape
    if not 1 <= rank <= min(rows, cols):
        raise EncodeError(f"rank {rank} is outside 1..{min(rows, cols)} for a {rows} x {cols} level grid")
    if not np.isfinite(w).all():
        raise EncodeError("mode 'lowrank_sparse' codes finite values only")
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    c = u[:, :rank] * s[:rank]
    z = vt[:rank].copy()
    keep = max(1, int(round(density * z.size)))
    ridge = 1e-9 * (float((w * w).sum()) / max(1, w.size) + 1e-30)
    for _ in range(iters + 1):
        if keep < z.size:
            threshold = np.partition(np.abs(z).reshape(-1), z.size - keep)[z.size - keep]
            z = np.where(np.abs(z) >= threshold, z, 0.0)
        mask = z != 0
        # C given Z: the normal equations of each row (one system)
        c = np.linalg.solve(z @ z.T + ridge * np.eye(rank), z @ w.T).T
        # Z's kept entries, column by column, given C
        gram = c.T @ c
        rhs = c.T @ w
        for j in range(cols):
            kept = np.flatnonzero(mask[:, j])
            col = np.zeros(rank)
            if kept.size:
                col[kept] = np.linalg.solve(gram[np.ix_(kept, kept)] + ridge * np.eye(kept.size), rhs[kept, j])
            z[:, j] = col
        if keep >= z.size:
            break
    return c.astype(np.float32), z.astype(np.float32)


def product(c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """C @ Z in binary32, each product rounded before it is added, terms in rank order (spec 6.11): the same
    values on every machine (a BLAS product sums in its own order)."""
    c = np.asarray(c, dtype=np.float32)
    z = np.asarray(z, dtype=np.float32)
    out = c[:, :1] * z[:1, :]
    term = np.empty_like(out)
    for t in range(1, c.shape[1]):
        np.multiply(c[:, t, None], z[None, t, :], out=term)
        out += term
    return out
