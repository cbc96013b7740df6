# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Bit reader and writer: twin of codec.kernels.bitio (same methods, errors and messages).

Tracing (``trace=``, ``enum=``) is a feature of the pure reader only; here ``enum`` is accepted and ignored.
"""

from libc.stdint cimport uint64_t, int64_t, uint8_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize
import struct

import numpy as np

from codec.errors import EncodeError, FormatError, LimitError, TruncatedError

cdef enum:
    UE_MAX_PREFIX = 63  # an ue(k) code has at most 63 - k leading zero bits

cdef enum UeScan:  # outcomes of BitReader._ue_scan (C only)
    UE_READ = 0
    UE_TRUNCATED = 1
    UE_LONG_PREFIX = 2
_U64_LIMIT = 1 << 64

cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef class BitReader:
    cdef const uint8_t[::1] _buf
    cdef object _data
    cdef Py_ssize_t _nbits
    cdef public Py_ssize_t pos
    cdef public Py_ssize_t base_offset
    cdef public str path
    cdef readonly object trace

    def __init__(self, data, *, Py_ssize_t bit_offset=0, Py_ssize_t base_offset=0, trace=None):
        if trace is not None:
            raise ValueError("tracing needs the pure reader codec.kernels.bitio.BitReader")
        self._data = memoryview(data).cast("B")
        self._buf = self._data
        self._nbits = self._buf.shape[0] * 8
        if not 0 <= bit_offset <= self._nbits:
            raise ValueError("bit_offset outside data")
        self.pos = bit_offset
        self.base_offset = base_offset
        self.path = ""
        self.trace = None

    @property
    def data(self):
        return self._data

    def bits_left(self):
        return self._nbits - self.pos

    def is_byte_aligned(self):
        return self.pos % 8 == 0

    def where(self, name):
        if not name:
            return self.path or "<data>"
        return f"{self.path}.{name}" if self.path else name

    def error(self, reason, name=None, *, cls=FormatError, at=None):
        pos = self.pos if at is None else at
        return cls(reason, path=self.where(name), bit_offset=self.base_offset * 8 + pos)

    cdef int _need(self, Py_ssize_t n, name) except -1:
        if n > self._nbits - self.pos:
            raise TruncatedError(
                f"need {n} bits, {self._nbits - self.pos} left",
                path=self.where(name),
                bit_offset=self.base_offset * 8 + self.pos,
                bits_needed=n,
                bits_available=self._nbits - self.pos,
            )
        return 0

    cdef int _aligned(self, name) except -1:
        if self.pos % 8:
            raise RuntimeError(f"{self.where(name)}: fixed-width field read at unaligned bit {self.pos}")
        return 0

    cdef inline uint64_t _take(self, int n) noexcept nogil:
        # Read n <= 64 bits known to be available, MSB first, in pieces of at most 32 bits.
        cdef uint64_t value = 0, acc
        cdef int take, shift, total, nbytes, i
        cdef Py_ssize_t byte
        while n > 0:
            take = 32 if n > 32 else n
            byte = self.pos >> 3
            shift = self.pos & 7
            total = shift + take
            nbytes = (total + 7) >> 3
            acc = 0
            for i in range(nbytes):
                acc = (acc << 8) | self._buf[byte + i]
            acc >>= nbytes * 8 - total
            acc &= (<uint64_t>1 << take) - 1
            value = (value << take) | acc
            self.pos += take
            n -= take
        return value

    cdef inline int _ue_scan(self, int k, uint64_t *out, int *need) noexcept nogil:
        # ue(k) without raising: 0 (read), UE_TRUNCATED (need[0] more bits at self.pos) or
        # UE_LONG_PREFIX; the position is where the read stopped
        cdef int zeros = 0
        cdef int nbits
        while True:
            if self.pos >= self._nbits:
                need[0] = 1
                return UE_TRUNCATED
            if (self._buf[self.pos >> 3] >> (7 - (self.pos & 7))) & 1:
                self.pos += 1
                break
            self.pos += 1
            zeros += 1
            if zeros > UE_MAX_PREFIX - k:
                return UE_LONG_PREFIX
        nbits = zeros + k
        if nbits > self._nbits - self.pos:
            need[0] = nbits
            return UE_TRUNCATED
        # nbits <= 63 because zeros <= 63 - k
        out[0] = ((<uint64_t>1 << nbits) | self._take(nbits)) - (<uint64_t>1 << k)
        return 0

    cdef inline int _ue_raw(self, int k, uint64_t *out, name) except -1:
        cdef Py_ssize_t start = self.pos
        cdef int need = 0
        cdef int status = self._ue_scan(k, out, &need)
        if status == UE_TRUNCATED:
            self._need(need, name)
        elif status == UE_LONG_PREFIX:
            raise self.error(f"exp-golomb prefix longer than {UE_MAX_PREFIX - k} bits", name, at=start)
        return 0

    def u(self, int n, name=None, *, enum=None):
        if not 0 <= n <= 64:
            raise ValueError(f"u(n) needs 0 <= n <= 64, got {n}")
        self._need(n, name)
        return self._take(n)

    def ue(self, int k, name=None):
        cdef uint64_t v
        self._ue_raw(k, &v, name)
        return v

    def se(self, int k, name=None):
        cdef uint64_t code
        self._ue_raw(k, &code, name)
        if code & 1:
            return <int64_t>((code >> 1) + 1)
        return -<int64_t>(code >> 1)

    def byte_alignment(self, name="alignment_zero_bits"):
        cdef int n = (8 - self.pos % 8) % 8
        if n:
            self._need(n, name)
            if (self._buf[self.pos >> 3] & ((1 << n) - 1)) != 0:
                raise self.error("alignment bits are not zero", name)
            self.pos += n

    cdef object _fixed(self, str fmt, int size, name):
        self._aligned(name)
        self._need(size * 8, name)
        value = struct.unpack_from(fmt, self._buf, self.pos >> 3)[0]
        self.pos += size * 8
        return value

    def u8(self, name=None, *, enum=None):
        self._aligned(name)
        self._need(8, name)
        cdef uint8_t v = self._buf[self.pos >> 3]
        self.pos += 8
        return v

    cdef inline uint64_t _le(self, int size, name) except? 0xFFFFFFFFFFFFFFFF:
        # little-endian fixed-width field, assembled byte by byte (host byte order does not matter)
        self._aligned(name)
        self._need(size * 8, name)
        cdef Py_ssize_t byte = self.pos >> 3
        cdef uint64_t value = 0
        cdef int i
        for i in range(size - 1, -1, -1):
            value = (value << 8) | self._buf[byte + i]
        self.pos += size * 8
        return value

    def u16le(self, name=None):
        return self._le(2, name)

    def u32le(self, name=None):
        return self._le(4, name)

    def u64le(self, name=None):
        return self._le(8, name)

    def i64le(self, name=None):
        return <int64_t>self._le(8, name)

    def f32le(self, name=None):
        return self._fixed("<f", 4, name)

    def f64le(self, name=None):
        return self._fixed("<d", 8, name)

    def b(self, Py_ssize_t n, name=None):
        self._aligned(name)
        self._need(n * 8, name)
        cdef Py_ssize_t byte = self.pos >> 3
        value = PyBytes_FromStringAndSize(<const char *>&self._buf[byte] if n else NULL, n)
        self.pos += n * 8
        return value

    def view(self, Py_ssize_t n, name=None):
        self._aligned(name)
        self._need(n * 8, name)
        cdef Py_ssize_t byte = self.pos >> 3
        self.pos += n * 8
        return self._data[byte:byte + n]

    def st(self, name=None, *, max_bytes=0xFFFF):
        cdef Py_ssize_t start = self.pos
        length = self._le(2, name)
        if length > max_bytes:
            raise self.error(f"string of {length} bytes exceeds max_name_bytes={max_bytes}", name, at=start,
                             cls=LimitError)
        raw = self.b(length, name)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"invalid UTF-8 at string byte {exc.start}", name, at=start) from None

    def u_array(self, int n, Py_ssize_t count, name=None):
        if count < 0:
            raise ValueError("count must be >= 0")
        if not 0 <= n <= 64:
            raise ValueError(f"u(n) needs 0 <= n <= 64, got {n}")
        self._need(n * count, name)
        out = np.empty(count, dtype=np.uint64)
        cdef uint64_t[::1] o = out
        cdef Py_ssize_t i
        with nogil:
            for i in range(count):
                o[i] = self._take(n)
        return out

    def ue_array(self, int k, Py_ssize_t count, name=None):
        if count < 0:
            raise ValueError("count must be >= 0")
        self._need(count * (k + 1), name)
        out = np.empty(count, dtype=np.uint64)
        cdef uint64_t[::1] o = out
        cdef Py_ssize_t i
        cdef uint64_t v
        for i in range(count):
            self._ue_raw(k, &v, name)
            o[i] = v
        return out


cdef class BitWriter:
    cdef uint8_t *_out
    cdef Py_ssize_t _len, _cap
    cdef uint64_t _acc
    cdef int _nacc

    def __cinit__(self):
        self._cap = 256
        self._out = <uint8_t *>malloc(self._cap)
        if self._out == NULL:
            raise MemoryError()
        self._len = 0
        self._acc = 0
        self._nacc = 0

    def __dealloc__(self):
        free(self._out)

    @property
    def pos(self):
        return self._len * 8 + self._nacc

    def is_byte_aligned(self):
        return self._nacc == 0

    def getvalue(self):
        if self._nacc:
            raise RuntimeError("BitWriter.getvalue() called at an unaligned position")
        return (<char *>self._out)[:self._len]

    cdef int _reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t cap = self._cap
        cdef uint8_t *p
        if self._len + extra <= cap:
            return 0
        while cap < self._len + extra:
            cap *= 2
        p = <uint8_t *>realloc(self._out, cap)
        if p == NULL:
            raise MemoryError()
        self._out = p
        self._cap = cap
        return 0

    cdef inline void _put(self, int n, uint64_t value) noexcept nogil:
        # Append the n <= 64 low bits of value; room for 9 bytes is reserved by the caller.
        cdef int take
        while n > 0:
            take = 32 if n > 32 else n
            n -= take
            self._acc = (self._acc << take) | ((value >> n) & ((<uint64_t>1 << take) - 1))
            self._nacc += take
            while self._nacc >= 8:
                self._nacc -= 8
                self._out[self._len] = <uint8_t>(self._acc >> self._nacc)
                self._len += 1
            self._acc &= (<uint64_t>1 << self._nacc) - 1

    def u(self, int n, value):
        if not 0 <= n <= 64:
            raise ValueError(f"u(n) needs 0 <= n <= 64, got {n}")
        value = int(value)
        if not 0 <= value < (<object>1 << n):
            raise EncodeError(f"value {value} does not fit u({n})")
        self._reserve(9)
        self._put(n, <uint64_t>value)

    cdef int _ue(self, int k, uint64_t value) except -1:
        # value < 2**64 - 2**k is checked by the caller
        cdef uint64_t code = value + (<uint64_t>1 << k)
        cdef int length = 64 - __builtin_clzll(code)
        cdef int zeros = length - 1 - k
        self._reserve(18)
        if zeros:
            self._put(zeros, 0)
        self._put(length, code)
        return 0

    def ue(self, int k, value):
        value = int(value)
        if not 0 <= value < _U64_LIMIT - (<object>1 << k):
            raise EncodeError(f"value {value} out of range of ue({k})")
        self._ue(k, <uint64_t>value)

    def se(self, int k, value):
        value = int(value)
        code = 2 * value - 1 if value > 0 else -2 * value
        if code >= _U64_LIMIT - (<object>1 << k):
            raise EncodeError(f"value {value} out of range of se({k})")
        self._ue(k, <uint64_t>code)

    def byte_alignment(self):
        if self._nacc:
            self._reserve(1)
            self._put(8 - self._nacc, 0)

    cdef int _bytes(self, const uint8_t[::1] data) except -1:
        if self._nacc:
            raise RuntimeError("bytes written at an unaligned position")
        cdef Py_ssize_t n = data.shape[0]
        self._reserve(n)
        if n:
            memcpy(self._out + self._len, &data[0], n)
        self._len += n
        return 0

    cdef _fixed(self, str fmt, str descriptor, value):
        if self._nacc:
            raise RuntimeError("fixed-width field written at an unaligned position")
        try:
            packed = struct.pack(fmt, value)
        except (struct.error, OverflowError, TypeError):
            raise EncodeError(f"value {value!r} does not fit {descriptor}") from None
        self._bytes(packed)

    def u8(self, value):
        self._fixed("<B", "u8", value)

    def u16le(self, value):
        self._fixed("<H", "u16le", value)

    def u32le(self, value):
        self._fixed("<I", "u32le", value)

    def u64le(self, value):
        self._fixed("<Q", "u64le", value)

    def i64le(self, value):
        self._fixed("<q", "i64le", value)

    def f32le(self, value):
        self._fixed("<f", "f32le", value)

    def f64le(self, value):
        self._fixed("<d", "f64le", value)

    def b(self, data):
        self._bytes(memoryview(data).cast("B"))

    def st(self, str value, *, max_bytes=0xFFFF):
        raw = value.encode("utf-8")
        if len(raw) > max_bytes:
            raise EncodeError(f"string of {len(raw)} UTF-8 bytes exceeds {max_bytes}")
        self.u16le(len(raw))
        self.b(raw)

    def u_array(self, int n, values):
        if not 0 <= n <= 64:
            raise ValueError(f"u(n) needs 0 <= n <= 64, got {n}")
        arr = np.asarray(values).reshape(-1)
        if arr.size == 0:
            return
        if arr.dtype.kind not in "iu" and arr.dtype != np.bool_:
            raise EncodeError(f"u_array needs integers, got {arr.dtype}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= (<object>1 << n):
            bad = lo if lo < 0 else hi
            raise EncodeError(f"value {bad} does not fit u({n})")
        cdef const uint64_t[::1] v = np.ascontiguousarray(arr, dtype=np.uint64)
        cdef Py_ssize_t i, count = v.shape[0]
        self._reserve((count * n + 7) // 8 + 9)
        with nogil:
            for i in range(count):
                self._put(n, v[i])

    def ue_array(self, int k, values):
        arr = np.asarray(values).reshape(-1)
        if arr.size == 0:
            return
        if arr.dtype.kind not in "iu" and arr.dtype != np.bool_:
            raise EncodeError(f"ue_array needs integers, got {arr.dtype}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= _U64_LIMIT - (<object>1 << k):
            bad = lo if lo < 0 else hi
            raise EncodeError(f"value {bad} out of range of ue({k})")
        cdef const uint64_t[::1] v = np.ascontiguousarray(arr, dtype=np.uint64)
        cdef Py_ssize_t i
        for i in range(v.shape[0]):
            self._ue(k, v[i])
