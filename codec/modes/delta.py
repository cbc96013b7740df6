"""Coding mode ``delta`` (spec 6.10): the difference between a layer and the base model's layer of the
same name (spec 10.1), coded by another mode. Decoding gives the difference; ``codec.delta`` adds the base."""

from __future__ import annotations

import dataclasses

from ..errors import CodecError, EncodeError
from ..format.constants import CodingMode
from ..params import Param
from .base import ANY_DTYPE, Mode, Plan, get_mode, register_mode


@register_mode
class DeltaMode(Mode):
    """``coding_mode`` 9: a layer of a delta bitstream stored as its difference to the base model's layer,
    in another mode (``delta_mode``, with that mode's parameters). Written by ``codec.save_delta``."""

    name = "delta"
    mode_id = CodingMode.DELTA
    codes_levels = True
    dtypes = ANY_DTYPE
    nested_mode_param = "delta_mode"
    params = (
        Param("delta_mode", (str,), "coding mode of the difference (any but delta), with its parameters",
              default="raw"),
    )

    def _inner_mode(self, name: str) -> Mode:
        inner = get_mode(name)
        if inner is self:
            raise EncodeError("mode 'delta' cannot code its difference with mode 'delta'")
        return inner

    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        params = dict(params)
        inner = self._inner_mode(params.pop("delta_mode", "raw"))
        if levels_version < 3:
            raise EncodeError("mode 'delta' needs format version 2.5 or later")
        iplan = inner.plan(array, dtype, inner.validate(params), global_qp=global_qp,
                           **({"levels_version": levels_version} if inner.codes_levels else {}))
        return Plan(bytes([inner.mode_id]) + iplan.mode_params, (inner, iplan), iplan.local_qp_set,
                    levels_version=levels_version, min_version=max((2, 5), iplan.min_version))

    def write(self, plan, array, dtype, sink):
        inner, iplan = plan.state
        inner.write(iplan, array, dtype, sink)

    # -- decoding ------------------------------------------------------------------------------
    def read_params(self, r, header):
        """``delta_params()``: (the inner mode, the inner header: this layer as that mode would hold it)."""
        code = r.u8("delta_inner_mode", enum=CodingMode)
        if code == CodingMode.DELTA:
            raise r.error("the difference cannot itself be coded with mode delta", "delta_inner_mode", at=r.pos - 8)
        inner = get_mode(code, path=r.where("delta_inner_mode"))
        params = r.b(r.bits_left() // 8, "delta_inner_params")
        inner_header = dataclasses.replace(header, coding_mode=code, mode_params=params,
                                           mode_params_offset=header.mode_params_offset + 1)
        inner.check_header(inner_header)
        return inner, inner_header

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        inner, inner_header = self.params_of(header)
        return inner.decode(inner_header, payload, verify=verify, global_qp=global_qp, levels=levels, format=format)

    def decode_into(self, header, payload, out, *, verify=True, global_qp=None):
        inner, inner_header = self.params_of(header)
        return inner.decode_into(inner_header, payload, out, verify=verify, global_qp=global_qp)

    def summarize(self, header, payload, *, global_qp=None):
        try:
            inner, inner_header = self.params_of(header)
        except CodecError as exc:
            return {"error": str(exc)}
        summary = inner.summarize(inner_header, payload, global_qp=global_qp)
        return {"delta_mode": inner.name, "inner": summary,
                "inner_text": "-" if summary is None else inner.summary_text(summary)}

    def summary_text(self, q):
        if "error" in q:
            return "invalid"
        return f"delta +{q['delta_mode']}" + ("" if q["inner_text"] == "-" else f" {q['inner_text']}")

    def trace(self, header, payload, trace, *, global_qp=None):
        inner, inner_header = self.params_of(header, trace=trace)
        inner.trace(inner_header, payload, trace, global_qp=global_qp)
