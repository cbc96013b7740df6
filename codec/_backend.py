"""The one place that chooses between the compiled core and the pure-Python reference.

``CODEC_PUREPYTHON=1`` (any non-empty value other than ``0``) selects the pure modules. Otherwise
the Cython extensions in ``codec._fast`` are used when they import; when they are missing (a
source install without a compiler, or a pure build) the pure modules are used and a debug message
is logged. ``BACKEND`` says which was chosen: ``"fast"`` or ``"pure"``.
"""

from __future__ import annotations

import logging
import os

_log = logging.getLogger("codec")

_want_pure = os.environ.get("CODEC_PUREPYTHON", "") not in ("", "0")

if not _want_pure:
    try:
        from ._fast._bitio import BitReader, BitWriter
        from ._fast._crc32c import crc32c, crc32c_combine, crc32c_copy
        from ._fast._index import read_index_entries
        from ._fast import _rans as rans
        from ._fast import _ternary as ternary
        from ._fast import _masks as masks

        BACKEND = "fast"
    except ImportError as exc:  # pragma: no cover - depends on how the package was built
        _log.debug("compiled core not available (%s); using the pure-Python reference", exc)
        _want_pure = True

if _want_pure:
    from .bitio import BitReader, BitWriter  # noqa: F811
    from .crc32c import crc32c, crc32c_combine, crc32c_copy  # noqa: F811

    # No twin: syntax.read_index_payload runs its reference loop.
    read_index_entries = None
    from . import rans  # noqa: F811
    from . import ternary  # noqa: F811
    from . import masks  # noqa: F811

    BACKEND = "pure"

from .rans import ERRORS as rans_errors  # noqa: E402  (both kernels share the error codes)

__all__ = ["rans", "rans_errors", "ternary", "masks", "BACKEND", "BitReader", "BitWriter", "crc32c", "crc32c_combine", "crc32c_copy", "read_index_entries"]
