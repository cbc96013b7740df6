"""Delta bitstreams (spec 10.1): a model stored as its changes to a base model.

:func:`save_delta` leaves out the layers that equal the base, stores the difference of a changed layer
(coding mode ``delta``, spec 6.10) where its mode is lossy or its dtype an integer type, and the whole
layer otherwise; the file names the base by the SHA-256 content digest of its decoded tensors, so
:func:`apply_delta` refuses another base. A base is a file, bytes, a dict of arrays, or a chain
``[base, update1, update2, ...]`` applied in order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .dtypes import dtype_code_of
from .errors import BaseMismatchError, EncodeError, FormatError
from .format.constants import CodingMode, DType

__all__ = ["BASE_KEY", "REMOVED_KEY", "CHANGES_KEY", "BaseModel", "close_base", "LayerChange", "change_of", "changes_to_metadata",
           "changes_from_metadata", "content_digest", "resolve_base", "apply_delta", "delta_items", "is_delta",
           "UpdatedModel"]

_log = logging.getLogger("codec")

#: metadata keys of a delta bitstream (spec 10.1)
BASE_KEY = "codec.delta.base"
REMOVED_KEY = "codec.delta.removed"
#: informative: what each changed layer's update is, measured by the writer (spec 10.1)
CHANGES_KEY = "codec.delta.changes"
#: the lowest format version of a delta bitstream
DELTA_VERSION = (2, 5)
#: float modes whose layers a delta stores whole when changed (they are lossless: base + difference in
#: floating point would not give the tensor back bit for bit)
_WHOLE_FLOAT_MODES = {None, "raw", "zstd", "floatplanes"}
_INTEGER = {DType.INT8, DType.INT16, DType.INT32, DType.INT64, DType.UINT8, DType.UINT16, DType.UINT32,
            DType.UINT64}


def content_digest(tensors: Mapping[str, Any]) -> str:
    """The SHA-256 content digest of named tensors (spec 10.1), as 64 lower-case hex digits."""
    h = hashlib.sha256()
    for name, array in tensors.items():
        a = np.asarray(array)
        code = dtype_code_of(a)
        encoded = name.encode("utf-8")
        h.update(struct.pack("<I", len(encoded)) + encoded + struct.pack("<BB", code, a.ndim))
        h.update(struct.pack(f"<{a.ndim}Q", *a.shape))
        if code == DType.BFLOAT16:
            a = a.view(np.uint16)
        elif code == DType.BOOL:
            a = a.astype(np.uint8)
        h.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).reshape(-1).view(np.uint8))
    return h.hexdigest()


@dataclass(frozen=True)
class LayerChange:
    """How much one layer changed from the base (or from ``previous``): ``changed`` of ``elements``
    elements differ bit for bit; energies are sums over finite elements (float64) of the reference's
    squares and of the change's squares; ``max_abs_change`` the largest absolute change."""

    name: str
    elements: int
    changed: int
    base_energy: float
    change_energy: float
    max_abs_change: float

    @property
    def changed_fraction(self) -> float:
        return self.changed / self.elements if self.elements else 0.0

    @property
    def rel_change(self) -> float:
        """||change|| / ||reference|| (inf when the reference is all zero and the change is not)."""
        if self.base_energy > 0 and math.isfinite(self.base_energy):
            return math.sqrt(self.change_energy / self.base_energy)
        return 0.0 if self.change_energy == 0 else math.inf


#: elements per block of the passes over a layer (their float64 temporaries stay small)
_BLOCK = 1 << 14


