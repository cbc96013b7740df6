"""Encoding policies: which coding mode and parameters each layer gets (docs in spec/policy.md).

A policy is a TOML or JSON document: optional ``[defaults]`` (a mode and its parameters for layers
no rule matches) and an ordered list of ``[[rules]]``. Each rule has match keys and action keys;
the first rule whose match keys all hold decides. The action keys are ``mode`` and that mode's
parameters as the mode declares them (``codec.modes``): a policy is checked when it is loaded, and
an unknown key or a bad value is an error naming the rule. The policy used is stored in the
bitstream metadata under ``codec.policy`` (JSON).

Match keys: ``name`` (glob or list of globs), ``kind`` (weight, bias, norm, embedding, other),
``dtype`` ("float", "int", "bool" or a dtype name), ``rank``, ``min_rank``, ``max_rank``,
``min_elements``, ``max_elements``.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import EncodeError
from .modes import get_mode, registered_modes

__all__ = ["Policy", "load_policy", "DEFAULT_POLICY", "apply", "default_action", "check_target", "parse_size", "load_importance"]

MATCH_KEYS = {"name", "kind", "dtype", "rank", "min_rank", "max_rank", "min_elements", "max_elements"}


KINDS = ("weight", "bias", "norm", "embedding", "other")
DTYPE_CLASSES = ("float", "int", "bool")
DTYPE_NAMES = ("float64", "float32", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "uint16",
               "uint32", "uint64", "bool")


def _did_you_mean(word, choices) -> str:
    import difflib

    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_match(match: dict, where: str) -> None:
    """Every match value checked when the policy is loaded."""
    def bad(key, rule):
        return EncodeError(f"{where}: match key {key!r} must be {rule}, got {match[key]!r}")

    for key, value in match.items():
        if key == "name":
            globs = value if isinstance(value, list) else [value]
            if not globs or not all(isinstance(g, str) and g for g in globs):
                raise bad(key, "a glob or a list of globs")
        elif key == "kind":
            if value not in KINDS:
                raise EncodeError(f"{where}: match key 'kind' must be one of {', '.join(KINDS)}, got {value!r}"
                                  + _did_you_mean(value, KINDS))
        elif key == "dtype":
            if value not in DTYPE_CLASSES + DTYPE_NAMES:
                raise EncodeError(f"{where}: match key 'dtype' must be float, int, bool or a dtype name "
                                  f"({', '.join(DTYPE_NAMES)}), got {value!r}"
                                  + _did_you_mean(value, DTYPE_CLASSES + DTYPE_NAMES))
        elif key in ("rank", "min_rank", "max_rank"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 8:
                raise bad(key, "an int in 0..8")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:  # min/max_elements
            raise bad(key, "an int >= 0")


def _check_action(action: dict, where: str) -> None:
    mode = action.get("mode")
    names = [m.name for m in registered_modes()]
    if mode not in names:
        raise EncodeError(f"{where}: mode must be one of {', '.join(names)}, got {mode!r}" + _did_you_mean(mode, names))
    params = {k: v for k, v in action.items() if k != "mode"}
    try:
        get_mode(mode).validate(params, policy=True)
    except EncodeError as exc:
        raise EncodeError(f"{where}: {exc.reason}") from None


def _file_key(doc: dict, key: str, what: str, base_dir: str | None) -> str | None:
    """The path a policy's file key names (relative to the policy file's directory), or None."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise EncodeError(f"policy.{key}: the path of {what}, got {value!r}")
    return os.path.join(base_dir or "", value)


