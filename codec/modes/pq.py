"""Coding mode ``pq`` (spec 6.9): float tensors by product (vector) quantization: vectors of ``dim``
consecutive weights, each the sum of one centroid per stage; the centroid indices through the level
coder (spec 7)."""

from __future__ import annotations

import struct

import numpy as np

from .. import _backend
from ..dtypes import FLOAT_DTYPES, as_float, float_output
from ..errors import CodecError, EncodeError, UnsupportedError
from ..format.constants import CodingMode, DType
from ..levels import LC_MAX_CLASSES, decode_levels, encode_levels, levels_summary, trace_levels_payload
from ..params import Param
from ..pq import (CODEBOOK_DTYPES, PQ_MAX_CENTROIDS, PQ_MAX_DIM, PQ_MAX_STAGES, Stage, index_grid, levels_of_indices,
                  quantize_pq, reconstruct)
from .base import Mode, Plan, register_mode
from .entropy import MAX_CLASSES, levels_text

_CODEBOOK_NAMES = {v: k for k, v in CODEBOOK_DTYPES.items()}
_ITEMSIZE = {0: 2, 1: 4}
#: centroids when neither ``centroids`` nor ``bits`` is given: 8-bit indices, 2 bits per weight at dim 4
DEFAULT_CENTROIDS = 256


class _StageData:
    """One stage as parsed from a payload (spec 6.9): its centroids and its levels payload (views)."""

    def __init__(self, centroids: int, codebook: memoryview, levels: memoryview, levels_offset: int):
        self.centroids = centroids
        self.codebook = codebook
        self.levels = levels
        self.levels_offset = levels_offset


