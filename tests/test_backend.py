"""The backend in use is the one asked for: CI sets CODEC_EXPECT_BACKEND so that a broken
compiled build cannot silently pass as a pure one (and vice versa)."""

import os

import pytest

import codec
from codec import _backend


def test_backend_is_the_expected_one():
    expected = os.environ.get("CODEC_EXPECT_BACKEND")
    if expected is None:
        pytest.skip("CODEC_EXPECT_BACKEND not set")
    assert codec.backend == expected


def test_backend_exports_match():
    if codec.backend == "fast":
        assert _backend.BitReader.__module__ == "codec._fast._bitio"
        assert _backend.crc32c.__module__ == "codec._fast._crc32c"
    else:
        assert _backend.BitReader.__module__ == "codec.bitio"
        assert _backend.crc32c.__module__ == "codec.crc32c"