def _flat_bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a).reshape(-1)
    return a.view(np.dtype(f"u{a.dtype.itemsize}")) if a.dtype != np.bool_ else a


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays of one dtype and shape hold the same bits (NaNs by their payload), block by block."""
    x, y = _flat_bits(a), _flat_bits(b)
    return all(np.array_equal(x[i:i + _BLOCK], y[i:i + _BLOCK]) for i in range(0, x.size, _BLOCK))


def change_of(name: str, new: np.ndarray, ref: np.ndarray) -> LayerChange:
    """The :class:`LayerChange` from ``ref`` to ``new`` (same dtype and shape): integers as signed
    differences, bool as flips; computed block by block."""
    n = new.size
    x, y = _flat_bits(new), _flat_bits(ref)
    if new.dtype == np.bool_:
        flips = int(np.count_nonzero(x != y))
        return LayerChange(name, n, flips, float(np.count_nonzero(y)), float(flips), 1.0 if flips else 0.0)
    a, b = np.ascontiguousarray(new).reshape(-1), np.ascontiguousarray(ref).reshape(-1)
    changed, base_energy, change_energy, largest = 0, 0.0, 0.0, 0.0
    for i in range(0, n, _BLOCK):
        changed += int(np.count_nonzero(x[i:i + _BLOCK] != y[i:i + _BLOCK]))
        w = b[i:i + _BLOCK].astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            d = a[i:i + _BLOCK].astype(np.float64) - w
        finite = np.isfinite(d) & np.isfinite(w)
        if not finite.all():
            w, d = w[finite], d[finite]
        base_energy += float(np.dot(w, w))
        change_energy += float(np.dot(d, d))
        if d.size:
            largest = max(largest, float(np.abs(d).max()))
    return LayerChange(name, n, changed, base_energy, change_energy, largest)


def _finite(x: float):
    """Six significant digits (a record, not data: ~60 bytes a layer), None where not finite."""
    return float(f"{x:.6g}") if math.isfinite(x) else None


def changes_to_metadata(changes: list[LayerChange]) -> str:
    """The JSON text stored under :data:`CHANGES_KEY`: ``{"format": 1, "layers": {name: [elements,
    changed, base_energy, change_energy, max_abs_change]}}`` (six significant digits; null where not
    finite)."""
    doc = {"format": 1, "layers": {c.name: [c.elements, c.changed, _finite(c.base_energy), _finite(c.change_energy),
                                            _finite(c.max_abs_change)] for c in changes}}
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


def changes_from_metadata(text: str) -> list[LayerChange]:
    """The layers of a :data:`CHANGES_KEY` text; ValueError when it is not one."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("format") != 1 or not isinstance(doc.get("layers"), dict):
        raise ValueError(f"not a {CHANGES_KEY} record of format 1")
    out = []
    for name, entry in doc["layers"].items():
        if not (isinstance(entry, list) and len(entry) == 5 and all(isinstance(v, int) for v in entry[:2])
                and all(v is None or isinstance(v, (int, float)) for v in entry[2:])):
            raise ValueError(f"{CHANGES_KEY}: bad entry for layer {name!r}")
        out.append(LayerChange(name, entry[0], entry[1], *(math.inf if v is None else float(v) for v in entry[2:])))
    return out


def total_change(changes: list[LayerChange]) -> LayerChange | None:
    """The changed layers together (energies summed), or None without any."""
    if not changes:
        return None
    return LayerChange("(all changed layers)", sum(c.elements for c in changes), sum(c.changed for c in changes),
                       sum(c.base_energy for c in changes), sum(c.change_energy for c in changes),
                       max(c.max_abs_change for c in changes))


def is_delta(metadata: Mapping[str, Any]) -> bool:
    return BASE_KEY in metadata


class BaseModel(Mapping):
    """A bitstream's layers as a read-only mapping, each decoded when asked for: a base model that is
    not held whole (iterating ``items()`` holds one layer at a time). Closes its reader on ``close()``."""

    def __init__(self, reader):
        self.reader = reader
        self._names = reader.keys()

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.reader:
            raise KeyError(name)
        return self.reader.get(name)

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name) -> bool:
        return name in self.reader

    def spec(self, name: str) -> tuple[tuple[int, ...], str]:
        """The layer's shape and dtype name, without decoding it."""
        h = self.reader.header(name)
        return tuple(h.layer_shape), h.dtype_name

    def close(self) -> None:
        self.reader.close()


def _spec(model, name: str) -> tuple[tuple[int, ...], str]:
    if hasattr(model, "spec"):
        return model.spec(name)
    from .format.constants import DTYPE_NAMES

    a = np.asarray(model[name])
    return tuple(a.shape), DTYPE_NAMES[dtype_code_of(a)]


def _open_base(source, *, limits, verify):
    from .reader import Reader

    reader = Reader(source, limits=limits, verify=verify)
    if is_delta(reader.metadata):
        reader.close()
        raise BaseMismatchError(f"the base {_label(source)} is itself a delta bitstream: pass the chain, "
                                f"base=[its base, ..., {_label(source)}]")
    return reader


