"""Coding mode ``ternary`` (spec 6.6): trits in {-1, 0, +1} times a scale alpha.

Three payload schemes, all lossless for the trits:

* ``flag`` (flag-plus-nonzero): two trits form a 4-bit item (trit codes 0 -> 00, +1 -> 01,
  -1 -> 11; the first trit in the high bits); a flag string has one bit per item (0 for the
  all-zero item 0000); each non-zero item becomes a 3-bit code. Optional levels compress the flag
  string the same way, in 4-bit groups of flags.
* ``base3``: five trits per byte, ``sum (t_k + 1) * 3^(4-k)`` (1.6 bits per trit).
* ``entropy``: the trits as levels through the level coder (spec 7), whose per-row-class tables
  reach the order-0 entropy or go below it.

The kernels are the pair ``codec.kernels.ternary`` / ``codec._fast.ternary``. For users with float
weights: :func:`ternarize` (TWN rule) and :func:`split_ternary` (exact pass-through of already
ternary arrays), also importable as ``codec.ternary``.
"""

from __future__ import annotations

import enum
import io
import math

import numpy as np

from .. import _backend
from ..dtypes import FLOAT_DTYPES, INTEGER_DTYPES, float_output, float_pieces, is_bf16_bits, storage_dtype, user_array
from ..errors import EncodeError, FormatError
from ..format.constants import CodingMode, DType
from ..kernels import raise_status
from ..kernels import ternary as kernel_reference
from ..levels import LC_OUT_I32, PIECE_ELEMENTS, ArrayLevels, LevelSource, code_levels, decode_levels, level_grid, \
    trace_levels_payload
from ..quant import _box_pieces
from .base import Mode, Param, Plan, register_mode

__all__ = ["TernaryMode", "TernaryScheme", "ternarize", "split_ternary", "encode_payload", "write_payload", "decode_payload",
           "NONZERO_ITEMS"]

NONZERO_ITEMS = kernel_reference.NONZERO_ITEMS
#: ``tn_axis`` of a layer with one alpha.
ONE_ALPHA = 255


class TernaryScheme(enum.IntEnum):
    """``tn_scheme``."""

    FLAG = 0
    BASE3 = 1
    ENTROPY = 2


SCHEMES = tuple(s.name.lower() for s in TernaryScheme)
#: Float layers decode to t * alpha; integer layers to the trits (bool cannot hold -1).
TERNARY_DTYPES = FLOAT_DTYPES | (INTEGER_DTYPES - {DType.BOOL})


# ---------------------------------------------------------------------------------------------
# trits, piece by piece
# ---------------------------------------------------------------------------------------------
def _layout(a, axis: int | None) -> tuple[int, int, int]:
    """The tensor as (outer, channels, inner): the channels are the slices along ``axis`` (one
    channel without an axis)."""
    if axis is None:
        return 1, 1, a.size
    if not -a.ndim <= axis < a.ndim:
        raise EncodeError(f"axis {axis} does not exist in a tensor of rank {a.ndim}")
    axis %= a.ndim
    return math.prod(a.shape[:axis]), a.shape[axis], math.prod(a.shape[axis + 1:])


def _boxes(flat, layout, to_float):
    """(channel slice, the piece as float (o, c, i)) over the tensor, NaN and infinity refused."""
    for start, o, c0, c, i in _box_pieces(*layout, PIECE_ELEMENTS):
        x = to_float(flat[start:start + o * c * i]).reshape(o, c, i)
        if not np.isfinite(x).all():
            raise EncodeError("ternary input holds NaN or infinity")
        yield slice(c0, c0 + c), x


def _max_magnitudes(flat, layout, to_float) -> np.ndarray:
    """max |x| per channel (exact in the input's type): the alphas of a ternary tensor."""
    alphas = np.zeros(layout[1])
    for ch, x in _boxes(flat, layout, to_float):
        alphas[ch] = np.maximum(alphas[ch], np.abs(x).max(axis=(0, 2)))
    return alphas


