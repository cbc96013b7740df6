"""Resource limits applied while decoding untrusted bitstreams.

Every count or size read from a file is checked against the bytes that remain *and* against
these limits before anything is allocated. The defaults accept any realistic model; callers that
handle larger files raise them, callers that handle hostile files may lower them.
"""

from __future__ import annotations

import dataclasses

from ..errors import LimitError
from .constants import MAX_RANK

__all__ = ["Limits", "DEFAULT_LIMITS"]


@dataclasses.dataclass(frozen=True)
class Limits:
    """Upper bounds on what a reader accepts.

    Parameters
    ----------
    max_layers : int
        Most layer units in one bitstream.
    max_rank : int
        Most dimensions of a layer; cannot exceed the format's hard limit of 8.
    max_elements_per_layer : int
        Most elements (product of the shape) of one layer.
    max_metadata_bytes : int
        Most bytes of the network header (which holds the metadata).
    max_decoded_bytes : int
        Most bytes one decode call may produce: one layer for ``get``, the sum for ``load_file``.
    max_header_bytes : int
        Most bytes of one unit header (layer name, shape, parameter blocks).
    max_name_bytes : int
        Most UTF-8 bytes of a layer name or metadata key.
    max_nesting : int
        Deepest nesting of metadata lists.
    """

    max_layers: int = 1 << 20
    max_rank: int = MAX_RANK
    max_elements_per_layer: int = 1 << 40
    max_metadata_bytes: int = 64 << 20
    max_decoded_bytes: int = 1 << 42
    max_header_bytes: int = 1 << 20
    max_name_bytes: int = 4096
    max_nesting: int = 8

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TypeError(f"Limits.{field.name} must be a non-negative int, got {value!r}")
        if self.max_rank > MAX_RANK:
            raise ValueError(f"Limits.max_rank cannot exceed the format limit {MAX_RANK}")

    def check(self, name: str, value: int, *, path=None, bit_offset=None) -> None:
        """Raise :class:`LimitError` if ``value`` exceeds the limit ``name``."""
        limit = getattr(self, name)
        if value > limit:
            raise LimitError(f"{value} exceeds {name}={limit}", path=path, bit_offset=bit_offset)


DEFAULT_LIMITS = Limits()