def _label(source) -> str:
    return repr(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>"


def resolve_base(base, *, limits=None, verify: bool = True, lazy: bool = False):
    """The base model's tensors (name -> array, in order) from a path, bytes, a mapping, or a chain
    ``[base, update, ...]`` whose updates are delta bitstreams applied in order.

    ``lazy``: a mapping that decodes each layer when asked for (:class:`BaseModel`, or for a chain an
    :class:`UpdatedModel` over one), so memory holds about one layer; the caller closes it (``close_base``);
    every update's base digest is still checked (a pass over the model below it). Else a dict."""
    from .reader import Reader

    if base is None:
        raise BaseMismatchError("no base given")
    if isinstance(base, Mapping):
        return base if lazy else {name: np.asarray(array) for name, array in base.items()}
    if isinstance(base, (list, tuple)):
        if not base:
            raise BaseMismatchError("an empty base chain")
        model = resolve_base(base[0], limits=limits, verify=verify, lazy=lazy)
        owned = model is not base[0]  # a caller's mapping is the caller's to close
        try:
            for update in base[1:]:
                reader = Reader(update, limits=limits, verify=verify)
                try:
                    updated = UpdatedModel(reader, model, close_base=lazy and owned)
                    owned = True
                except BaseException:
                    reader.close()
                    raise
                if lazy:
                    model = updated
                else:
                    with updated:
                        model = {name: updated[name] for name in updated}
        except BaseException:
            if owned:
                close_base(model)
            raise
        return model
    reader = _open_base(base, limits=limits, verify=verify)
    if lazy:
        return BaseModel(reader)
    with reader:
        return {name: reader.get(name) for name in reader.keys()}


def close_base(model) -> None:
    """Close what :func:`resolve_base` opened (nothing for a dict)."""
    close = getattr(model, "close", None)
    if close is not None:
        close()


def _add(base: np.ndarray, difference: np.ndarray, header) -> np.ndarray:
    """base + difference as spec 10.1 says for the layer's dtype."""
    from .dtypes import float_output

    code = header.layer_dtype
    if code == DType.BOOL:
        return np.logical_xor(base, difference)
    if code in _INTEGER or code in (DType.FLOAT32, DType.FLOAT64):
        with np.errstate(over="ignore"):
            return base + difference  # same dtype: integers wrap, floats round to nearest
    with np.errstate(over="ignore"):
        flat32 = base.astype(np.float32).reshape(-1) + difference.astype(np.float32).reshape(-1)
    return float_output(header, flat32)


def apply_delta(reader, base: Mapping[str, np.ndarray]) -> dict:
    """The model a delta bitstream (an open :class:`codec.Reader`) makes of ``base`` (spec 10.1)."""
    model = UpdatedModel(reader, base)
    return {name: model[name] for name in model}


class UpdatedModel(Mapping):
    """A delta bitstream opened with its base (``codec.open(path, base=...)``): the updated model's layers by
    name, each decoded (and added to its base layer) when asked for. A context manager; closes the reader
    (and the base, if ``close_base``). Checking the base's digest reads every base layer once, one at a
    time; the base may itself be lazy (:class:`BaseModel` or another UpdatedModel)."""

    def __init__(self, reader, base: Mapping[str, np.ndarray], *, close_base: bool = False):
        self.reader = reader
        self.metadata = reader.metadata
        self._close_base = close_base
        want = reader.metadata.get(BASE_KEY)
        if want is None:
            raise BaseMismatchError("a base was given, but this is not a delta bitstream (its metadata has no "
                                    f"{BASE_KEY})")
        got = content_digest(base)
        if got != want:
            raise BaseMismatchError(f"this delta bitstream applies to the base of content digest {want}; the base "
                                    f"given has {got}")
        self._base = base
        names = set(reader.keys())
        removed = reader.metadata.get(REMOVED_KEY, [])
        if not isinstance(removed, list) or not all(isinstance(n, str) for n in removed):
            raise FormatError(f"metadata {REMOVED_KEY} must be a list of layer names", path=f"metadata.{REMOVED_KEY}")
        for name in removed:
            if name not in base or name in names:
                raise FormatError(f"metadata {REMOVED_KEY} names {name!r}, which the base lacks or this file holds",
                                  path=f"metadata.{REMOVED_KEY}")
        removed = set(removed)
        self._names = [n for n in base if n not in removed] + [n for n in reader.keys() if n not in base]
        self._in_file = names
        self._set = set(self._names)

    def keys(self) -> list[str]:
        return list(self._names)

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name) -> bool:
        return name in self._set

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._set:
            raise KeyError(name)
        if name not in self._in_file:
            return self._base[name]
        header = self.reader.header(name)
        if header.coding_mode != CodingMode.DELTA:
            return self.reader.get(name)
        return _layer(self.reader, name, self._base[name] if name in self._base else None)

    def get(self, name: str, default=None):
        return self[name] if name in self._set else default

    def spec(self, name: str) -> tuple[tuple[int, ...], str]:
        """The layer's shape and dtype name, without decoding it."""
        if name not in self._set:
            raise KeyError(name)
        if name in self._in_file:
            h = self.reader.header(name)
            return tuple(h.layer_shape), h.dtype_name
        return _spec(self._base, name)

    def changed(self) -> list[str]:
        """The layers this update stores (as differences or whole)."""
        return [n for n in self._names if n in self._in_file]

    def close(self) -> None:
        self.reader.close()
        if self._close_base:
            close_base(self._base)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _layer(reader, name: str, base):
    header = reader.header(name)
    if header.coding_mode != CodingMode.DELTA:
        return reader.get(name)
    if base is None:
        raise BaseMismatchError(f"layer {name!r} is a difference to the base's layer of that name, which the base "
                                "lacks", path=header.path)
    if dtype_code_of(base) != header.layer_dtype or tuple(base.shape) != tuple(header.layer_shape):
        raise BaseMismatchError(f"layer {name!r} is a difference to a {header.dtype_name} tensor of shape "
                                f"{tuple(header.layer_shape)}; the base's is {base.dtype} {tuple(base.shape)}",
                                path=header.path)
    return _add(base, reader.get_difference(name), header)


