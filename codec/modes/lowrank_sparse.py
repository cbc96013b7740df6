"""Coding mode ``lowrank_sparse`` (spec 6.11): a float layer of rank >= 2 as C @ Z, C dense (rows x rank) and Z
sparse (rank x cols), each factor coded by another mode (by default C ``quantized`` per row, Z ``sparse`` with
quantized kept values)."""

from __future__ import annotations

import dataclasses
import io
import struct

import numpy as np

from .. import _backend
from ..dtypes import FLOAT_DTYPES, as_float, float_output
from ..errors import CodecError, EncodeError
from ..format.constants import CodingMode, DType
from ..levels import level_grid
from ..lowrank import factorize, product
from ..params import Param
from .base import Mode, Plan, get_mode, register_mode

#: the factors' names, in payload order
FACTORS = ("C", "Z")


def _density(value) -> str | None:
    return None if 0 < value <= 1 else "must be in (0, 1]"


@register_mode
class LowrankSparseMode(Mode):
    """``coding_mode`` 10: W = C @ Z over the level grid (rows x cols): C (rows x ``rank``) quantized per row with
    ``c_bits``, Z (``rank`` x cols) keeping a ``density`` fraction of its entries, quantized with ``z_bits``. The
    encoder runs a truncated SVD and alternating least squares; decoding is a fixed-order binary32 product."""

    name = "lowrank_sparse"
    mode_id = CodingMode.LOWRANK_SPARSE
    codes_levels = True
    dtypes = FLOAT_DTYPES
    params = (
        Param("rank", (int,), "inner dimension k of C (rows x k) and Z (k x cols), at most min(rows, cols)",
              default=16,
              range=(1, 1 << 20)),
        Param("density", (float,), "fraction of Z's entries kept", default=0.25, check=_density),
        Param("c_bits", (int,), "bits per level of C, one step per row", default=8, range=(2, 16)),
        Param("z_bits", (int,), "bits per level of Z's kept entries, one step for all", default=8, range=(2, 16)),
        Param("iters", (int,), "alternating least-squares rounds", default=8, range=(0, 100)),
        Param("factors", (tuple, list), "(C, Z) to code instead of factorizing (float arrays of the shapes above)",
              policy=False),
    )

    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        self.check_dtype(dtype)
        if levels_version < 3:
            raise EncodeError("mode 'lowrank_sparse' needs format version 2.6 or later")
        a = np.asarray(as_float(array, dtype))
        if a.ndim < 2:
            raise EncodeError(f"mode 'lowrank_sparse' codes tensors of rank >= 2, not rank {a.ndim}")
        rows, cols = level_grid(a.shape)
        if "factors" in params and params["factors"] is not None:
            c, z = (np.asarray(f, dtype=np.float32) for f in params["factors"])
            rank = c.shape[1] if c.ndim == 2 else -1
            if c.shape != (rows, rank) or z.shape != (rank, cols) or not 1 <= rank <= min(rows, cols):
                raise EncodeError(f"factors must be C ({rows} x k) and Z (k x {cols}) with 1 <= k <= {min(rows, cols)}, "
                                  f"got {c.shape} and {z.shape}")
        else:
            if not np.isfinite(a).all():
                raise EncodeError("mode 'lowrank_sparse' codes finite values only")
            # at most the grid's smaller side: one rank= for a whole model fits its small tensors too
            rank = min(params.get("rank") or 16, rows, cols)
            c, z = factorize(a.reshape(rows, cols), rank, params.get("density", 0.25),
                             iters=params.get("iters", 8))
        parts = []
        for factor, mode, fparams in ((c, "quantized", {"bits": params.get("c_bits", 8), "granularity": "channel"}),
                                      (z, "sparse", {"values_mode": "quantized", "bits": params.get("z_bits", 8)})):
            coding = get_mode(mode)
            fplan = coding.plan(factor, DType.FLOAT32, coding.validate(fparams), global_qp=global_qp,
                                levels_version=levels_version)
            parts.append((coding, fplan, factor))
        return Plan(struct.pack("<I", c.shape[1]), parts, levels_version=levels_version,
                    min_version=max([(2, 6)] + [p[1].min_version for p in parts]))

    def write(self, plan, array, dtype, sink):
        for coding, fplan, factor in plan.state:
            body = io.BytesIO()
            coding.write(fplan, factor, DType.FLOAT32, body)
            qp = fplan.local_qp_set or b""
            sink.write(struct.pack("<BI", coding.mode_id, len(fplan.mode_params)) + fplan.mode_params
                       + struct.pack("<I", len(qp)) + qp + struct.pack("<I", len(body.getvalue())))
            sink.write(body.getvalue())

    # -- decoding ------------------------------------------------------------------------------
    def check_header(self, header) -> None:
        super().check_header(header)
        if len(header.layer_shape) < 2:
            from ..errors import FormatError

            raise FormatError(f"a lowrank_sparse layer has rank >= 2, not {len(header.layer_shape)}",
                              path=f"{header.path}.layer_rank")

    def read_params(self, r, header):
        """``lrs_params()``: k."""
        rank = r.u32le("lrs_rank")
        rows, cols = level_grid(header.layer_shape)
        if not 1 <= rank <= min(rows, cols):
            raise r.error(f"lrs_rank {rank} is outside 1..{min(rows, cols)}", "lrs_rank", at=r.pos - 32)
        if r.bits_left():
            raise r.error(f"{r.bits_left() // 8} bytes follow lrs_rank in mode_params")
        return rank

    def _factors(self, header, payload, rank, trace=None):
        """(mode, factor header, factor payload) of C and Z (spec 6.11)."""
        rows, cols = level_grid(header.layer_shape)
        r = _backend.bit_reader(payload, header.payload_offset, header.payload_path, trace)
        out = []
        for f, shape in enumerate(((rows, rank), (rank, cols))):
            at = r.pos
            code = r.u8(f"lrs_factor_mode[{f}]", enum=CodingMode)
            if code >= CodingMode.DELTA:
                raise r.error(f"lrs_factor_mode {code} is not a mode a factor may use (0..8)", f"lrs_factor_mode[{f}]",
                              at=at)
            coding = get_mode(code, path=r.where(f"lrs_factor_mode[{f}]"))
            params_offset = header.payload_offset + r.pos // 8 + 4
            params = r.b(r.u32le(f"lrs_factor_params_size[{f}]"), f"lrs_factor_params[{f}]")
            qp_offset = header.payload_offset + r.pos // 8 + 4
            qp = r.b(r.u32le(f"lrs_factor_qp_size[{f}]"), f"lrs_factor_qp[{f}]")
            size = r.u32le(f"lrs_factor_payload_size[{f}]")
            left = r.bits_left() // 8
            if f == 1 and size != left:
                raise r.error(f"the second factor's payload ends the payload: lrs_factor_payload_size[1] is {size}, "
                              f"{left} bytes are left", "lrs_factor_payload_size[1]", at=r.pos - 32)
            start = r.pos // 8
            body = r.view(size, f"lrs_factor_payload[{f}]")
            fheader = dataclasses.replace(
                header, layer_shape=shape, layer_dtype=DType.FLOAT32, coding_mode=code, mode_params=params,
                local_qp_set=qp or None, payload_offset=header.payload_offset + start, payload_size=size,
                local_qp_set_offset=qp_offset, mode_params_offset=params_offset,
                paths=(f"{header.payload_path}.lrs_factor_params[{f}]", f"{header.payload_path}.lrs_factor_qp[{f}]",
                       f"{header.payload_path}.lrs_factor_payload[{f}]"))
            coding.check_header(fheader)
            out.append((coding, fheader, body))
        return out

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        rank = self.begin_decode(header, payload, verify=verify, levels=levels, format=format)
        c, z = (coding.decode(fh, body, verify=False, global_qp=global_qp)
                for coding, fh, body in self._factors(header, payload, rank))
        return float_output(header, product(c, z).reshape(-1))

    def summarize(self, header, payload, *, global_qp=None):
        try:
            rank = self.params_of(header)
            parts = self._factors(header, payload, rank)
        except CodecError as exc:
            return {"error": str(exc)}
        rows, cols = level_grid(header.layer_shape)
        out = {"rank": rank, "factors": {}}
        for name, (coding, fh, body) in zip(FACTORS, parts):
            summary = coding.summarize(fh, body, global_qp=global_qp)
            out["factors"][name] = {"mode": coding.name, "bytes": len(body),
                                    "text": "-" if summary is None else coding.summary_text(summary)}
        out["rank_fraction"] = rank * (rows + cols) / max(1, rows * cols)
        return out

    def summary_text(self, q):
        if "error" in q:
            return "invalid"
        c, z = q["factors"]["C"], q["factors"]["Z"]
        return f"k={q['rank']} C {c['text']}; Z {z['text']}"

    def trace(self, header, payload, trace, *, global_qp=None):
        rank = self.params_of(header, trace=trace)
        for coding, fh, body in self._factors(header, payload, rank, trace=trace):
            coding.trace(fh, body, trace, global_qp=global_qp)
