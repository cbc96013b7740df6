"""The writer never writes what a reader with the default Limits refuses: every mode and parameter
combination either raises EncodeError (naming the layer) or decodes with the defaults."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import codec
from codec.errors import EncodeError
from tests.strategies import arrays

PARAMS = {
    "raw": [{}],
    "zstd": [{}, {"level": 1}],
    "floatplanes": [{}],
    "entropy": [{}, {"max_classes": 1}],
    "quantized": [{"bits": 8}, {"bits": 4, "granularity": "channel"}, {"bits": 4, "granularity": "channel", "axis": 1},
                  {"method": "uniform_zp", "bits": 5, "granularity": "channel"}, {"method": "codebook", "bits": 3},
                  {"step": 0.01}],
    "ternary": [{}, {"scheme": "base3"}],
    "sparse": [{}, {"values_mode": "quantized", "bits": 8}, {"values_mode": "entropy"}],
}


def _ternary_input(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return codec.ternary.ternarize(np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0))
    return np.sign(a.astype(np.int64)).astype(np.int8)


def _input(mode: str, a: np.ndarray) -> np.ndarray:
    if mode == "ternary":
        return _ternary_input(a)
    if mode in ("quantized",) or (mode == "floatplanes"):
        return np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0) / 1e30
    return a


@settings(max_examples=150)
@given(arrays(), st.sampled_from(sorted(PARAMS)), st.data())
def test_encoded_files_decode_with_the_default_limits(array, mode, data):
    params = data.draw(st.sampled_from(PARAMS[mode]))
    x = _input(mode, array)
    if mode == "sparse" and params.get("values_mode") == "quantized":
        x = np.nan_to_num(x.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0) / 1e30
    if mode == "sparse" and params.get("values_mode") == "entropy" and x.dtype.kind not in "iub":
        x = (x != 0).astype(np.int8) if x.dtype.kind == "f" else x
    try:
        encoded = codec.encode({"x": x}, mode=mode, **params)
    except EncodeError:
        return
    codec.decode(encoded)  # default limits: must not raise


@pytest.mark.parametrize("mode, array, params", [
    ("quantized", np.random.default_rng(0).standard_normal((1 << 20, 2)).astype(np.float32),
     {"method": "uniform_zp", "bits": 8, "granularity": "channel"}),
    ("ternary", np.ones((200_000, 1), np.float32) * np.arange(1, 200_001, dtype=np.float32)[:, None], {"axis": 0}),
])
def test_header_too_large_for_readers_is_an_encode_error(mode, array, params):
    with pytest.raises(EncodeError, match=r"^layers\[0\] \('x'\): its layer header would be \d+ bytes .* "
                                          r"max_header_bytes=1048576"):
        codec.encode({"x": array}, mode=mode, **params)


def test_per_channel_on_a_vector_is_per_tensor():
    """The 0.1.0 repro: every element of a vector became a channel, 1.76 bytes per element, and a
    reader refused the file above ~800k elements."""
    b = np.random.default_rng(0).standard_normal(1 << 20).astype(np.float32)
    data = codec.encode({"b": b}, mode="quantized", bits=8, granularity="channel")
    with codec.open(data) as r:
        _, eff = r.get("b", levels=True)
        assert eff.granularity == "tensor" and r.header("b").payload_size < 1.1 * b.size
    assert np.abs(codec.decode(data)["b"] - b).max() <= eff.steps.max() / 2 + 1e-6


def test_names_and_metadata_keys_within_the_default_limits():
    with pytest.raises(EncodeError, match="max_name_bytes=4096"):
        codec.encode({"n" * 4097: np.ones(1)})
    with pytest.raises(EncodeError, match="metadata key of more than max_name_bytes=4096"):
        codec.encode({"w": np.ones(1)}, metadata={"k" * 5000: 1})
    assert list(codec.decode(codec.encode({"n" * 4096: np.ones(1)}))) == ["n" * 4096]


def test_element_count_at_and_past_the_default_limit():
    # broadcast views: the element counts exist without their memory; the check runs before encoding
    from codec import writer
    from codec.dtypes import dtype_code_of
    from codec.format.limits import DEFAULT_LIMITS

    limit = DEFAULT_LIMITS.max_elements_per_layer
    at = np.broadcast_to(np.zeros(1, np.int8), (limit >> 20, 1 << 20))
    past = np.broadcast_to(np.zeros(1, np.int8), ((limit >> 20) + 1, 1 << 20))
    writer._check_readable(0, "w", at, dtype_code_of(at))
    with pytest.raises(EncodeError, match=r"exceeds max_elements_per_layer=1099511627776") as info:
        writer._check_readable(3, "w", past, dtype_code_of(past))
    assert info.value.path == "layers[3] ('w')"
    dim_past = np.zeros((limit + 1, 0), np.int8)
    with pytest.raises(EncodeError, match="exceeds max_elements_per_layer"):
        writer._check_readable(0, "w", dim_past, dtype_code_of(dim_past))
