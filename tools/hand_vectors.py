"""Golden vectors built field by field, which the writer never produces (run through make_vectors.py):

* ``009-extensions``: the extension points a reader must step over (section 11): a newer minor
  version with fields appended to the network header and a layer header, a metadata value of an
  unknown type, an ancillary unit, a reserved layer kind.
* ``011-levels-v2-chunks``: format 2.0 level coding with 16 and 32 states on small layers and
  several chunks per layer (the reference encoder's choices for large layers, made here on small
  ones by lowering its thresholds, so the file stays small; not re-encoded).
* ``reject/rNNN-*``: files a reader must refuse. Each JSON names the rule, the error class and the
  message of ``codec.load_file`` (and the class ``codec.iter_stream`` raises). Checksums are valid
  unless the rule is about them, so each file reaches the rule it breaks.

Like every vector, a file that exists is never rewritten. The cases written while the format was
1.x (r001..r025) are built as 1.x files here too (``V1``), as they were then.
"""

from __future__ import annotations

import io
import json
import os
import struct

import numpy as np
import zstandard

import codec
import codec.masks  # noqa: F401
from codec import _backend, quant
from codec import levels as lc
from codec.format.constants import MAGIC, UnitType
from codec.format.metadata import write_metadata_unit_payload
from codec.levels import encode_levels
from codec.modes.ternary import encode_payload as ternary_payload
from tests.helpers import assemble, layer_body, raw_layer


def _bf_header(*, minor: int, metadata_body: bytes, layer_count: int, extension: bytes = b"") -> bytes:
    w = _backend.BitWriter()
    w.u32le(0)  # an empty global qp_set
    w.b(metadata_body)
    w.b(extension)
    body = w.getvalue()
    head = _backend.BitWriter()
    head.b(MAGIC)
    head.u8(1)
    head.u8(minor)
    head.u32le(20 + len(body) + 4)
    head.u32le(layer_count)
    head.u16le(0)
    head.b(body)
    data = head.getvalue()
    return data + _backend.crc32c(data).to_bytes(4, "little")


def extensions_vector() -> tuple[bytes, dict]:
    meta = _backend.BitWriter()
    meta.u32le(2)
    meta.st("known")
    meta.u8(3)
    meta.u32le(3)
    meta.b(b"yes")
    meta.st("future")
    meta.u8(77)  # a value_type of a later minor version: skipped, its key dropped
    meta.u32le(3)
    meta.b(b"\x01\x02\x03")
    header = _bf_header(minor=2, metadata_body=meta.getvalue(), layer_count=2, extension=b"\xaa\xbb")
    a = np.array([1.0, 2.0, 3.0], np.float32)
    b = np.array([[-1, 0], [5, 127]], np.int8)
    first = layer_body(index=0, name="reserved.kind", kind=9, shape=a.shape, dtype=2) + b"\x01\x02\x03"
    units = [(UnitType.LAYER, first, a.tobytes(), "reserved.kind"),
             (0x80, b"hello", b"ancillary payload"),
             raw_layer(b, index=1, name="after.ancillary")]
    data = assemble(units, header=header)
    doc = {
        "description": "hand-built: format 1.2 (a newer minor) with extension_bytes in the network header and "
                       "a layer header, a metadata value of unknown value_type 77 (skipped, its key dropped), "
                       "an ancillary unit 0x80 between the layers, and reserved layer_kind 9 (read as other)",
        "hand_built": True,
        "format_version": "1.2",
        "zstd_version": zstandard.ZSTD_VERSION,
        "file_bytes": len(data),
        "metadata": {"known": {"type": "str", "value": "yes"}},
        "layers": [
            {"name": "reserved.kind", "kind": "other", "dtype": "float32", "shape": [3], "mode": "raw",
             "data_hex": a.tobytes().hex()},
            {"name": "after.ancillary", "kind": "weight", "dtype": "int8", "shape": [2, 2], "mode": "raw",
             "data_hex": b.tobytes().hex()},
        ],
    }
    return data, doc


# ---------------------------------------------------------------------------------------------
# reject vectors
# ---------------------------------------------------------------------------------------------
def _layer(data: bytes, name: str) -> tuple[bytes, bytearray]:
    """The layer_header() body and the payload of a layer of a written file."""
    with codec.open(data) as r:
        h = r.header(name)
    body = data[h.unit_offset + 20:h.unit_offset + h.unit_header_size - 4]
    return body, bytearray(data[h.payload_offset:h.payload_offset + h.payload_size])


