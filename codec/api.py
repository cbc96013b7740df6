"""The one-call API: save_file / load_file / encode / decode / open."""

from __future__ import annotations

import io
import logging
import os
from typing import Any, Mapping

import numpy as np

from .errors import EncodeError
from .format import DEFAULT_LIMITS, Limits
from .reader import Reader
from .writer import LayerTask, Writer

_log = logging.getLogger("codec")

__all__ = ["save_file", "load_file", "encode", "decode", "open", "encode_file", "EncodeSummary"]


def _write_all(writer: Writer, tensors: Mapping[str, Any], mode: str, mode_params: dict, workers, executor) -> None:
    items = ((name, array, {"mode": mode, **mode_params}) for name, array in tensors.items())
    writer.add_layers(items, workers=workers, executor=executor)


def save_file(tensors: Mapping[str, Any], path: str | os.PathLike, /, *, metadata: Mapping[str, Any] | None = None,
              mode: str = "zstd", workers: int | None = None, executor=None, format_version=None,
              **mode_params: Any) -> None:
    """Write ``tensors`` (an ordered mapping of name -> array) to ``path`` atomically.

    Every layer uses coding mode ``mode`` with ``mode_params``; use :class:`Writer` to choose per
    layer. ``workers`` > 1 (or an ``executor``) encodes layers in parallel; the bytes are the same.
    ``format_version``: as :class:`Writer`'s (``(1, 1)`` for readers of version 1.x).
    """
    with Writer(path, metadata=metadata, format_version=format_version) as writer:
        _write_all(writer, tensors, mode, mode_params, workers, executor)


def encode(tensors: Mapping[str, Any], /, *, metadata: Mapping[str, Any] | None = None, mode: str = "zstd",
           workers: int | None = None, executor=None, format_version=None, **mode_params: Any) -> bytes:
    """Return the bitstream of ``tensors`` as bytes (same layout as :func:`save_file` writes)."""
    buf = io.BytesIO()
    writer = Writer(buf, metadata=metadata, format_version=format_version)
    _write_all(writer, tensors, mode, mode_params, workers, executor)
    writer.close()
    return buf.getvalue()


class EncodeSummary(dict):
    """What :func:`encode_file` did: ``layers``, ``raw_bytes`` and ``elements`` (of the input
    tensors), ``chosen`` (how many layers each policy choice coded, e.g. ``{"floatplanes": 3,
    "quantized (rule 0)": 2}``), ``modes`` (the set of modes used), ``quality``: a
    :class:`codec.quality.LayerQuality` per lossy layer (relative error and SQNR against the input
    tensor; empty when every layer is lossless or ``target`` is a file object), and with
    ``target_bits`` the search (``target``) and the elements whose steps it scaled."""


def encode_file(source: str | os.PathLike, target, /, *, policy=None, metadata: Mapping[str, Any] | None = None,
                workers: int | None = None, executor=None, progress=None, format_version=None,
                target_bits: float | None = None) -> EncodeSummary:
    """Encode the tensors of a safetensors, npz, PyTorch or ONNX file into a bitstream at
    ``target`` (a path, written atomically, or a binary file object), layer by layer.

    ``policy``: a :class:`codec.policy.Policy`, a policy file path or text, or None for the
    default lossless policy; it is stored in the metadata (``codec.policy``). ``workers`` > 1
    encodes on threads; ``executor`` (any ``concurrent.futures.Executor``: threads, processes,
    ``dask.distributed.Client.get_executor()``) runs the layers' tasks there. From a safetensors
    file each task carries a reference to its tensor (path, offset, shape, dtype) and the policy
    action, reads the tensor in the worker and sends back only the encoded layer. The bytes are
    the same whatever the workers or executor. ``format_version``: as :class:`Writer`'s.

    ``target_bits``: the file's bits per parameter (all tensor elements) at most this, as close
    as the step grid allows: every layer whose policy action is mode ``quantized`` or ``dq`` with a
    ``step`` moves that step by the same number j of grid points (spec 8.2: qp + j, 2^qp_density per
    octave; the policy's relative steps stay), found by encoding the file a few times (each pass
    replaces ``target``, a path). Equal steps give the least squared error for a size (equal
    rate-distortion slopes), which is why one offset serves every layer. ``summary["target"]``
    holds j (``qp_offset``) and the bits of each pass.
    """
    from . import policy as policies

    if policy is None:
        policy = policies.DEFAULT_POLICY
    elif not isinstance(policy, policies.Policy):
        policy = policies.load_policy(policy)
    if target_bits is not None:
        return _encode_to_target(source, target, policy, float(target_bits), metadata=metadata, workers=workers,
                                 executor=executor, progress=progress, format_version=format_version)
    return _encode_once(source, target, policy, metadata=metadata, workers=workers, executor=executor,
                        progress=progress, format_version=format_version)


