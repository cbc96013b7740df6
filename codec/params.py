"""The parameter declaration of the coding modes (and of the writer's global quantization set)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from .errors import EncodeError

__all__ = ["Param"]


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a coding mode, as users pass it (``mode_params`` keywords, policy keys).

    ``type`` is a tuple of accepted Python types (bool is never an int here); ``choices`` or
    ``range`` (inclusive bounds) constrain the value; ``check`` is a further rule returning an error
    message or None. ``default`` None means "not given" (the mode decides). ``prepare`` marks a
    parameter consumed by :meth:`Mode.prepare` (it changes the tensor before coding, e.g. pruning);
    ``policy=False`` one that a policy file cannot hold (an array).
    """

    name: str
    type: tuple
    doc: str
    default: Any = None
    choices: tuple | None = None
    range: tuple | None = None
    check: Callable[[Any], str | None] | None = None
    prepare: bool = False
    policy: bool = True

    def type_name(self) -> str:
        names = {int: "int", float: "float", str: "str", bool: "bool", tuple: "list", list: "list",
                 np.ndarray: "array", type(None): "none"}
        return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in self.type))

    def describe(self) -> str:
        """The value rule in words: choices, range, or the type."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) if isinstance(c, str) else str(c) for c in self.choices)
        if self.range is not None:
            lo, hi = self.range
            return f"{self.type_name()} >= {lo}" if hi == float("inf") else f"{self.type_name()} in {lo}..{hi}"
        return self.type_name()

    def validate(self, value, mode: str):
        """Return ``value`` (ints for integral floats are not accepted) or raise EncodeError naming the rule."""
        if np.ndarray in self.type and not isinstance(value, self.type):
            value = np.asarray(value)
        elif isinstance(value, np.generic):
            value = value.item()
        ok = isinstance(value, self.type) and not (isinstance(value, bool) and bool not in self.type)
        if float in self.type and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise EncodeError(f"mode {mode!r} parameter {self.name!r} must be {self.describe()}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise EncodeError(f"mode {mode!r} parameter {self.name!r} must be {self.describe()}, got {value!r}")
        if self.range is not None and isinstance(value, (int, float)) and not self.range[0] <= value <= self.range[1]:
            raise EncodeError(f"mode {mode!r} parameter {self.name!r} must be {self.describe()}, got {value!r}")
        problem = self.check(value) if self.check is not None else None
        if problem:
            raise EncodeError(f"mode {mode!r} parameter {self.name!r}: {problem}")
        return value
