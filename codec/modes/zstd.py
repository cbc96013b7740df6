"""Coding mode ``zstd`` (spec 6.2): one Zstandard frame (RFC 8878), with its content size, of the
raw payload of section 6.1."""

from __future__ import annotations

import numpy as np
import zstandard

from ..dtypes import allocate, iter_le_chunks, storage_dtype, user_array
from ..errors import FormatError
from ..format.constants import STORAGE_DTYPE, CodingMode
from .base import Mode, Param, Plan, check_payload_crc, register_mode

#: Bound on a zstd frame's content size relative to its compressed size (section 6.2): no valid
#: frame expands more than 32768:1 (a 4-byte RLE block yields at most 128 KiB).
ZSTD_MAX_EXPANSION = 1 << 16

#: The zstd compression level parameter, shared with the modes that compress planes.
LEVEL = Param("level", (int,), "zstd compression level (not stored: decoding does not need it)", default=3,
              range=(-7, 22))


@register_mode
class ZstdMode(Mode):
    """``coding_mode`` 1: every dtype; the raw bytes as one Zstandard frame."""

    name = "zstd"
    mode_id = CodingMode.ZSTD
    params = (LEVEL,)

    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        return Plan(b"", params.get("level", LEVEL.default))

    def write(self, plan, array, dtype, sink):
        nbytes = array.size * STORAGE_DTYPE[dtype].itemsize
        cctx = zstandard.ZstdCompressor(level=plan.state, write_content_size=True, write_checksum=False)
        with cctx.stream_writer(sink, size=nbytes, closefd=False, write_size=1 << 20) as writer:
            for chunk in iter_le_chunks(array, STORAGE_DTYPE[dtype]):
                writer.write(chunk)

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        self.check_decode_options(header, levels, format)
        self.params_of(header)
        storage = storage_dtype(header)
        nbytes = header.num_elements * storage.itemsize
        path = header.payload_path
        at = header.payload_offset * 8
        if verify:
            check_payload_crc(header, payload)
        try:
            content_size = zstandard.frame_content_size(payload)
        except zstandard.ZstdError as exc:
            raise FormatError(f"not a zstd frame: {exc}", path=path, bit_offset=at) from None
        if content_size != nbytes:
            raise FormatError(f"zstd frame content size {content_size} differs from the layer's {nbytes} bytes",
                              path=path, bit_offset=at)
        if nbytes > ZSTD_MAX_EXPANSION * len(payload) + (1 << 20):
            raise FormatError(f"zstd frame of {len(payload)} bytes cannot hold {nbytes} bytes", path=path,
                              bit_offset=at)
        out = allocate(header, storage)
        view = memoryview(out.view(np.uint8))
        filled = 0
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(payload, read_across_frames=False)
            while filled < nbytes:
                got = reader.readinto(view[filled:])
                if not got:
                    break
                filled += got
            extra = reader.read(1)
        except zstandard.ZstdError as exc:
            raise FormatError(f"zstd frame is corrupt: {exc}", path=path, bit_offset=at) from None
        if filled != nbytes or extra:
            raise FormatError(f"zstd frame decodes to {'more' if extra else filled} bytes, expected {nbytes}",
                              path=path, bit_offset=at)
        return user_array(header, out)