#: Most encoding passes of a target_bits search.
TARGET_PASSES = 8


def _encode_to_target(source, target, policy, target_bits: float, **kw) -> EncodeSummary:
    if not isinstance(target, (str, os.PathLike)):
        raise ValueError("target_bits needs a path target (the file is written once per pass)")
    if not (target_bits > 0 and np.isfinite(target_bits)):
        raise EncodeError(f"target_bits must be a positive number, got {target_bits}")
    tried: dict[int, float] = {}

    def run(offset: int) -> EncodeSummary:
        summary = _encode_once(source, target, policy, step_offset=offset, measure=False, **kw)
        if not summary["scaled_elements"]:
            raise EncodeError("target_bits scales the steps of the layers a policy codes with mode 'quantized' or "
                              "'dq' and a step=; no layer here has one")
        tried[offset] = os.path.getsize(target) * 8 / max(summary["elements"], 1)
        _log.info("target %.4f bits per parameter: step offset %d gives %.4f", target_bits, offset, tried[offset])
        return summary

    summary = run(0)
    density = summary["density"]
    while len(tried) < TARGET_PASSES:
        below = [j for j, b in tried.items() if b <= target_bits]
        above = [j for j, b in tried.items() if b > target_bits]
        if below and above and min(below) - max(above) == 1:
            break  # neighbours on the grid straddle the target: min(below) is the answer
        # the next offset: the secant through the nearest points on either side, or one bit per
        # weight per octave of step (the high-rate slope) from the nearest point
        j_lo = max(above) if above else None
        j_hi = min(below) if below else None
        if j_lo is not None and j_hi is not None:
            b_lo, b_hi = tried[j_lo], tried[j_hi]
            guess = j_lo + (b_lo - target_bits) / (b_lo - b_hi) * (j_hi - j_lo)
            nxt = min(max(int(np.ceil(guess)), j_lo + 1), j_hi - 1)
        else:
            j0 = j_lo if j_lo is not None else j_hi
            share = summary["scaled_elements"] / max(summary["elements"], 1)
            delta = (tried[j0] - target_bits) / share * (1 << density)
            nxt = j0 + (int(np.ceil(delta)) if delta > 0 else int(np.floor(delta)))
            nxt = nxt if nxt != j0 else j0 + (1 if delta > 0 else -1)
        summary = run(nxt)
    below = [j for j, b in tried.items() if b <= target_bits]
    if not below:
        raise EncodeError(f"target_bits {target_bits}: the smallest file tried has {min(tried.values()):.4f} bits per "
                          "parameter; the lossless layers alone may exceed the target")
    best = min(below)
    if best != list(tried)[-1]:
        summary = _encode_once(source, target, policy, step_offset=best, **kw)
    else:
        _measure(summary, source, target)
    summary["target"] = {"target_bits": target_bits, "bits": tried[best], "qp_offset": best, "qp_density": density,
                         "tried": {j: tried[j] for j in sorted(tried)}}
    return summary


def _measure(summary: EncodeSummary, source, target) -> None:
    """The lossy layers against the input, read again one tensor at a time (``summary["quality"]``)."""
    from . import formats, quality

    if isinstance(target, (str, os.PathLike)) and summary["modes"] - quality.LOSSLESS_MODES:
        with Reader(target) as reader:
            summary["quality"] = quality.measure(((n, a) for n, a, _ in formats.read_tensors(os.fspath(source))),
                                                 reader)