#: the format of the reject cases written while it was 1.x
V1 = (1, 1)


def _one(body, payload, name="w", version=V1) -> bytes:
    return assemble([(UnitType.LAYER, body, bytes(payload), name)], version=version)


def _mutated(data: bytes, name: str, change) -> bytes:
    body, payload = _layer(data, name)
    change(payload)
    with codec.open(data) as r:
        version = r.version
    return _one(body, payload, name, version)


def _base() -> bytes:
    return assemble([raw_layer(np.arange(4, dtype=np.float32))], version=V1)


_ONE_ALPHA = bytes([255]) + (1).to_bytes(4, "little") + np.float64(1.0).tobytes()


def _set(offset: int, value: int):
    def change(payload):
        payload[offset] = value
    return change


def reject_cases():
    """(name, the rule broken, bitstream)."""
    base = _base()
    with codec.open(base) as r:
        h = r.header("w")

    def flip(data, at, value=None):
        out = bytearray(data)
        out[at] = out[at] ^ 1 if value is None else value
        return bytes(out)

    yield "r001-bad-magic", "4: nnc_magic must be 89 4E 4E 43 0D 0A 1A 0A", flip(base, 3, ord("X"))
    yield "r002-unknown-major", "11: a reader rejects another version_major", flip(base, 8, 2)
    yield "r003-network-header-crc", "3: network_header_crc32c covers the header", flip(base, 14)
    yield "r004-reserved-critical-unit", "5.1: a reserved critical unit type is rejected, on the random-access " \
        "path too", assemble([raw_layer(np.ones(2, np.float32), index=0, name="a"), (0x05, b"", b"xx"),
                              raw_layer(np.ones(2, np.float32), index=1, name="b")], version=V1)
    yield "r005-nonzero-padding", "5: unit_padding bytes are zero", \
        flip(base, h.unit_offset + h.unit_header_size, 1)
    yield "r006-payload-crc", "3: unit_payload_crc32c covers the payload", flip(base, h.payload_offset)
    yield "r007-bytes-after-trailer", "9: the trailer ends the bitstream", base + b"\x00"
    yield "r008-bool-byte-2", "5.4: a bool element is 0 or 1", \
        _one(layer_body(shape=(3,), dtype=13, mode=0), b"\x01\x02\x00")
    yield "r009-zstd-content-size", "6.2: the frame's content size is N times the element size", \
        _one(layer_body(shape=(4,), dtype=2, mode=1), zstandard.ZstdCompressor().compress(bytes(8)))
    yield "r010-reserved-dtype", "5.4: a reserved dtype parses but does not decode (UnsupportedError)", \
        _one(layer_body(shape=(4,), dtype=32, mode=0), bytes(4))
    yield "r011-unknown-coding-mode", "5.6: an unknown coding_mode does not decode (UnsupportedError)", \
        _one(layer_body(shape=(4,), dtype=2, mode=77), bytes(16))
    trits = ternary_payload(np.array([1, -1], np.int8), 1, 2, "base3")
    yield "r012-ternary-bool", "6.6: a ternary layer is not bool", \
        _one(layer_body(shape=(2,), dtype=13, mode=5, mode_params=_ONE_ALPHA), trits)
    yield "r013-ternary-minus-one-unsigned", "6.6: a trit -1 in an unsigned layer is rejected", \
        _one(layer_body(shape=(2,), dtype=9, mode=5, mode_params=_ONE_ALPHA), trits)
    two = bytes([255]) + (1).to_bytes(4, "little") + np.float64(2.0).tobytes()
    yield "r014-ternary-integer-alpha", "6.6: an integer ternary layer has one alpha of 1.0", \
        _one(layer_body(shape=(2,), dtype=5, mode=5, mode_params=two), trits)
    zeros = encode_levels(np.zeros(4, np.int64), 1, 4, version=1)
    big_step = quant.write_qp_set_data(quant.QuantParams(qp_density=4, qps=(128 * 16,)))
    yield "r015-step-out-of-range", "8.2: floor(qp / 2^d) is in -126..127 (the step is below 2^128)", \
        _one(layer_body(shape=(4,), dtype=2, mode=3, qp=big_step), zeros)
    yield "r016-reserved-qp-flags", "8.1: qp_present_flags bits 0x02 and 0x01 are 0", \
        _one(layer_body(shape=(4,), dtype=2, mode=3, qp=b"\x11" + big_step[1:]), zeros)
    states_at = len(zeros) - 32
    yield "r017-rans-state", "7.3: every lc_rans_state is >= 2^16", \
        _one(layer_body(shape=(4,), dtype=5, mode=2), zeros[:states_at] + bytes(4) + zeros[states_at + 4:])
    big_e = _backend.BitWriter()
    big_e.ue(0, 200)
    big_e.u(4, 0)
    big_e.byte_alignment()
    yield "r018-escape-limit", "7.2: lc_escape_limit is at most 127", \
        _one(layer_body(shape=(1,), dtype=8, mode=2), big_e.getvalue())
    w = np.random.default_rng(5).standard_normal((4, 8)).astype(np.float32)
    nm = codec.encode({"w": np.where(codec.masks.prune_nm(w, 2, 4), w, 0)}, mode="sparse", nm=(2, 4), format_version=V1)
    yield "r019-nm-state", "6.7: us_state is in [C * 2^16, C * 2^32)", \
        _mutated(nm, "w", lambda p: p.__setitem__(slice(16, 24), (1).to_bytes(8, "little")))
    yield "r020-kept-count", "6.7: sp_kept_count is at most the element count", \
        _mutated(nm, "w", lambda p: p.__setitem__(slice(0, 8), (33).to_bytes(8, "little")))
    hybrid = (4).to_bytes(8, "little") + (1).to_bytes(4, "little") + b"\x03" + b"\x00" + bytes(4) + b"\x00" + bytes(16)
    yield "r021-hybrid-rank-1", "6.7.4: a hybrid mask needs layer_rank >= 2", \
        _one(layer_body(shape=(4,), dtype=2, mode=6), hybrid)
    flag = codec.encode({"w": np.array([1, 0, -1, 0, 0, 1], np.int8)}, mode="ternary", scheme="flag", format_version=V1)
    yield "r022-flag-levels", "6.6.2: tn_flag_levels is at most 15", _mutated(flag, "w", _set(1, 16))
    base3 = codec.encode({"w": np.array([1, 0, -1, 0, 0, 1], np.int8)}, mode="ternary", scheme="base3",
                         format_version=V1)
    yield "r023-base3-digit", "6.6.3: a base-3 byte is at most 242", _mutated(base3, "w", _set(1, 250))
    planes = codec.encode({"w": np.linspace(-1, 1, 64, dtype=np.float32)}, mode="floatplanes", format_version=V1)
    _, payload = _layer(planes, "w")
    yield "r024-plane-mode", "6.5: fp_plane_mode is 0 or 1", \
        _mutated(planes, "w", _set(4 + int.from_bytes(payload[:4], "little"), 7))
    yield "r025-duplicate-names", "5.2: layer names are unique", \
        assemble([raw_layer(np.ones(1, np.float32), index=0, name="w"), raw_layer(np.ones(1, np.float32), index=1,
                                                                                name="w")], version=V1)
    # format 2.0
    yield "r026-unknown-major", "11: a reader rejects a version_major it does not know (3)", \
        flip(assemble([raw_layer(np.arange(4, dtype=np.float32))]), 8, 3)
    yield "r027-lc-log2-states", "7.4: lc_log2_states is at most 5", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_v2(log2_states=6), version=(2, 0))
    yield "r028-lc-model", "7.4: a reserved lc_model does not decode (UnsupportedError)", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_v2(model=1), version=(2, 0))
    yield "r029-chunk-rows", "7.4: the chunks before the last leave it at least one row", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_v2(chunks=[(2, 0, 0)]), version=(2, 0))
    yield "r030-chunk-words", "7.4: a chunk has at most one rANS word per level", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_v2(chunks=[(1, 0, 9)]), version=(2, 0))
    yield "r031-chunk-escapes", "7.4: the chunks before the last take at most the escapes listed", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_v2(chunks=[(1, 1, 0)]), version=(2, 0))
    yield "r032-chunk-state", "7.4: every chunk's lc_rans_state is >= 2^16", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_v2(chunks=[(1, 0, 0)], bad_state=(1, 0)),
             version=(2, 0))
    # format 2.1: lc_model 1 (spec 7.5)
    yield "r033-adaptive-classes", "7.5: an lc_model 1 payload has one class (lc_num_classes_minus1 = 0)", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_adaptive(classes_minus1=1), version=(2, 1))
    yield "r034-adaptive-states", "7.5: an lc_model 1 payload has one state (lc_log2_states = 0)", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_adaptive(log2_states=1), version=(2, 1))
    yield "r035-lc-model-2", "7.4: lc_model 2 is reserved in format 2.1 (UnsupportedError)", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_adaptive(model=2), version=(2, 1))
    yield "r036-adaptive-magnitude", "7.5: a level's magnitude is at most lc_escape_limit + 1", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_adaptive(header_e=4), version=(2, 1))
    yield "r037-adaptive-chunk-words", "7.5: a chunk of lc_model 1 has at most 14 rANS words per level", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_adaptive(chunk_words=8 * 14 + 1), version=(2, 1))
    yield "r038-adaptive-escape-sign", "7.5: an escaped level has the sign of its sign bin", \
        _one(layer_body(shape=(2, 8), dtype=5, mode=2), _levels_adaptive(negate_escape=True), version=(2, 1))

    # format 2.2: dq (spec 6.8, 8.5)
    uniform = quant.write_qp_set_data(quant.QuantParams(method="uniform", qp_density=2, qps=(-20,)))
    zp = quant.write_qp_set_data(quant.QuantParams(method="uniform_zp", qp_density=2, qps=(-20,), zero_points=(3,)))
    levels = lc.encode_levels(np.arange(-8, 8, dtype=np.int64), 2, 8)
    yield "r039-dq-trellis", "6.8: dq_trellis values other than 0 are reserved (UnsupportedError)", \
        _one(layer_body(shape=(2, 8), dtype=2, mode=7, qp=uniform, mode_params=b"\x01"), levels, version=(2, 2))
    yield "r040-dq-method", "6.8: a dq layer's effective quantization method is uniform", \
        _one(layer_body(shape=(2, 8), dtype=2, mode=7, qp=zp, mode_params=b"\x00"), levels, version=(2, 2))
    big = np.zeros(16, np.int64)
    big[11] = -(2**31)
    yield "r041-dq-level", "8.5: a dq level's magnitude is below 2^31", \
        _one(layer_body(shape=(2, 8), dtype=2, mode=7, qp=uniform, mode_params=b"\x00"),
             lc.encode_levels(big, 2, 8), version=(2, 2))

    # format 2.3: metadata units (spec 5.7)
    layer = raw_layer(np.arange(4, dtype=np.float32))
    yield "r042-metadata-unit-key", "5.7: a metadata unit's key does not repeat a key of the network header", \
        assemble([layer, (UnitType.METADATA, b"", write_metadata_unit_payload({"arch": "cnn"}))],
                 metadata={"arch": "mlp"}, version=(2, 3))
    yield "r043-metadata-unit-tail", "5.7: a metadata unit's payload is one metadata() and nothing after it", \
        assemble([layer, (UnitType.METADATA, b"", write_metadata_unit_payload({"note": "x"}) + b"\x00")],
                 version=(2, 3))
    data = bytearray(assemble([layer, (UnitType.METADATA, b"", write_metadata_unit_payload({"note": "xyz"}))],
                              version=(2, 3)))
    data[data.index(b"xyz")] ^= 0x20
    yield "r044-metadata-unit-crc", "5.7: a metadata unit's payload matches its unit_payload_crc32c", bytes(data)

    # format 2.4: pq (spec 6.9)
    cb = np.array([[0.5, -0.5], [1.0, 2.0], [-1.0, 0.25]], np.float16).tobytes()
    ok_levels = lc.encode_levels(np.array([0, 1, -1, 0, 1, 0, -1, 1], np.int64), 2, 4)
    pq_body = layer_body(shape=(2, 8), dtype=2, mode=8, mode_params=b"\x02\x01\x00")

    def pq_payload(levels, centroids=3, codebook=cb, size=None):
        return (struct.pack("<H", centroids - 1) + codebook + struct.pack("<I", len(levels) if size is None else size)
                + levels)
    yield "r045-pq-index", "6.9: a pq level stands for an index below the stage's centroid count", \
        _one(pq_body, pq_payload(lc.encode_levels(np.array([0, 1, -1, 2, 1, 0, -1, 1], np.int64), 2, 4)),
             version=(2, 4))
    yield "r046-pq-levels-size", "6.9: the last stage's levels payload ends the pq payload", \
        _one(pq_body, pq_payload(ok_levels, size=len(ok_levels) - 1), version=(2, 4))
    yield "r047-pq-dim", "6.9: pq_dim is 1..16", \
        _one(layer_body(shape=(2, 8), dtype=2, mode=8, mode_params=b"\x00\x01\x00"), pq_payload(ok_levels),
             version=(2, 4))
    # format 2.5: delta (spec 6.10, 10.1)
    raw_levels = np.arange(16, dtype=np.float32).tobytes()
    yield "r049-delta-outside-delta-file", "6.10: coding mode 9 appears only in a delta bitstream (codec.delta.base)", \
        _one(layer_body(shape=(2, 8), dtype=2, mode=9, mode_params=b"\x00"), raw_levels, version=(2, 5))
    yield "r048-pq-codebook-dtype", "6.9: pq_codebook_dtype values 2..255 are reserved (UnsupportedError)", \
        _one(layer_body(shape=(2, 8), dtype=2, mode=8, mode_params=b"\x02\x01\x02"), pq_payload(ok_levels),
             version=(2, 4))


