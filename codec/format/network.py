"""``network_header()`` (spec section 4) and the ``qp_set()`` frame it shares with layer headers (5.5)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import _backend
from ..errors import FormatError, UnsupportedError
from ._io import check_crc, finish_structure, take
from .constants import CRC_SIZE, KNOWN_VERSIONS, MAGIC, NETWORK_PREFIX_SIZE, VERSION_MAJOR, VERSION_MINOR
from .limits import Limits
from .metadata import read_metadata, write_metadata

__all__ = ["NetworkHeader", "write_network_header", "read_network_header", "network_header_size",
           "write_qp_set", "read_qp_set", "GLOBAL_QP_SET_OFFSET"]

#: File offset of ``global_qp_set``'s ``qp_set_data`` (after the fixed prefix and qp_set_size).
GLOBAL_QP_SET_OFFSET = NETWORK_PREFIX_SIZE + 4


@dataclasses.dataclass(frozen=True)
class NetworkHeader:
    """Decoded ``network_header()``."""

    version_major: int
    version_minor: int
    network_header_size: int
    layer_count: int
    network_flags: int
    global_qp_set: bytes
    metadata: dict[str, Any]

    @property
    def version(self) -> tuple[int, int]:
        return (self.version_major, self.version_minor)


def write_qp_set(w, data: bytes) -> None:
    """Write ``qp_set()``: qp_set_size u32le, then qp_set_data (section 8.1; empty for an empty set)."""
    w.u32le(len(data))
    w.b(data)


def read_qp_set(r, name: str) -> bytes:
    size = r.u32le(f"{name}.qp_set_size")
    return r.b(size, f"{name}.qp_set_data")


def write_network_header(*, layer_count: int, metadata: dict[str, Any], global_qp_set: bytes = b"",
                         network_flags: int = 0, version: tuple[int, int] = (VERSION_MAJOR, VERSION_MINOR)) -> bytes:
    """Return the bytes of ``network_header()``; ``metadata`` must be normalized."""
    body = _backend.BitWriter()
    write_qp_set(body, global_qp_set)
    write_metadata(body, metadata)
    body = body.getvalue()
    size = NETWORK_PREFIX_SIZE + len(body) + CRC_SIZE
    w = _backend.BitWriter()
    w.b(MAGIC)
    if version[0] not in KNOWN_VERSIONS:
        raise ValueError(f"cannot write version {version[0]}.x")
    w.u8(version[0])
    w.u8(version[1])
    w.u32le(size)
    w.u32le(layer_count)
    w.u16le(network_flags)
    w.b(body)
    data = w.getvalue()
    return data + _backend.crc32c(data).to_bytes(CRC_SIZE, "little")


def network_header_size(prefix) -> int:
    """Return ``network_header_size`` from the first 20 bytes, after checking magic and version."""
    r = _backend.bit_reader(take(prefix, NETWORK_PREFIX_SIZE, path="network_header", base_offset=0), 0,
                            "network_header")
    magic = r.b(8, "nnc_magic")
    if magic != MAGIC:
        raise FormatError(f"not a codec bitstream: magic {magic!r}", path="network_header.nnc_magic", bit_offset=0)
    major = r.u8("version_major")
    if major not in KNOWN_VERSIONS:
        known = " and ".join(f"{m}.x" for m in KNOWN_VERSIONS)
        raise UnsupportedError(f"version {major}.x is not supported (this reader knows {known})",
                               path="network_header.version_major", bit_offset=64)
    r.u8("version_minor")
    size = r.u32le("network_header_size")
    if size < NETWORK_PREFIX_SIZE + CRC_SIZE + 8:
        raise FormatError(f"network_header_size {size} is smaller than the smallest header",
                          path="network_header.network_header_size", bit_offset=80)
    return size


def read_network_header(buf, limits: Limits, *, trace=None) -> NetworkHeader:
    """Read ``network_header()`` from the start of ``buf`` (which holds at least the header)."""
    size = network_header_size(buf)
    limits.check("max_metadata_bytes", size, path="network_header.network_header_size", bit_offset=80)
    data = take(buf, size, path="network_header", base_offset=0)
    stored = int.from_bytes(data[size - CRC_SIZE : size], "little")
    check_crc(data, 0, size - CRC_SIZE, stored, path="network_header.network_header_crc32c", base_offset=0)
    r = _backend.bit_reader(data[: size - CRC_SIZE], 0, "network_header", trace)
    r.b(8, "nnc_magic")
    version_major = r.u8("version_major")
    version_minor = r.u8("version_minor")
    r.u32le("network_header_size")
    layer_count = r.u32le("layer_count")
    network_flags = r.u16le("network_flags")
    limits.check("max_layers", layer_count, path="network_header.layer_count", bit_offset=96)
    global_qp = read_qp_set(r, "global_qp_set")
    metadata = read_metadata(r, limits)
    finish_structure(r, (version_major, version_minor), "network_header")
    tail = _backend.bit_reader(data, 0, "network_header", trace)
    tail.pos = (size - CRC_SIZE) * 8
    tail.u32le("network_header_crc32c")
    return NetworkHeader(version_major, version_minor, size, layer_count, network_flags, global_qp, metadata)
