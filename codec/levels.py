"""Level coding: entropy coding of integer levels with interleaved static rANS (spec section 7).

A layer's levels are seen as a (rows x cols) array: rows = shape[0] for rank >= 2, else one row.
Rows are grouped into K <= 16 *row classes* by the mean magnitude of their levels; each class has
its own probability table, so rows of different scale are coded with their own statistics (the
per-row statistics of trained weights sit several percent below the layer's order-0 entropy).
Tables are sent as quantized log-probabilities (quarter-bit steps, delta Exp-Golomb coded), which
costs ~0.01% versus exact probabilities and a few dozen bytes per table. Levels whose magnitude
exceeds the alphabet's limit E are sent in an escape list.

The encoder tries K = 1, 2, 4, 8, 16 and keeps the smallest payload. :func:`read_levels_payload`
is the one reader of the syntax; decoding and ``codec-dump --fields`` both use it. The rANS loops
are the kernel pair ``codec.kernels.rans`` / ``codec._fast.rans``.
"""

from __future__ import annotations

import io
import math
import os
import struct
import threading
from typing import NamedTuple

import numpy as np

from . import _backend
from .errors import CodecError, EncodeError, FormatError, TruncatedError, UnsupportedError
from .kernels import raise_status
from .kernels import adaptive as adaptive_reference
from .kernels import rans as rans_reference
from .kernels.rans import (
    LC_OUT_AFFINE,
    LC_OUT_CODEBOOK,
    LC_OUT_DQ,
    LC_OUT_I16,
    LC_OUT_I32,
    LC_OUT_I64,
    LC_PROB_BITS,
    LC_LOG_WEIGHTS,
    LC_MAX_CODE,
    LC_STATES,
)
from .lazy import PieceArray
from .spool import Spool

__all__ = ["encode_levels", "write_levels", "code_levels", "set_adaptive", "set_decode_threads", "LevelSource", "ArrayLevels", "decode_levels", "decode_levels_fitting", "decode_level_rows", "read_levels_payload", "level_grid", "order0_entropy_bits",
           "LC_MAX_ESCAPE_LIMIT", "LC_MAX_CLASSES", "LC_MAX_CODE", "LC_LOG_WEIGHTS", "LC_OUT_I64", "LC_OUT_AFFINE",
           "LC_OUT_CODEBOOK", "LC_OUT_I32", "LC_OUT_I16", "LC_OUT_DQ"]

#: Largest lc_escape_limit E.
LC_MAX_ESCAPE_LIMIT = 127
#: Most row classes K (lc_num_classes_minus1 is u(4)).
LC_MAX_CLASSES = rans_reference.LC_MAX_CLASSES
#: lc_model of a version 2 payload: static tables per row class (spec 7.4), or adaptive binary
#: contexts (spec 7.5); 2 and 3 are reserved.
LC_MODEL_STATIC = 0
LC_MODEL_ADAPTIVE = 1
#: Most rANS words per level of an lc_model 1 chunk (at most one word per bin, at most 14 bins per
#: level: sig, sign, 2 gt flags, 8 prefix bins, msb, bypass bits).
LA_MAX_WORDS_PER_LEVEL = adaptive_reference.LA_MAX_BINS
#: The reference encoder takes lc_model 1 for a layer when it makes the payload at least this much
#: smaller than lc_model 0: the adaptive decoder is several times slower per level, so a small gain
#: is not worth it.
LA_MIN_GAIN = 0.01
#: About this many levels (whole rows spread over the layer) are what the reference encoder judges
#: lc_model 1 and lc_eg_order on.
LA_SAMPLE_LEVELS = 1 << 16
#: ... in up to this many groups of rows: neighbouring rows are alike (an embedding's vocabulary order),
#: so few large groups misjudge a layer (MiniLM's embedding at step 2^-4: 1.8% smaller by 16 groups, in
#: fact 0.6% larger; 0.2% larger by 170 one-row groups)
LA_SAMPLE_GROUPS = 256


