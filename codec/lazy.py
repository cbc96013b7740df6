"""Arrays made a slice at a time: what a coder reads in pieces need not exist whole.

:class:`PieceArray` is a 1-D array that computes each slice it is asked for (the kept values of a
sparse layer are gathered from the tensor through its packed mask). The coders that work piece by
piece (raw, zstd, entropy, uniform quantization) only slice it; one that needs the whole array
converts it with ``np.asarray`` and then holds it, as it would hold any array.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PieceArray", "PIECE"]

#: elements made at a time when the whole array, or its minimum or maximum, is asked for
PIECE = 1 << 18


class PieceArray:
    """A 1-D array of ``size`` elements of ``dtype``; subclasses make ``piece(start, stop)``."""

    ndim = 1

    def __init__(self, size: int, dtype):
        self.size, self.dtype = int(size), np.dtype(dtype)

    @property
    def shape(self) -> tuple[int]:
        return (self.size,)

    def __len__(self) -> int:
        return self.size

    def piece(self, start: int, stop: int) -> np.ndarray:
        """Elements start..stop-1 as a new ndarray."""
        raise NotImplementedError

    def pieces(self):
        for start in range(0, self.size, PIECE):
            yield self.piece(start, min(self.size, start + PIECE))

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self.size)
            if step == 1:
                return self.piece(start, max(start, stop))
        return np.asarray(self)[key]

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], tuple):
            shape = shape[0]
        if shape in ((-1,), (self.size,)):
            return self
        return np.asarray(self).reshape(shape)

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.size, dtype=self.dtype)
        at = 0
        for p in self.pieces():
            out[at:at + p.size] = p
            at += p.size
        return out if dtype is None else out.astype(dtype, copy=False)

    def min(self):
        return min(p.min() for p in self.pieces())

    def max(self):
        return max(p.max() for p in self.pieces())
