"""Interleaved static rANS of the level coder in pure Python: the reference for ``codec._fast.rans``
(whose C lives in ``codec/_fast/rans_impl.h``; spec/bitstream.md section 7.3).

The constants below carry the C header's names; ``tests/test_constants.py`` fails if they differ.
"""

from __future__ import annotations

import numpy as np

from ..errors import CodecError, FormatError

__all__ = ["LC_STATES", "LC_MAX_STATES", "LC_PROB_BITS", "LC_PROB_SCALE", "LC_RANS_L", "LC_OUT_I64", "LC_OUT_AFFINE",
           "LC_OUT_CODEBOOK", "LC_OUT_I32", "LC_OUT_I16", "LC_OUT_DQ", "ERRORS", "LC_MAX_CODE", "LC_LOG_WEIGHTS", "symbols", "read_tables", "freq_rows_from_codes", "decode_payload",
           "build_tables", "encode", "decode", "simd_available", "set_simd", "count_symbols"]

#: Number of interleaved 32-bit states of a version 1 payload (element i uses state i mod
#: LC_STATES): lc_rans_state[].
LC_STATES = 8
#: At most this many states in a version 2 payload (1, 2, 4, 8, 16 or 32; spec 7.4).
LC_MAX_STATES = 32
#: Probabilities are in units of 2^-LC_PROB_BITS.
LC_PROB_BITS = 14
LC_PROB_SCALE = 1 << LC_PROB_BITS
#: Lower bound of a normalised state; states move 16-bit words.
LC_RANS_L = 1 << 16
#: Row classes of a static levels payload (lc_num_classes_minus1 is u(4)).
LC_MAX_CLASSES = 16
#: Largest code of lc_table().
LC_MAX_CODE = 64
#: round(2^16 * 2^(-j/4)) for j = 0..3: weights of quarter-bit log codes (spec 7.2).
LC_LOG_WEIGHTS = (65536, 55109, 46341, 38968)
_LOG_WEIGHTS = np.array(LC_LOG_WEIGHTS, dtype=np.int64)

#: Output kinds of :func:`decode`: int64 levels, float32 (level - zero_point[row]) * scale[row],
#: float32 codebook[level], int32 levels (the caller guarantees they fit).
LC_OUT_I64, LC_OUT_AFFINE, LC_OUT_CODEBOOK, LC_OUT_I32, LC_OUT_I16 = 0, 1, 2, 3, 4
#: float32 dependent-quantization values (spec 8.5): (2k - sgn(k) (s & 1)) * scale[row], s the trellis state,
#: 0 at each row's start (the levels, then :func:`codec.kernels.trellis.dequantize`, in one pass)
LC_OUT_DQ = 5
#: the trellis state after level k in state s: _DQ_NEXT[s][k & 1] (spec table 8.5)
_DQ_NEXT = ((0, 2), (7, 5), (1, 3), (6, 4), (2, 0), (5, 7), (3, 1), (4, 6))

LC_OK = 0
LC_ERR_WORDS_TRUNCATED = -1
LC_ERR_FINAL_STATE = -2
LC_ERR_ESCAPES = -3
LC_ERR_WORDS_LEFT = -4
LC_ERR_CODEBOOK = -5
LC_ERR_BAD_STATE = -6
LC_ERR_ZERO_FREQ = -7
LC_ERR_OVERFLOW = -8
LC_ERR_AFFINE_RANGE = -9
LC_ERR_DQ_LEVEL = -12  # -10, -11: the adaptive decoder's

#: status -> (error class, element, reason); ``at`` is relative to the start of lc_rans_words.
ERRORS = {
    LC_ERR_WORDS_TRUNCATED: (FormatError, "lc_rans_words", "rANS words end before the last level"),
    LC_ERR_FINAL_STATE: (FormatError, "lc_rans_words", "rANS final state is not the initial state (corrupt payload)"),
    LC_ERR_ESCAPES: (FormatError, "lc_rans_words", "escape count does not match the escape symbols"),
    LC_ERR_WORDS_LEFT: (FormatError, "lc_rans_words", "rANS words left over after the last level"),
    LC_ERR_CODEBOOK: (FormatError, "lc_rans_words", "codebook index out of range"),
    LC_ERR_BAD_STATE: (FormatError, "lc_rans_state[{}]", "rANS initial state below 2^16"),
    LC_ERR_ZERO_FREQ: (FormatError, "lc_rans_words", "symbol with zero frequency"),
    LC_ERR_OVERFLOW: (FormatError, "lc_rans_words", "rANS output buffer too small"),
    LC_ERR_AFFINE_RANGE: (FormatError, "lc_rans_words", "a level minus its zero point does not fit int64"),
    LC_ERR_DQ_LEVEL: (FormatError, "lc_rans_words", "a dq level's magnitude must be below 2^31"),
}


