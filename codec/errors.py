"""Error hierarchy of codec.

Every error raised while reading or writing a bitstream is a :class:`CodecError`, itself a
:class:`ValueError`, so callers can catch one type. Errors that come from the bytes of a file
carry the syntax path of the element being read (``layers[3].layer_rank``) and its position, and
their message starts with both: ``layers[3].layer_rank at bit 1234: rank 12 exceeds 8``.

Errors about *input data* (catch these): FormatError and its subclasses, LimitError,
UnsupportedError. Errors about *encoder input* (fix the call): EncodeError.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "FormatError",
    "TruncatedError",
    "ChecksumError",
    "UnsupportedError",
    "LimitError",
    "EncodeError",
    "FileChangedError",
    "BaseMismatchError",
    "PerformanceWarning",
]


class CodecError(ValueError):
    """Root of all codec errors.

    Attributes
    ----------
    reason : str
        The message without the position prefix.
    path : str or None
        Syntax path of the element, e.g. ``layers[3].unit_payload.tn_codes``.
    bit_offset : int or None
        Absolute bit offset in the file where the element starts.
    """

    def __init__(self, reason: str, *, path: str | None = None, bit_offset: int | None = None):
        self.reason = reason
        self.path = path
        self.bit_offset = bit_offset
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.bit_offset is not None:
            if self.bit_offset % 8 == 0:
                where.append(f"at byte {self.bit_offset // 8}")
            else:
                where.append(f"at bit {self.bit_offset}")
        if where:
            return f"{' '.join(where)}: {self.reason}"
        return self.reason

    def __reduce__(self):  # keep errors picklable across process pools
        return (_rebuild, (type(self), self.reason, self.path, self.bit_offset, dict(self.__dict__)))


def _rebuild(cls, reason, path, bit_offset, state):
    err = cls.__new__(cls)
    CodecError.__init__(err, reason, path=path, bit_offset=bit_offset)
    err.__dict__.update(state)
    return err


class FormatError(CodecError):
    """The bytes do not follow the specification (bad magic, bad enum value, inconsistency)."""


class TruncatedError(FormatError, EOFError):
    """The data ends before the element being read.

    ``bits_needed`` and ``bits_available`` say how much was asked for and how much remained.
    """

    def __init__(self, reason: str, *, path=None, bit_offset=None, bits_needed=None, bits_available=None):
        self.bits_needed = bits_needed
        self.bits_available = bits_available
        super().__init__(reason, path=path, bit_offset=bit_offset)


class ChecksumError(FormatError):
    """A CRC32C stored in the file does not match the bytes it covers."""


class UnsupportedError(CodecError):
    """The file is well formed but uses a feature this reader does not implement
    (unknown major version, reserved dtype such as fp8, unknown coding mode)."""


class LimitError(CodecError):
    """A size announced by the file (or given to the encoder) exceeds a configured :class:`codec.Limits`."""


class FileChangedError(CodecError):
    """The file an open :class:`codec.Reader` maps was truncated or rewritten since it was opened."""


class BaseMismatchError(CodecError):
    """A delta bitstream (spec 10.1) was applied to no base, or to a base whose content digest is not the one
    it names, or to a base that lacks a layer it changes."""


class EncodeError(CodecError):
    """The encoder was given input it cannot write (bad name, unsupported dtype, bad parameter)."""


class PerformanceWarning(UserWarning):
    """codec works, but slower than it should: the compiled core is not in use."""
