"""Streaming writer: layers are written as they come; the file appears only when complete.

Memory stays bounded by the largest layer: a layer's payload streams from the caller's array
into the file in chunks (through the checksum and, for zstd, the compressor). The unit header,
which holds the payload size and checksum, is written first with zeros there and patched once
the payload is written; its size does not depend on those fixed-width fields, so nothing moves.

Atomicity: a path target is written to a temporary file in the same directory and renamed over
the target by :meth:`Writer.close`. If anything fails (or the ``with`` block raises), the
temporary file is removed and an existing file at the target is left untouched.
"""

from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple

import numpy as np

from . import _backend
from .atomic import AtomicFile
from .dtypes import dtype_code_of
from .errors import EncodeError
from .format import (
    IndexEntry,
    LayerKind,
    UnitType,
    normalize_metadata,
    padding_size,
    read_unit_header,
    write_index_payload,
    write_layer_header,
    write_network_header,
    write_trailer,
    write_unit_header,
)
from .format import DEFAULT_LIMITS
from .format.constants import MAX_RANK, PAYLOAD_ALIGNMENT, STORAGE_DTYPE, TRAILER_SIZE, DType
from .format.metadata import write_metadata_unit_payload
from .format.unit import METADATA_UNIT_VERSION, MIN_UNIT_HEADER_SIZE, UNPADDED_MODES_FROM
from .modes import get_mode, registered_modes
from .quant import global_quantization, write_qp_set_data

_log = logging.getLogger(__name__)

__all__ = ["Writer", "LayerTask", "guess_kind"]

_ZEROS = bytes(PAYLOAD_ALIGNMENT)


def guess_kind(name: str, array: np.ndarray) -> LayerKind:
    """Return a ``layer_kind`` guessed from a tensor's name, rank and dtype (informative only)."""
    lower = name.lower()
    leaf = lower.rsplit(".", 1)[-1]
    parts = lower.replace("/", ".").split(".")
    is_float = array.dtype.kind == "f" or array.dtype.name == "bfloat16"
    # an embedding is a float table (an int64 "embeddings.position_ids" is a buffer of indices)
    if array.ndim == 2 and is_float and any(p.startswith(("emb", "tok_emb")) or p in ("wte", "wpe") for p in parts):
        return LayerKind.EMBEDDING
    if array.ndim == 1 and ("norm" in lower or leaf in ("ln", "gamma", "beta") or lower.startswith("ln")):
        return LayerKind.NORM
    if leaf == "bias" or leaf.endswith("_bias"):
        return LayerKind.BIAS
    if array.ndim >= 2:
        return LayerKind.WEIGHT
    return LayerKind.OTHER


def _as_kind(kind) -> int:
    if kind is None:
        return None
    if isinstance(kind, str):
        try:
            return LayerKind[kind.upper()]
        except KeyError:
            raise EncodeError(f"unknown layer kind {kind!r}; use one of "
                              f"{', '.join(k.name.lower() for k in LayerKind)}") from None
    try:
        return LayerKind(kind)
    except ValueError:
        raise EncodeError(f"unknown layer kind {kind!r}") from None


class _PayloadSink:
    """File-like object the modes write the payload to; counts bytes and runs the checksum."""

    def __init__(self, file):
        self._file = file
        self.size = 0
        self.crc = 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self._file.write(view)
        self.crc = _backend.crc32c(view, self.crc)
        self.size += len(view)
        return len(view)

    def flush(self):
        pass


