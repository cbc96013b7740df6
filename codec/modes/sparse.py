"""Coding mode ``sparse`` (spec 6.7): a mask (true = kept) and the kept values, coded as a rank-1
layer in any other mode. The masks are in :mod:`codec.modes.masks`."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import _backend, quant
from ..errors import CodecError, EncodeError, FormatError
from ..format.constants import CodingMode
from ..lazy import PieceArray
from . import masks
from .base import ANY_DTYPE, Mode, Param, Plan, get_mode, register_mode


def _nm_rule(value) -> str | None:
    pairs = value if value and isinstance(value[0], (tuple, list)) else [value]
    if len(pairs) > 2 or any(len(p) != 2 or not all(isinstance(x, int) for x in p) for p in pairs):
        return "must be (N, M), or [(N1, M1), (N2, M2)] for hierarchical N:M"
    if any(not 1 <= n < m <= 16 for n, m in pairs):
        return f"N:M needs 1 <= N < M <= 16, got {value!r}"
    return None


def _values_rule(value) -> str | None:
    try:
        mode = get_mode(value)
    except EncodeError as exc:
        return exc.reason
    return "the kept values cannot themselves be sparse" if isinstance(mode, SparseMode) else None


@dataclasses.dataclass(frozen=True)
class SparsePayload:
    """The fields of ``sparse_payload()`` before the values' payload."""

    kept: int
    mask_block: memoryview
    mask_offset: int  # in the payload
    values_mode: int
    values_params: bytes
    values_params_offset: int
    values_qp_set: bytes | None
    values_qp_offset: int
    values_offset: int  # in the payload