def _twn(flat, layout, to_float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The TWN rule per channel, in binary64, piece by piece: (delta = threshold * mean |x|,
    alpha = mean |x| over the elements above delta)."""
    channels, count = layout[1], layout[0] * layout[2]
    total = np.zeros(channels)
    for ch, x in _boxes(flat, layout, to_float):
        total[ch] += np.abs(x).astype(np.float64).sum(axis=(0, 2))
    delta = threshold * (total / count) if count else np.zeros(channels)
    above, kept = np.zeros(channels), np.zeros(channels)
    for ch, x in _boxes(flat, layout, to_float):
        mag = np.abs(x).astype(np.float64)
        support = mag > delta[ch].reshape(1, -1, 1)
        above[ch] += (mag * support).sum(axis=(0, 2))
        kept[ch] += support.sum(axis=(0, 2))
    return delta, np.where(kept > 0, above / np.maximum(kept, 1), 0.0)


class TritSource(LevelSource):
    """The trits of a layer, made piece by piece when the coder asks (no layer-sized copy):
    integer input as it is; float input as sign(x), where |x| is alpha (``alphas``: checked, an
    EncodeError names the first other value) or above the TWN threshold (``delta``)."""

    def __init__(self, array, rows: int, cols: int, *, layout=None, to_float=None, alphas=None, delta=None):
        super().__init__(rows, cols)
        self.flat = np.asarray(array).reshape(-1)
        self.layout, self.to_float, self.alphas, self.delta = layout, to_float, alphas, delta

    def per_element(self, values: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Each element's value of a per-channel array, shaped to broadcast over the piece."""
        _, channels, inner = self.layout
        if channels == 1:
            return values[:1]
        return values[(np.arange(start, stop, dtype=np.int64) // inner) % channels]

    def levels(self, start: int, stop: int) -> np.ndarray:
        x = self.flat[start:stop]
        if self.to_float is None:
            return x.astype(np.int8, copy=False)
        x = self.to_float(x)
        if self.delta is not None:
            support = np.abs(x).astype(np.float64) > self.per_element(self.delta, start, stop)
            return (np.sign(x) * support).astype(np.int8)
        mag = np.abs(x)
        alpha = self.per_element(self.alphas, start, stop).astype(mag.dtype)
        bad = np.flatnonzero((mag != 0) & (mag != alpha))
        if bad.size:
            k = int(bad[0])
            where, alpha_k = "", alpha[0] if alpha.size == 1 else alpha[k]
            if self.layout[1] > 1:
                where = f" (channel {(start + k) // self.layout[2] % self.layout[1]})"
            raise EncodeError(f"values are not ternary{where}: {float(x[k])!r} is neither 0 nor "
                              f"+-{float(alpha_k)!r}; use codec.ternary.ternarize() first")
        return np.sign(x).astype(np.int8)

    def check(self) -> None:
        """Make every piece once (raises on a value that is not ternary)."""
        if self.to_float is not None and self.delta is None:
            for start, stop in self.pieces():
                self.levels(start, stop)


def ternary_source(a, *, axis: int | None = None, threshold: float | None = None,
                   bf16_bits: bool = False) -> tuple[TritSource, np.ndarray]:
    """Plan the trits of ``a``: (a TritSource, float64 alphas per channel). Integer input must hold
    only -1, 0, 1 (alpha 1); float input is ternary already, or ternarized with the TWN rule at
    ``threshold`` (alphas rounded to the input's type, as :func:`ternarize` returns them)."""
    rows, cols = level_grid(a.shape)
    if a.dtype.kind in "iub" and not bf16_bits:
        if threshold is not None:
            raise EncodeError(f"the TWN rule (threshold=, ternarize) ternarizes float tensors, not {a.dtype}")
        if a.size and (int(a.min()) < -1 or int(a.max()) > 1):
            raise EncodeError("integer ternary input must hold only -1, 0 and 1")
        return TritSource(a, rows, cols), np.ones(1)
    to_float = float_pieces(a, bf16_bits, "ternary input must be float or integer trits")
    layout = _layout(a, axis)
    flat = a.reshape(-1)
    if threshold is None:
        alphas = _max_magnitudes(flat, layout, to_float)
        return TritSource(a, rows, cols, layout=layout, to_float=to_float, alphas=alphas), alphas
    delta, alphas = _twn(flat, layout, to_float, threshold)
    # ternarize() returns t * alpha in the input's type: the alphas that such a tensor holds
    kind = a.dtype if not bf16_bits and (a.dtype.kind == "f" or a.dtype.name == "bfloat16") else np.float32
    with np.errstate(over="ignore"):
        alphas = alphas.astype(kind).astype(np.float64)
    if not np.isfinite(alphas).all():
        raise EncodeError(f"a ternarized alpha overflows {np.dtype(kind).name}")
    delta = np.where(alphas == 0, np.inf, delta)  # an alpha that rounds to 0 keeps no trit
    return TritSource(a, rows, cols, layout=layout, to_float=to_float, delta=delta), alphas


# ---------------------------------------------------------------------------------------------
# helpers for users
# ---------------------------------------------------------------------------------------------
def ternarize(w, *, axis: int | None = None, threshold: float = 0.7) -> np.ndarray:
    """Return the TWN ternarization of ``w`` as a float array with values in {-alpha, 0, +alpha}.

    Threshold ``delta = threshold * mean|w|`` (per tensor, or per slice along ``axis``);
    ``alpha`` = mean |w| over the weights above the threshold (the least-squares optimum for that
    support). Returns the same dtype as ``w`` (float32 for integer input). The mode's
    ``threshold=`` parameter codes exactly this tensor without making it.
    """
    a = np.asarray(w)
    if a.dtype.kind in "iub":
        a = a.astype(np.float32)
    source, alphas = ternary_source(a, axis=axis, threshold=threshold)
    out = np.empty(a.shape, dtype=a.dtype)
    flat = out.reshape(-1)
    for start, stop in source.pieces():
        t = source.levels(start, stop)
        flat[start:stop] = t * source.per_element(alphas, start, stop)
    return out


def split_ternary(w, *, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (int8 trits, float64 alphas) of an array whose values are in {-alpha, 0, +alpha}.

    One alpha per tensor, or per slice along ``axis``. Integer input must already be trits
    (alpha 1). Raises EncodeError if the values are not ternary that way (nothing is rounded).
    """
    a = np.asarray(w)
    if a.dtype.kind in "iub":
        _, alphas = ternary_source(a)  # checks that they are trits
        return np.asarray(a, dtype=np.int8), alphas
    source, alphas = ternary_source(a, axis=axis)
    trits = np.empty(a.size, dtype=np.int8)
    for start, stop in source.pieces():
        trits[start:stop] = source.levels(start, stop)
    return trits.reshape(a.shape), alphas


# ---------------------------------------------------------------------------------------------
# ternary_payload() = tn_scheme u8 + the scheme's data (spec 6.6)
# ---------------------------------------------------------------------------------------------
def encode_payload(trits: np.ndarray, rows: int, cols: int, scheme: str = "auto", *, levels_version: int = 3) -> bytes:
    """Return ``ternary_payload()``; ``auto`` keeps the smallest scheme (flag, base3, entropy order on ties)."""
    out = io.BytesIO()
    write_payload(trits, rows, cols, out, scheme, levels_version=levels_version)
    return out.getvalue()


def write_payload(trits, rows: int, cols: int, sink, scheme: str = "auto", *, levels_version: int = 3) -> None:
    """Write ``ternary_payload()`` of ``trits`` (int8 array, or a LevelSource of trits such as
    :class:`TritSource`) to ``sink``, in memory of about the packed item flags (an eighth of the int8
    trits): the candidates' sizes are known before any is written (flag: from the item flags;
    base3: a byte per five trits; entropy: coded into a Spool), then the winner is streamed."""
    if scheme not in ("auto",) + SCHEMES:
        raise EncodeError(f"scheme must be one of auto, {', '.join(SCHEMES)}; got {scheme!r}")
    source = trits if isinstance(trits, LevelSource) else ArrayLevels(np.asarray(trits, dtype=np.int8), rows, cols)
    n = rows * cols
    kernels = _backend.ternary
    piece = max(16, PIECE_ELEMENTS // 16 * 16)
    sizes, head, entropy = {}, None, None
    if scheme in ("auto", "flag"):
        # pieces of a multiple of 16 trits: their packed flags are whole bytes of the layer's
        flags = np.empty((n + 15) // 16, dtype=np.uint8)
        nonzero = 0
        for start in range(0, n, piece):
            packed, count = kernels.flag_item_flags(source.levels(start, min(n, start + piece)))
            flags[start // 16:start // 16 + len(packed)] = np.frombuffer(packed, dtype=np.uint8)
            nonzero += count
        head = kernels.flag_head(flags, (n + 1) // 2, nonzero)  # ceil(n / 16) bytes: the m flags
        del flags
        sizes["flag"] = len(head) + (3 * nonzero + 7) // 8
    if scheme in ("auto", "base3"):
        sizes["base3"] = (n + 4) // 5
    if scheme in ("auto", "entropy"):
        entropy = code_levels(source, version=levels_version)
        sizes["entropy"] = entropy.size
    name = min(sizes, key=lambda k: (sizes[k], SCHEMES.index(k)))
    sink.write(bytes([SCHEMES.index(name)]))
    if name == "flag":
        sink.write(head)
        acc, nacc = 0, 0
        for start in range(0, n, piece):
            codes, acc, nacc = kernels.flag_codes(source.levels(start, min(n, start + piece)), acc, nacc)
            sink.write(codes)
        if nacc:
            sink.write(bytes([(acc << (8 - nacc)) & 0xFF]))
    elif name == "base3":
        step = 5 * piece  # whole groups of five: the pieces' bytes are the layer's
        for start in range(0, n, step):
            sink.write(kernels.base3_encode(source.levels(start, min(n, start + step))))
    else:
        entropy.write_to(sink)
    if entropy is not None and name != "entropy":
        entropy.close()


def decode_payload(payload, rows: int, cols: int, *, path: str, base_offset: int, levels_version: int = 3) -> np.ndarray:
    """Decode ``ternary_payload()`` into flat int8 trits."""
    r = _backend.bit_reader(payload, base_offset, path)
    scheme = r.u8("tn_scheme", enum=TernaryScheme)
    body = memoryview(payload).cast("B")[1:]
    n = rows * cols
    if scheme == TernaryScheme.ENTROPY:
        levels = decode_levels(body, rows, cols, out_kind=LC_OUT_I32, path=path, base_offset=base_offset + 1,
                               version=levels_version)
        if levels.size and (levels.min() < -1 or levels.max() > 1):
            raise FormatError("an entropy-coded trit is outside -1..1", path=f"{path}.lc_rans_words",
                              bit_offset=(base_offset + 1) * 8)
        return levels.astype(np.int8)
    if scheme == TernaryScheme.FLAG:
        status, at, value = _backend.ternary.flag_decode(body, n)
    elif scheme == TernaryScheme.BASE3:
        status, at, value = _backend.ternary.base3_decode(body, n)
    else:
        raise r.error(f"unknown tn_scheme {scheme}", "tn_scheme", at=0)
    if status:
        raise_status(kernel_reference.ERRORS, status, at, value, path=path, base_offset=base_offset + 1)
    return value


def _trace_payload(payload, trits, rows: int, cols: int, *, path: str, base_offset: int, trace: list,
                   levels_version: int = 3) -> None:
    r = _backend.bit_reader(payload, base_offset, path, trace)
    scheme = r.u8("tn_scheme", enum=TernaryScheme)
    if scheme == TernaryScheme.ENTROPY:
        trace_levels_payload(memoryview(payload).cast("B")[1:], rows, cols, path=path, base_offset=base_offset + 1,
                             trace=trace, version=levels_version)
    elif scheme == TernaryScheme.BASE3:
        r.view(r.bits_left() // 8, "tn_base3_digits")
    else:
        # the strings' lengths follow from the trits: rebuild the flags the encoder made
        levels = r.u8("tn_flag_levels")
        pairs = np.concatenate([trits, np.zeros(trits.size % 2, trits.dtype)]).reshape(-1, 2)
        top = (pairs != 0).any(axis=1)  # flags[0]: one per non-zero item
        counts = [int(top.sum())]
        for _ in range(levels):
            top = np.concatenate([top, np.zeros(-top.size % 4, bool)]).reshape(-1, 4).any(axis=1)
            counts.append(int(top.sum()))
        r.view((top.size + 7) // 8, f"tn_flags[{levels}]")
        for level in range(levels, 0, -1):
            r.view((4 * counts[level] + 7) // 8, f"tn_flag_items[{level}]")
        r.view((3 * counts[0] + 7) // 8, "tn_codes")


# ---------------------------------------------------------------------------------------------
# the mode
# ---------------------------------------------------------------------------------------------
def _axis_ok(value) -> str | None:
    return None if value is None or -8 <= value < 8 else "must be an axis of the tensor (-8..7)"


@register_mode
class TernaryMode(Mode):
    """``coding_mode`` 5: a float array with values in {-alpha, 0, +alpha} (alpha per tensor, or per
    slice along ``axis``), or an integer array of trits."""

    name = "ternary"
    mode_id = CodingMode.TERNARY
    since_minor = 1
    codes_levels = True
    dtypes = TERNARY_DTYPES
    has_levels = True
    params = (
        Param("scheme", (str,), "payload scheme; auto keeps the smallest", default="auto", choices=("auto",) + SCHEMES),
        Param("axis", (int, type(None)), "axis of per-slice alphas (float input); none: one alpha", check=_axis_ok),
        Param("threshold", (float,),
              "ternarize float input while coding it (TWN rule: trits where |w| > threshold * mean|w|, alpha the "
              "mean |w| of those; per slice along axis), as codec.ternary.ternarize(w, threshold=) would; none: the "
              "input is ternary already", range=(0.0, 1000.0)),
        Param("ternarize", (bool,), "ternarize float weights with the TWN rule (per slice along axis): threshold = 0.7",
              default=False, prepare=True),
    )

    def prepare(self, array, params):
        array, rest = super().prepare(array, params)
        if params.get("ternarize") and rest.get("threshold") is None:
            # coded piece by piece (threshold=) instead of making a ternarized copy of the tensor
            rest["threshold"] = 0.7
        return array, rest

    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        self.check_dtype(dtype)
        scheme = params.get("scheme", "auto")
        axis = params.get("axis")
        a = np.asarray(array)
        if axis is not None:
            if dtype not in FLOAT_DTYPES:
                raise EncodeError("integer trits have no alpha: axis= applies to float input")
            if not -a.ndim <= axis < a.ndim or a.ndim == 0:
                raise EncodeError(f"axis {axis} does not exist in a tensor of rank {a.ndim}")
            axis %= a.ndim
        source, alphas = ternary_source(a, axis=axis, threshold=params.get("threshold"),
                                        bf16_bits=is_bf16_bits(a, dtype))
        source.check()  # a tensor that is not ternary fails here, before its header is written
        w = _backend.BitWriter()
        w.u8(ONE_ALPHA if axis is None else axis)
        w.u32le(len(alphas))
        for value in alphas.tolist():
            w.f64le(value)
        return Plan(w.getvalue(), (source, scheme), levels_version=levels_version)

    def write(self, plan, array, dtype, sink):
        source, scheme = plan.state
        write_payload(source, source.rows, source.cols, sink, scheme, levels_version=plan.levels_version)

    def read_params(self, r, header):
        """``ternary_params()``: (tn_axis, float64 alphas)."""
        axis = r.u8("tn_axis")
        count = r.u32le("tn_alpha_count")
        if count * 64 != r.bits_left():
            raise r.error(f"{count} alphas do not fill the {r.bits_left() // 8} bytes of mode_params",
                          "tn_alpha_count", at=r.pos - 32)
        alphas = np.array([r.f64le(f"tn_alpha[{c}]") for c in range(count)], dtype=np.float64)
        shape = header.layer_shape
        if axis == ONE_ALPHA:
            if count != 1:
                raise r.error(f"a layer with one alpha (tn_axis 255) has tn_alpha_count {count}", "tn_alpha_count",
                              at=8)
        elif axis >= len(shape) or count != shape[axis]:
            raise r.error(f"tn_axis {axis} with {count} alphas does not fit shape {shape}", "tn_axis", at=0)
        if header.layer_dtype in INTEGER_DTYPES and (axis != ONE_ALPHA or alphas[0] != 1.0):
            raise r.error("an integer ternary layer has one alpha of 1.0", "tn_alpha[0]", at=40)
        return axis, alphas

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        axis, alphas = self.begin_decode(header, payload, verify=verify, levels=levels, format=format)
        shape = header.layer_shape
        rows, cols = level_grid(shape)
        trits = decode_payload(payload, rows, cols, path=header.payload_path,
                               base_offset=header.payload_offset, levels_version=header.levels_version)
        if levels:
            return trits.reshape(shape), alphas
        if header.layer_dtype in INTEGER_DTYPES:
            storage = storage_dtype(header)
            if storage.kind == "u" and trits.size and trits.min() < 0:
                raise FormatError(f"a trit -1 in a {header.dtype_name} layer", path=header.payload_path,
                                  bit_offset=header.payload_offset * 8)
            return user_array(header, trits.astype(storage))
        if axis != ONE_ALPHA:
            bshape = [1] * len(shape)
            bshape[axis] = -1
            alphas = alphas.reshape(bshape)
        # float(t) * alpha in binary64, zeros as +0.0 whatever alpha's sign (or value: 0 * inf
        # is computed, then replaced)
        with np.errstate(invalid="ignore"):
            values = np.where(trits.reshape(shape) == 0, 0.0, trits.reshape(shape) * alphas)
        if header.layer_dtype == DType.FLOAT64:
            return values
        # one rounding to binary32 (an alpha beyond its range gives +-inf, as IEEE rounding does),
        # then (float16, bfloat16) the conversions of spec 8.4
        with np.errstate(over="ignore"):
            return float_output(header, values.astype(np.float32).reshape(-1))

    def summarize(self, header, payload, *, global_qp=None):
        axis, alphas = self.params_of(header)
        body = memoryview(payload).cast("B")
        scheme = TernaryScheme(body[0]).name.lower() if len(body) and body[0] < len(SCHEMES) else "invalid"
        n = header.num_elements
        return {"scheme": scheme, "alpha_axis": None if axis == ONE_ALPHA else axis, "alphas": int(alphas.size),
                "alpha_min": float(alphas.min()) if alphas.size else None,
                "alpha_max": float(alphas.max()) if alphas.size else None,
                "bits_per_trit": 8 * len(body) / n if n else None}

    def summary_text(self, s):
        alpha = "a=1" if s["alphas"] == 1 and s["alpha_min"] == 1.0 else \
            (f"a={s['alpha_min']:.3g}" if s["alphas"] == 1 else f"{s['alphas']} a on axis {s['alpha_axis']}")
        bpt = f" {s['bits_per_trit']:.3f}b/trit" if s["bits_per_trit"] is not None else ""
        return f"{s['scheme']} {alpha}{bpt}"

    def trace(self, header, payload, trace, *, global_qp=None):
        self.params_of(header, trace=trace)
        rows, cols = level_grid(header.layer_shape)
        path = header.payload_path
        trits = decode_payload(payload, rows, cols, path=path, base_offset=header.payload_offset,
                               levels_version=header.levels_version)
        _trace_payload(payload, trits, rows, cols, path=path, base_offset=header.payload_offset, trace=trace,
                       levels_version=header.levels_version)