def symbols(q, rows: int, cols: int):
    """Return (E, sym, row_counts): the escape limit min(127, max |level|), the symbol of each level
    (level + E, or the escape symbol 2E + 1) and each row's symbol counts (spec 7.1)."""
    q = np.asarray(q, dtype=np.int64).reshape(-1)
    n = q.size
    top = max(int(q.max()), -int(q.min())) if n else 0
    E = min(127, top)
    alphabet = 2 * E + 2
    escaped = (q > E) | (q < -E)  # not np.abs: abs(-2^63) overflows
    sym = np.where(escaped, 2 * E + 1, q + E).astype(np.uint8) if n else np.zeros(0, np.uint8)
    counts = np.zeros((rows, alphabet), dtype=np.int64)
    if n:
        rid = np.repeat(np.arange(rows, dtype=np.int64), cols) * alphabet
        counts = np.bincount(rid + sym, minlength=rows * alphabet).reshape(rows, alphabet)
    return E, sym, counts


def count_symbols(sym, group, start: int, cols: int, hist) -> None:
    """Add the symbols' counts to ``hist`` (int64, groups x alphabet), each to the row of its row's
    group: ``sym[j]`` (uint8) is element ``start + j`` of a grid of ``cols`` columns, and ``group[r]``
    the group of row r (the encoder's class planning, spec 7.2)."""
    sym = np.asarray(sym)
    group = np.asarray(group)
    _check_count_args(sym, group, start, cols, hist)
    n = sym.size
    if n == 0:
        return
    if cols <= 0:
        raise ValueError("cols must be > 0 when there are symbols")
    r0, r1 = start // cols, (start + n - 1) // cols
    if r1 >= group.size:
        raise ValueError("group has fewer rows than the symbols need")
    groups, alphabet = hist.shape
    g = group[r0:r1 + 1].astype(np.int64)
    if int(g.max()) >= groups or int(sym.max()) >= alphabet:
        raise ValueError("a group or symbol is outside hist")
    edges = np.arange(r0, r1 + 2, dtype=np.int64) * cols
    edges[0], edges[-1] = start, start + n
    rid = np.repeat(g, np.diff(edges))
    hist += np.bincount(rid * alphabet + sym, minlength=groups * alphabet).reshape(groups, alphabet)


def _check_count_args(sym, group, start: int, cols: int, hist) -> None:
    if sym.dtype != np.uint8 or sym.ndim != 1 or group.dtype != np.uint8 or group.ndim != 1:
        raise ValueError("sym and group must be 1-D uint8 arrays")
    if not (isinstance(hist, np.ndarray) and hist.dtype == np.int64 and hist.ndim == 2 and hist.flags.c_contiguous
            and hist.flags.writeable):
        raise ValueError("hist must be a writable C-contiguous 2-D int64 array")
    if start < 0 or cols < 0:
        raise ValueError("start and cols must be >= 0")
    if sym.size >= 1 << 32:
        raise ValueError("at most 2^32 - 1 symbols at a time")


def _emit_row(level: int, out_kind: int, out, i: int, count: int, r: int, scale, zero_point, codebook,
              dq: list | None = None) -> int:
    """Write ``count`` elements of value ``level`` from element i (row r) in the output's form (``dq``: the
    row's trellis state in a 1-element list, for LC_OUT_DQ)."""
    if out_kind in (LC_OUT_I64, LC_OUT_I32, LC_OUT_I16):
        out[i:i + count] = level
    elif out_kind == LC_OUT_DQ:
        level = int(level)
        if not -(1 << 31) < level < 1 << 31:
            return LC_ERR_DQ_LEVEL
        s, f, sign = dq[0], np.float32(scale[r]), (level > 0) - (level < 0)
        for j in range(i, i + count):
            out[j] = np.float32(2 * level - sign * (s & 1)) * f  # one rounding, as C's (float)q
            s = _DQ_NEXT[s][level & 1]
        dq[0] = s
    elif out_kind == LC_OUT_AFFINE:
        d = level - int(zero_point[r])
        if not -(1 << 63) <= d < 1 << 63:
            return LC_ERR_AFFINE_RANGE
        out[i:i + count] = np.float32(np.int64(d)) * np.float32(scale[r])  # one rounding, as C's (float)d
    else:
        if not 0 <= level < len(codebook):
            return LC_ERR_CODEBOOK
        out[i:i + count] = codebook[level]
    return LC_OK


