"""Writing a PyTorch checkpoint (``torch.save`` of a state dict) without torch, one tensor at a time.

The file is what ``torch.save`` writes since PyTorch 1.6: an uncompressed zip archive whose
members sit under one folder (``archive/``): ``data.pkl`` (a protocol-2 pickle of the dict, each
tensor a ``torch._utils._rebuild_tensor_v2`` call on a *persistent* storage reference
``("storage", <storage type>, key, "cpu", numel)``; dtypes without a typed storage use
``_rebuild_tensor_v3`` on an ``UntypedStorage`` with the dtype last, as torch does), the records
``.format_version``, ``.storage_alignment``, ``byteorder``, one member ``data/<key>`` per tensor
holding its little-endian bytes at a 64-byte-aligned offset, ``version`` and
``.data/serialization_id``. The pickle names only what ``torch.load(weights_only=True)`` accepts.

Importing torch costs ~200 MiB of memory and seconds: a decoder writing ``.pt`` files does not.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import zipfile

import numpy as np

__all__ = ["write_state_dict", "STORAGE_TYPES"]

#: dtype name -> torch's typed storage class (``_rebuild_tensor_v2``); others use v3.
STORAGE_TYPES = {"float64": "DoubleStorage", "float32": "FloatStorage", "float16": "HalfStorage",
                 "bfloat16": "BFloat16Storage", "int8": "CharStorage", "uint8": "ByteStorage",
                 "int16": "ShortStorage", "int32": "IntStorage", "int64": "LongStorage", "bool": "BoolStorage"}
#: dtypes torch has but stores untyped (``_rebuild_tensor_v3``).
UNTYPED = {"uint16", "uint32", "uint64"}
ARCHIVE = "archive"
ALIGNMENT = 64
#: ``version`` record: the serialization version torch 2.x writes.
VERSION = "3"


class _Global:
    """A module-level name in the pickle (written as GLOBAL, never imported here)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle only checks that a reduce function is callable
        raise TypeError("a placeholder for pickling")


class _Storage:
    def __init__(self, key: str, dtype: str, numel: int, nbytes: int):
        self.key, self.dtype, self.numel, self.nbytes = key, dtype, numel, nbytes


class _Tensor:
    def __init__(self, storage: _Storage, shape: tuple[int, ...]):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        stride, step = [], 1
        for dim in reversed(self.shape):
            stride.append(step)
            step *= dim
        args = (self.storage, 0, tuple(self.shape), tuple(reversed(stride)), False, collections.OrderedDict())
        if self.storage.dtype in UNTYPED:
            return _Global("torch._utils", "_rebuild_tensor_v3"), args + (_Global("torch", self.storage.dtype),)
        return _Global("torch._utils", "_rebuild_tensor_v2"), args


class _Pickler(pickle._Pickler):
    """The pure-Python pickler (whose dispatch table can be extended) with torch's storage references."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_placeholder_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[_Global] = save_placeholder_global

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            if obj.dtype in UNTYPED:
                return ("storage", _Global("torch.storage", "UntypedStorage"), obj.key, "cpu", obj.nbytes)
            return ("storage", _Global("torch", STORAGE_TYPES[obj.dtype]), obj.key, "cpu", obj.numel)
        return None


def _record(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    zf.writestr(zipfile.ZipInfo(f"{ARCHIVE}/{name}", date_time=(1980, 1, 1, 0, 0, 0)), data)


def write_state_dict(f, items, le_view) -> None:
    """Write the checkpoint of ``items`` (formats.LazyTensor) to the binary file ``f`` (seekable);
    ``le_view(array, item)`` gives a tensor's little-endian bytes."""
    items = list(items)
    state, storages = {}, []
    for key, item in enumerate(items):
        if item.dtype not in STORAGE_TYPES and item.dtype not in UNTYPED:
            raise ValueError(f"{item.name!r}: dtype {item.dtype} has no PyTorch equivalent")
        numel = 1
        for dim in item.shape:
            numel *= dim
        itemsize = 2 if item.dtype == "bfloat16" else np.dtype(item.dtype).itemsize
        storage = _Storage(str(key), item.dtype, numel, numel * itemsize)
        storages.append(storage)
        state[item.name] = _Tensor(storage, tuple(item.shape))
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(state)
    serialization_id = hashlib.sha1(buf.getvalue()).hexdigest()
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        _record(zf, "data.pkl", buf.getvalue())
        _record(zf, ".format_version", b"1")
        _record(zf, ".storage_alignment", str(ALIGNMENT).encode())
        _record(zf, "byteorder", b"little")
        for storage, item in zip(storages, items):
            info = zipfile.ZipInfo(f"{ARCHIVE}/data/{storage.key}", date_time=(1980, 1, 1, 0, 0, 0))
            # pad the local header (an extra field, as torch does) so the data starts 64-byte aligned;
            # zipfile adds a 20-byte zip64 field after ours (force_zip64)
            fixed = 30 + len(info.filename.encode()) + 4 + 20
            pad = -(zf.fp.tell() + fixed) % ALIGNMENT
            info.extra = b"FB" + pad.to_bytes(2, "little") + b"Z" * pad
            with zf.open(info, "w", force_zip64=True) as member:
                member.write(le_view(item.load(), item))
        _record(zf, "version", VERSION.encode())
        _record(zf, ".data/serialization_id", serialization_id.encode())
