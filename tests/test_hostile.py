"""Checksum-valid hostile files (tests/data/hostile/, from a structure-aware fuzzer run on codec 0.1.0,
where they segfaulted, hung, ran out of memory or raised non-codec exceptions; the fuzz-* files are
later findings of tools/fuzz.py, numpy warnings). Every entry point
must now raise a CodecError or decode correctly, in bounded memory; CI runs this in both backends
against the same expectations."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import codec
from codec import quant

HERE = os.path.join(os.path.dirname(__file__), "data", "hostile")
FILES = sorted(glob.glob(os.path.join(HERE, "*.nnc")))

#: The outcome of codec.decode with max_decoded_bytes = 1 GiB (deterministic on any machine; with the
#: default limits some of these become a LimitError of the machine's memory instead).
EXPECTED = {
    'dump-floatplanes-integer-dtype-keyerror':
        ('FormatError', 'layers[4].layer_dtype: mode floatplanes cannot hold dtype uint32'),
    'dump-sparse-values-dtype-keyerror':
        ('FormatError', 'layers[0].layer_dtype: mode floatplanes cannot hold dtype int64'),
    'empty-bigdim0-rows-hang':
        'ok',
    'exception-BufferError-codec-dump-py-344-run':
        ('FormatError', 'unit.unit_type at byte 35: index unit before index_unit_offset'),
    'exception-OverflowError-codec-quant-py-103-step-of-qp':
        ('FormatError', 'layers[0].local_qp_set.qp_set_data.qp_delta[0] at bit 550: qp 1099511627776 (density 4) gives a step outside [2^-126, 2^128)'),
    'exception-ValueError-codec-dump-py-111-sparse-summary':
        ('FormatError', "layers[0].unit_payload.sp_kept_count at byte 128: sp_kept_count 38 exceeds the layer's 8 elements"),
    'exception-ValueError-codec-levels-py-235-decode-levels':
        ('LimitError', 'layers[0].layer_dim[0] at byte 57: 9223372036854775808 exceeds max_elements_per_layer=1099511627776'),
    'exception-ValueError-codec-masks-py-201-208-decode-bitmap':
        ('LimitError', 'layers[0].layer_dim[1] at bit 457: 9223372036854775808 exceeds max_elements_per_layer=1099511627776'),
    'exception-ValueError-codec-modes-py-173-user-array':
        ('LimitError', 'layers[0].layer_dim[1] at bit 457: 9223372036854775808 exceeds max_elements_per_layer=1099511627776'),
    'exception-ValueError-codec-modes-py-467-decode':
        ('LimitError', 'layers[0].layer_dim[0] at byte 57: 9223372036854775808 exceeds max_elements_per_layer=1099511627776'),
    'exception-ValueError-codec-modes-py-493-float-output':
        ('LimitError', 'layers[0].layer_dim[1] at bit 457: 4611686018427387904 exceeds max_elements_per_layer=1099511627776'),
    'exception-ValueError-codec-modes-py-622-decode':
        ('LimitError', 'layers[0].layer_dim[0] at byte 57: 4611686018427387904 exceeds max_elements_per_layer=1099511627776'),
    'exception-ValueError-codec-modes-py-779-decode':
        ('LimitError', 'layers[0].layer_dim[1] at bit 457: 9223372036854775807 exceeds max_elements_per_layer=1099511627776'),
    'floatplanes-empty-bigdim0-pure-hang':
        ('FormatError', 'layers[0].unit_payload.fp_exponents.lc_rans_words at byte 176: rANS final state is not the initial state (corrupt payload)'),
    'iter-stream-payload-size-2GiB-rss':
        ('FormatError', "layers[1].unit_payload_size at byte 364: unit size 329 in the index differs from the unit's 2147483739 bytes"),
    'iter-stream-payload-size-alloc':
        ('FormatError', "layers[0].unit_payload_size at byte 40: unit size 144 in the index differs from the unit's 8589934688 bytes"),
    'levels-alloc-memoryerror':
        ('LimitError', 'layers[0].layer_dim: 17179869184 exceeds max_decoded_bytes=1073741824'),
    'levels-bomb-pure-hang':
        'ok',
    'memory-MemoryError-codec-levels-py-235-decode-levels':
        ('LimitError', 'layers[0].layer_dim[0] at byte 57: 4611686018427387904 exceeds max_elements_per_layer=1099511627776'),
    'memory-MemoryError-codec-levels-py-238-decode-levels':
        ('LimitError', 'layers[0].layer_dim: 137438953472 exceeds max_decoded_bytes=1073741824'),
    'memory-MemoryError-codec-levels-py-266-decode-levels':
        ('LimitError', 'layers[0].layer_dim: 2147483647 exceeds max_decoded_bytes=1073741824'),
    'memory-MemoryError-codec-levels-py-271-decode-levels':
        ('LimitError', 'layers[0].layer_dim: 68719476704 exceeds max_decoded_bytes=1073741824'),
    'memory-MemoryError-codec-levels-py-273-decode-levels':
        ('LimitError', 'layers[0].layer_dim: 103079215056 exceeds max_decoded_bytes=1073741824'),
    'quant-zp-rank1-wrong-values':
        'ok',
    'quant-zp-shared-step-divergence':
        'ok',
    'quant-zp-shared-step-segv':
        'ok',
    'rows-2p63-rowclasses-overflow':
        ('LimitError', 'layers[0].layer_dim[0] at byte 59: 9223372036854775808 exceeds max_elements_per_layer=1099511627776'),
    'sparse-nm-count-alloc-memoryerror':
        ('LimitError', 'layers[0].layer_dim: 68719476704 exceeds max_decoded_bytes=1073741824'),
    'fuzz-226738-float16-overflow-warning':
        'ok',
    'fuzz-41210-ternary-inf-alpha-warning':
        'ok',
    'ternary-flag-levels-alloc':
        ('LimitError', 'layers[0].layer_dim: 274877906944 exceeds max_decoded_bytes=1073741824'),
}


def test_every_file_has_an_expectation():
    assert sorted(os.path.basename(p)[:-4] for p in FILES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_outcome(path):
    data = open(path, "rb").read()
    expected = EXPECTED[os.path.basename(path)[:-4]]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # numpy overflow or invalid-value warnings
            codec.decode(data, limits=codec.Limits(max_decoded_bytes=1 << 30))
        outcome = "ok"
    except codec.CodecError as exc:
        outcome = (type(exc).__name__, str(exc))
    assert outcome == expected


ENTRY_POINTS = r"""
import io, resource, sys
import codec
from codec import dump

