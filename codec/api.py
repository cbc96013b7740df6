"""The one-call API: save_file / load_file / encode / decode / open."""

from __future__ import annotations

import builtins
import io
import logging
import math
import os
from typing import Any, Mapping

import numpy as np

from .errors import BaseMismatchError, EncodeError
from .format import DEFAULT_LIMITS, Limits
from .reader import Reader
from .writer import LayerTask, Writer

_log = logging.getLogger("codec")

__all__ = ["save_file", "load_file", "encode", "decode", "open", "encode_file", "EncodeSummary"]


def _resolve_policy(policy, mode, mode_params):
    """A loaded policy (or None) for save_file / encode: mode= and policy= exclude each other."""
    if policy is None:
        return None
    from . import policy as policies

    if mode is not None or mode_params:
        raise ValueError("give either mode= (with its parameters) or policy=, not both")
    policy = policy if isinstance(policy, policies.Policy) else policies.load_policy(policy)
    if policy.target is not None:
        raise EncodeError("a policy [target] is searched by encode_file (codec encode), which re-encodes a file; "
                          "save_file and encode write once")
    return policy


def _policy_actions(tensors: Mapping[str, Any], policy):
    """(name, array, the policy's action for it) of every tensor."""
    from . import policy as policies
    from .writer import guess_kind

    importance = policies.load_importance(policy.importance) if policy.importance else {}
    scales = _step_scales(policy.sensitivity) if policy.sensitivity else {}
    for name, array in tensors.items():
        array = np.asarray(array)
        action, _ = policy.choose(name, array, guess_kind(name, array).name.lower())
        action = _scaled(name, action, scales)
        if action.get("mode") == "dq" and name in importance:
            action = {**action, "importance": importance[name]}
        yield name, array, action


def _step_scales(sensitivity) -> dict[str, float]:
    """Each layer's step factor from sensitivities (a dict or a JSON file): :func:`codec.sensitivity.step_scales`."""
    from . import sensitivity as sens

    return sens.step_scales(sens.load(sensitivity))


def _scaled(name: str, action: dict, scales: Mapping[str, float]) -> dict:
    """The action with its step times the layer's factor, for modes quantized and dq with step=."""
    scale = scales.get(name)
    if scale is None or scale == 1.0 or action.get("mode") not in ("quantized", "dq") or action.get("step") is None:
        return action
    return {**action, "step": float(action["step"]) * scale}


def _policy_items(tensors: Mapping[str, Any], policy):
    from . import policy as policies

    for name, array, action in _policy_actions(tensors, policy):
        yield (name, *policies.apply(action, array))


def _write_all(writer: Writer, tensors: Mapping[str, Any], mode, mode_params: dict, workers, executor,
               policy=None) -> None:
    if policy is not None:
        items = _policy_items(tensors, policy)
    else:
        items = ((name, array, {"mode": mode, **mode_params}) for name, array in tensors.items())
    writer.add_layers(items, workers=workers, executor=executor)


def _with_policy(metadata, policy):
    return metadata if policy is None else {"codec.policy": policy.to_json(), **(metadata or {})}


def save_file(tensors: Mapping[str, Any], path: str | os.PathLike, /, *, metadata: Mapping[str, Any] | None = None,
              mode: str | None = None, policy=None, workers: int | None = None, executor=None,
              format_version=None, **mode_params: Any) -> None:
    """Write ``tensors`` (an ordered mapping of name -> array) to ``path`` atomically.

    Without ``mode`` or ``policy``, every layer gets the lossless default, as ``codec encode``
    without a policy does: ``floatplanes`` for float tensors, ``entropy`` for integer and bool
    tensors, ``raw`` where that payload would not be smaller. ``mode`` (with ``mode_params``)
    codes every layer with one mode; ``policy`` (a :class:`codec.policy.Policy`, a file path or
    TOML/JSON text, spec/policy.md) chooses per layer and is stored in the metadata
    (``codec.policy``); :class:`Writer` chooses per layer in code. ``workers`` > 1 (or an
    ``executor``) encodes layers in parallel; the bytes are the same. ``format_version``: as
    :class:`Writer`'s (``(1, 1)`` for readers of version 1.x).
    """
    policy = _resolve_policy(policy, mode, mode_params)
    with Writer(path, metadata=_with_policy(metadata, policy), format_version=format_version) as writer:
        _write_all(writer, tensors, mode, mode_params, workers, executor, policy)


