"""The container syntax of spec/bitstream.md: constants, metadata, network header, unit and layer
headers, index and trailer. One read/write pair per syntax table, under the spec's element names.

It knows nothing of the coding modes: a layer's ``mode_params``, local ``qp_set_data`` and payload
are bytes here, interpreted by ``codec.modes`` and ``codec.quant``. Readers take a buffer starting
at the structure, its file offset (for error positions), the :class:`Limits` and optionally a
``trace`` list that collects every element read (``codec-dump --fields``).
"""

from .constants import (
    MAGIC,
    PAYLOAD_ALIGNMENT,
    TRAILER_SIZE,
    VERSION_MAJOR,
    VERSION_MINOR,
    CodingMode,
    DType,
    LayerKind,
    UnitType,
    ValueType,
)
from .index import Index, IndexEntry, read_index, read_index_payload, read_trailer, write_index_payload, write_trailer
from .limits import DEFAULT_LIMITS, Limits
from .metadata import UnknownValue, normalize_metadata, read_metadata, write_metadata
from .network import GLOBAL_QP_SET_OFFSET, NetworkHeader, network_header_size, read_network_header, write_network_header
from .unit import (LayerHeader, UnitHeader, layer_coding_mode, padding_size, read_unit_header, write_layer_header,
                   write_unit_header)

__all__ = [
    "MAGIC", "PAYLOAD_ALIGNMENT", "TRAILER_SIZE", "VERSION_MAJOR", "VERSION_MINOR", "CodingMode", "DType",
    "LayerKind", "UnitType", "ValueType", "Index", "IndexEntry", "read_index", "read_index_payload", "read_trailer",
    "write_index_payload",
    "write_trailer", "DEFAULT_LIMITS", "Limits", "UnknownValue", "normalize_metadata", "read_metadata",
    "write_metadata", "GLOBAL_QP_SET_OFFSET", "NetworkHeader", "network_header_size", "read_network_header",
    "write_network_header", "LayerHeader", "UnitHeader", "padding_size", "layer_coding_mode", "read_unit_header", "write_layer_header",
    "write_unit_header",
]