def _encode_once(source, target, policy, *, metadata=None, workers=None, executor=None, progress=None,
                 format_version=None, step_offset: int = 0, measure: bool = True) -> EncodeSummary:
    from . import formats
    from . import policy as policies
    from .quant import DEFAULT_DENSITY, qp_for_step, qp_in_range, step_of_qp
    from .writer import guess_kind

    path = os.fspath(source)
    summary = EncodeSummary(layers=0, raw_bytes=0, chosen={}, quality=[], elements=0, scaled_elements=0,
                            density=DEFAULT_DENSITY, modes=set())
    modes = summary["modes"]
    by_reference = path.lower().endswith(".safetensors")
    tensors = ((ref.name, ref, ref.hint) for ref in formats.safetensors_refs(path)) if by_reference \
        else formats.read_tensors(path)

    def items():
        for name, array, hint in tensors:
            kind = guess_kind(name, array).name.lower()
            action, rule = policy.choose(name, array, kind)
            label = f"{action['mode']}" + ("" if rule is None else f" (rule {rule})")
            summary["chosen"][label] = summary["chosen"].get(label, 0) + 1
            modes.add(action["mode"])
            summary["raw_bytes"] += array.nbytes
            size = int(np.prod(array.shape))
            summary["elements"] += size
            if action["mode"] in ("quantized", "dq") and action.get("step") is not None:
                # target_bits: this layer's step moves by 2^(offset / 2^density) (qp + offset)
                density = action.get("qp_density", DEFAULT_DENSITY)
                summary["density"] = density
                summary["scaled_elements"] += size
                if step_offset:
                    qp = qp_for_step(action["step"], density) + step_offset
                    if not qp_in_range(qp, density):
                        raise EncodeError(f"target_bits: layer {name!r} would need a step outside the format's range")
                    action = {**action, "step": step_of_qp(qp, density)}
            if by_reference:
                yield name, LayerTask(array, dict(action), hint), None
            else:
                array, params = policies.apply(action, array)
                if hint:
                    params["dtype"] = hint
                yield name, array, params
            del array  # one layer in memory at a time

    meta = {"codec.policy": policy.to_json(), "codec.source": os.path.basename(path), **(metadata or {})}
    with Writer(target, metadata=meta, format_version=format_version) as writer:
        writer.add_layers(items(), workers=workers, executor=executor, progress=progress)
        summary["layers"] = writer.layer_count
    if measure:
        _measure(summary, source, target)
    return summary


def _read_all(reader: Reader, workers: int | None = None, executor=None, progress=None) -> dict[str, np.ndarray]:
    # Each layer is checked against max_decoded_bytes before it is allocated (Reader.get);
    # the running total bounds the whole call.
    names = reader.keys()
    if executor is not None or (workers or 1) > 1:
        from concurrent.futures import ThreadPoolExecutor

        # threads share the reader's memory map; the kernels release the GIL
        own = executor is None
        pool = ThreadPoolExecutor(max_workers=workers) if own else executor
        try:
            arrays = list(pool.map(reader.get, names))
        finally:
            if own:
                pool.shutdown()
    else:
        arrays = (reader.get(name) for name in names)
    out = {}
    total = 0
    for position, (name, array) in enumerate(zip(names, arrays)):
        total += array.nbytes
        reader.limits.check("max_decoded_bytes", total, path=f"layers[{position}]")
        out[name] = array
        if progress:
            progress(name)
    return out


def load_file(path: str | os.PathLike, /, *, limits: Limits | None = None, verify: bool = True,
              workers: int | None = None, executor=None) -> dict[str, np.ndarray]:
    """Read every layer of the file at ``path`` into a dict of name -> array, in file order.

    ``workers`` > 1 decodes layers on that many threads (or pass a thread-based ``executor``).
    """
    with Reader(path, limits=limits, verify=verify) as reader:
        return _read_all(reader, workers, executor)


def decode(data, /, *, limits: Limits | None = None, verify: bool = True, workers: int | None = None,
           executor=None) -> dict[str, np.ndarray]:
    """Decode a bitstream held in memory (bytes-like) into a dict of name -> array."""
    with Reader(data, limits=limits, verify=verify) as reader:
        return _read_all(reader, workers, executor)


def open(source, /, *, limits: Limits | None = None, verify: bool = True) -> Reader:  # noqa: A001
    """Open a bitstream for lazy, random access; use as a context manager.

    ``source`` is a path (memory-mapped) or bytes-like data. See :class:`codec.Reader`.

    Examples
    --------
    >>> import codec, numpy as np
    >>> data = codec.encode({"w": np.arange(6, dtype=np.int32).reshape(2, 3)})
    >>> with codec.open(data) as r:
    ...     r.keys(), r.header("w").shape, int(r.get("w").sum())
    (['w'], (2, 3), 15)
    """
    return Reader(source, limits=limits or DEFAULT_LIMITS, verify=verify)