path = sys.argv[1]
data = open(path, "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def random_access():
    with codec.open(path) as r:
        r.verify()
        for name in r:
            r.get(name)
            if r.header(name).mode_name in ("quantized", "ternary", "sparse"):
                r.get(name, levels=True)


def stream():
    for _ in codec.iter_stream(io.BytesIO(data)):
        pass


for run in (lambda: codec.load_file(path), lambda: codec.decode(data), random_access, stream,
            lambda: dump.walk(data), lambda: dump.summarize(codec.open(path), verify=True)):
    try:
        run()
    except codec.CodecError:
        pass
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_every_entry_point_raises_a_codec_error_in_bounded_memory(path):
    """load_file, decode, open + verify + get (+ levels), iter_stream, the dump's walk and summary:
    only CodecErrors escape, and the resident memory grows by less than 512 MiB (a child process,
    so that the peak is this file's)."""
    proc = subprocess.run([sys.executable, "-c", ENTRY_POINTS, path], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) < 512, f"resident memory grew by {proc.stdout.split()[-1]} MiB"


@pytest.mark.parametrize("name", [n for n in EXPECTED if n.startswith("quant-zp")])
def test_zero_point_files_decode_to_their_dequantized_levels(name):
    with codec.open(os.path.join(HERE, name + ".nnc")) as r:
        for layer in r:
            levels, eff = r.get(layer, levels=True)
            assert np.array_equal(r.get(layer), quant.dequantize(levels, eff).astype(np.float32))
