"""Coding mode ``quantized`` (spec 6.4): float tensors as levels through the level coder (spec 7),
turned back into values by the layer's effective quantization parameters (spec 8)."""

from __future__ import annotations

import math

import numpy as np

from .. import quant
from ..dtypes import FLOAT_DTYPES, float_output, is_bf16_bits
from ..errors import CodecError
from ..format.constants import CodingMode, DType
from ..levels import LC_MAX_CLASSES, LC_OUT_AFFINE, LC_OUT_CODEBOOK, decode_level_rows, decode_levels, level_grid, write_levels, \
    levels_summary, trace_levels_payload
from .base import Mode, Param, Plan, chunked_rows, register_mode, rows_header
from .entropy import MAX_CLASSES, levels_text


@register_mode
class QuantizedMode(Mode):
    """``coding_mode`` 3: float tensors, lossy. Parameters not given come from the writer's global
    quantization parameters (``Writer(quantization=...)``), then from the defaults."""

    name = "quantized"
    mode_id = CodingMode.QUANTIZED
    since_minor = 1
    codes_levels = True
    dtypes = FLOAT_DTYPES
    has_levels = True
    params = quant.QUANT_PARAMS + (
        Param("rdo_lambda", (float,),
              "rate-distortion weight of the per-weight rounding choice (0: round to nearest; tensors under 4,096 "
              "elements are always rounded to nearest: in MiniLM's 768-element token-type table the choice moved "
              "the embedding cosine by -0.05, in paraphrase-MiniLM-L3's by +0.013, a gamble); it shrinks magnitudes"
              " to save bits: on MiniLM at 4 bits per channel 0.05 / 0.1 / 0.2 / 0.4 save 0.4 / 0.9 / 1.8 / 3.8% at"
              " embedding cosine 0.884 / 0.881 / 0.876 / 0.846 (round to nearest: 0.884), for a 5x slower encode; "
              "mode dq is the better trade",
              range=(0.0, math.inf)),
        MAX_CLASSES,
    )

    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        self.check_dtype(dtype)
        params = dict(params)
        max_classes = params.pop("max_classes", LC_MAX_CLASSES)
        g = global_qp or quant.QuantParams()
        kwargs = {
            "method": params.get("method", g.method or "uniform"),
            "bits": params.get("bits", g.bits),
            "granularity": params.get("granularity", g.granularity or "tensor"),
            "axis": params.get("axis", g.axis or 0),
            "qp_density": params.get("qp_density",
                                     g.qp_density if g.qp_density is not None else quant.DEFAULT_DENSITY),
            "rdo_lambda": params.get("rdo_lambda"),
        }
        step = params.get("step")
        if step is None and g.qps is not None and len(g.qps) == 1 and "bits" not in params:
            step = quant.step_of_qp(g.qps[0], g.qp_density)
            kwargs["qp_density"] = g.qp_density
        # the levels are made piece by piece while they are coded (memory: the layer and one piece)
        source, full = quant.quantize_source(array, step=step, bf16_bits=is_bf16_bits(array, dtype), **kwargs)
        local = full.without(g)
        return Plan(b"", (source, max_classes), quant.write_qp_set_data(local) if not local.is_empty() else None,
                    levels_version=levels_version)

    def write(self, plan, array, dtype, sink):
        source, max_classes = plan.state
        write_levels(source, sink, max_classes=max_classes, version=plan.levels_version)

    def effective(self, header, global_qp) -> quant.Effective:
        """The layer's effective quantization parameters (spec 8.3)."""
        path = header.qp_path
        local = quant.read_qp_set_data(header.local_qp_set or b"", path=f"{path}.qp_set_data",
                                       base_offset=header.local_qp_set_offset)
        return quant.resolve(local, global_qp or quant.QuantParams(), header.layer_shape, path=path)

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        self.begin_decode(header, payload, verify=verify, levels=levels, format=format)
        rows, cols = level_grid(header.layer_shape)
        eff = self.effective(header, global_qp)
        where = dict(path=header.payload_path, base_offset=header.payload_offset, version=header.levels_version)
        if levels:
            return decode_levels(payload, rows, cols, **where).reshape(header.layer_shape), eff

        def decode(**kw):
            return 0, decode_levels(payload, rows, cols, **kw, **where)
        return float_output(header, self._values(header, eff, decode)[1])

    def decode_into(self, header, payload, out, *, verify=True, global_qp=None):
        if header.layer_dtype != DType.FLOAT32:
            return False  # other float dtypes are converted from float32 values: no gain
        self.begin_decode(header, payload, verify=verify, levels=False, format="dense")
        fused = self._fused(header, self.effective(header, global_qp))
        if fused is None:
            return False
        decode_levels(payload, *level_grid(header.layer_shape), out=out.reshape(-1), path=header.payload_path,
                      base_offset=header.payload_offset, version=header.levels_version, **fused)
        return True

    def decode_rows(self, header, payload, start, stop, *, verify=True, global_qp=None):
        if not chunked_rows(header):
            return super().decode_rows(header, payload, start, stop, verify=verify, global_qp=global_qp)
        self.begin_decode(header, payload, verify=verify, levels=False, format="dense")
        rows, cols = level_grid(header.layer_shape)
        eff = self.effective(header, global_qp)
        where = dict(path=header.payload_path, base_offset=header.payload_offset, version=header.levels_version)

        def decode(**kw):
            return decode_level_rows(payload, rows, cols, start, stop, **kw, **where)
        first, flat = self._values(header, eff, decode)
        return first, float_output(rows_header(header, flat.size // cols), flat)

    def _values(self, header, eff, decode):
        """The float32 values of the rows ``decode`` (levels of some rows, as decode_level_rows) returns."""
        rows, cols = level_grid(header.layer_shape)
        fused = self._fused(header, eff)
        if fused is not None:
            return decode(**fused)
        first, flat = decode()
        shape = (flat.size // cols if cols else rows,) + tuple(header.layer_shape[1:]) if len(header.layer_shape) >= 2 \
            else header.layer_shape
        return first, quant.dequantize(flat.reshape(shape), eff).reshape(-1)

    @staticmethod
    def _fused(header, eff) -> dict | None:
        """The level decoder's arguments that make its output the float32 values, or None where they need a
        pass of their own: the kernel applies a codebook, or one step and zero point per row of the level
        grid (fused when each is shared or the channels are those rows: axis 0 of a tensor of rank >= 2)."""
        if eff.method == "codebook":
            return dict(out_kind=LC_OUT_CODEBOOK, codebook=eff.codebook)
        rows = level_grid(header.layer_shape)[0]
        per_row = eff.granularity == "channel" and eff.axis == 0 and len(header.layer_shape) >= 2
        if all(a.size == 1 or per_row for a in (eff.steps, eff.zero_points)):
            # one value per row, contiguous (the kernel would copy a broadcast view anyway)
            return dict(out_kind=LC_OUT_AFFINE, scale=_per_row(eff.steps, rows, np.float32),
                        zero_point=_per_row(eff.zero_points, rows, np.int64))
        return None

    def summarize(self, header, payload, *, global_qp=None):
        try:
            eff = self.effective(header, global_qp)
            local = quant.read_qp_set_data(header.local_qp_set or b"")
        except CodecError as exc:
            return {"error": str(exc)}
        out = {"method": eff.method, "bits": eff.bits, "granularity": eff.granularity, "axis": eff.axis,
               "local_fields": [k for k, v in vars(local).items() if v is not None]}
        if eff.method == "codebook":
            out["codebook_size"] = int(eff.codebook.size)
        else:
            out.update(qp_density=eff.qp_density, qps=list(eff.qps), step_min=float(eff.steps.min()),
                       step_max=float(eff.steps.max()))
            if eff.method == "uniform_zp":
                out["zero_points"] = eff.zero_points.tolist()
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
        text = f"{q['method']} {q['bits']}b"
        if q["method"] == "codebook":
            return text + f" cb{q['codebook_size']}"
        text += f" ch{q['axis']}" if q["granularity"] == "channel" else ""
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


def _per_row(values: np.ndarray, rows: int, dtype) -> np.ndarray:
    """``values`` (one, or one per row) as a contiguous array of one per row."""
    if values.size == 1:
        value = values.reshape(-1)[0]
        if value == 0 and values.dtype.kind in "iu":
            return np.zeros(rows, dtype=dtype)  # (the usual zero point: np.full costs a small layer more)
        return np.full(rows, value, dtype=dtype)
    return np.ascontiguousarray(values, dtype=dtype)
