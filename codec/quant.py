"""Quantization parameter sets and quantizers (spec section 8).

A *quantization parameter set* (``qp_set()``) lists optional fields; the global set in the network
header gives defaults, a layer's local set overrides them field by field. :func:`resolve` derives
a layer's effective parameters. Step sizes are integers ``qp`` on a grid of density ``d`` as in
MPEG NNR: ``step = (2^d + (qp mod 2^d)) * 2^(floor(qp / 2^d) - d)``, so per-channel steps are small
integers, delta Exp-Golomb coded, never raw floats.

Dequantization (float32 arithmetic, round to nearest even):
``uniform``: ``level * step``; ``uniform_zp``: ``(level - zero_point) * step``;
``codebook``: ``codebook[level]``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

import numpy as np

from . import _backend
from .dtypes import float_pieces
from .errors import CodecError, EncodeError, FormatError
from .lazy import PieceArray
from .levels import PIECE_ELEMENTS, ArrayLevels, LevelSource, level_grid
from .params import Param

__all__ = ["QuantParams", "Effective", "METHODS", "step_of_qp", "qp_for_step", "write_qp_set_data",
           "read_qp_set_data", "resolve", "quantize", "quantize_source", "UniformLevels", "dequantize"]

class QpMethod(enum.IntEnum):
    """``qp_method`` (spec 8.1); 3 is reserved."""

    UNIFORM = 0
    UNIFORM_ZP = 1
    CODEBOOK = 2


METHODS = tuple(m.name.lower() for m in QpMethod)
GRANULARITIES = ("tensor", "channel")
DEFAULT_DENSITY = 4
MAX_DENSITY = 7
MAX_CODEBOOK = 1 << 16
#: the smallest step the format holds (spec 8.2): steps derived from a tiny range are raised to it
MIN_STEP = 2.0 ** -126
#: Tensors with fewer elements are rounded to nearest with ``rdo_lambda``: their order-0 rate estimate
#: rests on too few levels, and they are often vectors every input meets (a token-type table, 768
#: elements in MiniLM), where the levels the rate term shrank moved the model's embedding cosine by
#: -0.049 (all-MiniLM-L6-v2) and +0.013 (paraphrase-MiniLM-L3-v2) at 4 bits per channel, more than all
#: the other tensors together: a gamble, not a rate-distortion trade. Their bits are a negligible share.
RDO_MIN_ELEMENTS = 4096

# qp_present_flags bits (spec table 8.1)
_F_METHOD, _F_BITS, _F_GRANULARITY, _F_STEP, _F_ZERO_POINT, _F_CODEBOOK = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04


@dataclasses.dataclass(frozen=True)
class QuantParams:
    """One quantization parameter set; ``None`` fields are absent (inherited)."""

    method: str | None = None
    bits: int | None = None
    granularity: str | None = None
    axis: int | None = None
    qp_density: int | None = None
    qps: tuple[int, ...] | None = None
    zero_points: tuple[int, ...] | None = None
    codebook: tuple[float, ...] | None = None

    def over(self, base: "QuantParams") -> "QuantParams":
        """Return this set with absent fields taken from ``base`` (local over global)."""
        return QuantParams(**_merged(self, base))

    def without(self, base: "QuantParams") -> "QuantParams":
        """Return this set minus the fields ``base`` already gives identically (what a local set needs)."""
        out = dataclasses.asdict(self)
        if self.method == base.method:
            out["method"] = None
        if self.bits == base.bits:
            out["bits"] = None
        if (self.granularity, self.axis) == (base.granularity, base.axis):
            out["granularity"] = out["axis"] = None
        if (self.qp_density, self.qps) == (base.qp_density, base.qps):
            out["qp_density"] = out["qps"] = None
        if self.zero_points == base.zero_points:
            out["zero_points"] = None
        if self.codebook == base.codebook:
            out["codebook"] = None
        return QuantParams(**out)

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))


@dataclasses.dataclass(frozen=True)
class Effective:
    """A layer's effective quantization parameters (what dequantization uses)."""

    method: str
    bits: int
    granularity: str
    axis: int
    qp_density: int
    qps: tuple[int, ...]
    steps: np.ndarray  # float32, one per channel (or one)
    zero_points: np.ndarray  # int64, one per channel (or one)
    codebook: np.ndarray | None  # float32


