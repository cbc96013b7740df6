"""Constants from one source: the C headers and the Cython enums of codec/_fast must agree with the
Python constants of the same names (which live in codec/kernels and codec/format/constants.py).

Read from the source files, so this holds in a pure build too.
"""

from __future__ import annotations

import glob
import os
import re

import codec.format.constants as format_constants
from codec.kernels import KERNELS
from tests.twins import PURE

FAST_DIR = os.path.join(os.path.dirname(__file__), "..", "codec", "_fast")

#: C names without a Python twin: implementation choices of the compiled core only.
C_ONLY = {"CODEC_RANS_IMPL_H", "CODEC_CRC32C_IMPL_H", "CRC32C_LONG", "CRC32C_SHORT", "CRC32C_PREFETCH", "CRC32C_X86",
          "CRC32C_FOLD_MIN", "CRC32C_FOLD_TARGET", "CRC32C_FOLD512_TARGET",
          "NOGIL_MIN", "LC_HAVE_AVX2", "CODEC_ADAPTIVE_IMPL_H",
          "LA_ERR_NO_MEMORY", "LA_ENTRIES", "LA_COST", "CODEC_PLANES_IMPL_H", "PL_BLOCK",
          "CODEC_PAYLOAD_IMPL_H", "LP_OK", "LP_NOT_HANDLED", "LP_NO_MEMORY"}
#: Prefixes of the constants each side must have.
SHARED_PREFIXES = ("LC_", "LA_", "TN_ERR_", "US_ERR_", "MK_ERR_", "IX_ERR_", "CRC32C_POLY", "INDEX_ENTRY_", "MIN_UNIT_",
                   "MAX_FLAG_", "UE_MAX_")


def _c_value(expr: str, known: dict[str, int]) -> int | None:
    expr = re.sub(r"/\*.*?\*/", "", expr).strip()
    expr = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", expr)
    for name, value in known.items():
        expr = re.sub(rf"\b{name}\b", str(value), expr)
    if not re.fullmatch(r"[\s\d()<>+\-*xa-fA-F|&]+", expr):
        return None
    return int(eval(expr))  # noqa: S307 - digits and operators only, checked above


def c_constants() -> dict[str, int]:
    """``#define NAME value`` and enum entries of the headers; ``cdef enum`` entries of the .pyx files."""
    found: dict[str, int] = {}
    for path in sorted(glob.glob(os.path.join(FAST_DIR, "*.h"))):
        text = open(path, encoding="utf-8").read()
        for name, expr in re.findall(r"^#define\s+([A-Z][A-Z0-9_]*)\s+(.+)$", text, re.M):
            value = _c_value(expr, found)
            if value is not None:
                found[name] = value
        for body in re.findall(r"enum\s*\{(.*?)\}", text, re.S):
            for name, expr in re.findall(r"([A-Z][A-Z0-9_]*)\s*=\s*([^,\n]+)", body):
                found[name] = _c_value(expr, found)
    for path in sorted(glob.glob(os.path.join(FAST_DIR, "*.pyx"))):
        text = open(path, encoding="utf-8").read()
        for block in re.findall(r"^cdef enum:\n((?:[ \t]+.*\n)+)", text, re.M):
            for name, expr in re.findall(r"^\s+([A-Z][A-Z0-9_]*)\s*=\s*(-?\d+)", block, re.M):
                found[name] = int(expr)
    return found


def python_constants() -> dict[str, int]:
    names: dict[str, int] = {}
    for module in [*(PURE[stem] for stem in KERNELS), format_constants]:
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, int) and not isinstance(value, bool):
                names[name] = value
    return names


def test_c_and_python_constants_agree():
    c, py = c_constants(), python_constants()
    assert "LC_STATES" in c and "TN_ERR_PAD_TRIT" in c and "CRC32C_POLY" in c  # the parser reads all three kinds
    for name, value in c.items():
        if name in C_ONLY:
            continue
        assert name in py, f"{name} is defined in codec/_fast but has no Python constant"
        assert py[name] == value, f"{name}: C {value}, Python {py[name]}"
    for name in py:
        if name.startswith(SHARED_PREFIXES):
            assert name in c, f"{name} has no counterpart in codec/_fast"


def test_derived_sizes_agree():
    assert format_constants.MIN_UNIT_SIZE == format_constants.UNIT_PREFIX_SIZE + format_constants.CRC_SIZE
    assert PURE["rans"].LC_PROB_SCALE == 1 << PURE["rans"].LC_PROB_BITS


def test_status_tables_cover_every_status():
    for stem in KERNELS:
        module = PURE[stem]
        errors = getattr(module, "ERRORS", {})
        statuses = {v for k, v in vars(module).items() if "_ERR_" in k}
        assert statuses == set(errors), f"{stem}: statuses without a message or messages without a status"


def test_most_bins_of_a_level():
    # sig, sign, the gt flags, the prefix (LA_MAX_PREFIX ones and a zero), msb, one bypass field (spec 7.5)
    a = PURE["adaptive"]
    assert a.LA_MAX_BINS == 2 + a.LA_GT_FLAGS + a.LA_MAX_PREFIX + 1 + 2