def _levels_adaptive(*, classes_minus1: int = 0, log2_states: int = 0, model: int = 1, header_e=None,
                     chunk_words=None, negate_escape: bool = False) -> bytes:
    """An lc_model 1 levels_payload() of 2 x 8 levels (E = 12, k0 = 1, one escape of 300; two chunks
    of one row when ``chunk_words`` is given, else one) with the given header fields changed."""
    from codec.kernels import adaptive

    q = np.array([[0, 1, -2, 5, 12, -9, 0, 300], [3, 0, 0, -1, 7, 2, -12, 1]], np.int64)
    E, k0 = 12, 1
    rows = [q] if chunk_words is None else [q[:1], q[1:]]
    coded = [adaptive.encode(adaptive.clip_levels(r, E), 8, E, k0) for r in rows]
    w = _backend.BitWriter()
    w.ue(0, E if header_e is None else header_e)
    w.u(4, classes_minus1)
    w.u(3, log2_states)
    w.u(2, model)
    w.u(3, k0)
    w.ue(0, 1)  # one escape
    w.u(1, 1 if negate_escape else 0)
    w.ue(0, 300 - E - 1)
    w.ue(0, len(rows) - 1)
    if chunk_words is not None:
        w.ue(0, 0)  # one row
        w.ue(0, 1)  # the escape
        w.ue(0, chunk_words)
    w.byte_alignment()
    out = bytearray(w.getvalue())
    for _, state, words in coded:
        out += int(state).to_bytes(4, "little") + words
    return bytes(out)


