"""The one place that chooses between the compiled kernels and the pure-Python references.

``CODEC_PUREPYTHON=1`` (any non-empty value other than ``0``) selects ``codec.kernels.<stem>`` for
every stem of :data:`codec.kernels.KERNELS`. Otherwise ``codec._fast.<stem>`` is used when every
compiled twin imports; if any is missing (a source install without a compiler, a pure build, or a
source checkout that shadows the installed package) the pure references are used for all of them,
with a :class:`codec.errors.PerformanceWarning` that says why. ``BACKEND`` says which:
``"fast"`` or ``"pure"``. Callers use the kernel modules exported here (``_backend.rans``), never
``codec._fast`` directly.
"""

from __future__ import annotations

import importlib
import logging
import os

from .kernels import KERNELS
from .kernels import bitio as reference_bitio

_log = logging.getLogger("codec")


def _load(package: str) -> dict:
    return {stem: importlib.import_module(f"{package}.{stem}") for stem in KERNELS}


_want_pure = os.environ.get("CODEC_PUREPYTHON", "") not in ("", "0")
modules = None
if not _want_pure:
    try:
        modules = _load("codec._fast")
        BACKEND = "fast"
    except ImportError as exc:  # pragma: no cover - depends on how the package was built
        import warnings

        from .errors import PerformanceWarning

        here = os.path.dirname(os.path.abspath(__file__))
        warnings.warn(
            f"codec: the compiled core is not in use ({exc}); every kernel runs on the pure-Python reference, "
            f"10-100x slower. codec was imported from {here}: from a source checkout, build it in place "
            "(pip install -e . or python setup.py build_ext --inplace) or run from another directory so the "
            "installed package is imported. Set CODEC_PUREPYTHON=1 to use the reference on purpose (and silence "
            "this).", PerformanceWarning, stacklevel=2)
if modules is None:
    modules = _load("codec.kernels")
    BACKEND = "pure"

bitio = modules["bitio"]
crc = modules["crc32c"]
index = modules["index"]
rans = modules["rans"]
adaptive = modules["adaptive"]
ternary = modules["ternary"]
masks = modules["masks"]
planes = modules["planes"]
trellis = modules["trellis"]
pq = modules["pq"]

BitReader = bitio.BitReader
BitWriter = bitio.BitWriter
crc32c = crc.crc32c
crc32c_copy = crc.crc32c_copy
crc32c_combine = crc.crc32c_combine



def bit_reader(data, base_offset: int, path: str, trace: list | None = None):
    """A bit reader over ``data`` (which starts at file offset ``base_offset``) naming elements under
    ``path``: the backend's, or the pure reference when ``trace`` is a list (only it traces)."""
    if trace is not None:
        r = reference_bitio.BitReader(data, base_offset=base_offset, trace=trace)
    else:
        r = BitReader(data, base_offset=base_offset)
    r.path = path
    return r


__all__ = ["BACKEND", "bit_reader", "modules", "bitio", "crc", "index", "rans", "adaptive", "ternary", "masks", "planes", "trellis", "pq", "BitReader", "BitWriter",
           "crc32c", "crc32c_copy", "crc32c_combine"]
