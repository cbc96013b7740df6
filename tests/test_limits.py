"""Every Limits field is enforced, before allocation, by both readers."""

import io

import numpy as np
import pytest

import codec
from codec.errors import LimitError


@pytest.fixture
def data():
    return codec.encode({"a": np.ones((4, 4), np.float32), "b" * 40: np.ones(8, np.int16)},
                        metadata={"k": "v" * 100})


def both_readers(data, limits):
    with pytest.raises(LimitError) as a:
        codec.decode(data, limits=limits)
    with pytest.raises(LimitError) as b:
        list(codec.iter_stream(io.BytesIO(data), limits=limits))
    return str(a.value), str(b.value)


@pytest.mark.parametrize("field, value, match", [
    ("max_layers", 1, "2 exceeds max_layers=1"),
    ("max_rank", 1, "rank 2 exceeds max_rank=1"),
    ("max_elements_per_layer", 15, "16 elements exceed max_elements_per_layer=15"),
    ("max_metadata_bytes", 100, "exceeds max_metadata_bytes=100"),
    ("max_decoded_bytes", 63, "64 exceeds max_decoded_bytes=63"),
    ("max_header_bytes", 40, "exceeds max_header_bytes=40"),
    ("max_name_bytes", 39, "of 40 bytes exceeds max_name_bytes=39"),
])
def test_each_limit(data, field, value, match):
    limits = codec.Limits(**{field: value})
    for message in both_readers(data, limits):
        assert match in message


def test_total_decoded_bytes_bounds_load(data):
    # each layer fits, the sum does not
    with pytest.raises(LimitError, match="exceeds max_decoded_bytes=70"):
        codec.decode(data, limits=codec.Limits(max_decoded_bytes=70))


def test_defaults_accept_normal_files(data):
    assert len(codec.decode(data)) == 2


def test_limits_validation():
    with pytest.raises(ValueError, match="cannot exceed the format limit 8"):
        codec.Limits(max_rank=9)
    with pytest.raises(TypeError):
        codec.Limits(max_layers=-1)
