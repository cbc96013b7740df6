"""The :class:`Mode` base class, its parameter declarations and the registry.

A coding mode is one ``coding_mode`` value (spec table 5.6), a ``mode_params`` block written in the
layer header, and a payload. It declares itself once, in its module: its parameters
(:class:`Param`: name, type, default, range or choices, doc), the dtypes it codes, how a policy
prepares a tensor for it (:meth:`Mode.prepare`), and how ``codec-dump`` summarizes a layer
(:meth:`Mode.summarize`). The writer, reader, dump tool, CLI and policies read these declarations,
so adding a mode is one module in ``codec/modes/`` plus its line in ``codec/modes/__init__.py``.

Encoding is two calls because the layer header, which holds ``mode_params``, is written before the
payload: :meth:`Mode.plan` returns the header blocks (:class:`Plan`), :meth:`Mode.write` streams the
payload into a sink. Decoding is :meth:`Mode.decode`; :meth:`Mode.trace` records the syntax
elements of ``mode_params`` and the payload for ``codec-dump --fields``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import _backend
from ..dtypes import FLOAT_DTYPES, INTEGER_DTYPES
from ..errors import ChecksumError, EncodeError, FormatError, UnsupportedError
from ..format.constants import DTYPE_NAMES, CodingMode, DType, coding_mode_name
from ..params import Param

__all__ = ["Param", "Plan", "Mode", "register_mode", "get_mode", "mode_name", "registered_modes",
           "check_payload_crc", "ANY_DTYPE"]

ANY_DTYPE = FLOAT_DTYPES | INTEGER_DTYPES


@dataclasses.dataclass
class Plan:
    """What :meth:`Mode.plan` decided: the header blocks and the mode's private state for :meth:`Mode.write`."""

    mode_params: bytes
    state: Any = None
    local_qp_set: bytes | None = None
    #: the levels_payload() syntax the payload uses (1 in files of version 1.x, 2 in 2.x)
    levels_version: int = 3
    #: the lowest format version that holds the payload, where the mode needs more than its levels
    #: syntax does (a mode added in 2.x, or a sparse layer whose values use one)
    min_version: tuple[int, int] = (1, 0)