@register_mode
class PqMode(Mode):
    """``coding_mode`` 8: float tensors, lossy, by product quantization (k-means codebooks of
    ``dim``-weight vectors, optionally a second, residual stage). About ``log2(centroids) / dim`` bits
    per weight before entropy coding of the indices, plus the codebook (``centroids * dim`` float16
    values per stage, which small layers pay dearly for). Measured against ``quantized`` at equal bits
    (bench/bench_tools.py): 0.93-1.08x its weight error on MiniLM, 1.3-2.5x on the YOLOv8n convnet.
    Encoding runs k-means (MiniLM, 256 centroids of 4: about a minute on one core)."""

    name = "pq"
    mode_id = CodingMode.PQ
    codes_levels = True
    dtypes = FLOAT_DTYPES
    has_levels = True
    params = (
        Param("dim", (int,), "weights per vector (consecutive in C order, along the last axis)", default=4,
              range=(1, PQ_MAX_DIM)),
        Param("centroids", (int,), "centroids per codebook (at most this many are kept: the unused are dropped; "
              "up to 255 code without escapes)", range=(1, PQ_MAX_CENTROIDS)),
        Param("bits", (int,), "index bits per vector: 2^bits centroids (give this or centroids)", range=(1, 16)),
        Param("stages", (int,), "codebooks per vector: 2 adds a residual codebook on the first one's error",
              default=1, range=(1, PQ_MAX_STAGES)),
        Param("iters", (int,), "Lloyd iterations of k-means (on a sample of at most 2^17 vectors)", default=20,
              range=(0, 1000)),
        Param("seed", (int,), "seed of the k-means++ initialisation", default=0, range=(0, 2**63 - 1)),
        Param("entropy_constrained", (bool,), "assign vectors by distance + lambda * index bits (lambda: the "
              "high-rate slope): fewer bits at about the same error; False: nearest centroid", default=True),
        Param("codebook", (str,), "how centroids are stored", default="float16", choices=tuple(CODEBOOK_DTYPES)),
        MAX_CLASSES,
    )

    # -- encoding ------------------------------------------------------------------------------
    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        self.check_dtype(dtype)
        if levels_version < 3:
            raise EncodeError(f"mode {self.name!r} needs format version 2.4 or later (this file is written for "
                              f"{'1.x' if levels_version == 1 else '2.0'} readers)")
        if params.get("centroids") is not None and params.get("bits") is not None:
            raise EncodeError(f"mode {self.name!r}: give centroids or bits, not both")
        dim = params.get("dim", 4)
        centroids = params.get("centroids") or (1 << params["bits"] if params.get("bits") else DEFAULT_CENTROIDS)
        codebook_dtype = CODEBOOK_DTYPES[params.get("codebook", "float16")]
        stages = quantize_pq(as_float(array, dtype).reshape(-1), dim=dim, centroids=centroids,
                             stages=params.get("stages", 1), iters=params.get("iters", 20), seed=params.get("seed", 0),
                             codebook_dtype=codebook_dtype,
                             entropy_constrained=params.get("entropy_constrained", True))
        mode_params = bytes([dim, len(stages), codebook_dtype])
        grid = index_grid(np.shape(array), dim)
        return Plan(mode_params, (stages, grid, params.get("max_classes", LC_MAX_CLASSES)),
                    levels_version=levels_version, min_version=(2, 4))

    def write(self, plan, array, dtype, sink):
        stages, (rows, cols), max_classes = plan.state
        for stage in stages:
            levels = encode_levels(levels_of_indices(stage.indices), rows, cols, max_classes=max_classes,
                                   version=plan.levels_version)
            sink.write(struct.pack("<H", len(stage.codebook) - 1))
            sink.write(np.ascontiguousarray(stage.codebook).tobytes())
            sink.write(struct.pack("<I", len(levels)))
            sink.write(levels)

    # -- decoding ------------------------------------------------------------------------------
    def read_params(self, r, header):
        """``pq_params()``: (d, T, pq_codebook_dtype)."""
        dim = r.u8("pq_dim")
        if not 1 <= dim <= PQ_MAX_DIM:
            raise r.error(f"pq_dim {dim} is outside 1..{PQ_MAX_DIM}", "pq_dim", at=r.pos - 8)
        stages = r.u8("pq_num_stages")
        if not 1 <= stages <= PQ_MAX_STAGES:
            raise r.error(f"pq_num_stages {stages} is outside 1..{PQ_MAX_STAGES}", "pq_num_stages", at=r.pos - 8)
        codebook_dtype = r.u8("pq_codebook_dtype")
        if codebook_dtype not in _ITEMSIZE:
            raise r.error(f"pq_codebook_dtype {codebook_dtype} is reserved", "pq_codebook_dtype",
                          cls=UnsupportedError, at=r.pos - 8)
        if r.bits_left():
            raise r.error(f"{r.bits_left() // 8} bytes follow pq_codebook_dtype in mode_params")
        return dim, stages, codebook_dtype

    def _stages(self, header, payload, params, trace=None) -> list[_StageData]:
        """Parse ``pq_payload()`` (spec 6.9) up to each stage's levels payload."""
        dim, count, codebook_dtype = params
        r = _backend.bit_reader(payload, header.payload_offset, header.payload_path, trace)
        out = []
        for t in range(count):
            centroids = r.u16le(f"pq_num_centroids_minus1[{t}]") + 1
            codebook = r.view(centroids * dim * _ITEMSIZE[codebook_dtype], f"pq_codebook[{t}]")
            size = r.u32le(f"pq_levels_size[{t}]")
            left = r.bits_left() // 8
            if t == count - 1 and size != left:
                raise r.error(f"the last stage's levels payload ends the payload: pq_levels_size[{t}] is {size}, "
                              f"{left} bytes are left", f"pq_levels_size[{t}]", at=r.pos - 32)
            offset = header.payload_offset + r.pos // 8
            out.append(_StageData(centroids, codebook, r.view(size, f"levels_payload[{t}]"), offset))
        return out

    @staticmethod
    def _codebook(stage: _StageData, dim: int, codebook_dtype: int, *, stored: bool = False) -> np.ndarray:
        values = np.frombuffer(stage.codebook, dtype="<f2" if codebook_dtype == 0 else "<f4")
        values = values.reshape(stage.centroids, dim)
        return values.copy() if stored else values.astype(np.float32)

    def _decode(self, header, payload, params, *, out=None, levels=False):
        dim, _, codebook_dtype = params
        rows, cols = index_grid(header.layer_shape, dim)
        stages = self._stages(header, payload, params)
        paths = [f"{header.payload_path}.levels_payload[{t}]" for t in range(len(stages))]
        stage_levels = [decode_levels(s.levels, rows, cols, path=paths[t], base_offset=s.levels_offset,
                                      version=header.levels_version) for t, s in enumerate(stages)]
        codebooks = [self._codebook(s, dim, codebook_dtype) for s in stages]
        # the reconstruction checks every index against its codebook, also for levels=True
        flat = reconstruct(stage_levels, codebooks, header.num_elements, out=out, paths=paths,
                           base_offsets=[s.levels_offset for s in stages])
        if levels:
            return [Stage(self._codebook(s, dim, codebook_dtype, stored=True),
                          np.where(lv > 0, 2 * lv - 1, -2 * lv)) for s, lv in zip(stages, stage_levels)]
        return flat

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        params = self.begin_decode(header, payload, verify=verify, levels=levels, format=format)
        if levels:
            return self._decode(header, payload, params, levels=True)
        return float_output(header, self._decode(header, payload, params))

    def decode_into(self, header, payload, out, *, verify=True, global_qp=None):
        if header.layer_dtype != DType.FLOAT32:
            return False
        params = self.begin_decode(header, payload, verify=verify, levels=False, format="dense")
        self._decode(header, payload, params, out=out.reshape(-1))
        return True

    # -- inspection ----------------------------------------------------------------------------
    def summarize(self, header, payload, *, global_qp=None):
        try:
            dim, count, codebook_dtype = params = self.params_of(header)
            stages = self._stages(header, payload, params)
        except CodecError as exc:
            return {"error": str(exc)}
        rows, cols = index_grid(header.layer_shape, dim)
        out = {"dim": dim, "stages": count, "codebook": _CODEBOOK_NAMES[codebook_dtype],
               "centroids": [s.centroids for s in stages], "levels": []}
        for t, s in enumerate(stages):
            try:
                out["levels"].append(levels_summary(s.levels, rows, cols, path=f"{header.payload_path}.levels_payload"
                                                    f"[{t}]", base_offset=s.levels_offset,
                                                    version=header.levels_version))
            except CodecError as exc:
                out["levels"].append({"error": str(exc)})
        return out

    def summary_text(self, q):
        if "error" in q:
            return "invalid"
        text = f"pq d{q['dim']} K{'+'.join(str(k) for k in q['centroids'])}"
        text += "" if q["codebook"] == "float16" else " f32"
        return text + "".join(f" [{levels_text(lv)}]" for lv in q["levels"] if "error" not in lv)

    def trace(self, header, payload, trace, *, global_qp=None):
        params = self.params_of(header, trace=trace)
        dim = params[0]
        rows, cols = index_grid(header.layer_shape, dim)
        for t, s in enumerate(self._stages(header, payload, params, trace=trace)):
            trace_levels_payload(s.levels, rows, cols, path=f"{header.payload_path}.levels_payload[{t}]",
                                 base_offset=s.levels_offset, trace=trace, version=header.levels_version)
