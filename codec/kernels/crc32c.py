"""CRC32C (Castagnoli) in pure Python: the reference for ``codec._fast.crc32c``.

The checksum of spec/bitstream.md: reflected polynomial 0x82F63B78, initial value and final XOR
0xFFFFFFFF (as iSCSI, RFC 3720). ``crc32c(b, crc32c(a)) == crc32c(a + b)``, like ``zlib.crc32``.
"""

from __future__ import annotations

__all__ = ["crc32c", "crc32c_copy", "crc32c_combine", "CRC32C_POLY"]

#: The reflected Castagnoli polynomial (C: CRC32C_POLY in crc32c_impl.h).
CRC32C_POLY = 0x82F63B78


def _make_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ CRC32C_POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c(data, crc: int = 0) -> int:
    """Return the CRC32C of ``data`` continuing from the CRC32C ``crc`` of earlier bytes."""
    table = _TABLE
    c = crc ^ 0xFFFFFFFF
    view = memoryview(data).cast("B")
    for start in range(0, len(view), 1 << 16):  # pieces: no copy of a whole layer's payload
        for byte in view[start:start + (1 << 16)].tobytes():
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


def _gf2_times(mat: list[int], vec: int) -> int:
    total = 0
    i = 0
    while vec:
        if vec & 1:
            total ^= mat[i]
        vec >>= 1
        i += 1
    return total


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """Return the CRC32C of A + B given ``crc1`` of A, ``crc2`` of B and ``len2`` = len(B).

    CRCs are linear over GF(2): appending len2 zero bytes to A is a 32x32 bit-matrix applied to
    ``crc1``; the matrix for 2^k bytes is squared up from the one-bit operator (zlib's method).
    """
    if len2 < 0:
        raise ValueError("len2 must be >= 0")
    if len2 == 0:
        return crc1
    op = [CRC32C_POLY] + [1 << n for n in range(31)]  # one zero bit
    op = _gf2_square(_gf2_square(op))  # four zero bits
    while len2:
        op = _gf2_square(op)  # 1, 2, 4, ... zero bytes
        if len2 & 1:
            crc1 = _gf2_times(op, crc1)
        len2 >>= 1
    return crc1 ^ crc2
