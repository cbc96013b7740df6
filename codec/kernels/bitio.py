"""Pure-Python bit reader and writer: the reference for ``codec._fast.bitio``.

Method names are the descriptors of spec/bitstream.md section 2:

* ``u(n)``: unsigned integer of n bits (0 <= n <= 64), most significant bit first;
* ``ue(k)`` / ``se(k)``: k-th order Exp-Golomb, unsigned / signed;
* ``u8``, ``u16le``, ``u32le``, ``u64le``, ``i64le``, ``f32le``, ``f64le``: fixed-width fields, byte
  aligned, little-endian;
* ``b(n)``: n bytes; ``st``: a length-prefixed UTF-8 string (``u16le`` length, then bytes);
* ``byte_alignment()``: zero bits up to the next byte boundary.

Every read method takes the syntax element's name; errors name it with the reader's ``path``
prefix and the absolute position (``base_offset`` bytes plus the bit position in ``data``).
The pure reader can record every element it reads (``trace``), which ``codec-dump --fields`` uses;
``enum=`` names the IntEnum of an element's values so the trace shows names.
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import EncodeError, FormatError, LimitError, TruncatedError
from . import Field

__all__ = ["BitReader", "BitWriter", "UE_MAX_PREFIX"]

#: An Exp-Golomb code ``ue(k)`` has at most ``63 - k`` leading zero bits, so values fit 64 bits.
UE_MAX_PREFIX = 63

_U64_LIMIT = 1 << 64


class BitReader:
    """Read syntax elements from a bytes-like object.

    Parameters
    ----------
    data : bytes-like
        The bits to read. Not copied.
    bit_offset : int
        Where to start, in bits from the start of ``data``.
    base_offset : int
        Byte offset of ``data[0]`` in the file; only used in error messages and traces.
    trace : list or None
        If a list, every element read is appended to it as a :class:`Field`.
    """

    def __init__(self, data, /, *, bit_offset: int = 0, base_offset: int = 0, trace: list | None = None):
        self._buf = memoryview(data).cast("B")
        self._nbits = len(self._buf) * 8
        if not 0 <= bit_offset <= self._nbits:
            raise ValueError("bit_offset outside data")
        self.pos = bit_offset
        self.base_offset = base_offset
        self.path = ""
        self.trace = trace

    @property
    def data(self) -> memoryview:
        """The bytes read (positions are bits from their start)."""
        return self._buf

    # -- helpers ---------------------------------------------------------------------------
    def bits_left(self) -> int:
        """Return the number of bits between the position and the end of the data."""
        return self._nbits - self.pos

    def is_byte_aligned(self) -> bool:
        return self.pos % 8 == 0

    def where(self, name: str | None) -> str:
        """Return the syntax path of element ``name`` under the current ``path``."""
        if not name:
            return self.path or "<data>"
        return f"{self.path}.{name}" if self.path else name

    def error(self, reason: str, name=None, *, cls=FormatError, at: int | None = None):
        """Return an error of class ``cls`` about element ``name`` (at bit ``at`` or here)."""
        pos = self.pos if at is None else at
        return cls(reason, path=self.where(name), bit_offset=self.base_offset * 8 + pos)

    def _need(self, n: int, name) -> None:
        if n > self._nbits - self.pos:
            raise TruncatedError(
                f"need {n} bits, {self._nbits - self.pos} left",
                path=self.where(name),
                bit_offset=self.base_offset * 8 + self.pos,
                bits_needed=n,
                bits_available=self._nbits - self.pos,
            )

    def _record(self, name, start: int, descriptor: str, value) -> None:
        if self.trace is not None:
            self.trace.append(Field(self.where(name), self.base_offset * 8 + start, self.pos - start, descriptor, value))

    def _aligned(self, name) -> None:
        if self.pos % 8:
            # A syntax table puts byte_alignment() before every fixed-width field; reaching one
            # unaligned is a bug in the caller, not in the data.
            raise RuntimeError(f"{self.where(name)}: fixed-width field read at unaligned bit {self.pos}")

    def _peek(self, n: int) -> int:
        start = self.pos
        end = start + n
        first = start >> 3
        last = (end + 7) >> 3
        value = int.from_bytes(self._buf[first:last], "big")
        value >>= last * 8 - end
        return value & ((1 << n) - 1)

    # -- bit fields --------------------------------------------------------------------------
    def u(self, n: int, name: str | None = None, *, enum=None) -> int:
        """Read ``u(n)``: an n-bit unsigned integer, MSB first."""
        if not 0 <= n <= 64:
            raise ValueError(f"u(n) needs 0 <= n <= 64, got {n}")
        self._need(n, name)
        start = self.pos
        value = self._peek(n) if n else 0
        self.pos += n
        self._record(name, start, f"u({n})", _named(value, enum))
        return value

    def ue(self, k: int, name: str | None = None) -> int:
        """Read ``ue(k)``: k-th order Exp-Golomb code."""
        start = self.pos
        value = self._ue(k, name)
        self._record(name, start, f"ue({k})", value)
        return value

    def _ue(self, k: int, name) -> int:
        start = self.pos
        zeros = 0
        while True:
            self._need(1, name)
            bit = self._peek(1)
            self.pos += 1
            if bit:
                break
            zeros += 1
            if zeros > UE_MAX_PREFIX - k:
                raise self.error(f"exp-golomb prefix longer than {UE_MAX_PREFIX - k} bits", name, at=start)
        nbits = zeros + k
        self._need(nbits, name)
        suffix = self._peek(nbits) if nbits else 0
        self.pos += nbits
        return ((1 << nbits) | suffix) - (1 << k)

    def se(self, k: int, name: str | None = None) -> int:
        """Read ``se(k)``: signed Exp-Golomb (code 2v-1 for v > 0, -2v for v <= 0)."""
        start = self.pos
        code = self._ue(k, name)
        value = (code + 1) >> 1 if code & 1 else -(code >> 1)
        self._record(name, start, f"se({k})", value)
        return value

    def byte_alignment(self, name: str = "alignment_zero_bits") -> None:
        """Read zero bits up to the next byte boundary; non-zero bits are a FormatError."""
        n = -self.pos % 8
        if n:
            start = self.pos
            self._need(n, name)
            value = self._peek(n)
            if value:
                raise self.error("alignment bits are not zero", name)
            self.pos += n
            self._record(name, start, f"u({n})", 0)

    # -- byte-aligned fields ------------------------------------------------------------------
    def _fixed(self, fmt: str, size: int, descriptor: str, name):
        self._aligned(name)
        self._need(size * 8, name)
        start = self.pos
        byte = start >> 3
        (value,) = struct.unpack_from(fmt, self._buf, byte)
        self.pos += size * 8
        self._record(name, start, descriptor, value)
        return value

    def u8(self, name=None, *, enum=None) -> int:
        value = self._fixed("<B", 1, "u8", name)
        if enum is not None and self.trace:
            last = self.trace[-1]
            self.trace[-1] = last._replace(value=_named(value, enum))
        return value

    def u16le(self, name=None) -> int:
        return self._fixed("<H", 2, "u16le", name)

    def u32le(self, name=None) -> int:
        return self._fixed("<I", 4, "u32le", name)

    def u64le(self, name=None) -> int:
        return self._fixed("<Q", 8, "u64le", name)

    def i64le(self, name=None) -> int:
        return self._fixed("<q", 8, "i64le", name)

    def f32le(self, name=None) -> float:
        return self._fixed("<f", 4, "f32le", name)

    def f64le(self, name=None) -> float:
        return self._fixed("<d", 8, "f64le", name)

    def b(self, n: int, name=None) -> bytes:
        """Read ``b(n)``: n whole bytes at a byte-aligned position."""
        self._aligned(name)
        self._need(n * 8, name)
        start = self.pos
        byte = start >> 3
        value = bytes(self._buf[byte : byte + n])
        self.pos += n * 8
        self._record(name, start, f"b({n})", value)
        return value

    def view(self, n: int, name=None) -> memoryview:
        """Read ``b(n)`` without copying: a view of the n bytes (traced as their size only, and
        not at all without a ``name``)."""
        self._aligned(name)
        self._need(n * 8, name)
        start = self.pos
        byte = start >> 3
        self.pos += n * 8
        if name is not None:
            self._record(name, start, f"b({n})", f"<{n} bytes>")
        return self._buf[byte : byte + n]

    def st(self, name=None, *, max_bytes: int = 0xFFFF) -> str:
        """Read ``st``: ``u16le`` byte length then that many bytes of UTF-8."""
        start = self.pos
        trace, self.trace = self.trace, None
        try:
            length = self.u16le(name)
            if length > max_bytes:
                raise self.error(f"string of {length} bytes exceeds max_name_bytes={max_bytes}", name, at=start,
                                 cls=LimitError)
            raw = self.b(length, name)
        finally:
            self.trace = trace
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"invalid UTF-8 at string byte {exc.start}", name, at=start) from None
        self._record(name, start, "st", value)
        return value

    # -- bulk ------------------------------------------------------------------------------
    def u_array(self, n: int, count: int, name=None) -> np.ndarray:
        """Read ``count`` consecutive ``u(n)`` values into a uint64 array."""
        if count < 0:
            raise ValueError("count must be >= 0")
        if not 0 <= n <= 64:
            raise ValueError(f"u(n) needs 0 <= n <= 64, got {n}")
        self._need(n * count, name)
        start = self.pos
        out = np.empty(count, dtype=np.uint64)
        for i in range(count):
            out[i] = self._peek(n) if n else 0
            self.pos += n
        self._record(name, start, f"u({n})[{count}]", out)
        return out

    def ue_array(self, k: int, count: int, name=None) -> np.ndarray:
        """Read ``count`` consecutive ``ue(k)`` values into a uint64 array."""
        if count < 0:
            raise ValueError("count must be >= 0")
        # Every code has at least one bit: check the count against the data before allocating.
        self._need(count * (k + 1), name)
        start = self.pos
        out = np.empty(count, dtype=np.uint64)
        for i in range(count):
            out[i] = self._ue(k, name)
        self._record(name, start, f"ue({k})[{count}]", out)
        return out


def _named(value: int, enum):
    """The value as a member of ``enum`` when it is one (traces print names), else the int."""
    if enum is None:
        return value
    try:
        return enum(value)
    except ValueError:
        return value


def _pack_fixed(fmt: str, descriptor: str, value) -> bytes:
    """Return ``value`` packed as a fixed-width field; out-of-range values raise EncodeError."""
    try:
        return struct.pack(fmt, value)
    except (struct.error, OverflowError, TypeError):
        raise EncodeError(f"value {value!r} does not fit {descriptor}") from None


class BitWriter:
    """Write syntax elements into a growing buffer; :meth:`getvalue` returns the bytes.

    Values out of a descriptor's range raise :class:`EncodeError`.
    """

    def __init__(self):
        self._out = bytearray()
        self._acc = 0  # pending bits, MSB first
        self._nacc = 0

    @property
    def pos(self) -> int:
        """Number of bits written so far."""
        return len(self._out) * 8 + self._nacc

    def is_byte_aligned(self) -> bool:
        return self._nacc == 0

    def getvalue(self) -> bytes:
        """Return the bytes written; the writer must be byte aligned."""
        if self._nacc:
            raise RuntimeError("BitWriter.getvalue() called at an unaligned position")
        return bytes(self._out)

    def _put(self, n: int, value: int) -> None:
        self._acc = (self._acc << n) | value
        self._nacc += n
        while self._nacc >= 8:
            self._nacc -= 8
            self._out.append((self._acc >> self._nacc) & 0xFF)
        self._acc &= (1 << self._nacc) - 1

    def u(self, n: int, value: int) -> None:
        if not 0 <= n <= 64:
            raise ValueError(f"u(n) needs 0 <= n <= 64, got {n}")
        value = int(value)
        if not 0 <= value < (1 << n):
            raise EncodeError(f"value {value} does not fit u({n})")
        if n:
            self._put(n, value)

    def ue(self, k: int, value: int) -> None:
        value = int(value)
        if not 0 <= value < _U64_LIMIT - (1 << k):
            raise EncodeError(f"value {value} out of range of ue({k})")
        code = value + (1 << k)
        length = code.bit_length()
        zeros = length - 1 - k
        if zeros:
            self._put(zeros, 0)
        self._put(length, code)

    def se(self, k: int, value: int) -> None:
        value = int(value)
        code = 2 * value - 1 if value > 0 else -2 * value
        if code >= _U64_LIMIT - (1 << k):
            raise EncodeError(f"value {value} out of range of se({k})")
        self.ue(k, code)

    def byte_alignment(self) -> None:
        if self._nacc:
            self._put(8 - self._nacc, 0)

    def _fixed(self, fmt: str, descriptor: str, value) -> None:
        if self._nacc:
            raise RuntimeError("fixed-width field written at an unaligned position")
        self._out += _pack_fixed(fmt, descriptor, value)

    def u8(self, value: int) -> None:
        self._fixed("<B", "u8", value)

    def u16le(self, value: int) -> None:
        self._fixed("<H", "u16le", value)

    def u32le(self, value: int) -> None:
        self._fixed("<I", "u32le", value)

    def u64le(self, value: int) -> None:
        self._fixed("<Q", "u64le", value)

    def i64le(self, value: int) -> None:
        self._fixed("<q", "i64le", value)

    def f32le(self, value: float) -> None:
        self._fixed("<f", "f32le", value)

    def f64le(self, value: float) -> None:
        self._fixed("<d", "f64le", value)

    def b(self, data) -> None:
        if self._nacc:
            raise RuntimeError("bytes written at an unaligned position")
        self._out += memoryview(data).cast("B")

    def st(self, value: str, *, max_bytes: int = 0xFFFF) -> None:
        raw = value.encode("utf-8")
        if len(raw) > max_bytes:
            raise EncodeError(f"string of {len(raw)} UTF-8 bytes exceeds {max_bytes}")
        self.u16le(len(raw))
        self.b(raw)

    def u_array(self, n: int, values) -> None:
        """Write every value of an integer array as ``u(n)``."""
        if not 0 <= n <= 64:
            raise ValueError(f"u(n) needs 0 <= n <= 64, got {n}")
        arr = _check_array(values, "u_array", 0, 1 << n, lambda bad: f"value {bad} does not fit u({n})")
        for v in arr.tolist():
            self._put(n, v) if n else None

    def ue_array(self, k: int, values) -> None:
        """Write every value of an integer array as ``ue(k)``."""
        arr = _check_array(values, "ue_array", 0, _U64_LIMIT - (1 << k), lambda bad: f"value {bad} out of range of ue({k})")
        for v in arr.tolist():
            self.ue(k, v)


def _check_array(values, what: str, lo: int, hi: int, message) -> np.ndarray:
    # Validate the whole array first (min and max), so both backends report the same value.
    arr = np.asarray(values).reshape(-1)
    if arr.size == 0:
        return arr
    if arr.dtype.kind not in "iu" and arr.dtype != np.bool_:
        raise EncodeError(f"{what} needs integers, got {arr.dtype}")
    amin, amax = int(arr.min()), int(arr.max())
    if amin < lo or amax >= hi:
        raise EncodeError(message(amin if amin < lo else amax))
    return arr
