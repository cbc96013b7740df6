"""``metadata()`` and ``typed_value()`` (spec section 4.1)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .. import _backend
from ..errors import EncodeError, LimitError, TruncatedError
from .constants import MAX_STRING_BYTES, ValueType
from .limits import Limits

__all__ = ["UnknownValue", "normalize_metadata", "encode_str", "write_typed_value", "read_typed_value",
           "write_metadata", "read_metadata"]

_log = logging.getLogger("codec")


class UnknownValue(bytes):
    """A metadata value whose ``value_type`` this reader does not know (kept as its raw bytes)."""

    value_type: int

    def __new__(cls, value_type: int, data: bytes):
        obj = super().__new__(cls, data)
        obj.value_type = value_type
        return obj


def encode_str(text: str, path: str) -> bytes:
    """The UTF-8 bytes of an ``st`` string, or EncodeError (lone surrogates, too long)."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError("string is not valid unicode (lone surrogate)", path=path) from None
    if len(raw) > MAX_STRING_BYTES:
        raise EncodeError(f"string of {len(raw)} UTF-8 bytes exceeds {MAX_STRING_BYTES}", path=path)
    return raw


def _normalize_value(value, path: str, depth: int, limits: Limits):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if not -(1 << 63) <= value < (1 << 63):
            raise EncodeError(f"metadata int {value} does not fit int64", path=path)
        return value
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        if depth >= limits.max_nesting:
            raise EncodeError(f"metadata lists nested deeper than max_nesting={limits.max_nesting}", path=path)
        return [_normalize_value(v, f"{path}[{i}]", depth + 1, limits) for i, v in enumerate(value)]
    raise EncodeError(
        f"metadata value of type {type(value).__name__} is not int, float, bool, str, bytes or list", path=path
    )


def normalize_metadata(metadata, limits: Limits | None = None) -> dict[str, Any]:
    """Return ``metadata`` as a dict of supported values; raise EncodeError for anything else."""
    limits = limits or Limits()
    if metadata is None:
        return {}
    try:
        items = list(metadata.items())
    except AttributeError:
        raise EncodeError(f"metadata must be a mapping, got {type(metadata).__name__}") from None
    out = {}
    for key, value in items:
        if not isinstance(key, str):
            raise EncodeError(f"metadata key {key!r} is not a str")
        encode_str(key, f"metadata[{key!r}]")
        out[key] = _normalize_value(value, f"metadata[{key!r}]", 0, limits)
    return out