#: The versions a Writer can write (``format_version=``): 1.x files for readers of version 1.x.
WRITABLE_VERSIONS = ((1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (2, 6))


class _Prepared(NamedTuple):
    """A layer encoded in memory, ready to be appended (what a worker returns)."""

    name: str
    body: bytes
    parts: list
    size: int
    crc: int
    version: tuple[int, int]
    mode_id: int
    mode_name: str


class _MemorySink:
    def __init__(self):
        self.parts = []
        self.size = 0
        self.crc = 0

    def write(self, data) -> int:
        view = bytes(memoryview(data).cast("B"))
        self.parts.append(view)
        self.crc = _backend.crc32c(view, self.crc)
        self.size += len(view)
        return len(view)

    def flush(self):
        pass


def _layer_version(coding, levels_version: int, plan) -> tuple[int, int]:
    """The lowest format version that holds a layer of this mode with this levels syntax. A mode of
    id 2 and up written for 2.x readers has no unit padding (section 5): the file is 2.x; levels
    coded with payload version 3 (which may use lc_model 1, spec 7.5) make it 2.1; a mode added in 2.x
    (dq) needs the version that added it (the plan says)."""
    if levels_version >= 2 and (coding.codes_levels or coding.mode_id >= UNPADDED_MODES_FROM):
        version = (2, 1) if levels_version == 3 and coding.codes_levels else (2, 0)
    else:
        version = (1, coding.since_minor)
    return max(version, plan.min_version)


def _layer_padding(offset: int, mode_id: int, version: tuple[int, int]) -> int:
    return padding_size(offset, version=version, coding_mode=mode_id)


#: Float layer dtypes: the lossless default codes them with floatplanes.
_FLOAT_CODES = frozenset({DType.FLOAT64, DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16})


def lossless_mode(dtype_code) -> str:
    """The lossless default's mode for a layer dtype: floatplanes for floats, entropy otherwise (the
    writer falls back to raw when that is not smaller)."""
    return "floatplanes" if dtype_code in _FLOAT_CODES else "entropy"


def _plan_layer(index: int, name: str, array, params: dict, global_qp, levels_version: int = 3):
    """Validate a layer and plan its coding: return (array, dtype code, coding mode, plan, header body).
    ``mode`` None (or absent) is the lossless default (:func:`lossless_mode`)."""
    params = dict(params)
    mode = params.pop("mode", None)
    kind = params.pop("kind", None)
    dtype = params.pop("dtype", None)
    array = np.asarray(array)
    if array.ndim > MAX_RANK:
        raise EncodeError(f"rank {array.ndim} exceeds {MAX_RANK}", path=f"layers[{index}].layer_rank")
    dtype_code = dtype_code_of(array, dtype)
    if mode is None:
        if params:
            raise EncodeError(f"parameters {sorted(params)} need a mode (none given: the lossless default)",
                              path=f"layers[{index}] ({name!r})")
        mode = lossless_mode(dtype_code)
    layer_kind = _as_kind(kind)
    if layer_kind is None:
        layer_kind = guess_kind(name, array)
    coding = get_mode(mode)
    _check_readable(index, name, array, dtype_code)
    plan = coding.plan(array, dtype_code, coding.validate(params), global_qp=global_qp,
                       **({"levels_version": levels_version} if coding.codes_levels else {}))
    body = write_layer_header(layer_index=index, layer_name=name, layer_kind=layer_kind, layer_shape=array.shape,
                              layer_dtype=dtype_code, coding_mode=coding.mode_id, local_qp_set=plan.local_qp_set,
                              mode_params=plan.mode_params)
    header_size = MIN_UNIT_HEADER_SIZE + len(body)
    if header_size > DEFAULT_LIMITS.max_header_bytes:
        raise EncodeError(f"its layer header would be {header_size} bytes (parameter blocks of {len(body)} bytes); "
                          f"readers refuse more than max_header_bytes={DEFAULT_LIMITS.max_header_bytes} by default: "
                          "use fewer channels or per-tensor parameters", path=f"layers[{index}] ({name!r})")
    return array, dtype_code, coding, plan, body


def _check_readable(index: int, name: str, array: np.ndarray, dtype_code) -> None:
    """The writer never writes a layer that a reader with the default Limits refuses."""
    limits, where = DEFAULT_LIMITS, f"layers[{index}] ({name!r})"
    if len(name.encode("utf-8", "surrogatepass")) > limits.max_name_bytes:
        raise EncodeError(f"a name of more than max_name_bytes={limits.max_name_bytes} UTF-8 bytes is refused by "
                          "readers by default", path=where)
    if array.size > limits.max_elements_per_layer or any(d > limits.max_elements_per_layer for d in array.shape):
        raise EncodeError(f"shape {array.shape} exceeds max_elements_per_layer={limits.max_elements_per_layer}, "
                          "which readers apply by default", path=where)
    nbytes = array.size * STORAGE_DTYPE[dtype_code].itemsize if dtype_code in STORAGE_DTYPE else 0
    if nbytes > limits.max_decoded_bytes:
        raise EncodeError(f"{nbytes} bytes exceed max_decoded_bytes={limits.max_decoded_bytes}, which readers apply "
                          "by default", path=where)


class LayerTask(NamedTuple):
    """A layer to encode *by reference*, given to :meth:`Writer.add_layers` in place of an array:
    the worker (a thread, a process, a cluster node) reads the tensor itself (``source.load()``)
    and applies the policy ``action`` (a mode and its parameters, ``prepare`` ones included), so a
    task pickles to a few hundred bytes and only the encoded layer travels back."""

    source: Any  # anything with load() -> array, e.g. formats.TensorRef
    action: dict
    hint: str | None = None  # dtype= for add_layer ("bfloat16" for raw bits)

    def resolve(self) -> tuple[np.ndarray, dict]:
        from .policy import apply

        array, params = apply(self.action, self.source.load())
        if self.hint:
            params["dtype"] = self.hint
        return array, params


def _raw_is_smaller(array: np.ndarray, dtype_code, payload_size: int) -> bool:
    """The lossless default keeps raw when its coded payload is not smaller than the raw bytes."""
    return payload_size >= array.size * STORAGE_DTYPE[dtype_code].itemsize


def _prepare_layer(index: int, name: str, array, params: dict, global_qp, levels_version: int = 3) -> _Prepared:
    """Encode one layer in memory (module-level so that process pools can run it)."""
    if isinstance(array, LayerTask):
        array, params = array.resolve()
    auto = params.get("mode") is None
    array, dtype_code, coding, plan, body = _plan_layer(index, name, array, params, global_qp, levels_version)
    sink = _MemorySink()
    coding.write(plan, array, dtype_code, sink)
    if auto and coding.name != "raw" and _raw_is_smaller(array, dtype_code, sink.size):
        return _prepare_layer(index, name, array, {**params, "mode": "raw"}, global_qp, levels_version)
    return _Prepared(name, body, sink.parts, sink.size, sink.crc, _layer_version(coding, levels_version, plan),
                     coding.mode_id, coding.name)


class Writer:
    """Write layers one at a time into a codec bitstream.

    Parameters
    ----------
    target : str, os.PathLike or binary file object
        A path (written atomically through a temporary file in the same directory) or a seekable
        binary file object positioned at the start of where the bitstream goes.
    metadata : mapping, optional
        Typed metadata for the network header: str keys; int, float, bool, str, bytes or list values.
    quantization : mapping, optional
        The global quantization parameters (network header): defaults for every ``quantized``
        layer, e.g. ``{"bits": 4, "granularity": "channel"}`` or ``{"step": 2**-8}``. Keys:
        ``method``, ``bits``, ``step``, ``granularity``, ``axis``, ``qp_density``.
    format_version : (int, int), optional
        The lowest version to write, one of ``WRITABLE_VERSIONS``. By default the file has the
        lowest version that holds what it uses: 2.4 when a layer uses mode ``pq``, 2.2 for mode ``dq``, 2.1 as soon as a
        layer codes levels (spec 7.4: the level coder with 32 states and chunks; 7.5: adaptive
        contexts where they pay), 2.0 for other unpadded modes, 1.0 or 1.1 otherwise. ``(2, 0)``
        writes levels for 2.0 readers (no adaptive contexts, no ``dq`` or ``pq``); ``(1, 0)`` or ``(1, 1)`` a
        file that readers of version 1.x read (levels coded as spec 7.2).

    Examples
    --------
    >>> import numpy as np, codec, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "model.nnc")
    >>> with codec.Writer(path, metadata={"arch": "mlp"}) as w:
    ...     w.add_layer("fc.weight", np.ones((4, 3), np.float32))
    ...     w.add_layer("fc.bias", np.zeros(4, np.float32), mode="raw")
    >>> codec.load_file(path)["fc.weight"].shape
    (4, 3)
    """

    def __init__(self, target, /, *, metadata=None, quantization=None, format_version=None):
        self._metadata = normalize_metadata(metadata)
        self._global_qp = global_quantization(quantization)
        self._global_qp_bytes = write_qp_set_data(self._global_qp)
        if format_version is not None:
            format_version = tuple(format_version)
            if format_version not in WRITABLE_VERSIONS:
                raise ValueError(f"format_version must be one of {', '.join(map(str, WRITABLE_VERSIONS))} or None, "
                                 f"got {format_version}")
        # 1.x files code levels with the payload of spec 7.2 (for readers of version 1.x), 2.0 files
        # without lc_model 1 (spec 7.5)
        self._levels_version = (3 if format_version is None or format_version >= (2, 1)
                                else 1 if format_version[0] == 1 else 2)
        # the version: the lowest that has every feature used (1.0 files stay 1.0), at least the one asked
        self._version = max(format_version or (1, 0), (1, 1) if self._global_qp_bytes else (1, 0))
        self._requested_version = format_version
        self._unit_metadata_keys: set[str] = set()
        self._unit_metadata_bytes = 0
        self._header = self._network_header(0)
        too_long = next((k for k in self._metadata if len(k.encode("utf-8")) > DEFAULT_LIMITS.max_name_bytes), None)
        if too_long is not None:
            raise EncodeError(f"metadata key of more than max_name_bytes={DEFAULT_LIMITS.max_name_bytes} UTF-8 bytes "
                              "is refused by readers by default", path=f"metadata[{too_long[:40]!r}...]")
        if len(self._header) > DEFAULT_LIMITS.max_metadata_bytes:
            raise EncodeError(f"a network header of {len(self._header)} bytes exceeds max_metadata_bytes="
                              f"{DEFAULT_LIMITS.max_metadata_bytes}, which readers apply by default",
                              path="network_header")
        self._entries: list[IndexEntry] = []
        self._mode_counts: dict[str, int] = {}
        self._names: set[str] = set()
        self._closed = False
        self._atomic = None
        if isinstance(target, (str, os.PathLike)):
            self._atomic = AtomicFile(target)
            self._file = self._atomic.file
            self._origin = 0
        else:
            self._file = target
            if not (hasattr(target, "write") and hasattr(target, "seek")):
                raise TypeError("Writer target must be a path or a seekable binary file object")
            self._origin = target.tell()
        try:
            self._file.write(self._header)
        except BaseException:
            self.abort()
            raise
        self._pos = len(self._header)

    def _network_header(self, layer_count: int) -> bytes:
        return write_network_header(layer_count=layer_count, metadata=self._metadata,
                                    global_qp_set=self._global_qp_bytes, version=self._version)

    # -- context manager ---------------------------------------------------------------------
    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        if not getattr(self, "_closed", True) and getattr(self, "_atomic", None):
            try:
                self.abort()
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    # -- writing -----------------------------------------------------------------------------
    def add_layer(self, name: str, array, /, *, mode: str | None = None, kind=None, dtype: str | None = None,
                  **mode_params: Any) -> None:
        """Encode one layer and append it to the bitstream.

        Parameters
        ----------
        name : str
            Unique layer name (the layer distinction information), at most 65535 UTF-8 bytes.
        array : array-like
            The tensor, rank 0 to 8. Any dtype of spec table 5.4; ``ml_dtypes.bfloat16`` arrays, or
            2-byte integer arrays with ``dtype="bfloat16"``, are stored as bfloat16.
        mode : str, optional
            A registered coding mode (listed below with its parameters). None (the default): the
            lossless default, the same everywhere (``save_file``, ``encode``, ``codec encode``
            without a policy): ``floatplanes`` for float tensors, ``entropy`` for integer and bool
            tensors, and ``raw`` when that payload would not be smaller.
        kind : str or LayerKind, optional
            ``weight``, ``bias``, ``norm``, ``embedding`` or ``other``; guessed from the name if omitted.
        **mode_params
            Parameters of the coding mode, e.g. ``level=`` for zstd.
        """  # the modes and their parameters are appended below, from their declarations
        if self._closed:
            raise EncodeError("Writer is closed")
        if not isinstance(name, str):
            raise EncodeError(f"layer name must be a str, got {type(name).__name__}")
        if name in self._names:
            raise EncodeError(f"duplicate layer name {name!r}")
        self._check_delta(name, mode)
        index = self._next_index(0)
        array, dtype_code, coding, plan, body = _plan_layer(
            index, name, array, {"mode": mode, "kind": kind, "dtype": dtype, **mode_params}, self._global_qp,
            self._levels_version)
        auto = mode is None
        unit_offset = self._pos
        header = write_unit_header(UnitType.LAYER, body, 0, 0)
        version = _layer_version(coding, self._levels_version, plan)
        pad = _layer_padding(unit_offset + len(header), coding.mode_id, version)
        try:
            self._file.write(header)
            self._file.write(_ZEROS[:pad])
            sink = _PayloadSink(self._file)
            coding.write(plan, array, dtype_code, sink)
            self._seek(unit_offset)
            self._file.write(write_unit_header(UnitType.LAYER, body, sink.size, sink.crc))
            end = unit_offset + len(header) + pad + sink.size
            self._seek(end)
        except BaseException:
            # Leave the stream as it was before this layer so the writer stays usable.
            self._rewind(unit_offset)
            raise
        if auto and coding.name != "raw" and _raw_is_smaller(array, dtype_code, sink.size):
            self._rewind(unit_offset)  # the lossless default: raw is no larger
            return self.add_layer(name, array, mode="raw", kind=kind, dtype=dtype)
        self._pos = end
        self._version = max(self._version, version)
        self._names.add(name)
        self._entries.append(IndexEntry(name, unit_offset, end - unit_offset))
        self._mode_counts[coding.name] = self._mode_counts.get(coding.name, 0) + 1
        _log.debug("wrote %s: %s %s %s, %d payload bytes", name, array.dtype, array.shape, coding.name, sink.size)

    def _check_delta(self, name: str, mode) -> None:
        """Mode delta only in a delta bitstream (spec 6.10): readers reject it elsewhere."""
        if mode == "delta" and "codec.delta.base" not in self._metadata:
            raise EncodeError(f"layer {name!r}: mode 'delta' belongs in a delta bitstream (metadata codec.delta.base, "
                              "spec 10.1); write one with codec.save_delta")

    def add_layers(self, items, /, *, workers: int | None = None, executor=None, progress=None) -> None:
        """Encode many layers, on several threads or any ``concurrent.futures.Executor``.

        ``items`` yields ``(name, array, params)`` with ``params`` the keyword arguments of
        :meth:`add_layer` (``mode``, ``kind``, ``dtype``, mode parameters), or ``(name, task, None)``
        with a :class:`LayerTask` that the worker resolves (by reference: for process and cluster
        executors, whose tasks are pickled). Layers are encoded in parallel and appended in order,
        so the bytes do not depend on the number of workers or the executor; at most
        ``2 * workers`` encoded layers wait in memory. ``progress`` is called with each name.
        """
        if executor is None and (workers is None or workers <= 1):
            iterator = iter(items)
            while True:
                item = next(iterator, None)
                if item is None:
                    return
                name, array, params = item
                del item
                if isinstance(array, LayerTask):
                    array, params = array.resolve()
                self.add_layer(name, array, **params)
                # drop this layer before the iterator produces the next: memory stays at one layer
                del array, params
                if progress:
                    progress(name)
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        own = executor is None
        pool = ThreadPoolExecutor(max_workers=workers) if own else executor
        window = 2 * (workers or getattr(pool, "_max_workers", 2) or 2)
        pending: deque = deque()
        try:
            for name, array, params in items:
                if self._closed:
                    raise EncodeError("Writer is closed")
                if not isinstance(name, str):
                    raise EncodeError(f"layer name must be a str, got {type(name).__name__}")
                if name in self._names or any(p[0] == name for p in pending):
                    raise EncodeError(f"duplicate layer name {name!r}")
                self._check_delta(name, params.get("mode") if isinstance(params, dict) else None)
                index = self._next_index(len(pending))
                pending.append((name, pool.submit(_prepare_layer, index, name, array, params, self._global_qp,
                                                  self._levels_version)))
                while len(pending) >= window:
                    self._commit(pending.popleft()[1].result(), progress)
            while pending:
                self._commit(pending.popleft()[1].result(), progress)
        finally:
            for _, future in pending:
                future.cancel()
            if own:
                pool.shutdown(wait=True)

    def append_metadata(self, metadata, /) -> None:
        """Append a metadata unit (spec 5.7): typed entries learned after coding layers (the
        quality report of :func:`codec.encode_file` is one). Readers list them in ``metadata`` after
        the network header's; a key may appear once in the file. Needs format version 2.3 (the
        file's version is raised to it; an error when ``format_version`` asked for an older one)."""
        if self._closed:
            raise EncodeError("Writer is closed")
        requested = self._requested_version
        if requested is not None and requested < METADATA_UNIT_VERSION:
            raise EncodeError("metadata units need format version {}.{} or later (this file is written for {}.{} "
                              "readers)".format(*METADATA_UNIT_VERSION, *requested))
        metadata = normalize_metadata(metadata)
        for key in metadata:
            if key in self._metadata or key in self._unit_metadata_keys:
                raise EncodeError(f"metadata key {key!r} is already in this file", path=f"metadata[{key[:40]!r}]")
            if len(key.encode("utf-8")) > DEFAULT_LIMITS.max_name_bytes:
                raise EncodeError(f"metadata key of more than max_name_bytes={DEFAULT_LIMITS.max_name_bytes} UTF-8 "
                                  "bytes is refused by readers by default", path=f"metadata[{key[:40]!r}...]")
        payload = write_metadata_unit_payload(metadata)
        if self._unit_metadata_bytes + len(payload) > DEFAULT_LIMITS.max_metadata_bytes:
            raise EncodeError(f"metadata units of more than max_metadata_bytes={DEFAULT_LIMITS.max_metadata_bytes} "
                              "bytes in all are refused by readers by default", path="metadata_unit")
        unit_offset = self._pos
        header = write_unit_header(UnitType.METADATA, b"", len(payload), _backend.crc32c(payload))
        pad = padding_size(unit_offset + len(header), version=METADATA_UNIT_VERSION, unit_type=UnitType.METADATA)
        try:
            self._file.write(header)
            self._file.write(_ZEROS[:pad])
            self._file.write(payload)
        except BaseException:
            self._rewind(unit_offset)
            raise
        self._pos = unit_offset + len(header) + pad + len(payload)
        self._version = max(self._version, METADATA_UNIT_VERSION)
        self._unit_metadata_keys.update(metadata)
        self._unit_metadata_bytes += len(payload)

    def _next_index(self, pending: int) -> int:
        index = len(self._entries) + pending
        if index >= DEFAULT_LIMITS.max_layers:
            raise EncodeError(f"more than max_layers={DEFAULT_LIMITS.max_layers} layers are refused by readers by "
                              "default")
        return index

    def _commit(self, prep: _Prepared, progress=None) -> None:
        unit_offset = self._pos
        header = write_unit_header(UnitType.LAYER, prep.body, prep.size, prep.crc)
        pad = _layer_padding(unit_offset + len(header), prep.mode_id, prep.version)
        try:
            self._file.write(header)
            self._file.write(_ZEROS[:pad])
            for part in prep.parts:
                self._file.write(part)
        except BaseException:
            self._rewind(unit_offset)
            raise
        end = unit_offset + len(header) + pad + prep.size
        self._pos = end
        self._version = max(self._version, prep.version)
        self._names.add(prep.name)
        self._entries.append(IndexEntry(prep.name, unit_offset, end - unit_offset))
        self._mode_counts[prep.mode_name] = self._mode_counts.get(prep.mode_name, 0) + 1
        if progress:
            progress(prep.name)

    def _seek(self, offset: int) -> None:
        self._file.seek(self._origin + offset)

    def _rewind(self, offset: int) -> None:
        try:
            self._seek(offset)
            self._file.truncate()
        except (OSError, ValueError):  # pragma: no cover - the file itself failed
            self.abort()

    def close(self) -> None:
        """Write the index and trailer, patch the layer count, and move the file into place."""
        if self._closed:
            return
        try:
            index_offset = self._pos
            payload = write_index_payload(self._entries)
            header = write_unit_header(UnitType.INDEX, b"", len(payload), _backend.crc32c(payload))
            pad = padding_size(index_offset + len(header))
            self._file.write(header)
            self._file.write(_ZEROS[:pad])
            self._file.write(payload)
            self._file.write(write_trailer(index_offset, len(self._entries)))
            end = index_offset + len(header) + pad + len(payload) + TRAILER_SIZE
            self._seek(0)
            self._file.write(self._network_header(len(self._entries)))
            self._seek(end)
            if self._atomic is not None:
                self._atomic.commit()
                self._atomic = None
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Stop writing and remove the temporary file; the target path is left as it was."""
        self._closed = True
        if self._atomic is not None:
            self._atomic.abort()
            self._atomic = None

    @property
    def layer_count(self) -> int:
        return len(self._entries)

    @property
    def mode_counts(self) -> dict[str, int]:
        """How many layers each coding mode has coded so far (after the lossless default's choice)."""
        return dict(self._mode_counts)


class WrittenLayers:
    """The layers a :class:`Writer` has written so far, read back from its file before it closes
    (``name in``, ``header(name)``, ``get(name)``): what :func:`codec.encode_file` measures its
    quality report on, so that the report can go into the same file (a metadata unit)."""

    def __init__(self, writer: Writer):
        self._writer = writer
        self._positions = {e.name: i for i, e in enumerate(writer._entries)}
        self._last: tuple[str, bytes, Any] | None = None

    def __contains__(self, name) -> bool:
        return name in self._positions

    def _unit(self, name: str):
        if self._last is not None and self._last[0] == name:
            return self._last[1], self._last[2]
        w = self._writer
        position = self._positions[name]
        entry = w._entries[position]
        w._file.flush()
        try:
            fd = w._file.fileno()
        except (AttributeError, OSError):  # io.UnsupportedOperation: a BytesIO
            fd = None
        if fd is not None:
            data = os.pread(fd, entry.unit_size, w._origin + entry.unit_offset)
        else:
            w._seek(entry.unit_offset)
            data = w._file.read(entry.unit_size)
            w._seek(w._pos)
        unit = read_unit_header(data, entry.unit_offset, DEFAULT_LIMITS, version=w._version, layer_position=position)
        self._last = (name, data, unit)
        return data, unit

    def header(self, name: str):
        return self._unit(name)[1].layer

    def get(self, name: str) -> np.ndarray:
        from .reader import _decode_layer

        data, unit = self._unit(name)
        start = unit.payload_offset - unit.unit_offset
        return _decode_layer(unit.layer, data[start:start + unit.unit_payload_size], verify=True,
                             limits=DEFAULT_LIMITS, global_qp=self._writer._global_qp)


def _modes_doc() -> str:
    lines = ["", "        Coding modes and their parameters:", ""]
    for mode in registered_modes():
        names = ", ".join(f"``{p.name}``" for p in mode.params if not p.prepare) or "none"
        lines.append(f"        - ``{mode.name}``: {names}")
    return "\n".join(lines) + "\n"


Writer.add_layer.__doc__ += _modes_doc()
