"""Encoding policies: which coding mode and parameters each layer gets (docs in spec/policy.md).

A policy is a TOML or JSON document: optional ``[defaults]`` (a mode and its parameters for layers
no rule matches) and an ordered list of ``[[rules]]``. Each rule has match keys and action keys;
the first rule whose match keys all hold decides. Unknown keys are errors that name the key.
The policy used is stored in the bitstream metadata under ``codec.policy`` (JSON).

Match keys: ``name`` (glob or list of globs), ``kind`` (weight, bias, norm, embedding, other),
``dtype`` ("float", "int", "bool" or a dtype name), ``rank``, ``min_rank``, ``max_rank``,
``min_elements``, ``max_elements``.
Action keys: ``mode`` and that mode's parameters; plus, applied to the tensor before coding,
``ternarize = true`` (TWN, with ``axis``) for mode "ternary", and ``prune`` (fraction, magnitude)
or ``nm = [N, M]`` (N:M magnitude pruning along ``axis``) for mode "sparse".
"""

from __future__ import annotations

import fnmatch
import json
import os
from typing import Any

import numpy as np

from .errors import EncodeError

__all__ = ["Policy", "load_policy", "DEFAULT_POLICY"]

MATCH_KEYS = {"name", "kind", "dtype", "rank", "min_rank", "max_rank", "min_elements", "max_elements"}
MODE_PARAMS = {
    "raw": set(),
    "zstd": {"level"},
    "floatplanes": {"level"},
    "entropy": {"max_classes"},
    "quantized": {"bits", "step", "method", "granularity", "axis", "qp_density", "rdo_lambda", "max_classes"},
    "ternary": {"scheme", "axis", "ternarize"},
    "sparse": {"prune", "nm", "axis", "hybrid", "values_mode"},
}


def _check_action(action: dict, where: str) -> None:
    mode = action.get("mode")
    if mode not in MODE_PARAMS:
        raise EncodeError(f"{where}: mode must be one of {', '.join(MODE_PARAMS)}, got {mode!r}")
    allowed = set(MODE_PARAMS[mode])
    if mode == "sparse" and action.get("values_mode") is not None:
        values_mode = action["values_mode"]
        if values_mode not in MODE_PARAMS or values_mode == "sparse":
            raise EncodeError(f"{where}: values_mode must be a non-sparse mode, got {values_mode!r}")
        allowed |= MODE_PARAMS[values_mode] - {"ternarize"}
    for key in action:
        if key != "mode" and key not in allowed:
            raise EncodeError(f"{where}: unknown key {key!r} for mode {mode!r}")


class Policy:
    """A parsed, validated policy."""

    def __init__(self, doc: dict[str, Any]):
        if not isinstance(doc, dict):
            raise EncodeError("a policy must be a table/object")
        unknown = set(doc) - {"defaults", "rules", "version"}
        if unknown:
            raise EncodeError(f"policy: unknown key {sorted(unknown)[0]!r}")
        self.defaults = dict(doc.get("defaults") or {})
        if self.defaults:
            _check_action(self.defaults, "policy.defaults")
        self.rules = []
        for i, rule in enumerate(doc.get("rules") or []):
            if not isinstance(rule, dict):
                raise EncodeError(f"policy.rules[{i}]: a rule must be a table/object")
            match = {k: v for k, v in rule.items() if k in MATCH_KEYS}
            action = {k: v for k, v in rule.items() if k not in MATCH_KEYS}
            _check_action(action, f"policy.rules[{i}]")
            self.rules.append((match, action))
        self.doc = {"version": 1, "defaults": self.defaults,
                    "rules": [{**m, **a} for m, a in self.rules]}

    def to_json(self) -> str:
        return json.dumps(self.doc, sort_keys=True)

    def choose(self, name: str, array: np.ndarray, kind: str) -> tuple[dict, int | None]:
        """Return (action, rule index or None for the default) for a tensor."""
        for i, (match, action) in enumerate(self.rules):
            if _matches(match, name, array, kind):
                return action, i
        if self.defaults:
            return self.defaults, None
        return default_action(array), None


def _dtype_class(array: np.ndarray) -> str:
    if array.dtype == np.bool_:
        return "bool"
    if array.dtype.kind in "iu":
        return "int"
    return "float"


def _matches(match: dict, name: str, array: np.ndarray, kind: str) -> bool:
    if "name" in match:
        globs = match["name"] if isinstance(match["name"], list) else [match["name"]]
        if not any(fnmatch.fnmatchcase(name, g) for g in globs):
            return False
    if "kind" in match and match["kind"] != kind:
        return False
    if "dtype" in match and match["dtype"] not in (_dtype_class(array), array.dtype.name):
        return False
    rank, size = array.ndim, array.size
    return (match.get("rank", rank) == rank and match.get("min_rank", rank) <= rank <= match.get("max_rank", rank)
            and match.get("min_elements", size) <= size <= match.get("max_elements", size))


def default_action(array: np.ndarray) -> dict:
    """The default when there is no policy: lossless, the best lossless mode for the dtype."""
    cls = _dtype_class(array)
    if cls == "float":
        return {"mode": "floatplanes"}
    return {"mode": "entropy"}


DEFAULT_POLICY = Policy({"rules": []})


def load_policy(path_or_text) -> Policy:
    """Read a policy from a .toml or .json file (or a JSON/TOML string)."""
    text = path_or_text
    is_toml = False
    if isinstance(path_or_text, (str, os.PathLike)) and os.path.exists(path_or_text):
        with open(path_or_text, "rb") as f:
            raw = f.read()
        is_toml = os.fspath(path_or_text).lower().endswith(".toml")
        text = raw.decode("utf-8")
    try:
        if is_toml or not text.lstrip().startswith("{"):
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            doc = tomllib.loads(text)
        else:
            doc = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - both parsers' errors become one clear message
        raise EncodeError(f"policy is not valid TOML/JSON: {exc}") from None
    return Policy(doc)


def apply(action: dict, array: np.ndarray) -> tuple[np.ndarray, dict]:
    """Turn a policy action into (the array to write, add_layer keyword arguments)."""
    from . import masks, ternary

    params = {k: v for k, v in action.items()}
    mode = params.pop("mode")
    if mode == "ternary" and params.pop("ternarize", False):
        array = ternary.ternarize(array, axis=params.get("axis"))
    if mode == "sparse":
        prune = params.pop("prune", None)
        nm = params.get("nm")
        axis = params.get("axis", -1)
        if nm is not None:
            mask = masks.prune_nm(array, int(nm[0]), int(nm[1]), axis=axis)
            params["nm"] = (int(nm[0]), int(nm[1]))
        elif prune is not None:
            mask = masks.prune_magnitude(array, float(prune))
        else:
            mask = np.asarray(array) != 0
        array = np.where(mask, array, 0).astype(array.dtype)
        params["mask"] = mask
    return array, {"mode": mode, **params}