class Mode:
    """Base class of a coding mode; subclasses set the class attributes and override the methods."""

    #: registry name (the lower-case name of its CodingMode value)
    name: str = ""
    #: ``coding_mode`` value (spec table 5.6)
    mode_id: int = -1
    #: lowest ``version_minor`` of format 1.x that defines the mode
    since_minor: int = 0
    #: whether its payloads may hold a ``levels_payload()`` (whose syntax the file's major version
    #: chooses: section 7); the writer writes a 2.x file when such a layer uses version 2
    codes_levels: bool = False
    #: the ``layer_dtype`` codes the mode can hold
    dtypes: frozenset = ANY_DTYPE
    #: the parameters users pass
    params: tuple[Param, ...] = ()
    #: output forms of :meth:`decode` besides "dense"
    formats: tuple[str, ...] = ()
    #: whether ``decode(levels=True)`` returns the coded integers and their parameters
    has_levels: bool = False
    #: a mode whose parameters include those of another mode named by this parameter (sparse values)
    nested_mode_param: str | None = None

    # -- declarations --------------------------------------------------------------------------
    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def validate(self, params: dict[str, Any], *, policy: bool = False) -> dict[str, Any]:
        """Check ``params`` against the declarations (names, types, ranges) and return a copy.

        With ``policy=True`` the parameters are a policy rule's: ``prepare`` parameters are allowed
        and ``policy=False`` ones (arrays) are not. Otherwise they are the writer's (``add_layer``),
        which takes the prepared tensor.
        """
        out = {}
        declared = {p.name: p for p in self.all_params(params)}
        for key, value in params.items():
            p = declared.get(key)
            if p is None:
                names = sorted(q.name for q in declared.values() if q.prepare <= policy)
                import difflib

                # in a policy a misspelt match key reads as a parameter: suggest from both
                pool = names + (["name", "kind", "dtype", "rank", "min_rank", "max_rank", "min_elements",
                                 "max_elements"] if policy else [])
                close = difflib.get_close_matches(str(key), pool, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise EncodeError(f"mode {self.name!r} takes no parameter {key!r} (its parameters: "
                                  f"{', '.join(names) or 'none'}{hint})")
            if p.prepare and not policy:
                raise EncodeError(f"mode {self.name!r} parameter {key!r} prepares a tensor in a policy; "
                                  f"here pass the prepared tensor ({p.doc})")
            if not p.policy and policy:
                raise EncodeError(f"mode {self.name!r} parameter {key!r} cannot be given in a policy")
            out[key] = value if value is None and p.default is None else p.validate(value, self.name)
        return out

    def all_params(self, params: dict[str, Any] | None = None) -> list[Param]:
        """This mode's parameters, plus those of the nested mode that ``params`` names."""
        out = list(self.params)
        if self.nested_mode_param is not None:
            inner = (params or {}).get(self.nested_mode_param, self.param(self.nested_mode_param).default)
            if isinstance(inner, str) and inner in _MODES_BY_NAME and inner != self.name:
                names = {q.name for q in out}
                out += [p for p in get_mode(inner).params if not p.prepare and p.name not in names]
        return out

    def check_dtype(self, dtype: DType) -> None:
        if dtype not in self.dtypes:
            raise EncodeError(f"mode {self.name!r} codes {_dtype_classes(self.dtypes)} tensors, not "
                              f"{DTYPE_NAMES[dtype]}")

    # -- encoding ------------------------------------------------------------------------------
    def prepare(self, array: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """What a policy does to a tensor before coding it (ternarize, prune), consuming the
        ``prepare`` parameters; returns (array, the parameters for :meth:`plan`)."""
        return array, {k: v for k, v in params.items() if not (self.param(k) and self.param(k).prepare)}

    def plan(self, array: np.ndarray, dtype: DType, params: dict[str, Any], *, global_qp=None,
             levels_version: int = 3) -> Plan:
        """Plan a layer; ``levels_version``: the syntax of any ``levels_payload()`` it writes."""
        raise NotImplementedError

    def write(self, plan: Plan, array: np.ndarray, dtype: DType, sink) -> None:
        raise NotImplementedError

    # -- decoding ------------------------------------------------------------------------------
    def decode(self, header, payload, *, verify: bool = True, global_qp=None, levels: bool = False,
               format: str = "dense"):
        raise NotImplementedError

    def decode_into(self, header, payload, out, *, verify: bool = True, global_qp=None) -> bool:
        """Decode the layer into ``out`` (a writable C-contiguous array of the layer's shape and dtype, checked
        by the caller) without an array of its own, where the mode can; returns False where it cannot (the
        caller then decodes and copies). On an error ``out`` holds whatever was written."""
        return False

    def decode_rows(self, header, payload, start: int, stop: int, *, verify: bool = True, global_qp=None):
        """Rows ``start`` .. ``stop - 1`` (``0 <= start <= stop <= shape[0]``) along axis 0 of a layer, decoding as
        little as the mode can: returns ``(first, array)``, where ``array`` holds the layer's rows ``first``,
        ``first + 1``, ... up to at least ``stop - 1``. This default decodes the whole layer (``first`` 0); modes
        whose levels are coded in chunks of rows (spec 7.4) decode only the chunks that hold the rows."""
        return 0, self.decode(header, payload, verify=verify, global_qp=global_qp)

    def check_decode_options(self, header, levels: bool, format: str) -> None:
        """Reject ``levels=`` or ``format=`` this mode does not offer (a usage error: ValueError)."""
        if levels and not self.has_levels:
            offered = ", ".join(m.name for m in registered_modes() if m.has_levels)
            raise ValueError(f"layer {header.layer_name!r} ({self.name}) has no levels to return apart from its "
                             f"values: levels=True is for {offered} layers")
        if format != "dense" and format not in self.formats:
            offered = ", ".join(("dense",) + self.formats)
            raise ValueError(f"format={format!r} is not offered by layer {header.layer_name!r} ({self.name}); "
                             f"use one of: {offered}")

    def begin_decode(self, header, payload, *, verify: bool, levels: bool, format: str):
        """The common start of :meth:`decode`: the options, the dtype, ``mode_params`` and the payload
        checksum; returns the parsed ``mode_params``."""
        self.check_decode_options(header, levels, format)
        self.check_header(header)
        params = self.params_of(header)
        if verify:
            check_payload_crc(header, payload)
        return params

    def check_header(self, header) -> None:
        """The rule on a layer header every decode checks: a dtype the mode holds."""
        if header.layer_dtype not in self.dtypes:
            raise FormatError(f"mode {self.name} cannot hold dtype {header.dtype_name}",
                              path=f"{header.path}.layer_dtype")

    def read_params(self, r, header):
        """Read the ``mode_params`` block with bit reader ``r``; the base has none."""
        if r.bits_left():
            raise r.error(f"mode {self.name} has no mode_params, got {r.bits_left() // 8} bytes")
        return None

    def params_of(self, header, *, trace=None):
        """Parse and check ``header.mode_params`` (traced when ``trace`` is a list)."""
        if not header.mode_params and trace is None and type(self).read_params is Mode.read_params:
            return None  # no block, none expected: skip making a reader (per-layer cost on small layers)
        return self.read_params(_backend.bit_reader(header.mode_params, header.mode_params_offset,
                                                    header.params_path, trace), header)

    # -- inspection ----------------------------------------------------------------------------
    def summarize(self, header, payload, *, global_qp=None) -> dict[str, Any] | None:
        """What ``codec-dump`` shows of a layer's coding (JSON-able), or None."""
        return None

    def summary_text(self, summary: dict[str, Any]) -> str:
        """One short line of :meth:`summarize`'s result for the dump table."""
        return ", ".join(f"{k}={v}" for k, v in summary.items())

    def trace(self, header, payload, trace: list, *, global_qp=None) -> None:
        """Append the syntax elements of ``mode_params`` and of the payload to ``trace`` (in any
        order: ``codec-dump --fields`` sorts by position, containers before their contents)."""
        self.params_of(header, trace=trace)


# ---------------------------------------------------------------------------------------------
# helpers for modes
# ---------------------------------------------------------------------------------------------
def _dtype_classes(dtypes) -> str:
    classes = [name for name, group in (("float", FLOAT_DTYPES), ("integer", INTEGER_DTYPES - {DType.BOOL}),
                                        ("bool", {DType.BOOL})) if group <= dtypes]
    return " or ".join([", ".join(classes[:-1]), classes[-1]] if len(classes) > 2 else classes)


def check_payload_crc(header, payload) -> None:
    """Raise ChecksumError unless the payload's CRC32C is the stored ``unit_payload_crc32c``."""
    actual = _backend.crc32c(payload)
    if actual != header.payload_crc32c:
        raise payload_checksum_error(header, actual)


def payload_checksum_error(header, actual: int) -> ChecksumError:
    return ChecksumError(f"payload crc32c mismatch: stored 0x{header.payload_crc32c:08x}, computed 0x{actual:08x}",
                         path=header.payload_path, bit_offset=header.payload_offset * 8)


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------
_MODES: dict[int, Mode] = {}
_MODES_BY_NAME: dict[str, Mode] = {}


def register_mode(cls: type[Mode]) -> type[Mode]:
    """Class decorator: add a coding mode to the registry (by ``mode_id`` and ``name``).

    A mode of a value table 5.6 assigns must carry the spec's name (the lower-case name of its
    CodingMode); a value the table leaves unassigned (an experimental tool) may take any name not
    in use. The class docstring gets the parameter list from the declarations.
    """
    mode = cls()
    if mode.mode_id in set(CodingMode) and coding_mode_name(mode.mode_id) != mode.name:
        raise ValueError(f"mode {mode.name!r} must be named after coding_mode {mode.mode_id} "
                         f"({coding_mode_name(mode.mode_id)!r})")
    if mode.mode_id in _MODES or mode.name in _MODES_BY_NAME:
        raise ValueError(f"coding mode {mode.name!r} ({mode.mode_id}) is already registered")
    if mode.params:
        lines = [f"    ``{p.name}`` ({p.describe()}{'' if p.default is None else f', default {p.default!r}'}): "
                 f"{p.doc}" for p in mode.params]
        cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n    Parameters:\n\n" + "\n".join(lines) + "\n"
    _MODES[mode.mode_id] = mode
    _MODES_BY_NAME[mode.name] = mode
    return cls


def get_mode(mode: int | str, *, path: str | None = None) -> Mode:
    """Return the registered mode for a ``coding_mode`` value or name (``path``: of the element
    that holds the value, for the error a reader raises on an unknown one)."""
    if isinstance(mode, str):
        try:
            return _MODES_BY_NAME[mode]
        except KeyError:
            raise EncodeError(f"unknown coding mode {mode!r}; known: {', '.join(sorted(_MODES_BY_NAME))}") from None
    try:
        return _MODES[mode]
    except KeyError:
        raise UnsupportedError(f"coding_mode {mode} is not supported by this reader", path=path) from None


def mode_name(mode_id: int) -> str:
    mode = _MODES.get(mode_id)
    return mode.name if mode is not None else coding_mode_name(mode_id)


def registered_modes() -> list[Mode]:
    """The registered modes in ``coding_mode`` order."""
    return [_MODES[k] for k in sorted(_MODES)]


def rows_header(header, rows: int):
    """``header`` with its shape cut to ``rows`` along axis 0: what the output helpers shape a row range by."""
    return dataclasses.replace(header, layer_shape=(rows,) + tuple(header.layer_shape[1:]))


def chunked_rows(header) -> bool:
    """Whether a level-coded layer can decode a range of rows alone: rank >= 2, elements, chunks (7.4)."""
    return len(header.layer_shape) >= 2 and header.num_elements > 0 and header.levels_version >= 2
