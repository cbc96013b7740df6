"""Coding mode ``dq`` (spec 6.8): float tensors through dependent (trellis-coded) quantization, the
levels through the level coder (spec 7), reconstructed by the 8-state trellis of spec 8.5."""

from __future__ import annotations

import math

import numpy as np

from .. import dq, quant
from ..dtypes import FLOAT_DTYPES, as_float, float_output
from ..errors import CodecError, EncodeError, FormatError, UnsupportedError
from ..format.constants import CodingMode, DType
from ..levels import LC_MAX_CLASSES, LC_OUT_DQ, ArrayLevels, decode_level_rows, decode_levels, level_grid, levels_summary, trace_levels_payload, \
    write_levels
from ..params import Param
from .base import Mode, Plan, chunked_rows, register_mode, rows_header
from .entropy import MAX_CLASSES, levels_text

#: the fused decoder's reason for a level the trellis does not take (spec 8.5)
_DQ_LEVEL_REASON = "a dq level's magnitude must be below 2^31"

#: ``dq_trellis`` values (spec 6.8): the trellis a layer's levels follow.
DQ_TRELLIS_8_STATES = 0


def _positive_finite(value) -> str | None:
    return None if value > 0 and math.isfinite(value) else "must be a positive finite number"


@register_mode
class DqMode(Mode):
    """``coding_mode`` 7: float tensors, lossy, with dependent quantization (MPEG NNR's trellis).

    At the same ``step`` as the ``quantized`` mode the file is about as large and the error smaller;
    at equal model quality or weight error it takes 2-5% fewer bits (bench/bench_rd.py). Encoding
    runs a Viterbi search per row, twice (5-10 M weights/s compiled). Parameters not given come from the writer's global
    quantization parameters, then from the defaults (8 bits per tensor)."""

    name = "dq"
    mode_id = CodingMode.DQ
    codes_levels = True
    dtypes = FLOAT_DTYPES
    has_levels = True
    params = (
        Param("bits", (int,), "bits per level: level magnitudes <= 2^(bits-1) - 1; sets the step when no step is given",
              range=(2, 16)),
        Param("step", (float,), "step of the uniform quantizer this replaces (rounded to the qp grid of qp_density); "
              "the stored step is half of it", check=_positive_finite),
        Param("granularity", (str,), "one step per tensor, or per channel along axis (a tensor of rank < 2 is "
              "quantized per tensor)", choices=quant.GRANULARITIES),
        Param("axis", (int,), "channel axis of per-channel steps", range=(0, 7)),
        Param("qp_density", (int,), "density d of the step grid: 2^d steps per octave", range=(0, quant.MAX_DENSITY)),
        Param("dq_lambda", (float,), "weight of estimated bits against squared error (in units of the stored "
              "step squared) in the trellis search", range=(0.0, math.inf)),
        Param("importance", (np.ndarray, list), "weights of the squared error per input channel (shape[1] entries) or "
              "per column of the level grid, e.g. codec.torch.collect_importance's mean squared inputs",
              policy=False),
        MAX_CLASSES,
    )

    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        self.check_dtype(dtype)
        if levels_version < 3:
            raise EncodeError(f"mode {self.name!r} needs format version 2.2 or later (this file is written for "
                             f"{'1.x' if levels_version == 1 else '2.0'} readers)")
        params = dict(params)
        max_classes = params.pop("max_classes", LC_MAX_CLASSES)
        g = global_qp or quant.QuantParams()
        step = params.get("step")
        if step is None and "bits" not in params and g.qps is not None and len(g.qps) == 1:
            step = quant.step_of_qp(g.qps[0], g.qp_density)
        levels, full = dq.quantize_dq(
            as_float(array, dtype), bits=params.get("bits", g.bits if step is None else None), step=step,
            granularity=params.get("granularity", g.granularity or "tensor"), axis=params.get("axis", g.axis or 0),
            qp_density=params.get("qp_density", g.qp_density if g.qp_density is not None else quant.DEFAULT_DENSITY),
            dq_lambda=params.get("dq_lambda", dq.DEFAULT_LAMBDA), importance=params.get("importance"))
        local = full.without(g)
        return Plan(self._mode_params(), (ArrayLevels(levels, *level_grid(levels.shape)), max_classes),
                    quant.write_qp_set_data(local) if not local.is_empty() else None, levels_version=levels_version,
                    min_version=(2, 2))

    @staticmethod
    def _mode_params() -> bytes:
        return bytes([DQ_TRELLIS_8_STATES])

    def write(self, plan, array, dtype, sink):
        source, max_classes = plan.state
        write_levels(source, sink, max_classes=max_classes, version=plan.levels_version)

    def read_params(self, r, header):
        """``dq_params()``: the trellis (0: the 8-state trellis of 8.5; others reserved)."""
        trellis = r.u8("dq_trellis")
        if trellis != DQ_TRELLIS_8_STATES:
            raise r.error(f"dq_trellis {trellis} is reserved", "dq_trellis", cls=UnsupportedError, at=0)
        if r.bits_left():
            raise r.error(f"{r.bits_left() // 8} bytes follow dq_trellis in mode_params")
        return trellis

    def effective(self, header, global_qp) -> quant.Effective:
        """The layer's effective quantization parameters (spec 8.3); the method must be uniform."""
        path = header.qp_path
        local = quant.read_qp_set_data(header.local_qp_set or b"", path=f"{path}.qp_set_data",
                                       base_offset=header.local_qp_set_offset)
        eff = quant.resolve(local, global_qp or quant.QuantParams(), header.layer_shape, path=path)
        if eff.method != "uniform":
            raise FormatError(f"a dq layer's quantization method must be uniform, not {eff.method}",
                              path=f"{path}.qp_method")
        return eff

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        self.begin_decode(header, payload, verify=verify, levels=levels, format=format)
        rows, cols = level_grid(header.layer_shape)
        eff = self.effective(header, global_qp)
        where = dict(path=header.payload_path, base_offset=header.payload_offset, version=header.levels_version)
        if levels:
            return decode_levels(payload, rows, cols, **where).reshape(header.layer_shape), eff
        return float_output(header, self._fused(header, eff, lambda **kw: decode_levels(payload, rows, cols, **where, **kw),
                                                lambda flat, out: self._values(header, eff, 0, flat, out=out)))

    def decode_into(self, header, payload, out, *, verify=True, global_qp=None):
        if header.layer_dtype != DType.FLOAT32:
            return False
        self.begin_decode(header, payload, verify=verify, levels=False, format="dense")
        eff = self.effective(header, global_qp)
        if not self._step_per_row(header, eff):
            return False
        rows, cols = level_grid(header.layer_shape)
        where = dict(path=header.payload_path, base_offset=header.payload_offset, version=header.levels_version)
        self._fused(header, eff, lambda **kw: decode_levels(payload, rows, cols, **where, **kw),
                    lambda flat, out: self._values(header, eff, 0, flat, out=out), out=out.reshape(-1))
        return True

    def decode_rows(self, header, payload, start, stop, *, verify=True, global_qp=None):
        if not chunked_rows(header):
            return super().decode_rows(header, payload, start, stop, verify=verify, global_qp=global_qp)
        self.begin_decode(header, payload, verify=verify, levels=False, format="dense")
        rows, cols = level_grid(header.layer_shape)
        eff = self.effective(header, global_qp)
        where = dict(path=header.payload_path, base_offset=header.payload_offset, version=header.levels_version)
        got = {}

        def decode(**kw):
            got["first"], flat = decode_level_rows(payload, rows, cols, start, stop, **where, **kw)
            return flat

        def values(flat, out):
            return self._values(rows_header(header, flat.size // cols), eff, got["first"], flat, out=out)

        flat = self._fused(header, eff, decode, values)  # the steps index all rows
        return got["first"], float_output(rows_header(header, flat.size // cols), flat)

    @staticmethod
    def _step_per_row(header, eff) -> bool:
        """Whether each row of the level grid has one step (reconstruction and scaling in one pass)."""
        return eff.steps.size == 1 or (eff.axis == 0 and len(header.layer_shape) >= 2)

    @classmethod
    def _fused(cls, header, eff, decode, values, *, out=None):
        """The float32 values from ``decode(**kw)`` (a level decoder): with a step per row of the level grid,
        levels, trellis and steps in the decoder's one pass (LC_OUT_DQ), else ``values(levels, out)``. A level
        of magnitude >= 2^31 is reported by ``values`` (it names the level)."""
        if not cls._step_per_row(header, eff):
            return values(decode(), out)
        rows, _ = level_grid(header.layer_shape)
        steps = np.full(rows, eff.steps[0], np.float32) if eff.steps.size == 1 else \
            np.ascontiguousarray(eff.steps, dtype=np.float32)
        try:
            return decode(out_kind=LC_OUT_DQ, scale=steps, **({} if out is None else {"out": out}))
        except FormatError as exc:
            if _DQ_LEVEL_REASON not in str(exc):
                raise
        return values(decode(), out)  # raises: it names the level

    @classmethod
    def _values(cls, header, eff, first: int, flat, *, out=None):
        """The float32 values of the levels ``flat`` of rows ``first`` .. of the level grid (rows are independent
        in spec 8.5, so any range of whole rows reconstructs alone), into ``out`` where a step per row allows."""
        rows, cols = level_grid(header.layer_shape)
        at = dict(path=header.payload_path, base_offset=header.payload_offset)
        if cls._step_per_row(header, eff):
            # one step per row of the level grid: reconstruction and scaling in one pass
            steps = eff.steps[first:first + rows] if eff.steps.size > 1 else np.broadcast_to(eff.steps, (rows,))
            return dq.dequantize(flat, rows, cols, steps, out=out, **at)
        q = dq.reconstruct(flat, rows, cols, **at)
        return quant.dequantize(q.reshape(header.layer_shape), eff).reshape(-1)

    def summarize(self, header, payload, *, global_qp=None):
        try:
            self.params_of(header)
            eff = self.effective(header, global_qp)
        except CodecError as exc:
            return {"error": str(exc)}
        out = {"trellis": "8 states", "bits": eff.bits, "granularity": eff.granularity, "axis": eff.axis,
               "qp_density": eff.qp_density, "qps": list(eff.qps), "step_min": float(eff.steps.min()),
               "step_max": float(eff.steps.max())}
        rows, cols = level_grid(header.layer_shape)
        try:
            out["levels"] = levels_summary(payload, rows, cols, path=header.payload_path,
                                           base_offset=header.payload_offset, version=header.levels_version)
        except CodecError as exc:
            out["levels"] = {"error": str(exc)}
        return out

    def summary_text(self, q):
        if "error" in q:
            return "invalid"
        text = f"dq {q['bits']}b" + (f" ch{q['axis']}" if q["granularity"] == "channel" else "")
        if q["step_min"] == q["step_max"]:
            text += f" step 2^{math.log2(q['step_min']):.2f}"
        else:
            text += f" steps 2^{math.log2(q['step_min']):.1f}..2^{math.log2(q['step_max']):.1f}"
        return text if "error" in q["levels"] else f"{text} {levels_text(q['levels'])}"

    def trace(self, header, payload, trace, *, global_qp=None):
        self.params_of(header, trace=trace)
        rows, cols = level_grid(header.layer_shape)
        trace_levels_payload(payload, rows, cols, path=header.payload_path,
                             base_offset=header.payload_offset, trace=trace, version=header.levels_version)
