"""Public home of the mask helpers; the masks themselves are :mod:`codec.modes.masks`."""

from .modes.masks import nm_layout, patterns, prune_magnitude, prune_nm

__all__ = ["prune_magnitude", "prune_nm", "nm_layout", "patterns"]
