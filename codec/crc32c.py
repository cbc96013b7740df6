"""CRC32C (Castagnoli) in pure Python: the reference for ``codec._fast._crc32c``.

The checksum of spec/bitstream.md: reflected polynomial 0x82F63B78, initial value and final XOR
0xFFFFFFFF (as iSCSI, RFC 3720). ``crc32c(b, crc32c(a)) == crc32c(a + b)``, like ``zlib.crc32``.
"""

from __future__ import annotations

__all__ = ["crc32c", "crc32c_copy", "POLY"]

POLY = 0x82F63B78


def _make_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c(data, crc: int = 0) -> int:
    """Return the CRC32C of ``data`` continuing from the CRC32C ``crc`` of earlier bytes."""
    table = _TABLE
    c = crc ^ 0xFFFFFFFF
    for byte in memoryview(data).cast("B").tobytes():
        c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc32c_copy(dst, src, crc: int = 0) -> int:
    """Copy ``src`` into ``dst`` (same length) and return the CRC32C of the bytes copied."""
    s = memoryview(src).cast("B")
    d = memoryview(dst).cast("B")
    if len(s) != len(d):
        raise ValueError(f"crc32c_copy: source has {len(s)} bytes, destination {len(d)}")
    d[:] = s
    return crc32c(s, crc)