class Policy:
    """A parsed, validated policy."""

    def __init__(self, doc: dict[str, Any], *, base_dir: str | None = None):
        if not isinstance(doc, dict):
            raise EncodeError("a policy must be a table/object")
        unknown = set(doc) - {"defaults", "rules", "version", "target", "importance", "sensitivity", "preset"}
        if unknown:
            raise EncodeError(f"policy: unknown key {sorted(unknown)[0]!r}")
        #: the importance file (``importance = "..."``: relative to the policy file's directory)
        self.importance = _file_key(doc, "importance", "a safetensors or npz file of importances", base_dir)
        #: the sensitivity file (``sensitivity = "..."``: a JSON object, relative to the policy's directory)
        self.sensitivity = _file_key(doc, "sensitivity", "a JSON file of per-layer sensitivities (codec.sensitivity)",
                                     base_dir)
        self.target = None
        if doc.get("target") is not None:
            target = doc["target"]
            if not isinstance(target, dict) or len(target) != 1:
                raise EncodeError("policy.target: a table with one of bits, size, max_rel_error")
            (key, value), = target.items()
            self.target = check_target(key, value, where="policy.target")
        self.defaults = dict(doc.get("defaults") or {})
        if self.defaults:
            _check_action(self.defaults, "policy.defaults")
        self.rules = []
        for i, rule in enumerate(doc.get("rules") or []):
            if not isinstance(rule, dict):
                raise EncodeError(f"policy.rules[{i}]: a rule must be a table/object")
            match = {k: v for k, v in rule.items() if k in MATCH_KEYS}
            action = {k: v for k, v in rule.items() if k not in MATCH_KEYS}
            _check_match(match, f"policy.rules[{i}]")
            _check_action(action, f"policy.rules[{i}]")
            self.rules.append((match, action))
        self.doc = {"version": 1, "defaults": self.defaults,
                    "rules": [{**m, **a} for m, a in self.rules]}
        if self.target is not None:
            self.doc["target"] = {self.target[0]: self.target[1]}
        if self.importance is not None:
            self.doc["importance"] = doc["importance"]
        if self.sensitivity is not None:
            self.doc["sensitivity"] = doc["sensitivity"]
        #: the built-in policy this is (codec.presets), informative
        self.preset = doc.get("preset") if isinstance(doc.get("preset"), str) else None
        if self.preset is not None:
            self.doc["preset"] = self.preset

    def to_json(self) -> str:
        return json.dumps(self.doc, sort_keys=True)

    def choose(self, name: str, array: np.ndarray, kind: str, *, hint: str | None = None) -> tuple[dict, int | None]:
        """Return (action, rule index or None for the default) for a tensor; an EncodeError naming
        the tensor and the rule when the chosen mode cannot code the tensor's dtype."""
        for i, (match, action) in enumerate(self.rules):
            if _matches(match, name, array, kind):
                return _checked(action, f"policy.rules[{i}]", name, array, hint), i
        if self.defaults:
            return _checked(self.defaults, "policy.defaults", name, array, hint), None
        return default_action(array), None


