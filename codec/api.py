"""The one-call API: save_file / load_file / encode / decode / open."""

from __future__ import annotations

import io
import os
from typing import Any, Mapping

import numpy as np

from .format import DEFAULT_LIMITS, Limits
from .reader import Reader
from .writer import LayerTask, Writer

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
    """What :func:`encode_file` did: ``layers``, ``raw_bytes`` (of the input tensors), ``chosen``
    (how many layers each policy choice coded, e.g. ``{"floatplanes": 3, "quantized (rule 0)": 2}``)
    and ``quality``: a :class:`codec.quality.LayerQuality` per lossy layer (relative error and SQNR
    against the input tensor; empty when every layer is lossless or ``target`` is a file object)."""


def encode_file(source: str | os.PathLike, target, /, *, policy=None, metadata: Mapping[str, Any] | None = None,
                workers: int | None = None, executor=None, progress=None, format_version=None) -> EncodeSummary:
    """Encode the tensors of a safetensors, npz, PyTorch or ONNX file into a bitstream at
    ``target`` (a path, written atomically, or a binary file object), layer by layer.

    ``policy``: a :class:`codec.policy.Policy`, a policy file path or text, or None for the
    default lossless policy; it is stored in the metadata (``codec.policy``). ``workers`` > 1
    encodes on threads; ``executor`` (any ``concurrent.futures.Executor``: threads, processes,
    ``dask.distributed.Client.get_executor()``) runs the layers' tasks there. From a safetensors
    file each task carries a reference to its tensor (path, offset, shape, dtype) and the policy
    action, reads the tensor in the worker and sends back only the encoded layer. The bytes are
    the same whatever the workers or executor. ``format_version``: as :class:`Writer`'s.
    """
    from . import formats, quality
    from . import policy as policies
    from .writer import guess_kind

    if policy is None:
        policy = policies.DEFAULT_POLICY
    elif not isinstance(policy, policies.Policy):
        policy = policies.load_policy(policy)
    path = os.fspath(source)
    summary = EncodeSummary(layers=0, raw_bytes=0, chosen={}, quality=[])
    modes = set()
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
    if isinstance(target, (str, os.PathLike)) and modes - quality.LOSSLESS_MODES:
        # the lossy layers against the input, read again one tensor at a time
        with Reader(target) as reader:
            summary["quality"] = quality.measure(((n, a) for n, a, _ in formats.read_tensors(path)), reader)
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
