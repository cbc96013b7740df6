"""A numcodecs ``Codec`` so that zarr (and anything else built on numcodecs) can store array chunks
with codec's coding modes: ``NNC()`` (the lossless default: floatplanes for floats, entropy for
integers and bool), or ``NNC(mode="entropy")``, ``NNC(mode="zstd", level=9)``... Each chunk is one
codec bitstream holding one layer (its dtype and shape included), so a chunk decodes alone.

Registered under the id ``"nnc"`` through the ``numcodecs.codecs`` entry point (so
``numcodecs.get_codec({"id": "nnc"})`` finds it once codec is installed) and when this module is
imported. Lossy modes are refused: a chunk store expects its bytes back.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray_like, ensure_ndarray_like, ndarray_copy

from . import api
from .modes import get_mode
from .quality import LOSSLESS_MODES

__all__ = ["NNC"]


class NNC(Codec):
    """codec's lossless coding modes as a numcodecs codec (id ``"nnc"``).

    Parameters
    ----------
    mode : str, optional
        A lossless coding mode (``floatplanes``, ``entropy``, ``zstd``, ``raw``); None: the
        lossless default for the chunk's dtype.
    **params
        The mode's parameters (``level=`` for zstd and floatplanes); part of the codec's config.
    """

    codec_id = "nnc"

    def __init__(self, mode: str | None = None, **params):
        if mode is not None and mode not in LOSSLESS_MODES - {"lossless"}:
            raise ValueError(f"NNC stores chunks losslessly: mode must be one of floatplanes, entropy, zstd, raw or "
                             f"None, got {mode!r}")
        self.mode = mode
        self.params = dict(params)
        if mode is not None:
            get_mode(mode).validate(self.params)  # the parameters are checked now, not at the first chunk
        elif params:
            raise ValueError(f"parameters {sorted(params)} need a mode")

    def _options(self) -> dict:
        return {} if self.mode is None else {"mode": self.mode, **self.params}

    def get_config(self) -> dict:
        return {"id": self.codec_id, "mode": self.mode, **self.params}

    @classmethod
    def from_config(cls, config: dict) -> "NNC":
        config = {k: v for k, v in config.items() if k != "id"}
        return cls(**config)

    def encode(self, buf) -> bytes:
        array = ensure_contiguous_ndarray_like(buf, flatten=False)
        return api.encode({"chunk": np.asarray(array)}, **self._options())

    def decode(self, buf, out=None):
        data = ensure_contiguous_ndarray_like(buf).view(np.uint8)
        with api.open(bytes(data)) as reader:
            if reader.keys() != ["chunk"]:
                raise ValueError("not an NNC chunk: a codec bitstream with one layer named 'chunk' was expected")
            array = reader.get("chunk")
        if out is not None:
            out = ensure_ndarray_like(out)
            if out.dtype != array.dtype and out.nbytes == array.nbytes:
                array = array.view(out.dtype) if array.ndim else array.reshape(1).view(out.dtype)
            return ndarray_copy(array, out)
        return array

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"NNC(mode={self.mode!r}{params})"


def _register() -> None:
    from numcodecs.registry import register_codec

    register_codec(NNC)


_register()