def freq_rows_from_codes(codes) -> np.ndarray:
    """The frequencies of spec 7.2 (summing to 2^14, or all zero) of every row of a K x alphabet
    array of quarter-bit log codes (0 = absent), as int64."""
    c = np.asarray(codes)
    if c.ndim != 2 or c.shape[1] > 256:
        raise ValueError("codes must be K x alphabet with alphabet <= 256")
    if c.size and (int(c.min()) < 0 or int(c.max()) > 64):
        raise ValueError("codes must be 0..64")
    c = c.astype(np.int64)
    present = c > 0
    weights = np.where(present, np.maximum(1, _LOG_WEIGHTS[(c - 1) & 3] >> (np.maximum(c - 1, 0) >> 2)), 0)
    total = weights.sum(axis=1, keepdims=True)
    freqs = np.where(present, np.maximum(1, weights * LC_PROB_SCALE // np.maximum(total, 1)), 0)
    excess = np.where(total[:, 0] > 0, freqs.sum(axis=1) - LC_PROB_SCALE, 0)
    # one step per iteration in every row that still needs one: the largest frequency (lowest
    # index among equals) takes the shortfall, or gives up what it can
    while True:
        rows = np.flatnonzero(excess)
        if rows.size == 0:
            return freqs
        k = np.argmax(freqs[rows], axis=1)
        f = freqs[rows, k]
        e = excess[rows]
        change = np.where(e < 0, e, np.minimum(e, f - 1))
        freqs[rows, k] = f - change
        excess[rows] = e - change


def read_tables(data, bitpos: int, K: int, alphabet: int):
    """Read K ``lc_table()`` (spec 7.2) from bit ``bitpos`` of ``data`` and derive their
    frequencies: (the bit position after them, K x alphabet uint32 frequencies), or None when
    anything is wrong (a truncated or out-of-range code, a range past the alphabet, an absent first
    or last symbol): the caller then reads the tables element by element, which names the error."""
    from .bitio import BitReader

    nbits = len(memoryview(data).cast("B")) * 8
    if not 0 <= bitpos <= nbits:
        raise ValueError("bitpos outside data")
    if not 1 <= K <= 16 or not 2 <= alphabet <= 256:
        raise ValueError("read_tables needs 1 <= K <= 16 and 2 <= alphabet <= 256")
    r = BitReader(data, bit_offset=bitpos)
    codes = np.zeros((K, alphabet), dtype=np.int64)
    try:
        for k in range(K):
            count = r.ue(0)
            if count == 0:
                continue
            lo = r.ue(0)
            if lo + count > alphabet:
                return None
            run, code = [], 0
            for _ in range(count):
                code += r.se(0)
                if not 0 <= code <= LC_MAX_CODE:
                    return None
                run.append(code)
            if not run[0] or not run[-1]:
                return None
            codes[k, lo:lo + count] = run
    except CodecError:
        return None
    return r.pos, freq_rows_from_codes(codes).astype(np.uint32)


def build_tables(freqs) -> tuple[np.ndarray, np.ndarray]:
    """Decoding tables (spec 7.3): fc[k, s] = freq | cum << 16 per symbol, sy[k, slot] = the symbol
    of a slot (all zero for an empty class)."""
    f = np.asarray(freqs, dtype=np.uint32)
    K, alphabet = f.shape
    cum = np.zeros_like(f)
    if alphabet:
        cum[:, 1:] = np.cumsum(f, axis=1)[:, :-1]
    fc = f | (cum << 16)
    sy = np.zeros((K, LC_PROB_SCALE), dtype=np.uint8)
    for k in range(K):
        if f[k].sum():
            sy[k] = np.repeat(np.arange(alphabet, dtype=np.uint8), f[k])
    return fc, sy


def simd_available() -> bool:
    """The reference has no vector kernel."""
    return False


def set_simd(enabled: bool) -> bool:
    """No effect in the reference (the compiled twin's switch); returns False."""
    return False


def _check_nstates(nstates: int) -> None:
    if nstates not in (1, 2, 4, 8, 16, 32):
        raise ValueError(f"nstates must be 1, 2, 4, 8, 16 or 32, got {nstates}")


def encode(sym, row_class, cols: int, freq, cum, capacity: int = -1, states=None, first: int = 0, *,
           nstates: int = LC_STATES):
    """Encode symbols (uint8, C order over rows x cols) with per-row-class tables (K x alphabet)
    and ``nstates`` interleaved states (element i uses state i mod nstates).

    Returns (status, states, words): the nstates final states and the little-endian 16-bit words
    in decoder order. ``capacity`` is a buffer-size hint of the compiled twin (which retries with
    the worst case when it is too small); the reference has no fixed buffer.

    A layer can be coded in pieces, last piece first: ``first`` is the element index of ``sym[0]``
    in the layer (its row is ``first // cols`` of ``row_class``, its state ``first % nstates``)
    and ``states`` the states the following piece left (default: the initial states). The words
    of the pieces, in layer order, are the layer's words.
    """
    sym = np.asarray(sym).reshape(-1).tolist()
    row_class = np.asarray(row_class).reshape(-1).tolist()
    freq = np.asarray(freq).tolist()
    cum = np.asarray(cum).tolist()
    _check_nstates(nstates)
    st = [LC_RANS_L] * nstates if states is None else [int(x) for x in states]
    if len(st) != nstates or first < 0:
        raise ValueError(f"states must be {nstates} integers and first >= 0")
    if sym and cols and (first + len(sym) - 1) // cols >= len(row_class):
        raise ValueError("row_class has fewer rows than the symbols need")
    out: list[int] = []
    for j in range(len(sym) - 1, -1, -1):
        i = first + j
        cls = row_class[i // cols] if cols else 0
        f = freq[cls][sym[j]]
        if f == 0:
            return LC_ERR_ZERO_FREQ, None, None
        x = st[i % nstates]
        if x >= f << (32 - LC_PROB_BITS):
            out.append(x & 0xFFFF)
            x >>= 16
        st[i % nstates] = ((x // f) << LC_PROB_BITS) + (x % f) + cum[cls][sym[j]]
    out.reverse()
    return LC_OK, st, np.array(out, dtype="<u2").tobytes()


def decode(words, states, fc, sy, row_class, rows: int, cols: int, E: int, escapes, out_kind: int, out,
           scale=None, zero_point=None, codebook=None):
    """Decode rows x cols levels into ``out`` (flat int64, int32 or float32 by ``out_kind``), with
    as many interleaved states as ``states`` has (1, 2, 4, 8, 16 or 32).

    Returns (status, at, out); on an error ``at`` is relative to the start of ``words`` (negative
    for a bad lc_rans_state, which precedes them) and the last item the state's number.
    """
    with np.errstate(over="ignore"):  # (level - zero point) * step beyond binary32: +-inf, as in C
        return _decode(words, states, fc, sy, row_class, rows, cols, E, escapes, out_kind, out,
                       scale, zero_point, codebook)


def _decode(words, states, fc, sy, row_class, rows, cols, E, escapes, out_kind, out, scale, zero_point, codebook):
    words = np.frombuffer(memoryview(words).cast("B")[: len(words) // 2 * 2], dtype="<u2").tolist()
    st = [int(x) for x in states]
    S = len(st)
    _check_nstates(S)
    for j, x in enumerate(st):
        if x < LC_RANS_L:
            return LC_ERR_BAD_STATE, -4 * (S - j), j
    rc = np.asarray(row_class).reshape(-1)
    if rows and cols and (len(fc) == 0 or len(sy) != len(fc) or rc.size < rows
                          or (rc.size and int(rc[:rows].max()) >= len(fc))):
        raise ValueError("fc, sy and row_class must give a table to every row")
    fc = np.asarray(fc).tolist()
    sy = np.asarray(sy).tolist()
    # a class whose table is one symbol of frequency 2^14 leaves the states as they are and reads no
    # word: its rows are that symbol throughout (an all-zero layer decodes in one step per row)
    single = [next((s for s, e in enumerate(t) if e & 0xFFFF == LC_PROB_SCALE), None) for t in fc]
    esc_sym = 2 * E + 1
    wp = ep = 0
    i = 0
    mask = LC_PROB_SCALE - 1
    f32, i64 = np.float32, np.int64
    for r in range(rows if cols else 0):
        cls = int(row_class[r])
        tfc = fc[cls]
        tsy = sy[cls]
        dq = [0]
        if single[cls] is not None and single[cls] != esc_sym:
            status = _emit_row(single[cls] - E, out_kind, out, i, cols, r, scale, zero_point, codebook, dq)
            if status:
                return status, 0, 0
            i += cols
            continue
        for _ in range(cols):
            x = st[i % S]
            slot = x & mask
            s = tsy[slot]
            e = tfc[s]
            x = (e & 0xFFFF) * (x >> LC_PROB_BITS) + slot - (e >> 16)
            if x < LC_RANS_L:
                if wp >= len(words):
                    return LC_ERR_WORDS_TRUNCATED, 0, 0
                x = (x << 16) | words[wp]
                wp += 1
            st[i % S] = x & 0xFFFFFFFF
            if s == esc_sym:
                if ep >= len(escapes):
                    return LC_ERR_ESCAPES, 0, 0
                level = int(escapes[ep])  # a Python int: level - zero point must not wrap as int64 does
                ep += 1
            else:
                level = s - E
            if out_kind in (LC_OUT_I64, LC_OUT_I32, LC_OUT_I16):
                out[i] = level
            elif out_kind == LC_OUT_DQ:
                status = _emit_row(level, out_kind, out, i, 1, r, scale, zero_point, codebook, dq)
                if status:
                    return status, 0, 0
            elif out_kind == LC_OUT_AFFINE:
                d = level - int(zero_point[r])
                if not -(1 << 63) <= d < 1 << 63:
                    return LC_ERR_AFFINE_RANGE, 0, 0
                out[i] = f32(i64(d)) * f32(scale[r])  # one rounding of d, as C's (float)d
            else:
                if not 0 <= level < len(codebook):
                    return LC_ERR_CODEBOOK, 0, 0
                out[i] = codebook[level]
            i += 1
    if ep != len(escapes):
        return LC_ERR_ESCAPES, 0, 0
    if wp != len(words):
        return LC_ERR_WORDS_LEFT, 0, 0
    if any(x != LC_RANS_L for x in st):
        return LC_ERR_FINAL_STATE, 0, 0
    return LC_OK, 0, out


#: The output dtype of each out_kind (decode's ``out``; decode_payload makes one when ``out`` is None).
OUT_DTYPES = {LC_OUT_I64: np.int64, LC_OUT_I32: np.int32, LC_OUT_I16: np.int16, LC_OUT_AFFINE: np.float32,
                   LC_OUT_CODEBOOK: np.float32, LC_OUT_DQ: np.float32}


def _payload_output(rows: int, cols: int, out_kind: int, out, scale, zero_point, codebook):
    """decode_payload's output (``out``, or a new array of ``out_kind``'s dtype), or None for arguments it
    does not take; both twins call this."""
    dtype = OUT_DTYPES.get(out_kind)
    if dtype is None or rows <= 0 or cols <= 0 or rows * cols >= 1 << 63:
        return None
    if out_kind in (LC_OUT_AFFINE, LC_OUT_DQ) and (scale is None or len(scale) < rows):
        return None
    if out_kind == LC_OUT_AFFINE and (zero_point is None or len(zero_point) < rows):
        return None
    if out_kind == LC_OUT_CODEBOOK and codebook is None:
        return None
    n = rows * cols
    if out is None:
        return np.empty(n, dtype=dtype)
    if (type(out) is not np.ndarray or out.dtype != dtype or out.shape != (n,) or not out.flags.c_contiguous
            or not out.flags.writeable):
        return None
    return out


def _parse_payload(data, rows: int, cols: int, version: int):
    """The elements of a ``levels_payload()`` (spec 7.4) of the common kind, for :func:`decode_payload`:
    (E, K, lc_model, k0, freqs, row_class, escapes, states, byte offset of the words), or None for a payload
    of another kind or one that breaks any rule: a version 1 payload (version 1 = spec 7.2), an empty grid,
    more than one chunk, an escape magnitude of 2^62 or more, and everything the reader rejects."""
    from .bitio import BitReader

    if version not in (2, 3) or rows <= 0 or cols <= 0:
        return None
    n = rows * cols
    buf = memoryview(data).cast("B")
    r = BitReader(buf)
    try:
        E = r.ue(0)
        if E > 127:
            return None
        alphabet = 2 * E + 2
        K = r.u(4) + 1
        log2 = r.u(3)
        model = r.u(2)
        if log2 > 5 or model > 1 or (version == 2 and model != 0):
            return None
        S, k0 = 1 << log2, 0
        row_class = np.zeros(rows, dtype=np.uint8)
        freqs = None
        if model == 1:
            if K != 1 or S != 1:
                return None
            k0 = r.u(3)
        else:
            got = read_tables(buf, r.pos, K, alphabet)
            if got is None:
                return None
            r.pos, freqs = got
            used = [0]
            if K > 1:
                row_class = r.u_array((K - 1).bit_length(), rows).astype(np.uint8)
                if int(row_class.max()) >= K:
                    return None
                used = np.unique(row_class).tolist()
            if any(not freqs[k].any() for k in used):  # a used class with an empty table
                return None
        count = r.ue(0)
        if count > n or count * 2 > r.bits_left():
            return None
        escapes = []
        for _ in range(count):
            negative = r.u(1)
            magnitude = r.ue(0)
            if magnitude >= 1 << 62:
                return None
            escapes.append(-(magnitude + E + 1) if negative else magnitude + E + 1)
        if r.ue(0) != 0:  # lc_num_chunks_minus1: one chunk
            return None
        r.byte_alignment()
    except CodecError:
        return None
    at = r.pos // 8
    if 4 * S > len(buf) - at:
        return None
    states = [int.from_bytes(buf[at + 4 * j:at + 4 * j + 4], "little") for j in range(S)]
    at += 4 * S
    left = len(buf) - at
    if left % 2 or left // 2 > (n * 14 if model == 1 else n):  # 14: LA_MAX_BINS
        return None
    return E, K, model, k0, freqs, row_class, escapes, states, at


def decode_payload(payload, rows: int, cols: int, version: int, out_kind: int, out=None, scale=None,
                   zero_point=None, codebook=None):
    """Decode a small layer's whole ``levels_payload()`` (``version`` 2 or 3, one chunk) into ``out`` (or a new
    array of ``out_kind``'s dtype) as :func:`decode` and the adaptive decoder do, in one call: the array, or
    None where this path does not take the payload. None for every payload :func:`_parse_payload` does not
    take, for an ``out`` that is not a writable contiguous array of the grid's size and dtype, for missing or
    short ``scale`` / ``zero_point`` / ``codebook``, for an escape that does not fit an int32 / int16 output, and
    for any status the decoder returns: the caller then reads and decodes the payload element by element,
    which raises the error with its syntax path (the compiled twin is this layer's whole fixed cost; the
    reader's path costs several times a small layer's levels)."""
    out = _payload_output(rows, cols, out_kind, out, scale, zero_point, codebook)
    if out is None:
        return None
    parsed = _parse_payload(payload, rows, cols, version)
    if parsed is None:
        return None
    E, K, model, k0, freqs, row_class, escapes, states, at = parsed
    if out_kind in (LC_OUT_I32, LC_OUT_I16):
        bound = 1 << 31 if out_kind == LC_OUT_I32 else 1 << 15
        if any(not -bound <= e < bound for e in escapes):
            return None
    words = memoryview(payload).cast("B")[at:]
    if model == 1:
        from . import adaptive

        status = adaptive.decode(words, states[0], rows, cols, E, k0, escapes, out_kind, out, scale, zero_point,
                                 codebook)[0]
    else:
        if min(states) < LC_RANS_L:
            return None
        fc, sy = build_tables(freqs)
        status = decode(words, states, fc, sy, row_class, rows, cols, E, escapes, out_kind, out, scale, zero_point,
                        codebook)[0]
    return out if status == 0 else None
