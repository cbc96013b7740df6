"""Coding modes: how a layer's payload represents its tensor (spec section 6).

One module per mode, each registering one :class:`Mode` subclass that declares its parameters.
Adding a mode is a module here plus its name in the import line below; the writer, reader, dump
tool, CLI and policies find it through the registry (:func:`get_mode`, :func:`registered_modes`).
"""

from .base import Mode, Param, Plan, get_mode, mode_name, register_mode, registered_modes

# The registry: importing a mode's module registers it.
from . import raw, zstd, entropy, quantized, floatplanes, ternary, sparse, dq, pq, delta, lowrank_sparse  # noqa: E402,F401  (isort: skip)

__all__ = ["Mode", "Param", "Plan", "get_mode", "mode_name", "register_mode", "registered_modes", "params_table"]


def params_table() -> str:
    """The Markdown table of every mode's parameters (spec/policy.md holds it; a test keeps it current)."""
    rows = ["| mode | parameter | value | default | what it does |", "|---|---|---|---|---|"]
    for mode in registered_modes():
        if not mode.params:
            rows.append(f"| `{mode.name}` | - | | | |")
        for p in mode.params:
            if not p.policy:
                continue
            default = "" if p.default is None else f"`{p.default!r}`"
            note = " (prepares the tensor)" if p.prepare else ""
            rows.append(f"| `{mode.name}` | `{p.name}` | {p.describe()} | {default} | {p.doc}{note} |")
        if mode.nested_mode_param:
            rows.append(f"| `{mode.name}` | (those of `{mode.nested_mode_param}`) | | | the kept values' mode parameters |")
    return "\n".join(rows)
