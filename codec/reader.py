"""Readers: random access through the index (:class:`Reader`) and sequential (:func:`iter_stream`).

:class:`Reader` memory-maps a file (or wraps a bytes-like object), checks the network header, the
trailer and the index, and then decodes any layer on demand without touching the others.
:func:`iter_stream` reads units in file order from any binary stream, including a pipe, without
the index; at the end it checks the index against what it read.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any, BinaryIO, Iterator

import numpy as np

from . import _backend
from .dtypes import storage_dtype
from .errors import BaseMismatchError, ChecksumError, CodecError, FileChangedError, FormatError, LimitError, TruncatedError
from .format import (
    DEFAULT_LIMITS,
    GLOBAL_QP_SET_OFFSET,
    IndexEntry,
    LayerHeader,
    Limits,
    NetworkHeader,
    UnitHeader,
    network_header_size,
    layer_coding_mode,
    padding_size,
    read_index,
    read_index_payload,
    read_network_header,
    read_trailer,
    read_unit_header,
)
from .format.constants import CRC_SIZE, INDEX_ENTRY_FIXED_SIZE, NETWORK_PREFIX_SIZE, PAYLOAD_ALIGNMENT, TRAILER_SIZE, \
    UNIT_PREFIX_SIZE, CodingMode, UnitType
from .format.metadata import read_metadata_unit
from .format.unit import MIN_UNIT_HEADER_SIZE, is_metadata_unit
from .modes import get_mode
from .quant import QuantParams, read_qp_set_data

__all__ = ["Reader", "iter_stream", "StreamReader", "iter_units"]


def _refuse_difference(header: LayerHeader, metadata) -> None:
    """A delta layer (spec 6.10) decodes to a difference, not to the layer: only codec.delta adds its base;
    outside a delta bitstream (no codec.delta.base) the mode is an error."""
    if header.coding_mode == CodingMode.DELTA:
        if "codec.delta.base" not in metadata:
            raise FormatError("coding mode 9 (delta) in a bitstream whose metadata has no codec.delta.base",
                              path=f"{header.path}.coding_mode")
        raise BaseMismatchError(f"layer {header.layer_name!r} holds its difference to a base model's layer: decode "
                                f"the file with its base (codec.load_file(path, base=BASE), codec decode --base)",
                                path=header.path)


def _decode_layer(header: LayerHeader, payload, *, verify: bool, limits: Limits, global_qp: QuantParams,
                  levels: bool = False, format: str = "dense"):
    mode = get_mode(header.coding_mode, path=f"{header.path}.coding_mode")
    storage = storage_dtype(header)
    # levels come back as int64: bound by the larger of the two
    nbytes = header.num_elements * max(storage.itemsize, 8 if levels else 0)
    limits.check("max_decoded_bytes", nbytes, path=f"{header.path}.layer_dim")
    if nbytes > _PROBE_BYTES:
        with memory_for(header, nbytes):
            return mode.decode(header, payload, verify=verify, global_qp=global_qp, levels=levels, format=format)
    try:  # memory_for without its generator (nothing to reserve): a small layer's fixed cost
        return mode.decode(header, payload, verify=verify, global_qp=global_qp, levels=levels, format=format)
    except MemoryError:
        raise _no_memory(header, nbytes) from None


class _UnitMetadata:
    """The entries of the metadata units (section 5.7) met so far, checked as they arrive."""

    def __init__(self, network_metadata: dict, limits: Limits):
        self.network_metadata = network_metadata
        self.entries: dict[str, Any] = {}
        self.limits = limits
        self.count = 0
        self.total = 0

    def check_size(self, unit: UnitHeader) -> str:
        path = f"metadata_unit[{self.count}]"
        self.total += unit.unit_payload_size
        self.limits.check("max_metadata_bytes", self.total, path=f"{path}.unit_payload_size",
                          bit_offset=(unit.unit_offset + 8) * 8)
        return path

    def add(self, unit: UnitHeader, payload, path: str) -> None:
        actual = _backend.crc32c(payload)
        if actual != unit.unit_payload_crc32c:
            raise ChecksumError(f"metadata unit payload crc32c mismatch: stored 0x{unit.unit_payload_crc32c:08x}, "
                                f"computed 0x{actual:08x}", path=f"{path}.unit_payload_crc32c",
                                bit_offset=unit.payload_offset * 8)
        taken = self.network_metadata.keys() | self.entries.keys()
        self.entries.update(read_metadata_unit(payload, unit.payload_offset, self.limits, taken=taken,
                                               path=f"{path}.unit_payload"))
        self.count += 1

    def merged(self) -> dict[str, Any]:
        return {**self.network_metadata, **self.entries}


#: Outputs above this size are reserved before decoding (below it the probe costs more than it saves).
_PROBE_BYTES = 64 << 20
#: A verified raw layer below this size is read with pread and then checked, where the CRC has only
#: the crc32 instruction (measured on this project's 2-CPU machine: 0.37 vs 0.44 ms for 2.25 MB);
#: above it, and at every size where the CRC folds with AVX-512 (it then copies at memcpy speed:
#: 0.25 vs 0.30 ms for 2.25 MB, 0.46 vs 0.70 ms for 8 MB), the copy from the map that computes the
#: CRC in the same pass wins.
_PREAD_VERIFIED_BYTES = 4 << 20
#: An unverified raw layer below this size is read with pread (0.23 vs 0.25 ms for 2.25 MB), above
#: it copied from the map (0.47-0.49 vs 0.55-0.71 ms for 8 MB).
_PREAD_UNVERIFIED_BYTES = 4 << 20
#: Mapped payload pages are released (madvise) by layer above this size, together below it.
_RELEASE_BYTES = 16 << 20
#: verify() reads payloads in chunks of this size.
_VERIFY_CHUNK = 16 << 20
#: Payloads above this size are read in pieces by the modes that can (``Mode.reads_in_pieces``).
_PIECES_BYTES = 16 << 20
#: Opening a file reads its first and last bytes (network header; index and trailer) and each layer
#: header with pread, up to these sizes at first; the memory map is made only when a payload is read
#: from it (on this machine the map and the page faults of a fresh one cost ~20 us of a 80 us open).
_HEAD_BYTES = 4096
_TAIL_BYTES = 16384
#: An index unit larger than this is read from the map (an allocation never exceeds it).
_INDEX_READ_BYTES = 4 << 20


class _FilePayload:
    """A layer's payload in the file, read in pieces (``os.pread``) by modes that decode as they
    read; each read checks that the file is still the one mapped."""

    def __init__(self, reader: "Reader", header: LayerHeader):
        self.reader, self.header = reader, header

    def __len__(self) -> int:
        return self.header.payload_size

    def read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or offset + size > self.header.payload_size:
            raise ValueError(f"bytes {offset}..{offset + size} are outside the payload")
        self.reader._check_file()
        data = os.pread(self.reader._file.fileno(), size, self.header.payload_offset + offset)
        if len(data) != size:
            raise FileChangedError(f"{self.reader.path!r} ends before the payload of {self.header.layer_name!r} "
                                   "(truncated while open)")
        return data

    def crc32c(self) -> int:
        self.reader._check_file()
        return self.reader._crc32c_of(self.header.payload_offset, self.header.payload_size)


class _SpooledPayload:
    """A large payload of a stream in a temporary file, read in pieces like :class:`_FilePayload`."""

    def __init__(self, file, size: int, crc: int | None):
        self.file, self.size, self.crc = file, size, crc

    def __len__(self) -> int:
        return self.size

    def read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise ValueError(f"bytes {offset}..{offset + size} are outside the payload")
        return os.pread(self.file.fileno(), size, offset)

    def crc32c(self) -> int:
        if self.crc is None:  # spooled without its checksum (verify=False), asked anyway
            self.crc = 0
            for start in range(0, self.size, _VERIFY_CHUNK):
                self.crc = _backend.crc32c(self.read_at(start, min(_VERIFY_CHUNK, self.size - start)), self.crc)
        return self.crc

    def close(self) -> None:
        self.file.close()


_MAP_LOCK = threading.Lock()


def _pread_verified_bytes() -> int:
    path = getattr(_backend.crc, "path", None)
    return 0 if path is not None and path() == "vpclmul512" else _PREAD_VERIFIED_BYTES


def _identity(st) -> tuple:
    return st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns


@contextlib.contextmanager
def memory_for(header: LayerHeader, nbytes: int):
    """Decode a layer of ``nbytes`` output inside this: a MemoryError becomes a LimitError naming the
    layer. The output's size is reserved (not touched) first, so a declared shape this machine
    cannot hold fails at once, before a mode builds its working buffers."""
    try:
        if nbytes > _PROBE_BYTES:
            try:  # an anonymous mapping: the kernel's own answer, no page touched
                mmap.mmap(-1, nbytes).close()
            except (OSError, OverflowError, ValueError):
                raise MemoryError from None
        yield
    except MemoryError:
        raise _no_memory(header, nbytes) from None


def _no_memory(header: LayerHeader, nbytes: int) -> LimitError:
    return LimitError(f"not enough memory to decode {header.num_elements} elements ({nbytes} bytes and "
                      "working buffers); lower Limits.max_decoded_bytes to refuse such layers up front",
                      path=f"{header.path}.layer_dim")


def _global_qp(network_header: NetworkHeader) -> QuantParams:
    return read_qp_set_data(network_header.global_qp_set, path="network_header.global_qp_set.qp_set_data",
                            base_offset=GLOBAL_QP_SET_OFFSET)


_MISSING = object()


class Reader(Mapping):
    """Random-access reader over a codec bitstream (a path, or bytes-like data).

    Use :func:`codec.open`. The reader is a read-only mapping from layer name to decoded array;
    ``header(name)`` returns a layer's header without decoding its payload.

    Parameters
    ----------
    source : str, os.PathLike or bytes-like
        File (headers and small raw layers are read with pread; it is memory-mapped when a payload
        is first read from the map), or the bitstream itself.
    limits : Limits, optional
        Bounds on what the file may announce (see :class:`codec.Limits`).
    verify : bool
        Check each payload's CRC32C when it is decoded (default True). Headers, the index and the
        trailer are always checked.

    A file that changes under an open reader: every call first checks that the file still has the
    size, inode and modification time it had when it was opened, and raises
    :class:`~codec.FileChangedError` if not. Compressed payloads are read into buffers of their own.
    One race remains: a raw layer is copied straight from the map, and a file truncated by another
    process during that copy (after the check) kills the process with SIGBUS; so does using a
    ``payload()`` view after such a truncation. Replace files by renaming a new one over them (as
    codec's writer does), not by rewriting them in place, and this cannot happen.
    """

    def __init__(self, source, /, *, limits: Limits | None = None, verify: bool = True):
        self.limits = limits or DEFAULT_LIMITS
        self.verify_payloads = verify
        self._unreleased = 0  # payload bytes read from the map since its pages were last released
        self._mmap = None
        self._file = None
        self._closed = False
        self.path = None
        if isinstance(source, (str, os.PathLike)):
            self.path = os.fspath(source)
            self._file = io.FileIO(source, "r")
            try:
                st = os.fstat(self._file.fileno())
                self._identity = _identity(st)
                if st.st_size == 0:
                    raise TruncatedError("file is empty", path="network_header", bit_offset=0)
            except BaseException:
                self._file.close()
                raise
            self._size = st.st_size
            self._bytes = None  # the map's view, made by _buf on first use
        else:
            self._bytes = memoryview(source).cast("B")
            self._size = len(self._bytes)
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    @property
    def _buf(self) -> memoryview:
        """The whole file: the bytes given, or a read-only memory map of the file made on first use."""
        if self._bytes is None:
            with _MAP_LOCK:  # threads reading layers of one reader make one map
                if self._bytes is None:
                    self._check_file()  # map the file only as it was opened
                    self._mmap = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
                    self._bytes = memoryview(self._mmap)
        return self._bytes

    def _read(self, offset: int, size: int):
        """Bytes ``offset`` .. ``offset + size`` of the file (fewer at its end): a view where the data is
        in memory or mapped, else read with pread (no map, no page faults)."""
        if self._bytes is not None:
            return self._bytes[offset:offset + size]
        return os.pread(self._file.fileno(), size, offset)

    def _unit_header_bytes(self, offset: int, end: int):
        """What ``read_unit_header`` reads of the unit at ``offset`` .. ``end``: its header and padding
        (fewer bytes where the unit is shorter; the parser reports that as it would on the whole unit)."""
        if self._bytes is not None:
            return self._bytes[offset:end]
        data = self._read(offset, min(end - offset, _HEAD_BYTES))
        if len(data) >= UNIT_PREFIX_SIZE:
            header_size = int.from_bytes(data[4:8], "little")  # unit_header_size, after the start code and type
            want = min(end - offset, header_size + PAYLOAD_ALIGNMENT)  # the header and at most 63 padding bytes
            if want > len(data) and header_size <= self.limits.max_header_bytes:
                data = self._read(offset, want)
        return data

    def _open(self) -> None:
        size = self._size
        head = self._read(0, min(size, _HEAD_BYTES))
        if len(head) >= NETWORK_PREFIX_SIZE:
            # read_network_header checks the size against the limit before it reads the header
            want = network_header_size(head)
            if want > len(head) and want <= self.limits.max_metadata_bytes:
                head = self._read(0, want)
        self.network_header: NetworkHeader = read_network_header(head, self.limits)
        self.global_qp = _global_qp(self.network_header)
        first_unit = self.network_header.network_header_size
        if size < first_unit + TRAILER_SIZE:
            raise TruncatedError(f"file of {size} bytes ends before its trailer", path="trailer",
                                 bit_offset=size * 8)
        trailer_offset = size - TRAILER_SIZE
        tail_start = max(first_unit, size - _TAIL_BYTES)
        tail = self._read(tail_start, size - tail_start)
        index_offset, trailer_count = read_trailer(tail[trailer_offset - tail_start:], trailer_offset)
        if trailer_count != self.network_header.layer_count:
            raise FormatError(f"trailer_layer_count {trailer_count} differs from layer_count "
                              f"{self.network_header.layer_count}", path="trailer.trailer_layer_count",
                              bit_offset=(trailer_offset + 8) * 8)
        if not first_unit <= index_offset <= trailer_offset - MIN_UNIT_HEADER_SIZE:
            raise FormatError(f"index_unit_offset {index_offset} is outside the file", path="trailer.index_unit_offset",
                              bit_offset=trailer_offset * 8)
        if index_offset >= tail_start:
            region = tail[index_offset - tail_start:trailer_offset - tail_start]
        elif trailer_offset - index_offset <= _INDEX_READ_BYTES:
            region = self._read(index_offset, trailer_offset - index_offset)
        else:
            region = self._buf[index_offset:trailer_offset]
        unit = read_unit_header(region, index_offset, self.limits, version=self.network_header.version)
        if unit.unit_type != UnitType.INDEX:
            raise FormatError(f"unit at index_unit_offset has unit_type {unit.unit_type}, not index",
                              path="index.unit_type", bit_offset=(index_offset + 3) * 8)
        if unit.payload_offset + unit.unit_payload_size != trailer_offset:
            raise FormatError("index payload does not end where the trailer starts", path="index.unit_payload_size",
                              bit_offset=(index_offset + 8) * 8)
        payload = region[unit.payload_offset - index_offset:]
        actual = _backend.crc32c(payload)
        if actual != unit.unit_payload_crc32c:
            raise ChecksumError(f"index payload crc32c mismatch: stored 0x{unit.unit_payload_crc32c:08x}, "
                                f"computed 0x{actual:08x}", path="index.unit_payload_crc32c",
                                bit_offset=unit.payload_offset * 8)
        index = read_index(payload, unit.payload_offset, self.limits, layer_count=self.network_header.layer_count,
                           first_unit_offset=first_unit, index_unit_offset=index_offset)
        self._unit_metadata = _UnitMetadata(self.network_header.metadata, self.limits)
        if index.gaps:
            self._check_gaps(index.gaps)
        self._index_offset = index_offset
        self._index = index
        self._entries: dict[str, int] = index.by_name  # name -> position
        self._names = list(index.by_name)
        self._headers: dict[str, LayerHeader] = {}

    def _check_gaps(self, gaps: list[tuple[int, int, int]]) -> None:
        """Units between the indexed layer units may only be ancillary (section 5.1): a reserved
        critical unit there makes the file unreadable, on this path as on the sequential one."""
        for position, start, end in gaps:
            for unit in iter_units(self._buf, self.network_header, self.limits, start=start, end=end):
                if unit.unit_type == UnitType.LAYER:
                    raise FormatError("a layer unit the index does not list", path=f"layers[{position}]",
                                      bit_offset=unit.unit_offset * 8)
                if is_metadata_unit(unit.unit_type, self.network_header.version):
                    path = self._unit_metadata.check_size(unit)
                    # iter_units checked that the payload lies before the index
                    payload = bytes(self._buf[unit.payload_offset:unit.payload_offset + unit.unit_payload_size])
                    self._unit_metadata.add(unit, payload, path)

    # -- mapping interface -------------------------------------------------------------------
    def keys(self) -> list[str]:
        """Return the layer names in file order."""
        return list(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._entries:
            raise KeyError(name)
        return self.get(name)

    # a reader is equal only to itself (comparing as mappings would decode both files)
    def __eq__(self, other) -> bool:
        return self is other

    __hash__ = object.__hash__

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yield (name, array) pairs in file order, decoding one layer at a time."""
        for name in self._names:
            yield name, self.get(name)

    @property
    def metadata(self) -> dict[str, Any]:
        """The typed metadata: the network header's, then the entries of the metadata units (spec
        5.7: what the writer learned after coding the layers, such as ``codec.quality``)."""
        return self._unit_metadata.merged()

    @property
    def version(self) -> tuple[int, int]:
        return (self.network_header.version_major, self.network_header.version_minor)

    # -- layers ------------------------------------------------------------------------------
    def _entry(self, name: str) -> tuple[int, IndexEntry]:
        try:
            position = self._entries[name]
        except KeyError:
            raise KeyError(name) from None
        return position, self._index.entry(name, position)

    def _check_file(self) -> None:
        """Before touching mapped pages: the reader is open and its file is as it was mapped. A file
        truncated or rewritten under the map would otherwise kill the process (SIGBUS) when a page
        beyond its new end is read."""
        if self._closed:
            raise ValueError("the reader is closed")
        if self._file is not None and _identity(os.fstat(self._file.fileno())) != self._identity:
            raise FileChangedError(f"{self.path!r} changed while it was open (size, inode or mtime differ from "
                                   "when it was mapped); open it again")

    def _payload(self, header: LayerHeader, *, mapped: bool):
        """The payload of ``header``: a view of the map for raw layers (zero-copy; see the race in
        :class:`Reader`), else the bytes read into a buffer of its own, so that decoding never
        touches mapped pages a concurrent truncation could take away."""
        self._check_file()
        start, size = header.payload_offset, header.payload_size
        if mapped or self._file is None:
            return self._buf[start:start + size]
        data = os.pread(self._file.fileno(), size, start)
        if len(data) != size:
            raise FileChangedError(f"{self.path!r} ends before the payload of {header.layer_name!r} "
                                   "(truncated while open)")
        return data

    def _release(self, header: LayerHeader) -> None:
        """Drop mapped pages from the process (they stay in the page cache), so that reading a whole
        file keeps the resident memory at about one layer: a large layer's pages at once, small
        layers' pages together once they add up to _RELEASE_BYTES (the call costs about as much as
        copying a couple of MB, which a small layer's get would otherwise pay each time)."""
        if self._mmap is None or not hasattr(self._mmap, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return
        self._unreleased += header.payload_size
        if header.payload_size >= _RELEASE_BYTES:
            start, end = header.payload_offset, header.payload_offset + header.payload_size
        elif self._unreleased >= _RELEASE_BYTES:
            start, end = 0, len(self._mmap)
        else:
            return
        start -= start % mmap.PAGESIZE
        end = min(len(self._mmap), end)
        if end > start:
            self._mmap.madvise(mmap.MADV_DONTNEED, start, end - start)
        if start == 0:
            self._unreleased = 0

    def header(self, name: str) -> LayerHeader:
        """Return the parsed header of layer ``name`` without decoding its payload."""
        self._check_file()
        cached = self._headers.get(name)
        if cached is not None:
            return cached
        position, entry = self._entry(name)
        end = entry.unit_offset + entry.unit_size
        unit = read_unit_header(self._unit_header_bytes(entry.unit_offset, end), entry.unit_offset, self.limits,
                                version=self.network_header.version, layer_position=position)
        path = f"layers[{position}]"
        if unit.layer is None:
            raise FormatError(f"index entry points at a unit of type {unit.unit_type}, not a layer",
                              path=f"{path}.unit_type", bit_offset=(entry.unit_offset + 3) * 8)
        header = unit.layer
        if header.layer_name != name:
            raise FormatError(f"layer_name {header.layer_name!r} differs from the index name {name!r}",
                              path=f"{path}.layer_name", bit_offset=entry.unit_offset * 8)
        if header.payload_offset + header.payload_size != end:
            raise FormatError(f"unit size {entry.unit_size} in the index differs from the unit's "
                              f"{header.unit_size} bytes", path=f"{path}.unit_payload_size",
                              bit_offset=(entry.unit_offset + 8) * 8)
        self._headers[name] = header
        return header

    def get(self, name: str, default=_MISSING, /, *, verify: bool | None = None, levels: bool = False,
            format: str = "dense", copy: bool = True, out: np.ndarray | None = None):
        """Decode and return layer ``name`` as a new numpy array (``default``, None unless given, when
        the file has no such layer: the Mapping protocol; ``reader[name]`` raises KeyError).

        ``copy=False`` returns a raw layer as a read-only view of the memory map (zero-copy: the
        payload is 64-byte aligned; its checksum is still checked unless ``verify=False``); other
        modes decode into a new array either way. A view keeps the map alive after ``close()``
        and sees the file as it is: replace files by renaming (see the class docstring).

        ``verify`` overrides the reader's payload checksum setting for this call. For a quantized
        layer, ``levels=True`` returns ``(levels, params)`` instead: the int64 levels and the
        effective quantization parameters (:class:`codec.quant.Effective`). For a sparse layer,
        ``format="bitmap"`` returns (packed mask bits, kept values) and ``format="nm"`` the 2:4
        sparse-tensor-core layout (values, metadata); see :func:`codec.masks.nm_layout`. A mode
        declares the options it offers (``Mode.has_levels``, ``Mode.formats``).

        ``out``: decode into this array (writable, C-contiguous, of the layer's shape and dtype) and
        return it, e.g. one buffer reused across layers by a loader: raw layers are copied in, and
        float32 quantized and dq layers are dequantized in (no array of their own: a fresh output's
        page faults are then not paid, and the chunks of a layer scale better on threads); other
        layers are decoded and copied. On an error ``out`` holds whatever was written.
        """
        if name not in self._entries:
            if default is _MISSING:
                return None
            return default
        header = self.header(name)
        _refuse_difference(header, self.metadata)
        verify = self.verify_payloads if verify is None else verify
        if out is not None:
            return self._get_into(header, out, verify=verify, levels=levels, format=format, copy=copy)
        if header.coding_mode == CodingMode.RAW and not levels and format == "dense":
            array = self._raw_view(header, verify) if not copy else self._raw_read(header, verify)
            if array is not None:
                return array
        mode = get_mode(header.coding_mode, path=f"{header.path}.coding_mode")
        if getattr(mode, "reads_in_pieces", False) and self._file is not None and header.payload_size > _PIECES_BYTES:
            payload = _FilePayload(self, header)  # read as it is decoded: memory holds the output, not both
        else:
            payload = self._payload(header, mapped=header.coding_mode == CodingMode.RAW)
        try:
            return _decode_layer(header, payload, verify=verify,
                                 limits=self.limits, global_qp=self.global_qp, levels=levels, format=format)
        finally:
            del payload
            self._release(header)

    def get_difference(self, name: str, /, *, verify: bool | None = None) -> np.ndarray:
        """The difference a delta layer (coding mode 9, spec 6.10) of a delta bitstream holds, as a new array
        (:func:`codec.delta.apply_delta` adds it to the base's layer)."""
        header = self.header(name)
        if header.coding_mode != CodingMode.DELTA:
            raise ValueError(f"layer {name!r} ({header.mode_name}) is not a delta layer")
        try:
            _refuse_difference(header, self.metadata)
        except BaseMismatchError:
            pass  # a delta layer of a delta bitstream: what this method is for
        verify = self.verify_payloads if verify is None else verify
        payload = self._payload(header, mapped=False)
        try:
            return _decode_layer(header, payload, verify=verify, limits=self.limits, global_qp=self.global_qp)
        finally:
            del payload
            self._release(header)

    def _get_into(self, header: LayerHeader, out, *, verify: bool, levels: bool, format: str, copy: bool):
        from .dtypes import user_dtype

        name = header.layer_name
        if levels or format != "dense" or not copy:
            raise ValueError("out= decodes a layer's values: it does not combine with levels=, format= or copy=False")
        expected = user_dtype(header)
        if not isinstance(out, np.ndarray) or out.dtype != expected or out.shape != tuple(header.layer_shape) \
                or not out.flags.c_contiguous or not out.flags.writeable:
            got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            raise ValueError(f"out= for layer {name!r} must be a writable C-contiguous array of dtype {expected} and "
                             f"shape {tuple(header.layer_shape)}, got {got}")
        mode = get_mode(header.coding_mode, path=f"{header.path}.coding_mode")
        payload = self._payload(header, mapped=header.coding_mode == CodingMode.RAW)
        try:
            done = mode.decode_into(header, payload, out, verify=verify, global_qp=self.global_qp)
        finally:
            del payload
            self._release(header)
        if not done:
            out[...] = self.get(name, verify=verify)
        return out

    def get_rows(self, name: str, start: int, stop: int, /, *, verify: bool | None = None) -> np.ndarray:
        """Rows ``start`` .. ``stop - 1`` along axis 0 of layer ``name`` (bounds clipped as a slice's), decoding
        only what they need: a layer whose levels are coded in chunks of rows (entropy, quantized and dq layers of
        rank >= 2 in a 2.x file; spec 7.4) decodes only the chunks that hold those rows, a raw layer is sliced from
        the map, other modes decode the whole layer. Returns a new array. The payload's checksum covers the whole
        payload, so ``verify`` (default: the reader's setting) still reads all of it; chunks outside the range are
        not decoded, so an error in their words is not seen here."""
        header = self.header(name)
        _refuse_difference(header, self.metadata)
        if not header.layer_shape:
            raise ValueError(f"layer {name!r} is a scalar: it has no rows")
        start, stop, _ = slice(start, stop).indices(header.layer_shape[0])
        stop = max(start, stop)
        verify = self.verify_payloads if verify is None else verify
        if header.coding_mode == CodingMode.RAW:
            return np.array(self.get(name, verify=verify, copy=False)[start:stop])
        mode = get_mode(header.coding_mode, path=f"{header.path}.coding_mode")
        self.limits.check("max_decoded_bytes", header.num_elements * storage_dtype(header).itemsize,
                          path=f"{header.path}.layer_dim")
        payload = self._payload(header, mapped=False)
        try:
            first, block = mode.decode_rows(header, payload, start, stop, verify=verify, global_qp=self.global_qp)
        finally:
            del payload
            self._release(header)
        if first == start and block.shape[0] == stop - start:
            return block
        return np.array(block[start - first:stop - first])  # a copy: the other decoded rows are freed

    def _raw_view(self, header: LayerHeader, verify: bool):
        """A read-only array over a raw layer's mapped payload, or None where a view cannot be had
        (a bytes source is fine; a big-endian machine or a bool layer with bytes above 1 copies)."""
        from .dtypes import user_array

        storage = storage_dtype(header)
        nbytes = header.num_elements * storage.itemsize
        if header.payload_size != nbytes or sys.byteorder != "little":
            return None  # the decoder reports the size error, and swaps bytes
        self.limits.check("max_decoded_bytes", nbytes, path=f"{header.path}.layer_dim")
        get_mode(CodingMode.RAW).params_of(header)
        payload = self._payload(header, mapped=True)
        if verify:
            actual = _backend.crc32c(payload)
            if actual != header.payload_crc32c:
                from .modes.base import payload_checksum_error

                raise payload_checksum_error(header, actual)
        flat = np.frombuffer(payload, dtype=storage, count=header.num_elements)
        try:
            out = user_array(header, flat)
        except CodecError:
            return None
        out.flags.writeable = False
        return out

    def _raw_read(self, header: LayerHeader, verify: bool):
        """A raw layer read from the file straight into its output (pread: no page faults on a fresh
        map, one copy), or None where the general path is needed (bytes source, big-endian)."""
        from .dtypes import user_array

        storage = storage_dtype(header)
        nbytes = header.num_elements * storage.itemsize
        if self._file is None or header.payload_size != nbytes or sys.byteorder != "little" or not nbytes:
            return None
        if nbytes >= (_pread_verified_bytes() if verify else _PREAD_UNVERIFIED_BYTES):
            return None  # the decoder's copy from the map (with the CRC in the same pass) is faster here
        self.limits.check("max_decoded_bytes", nbytes, path=f"{header.path}.layer_dim")
        get_mode(CodingMode.RAW).params_of(header)  # the checks of the raw mode's decode, in its order
        self._check_file()
        with memory_for(header, nbytes):
            out = np.empty(nbytes, dtype=np.uint8)
        got = os.preadv(self._file.fileno(), [out], header.payload_offset)
        if got != nbytes:
            raise FileChangedError(f"{self.path!r} ends before the payload of {header.layer_name!r} "
                                   "(truncated while open)")
        if verify:
            actual = _backend.crc32c(out)
            if actual != header.payload_crc32c:
                from .modes.base import payload_checksum_error

                raise payload_checksum_error(header, actual)
        return user_array(header, out.view(storage))

    def payload(self, name: str) -> memoryview:
        """Return the payload bytes of layer ``name`` (a view into the file; valid until close)."""
        return self._payload(self.header(name), mapped=True)

    def verify(self) -> None:
        """Check every unit, checksum and padding of the file in order; raise the first problem found.
        Payloads are read in chunks, so the resident memory stays small whatever the file's size."""
        self._check_file()
        expected = [(e.unit_offset, e.name) for e in self._index.entries]  # file order
        seen = []
        for unit in iter_units(self._buf, self.network_header, self.limits, end=self._index_offset):
            path = f"layers[{len(seen)}]" if unit.layer is not None else "unit"
            actual = self._crc32c_of(unit.payload_offset, unit.unit_payload_size)
            if actual != unit.unit_payload_crc32c:
                raise ChecksumError(f"payload crc32c mismatch: stored 0x{unit.unit_payload_crc32c:08x}, "
                                    f"computed 0x{actual:08x}", path=f"{path}.unit_payload",
                                    bit_offset=unit.payload_offset * 8)
            if unit.layer is not None:
                seen.append((unit.unit_offset, unit.layer.layer_name))
        if seen != expected:
            raise FormatError("the index does not list the layer units of the file", path="index",
                              bit_offset=self._index_offset * 8)

    def _crc32c_of(self, start: int, size: int) -> int:
        if self._file is None:
            return _backend.crc32c(self._buf[start:start + size])
        crc, done, fd = 0, 0, self._file.fileno()
        while done < size:
            chunk = os.pread(fd, min(size - done, _VERIFY_CHUNK), start + done)
            if not chunk:
                raise FileChangedError(f"{self.path!r} ends before offset {start + size} (truncated while open)")
            crc = _backend.crc32c(chunk, crc)
            done += len(chunk)
        return crc

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the memory map and the file; later calls that read raise ValueError."""
        self._closed = True
        self._bytes = memoryview(b"")
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:
                # Views of the map are still alive (a traceback's frames, or payload() views the
                # caller keeps); the map is unmapped when the last of them goes.
                pass
            self._mmap = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<codec.Reader {len(self._names)} layers, version {self.version[0]}.{self.version[1]}>"


def iter_units(buf, network_header: NetworkHeader, limits: Limits, *, end: int, start: int | None = None,
               trace=None) -> Iterator[UnitHeader]:
    """Yield the header of every unit from ``start`` (default: the end of the network header) up to
    offset ``end``.

    Checks that units are contiguous, that each lies before ``end``, and (through
    read_unit_header) each header's checksum and padding. Payloads are not read.
    """
    offset = network_header.network_header_size if start is None else start
    position = 0
    while offset < end:
        is_layer = offset + 4 <= len(buf) and buf[offset + 3] == UnitType.LAYER
        unit = read_unit_header(buf[offset:end], offset, limits, version=network_header.version,
                                layer_position=position if is_layer else None, trace=trace)
        path = f"layers[{position}]" if is_layer else "unit"
        if unit.unit_type == UnitType.INDEX:
            raise FormatError("index unit before index_unit_offset", path=f"{path}.unit_type",
                              bit_offset=(offset + 3) * 8)
        unit_end = unit.payload_offset + unit.unit_payload_size
        if unit_end > end:
            raise FormatError(f"payload of {unit.unit_payload_size} bytes runs past the index", path=f"{path}.unit_payload_size",
                              bit_offset=(offset + 8) * 8)
        position += is_layer
        offset = unit_end
        yield unit
    if offset != end:
        raise FormatError("units do not end where the index starts", path="index", bit_offset=end * 8)


# ---------------------------------------------------------------------------------------------
# sequential reading
# ---------------------------------------------------------------------------------------------
class _Stream:
    """Exact reads from a binary stream, tracking the file offset."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.offset = 0

    def read(self, n: int, path: str) -> bytes:
        chunks = []
        left = n
        while left:
            chunk = self._stream.read(min(left, 1 << 24))
            if not chunk:
                got = n - left
                raise TruncatedError(f"stream ended: need {n} bytes, got {got}", path=path,
                                     bit_offset=(self.offset + got) * 8, bits_needed=n * 8, bits_available=got * 8)
            chunks.append(chunk)
            left -= len(chunk)
        self.offset += n
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def spool(self, n: int, path: str, *, crc: bool) -> "_SpooledPayload":
        """``n`` bytes copied to an unnamed temporary file as they arrive (their CRC32C computed on
        the way when ``crc``), for a mode that reads a large payload in pieces: memory holds the
        decoded layer, not the layer and its payload."""
        import tempfile

        file = tempfile.TemporaryFile()
        try:
            value, got = 0, 0
            while got < n:
                chunk = self._stream.read(min(n - got, 1 << 20))
                if not chunk:
                    raise TruncatedError(f"stream ended: need {n} bytes, got {got}", path=path,
                                         bit_offset=(self.offset + got) * 8, bits_needed=n * 8,
                                         bits_available=got * 8)
                if crc:
                    value = _backend.crc32c(chunk, value)
                file.write(chunk)
                got += len(chunk)
            file.flush()
        except BaseException:
            file.close()
            raise
        self.offset += n
        return _SpooledPayload(file, n, value if crc else None)

    def read_grown(self, n: int, path: str) -> bytearray:
        """``n`` bytes in a buffer that grows as they arrive: a claimed size allocates nothing by
        itself, so a hostile size costs only the bytes the stream really holds."""
        buf = bytearray()
        while len(buf) < n:
            chunk = self._stream.read(min(n - len(buf), 1 << 24))
            if not chunk:
                raise TruncatedError(f"stream ended: need {n} bytes, got {len(buf)}", path=path,
                                     bit_offset=(self.offset + len(buf)) * 8, bits_needed=n * 8,
                                     bits_available=len(buf) * 8)
            buf += chunk
        self.offset += n
        return buf


class StreamReader:
    """Read a bitstream sequentially from a binary stream (a pipe works); see :func:`iter_stream`."""

    def __init__(self, stream: BinaryIO, /, *, limits: Limits | None = None, verify: bool = True):
        self.limits = limits or DEFAULT_LIMITS
        self.verify_payloads = verify
        self._in = _Stream(stream)
        prefix = self._in.read(NETWORK_PREFIX_SIZE, "network_header")
        size = network_header_size(prefix)
        self.limits.check("max_metadata_bytes", size, path="network_header.network_header_size", bit_offset=80)
        data = prefix + self._in.read(size - NETWORK_PREFIX_SIZE, "network_header")
        self.network_header = read_network_header(data, self.limits)
        self.global_qp = _global_qp(self.network_header)
        #: the network header's metadata, then (once read) the entries of the metadata units
        self.metadata = dict(self.network_header.metadata)
        self._unit_metadata = _UnitMetadata(self.network_header.metadata, self.limits)
        self._done = False

    def __iter__(self) -> Iterator[tuple[LayerHeader, np.ndarray]]:
        """Yield (header, array) for each layer in file order, then check the index and trailer."""
        if self._done:
            return
        if "codec.delta.base" in self.metadata:  # its layers are changes: without the base, a partial model
            raise BaseMismatchError("this is a delta bitstream (spec 10.1): its base model is needed, which a stream "
                                    "does not take; use codec.load_file(path, base=BASE)", path="network_header.metadata")
        seen: list[IndexEntry] = []
        position = 0
        decoded = 0
        while True:
            unit_offset = self._in.offset
            prefix = self._in.read(UNIT_PREFIX_SIZE, f"layers[{position}]")
            header_size = int.from_bytes(prefix[4:8], "little")
            self.limits.check("max_header_bytes", header_size, path=f"layers[{position}].unit_header_size",
                              bit_offset=(unit_offset + 4) * 8)
            rest = max(0, header_size - UNIT_PREFIX_SIZE)
            head = prefix + self._in.read(rest, f"layers[{position}]")
            pad = 0
            if len(head) == header_size:
                mode = 0
                if prefix[3] == UnitType.LAYER and self.network_header.version_major >= 2:
                    try:  # the padding depends on the coding mode (section 5); read_unit_header checks all
                        mode = layer_coding_mode(head[UNIT_PREFIX_SIZE:header_size - CRC_SIZE], self.limits)
                    except CodecError:
                        mode = 0
                pad = padding_size(unit_offset + len(head), version=self.network_header.version,
                                   unit_type=prefix[3], coding_mode=mode)
            head += self._in.read(pad, f"layers[{position}].unit_padding")
            is_layer = prefix[3] == UnitType.LAYER
            unit: UnitHeader = read_unit_header(head, unit_offset, self.limits,
                                                version=self.network_header.version,
                                                layer_position=position if is_layer else None)
            if unit.unit_type == UnitType.INDEX:
                break
            if is_metadata_unit(unit.unit_type, self.network_header.version):
                path = self._unit_metadata.check_size(unit)
                self._unit_metadata.add(unit, self._in.read(unit.unit_payload_size, f"{path}.unit_payload"), path)
                self.metadata = self._unit_metadata.merged()
                continue
            if unit.layer is None:  # ancillary unit this reader does not know: skip its payload
                self._skip(unit.unit_payload_size, unit_offset)
                continue
            if position >= self.network_header.layer_count:
                raise FormatError(f"more layer units than layer_count {self.network_header.layer_count}",
                                  path=f"layers[{position}]", bit_offset=unit_offset * 8)
            header = unit.layer
            storage = storage_dtype(header)
            decoded += header.num_elements * storage.itemsize
            self.limits.check("max_decoded_bytes", decoded, path=f"layers[{position}].layer_dim")
            self.limits.check("max_decoded_bytes", header.payload_size, path=f"layers[{position}].unit_payload_size")
            try:
                mode = get_mode(header.coding_mode, path=f"{header.path}.coding_mode")
            except CodecError:  # raised by _decode_layer, after the payload is read (as a Reader would)
                mode = None
            where = f"layers[{position}].unit_payload"
            if getattr(mode, "reads_in_pieces", False) and header.payload_size > _PIECES_BYTES:
                payload = self._in.spool(header.payload_size, where, crc=self.verify_payloads)
            else:
                payload = self._in.read_grown(header.payload_size, where)
            try:
                _refuse_difference(header, self.metadata)
                array = _decode_layer(header, payload, verify=self.verify_payloads, limits=self.limits,
                                      global_qp=self.global_qp)
            finally:
                if isinstance(payload, _SpooledPayload):
                    payload.close()
                del payload
            seen.append(IndexEntry(header.layer_name, unit_offset, header.unit_size))
            position += 1
            yield header, array
            del array  # before the next layer is read: the caller may have dropped it (one layer in memory)
        self._finish(unit, seen)

    def _skip(self, n: int, unit_offset: int) -> None:
        while n:
            step = min(n, 1 << 24)
            self._in.read(step, "unit_payload")
            n -= step

    def _finish(self, unit: UnitHeader, seen: list[IndexEntry]) -> None:
        index_offset = unit.unit_offset
        most = self.limits.max_layers * (INDEX_ENTRY_FIXED_SIZE + self.limits.max_name_bytes) + 4
        if unit.unit_payload_size > most:
            raise LimitError(f"index of {unit.unit_payload_size} bytes exceeds what max_layers and max_name_bytes "
                             f"allow ({most})", path="index.unit_payload_size", bit_offset=(index_offset + 8) * 8)
        payload = self._in.read(unit.unit_payload_size, "index")
        actual = _backend.crc32c(payload)
        if actual != unit.unit_payload_crc32c:
            raise ChecksumError(f"index payload crc32c mismatch: stored 0x{unit.unit_payload_crc32c:08x}, "
                                f"computed 0x{actual:08x}", path="index.unit_payload_crc32c",
                                bit_offset=unit.payload_offset * 8)
        entries = read_index_payload(payload, unit.payload_offset, self.limits,
                                     layer_count=self.network_header.layer_count,
                                     first_unit_offset=self.network_header.network_header_size,
                                     index_unit_offset=index_offset)
        if entries != seen:
            raise FormatError("index does not describe the layer units that precede it", path="index",
                              bit_offset=unit.payload_offset * 8)
        trailer_offset = self._in.offset
        index_unit_offset, trailer_count = read_trailer(self._in.read(TRAILER_SIZE, "trailer"), trailer_offset)
        if trailer_count != self.network_header.layer_count:  # the rule Reader applies
            raise FormatError(f"trailer_layer_count {trailer_count} differs from layer_count "
                              f"{self.network_header.layer_count}", path="trailer.trailer_layer_count",
                              bit_offset=(trailer_offset + 8) * 8)
        if index_unit_offset != index_offset:
            raise FormatError(f"index_unit_offset {index_unit_offset} differs from the index unit at {index_offset}",
                              path="trailer.index_unit_offset", bit_offset=trailer_offset * 8)
        if self._in._stream.read(1):
            raise FormatError("bytes after the trailer", path="trailer", bit_offset=self._in.offset * 8)
        self._done = True


def iter_stream(stream: BinaryIO, /, *, limits: Limits | None = None,
                verify: bool = True) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, array) for each layer of a bitstream read sequentially from ``stream``.

    Works on pipes: it never seeks. The index and trailer at the end are checked against the
    layers read; a mismatch raises after the last layer.
    """
    reader = StreamReader(stream, limits=limits, verify=verify)
    for header, array in reader:
        yield header.layer_name, array
        del array

