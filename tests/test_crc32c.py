"""CRC32C: pure reference, compiled kernel (hardware and software paths) and the crc32c package agree."""

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crc32c as oracle  # independent implementation (test dependency)
from codec.kernels import crc32c as pure

try:
    from codec._fast import crc32c as fast
except ImportError:
    fast = None

needs_fast = pytest.mark.skipif(fast is None, reason="compiled core not built")

# Lengths around the 3-way block sizes of the crc32 path (3*256 and 3*8192 bytes) and the folding paths (512 bytes
# to start, then 64 or 256 bytes a step, then a tail of crc32 instructions).
EDGE_LENGTHS = [0, 1, 7, 8, 9, 15, 16, 511, 512, 513, 575, 767, 768, 769, 1023, 1024, 1279, 24575, 24576, 24577,
                3 * 24576 + 5]
PATHS = list(fast.PATHS) if fast else []


def test_check_value():
    assert pure.crc32c(b"123456789") == 0xE3069283
    assert oracle.crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize("n", EDGE_LENGTHS)
def test_pure_matches_oracle(n):
    data = os.urandom(n)
    assert pure.crc32c(data) == oracle.crc32c(data)


@needs_fast
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n", EDGE_LENGTHS + [1 << 20])
@pytest.mark.parametrize("misalign", [0, 3])
def test_fast_matches_oracle(path, n, misalign):
    chosen = fast.set_path(path)
    try:
        assert fast.path() == chosen
        data = os.urandom(n + misalign)[misalign:]
        expected = oracle.crc32c(data)
        assert fast.crc32c(data) == expected
        assert fast.crc32c(memoryview(data)) == expected
        assert fast.crc32c(data[n // 3:], fast.crc32c(data[: n // 3])) == expected
        dst = bytearray(n + 1)
        assert fast.crc32c_copy(memoryview(dst)[1:], data) == expected
        assert bytes(dst[1:]) == data
        # the copy writes exactly n bytes
        assert dst[0] == 0
    finally:
        fast.set_path("vpclmul512")


@needs_fast
def test_path_names_and_fallback():
    assert fast.set_path("software") == "software" and not fast.hardware_enabled()
    fast.set_hardware(True)
    assert fast.path() in ("vpclmul512", "crc32", "software")  # the default never picks the slower 128-bit fold
    with pytest.raises(ValueError):
        fast.set_path("sse9")


@needs_fast
@given(st.binary(max_size=3000), st.integers(0, 3000))
def test_continuation(data, cut):
    cut = min(cut, len(data))
    for impl in (pure, fast):
        assert impl.crc32c(data[cut:], impl.crc32c(data[:cut])) == oracle.crc32c(data)


def test_copy_rejects_length_mismatch():
    impls = [pure] + ([fast] if fast else [])
    for impl in impls:
        with pytest.raises(ValueError, match="crc32c_copy: source has 3 bytes, destination 2"):
            impl.crc32c_copy(bytearray(2), b"abc")


@needs_fast
def test_numpy_buffers():
    a = np.arange(1000, dtype=np.float32)
    assert fast.crc32c(a) == oracle.crc32c(a.tobytes()) == pure.crc32c(a)


@given(st.binary(max_size=2000), st.binary(max_size=2000))
def test_combine(a, b):
    impls = [pure] + ([fast] if fast else [])
    for impl in impls:
        assert impl.crc32c_combine(impl.crc32c(a), impl.crc32c(b), len(b)) == oracle.crc32c(a + b)


@needs_fast
@pytest.mark.parametrize("len2", [0, 1, 3, 255, 8192, 10**6 + 7, 2**33 + 5])
def test_combine_pure_equals_fast_for_large_lengths(len2):
    assert fast.crc32c_combine(0x12345678, 0x9ABCDEF0, len2) == pure.crc32c_combine(0x12345678, 0x9ABCDEF0, len2)


@pytest.mark.parametrize("n", [0, 5, (4 << 20) + 3, (9 << 20) + 1])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_parallel_copy_matches_sequential(n, workers, monkeypatch):
    from codec import parallel

    monkeypatch.setattr(parallel, "MIN_PART_BYTES", 1 << 20)  # several parts at these sizes

    src = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
    dst = np.empty_like(src)
    assert parallel.crc32c_copy(dst, src, workers=workers) == oracle.crc32c(src.tobytes())
    assert np.array_equal(dst, src)
