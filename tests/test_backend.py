"""The backend in use is the one asked for: CI sets CODEC_EXPECT_BACKEND so that a broken
compiled build cannot silently pass as a pure one (and vice versa)."""

import os

import pytest

import codec
from codec import _backend
from codec.kernels import KERNELS


def test_backend_is_the_expected_one():
    expected = os.environ.get("CODEC_EXPECT_BACKEND")
    if expected is None:
        pytest.skip("CODEC_EXPECT_BACKEND not set")
    assert codec.backend == expected


def test_backend_exports_match():
    package = "codec._fast" if codec.backend == "fast" else "codec.kernels"
    assert sorted(_backend.modules) == sorted(KERNELS)
    for stem, module in _backend.modules.items():
        assert module.__name__ == f"{package}.{stem}"
    assert _backend.BitReader.__module__ == f"{package}.bitio"