_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
               "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_size(value) -> int:
    """Bytes from an int or a string such as ``"12MB"`` (10^6), ``"12MiB"`` (2^20), ``"500k"``."""
    if isinstance(value, bool):
        raise ValueError(f"a size, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    import re

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"a size such as 12MB, 12MiB or 500000, got {value!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def check_target(key: str, value, *, where: str = "target") -> tuple[str, float]:
    """A validated target: ("bits", bits per parameter), ("size", bytes) or ("max_rel_error", e)."""
    try:
        if key == "size":
            size = parse_size(value)
            if size < 1:
                raise ValueError(f"a positive size, got {value!r}")
            return "size", size
        if key in ("bits", "max_rel_error"):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise ValueError(f"a number, got {value!r}")
            if not (value > 0 and np.isfinite(value)):
                raise ValueError(f"a positive number, got {value!r}")
            return key, float(value)
    except ValueError as exc:
        raise EncodeError(f"{where}.{key}: {exc}") from None
    raise EncodeError(f"{where}: unknown key {key!r} (one of bits, size, max_rel_error)")


def _checked(action: dict, where: str, name: str, array, hint) -> dict:
    from .dtypes import dtype_code_of

    try:
        get_mode(action["mode"]).check_dtype(dtype_code_of(array, hint))
    except EncodeError as exc:
        raise EncodeError(f"tensor {name!r} ({array.dtype}, shape {tuple(array.shape)}): {where} chose mode "
                          f"{action['mode']!r}, but {exc.reason}; add a match key such as dtype = \"float\" to the "
                          "rule, or a rule before it for this tensor") from None
    return action


def _dtype_class(array: np.ndarray) -> str:
    if array.dtype == np.bool_:
        return "bool"
    if array.dtype.kind in "iu":
        return "int"
    return "float"


def _matches(match: dict, name: str, array: np.ndarray, kind: str) -> bool:
    if "name" in match:  # case-insensitive: "*norm*" matches LayerNorm
        globs = match["name"] if isinstance(match["name"], list) else [match["name"]]
        if not any(fnmatch.fnmatchcase(name.lower(), g.lower()) for g in globs):
            return False
    if "kind" in match and match["kind"] != kind:
        return False
    if "dtype" in match and match["dtype"] not in (_dtype_class(array), array.dtype.name):
        return False
    rank, size = array.ndim, array.size
    return (match.get("rank", rank) == rank and match.get("min_rank", rank) <= rank <= match.get("max_rank", rank)
            and match.get("min_elements", size) <= size <= match.get("max_elements", size))


#: The label of the lossless default in summaries (it is not a coding mode: the writer picks
#: floatplanes, entropy or raw per tensor, :func:`codec.writer.lossless_mode`).
LOSSLESS_DEFAULT = "lossless"


def default_action(array: np.ndarray) -> dict:
    """The default when no rule matches and the policy has no ``[defaults]``: the writer's lossless
    default (no mode: floatplanes for floats, entropy for integers and bool, raw where that is not
    smaller), the same as ``save_file`` without a mode."""
    return {}


DEFAULT_POLICY = Policy({"rules": []})


def load_policy(path_or_text) -> Policy:
    """Read a policy from a .toml or .json file, a JSON/TOML string, a dict of the same structure,
    or the name of a built-in preset (:data:`codec.presets.PRESETS`: lossless, int8, int4, dq-fine,
    dq, dq-small)."""
    from .presets import PRESETS, preset

    if isinstance(path_or_text, Mapping):
        return Policy(dict(path_or_text))

    if isinstance(path_or_text, str) and path_or_text in PRESETS and not os.path.exists(path_or_text):
        return Policy(preset(path_or_text))
    if isinstance(path_or_text, (str, os.PathLike)) and not os.path.exists(path_or_text) \
            and os.fspath(path_or_text).lower().endswith((".toml", ".json")):
        raise EncodeError(f"policy file {os.fspath(path_or_text)!r} does not exist (built-in presets: "
                          f"{', '.join(PRESETS)})")
    text = path_or_text
    is_toml = False
    base_dir = None
    if isinstance(path_or_text, (str, os.PathLike)) and os.path.exists(path_or_text):
        base_dir = os.path.dirname(os.path.abspath(path_or_text))
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
    return Policy(doc, base_dir=base_dir)


def load_importance(source) -> dict[str, np.ndarray]:
    """Importances by tensor name (``codec.torch.collect_importance``'s dict, or a safetensors or
    npz file of them): 1-D, finite, non-negative float64 vectors."""
    if isinstance(source, (str, os.PathLike)):
        from .formats import read_tensors

        where = os.fspath(source)
        items = [(name, array) for name, array, _ in read_tensors(where)]
    else:
        where, items = "importance", list(dict(source).items())
    out = {}
    for name, array in items:
        v = np.asarray(array, dtype=np.float64)
        if v.ndim != 1 or not np.all(np.isfinite(v)) or np.any(v < 0):
            raise EncodeError(f"{where}: importance {name!r} must be a 1-D vector of finite, non-negative values, "
                              f"got shape {v.shape}")
        out[name] = v
    return out


def apply(action: dict, array: np.ndarray) -> tuple[np.ndarray, dict]:
    """Turn a policy action into (the array to write, ``add_layer`` keyword arguments): the mode
    prepares the tensor (ternarize, prune) and consumes the parameters that say how."""
    params = dict(action)
    if params.get("mode") is None:  # the lossless default
        return array, {}
    mode = get_mode(params.pop("mode"))
    array, params = mode.prepare(array, params)
    return array, {"mode": mode.name, **params}