def step_of_qp(qp: int, density: int) -> float:
    """Return the step size of integer ``qp`` on the grid of ``density`` (exact in float64)."""
    base = 1 << density
    return math.ldexp(base + qp % base, qp // base - density)


def steps_of_qps(qps, density: int) -> np.ndarray:
    """:func:`step_of_qp` of every qp, as float32 (exact: a step has at most 8 significant bits)."""
    if len(qps) == 1 and qp_in_range(int(qps[0]), density):  # one step: no array arithmetic (a small layer's fixed cost)
        return np.array([step_of_qp(int(qps[0]), density)], dtype=np.float32)
    q = np.asarray(qps, dtype=np.int64)
    base = 1 << density
    return np.ldexp((base + q % base).astype(np.float64), (q // base - density).astype(np.int32)).astype(np.float32)


def qp_for_step(step: float, density: int, *, at_least: bool = False) -> int:
    """Return the qp whose step is nearest to ``step`` in log scale (or the smallest >= it)."""
    if not (step > 0 and math.isfinite(step)):
        raise EncodeError(f"step must be a positive finite number, got {step}")
    # step = (1 + m / 2^d) * 2^e with qp = e * 2^d + m: linear in the mantissa, not logarithmic
    fraction, exponent = math.frexp(step)  # step = fraction * 2^exponent, fraction in [0.5, 1)
    e = exponent - 1
    guess = e * (1 << density) + math.floor((2 * fraction - 1) * (1 << density))
    candidates = range(guess - 2, guess + 4)
    if at_least:
        qp = min(q for q in candidates if step_of_qp(q, density) >= step)
    else:
        qp = min(candidates, key=lambda q: (abs(math.log2(step_of_qp(q, density) / step)), q))
    if not qp_in_range(qp, density):
        raise EncodeError(f"step {step:g} is outside the steps the format holds, [2^-126, 2^128)")
    return qp


def qp_in_range(qp: int, density: int) -> bool:
    """Whether the step of ``qp`` is a normal binary32 (spec 8.2).

    step = (2^d + qp mod 2^d) * 2^(floor(qp / 2^d) - d) lies in [2^e, 2^(e+1)) with
    e = floor(qp / 2^d): normal (and exact: at most d + 1 <= 8 significant bits) when -126 <= e <= 127.
    """
    return -126 <= qp >> density <= 127


# ---------------------------------------------------------------------------------------------
# qp_set_data() syntax
# ---------------------------------------------------------------------------------------------
def write_qp_set_data(p: QuantParams) -> bytes:
    """Return the bytes of ``qp_set_data()`` (empty for an empty set)."""
    if p.is_empty():
        return b""
    w = _backend.BitWriter()
    flags = ((_F_METHOD if p.method is not None else 0) | (_F_BITS if p.bits is not None else 0)
             | (_F_GRANULARITY if p.granularity is not None else 0) | (_F_STEP if p.qps is not None else 0)
             | (_F_ZERO_POINT if p.zero_points is not None else 0) | (_F_CODEBOOK if p.codebook is not None else 0))
    w.u(8, flags)
    if p.method is not None:
        w.u(2, METHODS.index(p.method))
    if p.bits is not None:
        w.u(4, p.bits - 1)
    if p.granularity is not None:
        w.u(1, GRANULARITIES.index(p.granularity))
        w.u(3, p.axis or 0)
    if p.qps is not None:
        w.u(3, p.qp_density)
        _write_deltas(w, p.qps)
    if p.zero_points is not None:
        _write_deltas(w, p.zero_points)
    w.byte_alignment()
    if p.codebook is not None:
        w.u32le(len(p.codebook))
        w.b(np.asarray(p.codebook, dtype="<f4").tobytes())
    return w.getvalue()


def _write_deltas(w, values) -> None:
    """``qp_count_minus1`` / ``zp_count_minus1`` ue(0), then each ``qp_delta`` / ``zp_delta`` se(0):
    the difference from the previous value, the first from 0 (spec 8.1)."""
    w.ue(0, len(values) - 1)
    prev = 0
    for v in values:
        w.se(0, v - prev)
        prev = v


def _read_deltas(r, count_name: str, delta_name: str, what: str, max_count: int,
                 density: int | None = None) -> tuple[int, ...]:
    """A count (``qp_count_minus1`` or ``zp_count_minus1``) and its delta list (``qp_delta`` or
    ``zp_delta``); values start from 0 (spec 8.1). With a ``density`` the values are qps, checked
    against spec 8.2's range."""
    count = r.ue(0, count_name) + 1
    if count > max_count or count > r.bits_left():  # every delta takes at least one bit
        raise r.error(f"{count} {what} exceed the data or the limit", count_name)
    if r.trace is None and count > 16:
        # per-channel sets of big layers hold thousands of deltas: read them in one call, and only
        # if anything is out of range again element by element, so that the error names the element
        start = r.pos
        try:
            codes = r.ue_array(0, count)
        except CodecError:
            codes = None
        if codes is not None and int(codes.max()) < 1 << 32:  # sums then fit int64 by far
            codes = codes.astype(np.int64)
            values = np.cumsum(np.where(codes & 1, (codes + 1) >> 1, -(codes >> 1)))
            if density is None or (-126 <= int(values.min()) >> density and int(values.max()) >> density <= 127):
                return tuple(values.tolist())
        r.pos = start
    values, prev = [], 0
    for c in range(count):
        at = r.pos
        prev += r.se(0, f"{delta_name}[{c}]")
        if density is not None and not qp_in_range(prev, density):
            raise r.error(f"qp {prev} (density {density}) gives a step outside [2^-126, 2^128)", f"{delta_name}[{c}]",
                          at=at)
        values.append(prev)
    return tuple(values)


def read_qp_set_data(data: bytes, *, path: str = "qp_set", base_offset: int = 0, max_channels: int = 1 << 24,
                     trace: list | None = None) -> QuantParams:
    """Parse ``qp_set_data()``; an empty buffer is an empty set. ``trace`` collects the elements."""
    if not data:
        return QuantParams()
    r = _backend.bit_reader(data, base_offset, path, trace)
    flags = r.u(8, "qp_present_flags")
    if flags & 0x03:
        raise r.error("reserved qp_present_flags bits are set", "qp_present_flags", at=0)
    out: dict[str, Any] = {}
    if flags & _F_METHOD:
        m = r.u(2, "qp_method", enum=QpMethod)
        if m >= len(METHODS):
            raise r.error(f"reserved qp_method {m}", "qp_method", at=r.pos - 2)
        out["method"] = METHODS[m]
    if flags & _F_BITS:
        out["bits"] = r.u(4, "qp_bits_minus1") + 1
    if flags & _F_GRANULARITY:
        out["granularity"] = GRANULARITIES[r.u(1, "qp_per_channel_flag")]
        out["axis"] = r.u(3, "qp_axis")
    if flags & _F_STEP:
        out["qp_density"] = r.u(3, "qp_density")
        out["qps"] = _read_deltas(r, "qp_count_minus1", "qp_delta", "step sizes", max_channels, out["qp_density"])
    if flags & _F_ZERO_POINT:
        out["zero_points"] = _read_deltas(r, "zp_count_minus1", "zp_delta", "zero points", max_channels)
    r.byte_alignment()
    if flags & _F_CODEBOOK:
        size = r.u32le("cb_size")
        if size == 0 or size > MAX_CODEBOOK:
            raise r.error(f"cb_size {size} outside 1..{MAX_CODEBOOK}", "cb_size", at=r.pos - 32)
        raw = r.b(4 * size, "cb_value")
        out["codebook"] = tuple(np.frombuffer(raw, dtype="<f4").astype(np.float32).tolist())
    if r.bits_left():
        raise r.error(f"{r.bits_left() // 8} bytes after the last field", "qp_set_data")
    return QuantParams(**out)


def _merged(local: QuantParams, base: QuantParams) -> dict:
    """The fields of ``local.over(base)`` as a dict (one dict pass: a small layer's fixed cost)."""
    theirs = base.__dict__
    out = {name: mine if mine is not None else theirs[name] for name, mine in local.__dict__.items()}
    # granularity and axis, density and qps travel together
    if local.granularity is not None:
        out["axis"] = local.axis
    if local.qps is not None:
        out["qp_density"] = local.qp_density
    return out


def resolve(local: QuantParams, global_: QuantParams, shape: tuple[int, ...], *, path: str) -> Effective:
    """Derive a layer's effective parameters (spec 8.3): local fields over global fields over defaults."""
    p = _merged(local, global_)  # local.over(global_) without building that set
    qps, codebook, zero_points, density = p["qps"], p["codebook"], p["zero_points"], p["qp_density"]
    method = p["method"] or "uniform"
    bits = p["bits"] or 8
    granularity = p["granularity"] or "tensor"
    axis = p["axis"] or 0
    channels = 1
    if granularity == "channel":
        if axis >= len(shape):
            raise FormatError(f"qp_axis {axis} does not exist in a tensor of rank {len(shape)}", path=path)
        channels = shape[axis]
    if method == "codebook":
        if codebook is None:
            raise FormatError("codebook method without a codebook", path=path)
        return Effective(method, bits, "tensor", 0, 0, (), np.ones(1, np.float32), np.zeros(1, np.int64),
                         np.asarray(codebook, dtype=np.float32))
    if qps is None:
        raise FormatError("no step size in the local or global quantization parameters", path=path)
    if len(qps) not in (1, channels):
        raise FormatError(f"{len(qps)} step sizes for {channels} channels", path=path)
    if density is None or density > MAX_DENSITY:
        raise FormatError(f"qp_density {density} outside 0..{MAX_DENSITY}", path=path)
    steps = steps_of_qps(qps, density)
    zps = np.zeros(1, np.int64)
    if method == "uniform_zp":
        if zero_points is None or len(zero_points) not in (1, channels):
            raise FormatError("uniform_zp needs one zero point per step size", path=path)
        zps = np.asarray(zero_points, dtype=np.int64)
    return Effective(method, bits, granularity, axis, density, tuple(qps), steps, zps, None)


def dequantize(levels: np.ndarray, eff: Effective) -> np.ndarray:
    """Reference dequantization in numpy (float32), the values the decoder must produce."""
    q = np.asarray(levels)
    if eff.method == "codebook":
        if q.size and (q.min() < 0 or q.max() >= eff.codebook.size):
            raise FormatError("codebook index out of range")
        return eff.codebook[q]
    shape = [1] * q.ndim
    if eff.granularity == "channel" and q.ndim:
        shape[eff.axis] = -1
    steps = eff.steps.reshape(shape) if eff.steps.size > 1 else eff.steps[0]
    zps = eff.zero_points.reshape(shape) if eff.zero_points.size > 1 else eff.zero_points[0]
    return (q - zps).astype(np.float32) * np.asarray(steps, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# quantizers (encoder side)
# ---------------------------------------------------------------------------------------------
def _channel_view(w: np.ndarray, granularity: str, axis: int) -> np.ndarray:
    """Return w as (channels, rest) with the channel axis first."""
    if granularity == "tensor" or w.ndim == 0:
        return w.reshape(1, -1)
    return np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)


def _lloyd(values: np.ndarray, k: int, iterations: int = 40) -> np.ndarray:
    """Deterministic 1-D k-means: quantile initialisation, then Lloyd iterations."""
    v = np.sort(values.astype(np.float64))
    if v.size == 0:
        return np.zeros(1, np.float32)
    k = min(k, np.unique(v).size)
    centers = np.quantile(v, (np.arange(k) + 0.5) / k)
    for _ in range(iterations):
        edges = (centers[1:] + centers[:-1]) / 2
        idx = np.searchsorted(edges, v)
        sums = np.bincount(idx, weights=v, minlength=k)
        counts = np.bincount(idx, minlength=k)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), centers)
        if np.allclose(new, centers, rtol=0, atol=0):
            break
        centers = np.sort(new)
    return np.unique(centers.astype(np.float32))


def _box_pieces(outer: int, channels: int, inner: int, budget: int) -> list[tuple[int, int, int, int, int]]:
    """Cut a tensor seen as (outer, channels, inner) into consecutive element ranges that are boxes
    of at most ``budget`` elements: (start, o, c0, c, i) for flat[start:start + o*c*i] viewed as
    (o, c, i) with channels c0..c0+c-1."""
    block = channels * inner
    out = []
    if outer * block == 0:
        return out
    if block <= budget:
        per = max(1, budget // max(block, 1))
        for o0 in range(0, outer, per):
            out.append((o0 * block, min(per, outer - o0), 0, channels, inner))
    elif inner <= budget:
        per = budget // inner
        for o0 in range(outer):
            for c0 in range(0, channels, per):
                out.append((o0 * block + c0 * inner, 1, c0, min(per, channels - c0), inner))
    else:
        for o0 in range(outer):
            for c0 in range(channels):
                for i0 in range(0, inner, budget):
                    out.append((o0 * block + c0 * inner + i0, 1, c0, 1, min(budget, inner - i0)))
    return out


class UniformLevels(LevelSource):
    """The levels of a uniform (or uniform_zp) quantizer, computed piece by piece from the float
    tensor when the level coder asks (no layer-sized level or float64 copy).

    Each level is ``clip(rint(float64(x) / step) + zero_point, lo, hi)`` with the step and zero
    point of the element's channel."""

    def __init__(self, w: np.ndarray, layout: tuple[int, int, int], boxes, steps: np.ndarray, zps: np.ndarray,
                 lo, hi, to_float):
        rows, cols = level_grid(w.shape)
        super().__init__(rows, cols)
        self.flat, self.layout, self.boxes = w.reshape(-1), layout, boxes
        self.steps, self.zps, self.lo, self.hi, self.to_float = steps, zps, lo, hi, to_float

    def pieces(self) -> list[tuple[int, int]]:
        return [(a, a + o * c * i) for a, o, c, i in ((b[0], b[1], b[3], b[4]) for b in self.boxes)]

    def box(self, k: int):
        a, o, c0, c, i = self.boxes[k]
        x = self.to_float(self.flat[a:a + o * c * i]).astype(np.float64).reshape(o, c, i)
        return x, slice(c0, c0 + c)

    def levels(self, start: int, stop: int) -> np.ndarray:
        k = self._index.get(start) if hasattr(self, "_index") else None
        if k is None:
            self._index = {b[0]: j for j, b in enumerate(self.boxes)}
            k = self._index[start]
        x, chans = self.box(k)
        np.divide(x, self.steps[chans].reshape(1, -1, 1), out=x)
        np.rint(x, out=x)
        q = x.astype(np.int64)
        del x
        q += self.zps[chans].reshape(1, -1, 1)
        if self.lo is not None:
            np.clip(q, self.lo, self.hi, out=q)
        return q.reshape(-1)


def quantize_source(array, *, method: str = "uniform", bits: int | None = None, step: float | None = None,
                    granularity: str = "tensor", axis: int = 0, qp_density: int = DEFAULT_DENSITY,
                    rdo_lambda: float | None = None, bf16_bits: bool = False,
                    piece_elements: int | None = None) -> tuple[LevelSource, QuantParams]:
    """Plan the quantization of a float array; return (its levels as a LevelSource, the complete
    local QuantParams). Uniform quantizers read the array in pieces (bounded memory); codebook and
    rate-distortion rounding need the whole layer and hold its levels.

    ``bits`` bounds the levels (uniform: |level| <= 2^(bits-1) - 1; uniform_zp: 0..2^bits - 1;
    codebook: 2^bits entries). ``step`` fixes the step size (rounded to the qp grid); otherwise it
    is the smallest grid step that covers the range in ``bits``. ``rdo_lambda`` > 0 chooses, per
    weight, between the two nearest levels by squared error / step^2 + lambda * estimated bits (in a
    tensor of at least RDO_MIN_ELEMENTS elements; a smaller one is rounded to nearest).
    ``bf16_bits``: the array holds bfloat16 bit patterns as 16-bit integers.
    """
    # a PieceArray (sparse kept values) stays one: the uniform quantizers only slice it
    w = array if isinstance(array, PieceArray) and method != "codebook" and not rdo_lambda else np.asarray(array)
    to_float = float_pieces(w, bf16_bits, "quantization needs a float array")
    if method not in METHODS:
        raise EncodeError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if granularity not in GRANULARITIES:
        raise EncodeError(f"granularity must be 'tensor' or 'channel', got {granularity!r}")
    if not 0 <= qp_density <= MAX_DENSITY:
        raise EncodeError(f"qp_density must be in 0..{MAX_DENSITY}")
    if bits is not None and not 1 <= bits <= 16:
        raise EncodeError(f"bits must be in 1..16, got {bits}")
    if granularity == "channel" and (w.ndim < 2 or w.size == 0):
        # a vector's channels would be its elements (a step per element); an empty tensor has none
        granularity = "tensor"
    if granularity == "channel" and not 0 <= axis < max(w.ndim, 1):
        raise EncodeError(f"axis {axis} does not exist in a tensor of rank {w.ndim}")
    if granularity == "channel" and axis > 7:
        raise EncodeError("the channel axis must be < 8")
    if method == "uniform" and bits == 1:
        raise EncodeError("bits=1 leaves only level 0 with method='uniform'; use 'uniform_zp' or 'codebook'")
    if method == "codebook" or rdo_lambda:
        levels, params = _quantize_whole(to_float(w), method=method, bits=bits, step=step, granularity=granularity,
                                         axis=axis, qp_density=qp_density, rdo_lambda=rdo_lambda)
        return ArrayLevels(levels, *level_grid(w.shape)), params
    if bits is None and step is None:
        bits = 8
    if method == "uniform_zp" and bits is None:
        raise EncodeError("uniform_zp needs bits=")
    if granularity == "channel":
        layout = (math.prod(w.shape[:axis]), w.shape[axis], math.prod(w.shape[axis + 1:]))
    else:
        layout = (1, 1, w.size)
    boxes = _box_pieces(*layout, piece_elements or PIECE_ELEMENTS)
    flat = w.reshape(-1)
    channels = layout[1]
    # the statistics of each channel, piece by piece (max and min are exact in the input's type)
    lo_ch = np.full(channels, np.inf)
    hi_ch = np.full(channels, -np.inf)
    for a, o, c0, c, i in boxes:
        x = to_float(flat[a:a + o * c * i]).reshape(o, c, i)
        if not np.isfinite(x).all():
            raise EncodeError("cannot quantize NaN or infinite values")
        sl = slice(c0, c0 + c)
        lo_ch[sl] = np.minimum(lo_ch[sl], x.min(axis=(0, 2)).astype(np.float64))
        hi_ch[sl] = np.maximum(hi_ch[sl], x.max(axis=(0, 2)).astype(np.float64))
    if w.size == 0:
        lo_ch[:], hi_ch[:] = 0.0, 0.0
    if method == "uniform":
        top = (1 << (bits - 1)) - 1 if bits else None
        amax = np.maximum(np.abs(lo_ch), np.abs(hi_ch))
        if step is not None:
            qps = [qp_for_step(step, qp_density)] * channels
        else:
            qps = [qp_for_step(max(a / top, MIN_STEP) if a > 0 else 1.0, qp_density, at_least=True) for a in amax]
        zps = [0] * channels
        lo = -top if top else None
        hi = top
    else:
        top = (1 << bits) - 1
        mn = np.minimum(lo_ch, 0)
        mx = np.maximum(hi_ch, 0)
        if step is not None:
            qps = [qp_for_step(step, qp_density)] * channels
        else:
            qps = [qp_for_step(max((b - a) / top, MIN_STEP) if b > a else 1.0, qp_density,
                                 at_least=True) for a, b in zip(mn, mx)]
        zps = [int(min(top, max(0, round(-a / step_of_qp(q, qp_density))))) for a, q in zip(mn, qps)]
        lo, hi = 0, top
    steps = np.array([step_of_qp(q, qp_density) for q in qps])
    if lo is None:
        # step given, bits not: record the width the levels need (informative for uniform);
        # max |rint(x / step)| = rint(max |x| / step): division and rint are monotonic
        if w.size:
            need = int(np.rint(float(amax.max()) / steps[0])).bit_length() + 1
            if need > 16:
                raise EncodeError(f"step {step} gives levels of {need} bits; the limit is 16 (use a larger step)")
            bits = max(2, need)
        else:
            bits = 2
    per_channel = granularity == "channel"
    params = QuantParams(method=method, bits=bits, granularity=granularity, axis=axis if per_channel else 0,
                         qp_density=qp_density, qps=tuple(qps) if per_channel else (qps[0],),
                         zero_points=(tuple(zps) if per_channel else (zps[0],)) if method == "uniform_zp" else None)
    source = UniformLevels(w, layout, boxes, steps, np.array(zps, dtype=np.int64), lo, hi, to_float)
    return source, params


def quantize(array, *, method: str = "uniform", bits: int | None = None, step: float | None = None,
             granularity: str = "tensor", axis: int = 0, qp_density: int = DEFAULT_DENSITY,
             rdo_lambda: float | None = None) -> tuple[np.ndarray, QuantParams]:
    """Quantize a float array; return (int64 levels of the same shape, complete local QuantParams).
    The parameters are those of :func:`quantize_source`."""
    w = np.asarray(array)
    source, params = quantize_source(w, method=method, bits=bits, step=step, granularity=granularity, axis=axis,
                                     qp_density=qp_density, rdo_lambda=rdo_lambda)
    if isinstance(source, ArrayLevels):
        return source.q.reshape(w.shape), params
    levels = np.empty(w.size, dtype=np.int64)
    for a, b in source.pieces():
        levels[a:b] = source.levels(a, b)
    return levels.reshape(w.shape), params


def _quantize_whole(w: np.ndarray, *, method, bits, step, granularity, axis, qp_density, rdo_lambda):
    """The codebook quantizer and rate-distortion rounding: the whole layer at once."""
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise EncodeError("cannot quantize NaN or infinite values")
    if method == "codebook":
        if granularity != "tensor":
            raise EncodeError("codebook quantization is per tensor")
        centers = _lloyd(w.reshape(-1), 1 << (bits or 8))
        edges = (centers[1:].astype(np.float64) + centers[:-1]) / 2
        levels = np.searchsorted(edges, w.reshape(-1)).reshape(w.shape).astype(np.int64)
        return levels, QuantParams(method="codebook", bits=bits or 8, granularity="tensor", axis=0,
                                   codebook=tuple(float(c) for c in centers))
    if bits is None and step is None:
        bits = 8
    ch = _channel_view(w, granularity, axis)
    if method == "uniform":
        top = (1 << (bits - 1)) - 1 if bits else None
        amax = np.abs(ch).max(axis=1) if ch.size else np.zeros(ch.shape[0])
        if step is not None:
            qps = [qp_for_step(step, qp_density)] * ch.shape[0]
        else:
            if top is None:
                raise EncodeError("give bits= or step=")
            qps = [qp_for_step(max(a / top, MIN_STEP) if a > 0 else 1.0, qp_density, at_least=True) for a in amax]
        zps = [0] * ch.shape[0]
        lo = -top if top else None
        hi = top
    else:
        if bits is None:
            raise EncodeError("uniform_zp needs bits=")
        top = (1 << bits) - 1
        mn = np.minimum(ch.min(axis=1), 0) if ch.size else np.zeros(ch.shape[0])
        mx = np.maximum(ch.max(axis=1), 0) if ch.size else np.zeros(ch.shape[0])
        if step is not None:
            qps = [qp_for_step(step, qp_density)] * ch.shape[0]
        else:
            qps = [qp_for_step(max((b - a) / top, MIN_STEP) if b > a else 1.0, qp_density,
                                 at_least=True) for a, b in zip(mn, mx)]
        zps = [int(min(top, max(0, round(-a / step_of_qp(q, qp_density))))) for a, q in zip(mn, qps)]
        lo, hi = 0, top
    steps = np.array([step_of_qp(q, qp_density) for q in qps])[:, None]
    zp = np.array(zps, dtype=np.int64)[:, None]
    x = ch / steps
    levels = np.rint(x).astype(np.int64) + zp
    if rdo_lambda and x.size >= RDO_MIN_ELEMENTS:
        levels = _rdo(x, levels, zp, rdo_lambda, lo, hi)
    if lo is not None:
        levels = np.clip(levels, lo, hi)
    elif levels.size:
        need = int(np.abs(levels).max()).bit_length() + 1
        if need > 16:
            raise EncodeError(f"step {step} gives levels of {need} bits; the limit is 16 (use a larger step)")
        bits = max(2, need)
    else:
        bits = 2
    if granularity == "channel" and w.ndim:
        moved = list(w.shape)
        moved.insert(0, moved.pop(axis))
        levels = np.moveaxis(levels.reshape(moved), 0, axis)
    levels = levels.reshape(w.shape)
    per_channel = granularity == "channel"
    params = QuantParams(method=method, bits=bits, granularity=granularity, axis=axis if per_channel else 0,
                         qp_density=qp_density, qps=tuple(qps) if per_channel else (qps[0],),
                         zero_points=(tuple(zps) if per_channel else (zps[0],)) if method == "uniform_zp" else None)
    return levels, params


def _rdo(x: np.ndarray, levels: np.ndarray, zp: np.ndarray, lam: float, lo, hi) -> np.ndarray:
    """Per weight, pick floor or ceil of x minimising (x - q)^2 + lam * bits(q) (two passes)."""
    if x.size == 0:
        return levels
    lower = np.floor(x).astype(np.int64) + zp
    upper = lower + 1
    if lo is not None:
        lower, upper = np.clip(lower, lo, hi), np.clip(upper, lo, hi)
    current = levels
    for _ in range(2):
        values, counts = np.unique(current, return_counts=True)
        bits_of = dict(zip(values.tolist(), (-np.log2(counts / counts.sum())).tolist()))
        worst = max(bits_of.values()) + 1.0

        def cost(q):
            b = np.vectorize(lambda v: bits_of.get(v, worst), otypes=[np.float64])(q)
            return (x - (q - zp)) ** 2 + lam * b

        current = np.where(cost(lower) <= cost(upper), lower, upper)
    return current


def _positive_finite(value) -> str | None:
    return None if value > 0 and math.isfinite(value) else "must be a positive finite number"


#: The quantization parameters, declared once: the ``quantized`` mode's parameters and the keys of
#: a writer's global set (``Writer(quantization=...)``).
QUANT_PARAMS = (
    Param("bits", (int,), "bits per level: bounds the levels, and sets the step when no step is given",
          range=(1, 16)),
    Param("step", (float,), "step size (rounded to the qp grid of qp_density)", check=_positive_finite),
    Param("method", (str,), "quantizer; codebook (k-means, per tensor) needs ~30% more bits than uniform with a step "
          "at equal weight error (MiniLM: 3.77 b/w at rel. RMSE 0.142 vs 2.87 at 0.145): use it only where a decoder "
          "wants at most 2^bits distinct values, not for size", choices=METHODS),
    Param("granularity", (str,), "one step (and zero point) per tensor, or per channel along axis (a tensor of "
          "rank < 2 is quantized per tensor)", choices=GRANULARITIES),
    Param("axis", (int,), "channel axis of per-channel quantization", range=(0, 7)),
    Param("qp_density", (int,), "density d of the step grid: 2^d steps per octave", range=(0, MAX_DENSITY)),
)


def global_quantization(spec) -> QuantParams:
    """Return the global QuantParams from a Writer's ``quantization=`` mapping (or QuantParams, or None)."""
    if spec is None:
        return QuantParams()
    if isinstance(spec, QuantParams):
        return spec
    declared = {p.name: p for p in QUANT_PARAMS}
    checked = {}
    for key, value in dict(spec).items():
        if key not in declared:
            raise EncodeError(f"unknown quantization key {key!r} (keys: {', '.join(declared)})")
        checked[key] = declared[key].validate(value, "quantized")
    granularity = checked.get("granularity")
    density = checked.get("qp_density", DEFAULT_DENSITY if "step" in checked else None)
    qps = (qp_for_step(checked["step"], density),) if "step" in checked else None
    return QuantParams(method=checked.get("method"), bits=checked.get("bits"), granularity=granularity,
                       axis=checked.get("axis", 0) if granularity is not None else None,
                       qp_density=density if qps is not None else None, qps=qps)
