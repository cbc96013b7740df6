"""Import and export of tensors in common formats: safetensors, npz, PyTorch, ONNX.

Readers yield ``(name, array, dtype_hint)`` one tensor at a time (safetensors and npz lazily);
``dtype_hint`` is ``"bfloat16"`` when the array holds bfloat16 raw bits as uint16 (no ml_dtypes),
else None. Writers take ``(name, array, dtype_name)`` items or :class:`LazyTensor` items (loaded one
at a time while writing) and write atomically.

safetensors is read and written here directly (its format is an 8-byte little-endian header
length, a JSON header, and the tensors' little-endian bytes), so bfloat16 works without torch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np

from .atomic import AtomicFile
from .errors import EncodeError, FormatError

_log = logging.getLogger("codec")

__all__ = ["read_tensors", "write_tensors", "LazyTensor", "TensorRef", "safetensors_refs", "FORMATS"]

FORMATS = (".safetensors", ".npz", ".pt", ".pth", ".bin", ".onnx")

_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I8": "i1", "I16": "<i2", "I32": "<i4",
              "I64": "<i8", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}
_ST_NAMES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int8": "I8", "int16": "I16",
             "int32": "I32", "int64": "I64", "uint8": "U8", "uint16": "U16", "uint32": "U32", "uint64": "U64",
             "bool": "BOOL"}
MAX_ST_HEADER = 100 << 20


def _format_of(path) -> str:
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in FORMATS:
        raise EncodeError(f"unsupported file type {ext or '(none)'!r}: use one of {', '.join(FORMATS)}")
    return ext


def _bf16(bits: np.ndarray):
    try:
        import ml_dtypes
    except ImportError:
        return bits, "bfloat16"
    return bits.view(ml_dtypes.bfloat16), None


# ---------------------------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------------------------
def read_safetensors(path) -> Iterator[tuple[str, np.ndarray, str | None]]:
    """Yield the tensors one at a time; each is read with one readinto, so memory holds one tensor."""
    for ref in safetensors_refs(path):
        array = ref.load()
        yield ref.name, array, ("bfloat16" if ref.hint and array.dtype.name != "bfloat16" else None)
        del array  # before the next tensor is allocated: one tensor in memory at a time


class TensorRef(NamedTuple):
    """A tensor of a safetensors file by reference: what a task sent to another process carries
    instead of the array (a few hundred bytes), to read the tensor there with :meth:`load`."""

    path: str
    name: str
    offset: int  # of the first byte, in the file
    shape: tuple[int, ...]
    dtype_str: str  # numpy dtype string, little-endian
    hint: str | None  # "bfloat16" when the bytes are bfloat16 (kept as uint16 without ml_dtypes)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.dtype_str) if self.hint != "bfloat16" else _bf16(np.zeros(0, "<u2"))[0].dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype_str).itemsize

    def load(self) -> np.ndarray:
        """Read the tensor (one read into a new array); bfloat16 as ``ml_dtypes.bfloat16`` if installed."""
        array = np.empty(self.size, dtype=self.dtype_str)
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            if array.size and f.readinto(memoryview(array.view(np.uint8))) != self.nbytes:
                raise FormatError(f"{self.path}: tensor {self.name!r}: file ends early")
        array = array.reshape(self.shape)
        if self.hint == "bfloat16":
            array, _ = _bf16(array)
        return array


def source_metadata(path) -> dict[str, str]:
    """The metadata a source file carries (a safetensors file's ``__metadata__``), which
    ``encode_file`` keeps; empty for other formats or when it is not a str -> str table."""
    if _format_of(path) != ".safetensors":
        return {}
    header, _ = _safetensors_header(path)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict):
        return {}
    return {k: v for k, v in meta.items() if isinstance(k, str) and isinstance(v, str)}


def _safetensors_header(path) -> tuple[dict, int]:
    """The JSON header of a safetensors file and where its data starts."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise FormatError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", f.read(8))
        if n > min(MAX_ST_HEADER, size - 8):
            raise FormatError(f"{path}: safetensors header of {n} bytes does not fit the file")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{path}: safetensors header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: safetensors header is not an object")
    return header, 8 + n