def _levels_v2(*, log2_states: int = 0, model: int = 0, chunks=(), bad_state=None) -> bytes:
    """A levels_payload() of version 2 for 2 x 8 zero levels (E = 0, one class whose table is the
    one symbol 0: no words), with the given header fields; ``chunks``: (rows, escapes, words) of
    every chunk but the last; ``bad_state``: (chunk, state) set below 2^16."""
    w = _backend.BitWriter()
    w.ue(0, 0)  # lc_escape_limit
    w.u(4, 0)  # one class
    w.u(3, log2_states)
    w.u(2, model)
    lc.write_table(w, [1, 0])
    w.ue(0, 0)  # no escapes
    w.ue(0, len(chunks))
    for rows, escapes, words in chunks:
        w.ue(0, rows - 1)
        w.ue(0, escapes)
        w.ue(0, words)
    w.byte_alignment()
    states = 1 << min(log2_states, 5)
    out = bytearray(w.getvalue())
    for c in range(len(chunks) + 1):
        for j in range(states):
            out += (1 if bad_state == (c, j) else 1 << 16).to_bytes(4, "little")
    return bytes(out)


def chunks_vector() -> tuple[bytes, dict]:
    """011-levels-v2-chunks: 16 and 32 states and several chunks per layer on small layers."""
    rng = np.random.default_rng(23)
    q = np.clip(np.rint(rng.laplace(0, 3, (40, 100))), -60, 60).astype(np.int16)
    q[rng.random(q.shape) < 0.01] = 3000  # escapes in several chunks
    w = (rng.standard_normal((24, 70)) * 0.05).astype(np.float32)
    trits = np.where(rng.random((30, 50)) < 0.6, 0, rng.choice([-1, 1], (30, 50))).astype(np.int8)
    layers = [("levels.s32", q, "entropy", {}), ("levels.s16", q[:, :64].copy(), "entropy", {}),
              ("weights.s32", w, "quantized", {"bits": 6, "granularity": "channel"}),
              ("trits.s16", trits, "ternary", {"scheme": "entropy"})]
    saved = lc.lc_plan_states, lc.LC_CHUNK_ELEMENTS
    try:
        lc.lc_plan_states = lambda n: 32 if n >= 2000 else 16
        lc.LC_CHUNK_ELEMENTS = 700
        buf = io.BytesIO()
        with codec.Writer(buf) as writer:
            for name, a, mode, params in layers:
                writer.add_layer(name, a, mode=mode, **params)
        data = buf.getvalue()
    finally:
        lc.lc_plan_states, lc.LC_CHUNK_ELEMENTS = saved
    decoded = codec.decode(data)
    doc = {
        "description": "hand-built (the reference encoder with its thresholds lowered): format 2.0 level coding "
                       "with 32 and 16 interleaved states on small layers and 4 to 10 chunks per layer; escapes in "
                       "several chunks; rows whose length is not a multiple of the state count; a quantized layer "
                       "(per-channel steps, dequantized in the decoding loop) and entropy-coded trits",
        "hand_built": True,
        "format_version": "2.0",
        "zstd_version": zstandard.ZSTD_VERSION,
        "file_bytes": len(data),
        "metadata": {},
        "layers": [{"name": name, "kind": codec.writer.guess_kind(name, a).name.lower(), "dtype": a.dtype.name,
                    "shape": list(a.shape), "mode": mode, "params": params,
                    "data_hex": np.ascontiguousarray(decoded[name]).astype(decoded[name].dtype.newbyteorder("<"))
                    .tobytes().hex()} for name, a, mode, params in layers],
    }
    with codec.open(data) as r:
        doc["layers"][2]["levels"] = r.get("weights.s32", levels=True)[0].reshape(-1).tolist()
        doc["chunks"] = {}
        for name, a, mode, _ in layers:
            h = r.header(name)
            payload = data[h.payload_offset:h.payload_offset + h.payload_size][1 if mode == "ternary" else 0:]
            p = lc.read_levels_payload(_backend.bit_reader(payload, 0, "p"), *lc.level_grid(a.shape))
            doc["chunks"][name] = {"states": len(p.states), "chunk_rows": [c.row0 for c in p.chunks]}
    return data, doc