def level_grid(shape: tuple[int, ...]) -> tuple[int, int]:
    """Return (rows, cols) of the level array of a tensor of ``shape`` (spec 7.1)."""
    n = math.prod(shape)
    if len(shape) >= 2:
        return shape[0], (n // shape[0] if shape[0] else 0)
    return 1, n


def order0_entropy_bits(levels: np.ndarray) -> float:
    """Return the order-0 entropy of ``levels`` in bits (the whole array, not per element)."""
    _, counts = np.unique(levels, return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------

def freq_rows_from_codes(codes) -> np.ndarray:
    """The frequencies (spec 7.2) of every row of a K x alphabet array of codes (int64)."""
    return _backend.rans.freq_rows_from_codes(codes)


def freqs_from_codes(codes) -> list[int]:
    """Turn quarter-bit log codes (0 = absent) into frequencies summing to 2^14 (spec 7.2)."""
    return freq_rows_from_codes(np.asarray(codes, dtype=np.int64).reshape(1, -1))[0].tolist()


def codes_from_counts(counts: np.ndarray) -> list[int]:
    """Quarter-bit log code of each symbol's empirical probability (0 for absent symbols):
    ``min(64, max(1, 1 + round(-4 log2(n / total))))``, rounding half to even."""
    c = np.asarray(counts, dtype=np.int64)
    total = int(c.sum())
    present = c > 0
    x = np.zeros(c.size)
    x[present] = -4.0 * np.log2(c[present] / total)
    # numpy's log2 may differ from math.log2 in the last bit: the values next to a rounding tie
    # are recomputed with math.log2, so the codes are exactly those of the scalar formula
    near = np.flatnonzero(present & (np.abs(x - np.floor(x) - 0.5) < 1e-6))
    for i in near.tolist():
        x[i] = -4.0 * math.log2(int(c[i]) / total)
    return np.where(present, np.clip(1 + np.rint(x), 1, LC_MAX_CODE), 0).astype(np.int64).tolist()


def _ue_bits(values: np.ndarray) -> np.ndarray:
    """Bit lengths of ``ue(0)`` codes: 2 floor(log2(v + 1)) + 1."""
    v = np.asarray(values, dtype=np.int64) + 1
    return 2 * (np.frexp(v.astype(np.float64))[1] - 1) + 1  # exact for v < 2^53


def write_table(w, codes: list[int]) -> None:
    """Write ``lc_table()``: the present range, then code deltas."""
    present = [s for s, c in enumerate(codes) if c]
    if not present:
        w.ue(0, 0)
        return
    lo, hi = present[0], present[-1]
    w.ue(0, hi - lo + 1)
    w.ue(0, lo)
    prev = 0
    for s in range(lo, hi + 1):
        w.se(0, codes[s] - prev)
        prev = codes[s]


def read_table(r, alphabet: int, name: str) -> np.ndarray:
    """Read ``lc_table()`` element by element: the code of every symbol of the alphabet (0 =
    absent), as int64. Decoding reads the tables with the ``read_tables`` kernel and comes here only
    to trace them or to name what is wrong."""
    count = r.ue(0, f"{name}.lc_num_symbols")
    codes = np.zeros(alphabet, dtype=np.int64)
    if count == 0:
        return codes
    lo = r.ue(0, f"{name}.lc_sym_lo")
    if lo + count > alphabet:
        raise r.error(f"symbols {lo}..{lo + count - 1} exceed the alphabet of {alphabet}", f"{name}.lc_sym_lo")
    prev = 0
    for s in range(lo, lo + count):
        code = prev + r.se(0, f"{name}.lc_code_delta[{s}]")
        if not 0 <= code <= LC_MAX_CODE:
            raise r.error(f"code {code} outside 0..{LC_MAX_CODE}", f"{name}.lc_code_delta")
        codes[s] = code
        prev = code
    if codes[lo] == 0 or codes[lo + count - 1] == 0:
        raise r.error("the first and last symbol of a table must be present", name)
    return codes


def _table_bits(codes: list[int]) -> int:
    """The bit length of ``write_table(codes)``, computed from the code lengths."""
    c = np.asarray(codes, dtype=np.int64)
    present = np.flatnonzero(c)
    if present.size == 0:
        return 1
    lo, hi = int(present[0]), int(present[-1])
    deltas = np.diff(c[lo:hi + 1], prepend=0)
    se_codes = np.where(deltas > 0, 2 * deltas - 1, -2 * deltas)  # se(v) is ue(2v - 1) or ue(-2v)
    return int(_ue_bits(np.array([hi - lo + 1, lo])).sum() + _ue_bits(se_codes).sum())


def _coding_bits(counts: np.ndarray, freqs: list[int]) -> float:
    f = np.asarray(freqs, dtype=np.float64)
    nz = counts > 0
    return float((counts[nz] * (LC_PROB_BITS - np.log2(f[nz]))).sum())


# ---------------------------------------------------------------------------------------------
# encoder
# ---------------------------------------------------------------------------------------------
#: Elements per piece: the encoder's working memory is a few bytes per element of one piece.
PIECE_ELEMENTS = 1 << 18
#: Row groups of the class planner: each K in 1, 2, 4, 8, 16 merges whole groups.
_GROUPS = 16


class LevelSource:
    """The integer levels of a (rows x cols) level grid, made in *pieces*: consecutive element
    ranges in C order. The encoder asks for each piece up to three times (statistics, counts,
    coding), so a layer is coded in memory proportional to one piece, not to the layer; a source
    may compute its levels on demand (quantization) instead of holding them."""

    def __init__(self, rows: int, cols: int):
        self.rows, self.cols = rows, cols

    def pieces(self) -> list[tuple[int, int]]:
        """(start, stop) element ranges covering 0..rows*cols in order (default: PIECE_ELEMENTS)."""
        n = self.rows * self.cols
        return [(a, min(n, a + PIECE_ELEMENTS)) for a in range(0, n, PIECE_ELEMENTS)]

    def levels(self, start: int, stop: int) -> np.ndarray:
        """The levels of elements start..stop-1 (any integer dtype)."""
        raise NotImplementedError


class ArrayLevels(LevelSource):
    """Levels held in an array (any shape of rows * cols elements)."""

    def __init__(self, levels, rows: int, cols: int):
        super().__init__(rows, cols)
        self.q = levels if isinstance(levels, PieceArray) else np.asarray(levels).reshape(-1)
        if self.q.size != rows * cols:
            raise EncodeError(f"{self.q.size} levels do not fill {rows} x {cols}")

    def levels(self, start: int, stop: int) -> np.ndarray:
        return self.q[start:stop]


def _as_levels(q: np.ndarray) -> np.ndarray:
    """A piece's levels in a signed type that holds +-128 (for the clipping below)."""
    if q.dtype in (np.int16, np.int32, np.int64):
        return q
    if q.dtype == np.int8:
        return q.astype(np.int16)
    if q.dtype.kind == "u" and q.size and int(q.max()) >= 1 << 63:
        raise EncodeError("levels must fit int64")
    if q.dtype.kind not in "uib":
        raise EncodeError(f"levels must be integers, got {q.dtype}")
    return q.astype(np.int64)


def _symbols(q: np.ndarray, E: int) -> np.ndarray:
    """Each level's symbol: level + E, or the escape symbol 2E + 1 (spec 7.1)."""
    if q.size and -E <= int(q.min()) and int(q.max()) <= E:
        return (q + E).astype(np.uint8)  # no escape: no clip (twice the time on int64)
    s = np.clip(q, -(E + 1), E + 1)
    s += E
    s = s.astype(np.uint8)  # a negative escape (-1 here) wraps to 255: the escape check runs on bytes
    if 2 * E + 1 != 255:
        s[s == 255] = 2 * E + 1
    return s


def _row_spans(start: int, stop: int, cols: int) -> tuple[int, np.ndarray]:
    """The first row a piece touches and how many of its elements lie in each row it touches."""
    r0, r1 = start // cols, (stop - 1) // cols
    edges = np.arange(r0, r1 + 2, dtype=np.int64) * cols
    edges[0], edges[-1] = start, stop
    return r0, np.diff(edges)


def _plan_classes(group: np.ndarray, hist: np.ndarray, E: int, max_classes: int):
    """Choose the number of row classes and each row's class (spec 7.1: rows sorted by the mean
    magnitude of their levels, cut into K equal parts); return (K, row_class, codes, bits).

    ``group`` is each row's part for K = 16 and ``hist`` each part's symbol counts: the parts of
    K = 1, 2, 4 and 8 are unions of those (floor(p * K / rows) = floor(p * 16 / rows) // (16 / K)).
    Every candidate table (31 for K up to 16) is planned at once, as rows of one array: a small
    layer's cost is this planning, not its levels.
    """
    rows = group.size
    ks = []
    k = 1
    while k <= min(max_classes, max(1, rows)):
        ks.append(k)
        k *= 2
    counts = np.concatenate([hist.reshape(k, _GROUPS // k, -1).sum(axis=1) for k in ks])
    codes = codes_from_count_rows(counts)
    freqs = freq_rows_from_codes(codes)
    per_table = _table_bits_rows(codes) + _coding_bits_rows(counts, freqs)
    best = None
    first = 0
    for k in ks:
        bits = rows * (k - 1).bit_length() + float(per_table[first:first + k].sum())
        if best is None or bits < best[0]:
            best = (bits, k, first)
        first += k
    bits, k, first = best
    row_class = (group // (_GROUPS // k)).astype(np.uint8)
    return k, row_class, codes[first:first + k].tolist(), bits


def codes_from_count_rows(counts: np.ndarray) -> np.ndarray:
    """:func:`codes_from_counts` of every row of a 2-D array of counts (int64 codes)."""
    c = np.asarray(counts, dtype=np.int64)
    total = c.sum(axis=1, keepdims=True)
    present = c > 0
    x = np.zeros(c.shape)
    with np.errstate(divide="ignore"):
        x[present] = -4.0 * np.log2((c / np.maximum(total, 1))[present])
    # the values next to a rounding tie are recomputed with math.log2 (see codes_from_counts)
    near = np.argwhere(present & (np.abs(x - np.floor(x) - 0.5) < 1e-6))
    for r, i in near.tolist():
        x[r, i] = -4.0 * math.log2(int(c[r, i]) / int(total[r, 0]))
    return np.where(present, np.clip(1 + np.rint(x), 1, LC_MAX_CODE), 0).astype(np.int64)


def _table_bits_rows(codes: np.ndarray) -> np.ndarray:
    """:func:`_table_bits` of every row of a 2-D array of codes."""
    present = codes > 0
    any_present = present.any(axis=1)
    cols = np.arange(codes.shape[1])
    lo = np.where(any_present, np.argmax(present, axis=1), 0)
    hi = np.where(any_present, codes.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1), 0)
    deltas = np.diff(codes, axis=1, prepend=0)  # code[lo - 1] is 0: the first delta is code[lo]
    se_codes = np.where(deltas > 0, 2 * deltas - 1, -2 * deltas)
    inside = (cols >= lo[:, None]) & (cols <= hi[:, None])
    bits = (_ue_bits(se_codes) * inside).sum(axis=1) + _ue_bits(hi - lo + 1) + _ue_bits(lo)
    return np.where(any_present, bits, 1)


def _coding_bits_rows(counts: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """:func:`_coding_bits` of every row: the ideal code length of the counts with the frequencies."""
    used = counts > 0
    logs = np.log2(np.where(used, freqs, 1).astype(np.float64))
    return np.where(used, counts * (LC_PROB_BITS - logs), 0.0).sum(axis=1)


class LevelsPayloadParts(NamedTuple):
    """A coded ``levels_payload()`` waiting to be written: its size is known before its bytes.
    ``head`` is written first; then, for each chunk (one in a version 1 payload), its states
    ``chunk_heads[c]`` (empty in version 1, where they end ``head``) and its words: blocks
    ``chunk_blocks[c]`` of the one spool ``words``, which holds every chunk's words last piece
    first (one memory budget and at most one temporary file for the layer, however many chunks)."""

    head: bytes
    chunk_heads: list
    words: Spool
    chunk_blocks: list  # (first block, end block) of each chunk in ``words``

    @property
    def size(self) -> int:
        return len(self.head) + sum(len(h) for h in self.chunk_heads) + self.words.size

    def write_to(self, sink) -> None:
        try:
            sink.write(self.head)
            for head, (first, end) in zip(self.chunk_heads, self.chunk_blocks):
                if head:
                    sink.write(head)
                self.words.write_blocks(sink, first, end, reverse=True)
        finally:
            self.words.close()

    def close(self) -> None:
        self.words.close()


def write_levels(source: LevelSource, sink, *, max_classes: int = LC_MAX_CLASSES, version: int = 3,
                 adaptive: str | None = None) -> int:
    """Write ``levels_payload()`` of the source's levels to ``sink`` (anything with ``write``) in
    the syntax of ``version`` (1: spec 7.2, in files of version 1.x; 2: spec 7.4, in 2.0; 3: spec 7.4
    with lc_model 1 of 7.5 allowed, in 2.1 and later); return
    its size. ``adaptive``: see :func:`code_levels`."""
    parts = code_levels(source, max_classes=max_classes, version=version, adaptive=adaptive)
    parts.write_to(sink)
    return parts.size


def lc_plan_states(n: int) -> int:
    """The reference encoder's number of interleaved states for a layer of n levels (spec 7.4 lets
    it be 1, 2, 4, 8, 16 or 32): 32 for large layers (the AVX2 decoder's width), fewer for small
    ones, where each state's ~2 bytes of final value would show."""
    for limit, states in ((1 << 17, 32), (1 << 15, 16), (1 << 12, 8), (1 << 10, 4)):
        if n >= limit:
            return states
    return 2


#: Levels per chunk the reference encoder aims at (whole rows): chunks decode on separate threads.
LC_CHUNK_ELEMENTS = 1 << 20


def lc_plan_chunks(rows: int, cols: int) -> list[int]:
    """The reference encoder's chunks: the first row of each (spec 7.4), about LC_CHUNK_ELEMENTS
    levels each, at least one row each."""
    if rows * cols == 0:
        return [0]
    per = max(1, -(-LC_CHUNK_ELEMENTS // cols))
    count = -(-rows // per)
    per = -(-rows // count)  # even out the chunks
    return list(range(0, rows, per))


def code_levels(source: LevelSource, *, max_classes: int = LC_MAX_CLASSES, version: int = 3,
                adaptive: str | None = None) -> LevelsPayloadParts:
    """Code the source's levels (``version``: the payload syntax, 1, 2 or 3). Three passes over the
    pieces: escape limit, row magnitudes and escapes; the symbol counts of the row groups; then
    rANS coding, last piece first.

    ``adaptive`` (version 3): ``"auto"`` also codes the layer with adaptive binary contexts
    (lc_model 1, spec 7.5) when a sample says it may pay, and keeps it when it is at least
    LA_MIN_GAIN smaller; ``"never"`` codes static tables only; ``"always"`` adaptive contexts only.
    Default: :func:`set_adaptive`'s setting ("auto" unless changed)."""
    if adaptive is None:
        adaptive = _adaptive
    if version not in (1, 2, 3):
        raise ValueError(f"levels payload version must be 1, 2 or 3, got {version}")
    if adaptive not in ("auto", "never", "always"):
        raise ValueError(f"adaptive must be 'auto', 'never' or 'always', got {adaptive!r}")
    if version < 3:
        adaptive = "never"  # lc_model 1 is defined from format 2.1 on (payload version 3)
    rows, cols = source.rows, source.cols
    n = rows * cols
    pieces = source.pieces() if n else []
    if pieces and ([a for a, _ in pieces] != [0] + [b for _, b in pieces[:-1]] or pieces[-1][1] != n
                   or any(b <= a for a, b in pieces)):
        raise EncodeError("the pieces of a level source must cover its elements in order")
    one = {}

    def piece(k):
        if len(pieces) == 1:  # a small layer: made once
            if 0 not in one:
                one[0] = _as_levels(np.asarray(source.levels(*pieces[0])).reshape(-1))
            return one[0]
        return _as_levels(np.asarray(source.levels(*pieces[k])).reshape(-1))

    # pass 1: the escape limit, each row's magnitude (min(|level|, E + 1), E + 1 <= 128) and the escapes
    top = 0
    magnitude = np.zeros(rows, dtype=np.int64)
    remainder = [0, 0]  # sum and count of min(|level|, 128) - 3 over |level| >= 3: lc_eg_order
    escapes = []
    escape_rows = []  # the row of each escaped level (chunk escape counts)
    for k, (a, b) in enumerate(pieces):
        q = piece(k)
        if q.size != b - a:
            raise EncodeError(f"a level source gave {q.size} levels for elements {a}..{b - 1}")
        hi, lo = int(q.max()), int(q.min())
        top = max(top, hi, -lo)
        r0, span = _row_spans(a, b, cols)
        starts = np.concatenate(([0], np.cumsum(span)[:-1]))
        m = np.abs(q) if -128 <= lo and hi <= 128 else np.abs(np.clip(q, -128, 128))
        magnitude[r0:r0 + span.size] += np.add.reduceat(m, starts, dtype=np.int64)
        if adaptive == "always":
            # sum and count of m - 3 over m >= 3 from m's histogram (m <= 128); "auto" takes them
            # from the symbol counts of pass 2
            counts = np.bincount(m, minlength=129)[3:]
            remainder[0] += int(counts @ np.arange(counts.size))
            remainder[1] += int(counts.sum())
        if hi > LC_MAX_ESCAPE_LIMIT or lo < -LC_MAX_ESCAPE_LIMIT:
            where = (q > LC_MAX_ESCAPE_LIMIT) | (q < -LC_MAX_ESCAPE_LIMIT)
            escapes.append(q[where])  # in their own width
            escape_rows.append((np.flatnonzero(where) + a) // cols)
    E = min(LC_MAX_ESCAPE_LIMIT, top)
    alphabet = 2 * E + 2
    if n and adaptive == "always":
        return _code_adaptive(piece, pieces, rows, cols, E, escapes, escape_rows, remainder)
    if n:
        # pass 2: symbol counts of the 16 row groups (rows in order of mean magnitude)
        order = np.argsort(magnitude / cols, kind="stable")
        group = np.empty(rows, dtype=np.uint8)
        group[order] = (np.arange(rows, dtype=np.int64) * _GROUPS // rows).astype(np.uint8)
        hist = np.zeros((_GROUPS, alphabet), dtype=np.int64)
        for k, (a, b) in enumerate(pieces):
            s = _symbols(piece(k), E)
            if len(pieces) == 1:
                one["symbols"] = s  # pass 3 codes them
            _backend.rans.count_symbols(s, group, a, cols, hist)
        K, row_class, all_codes, _ = _plan_classes(group, hist, E, max_classes)
        if adaptive == "auto":
            # min(|level|, 128) of each symbol (an escape's |level| is >= 128: E = 127 when there are escapes)
            m_of = np.minimum(np.abs(np.arange(alphabet) - E), 128)
            m_of[-1] = 128
            counts = hist.sum(axis=0)
            over = m_of >= 3
            remainder = [int(counts[over] @ (m_of[over] - 3)), int(counts[over].sum())]
    else:
        K, row_class, all_codes = 1, np.zeros(rows, np.uint8), [[0] * alphabet]
    freq = np.array([freqs_from_codes(c) for c in all_codes], dtype=np.uint32).reshape(K, alphabet)
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, axis=1)[:, :-1]
    # pass 3: rANS runs backwards: the last piece first, each piece starting from the states the
    # next one left; in version 2 each chunk of rows is coded on its own (fresh states)
    if version == 1:
        nstates, chunk_rows = LC_STATES, [0]
    else:
        nstates, chunk_rows = lc_plan_states(n), lc_plan_chunks(rows, cols)
    chunk_first = [r * cols for r in chunk_rows]  # first element of each chunk
    nchunks = len(chunk_rows)
    states: list = [None] * nchunks
    spool = Spool()
    first_block: list = [None] * nchunks  # where each chunk's words start in the spool (the last chunk first)
    word_bytes = [0] * nchunks
    for k in range(len(pieces) - 1, -1, -1):
        a, b = pieces[k]
        sym = one.pop("symbols", None)
        if sym is None:
            sym = _symbols(piece(k), E)
        # the parts of the piece in each chunk, the last part first
        c = nchunks - 1
        while c > 0 and chunk_first[c] >= b:
            c -= 1
        stop = b
        while stop > a:
            start = max(a, chunk_first[c])
            first = start - chunk_first[c]
            status, states[c], words = _backend.rans.encode(
                sym[start - a:stop - a], row_class[chunk_rows[c]:], cols, freq, cum, -1, states[c], first,
                nstates=nstates)
            if status:
                raise EncodeError(f"rANS encoder failed: {rans_reference.ERRORS[status][2]}")
            if first_block[c] is None:
                first_block[c] = spool.block_count
            spool.add(words)
            word_bytes[c] += len(words)
            stop = start
            c -= 1
    states = [st if st is not None else [rans_reference.LC_RANS_L] * nstates for st in states]
    w = _backend.BitWriter()
    w.ue(0, E)
    w.u(4, K - 1)
    if version >= 2:
        w.u(3, nstates.bit_length() - 1)
        w.u(2, LC_MODEL_STATIC)
    for codes in all_codes:
        write_table(w, codes)
    if K > 1:
        w.u_array((K - 1).bit_length(), row_class)
    _write_escapes(w, escapes, E)
    # chunks were coded last first: chunk c's blocks end where chunk c - 1's start
    first_block = [spool.block_count if b is None else b for b in first_block]
    chunk_blocks = [(first_block[c], first_block[c - 1] if c else spool.block_count) for c in range(nchunks)]
    if version == 1:
        w.byte_alignment()
        for st in states[0]:
            w.u32le(st)
        return LevelsPayloadParts(w.getvalue(), [b""], spool, [(0, spool.block_count)])
    _write_chunk_fields(w, chunk_rows, rows, escape_rows, [b // 2 for b in word_bytes])
    w.byte_alignment()
    heads = [b"".join(int(x).to_bytes(4, "little") for x in st) for st in states]
    parts = LevelsPayloadParts(w.getvalue(), heads, spool, chunk_blocks)
    if adaptive == "auto" and n and E > 0:
        # a sample of adaptive coding first: a large layer it cannot win is not coded twice
        sample = _sample(piece, pieces, rows, cols)
        k0, bits = _plan_eg_order(sample, cols, E, remainder)
        if bits / adaptive_reference.LA_COST_ONE * n / sample.size < 8 * parts.size * (1 - LA_MIN_GAIN):
            other = _code_adaptive(piece, pieces, rows, cols, E, escapes, escape_rows, remainder, k0=k0)
            if other.size <= parts.size * (1 - LA_MIN_GAIN):
                parts.close()
                return other
            other.close()
    return parts


def _write_escapes(w, escapes, E: int) -> None:
    """lc_escape_count and the escape list (``escapes``: arrays of escaped levels, in order)."""
    w.ue(0, sum(e.size for e in escapes))
    for v in (v for e in escapes for v in e.tolist()):
        w.u(1, 1 if v < 0 else 0)
        w.ue(0, abs(v) - E - 1)


def _write_chunk_fields(w, chunk_rows: list, rows: int, escape_rows, word_counts: list) -> None:
    """lc_num_chunks_minus1 and every chunk's but the last rows, escapes and words (spec 7.4)."""
    nchunks = len(chunk_rows)
    w.ue(0, nchunks - 1)
    if nchunks > 1:
        per_row = np.bincount(np.concatenate(escape_rows), minlength=rows) if escape_rows else np.zeros(rows, np.int64)
        bounds = chunk_rows + [rows]
        for c in range(nchunks - 1):
            w.ue(0, bounds[c + 1] - bounds[c] - 1)
            w.ue(0, int(per_row[bounds[c]:bounds[c + 1]].sum()))
            w.ue(0, word_counts[c])


_adaptive = "auto"


def set_adaptive(adaptive: str) -> str:
    """How the encoder of this process chooses lc_model for level payloads of version 3 (format 2.1):
    ``"auto"`` (default: adaptive contexts where they make a layer >= LA_MIN_GAIN smaller),
    ``"never"`` (static tables only: the fastest decoding) or ``"always"``. Returns the previous
    setting."""
    global _adaptive
    if adaptive not in ("auto", "never", "always"):
        raise ValueError(f"adaptive must be 'auto', 'never' or 'always', got {adaptive!r}")
    previous, _adaptive = _adaptive, adaptive
    return previous


_COST_TABLE = []


def _cost_table() -> np.ndarray:
    if not _COST_TABLE:
        _COST_TABLE.append(adaptive_reference.cost_table())
    return _COST_TABLE[0]


def _gather(piece, pieces, start: int, stop: int) -> np.ndarray:
    """Levels start..stop-1 of a source from the pieces that hold them."""
    parts = [piece(k)[max(a, start) - a:min(b, stop) - a] for k, (a, b) in enumerate(pieces) if a < stop and b > start]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _sample(piece, pieces, rows: int, cols: int) -> np.ndarray:
    """About LA_SAMPLE_LEVELS levels of whole rows, in up to LA_SAMPLE_GROUPS groups spread over the layer (the
    first rows of an embedding are not like the rest); the whole layer when it is that small."""
    n = rows * cols
    if n <= LA_SAMPLE_LEVELS:
        return _gather(piece, pieces, 0, n)
    take = max(1, LA_SAMPLE_LEVELS // cols)  # rows
    groups = min(LA_SAMPLE_GROUPS, take)
    per = take // groups
    starts = sorted({g * (rows - per) // max(1, groups - 1) for g in range(groups)})
    if len(pieces) == 1 and cols <= LA_SAMPLE_LEVELS:  # the same rows by one fancy index
        chosen = (np.asarray(starts, dtype=np.int64)[:, None] + np.arange(per)).reshape(-1)
        return piece(0).reshape(rows, cols)[chosen].reshape(-1)
    parts = [_gather(piece, pieces, r * cols, min(n, (r + per) * cols, r * cols + LA_SAMPLE_LEVELS)) for r in starts]
    return np.concatenate(parts)


def _plan_eg_order(sample: np.ndarray, cols: int, E: int, remainder) -> tuple[int, int]:
    """lc_eg_order: the cheapest on the sample of the Exp-Golomb orders next to the one that suits
    the layer's mean remainder; and the sample's code length with it (adaptive.cost units)."""
    total, count = remainder
    guess = max(0, (total // count).bit_length() - 1) if count else 0
    clipped = adaptive_reference.clip_levels(sample, E)
    orders = list(range(max(0, guess - 1), min(adaptive_reference.LA_MAX_EG_ORDER, guess + 1) + 1))
    best = None
    for k0, bits in zip(orders, _backend.adaptive.costs(clipped, cols, E, orders, _cost_table())):
        if best is None or bits < best[0]:
            best = (bits, k0)
    return best[1], best[0]


def _code_adaptive(piece, pieces, rows: int, cols: int, E: int, escapes, escape_rows, remainder,
                   k0: int | None = None) -> LevelsPayloadParts:
    """``levels_payload()`` version 2 with lc_model 1 (spec 7.5): the reference encoder's chunks,
    each coded forwards for its contexts and backwards by rANS, one block of the spool each."""
    if k0 is None:
        k0 = _plan_eg_order(_sample(piece, pieces, rows, cols), cols, E, remainder)[0]
    chunk_rows = lc_plan_chunks(rows, cols)
    bounds = chunk_rows + [rows]
    spool = Spool()
    heads, word_counts, blocks = [], [], []
    for c in range(len(chunk_rows)):
        levels = adaptive_reference.clip_levels(_gather(piece, pieces, bounds[c] * cols, bounds[c + 1] * cols), E)
        status, state, words = _backend.adaptive.encode(levels, cols, E, k0)
        if status:
            raise EncodeError(f"adaptive level encoder failed: {adaptive_reference.ERRORS[status][2]}")
        heads.append(int(state).to_bytes(4, "little"))
        first = spool.block_count
        spool.add(words)  # (an empty block may add none)
        blocks.append((first, spool.block_count))
        word_counts.append(len(words) // 2)
    w = _backend.BitWriter()
    w.ue(0, E)
    w.u(4, 0)
    w.u(3, 0)
    w.u(2, LC_MODEL_ADAPTIVE)
    w.u(3, k0)
    _write_escapes(w, escapes, E)
    _write_chunk_fields(w, chunk_rows, rows, escape_rows, word_counts)
    w.byte_alignment()
    return LevelsPayloadParts(w.getvalue(), heads, spool, blocks)


def encode_levels(levels: np.ndarray, rows: int, cols: int, *, max_classes: int = LC_MAX_CLASSES,
                  version: int = 3, adaptive: str | None = None) -> bytes:
    """Return ``levels_payload()`` (of ``version``, 1, 2 or 3) for integer levels (any int dtype,
    rows * cols elements); ``adaptive``: see :func:`code_levels`."""
    out = io.BytesIO()
    write_levels(ArrayLevels(levels, rows, cols), out, max_classes=max_classes, version=version, adaptive=adaptive)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# decoder
# ---------------------------------------------------------------------------------------------
class LevelsChunk(NamedTuple):
    """One independently decodable chunk of a levels payload: rows row0..row1-1, escapes
    esc0..esc1-1 of the escape list, its states and its rANS words (a view)."""

    row0: int
    row1: int
    esc0: int
    esc1: int
    states: list[int]
    words: memoryview
    words_offset: int  # file offset of its lc_rans_words
    path: str  # syntax path of its elements ("" in version 1, "lc_chunk[c]." in version 2)


class LevelsPayload(NamedTuple):
    """The syntax elements of ``levels_payload()`` (the rANS words as views, not decoded)."""

    version: int
    escape_limit: int
    freqs: np.ndarray  # K x alphabet, each row summing to 2^14 or all zero
    row_class: np.ndarray  # uint8, one per row
    escapes: list[int]
    chunks: list[LevelsChunk]
    model: int = LC_MODEL_STATIC  # lc_model
    eg_order: int = 0  # lc_eg_order (lc_model 1)

    @property
    def states(self) -> list[int]:
        return self.chunks[0].states

    @property
    def words(self) -> memoryview:
        return self.chunks[0].words

    @property
    def words_offset(self) -> int:
        return self.chunks[0].words_offset


def _read_tables(r, K: int, alphabet: int) -> np.ndarray:
    """The K tables' frequencies: in one kernel call (the compiled twin reads and derives them in C),
    or element by element when tracing or when the kernel finds anything wrong (for the error)."""
    data = r.data if r.trace is None else None
    if data is not None:
        got = _backend.rans.read_tables(data, r.pos, K, alphabet)
        if got is not None:
            r.pos, freqs = got
            return freqs
    return freq_rows_from_codes(np.stack([read_table(r, alphabet, f"lc_table[{k}]")
                                          for k in range(K)])).astype(np.uint32)


def _read_classes(r, K: int, alphabet: int, rows: int, cols: int):
    """The tables and the row classes of lc_model 0."""
    freqs = _read_tables(r, K, alphabet)
    used = [1]
    if K > 1:
        row_class = r.u_array((K - 1).bit_length(), rows, "lc_row_class").astype(np.uint8)
        used = np.bincount(row_class, minlength=K).tolist()  # one pass: the classes used and the largest
        if len(used) > K:
            raise r.error(f"row class {len(used) - 1} >= {K}", "lc_row_class")
    else:
        row_class = np.zeros(rows if cols else 0, dtype=np.uint8)  # an empty layer may declare 2^40 rows
    if rows * cols:
        if K == 1:  # (a small layer's fixed cost)
            empty = [] if freqs[0].any() else [0]
        else:
            sums = freqs.sum(axis=1).tolist()
            empty = [k for k in range(K) if used[k] and sums[k] == 0]
        if empty:
            raise r.error(f"row class {empty[0]} is used but its table is empty", "lc_row_class")
    return freqs, row_class


def read_levels_payload(r, rows: int, cols: int, *, version: int = 3) -> LevelsPayload:
    """Read ``levels_payload()`` of ``version`` (1: spec 7.2; 2: spec 7.4; 3: 7.4 and 7.5) from bit reader ``r``
    and check its rules; the rANS words are taken as the rest of the reader's data."""
    if version not in (1, 2, 3):
        raise ValueError(f"levels payload version must be 1, 2 or 3, got {version}")
    E = r.ue(0, "lc_escape_limit")
    if E > LC_MAX_ESCAPE_LIMIT:
        raise r.error(f"lc_escape_limit {E} exceeds {LC_MAX_ESCAPE_LIMIT}", "lc_escape_limit")
    alphabet = 2 * E + 2
    K = r.u(4, "lc_num_classes_minus1") + 1
    nstates = LC_STATES
    model = LC_MODEL_STATIC
    eg_order = 0
    if version >= 2:
        log2 = r.u(3, "lc_log2_states")
        if log2 > 5:
            raise r.error(f"lc_log2_states {log2} exceeds 5", "lc_log2_states", at=r.pos - 3)
        nstates = 1 << log2
        model = r.u(2, "lc_model")
        if version == 2 and model != LC_MODEL_STATIC:  # a 2.0 file
            raise r.error(f"lc_model {model} is reserved (this reader knows {LC_MODEL_STATIC}: static tables)",
                          "lc_model", at=r.pos - 2, cls=UnsupportedError)
        if model not in (LC_MODEL_STATIC, LC_MODEL_ADAPTIVE):
            raise r.error(f"lc_model {model} is reserved (this reader knows {LC_MODEL_STATIC}: static tables, "
                          f"{LC_MODEL_ADAPTIVE}: adaptive contexts)", "lc_model", at=r.pos - 2, cls=UnsupportedError)
        if model == LC_MODEL_ADAPTIVE:
            if K != 1:
                raise r.error(f"lc_model 1 has no row classes, lc_num_classes_minus1 is {K - 1}",
                              "lc_num_classes_minus1", at=r.pos - 9)
            if nstates != 1:
                raise r.error(f"lc_model 1 codes with one state, lc_log2_states is {log2}", "lc_log2_states",
                              at=r.pos - 5)
            eg_order = r.u(3, "lc_eg_order")
    if model == LC_MODEL_ADAPTIVE:
        freqs = np.zeros((0, alphabet), dtype=np.uint32)
        row_class = np.zeros(rows if cols else 0, dtype=np.uint8)
    else:
        freqs, row_class = _read_classes(r, K, alphabet, rows, cols)
    n = rows * cols
    count = r.ue(0, "lc_escape_count")

    if count > n or count * 2 > r.bits_left():
        raise r.error(f"lc_escape_count {count} exceeds the levels or the payload", "lc_escape_count",
                      cls=TruncatedError if count <= n else FormatError)
    escapes = _read_escapes(r, count, E)
    if version == 1:
        r.byte_alignment()
        states = [r.u32le(f"lc_rans_state[{j}]") for j in range(LC_STATES)]
        words_offset = r.base_offset + r.pos // 8
        words = _read_words(r, r.bits_left() // 8, n, "lc_rans_words")
        chunk = LevelsChunk(0, rows if cols else 0, 0, count, states, words, words_offset, "")
        return LevelsPayload(1, E, freqs, row_class, escapes, [chunk])
    grid_rows = rows if n else 0
    nchunks = r.ue(0, "lc_num_chunks_minus1") + 1
    if nchunks > max(1, grid_rows):
        raise r.error(f"{nchunks} chunks for {grid_rows} rows of levels", "lc_num_chunks_minus1")
    bounds, esc_bounds, word_counts = [0], [0], []
    per_level = LA_MAX_WORDS_PER_LEVEL if model == LC_MODEL_ADAPTIVE else 1
    for c in range(nchunks - 1):
        rows_c = r.ue(0, f"lc_chunk_rows_minus1[{c}]") + 1
        if bounds[-1] + rows_c >= grid_rows:
            raise r.error(f"chunks 0..{c} take {bounds[-1] + rows_c} of {grid_rows} rows, leaving none for the last",
                          f"lc_chunk_rows_minus1[{c}]")
        bounds.append(bounds[-1] + rows_c)
        esc_c = r.ue(0, f"lc_chunk_escapes[{c}]")
        if esc_bounds[-1] + esc_c > count:
            raise r.error(f"chunks 0..{c} take {esc_bounds[-1] + esc_c} of {count} escapes", f"lc_chunk_escapes[{c}]")
        esc_bounds.append(esc_bounds[-1] + esc_c)
        words_c = r.ue(0, f"lc_chunk_words[{c}]")
        if words_c > rows_c * cols * per_level:
            raise r.error(f"{words_c} rANS words for {rows_c * cols} levels", f"lc_chunk_words[{c}]")
        word_counts.append(words_c)
    bounds.append(grid_rows)
    esc_bounds.append(count)
    r.byte_alignment()
    need = 4 * nstates * nchunks + 2 * sum(word_counts)
    if need * 8 > r.bits_left():
        raise r.error(f"the chunks need {need} bytes, {r.bits_left() // 8} left", "lc_chunk_words",
                      cls=TruncatedError)
    chunks = []
    tracing = r.trace is not None
    for c in range(nchunks):
        where = f"lc_chunk[{c}]."
        if tracing:
            states = [r.u32le(f"{where}lc_rans_state[{j}]") for j in range(nstates)]
        else:  # in one unpack: their bytes are there (need, above), and a small layer pays per state
            states = list(_U32LE[nstates].unpack(r.view(4 * nstates, f"{where}lc_rans_state")))
        words_offset = r.base_offset + r.pos // 8
        nbytes = 2 * word_counts[c] if c < nchunks - 1 else r.bits_left() // 8
        levels_c = (bounds[c + 1] - bounds[c]) * cols
        words = _read_words(r, nbytes, levels_c * per_level, f"{where}lc_rans_words")
        chunks.append(LevelsChunk(bounds[c], bounds[c + 1], esc_bounds[c], esc_bounds[c + 1], states, words,
                                  words_offset, where))
    return LevelsPayload(version, E, freqs, row_class, escapes, chunks, model, eg_order)


def _read_escapes(r, count: int, E: int) -> list[int]:
    """The escape list: without element names first (a small layer's fixed cost), then, if anything
    is wrong, again element by element so that the error names the element (and when tracing)."""
    start = r.pos
    if r.trace is None:
        escapes, u, ue = [], r.u, r.ue
        try:
            for _ in range(count):
                negative = u(1)
                magnitude = ue(0) + E + 1
                escapes.append(-magnitude if negative else magnitude)
            if not escapes or (max(escapes) < 1 << 63 and min(escapes) >= -(1 << 63)):
                return escapes
        except CodecError:
            pass
        r.pos = start
    escapes = []
    for j in range(count):
        negative = r.u(1, f"lc_esc_sign[{j}]")
        magnitude = r.ue(0, f"lc_esc_magnitude[{j}]") + E + 1
        value = -magnitude if negative else magnitude
        if not -(1 << 63) <= value < (1 << 63):
            raise r.error("escaped level does not fit int64", f"lc_esc_magnitude[{j}]")
        escapes.append(value)
    return escapes


def _read_words(r, nbytes: int, most: int, name: str) -> memoryview:
    if nbytes % 2:
        raise r.error("the rANS word stream has an odd number of bytes", name)
    if nbytes // 2 > most:
        raise r.error(f"{nbytes // 2} rANS words, at most {most} allowed for the chunk's levels", name)
    return r.view(nbytes, name)


_NO_ESCAPES = np.zeros(0, np.int64)
_NO_ESCAPES.flags.writeable = False
_U32LE = {1 << j: struct.Struct(f"<{1 << j}I") for j in range(6)}

_OUT_DTYPES = rans_reference.OUT_DTYPES


def decode_levels(payload, rows: int, cols: int, *, out_kind: int = LC_OUT_I64, scale=None, zero_point=None,
                  codebook=None, path: str = "unit_payload", base_offset: int = 0, out=None, version: int = 3,
                  threads: int | None = None) -> np.ndarray:
    """Decode ``levels_payload()`` (of ``version``, 1, 2 or 3) into a flat int64 (LC_OUT_I64), int32
    (LC_OUT_I32) or int16 (LC_OUT_I16) array of levels, or float32 values: (level -
    zero_point[row]) * scale[row] (LC_OUT_AFFINE), codebook[level] (LC_OUT_CODEBOOK) or the dependent
    reconstruction of spec 8.5 times scale[row] (LC_OUT_DQ). ``out``:
    the array to decode into (of that dtype and rows * cols elements), e.g. a view of the caller's
    output buffer. ``threads``: decode the chunks of a version 2 payload on up to this many threads
    (default: :func:`set_decode_threads`'s setting, 1 unless changed)."""
    if out_kind in _OUT_DTYPES and rows * cols <= LC_CHUNK_ELEMENTS:
        # a payload of one chunk (every small layer) in one kernel call: its per-layer cost in Python
        # was several times its levels' (anything the kernel does not take, errors included, is read below;
        # a larger layer has several chunks from the reference encoder: not parsed twice)
        done = _backend.rans.decode_payload(payload, rows, cols, version, out_kind, out, scale, zero_point, codebook)
        if done is not None:
            return done
    p = read_levels_payload(_backend.bit_reader(payload, base_offset, path), rows, cols, version=version)
    return _decode_chunks(p, p.chunks, cols, out_kind=out_kind, scale=scale, zero_point=zero_point,
                          codebook=codebook, path=path, out=out, threads=threads)


def decode_levels_fitting(payload, rows: int, cols: int, *, out_kind: int, path: str = "unit_payload",
                          base_offset: int = 0, version: int = 3, threads: int | None = None) -> np.ndarray | None:
    """:func:`decode_levels` into int32 or int16 (``out_kind`` LC_OUT_I32 or LC_OUT_I16), or None, having
    decoded nothing, when an escaped level does not fit that type: the caller then decodes the int64 levels
    and judges them itself. (Every other level fits: lc_escape_limit is at most 127.)"""
    if out_kind not in (LC_OUT_I32, LC_OUT_I16):
        raise ValueError("out_kind must be LC_OUT_I32 or LC_OUT_I16")
    done = _backend.rans.decode_payload(payload, rows, cols, version, out_kind) if rows * cols <= LC_CHUNK_ELEMENTS \
        else None
    if done is not None:
        return done
    p = read_levels_payload(_backend.bit_reader(payload, base_offset, path), rows, cols, version=version)
    info = np.iinfo(_OUT_DTYPES[out_kind])
    if any(not info.min <= v <= info.max for v in p.escapes):
        return None
    return _decode_chunks(p, p.chunks, cols, out_kind=out_kind, scale=None, zero_point=None, codebook=None,
                          path=path, out=None, threads=threads)


def decode_level_rows(payload, rows: int, cols: int, start: int, stop: int, *, out_kind: int = LC_OUT_I64,
                      scale=None, zero_point=None, codebook=None, path: str = "unit_payload", base_offset: int = 0,
                      version: int = 3, threads: int | None = None) -> tuple[int, np.ndarray]:
    """Decode only the chunks of ``levels_payload()`` that hold rows ``start`` .. ``stop - 1`` of the
    level grid (``0 <= start <= stop <= rows``): returns ``(first, flat)``, the first row decoded and
    the values of the decoded chunks' rows, as :func:`decode_levels` gives them (``scale`` and
    ``zero_point`` index all ``rows``). The payload's header is read and checked whole; chunks
    outside the range are not decoded, so an error in their words is not seen."""
    if not 0 <= start <= stop <= rows:
        raise ValueError(f"rows {start}..{stop} are not within 0..{rows}")
    p = read_levels_payload(_backend.bit_reader(payload, base_offset, path), rows, cols, version=version)
    if start == stop:
        return start, np.empty(0, dtype=_OUT_DTYPES[out_kind])
    chosen = [c for c in p.chunks if c.row0 < stop and c.row1 > start]
    first = chosen[0].row0
    flat = _decode_chunks(p, chosen, cols, out_kind=out_kind, scale=scale, zero_point=zero_point,
                          codebook=codebook, path=path, out=None, threads=threads, first_row=first)
    return first, flat


def _decode_chunks(p: LevelsPayload, chunks: list, cols: int, *, out_kind, scale, zero_point, codebook, path: str,
                   out, threads, first_row: int = 0) -> np.ndarray:
    """Decode ``chunks`` (consecutive chunks of ``p``) into ``out``, whose first element is row ``first_row``'s."""
    n = (chunks[-1].row1 - first_row) * cols
    dtype = _OUT_DTYPES[out_kind]
    escapes_all = p.escapes[chunks[0].esc0:chunks[-1].esc1]
    if out_kind in (LC_OUT_I32, LC_OUT_I16):
        # only for callers whose levels fit (E <= 127 and the escapes checked here)
        info = np.iinfo(dtype)
        if any(not info.min <= v <= info.max for v in escapes_all):
            raise FormatError(f"level does not fit {np.dtype(dtype).name}", path=f"{path}.lc_esc_magnitude")
    if out is None:
        out = np.empty(n, dtype=dtype)
    elif out.dtype != dtype or out.shape != (n,) or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"out must be a writable contiguous {np.dtype(dtype).name} array of {n} elements")
    escapes = np.asarray(p.escapes, dtype=np.int64) if p.escapes else _NO_ESCAPES
    adaptive = p.model == LC_MODEL_ADAPTIVE
    errors = adaptive_reference.ERRORS if adaptive else rans_reference.ERRORS
    if not adaptive:
        fc, sy = _backend.rans.build_tables(p.freqs)
    base = first_row * cols

    def run(chunk: LevelsChunk):
        a, b = chunk.row0 * cols - base, chunk.row1 * cols - base
        sc = None if scale is None else scale[chunk.row0:chunk.row1]
        zp = None if zero_point is None else zero_point[chunk.row0:chunk.row1]
        esc = escapes[chunk.esc0:chunk.esc1]
        if adaptive:
            return _backend.adaptive.decode(chunk.words, chunk.states[0], chunk.row1 - chunk.row0, cols,
                                            p.escape_limit, p.eg_order, esc, out_kind, out[a:b], sc, zp, codebook)
        return _backend.rans.decode(chunk.words, chunk.states, fc, sy, p.row_class[chunk.row0:chunk.row1],
                                    chunk.row1 - chunk.row0, cols, p.escape_limit, esc, out_kind, out[a:b], sc, zp,
                                    codebook)

    workers = min(len(chunks), _decode_threads if threads is None else max(1, threads))
    if workers > 1:
        results = list(_thread_pool(workers).map(run, chunks))
    else:
        results = []
        for chunk in chunks:  # stop at the first chunk in error
            results.append(run(chunk))
            if results[-1][0]:
                break
    for chunk, (status, at, value) in zip(chunks, results):
        if status:
            raise_status(errors, status, at, value, path=path + ("." + chunk.path[:-1] if chunk.path
                                                                                else ""),
                         base_offset=chunk.words_offset)
    return out


_decode_threads = 1
_pool = None
_pool_lock = threading.Lock()


def set_decode_threads(threads: int) -> int:
    """Decode the chunks of a layer's levels on up to ``threads`` threads (the compiled decoder
    releases the GIL); returns the previous setting. One layer's bytes and values do not depend on
    it."""
    global _decode_threads
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    previous, _decode_threads = _decode_threads, threads
    return previous


def _forget_pool_in_child() -> None:
    # a forked child has the pool object but not its threads: it makes its own when it needs one
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _thread_pool(workers: int):
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            from concurrent.futures import ThreadPoolExecutor

            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="codec-levels")
        return _pool


def trace_levels_payload(payload, rows: int, cols: int, *, path: str, base_offset: int, trace: list,
                         version: int = 3) -> None:
    """Record the syntax elements of ``levels_payload()`` in ``trace`` (``codec-dump --fields``)."""
    read_levels_payload(_backend.bit_reader(payload, base_offset, path, trace), rows, cols, version=version)


def levels_summary(payload, rows: int, cols: int, *, path: str, base_offset: int, version: int = 3) -> dict:
    """What ``codec-dump`` shows of a ``levels_payload()``: model (static or adaptive), Exp-Golomb
    order (adaptive), escape limit, row classes, escapes, states and chunks."""
    p = read_levels_payload(_backend.bit_reader(payload, base_offset, path), rows, cols, version=version)
    return {"model": "adaptive" if p.model == LC_MODEL_ADAPTIVE else "static", "eg_order": p.eg_order,
            "escape_limit": p.escape_limit,
            "row_classes": max(1, int(p.freqs.shape[0])), "escapes": len(p.escapes), "states": len(p.states),
            "chunks": len(p.chunks)}