def write_typed_value(w, value) -> None:
    """Write ``typed_value()``: value_type u8, value_size u32le, the value."""
    if isinstance(value, bool):
        w.u8(ValueType.BOOL)
        w.u32le(1)
        w.u8(int(value))
    elif isinstance(value, int):
        w.u8(ValueType.INT)
        w.u32le(8)
        w.i64le(value)
    elif isinstance(value, float):
        w.u8(ValueType.FLOAT)
        w.u32le(8)
        w.f64le(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        w.u8(ValueType.STR)
        w.u32le(len(raw))
        w.b(raw)
    elif isinstance(value, bytes):
        w.u8(ValueType.BYTES)
        w.u32le(len(value))
        w.b(value)
    elif isinstance(value, list):
        inner = _backend.BitWriter()
        inner.u32le(len(value))
        for item in value:
            write_typed_value(inner, item)
        data = inner.getvalue()
        w.u8(ValueType.LIST)
        w.u32le(len(data))
        w.b(data)
    else:  # normalize_metadata rules this out
        raise EncodeError(f"unsupported metadata value {value!r}")


def read_typed_value(r, name: str, depth: int, limits: Limits):
    """Read ``typed_value()``; unknown value types come back as :class:`UnknownValue`."""
    start = r.pos
    value_type = r.u8(f"{name}.value_type", enum=ValueType)
    value_size = r.u32le(f"{name}.value_size")
    if value_size * 8 > r.bits_left():
        raise r.error(f"value_size {value_size} exceeds the {r.bits_left() // 8} bytes left", f"{name}.value_size",
                      cls=TruncatedError)
    end = r.pos + value_size * 8
    if value_type == ValueType.INT:
        if value_size != 8:
            raise r.error(f"int value_size must be 8, got {value_size}", f"{name}.value_size", at=start)
        value = r.i64le(f"{name}.value_int")
    elif value_type == ValueType.FLOAT:
        if value_size != 8:
            raise r.error(f"float value_size must be 8, got {value_size}", f"{name}.value_size", at=start)
        value = r.f64le(f"{name}.value_float")
    elif value_type == ValueType.BOOL:
        if value_size != 1:
            raise r.error(f"bool value_size must be 1, got {value_size}", f"{name}.value_size", at=start)
        raw = r.u8(f"{name}.value_bool")
        if raw > 1:
            raise r.error(f"bool value must be 0 or 1, got {raw}", f"{name}.value_bool", at=r.pos - 8)
        value = bool(raw)
    elif value_type == ValueType.STR:
        raw = r.b(value_size, f"{name}.value_str")
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise r.error(f"invalid UTF-8 at string byte {exc.start}", f"{name}.value_str",
                          at=end - value_size * 8) from None
    elif value_type == ValueType.BYTES:
        value = r.b(value_size, f"{name}.value_bytes")
    elif value_type == ValueType.LIST:
        if depth >= limits.max_nesting:
            raise r.error(f"metadata lists nested deeper than max_nesting={limits.max_nesting}", name, at=start,
                          cls=LimitError)
        count = r.u32le(f"{name}.list_count")
        # Each element takes at least 5 bytes (value_type and value_size).
        if count * 5 * 8 > end - r.pos:
            raise r.error(f"list_count {count} does not fit in value_size {value_size}", f"{name}.list_count",
                          at=r.pos - 32)
        value = [read_typed_value(r, f"{name}[{i}]", depth + 1, limits) for i in range(count)]
    else:
        # A newer minor version may add value types; value_size lets us step over them.
        _log.warning("%s: skipping metadata value of unknown value_type %d", r.where(name), value_type)
        value = UnknownValue(value_type, r.b(value_size, f"{name}.value_data"))
    if r.pos != end:
        raise r.error(f"value_size {value_size} does not match the value's {(r.pos - start) // 8 - 5} bytes",
                      f"{name}.value_size", at=start + 8)
    return value


def write_metadata(w, metadata: dict[str, Any]) -> None:
    """Write ``metadata()``: metadata_count u32le, then metadata_key and typed_value() per entry."""
    w.u32le(len(metadata))
    for key, value in metadata.items():
        w.st(key)
        write_typed_value(w, value)


def read_metadata(r, limits: Limits, *, taken=()) -> dict[str, Any]:
    """Read ``metadata()``; values of unknown type are skipped (and their keys dropped). ``taken``:
    keys read before (a metadata unit's keys may not repeat them, section 5.7)."""
    count = r.u32le("metadata_count")
    # Each entry takes at least 7 bytes (empty key: 2, value_type and value_size: 5).
    if count * 7 * 8 > r.bits_left():
        raise r.error(f"metadata_count {count} exceeds what {r.bits_left() // 8} bytes can hold", "metadata_count",
                      at=r.pos - 32, cls=TruncatedError)
    metadata: dict[str, Any] = {}
    for i in range(count):
        key_pos = r.pos
        key = r.st(f"metadata[{i}].metadata_key", max_bytes=limits.max_name_bytes)
        if key in metadata:
            raise r.error(f"duplicate metadata key {key!r}", f"metadata[{i}].metadata_key", at=key_pos)
        if key in taken:
            raise r.error(f"metadata key {key!r} repeats a key of the network header or an earlier metadata unit",
                          f"metadata[{i}].metadata_key", at=key_pos)
        value = read_typed_value(r, f"metadata[{i}]", 0, limits)
        if not isinstance(value, UnknownValue):
            metadata[key] = value
    return metadata


def read_metadata_unit(payload, payload_offset: int, limits: Limits, *, taken, path: str,
                       trace=None) -> dict[str, Any]:
    """Read the payload of a metadata unit (section 5.7): one ``metadata()`` filling it exactly,
    with keys not in ``taken``. The caller checks the payload size and CRC."""
    from .. import _backend

    r = _backend.bit_reader(payload, payload_offset, path, trace)
    metadata = read_metadata(r, limits, taken=taken)
    left = r.bits_left() // 8
    if left:
        raise r.error(f"{left} bytes after metadata()", "metadata")
    return metadata


def write_metadata_unit_payload(metadata: dict[str, Any]) -> bytes:
    from .. import _backend

    w = _backend.BitWriter()
    write_metadata(w, metadata)
    return w.getvalue()
