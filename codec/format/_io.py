"""Helpers shared by the syntax functions of :mod:`codec.format`."""

from __future__ import annotations

from .. import _backend
from ..errors import ChecksumError, TruncatedError
from .constants import KNOWN_VERSIONS


def check_crc(buf, start: int, end: int, stored: int, *, path: str, base_offset: int) -> None:
    """Raise ChecksumError unless the CRC32C of ``buf[start:end]`` is ``stored``."""
    actual = _backend.crc32c(buf[start:end])
    if actual != stored:
        raise ChecksumError(f"crc32c mismatch: stored 0x{stored:08x}, computed 0x{actual:08x}", path=path,
                            bit_offset=(base_offset + end) * 8)


def take(buf, size: int, *, path: str, base_offset: int):
    """The first ``size`` bytes of ``buf``, or TruncatedError."""
    if len(buf) < size:
        raise TruncatedError(f"need {size} bytes, {len(buf)} left", path=path, bit_offset=base_offset * 8,
                             bits_needed=size * 8, bits_available=len(buf) * 8)
    return buf[:size]


def finish_structure(r, version: tuple[int, int], name: str) -> None:
    """Step over fields a newer minor version appended before a checksum; reject them otherwise (section 11)."""
    left = r.bits_left()
    if left:
        major, minor = version
        if minor > KNOWN_VERSIONS.get(major, -1):
            r.view(left // 8, "extension_bytes")
        else:
            raise r.error(f"{left // 8} unparsed bytes before the checksum", name)