def delta_items(actions, base: Mapping[str, np.ndarray], previous: Mapping[str, np.ndarray] | None = None, *,
                changes: list | None = None):
    """The layers of a delta bitstream: from ``actions`` ((name, array, policy action) with the action a
    dict holding ``mode`` (None: the lossless default) and its parameters) and the base, the
    (name, array, add_layer parameters) to write, and the base's names the actions lack (for
    ``codec.delta.removed``).

    ``previous``: the tensors the base was encoded from (a lossy base decodes to other values). With it, a
    layer equal to its previous tensor is unchanged and a lossy mode codes ``new - previous`` (the update
    alone; the decoded layer keeps the base's coding error). Without it, both compare with the decoded base
    (right for a lossless base; with a lossy one every layer differs by the base's coding error)."""
    from . import policy as policies

    kept, seen = [], set()
    for name, array, action in actions:
        seen.add(name)
        a = np.asarray(array)
        b = base.get(name)
        if b is not None and dtype_code_of(a) == dtype_code_of(b) and a.shape == b.shape:
            ref = b if previous is None or name not in previous else np.asarray(previous[name])
            if ref.dtype != a.dtype or ref.shape != a.shape:
                raise EncodeError(f"previous tensor {name!r} is {ref.dtype} {ref.shape}; the new one {a.dtype} {a.shape}")
            if same_bits(a, ref):
                continue  # unchanged: the base's layer
            if changes is not None:
                changes.append(change_of(name, a, ref))
            code = dtype_code_of(a)
            mode = action.get("mode")
            if code == DType.BOOL or code in _INTEGER:  # an exact difference: wrapping subtraction, xor
                diff = np.logical_xor(a, b) if code == DType.BOOL else a - b
                # the level coder holds integers below 2^63: a uint64 difference beyond is stored raw
                fits = code != DType.UINT64 or not diff.size or int(diff.max()) < 1 << 63
                diff, params = policies.apply({**action, "mode": mode or ("entropy" if fits else "raw")}, diff)
                kept.append((name, diff, {"mode": "delta", "delta_mode": params.pop("mode"), **params}))
                continue
            if mode not in _WHOLE_FLOAT_MODES:  # a lossy mode codes the difference to the decoded base
                wide = np.float64 if code == DType.FLOAT64 else np.float32
                diff = (a.astype(wide) - ref.astype(wide)).astype(a.dtype)
                diff, params = policies.apply(action, diff)
                kept.append((name, diff, {"mode": "delta", "delta_mode": params.pop("mode"), **params}))
                continue
        kept.append((name, *policies.apply(action, a)))  # new, reshaped, or lossless float: whole
    removed = [name for name in base if name not in seen]
    return kept, removed


def check_mode(mode) -> None:
    if mode == "delta":
        raise EncodeError("save_delta chooses mode 'delta' itself; give the mode of the differences")
