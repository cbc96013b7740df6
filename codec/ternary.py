"""Public home of the ternary helpers; the mode itself is :mod:`codec.modes.ternary`."""

from .modes.ternary import split_ternary, ternarize

__all__ = ["ternarize", "split_ternary"]