def reject_doc(name: str, rule: str, data: bytes) -> dict:
    try:
        codec.decode(data)
    except codec.CodecError as exc:
        error, message = type(exc).__name__, str(exc)
    else:
        raise AssertionError(f"{name}: the reader accepts it")
    try:
        for _ in codec.iter_stream(io.BytesIO(data)):
            pass
    except codec.CodecError as exc:
        stream = type(exc).__name__
    else:
        raise AssertionError(f"{name}: the sequential reader accepts it")
    return {"description": rule, "file_bytes": len(data), "error": error, "message": message, "stream_error": stream}


def _write(path_stem: str, data: bytes, doc: dict) -> None:
    if os.path.exists(path_stem + ".nnc") or os.path.exists(path_stem + ".json"):
        print(f"keep    {os.path.basename(path_stem)} (exists; vectors are append-only)")
        return
    with open(path_stem + ".nnc", "wb") as f:
        f.write(data)
    with open(path_stem + ".json", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print(f"wrote   {os.path.basename(path_stem)} ({len(data)} bytes)")


def write_hand_built(vector_dir: str) -> None:
    data, doc = extensions_vector()
    _write(os.path.join(vector_dir, "009-extensions"), data, doc)
    if not os.path.exists(os.path.join(vector_dir, "011-levels-v2-chunks.nnc")):
        data, doc = chunks_vector()
        _write(os.path.join(vector_dir, "011-levels-v2-chunks"), data, doc)
    reject_dir = os.path.join(vector_dir, "reject")
    os.makedirs(reject_dir, exist_ok=True)
    for name, rule, data in reject_cases():
        stem = os.path.join(reject_dir, name)
        if os.path.exists(stem + ".nnc"):
            print(f"keep    reject/{name} (exists; vectors are append-only)")
        else:
            _write(stem, data, reject_doc(name, rule, data))
