"""Coding mode ``entropy`` (spec 6.3): integer or bool tensors, lossless, as levels through the
level coder (spec 7)."""

from __future__ import annotations

import numpy as np

from ..dtypes import INTEGER_DTYPES, storage_dtype, user_array
from ..errors import EncodeError, FormatError
from ..format.constants import CodingMode, DType
from ..levels import (LC_MAX_CLASSES, LC_OUT_I16, LC_OUT_I32, ArrayLevels, decode_level_rows, decode_levels,
                      decode_levels_fitting, level_grid, levels_summary, trace_levels_payload, write_levels)
from .base import Mode, Param, Plan, chunked_rows, register_mode, rows_header

#: Storage dtypes the level decoder writes directly (its native int32 and int16: little-endian hosts).
_DIRECT = {np.dtype(np.int32).str: LC_OUT_I32, np.dtype(np.int16).str: LC_OUT_I16}

#: The level coder's row-class bound, shared by the level-coded modes.
MAX_CLASSES = Param("max_classes", (int,), "most row classes the level coder may use (each has its own table)",
                    default=LC_MAX_CLASSES, range=(1, LC_MAX_CLASSES))


@register_mode
class EntropyMode(Mode):
    """``coding_mode`` 2: integer and bool tensors, lossless, through the level coder."""

    name = "entropy"
    mode_id = CodingMode.ENTROPY
    since_minor = 1
    codes_levels = True
    dtypes = INTEGER_DTYPES
    params = (MAX_CLASSES,)

    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        self.check_dtype(dtype)
        if dtype == DType.UINT64 and array.size and int(array.max()) >= 1 << 63:
            raise EncodeError("mode 'entropy' needs uint64 values below 2^63")
        return Plan(b"", params.get("max_classes", LC_MAX_CLASSES), levels_version=levels_version)

    def write(self, plan, array, dtype, sink):
        rows, cols = level_grid(array.shape)
        write_levels(ArrayLevels(array, rows, cols), sink, max_classes=plan.state, version=plan.levels_version)

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        self.begin_decode(header, payload, verify=verify, levels=levels, format=format)
        rows, cols = level_grid(header.layer_shape)
        where = dict(path=header.payload_path, base_offset=header.payload_offset, version=header.levels_version)
        kind = _DIRECT.get(storage_dtype(header).str)
        if kind is not None:
            # straight into int32 / int16 when every level fits: no int64 array, no range pass
            flat = decode_levels_fitting(payload, rows, cols, out_kind=kind, **where)
            if flat is not None:
                return user_array(header, flat)
        flat = decode_levels(payload, rows, cols, **where)
        return user_array(header, self._stored(header, flat))

    def _stored(self, header, flat):
        storage = storage_dtype(header)
        info = np.iinfo(storage) if storage.kind in "iu" else None
        lo, hi = (0, 1) if header.layer_dtype == DType.BOOL else (info.min, info.max)
        if flat.size and (flat.min() < lo or flat.max() > hi):
            raise FormatError(f"decoded value outside the range of {header.dtype_name}",
                              path=header.payload_path, bit_offset=header.payload_offset * 8)
        return flat.astype(storage)

    def decode_rows(self, header, payload, start, stop, *, verify=True, global_qp=None):
        if not chunked_rows(header):
            return super().decode_rows(header, payload, start, stop, verify=verify, global_qp=global_qp)
        self.begin_decode(header, payload, verify=verify, levels=False, format="dense")
        rows, cols = level_grid(header.layer_shape)
        first, flat = decode_level_rows(payload, rows, cols, start, stop, path=header.payload_path,
                                        base_offset=header.payload_offset, version=header.levels_version)
        return first, user_array(rows_header(header, flat.size // cols), self._stored(header, flat))

    def summarize(self, header, payload, *, global_qp=None):
        rows, cols = level_grid(header.layer_shape)
        return levels_summary(payload, rows, cols, path=header.payload_path,
                              base_offset=header.payload_offset, version=header.levels_version)

    def summary_text(self, summary):
        return levels_text(summary)

    def trace(self, header, payload, trace, *, global_qp=None):
        self.params_of(header, trace=trace)
        rows, cols = level_grid(header.layer_shape)
        trace_levels_payload(payload, rows, cols, path=header.payload_path,
                             base_offset=header.payload_offset, trace=trace, version=header.levels_version)


def levels_text(summary: dict) -> str:
    """The dump's short form of :func:`codec.levels.levels_summary`."""
    if summary.get("model") == "adaptive":  # spec 7.5: no tables, one state
        text = f"E={summary['escape_limit']} ctx k0={summary['eg_order']}"
    else:
        text = f"E={summary['escape_limit']} K={summary['row_classes']} S={summary['states']}"
    if summary["chunks"] > 1:
        text += f" chunks={summary['chunks']}"
    return text + (f" esc={summary['escapes']}" if summary["escapes"] else "")