def save_delta(tensors: Mapping[str, Any], path: str | os.PathLike, /, *, base, previous: Mapping[str, Any] | None = None,
               metadata: Mapping[str, Any] | None = None,
               mode: str | None = None, policy=None, workers: int | None = None, executor=None, format_version=None,
               limits: Limits | None = None, **mode_params: Any) -> dict:
    """Write ``tensors`` to ``path`` atomically as a delta bitstream against ``base`` (spec 10.1): a file,
    bytes, a dict of arrays, or a chain ``[base, update, ...]`` of a base file and delta files.

    The options are :func:`save_file`'s. Layers equal to the base (bit for bit) are left out; a changed
    layer whose mode (from ``mode`` or the ``policy``) is lossy, or whose dtype is an integer type, is
    stored as its difference to the base's decoded layer in that mode (coding mode ``delta``); other
    changed, new or reshaped layers are stored whole; base layers that ``tensors`` lacks are listed as
    removed. The file names the base by the SHA-256 digest of its tensors: :func:`load_file` with another
    base refuses it. ``previous``: the tensors a lossy base was encoded from (e.g. last round's model):
    layers equal to them are unchanged and the differences are taken to them, so an update costs what the
    update needs (without it every layer of a lossy base differs from the new tensors by the base's
    coding error). The file also records how much each changed layer changed (``codec.delta.changes``:
    elements changed, relative and largest change; ``codec-dump`` shows it). Returns counts:
    ``{"changed": , "unchanged": , "removed": , "base_digest": }``.
    """
    from . import delta

    delta.check_mode(mode)
    policy = _resolve_policy(policy, mode, mode_params)
    version = format_version or delta.DELTA_VERSION
    if tuple(version) < delta.DELTA_VERSION:
        raise EncodeError(f"a delta bitstream needs format version 2.5 or later, got {tuple(version)}")
    # the base is decoded a layer at a time: once for its digest, once where a new tensor is compared
    base_model = delta.resolve_base(base, limits=limits, lazy=True)
    try:
        digest = delta.content_digest(base_model)
        if policy is not None:
            actions = _policy_actions(tensors, policy)
        else:
            actions = ((name, np.asarray(array), {"mode": mode, **mode_params}) for name, array in tensors.items())
        changes: list = []
        items, removed = delta.delta_items(actions, base_model, previous, changes=changes)
    finally:
        if base_model is not base:
            delta.close_base(base_model)
    meta = {**(_with_policy(metadata, policy) or {}), delta.BASE_KEY: digest}
    if removed:
        meta[delta.REMOVED_KEY] = removed
    if changes:
        meta[delta.CHANGES_KEY] = delta.changes_to_metadata(changes)
    with Writer(path, metadata=meta, format_version=version) as writer:
        writer.add_layers(items, workers=workers, executor=executor)
    return {"changed": len(items), "unchanged": len(tensors) - len(items), "removed": len(removed),
            "base_digest": digest}


def encode(tensors: Mapping[str, Any], /, *, metadata: Mapping[str, Any] | None = None, mode: str | None = None,
           policy=None, workers: int | None = None, executor=None, format_version=None,
           **mode_params: Any) -> bytes:
    """Return the bitstream of ``tensors`` as bytes (the same options and bytes as :func:`save_file`)."""
    policy = _resolve_policy(policy, mode, mode_params)
    buf = io.BytesIO()
    writer = Writer(buf, metadata=_with_policy(metadata, policy), format_version=format_version)
    _write_all(writer, tensors, mode, mode_params, workers, executor, policy)
    writer.close()
    return buf.getvalue()


class EncodeSummary(dict):
    """What :func:`encode_file` did: ``layers``, ``raw_bytes`` and ``elements`` (of the input
    tensors), ``chosen`` (how many layers each policy choice coded, e.g. ``{"floatplanes": 3,
    "quantized (rule 0)": 2}``; ``lossless`` is the writer's lossless default), ``written`` (how
    many layers each coding mode coded), ``modes`` (the set of policy choices), ``quality``: a
    :class:`codec.quality.LayerQuality` per lossy layer (relative error and SQNR against the input
    tensor; empty when every layer is lossless or ``target`` is a file object not open for reading;
    also stored in the file, spec 5.7), and with
    ``target_bits`` the search (``target``) and the elements whose steps it scaled."""