def read_sparse_payload(r, payload) -> SparsePayload:
    """Read ``sparse_payload()`` up to ``sp_values_payload`` (spec 6.7) with bit reader ``r``."""
    kept = r.u64le("sp_kept_count")
    size = r.u32le("sp_mask_size")
    start = r.pos // 8
    block = r.view(size, "mask_block")
    vmode = r.u8("sp_values_mode", enum=CodingMode)
    vparams_size = r.u32le("sp_values_params_size")
    vparams_at = r.base_offset + r.pos // 8
    vparams = r.b(vparams_size, "sp_values_params")
    present = r.u8("sp_values_qp_present")
    if present > 1:
        raise r.error(f"sp_values_qp_present is {present}, not 0 or 1", "sp_values_qp_present", at=r.pos - 8)
    vqp, vqp_at = None, 0
    if present:
        qp_size = r.u32le("qp_set.qp_set_size")
        vqp_at = r.base_offset + r.pos // 8
        vqp = r.b(qp_size, "qp_set.qp_set_data")
    values_at = r.pos // 8
    r.view(r.bits_left() // 8, "sp_values_payload")
    return SparsePayload(kept, block, start, vmode, vparams, vparams_at, vqp, vqp_at, values_at)


@register_mode
class SparseMode(Mode):
    """``coding_mode`` 6: a mask (True = kept) and the kept values in another mode (``values_mode``,
    with that mode's parameters). The mask is a bitmap, N:M along ``axis``, hierarchical N:M, or
    hybrid (per block of rows, N:M or dense)."""

    name = "sparse"
    mode_id = CodingMode.SPARSE
    since_minor = 1
    codes_levels = True
    dtypes = ANY_DTYPE
    has_levels = True
    formats = ("bitmap", "nm")
    nested_mode_param = "values_mode"
    params = (
        Param("mask", (np.ndarray, masks.PackedMask),
              "bool array of the tensor's shape, True = kept (default: the non-zeros)", policy=False),
        Param("nm", (tuple, list), "an N:M mask (N, M) along axis, or hierarchical [(N1, M1), (N2, M2)]",
              check=_nm_rule),
        Param("axis", (int,), "axis of the N:M groups", default=-1, range=(-8, 7)),
        Param("hybrid", (int,), "blocks of this many rows that are N:M (along the last axis) or dense",
              range=(1, (1 << 32) - 1)),
        Param("values_mode", (str,), "coding mode of the kept values (any but sparse), with its parameters",
              default="raw", check=_values_rule),
        Param("prune", (float,), "magnitude-prune this fraction first (with nm: N:M magnitude pruning instead)",
              range=(0.0, 1.0), prepare=True),
    )

    def prepare(self, array, params):
        array, rest = super().prepare(array, params)
        nm = params.get("nm")
        # packed masks (an eighth of a bool array); the kept values are read through the mask
        # (plan): no zeroed copy of the tensor is needed
        if nm is not None and not isinstance(nm[0], (tuple, list)):
            rest["mask"] = masks.prune_nm_packed(array, int(nm[0]), int(nm[1]), axis=params.get("axis", -1))
            rest["nm"] = (int(nm[0]), int(nm[1]))
        elif params.get("prune") is not None:
            rest["mask"] = masks.prune_magnitude_packed(array, float(params["prune"]))
        return array, rest

    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        params = dict(params)
        mask = params.pop("mask", None)
        nm = params.pop("nm", None)
        axis = params.pop("axis", -1)
        hybrid = params.pop("hybrid", None)
        values_mode = params.pop("values_mode", "raw")
        params.pop("prune", None)
        a = np.asarray(array)
        if mask is None:
            flat, step = a.reshape(-1), masks._piece_step()
            mask = masks.PackedMask.from_pieces(a.shape, (_nonzero(flat[start:start + step])
                                                          for start in range(0, a.size, step)))
        elif isinstance(mask, masks.PackedMask):
            if mask.shape != a.shape:
                raise EncodeError(f"mask must have the tensor's shape {a.shape}, got {mask.shape}")
        elif mask.dtype != np.bool_ or mask.shape != a.shape:
            raise EncodeError(f"mask must be a bool array of shape {a.shape}, got {mask.dtype} {mask.shape}")
        else:
            mask = masks.PackedMask.from_bool(mask)
        if nm is None:
            if hybrid is not None:
                raise EncodeError("hybrid= needs nm=(N, M)")
            block = masks.encode_bitmap(mask, levels_version=levels_version)
        else:
            if a.ndim == 0:
                raise EncodeError("N:M masks need a tensor of rank >= 1")
            if not -a.ndim <= axis < a.ndim:
                raise EncodeError(f"axis {axis} does not exist in a tensor of rank {a.ndim}")
            axis %= a.ndim
            hierarchical = isinstance(nm[0], (tuple, list))
            if hybrid is not None:
                if hierarchical or axis != a.ndim - 1:
                    raise EncodeError("hybrid masks take one N:M along the last axis")
                block = masks.encode_hybrid(mask.unpack(), int(nm[0]), int(nm[1]), int(hybrid))
            elif hierarchical:
                if len(nm) != 2:
                    raise EncodeError("hierarchical N:M takes two levels [(N1, M1), (N2, M2)]")
                block = masks.encode_hierarchical(mask.unpack(), [tuple(x) for x in nm], axis)
            else:
                block = masks.encode_nm(mask, int(nm[0]), int(nm[1]), axis)
        values = KeptValues(a.reshape(-1), mask)
        coding = get_mode(values_mode)
        vplan = coding.plan(values, dtype, coding.validate(params), global_qp=global_qp,
                            **({"levels_version": levels_version} if coding.codes_levels else {}))
        return Plan(b"", (block, mask.count, coding, vplan, values), levels_version=levels_version,
                    min_version=vplan.min_version)

    def write(self, plan, array, dtype, sink):
        block, kept, coding, vplan, values = plan.state
        w = _backend.BitWriter()
        w.u64le(kept)
        w.u32le(len(block))
        w.b(block)
        w.u8(coding.mode_id)
        w.u32le(len(vplan.mode_params))
        w.b(vplan.mode_params)
        w.u8(vplan.local_qp_set is not None)
        if vplan.local_qp_set is not None:
            w.u32le(len(vplan.local_qp_set))
            w.b(vplan.local_qp_set)
        sink.write(w.getvalue())
        coding.write(vplan, values, dtype, sink)  # the kept values follow, as their mode writes them

    # -- decoding ------------------------------------------------------------------------------
    def _parse(self, header, payload, trace=None):
        """(SparsePayload, the values' mode, the values' header)."""
        r = _backend.bit_reader(payload, header.payload_offset, header.payload_path, trace)
        sp = read_sparse_payload(r, payload)
        if sp.kept > header.num_elements:
            raise r.error(f"sp_kept_count {sp.kept} exceeds the layer's {header.num_elements} elements",
                          "sp_kept_count", at=0)
        coding = get_mode(sp.values_mode, path=f"{header.payload_path}.sp_values_mode")
        if isinstance(coding, SparseMode):
            raise r.error("the kept values cannot themselves be sparse", "sp_values_mode", at=8 * sp.mask_offset
                          + 8 * len(sp.mask_block))
        values_header = dataclasses.replace(
            header, layer_shape=(sp.kept,), coding_mode=sp.values_mode, mode_params=sp.values_params,
            local_qp_set=sp.values_qp_set, payload_offset=header.payload_offset + sp.values_offset,
            payload_size=len(payload) - sp.values_offset, local_qp_set_offset=sp.values_qp_offset,
            mode_params_offset=sp.values_params_offset,
            paths=(f"{header.payload_path}.sp_values_params", f"{header.payload_path}.qp_set",
                   f"{header.payload_path}.sp_values_payload"))
        coding.check_header(values_header)
        return sp, coding, values_header

    def _mask(self, header, sp, trace=None):
        r = _backend.bit_reader(sp.mask_block, header.payload_offset + sp.mask_offset, f"{header.payload_path}.mask_block",
                           trace)
        kind, mask = masks.read_mask_block(sp.mask_block, r, header.layer_shape,
                                           levels_version=header.levels_version)
        if int(mask.sum()) != sp.kept:
            raise FormatError(f"mask keeps {int(mask.sum())} elements, sp_kept_count says {sp.kept}",
                              path=f"{header.payload_path}.mask_block",
                              bit_offset=(header.payload_offset + sp.mask_offset) * 8)
        return kind, mask

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        self.begin_decode(header, payload, verify=verify, levels=levels, format=format)
        sp, coding, values_header = self._parse(header, payload)
        kind, mask = self._mask(header, sp)
        values = coding.decode(values_header, memoryview(payload).cast("B")[sp.values_offset:], verify=False,
                               global_qp=global_qp, levels=levels)
        if levels:
            return mask, values
        if format == "bitmap":
            return np.packbits(mask.reshape(-1)), values
        if format == "nm":
            if kind != masks.MaskKind.NM or mask.ndim != 2 or tuple(sp.mask_block[1:4]) != (2, 4, 1):
                raise ValueError("format='nm' needs a 2-D layer with a 2:4 mask along the last axis")
            return masks.nm_layout(values, mask)
        out = np.zeros(header.layer_shape, dtype=values.dtype)
        out[mask] = values
        return out

    # -- inspection ----------------------------------------------------------------------------
    def summarize(self, header, payload, *, global_qp=None):
        sp, coding, values_header = self._parse(header, payload)
        n = header.num_elements
        p = sp.kept / n if n else 0.0
        hp = 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
        block = sp.mask_block
        try:
            kind = masks.MaskKind(block[0]).name.lower() if len(block) else "empty"
        except ValueError:
            kind = f"unknown({block[0]})"
        bpe = 8 * len(block) / n if n else None
        out = {"kept": sp.kept, "density": p, "mask_kind": kind, "mask_bytes": len(block),
               "mask_bits_per_element": bpe, "entropy_bound": hp,
               "mask_vs_entropy": bpe / hp if bpe is not None and hp else None, "values_mode": coding.name}
        if kind == "nm" and len(block) >= 4:
            out["nm"] = [int(block[1]), int(block[2])]
        try:
            out["values"] = coding.summarize(values_header, memoryview(payload).cast("B")[sp.values_offset:],
                                             global_qp=global_qp)
        except CodecError as exc:
            out["values"] = {"error": str(exc)}
        return out

    def summary_text(self, q):
        kind = f"{q['nm'][0]}:{q['nm'][1]}" if "nm" in q else q["mask_kind"]
        bpe = q["mask_bits_per_element"]
        text = f"{kind} d={q['density']:.3f} mask {bpe:.3f}b/el" if bpe is not None else f"{kind} empty"
        if q["mask_vs_entropy"]:
            text += f" ({q['mask_vs_entropy']:.3f}xH)"
        return text + f" +{q['values_mode']}"

    def trace(self, header, payload, trace, *, global_qp=None):
        self.params_of(header, trace=trace)
        sp, coding, values_header = self._parse(header, payload, trace)
        self._mask(header, sp, trace)
        if sp.values_qp_set is not None:
            quant.read_qp_set_data(sp.values_qp_set, path=f"{header.payload_path}.qp_set.qp_set_data",
                                   base_offset=sp.values_qp_offset, trace=trace)
        coding.trace(values_header, memoryview(payload).cast("B")[sp.values_offset:], trace, global_qp=global_qp)


class KeptValues(PieceArray):
    """The kept values of a tensor (``a[mask]``), gathered a piece at a time through its packed
    mask when the values' coder asks for them."""

    STEP = 1 << 18

    def __init__(self, flat: np.ndarray, mask: masks.PackedMask):
        super().__init__(mask.count, flat.dtype)
        self.flat, self.mask = flat, mask

    def piece(self, start: int, stop: int) -> np.ndarray:
        out = np.empty(max(0, stop - start), dtype=self.dtype)
        if not out.size:
            return out
        pm = self.mask
        block = pm.first_block(start)
        element, skip, at = block * pm.BLOCK, start - int(pm.cum[block]), 0
        while at < out.size:
            end = min(pm.size, element + self.STEP)
            kept = self.flat[element:end][pm.get(element, end)]
            if skip >= kept.size:
                skip -= kept.size
            else:
                take = min(kept.size - skip, out.size - at)
                out[at:at + take] = kept[skip:skip + take]
                at, skip = at + take, 0
            element = end
        return out


def _nonzero(a: np.ndarray) -> np.ndarray:
    if a.dtype.name == "bfloat16":
        return a.view(np.uint16) != 0
    return a != 0
