"""Pure-Python references of the hot loops. Each module has a compiled twin of the same stem in
``codec/_fast/`` (``kernels/rans.py`` and ``_fast/rans.pyx``); ``codec._backend`` picks one set.

The twin contract, the same for every pair:

* The twin has the same public functions and classes with the same signatures, and gives the same
  results (identical bytes, equal arrays of the same dtype).
* A decoding kernel never raises for bad *data*. It returns ``(status, at, value)``: status 0 and
  the result, or a negative status from its module's ``ERRORS`` table, the byte offset ``at`` (in
  the buffer it was given) of the element that is wrong, and an int ``value`` that fills the
  ``{}`` of the element name (a level or entry number). The Python caller, which knows the syntax
  path and the buffer's file offset, raises with :func:`raise_status`. So both backends report
  the same error, with the same path and position, by construction.
* Wrong *arguments* (mismatched buffer lengths, wrong types) raise ``ValueError``/``TypeError``
  in both. The bit reader (``bitio``) is the one kernel that is a parser object: it is given the
  syntax path and raises :class:`~codec.errors.CodecError` itself, with the same messages in both.
* Compiled loops release the GIL.

``tests/twins.py`` checks every pair on valid and damaged input (outputs, exception types and
messages).
"""

from __future__ import annotations

from typing import NamedTuple

#: The kernel stems: codec.kernels.<stem> (pure) and codec._fast.<stem> (compiled).
KERNELS = ("bitio", "crc32c", "index", "rans", "adaptive", "ternary", "masks", "planes", "trellis", "pq")


class Field(NamedTuple):
    """One syntax element as read by a tracing bit reader: what ``codec-dump --fields`` prints.
    (Tracing is a feature of the pure reader only.)"""

    path: str
    bit_offset: int
    bits: int
    descriptor: str
    value: object


def raise_status(errors: dict, status: int, at: int, detail: int, *, path: str, base_offset: int,
                 **values) -> None:
    """Raise the error of a kernel ``status`` (see the module docstring) at ``path``.

    ``errors`` maps status -> (error class, element name or "", reason). The element is appended
    to ``path``; ``at`` is relative to ``base_offset`` (the file offset of the kernel's buffer).
    ``values`` fill the ``{name}`` fields of a reason (what only the caller knows, like a limit).
    """
    cls, element, reason = errors[status]
    if values:
        reason = reason.format(**values)
    where = f"{path}.{element.format(detail)}" if element else path
    raise cls(reason, path=where, bit_offset=(base_offset + at) * 8)


__all__ = ["KERNELS", "Field", "raise_status"]