def encode_file(source: str | os.PathLike, target, /, *, policy=None, metadata: Mapping[str, Any] | None = None,
                workers: int | None = None, executor=None, progress=None, format_version=None,
                target_bits: float | None = None, target_size: int | str | None = None,
                max_rel_error: float | None = None, importance=None, sensitivity=None) -> EncodeSummary:
    """Encode the tensors of a safetensors, npz, PyTorch or ONNX file into a bitstream at
    ``target`` (a path, written atomically, or a binary file object), layer by layer.

    ``policy``: a :class:`codec.policy.Policy`, a policy file path or text, or None for the
    default lossless policy; it is stored in the metadata (``codec.policy``). ``workers`` > 1
    encodes on threads; ``executor`` (any ``concurrent.futures.Executor``: threads, processes,
    ``dask.distributed.Client.get_executor()``) runs the layers' tasks there. From a safetensors
    file each task carries a reference to its tensor (path, offset, shape, dtype) and the policy
    action, reads the tensor in the worker and sends back only the encoded layer. The bytes are
    the same whatever the workers or executor. ``format_version``: as :class:`Writer`'s.

    A target (at most one; the policy's ``[target]`` table when none is given here):
    ``target_bits``, the file's bits per parameter (all tensor elements) at most this;
    ``target_size``, the file's bytes at most this (an int, or a string such as ``"12MB"``,
    ``"12MiB"``); ``max_rel_error``, the weight error of the lossy layers (the total relative
    error of the quality report) at most this, with the smallest file that keeps it. Every layer
    whose policy action is mode ``quantized`` or ``dq`` with a ``step`` moves that step by the same
    number j of grid points (spec 8.2: qp + j, 2^qp_density per octave; the policy's relative
    steps stay), found by encoding the file a few times (each pass replaces ``target``, a path).
    Equal steps give the least squared error for a size (equal rate-distortion slopes), which is
    why one offset serves every layer. ``summary["target"]`` holds j (``qp_offset``) and the
    measured value of each pass.

    ``importance``: per-input-channel importances by tensor name (the dict of
    :func:`codec.torch.collect_importance`, or a safetensors/npz file of them; the policy's
    ``importance`` file when not given): each layer coded with mode ``dq`` whose name is there
    weighs its squared error by them. The file's name and SHA-256 go into the metadata
    (``codec.importance``); ``summary["importance"]`` counts the layers that used one.

    ``sensitivity``: per-layer output sensitivities by tensor name (:func:`codec.sensitivity.measure`,
    :func:`codec.torch.collect_sensitivity`, or their JSON file; the policy's ``sensitivity`` file when
    not given): each layer whose action is mode ``quantized`` or ``dq`` with ``step`` gets its step times
    :func:`codec.sensitivity.step_scales` (coarser where the output cares less), before any target search
    moves all steps together. Stored as ``codec.sensitivity`` (the file's name and SHA-256, or "given");
    ``summary["sensitivity"]`` counts the layers whose step it changed.
    """
    from . import policy as policies

    if policy is None:
        policy = policies.DEFAULT_POLICY
    elif not isinstance(policy, policies.Policy):
        policy = policies.load_policy(policy)
    given = [(k, v) for k, v in (("bits", target_bits), ("size", target_size), ("max_rel_error", max_rel_error))
             if v is not None]
    if len(given) > 1:
        raise ValueError("give at most one of target_bits, target_size and max_rel_error")
    goal = policies.check_target(*given[0]) if given else policy.target
    if importance is None:
        importance = policy.importance
    metadata = dict(metadata or {})
    if importance is not None:
        if isinstance(importance, (str, os.PathLike)):
            import hashlib

            loaded = policies.load_importance(importance)
            digest = hashlib.sha256()
            with builtins.open(importance, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            metadata.setdefault("codec.importance", f"{os.path.basename(importance)} sha256:{digest.hexdigest()}")
            importance = loaded
        else:
            importance = policies.load_importance(importance)
    if sensitivity is None:
        sensitivity = policy.sensitivity
    scales = None
    if sensitivity is not None:
        scales = _step_scales(sensitivity)
        label = "given"
        if isinstance(sensitivity, (str, os.PathLike)):
            import hashlib

            with builtins.open(sensitivity, "rb") as f:
                label = f"{os.path.basename(sensitivity)} sha256:{hashlib.sha256(f.read()).hexdigest()}"
        metadata.setdefault("codec.sensitivity", label)
    kw = dict(metadata=metadata, workers=workers, executor=executor, progress=progress, format_version=format_version,
              importance=importance, step_scales=scales)
    if goal is not None:
        return _encode_to_target(source, target, policy, goal, **kw)
    return _encode_once(source, target, policy, **kw)


#: Most encoding passes of a target search.
TARGET_PASSES = 8

_GOAL_TEXT = {"bits": "target_bits", "size": "target_size", "max_rel_error": "max_rel_error"}


def _encode_to_target(source, target, policy, goal: tuple[str, float], **kw) -> EncodeSummary:
    """Search the step offset j for a goal. The search runs on u = j (bits, size: the value falls
    as j grows) or u = -j (error: it grows with j), so that in u the value v(u) falls and the
    answer is the smallest u with v(u) <= limit; v is bits, bytes or log2 of the error."""
    from . import quality

    kind, limit = goal
    option = _GOAL_TEXT[kind]
    if not isinstance(target, (str, os.PathLike)):
        raise ValueError(f"{option} needs a path target (the file is written once per pass)")
    sign = -1 if kind == "max_rel_error" else 1
    bound = math.log2(limit) if kind == "max_rel_error" else limit
    tried: dict[int, float] = {}  # u -> v
    shown: dict[int, float] = {}  # j -> the measured bits, bytes or error

    def run(u: int) -> EncodeSummary:
        offset = sign * u
        # measured on every pass: the report (a metadata unit) is part of the size
        summary = _encode_once(source, target, policy, step_offset=offset, warn=False, **kw)
        if not summary["scaled_elements"]:
            raise EncodeError(f"{option} scales the steps of the layers a policy codes with mode 'quantized' or "
                              "'dq' and a step=; no layer here has one")
        size = os.path.getsize(target)
        if kind == "bits":
            shown[offset] = tried[u] = size * 8 / max(summary["elements"], 1)
        elif kind == "size":
            shown[offset] = tried[u] = size
        else:
            shown[offset] = quality.total(summary["quality"]).rel_error if summary["quality"] else 0.0
            tried[u] = math.log2(shown[offset]) if shown[offset] > 0 else -math.inf
        _log.info("%s %s: step offset %d gives %s", option, limit, offset, shown[offset])
        return summary

    summary = run(0)
    density = summary["density"]
    # how fast v falls per grid point at high rate: 1 bit per scaled weight per octave of step;
    # the error halves per octave
    share = summary["scaled_elements"] / max(summary["elements"], 1)
    slope = {"bits": share, "size": summary["scaled_elements"] / 8, "max_rel_error": 1.0}[kind] / (1 << density)
    while len(tried) < TARGET_PASSES:
        ok = [u for u, v in tried.items() if v <= bound]
        bad = [u for u, v in tried.items() if v > bound]
        if ok and bad and min(ok) - max(bad) == 1:
            break  # neighbours on the grid straddle the limit: min(ok) is the answer
        u_bad = max(bad) if bad else None
        u_ok = min(ok) if ok else None
        if u_bad is not None and u_ok is not None:
            v_bad, v_ok = tried[u_bad], tried[u_ok]
            guess = u_bad + (v_bad - bound) / (v_bad - v_ok) * (u_ok - u_bad) if math.isfinite(v_ok) \
                else (u_bad + u_ok) / 2
            nxt = min(max(int(math.ceil(guess)), u_bad + 1), u_ok - 1)
        else:
            u0 = u_bad if u_bad is not None else u_ok
            if not math.isfinite(tried[u0]):
                break  # an exact result (no error at all): nothing coarser is known to keep it
            rate = slope
            side = sorted(bad if u_bad is not None else ok, reverse=u_bad is not None)
            if len(side) >= 2:  # two passes on the same side: the measured slope
                u1, u2 = side[0], side[1]
                rate = (tried[u2] - tried[u1]) / (u1 - u2) if u1 != u2 else slope
                if rate < slope / 10:
                    break  # the value hardly moves with the step (layers the target does not scale)
                rate = max(rate, slope / 4)
            delta = (tried[u0] - bound) / rate
            nxt = u0 + (int(math.ceil(delta)) if delta > 0 else int(math.floor(delta)))
            nxt = nxt if nxt != u0 else u0 + (1 if delta > 0 else -1)
        try:
            summary = run(nxt)
        except EncodeError as exc:  # a step outside what the format or the level limit allows
            _log.info("%s: step offset %d: %s", option, sign * nxt, exc)
            break
    ok = [u for u, v in tried.items() if v <= bound]
    if not ok:
        best_seen = shown[sign * min(tried, key=tried.get)]
        what = {"bits": f"{best_seen:.4f} bits per parameter; the lossless layers alone may exceed the target",
                "size": f"{best_seen:,.0f} bytes; the lossless layers alone may exceed the target",
                "max_rel_error": f"relative error {best_seen:.4g}; layers the target does not scale (ternary, "
                                 "sparse, bits= rules) may exceed it"}[kind]
        raise EncodeError(f"{option} {limit}: the best pass gives {what}")
    best = min(ok)
    if best != list(tried)[-1]:
        summary = _encode_once(source, target, policy, step_offset=sign * best, **kw)
    else:
        quality.warn_about(summary["quality"])
    summary["target"] = {"kind": kind, "limit": limit, "value": shown[sign * best], "qp_offset": sign * best,
                         "qp_density": density, "tried": {j: shown[j] for j in sorted(shown)}}
    if kind == "bits":  # the names of the first version
        summary["target"].update(target_bits=limit, bits=shown[sign * best])
    return summary


def _measure(summary: EncodeSummary, source, writer: Writer, format_version, *, warn: bool = True) -> None:
    """The lossy layers against the input (read again one tensor at a time), read back from the
    writer's file before it closes (``summary["quality"]``); the report goes into the file as a
    metadata unit (spec 5.7) when the format version allows it."""
    from . import formats, quality
    from .format.unit import METADATA_UNIT_VERSION
    from .writer import WrittenLayers

    readable = getattr(writer._file, "readable", None)
    if not summary["modes"] - quality.LOSSLESS_MODES or not (readable and readable()):
        return
    summary["quality"] = quality.measure(((n, a) for n, a, _ in formats.read_tensors(os.fspath(source))),
                                         WrittenLayers(writer), warn=warn)
    if format_version is None or tuple(format_version) >= METADATA_UNIT_VERSION:
        writer.append_metadata({quality.METADATA_KEY: quality.to_metadata(summary["quality"])})
    else:
        _log.info("the quality report is not stored: format version %s.%s has no metadata units", *format_version)


def _encode_once(source, target, policy, *, metadata=None, workers=None, executor=None, progress=None,
                 format_version=None, step_offset: int = 0, warn: bool = True, importance=None,
                 step_scales=None) -> EncodeSummary:
    from . import formats
    from . import policy as policies
    from .quant import DEFAULT_DENSITY, qp_for_step, qp_in_range, step_of_qp
    from .writer import guess_kind

    path = os.fspath(source)
    summary = EncodeSummary(layers=0, raw_bytes=0, chosen={}, quality=[], elements=0, scaled_elements=0,
                            density=DEFAULT_DENSITY, modes=set(), importance=0, sensitivity=0)
    modes = summary["modes"]
    by_reference = path.lower().endswith(".safetensors")
    tensors = ((ref.name, ref, ref.hint) for ref in formats.safetensors_refs(path)) if by_reference \
        else formats.read_tensors(path)

    def items():
        for name, array, hint in tensors:
            kind = guess_kind(name, array).name.lower()
            action, rule = policy.choose(name, array, kind, hint=hint)
            mode = action.get("mode") or policies.LOSSLESS_DEFAULT
            label = mode + ("" if rule is None else f" (rule {rule})")
            summary["chosen"][label] = summary["chosen"].get(label, 0) + 1
            modes.add(mode)
            summary["raw_bytes"] += array.nbytes
            size = int(np.prod(array.shape))
            summary["elements"] += size
            if step_scales:
                scaled = _scaled(name, action, step_scales)
                summary["sensitivity"] += scaled is not action
                action = scaled
            if action.get("mode") in ("quantized", "dq") and action.get("step") is not None:
                # target_bits: this layer's step moves by 2^(offset / 2^density) (qp + offset)
                density = action.get("qp_density", DEFAULT_DENSITY)
                summary["density"] = density
                summary["scaled_elements"] += size
                if step_offset:
                    qp = qp_for_step(action["step"], density) + step_offset
                    if not qp_in_range(qp, density):
                        raise EncodeError(f"target_bits: layer {name!r} would need a step outside the format's range")
                    action = {**action, "step": step_of_qp(qp, density)}
            if importance and action.get("mode") == "dq" and name in importance:
                action = {**action, "importance": importance[name]}
                summary["importance"] += 1
            if by_reference:
                yield name, LayerTask(array, dict(action), hint), None
            else:
                array, params = policies.apply(action, array)
                if hint:
                    params["dtype"] = hint
                yield name, array, params
            del array  # one layer in memory at a time

    # the source's own metadata (a safetensors __metadata__ such as {"format": "pt"}) travels along;
    # the reserved codec.* keys are this run's
    carried = {k: v for k, v in formats.source_metadata(path).items() if not k.startswith("codec.")}
    meta = {**carried, "codec.policy": policy.to_json(), "codec.source": os.path.basename(path), **(metadata or {})}
    with Writer(target, metadata=meta, format_version=format_version) as writer:
        writer.add_layers(items(), workers=workers, executor=executor, progress=progress)
        summary["layers"] = writer.layer_count
        summary["written"] = writer.mode_counts
        _measure(summary, source, writer, format_version, warn=warn)
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


def _read_model(reader: Reader, base, workers, executor) -> dict[str, np.ndarray]:
    from . import delta

    if base is None:
        if delta.is_delta(reader.metadata):
            raise BaseMismatchError(f"this is a delta bitstream: it holds changes to the base model of content digest "
                                    f"{reader.metadata[delta.BASE_KEY]}; pass base= (the base file, or the chain "
                                    "[base, update, ...])")
        return _read_all(reader, workers, executor)
    return delta.apply_delta(reader, delta.resolve_base(base, limits=reader.limits, verify=reader.verify_payloads))


def load_file(path: str | os.PathLike, /, *, limits: Limits | None = None, verify: bool = True,
              workers: int | None = None, executor=None, base=None) -> dict[str, np.ndarray]:
    """Read every layer of the file at ``path`` into a dict of name -> array, in file order.

    ``workers`` > 1 decodes layers on that many threads (or pass a thread-based ``executor``). A delta
    bitstream (:func:`save_delta`) needs ``base=``: its base file, bytes or tensors, or the chain
    ``[base, update, ...]``; the result is the updated model (spec 10.1).
    """
    with Reader(path, limits=limits, verify=verify) as reader:
        return _read_model(reader, base, workers, executor)


def decode(data, /, *, limits: Limits | None = None, verify: bool = True, workers: int | None = None,
           executor=None, base=None) -> dict[str, np.ndarray]:
    """Decode a bitstream held in memory (bytes-like) into a dict of name -> array (``base=``: as
    :func:`load_file`'s)."""
    with Reader(data, limits=limits, verify=verify) as reader:
        return _read_model(reader, base, workers, executor)


def open(source, /, *, limits: Limits | None = None, verify: bool = True, base=None):  # noqa: A001
    """Open a bitstream for lazy, random access; use as a context manager.

    ``source`` is a path (memory-mapped) or bytes-like data. See :class:`codec.Reader`. With ``base=`` (a delta
    bitstream's base, as :func:`load_file` takes it) the result is a :class:`codec.delta.UpdatedModel`: the
    updated model's layers by name (``keys()``, ``m[name]``, ``get``), each decoded when asked for (a layer
    the update does not hold is decoded from the base then); the base's digest is checked when it opens, by
    decoding each base layer once, so memory holds about one layer.

    Examples
    --------
    >>> import codec, numpy as np
    >>> data = codec.encode({"w": np.arange(6, dtype=np.int32).reshape(2, 3)})
    >>> with codec.open(data) as r:
    ...     r.keys(), r.header("w").shape, int(r.get("w").sum())
    (['w'], (2, 3), 15)
    """
    reader = Reader(source, limits=limits or DEFAULT_LIMITS, verify=verify)
    if base is None:
        return reader
    from . import delta

    try:
        model = delta.resolve_base(base, limits=reader.limits, verify=verify, lazy=True)
        try:
            return delta.UpdatedModel(reader, model, close_base=model is not base)
        except BaseException:
            delta.close_base(model)
            raise
    except BaseException:
        reader.close()
        raise
