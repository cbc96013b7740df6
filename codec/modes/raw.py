"""Coding mode ``raw`` (spec 6.1): the elements' little-endian bytes in C order.

The payload starts at a multiple of 64 in the file, so a raw layer can be memory-mapped in place.
"""

from __future__ import annotations

import sys

import numpy as np

from .. import parallel
from ..dtypes import allocate, iter_le_chunks, storage_dtype, user_array
from ..errors import FormatError
from ..format.constants import STORAGE_DTYPE, CodingMode
from .base import Mode, Plan, payload_checksum_error, register_mode


@register_mode
class RawMode(Mode):
    """``coding_mode`` 0: every dtype, no parameters; memory-mappable."""

    name = "raw"
    mode_id = CodingMode.RAW

    def plan(self, array, dtype, params, *, global_qp=None, levels_version=3):
        return Plan(b"")

    def write(self, plan, array, dtype, sink):
        for chunk in iter_le_chunks(array, STORAGE_DTYPE[dtype]):
            sink.write(chunk)

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        self.check_decode_options(header, levels, format)
        self.params_of(header)
        storage = storage_dtype(header)
        nbytes = header.num_elements * storage.itemsize
        if header.payload_size != nbytes:
            raise FormatError(f"raw payload holds {header.payload_size} bytes, shape and dtype need {nbytes}",
                              path=f"{header.path}.unit_payload_size")
        out = allocate(header, storage)
        self._copy(header, payload, out.view(np.uint8), verify)
        return user_array(header, out)

    def decode_into(self, header, payload, out, *, verify=True, global_qp=None):
        storage = storage_dtype(header)
        if out.dtype.itemsize != storage.itemsize or sys.byteorder != "little":
            return False
        self.params_of(header)
        if header.payload_size != out.nbytes:
            raise FormatError(f"raw payload holds {header.payload_size} bytes, shape and dtype need {out.nbytes}",
                              path=f"{header.path}.unit_payload_size")
        self._copy(header, payload, out.reshape(-1).view(np.uint8), verify)
        user_array(header, out.reshape(-1).view(storage))  # the checks of a decode (a bool layer's bytes)
        return True

    @staticmethod
    def _copy(header, payload, dst, verify: bool) -> None:
        if verify:
            actual = parallel.crc32c_copy(dst, payload)
            if actual != header.payload_crc32c:
                raise payload_checksum_error(header, actual)
        elif dst.size:
            dst[:] = np.frombuffer(payload, dtype=np.uint8)