def safetensors_refs(path) -> list[TensorRef]:
    """References to the tensors of a safetensors file, in file order (nothing but the header read)."""
    refs = []
    header, base = _safetensors_header(path)
    size = os.path.getsize(path)
    entries = sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                     key=lambda kv: kv[1].get("data_offsets", [0])[0] if isinstance(kv[1], dict) else 0)
    for name, info in entries:
        try:
            dtype = _ST_DTYPES[info["dtype"]]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise FormatError(f"{path}: tensor {name!r}: unsupported or malformed entry {info!r}") from None
        count = math.prod(shape)
        if any(d < 0 for d in shape) or not 0 <= begin <= end <= size - base \
                or end - begin != count * np.dtype(dtype).itemsize:
            raise FormatError(f"{path}: tensor {name!r}: data_offsets {begin}..{end} do not fit")
        refs.append(TensorRef(os.path.abspath(path), name, base + begin, shape, dtype,
                              "bfloat16" if info["dtype"] == "BF16" else None))
    return refs


def read_npz(path):
    with np.load(path, allow_pickle=False) as z:
        dtypes = {}
        if "__codec_dtypes__" in z.files:
            dtypes = json.loads(str(z["__codec_dtypes__"]))
        for name in z.files:
            if name == "__codec_dtypes__":
                continue
            array = z[name]
            hint = None
            if dtypes.get(name) == "bfloat16":
                array, hint = _bf16(array.view(np.uint16))
            yield name, array, hint


def _torch():
    try:
        import torch
    except ImportError:
        raise EncodeError("reading or writing PyTorch files needs torch (pip install torch==2.13.0)") from None
    return torch


def _tensor_to_numpy(name, value):
    torch = _torch()
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            return _bf16(t.contiguous().view(torch.int16).numpy().view(np.uint16))
        try:
            return t.numpy(), None
        except TypeError:
            raise EncodeError(f"tensor {name!r} has unsupported dtype {t.dtype}") from None
    if isinstance(value, (int, float, bool)) and not isinstance(value, type(None)):
        return np.asarray(value), None
    raise EncodeError(f"entry {name!r} is a {type(value).__name__}, not a tensor")


#: Keys under which training checkpoints keep the model's state dict, tried in this order.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "ema", "weights")


def _unwrap_checkpoint(path, obj, torch):
    """A training checkpoint (``{"model": state_dict, "step": N, ...}``) gives its state dict; a
    state dict (every value a tensor) is returned as it is."""
    if not isinstance(obj, dict) or all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    for key in CHECKPOINT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            others = [str(k) for k in obj if k != key]
            _log.info("%s: a checkpoint; coding its %r entry (not %s)", path, key, ", ".join(others) or "-")
            return inner
    nested = [str(k) for k, v in obj.items() if isinstance(v, dict)]
    if nested:
        raise EncodeError(f"{path}: a checkpoint whose entries {', '.join(map(repr, nested))} are dicts, not tensors; "
                          f"save the state dict alone (torch.save(checkpoint[{nested[0]!r}], 'model.pt')) or under "
                          f"one of the keys {', '.join(CHECKPOINT_KEYS)}")
    return obj


def read_torch(path):
    torch = _torch()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        raise FormatError(f"{path}: cannot load with weights_only=True: {exc}") from None
    obj = _unwrap_checkpoint(path, obj, torch)
    if not isinstance(obj, dict):
        raise EncodeError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    for name, value in obj.items():
        array, hint = _tensor_to_numpy(str(name), value)
        yield str(name), array, hint


def read_onnx(path):
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise EncodeError("reading ONNX files needs onnx (pip install onnx)") from None
    try:
        model = onnx.load(os.fspath(path))
    except Exception as exc:  # noqa: BLE001
        raise FormatError(f"{path}: not a readable ONNX model: {exc}") from None
    seen = set()
    for init in model.graph.initializer:
        seen.add(init.name)
        yield init.name, numpy_helper.to_array(init), None
    for node in model.graph.node:  # some exporters keep weights in Constant nodes
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and node.output and node.output[0] not in seen:
                    seen.add(node.output[0])
                    yield node.output[0], numpy_helper.to_array(attr.t), None


def read_tensors(path) -> Iterator[tuple[str, np.ndarray, str | None]]:
    """Yield ``(name, array, dtype_hint)`` for every tensor of a safetensors, npz, PyTorch or ONNX file."""
    ext = _format_of(path)
    if not os.path.exists(path):
        raise EncodeError(f"{path}: no such file")
    if ext == ".safetensors":
        return read_safetensors(path)
    if ext == ".npz":
        return read_npz(path)
    if ext == ".onnx":
        return read_onnx(path)
    return read_torch(path)


# ---------------------------------------------------------------------------------------------
# writers (atomic: temporary file in the target directory, renamed on success), streaming: each
# tensor is asked for (``load()``) when its bytes are written and dropped after, so writing a
# decoded model holds one tensor, not the model
# ---------------------------------------------------------------------------------------------
class LazyTensor(NamedTuple):
    """A tensor to write: what the file's header needs now, its values when ``load()`` is called."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # a dtype name: float32, bfloat16, ...
    load: Callable[[], np.ndarray]


def _lazy(items) -> Iterator[LazyTensor]:
    for item in items:
        if isinstance(item, LazyTensor):
            yield item
        else:
            name, array, dtype = item
            yield LazyTensor(name, tuple(np.shape(array)), dtype, lambda array=array: array)


def _atomic(path, write):
    out = AtomicFile(path, mode="wb")
    try:
        write(out.file)
    except BaseException:
        out.abort()
        raise
    out.commit()


def _itemsize(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _le_view(array: np.ndarray, item: LazyTensor) -> memoryview:
    """The tensor's bytes, little-endian, C order (a view when it already is)."""
    a = np.asarray(array)
    if tuple(a.shape) != tuple(item.shape):
        raise EncodeError(f"{item.name!r}: got shape {a.shape}, the header says {item.shape}")
    if a.dtype.name == "bfloat16" or item.dtype == "bfloat16":
        a = a.view(np.uint16)
    a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))
    if a.nbytes != math.prod(item.shape) * _itemsize(item.dtype):
        raise EncodeError(f"{item.name!r}: {a.nbytes} bytes for dtype {item.dtype} and shape {item.shape}")
    return memoryview(a.reshape(-1)).cast("B")


def write_safetensors(path, items: Iterable, metadata: dict | None = None) -> None:
    """Write a safetensors file; its header comes from the shapes and dtypes, before any tensor is loaded."""
    items = list(_lazy(items))
    header, offset = {}, 0
    for item in items:
        if item.dtype not in _ST_NAMES:
            raise EncodeError(f"{item.name!r}: dtype {item.dtype} cannot be stored in safetensors")
        size = math.prod(item.shape) * _itemsize(item.dtype)
        header[item.name] = {"dtype": _ST_NAMES[item.dtype], "shape": list(item.shape),
                             "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)

    def write(f):
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for item in items:
            f.write(_le_view(item.load(), item))

    _atomic(path, write)


def write_npz(path, items: Iterable) -> None:
    """Write an npz archive (what ``np.savez`` writes), one member at a time."""
    import zipfile

    def write(f):
        dtypes = {}
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for item in _lazy(items):
                a = np.asarray(item.load())
                if item.dtype == "bfloat16":
                    a = a.view(np.uint16)
                    dtypes[item.name] = "bfloat16"
                with zf.open(item.name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(a), allow_pickle=False)
                del a
            if dtypes:
                with zf.open("__codec_dtypes__.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.array(json.dumps(dtypes)), allow_pickle=False)

    _atomic(path, write)


def write_torch(path, items: Iterable) -> None:
    """Write a PyTorch checkpoint (a state dict, as ``torch.save`` writes it) without torch."""
    from . import torchfile

    _atomic(path, lambda f: torchfile.write_state_dict(f, _lazy(items), _le_view))


def write_tensors(path, items: Iterable[tuple[str, np.ndarray, str]], *, metadata: dict | None = None) -> None:
    """Write ``(name, array, dtype_name)`` items to a safetensors, npz or PyTorch file (by extension)."""
    ext = _format_of(path)
    if ext == ".safetensors":
        write_safetensors(path, items, metadata)
    elif ext == ".npz":
        write_npz(path, items)
    elif ext in (".pt", ".pth", ".bin"):
        write_torch(path, items)
    else:
        raise EncodeError(f"cannot write {ext} files (decode to .safetensors, .npz or .pt)")
