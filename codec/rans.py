"""Interleaved static rANS in pure Python: the reference for ``codec._fast._rans``.

Same contract as the C kernels in ``codec/_fast/rans_impl.h`` (spec/bitstream.md section 7.3):
``encode`` returns the final states and the 16-bit words; ``decode`` returns an error code
(0 = ok, negative as in ``ERRORS``) and fills the output array.
"""

from __future__ import annotations

import numpy as np

__all__ = ["build_tables", "STATES", "PROB_BITS", "PROB_SCALE", "RANS_L", "ERRORS", "encode", "decode",
           "OUT_I64", "OUT_AFFINE", "OUT_CODEBOOK", "OUT_I32"]

STATES = 8
PROB_BITS = 14
PROB_SCALE = 1 << PROB_BITS
RANS_L = 1 << 16

OUT_I64, OUT_AFFINE, OUT_CODEBOOK, OUT_I32 = 0, 1, 2, 3

ERRORS = {
    -1: "rANS words end before the last level",
    -2: "rANS final state is not the initial state (corrupt payload)",
    -3: "escape count does not match the escape symbols",
    -4: "rANS words left over after the last level",
    -5: "codebook index out of range",
    -6: "rANS initial state below 2^16",
    -7: "symbol with zero frequency",
    -8: "rANS output buffer too small",
}


def encode(sym: np.ndarray, row_class: np.ndarray, cols: int, freq: np.ndarray, cum: np.ndarray, capacity: int = -1):
    """Encode symbols (uint8, C order over rows x cols) with per-row-class tables (K x A).

    Returns (error_code, states, words): states is a list of STATES ints, words a bytes object of
    little-endian 16-bit words in decoder order. ``capacity`` is a buffer-size hint of the compiled
    twin (the reference has no fixed buffer).
    """
    sym = sym.reshape(-1).tolist()
    row_class = row_class.tolist()
    freq = freq.tolist()
    cum = cum.tolist()
    st = [RANS_L] * STATES
    out: list[int] = []
    for i in range(len(sym) - 1, -1, -1):
        cls = row_class[i // cols] if cols else 0
        f = freq[cls][sym[i]]
        if f == 0:
            return -7, None, None
        x = st[i % STATES]
        if x >= f << (32 - PROB_BITS):
            out.append(x & 0xFFFF)
            x >>= 16
        st[i % STATES] = ((x // f) << PROB_BITS) + (x % f) + cum[cls][sym[i]]
    out.reverse()
    return 0, st, np.array(out, dtype="<u2").tobytes()


def decode(words, states, fc: np.ndarray, sy: np.ndarray, row_class: np.ndarray, rows: int, cols: int,
           E: int, escapes: list[int], out_kind: int, out: np.ndarray, scale=None, zero_point=None,
           codebook=None) -> int:
    """Decode rows x cols levels into ``out`` (int64 or float32, flat); return an error code."""
    words = np.frombuffer(words, dtype="<u2").tolist()
    st = list(states)
    if any(x < RANS_L for x in st):
        return -6
    fc = fc.tolist()
    sy = sy.tolist()
    esc_sym = 2 * E + 1
    wp = ep = 0
    i = 0
    mask = PROB_SCALE - 1
    f32 = np.float32
    for r in range(rows):
        cls = int(row_class[r])
        tfc = fc[cls]
        tsy = sy[cls]
        for _ in range(cols):
            x = st[i % STATES]
            slot = x & mask
            s = tsy[slot]
            e = tfc[s]
            x = (e & 0xFFFF) * (x >> PROB_BITS) + slot - (e >> 16)
            if x < RANS_L:
                if wp >= len(words):
                    return -1
                x = (x << 16) | words[wp]
                wp += 1
            st[i % STATES] = x & 0xFFFFFFFF
            if s == esc_sym:
                if ep >= len(escapes):
                    return -3
                level = escapes[ep]
                ep += 1
            else:
                level = s - E
            if out_kind in (OUT_I64, OUT_I32):
                out[i] = level
            elif out_kind == OUT_AFFINE:
                out[i] = f32(level - int(zero_point[r])) * f32(scale[r])
            else:
                if not 0 <= level < len(codebook):
                    return -5
                out[i] = codebook[level]
            i += 1
    if ep != len(escapes):
        return -3
    if wp != len(words):
        return -4
    if any(x != RANS_L for x in st):
        return -2
    return 0


def build_tables(freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decoding tables (spec 7.3): fc[k, s] = freq | cum << 16 per symbol, sy[k, slot] = the symbol
    of a slot (all zero for an empty class)."""
    K, alphabet = freqs.shape
    f = freqs.astype(np.uint32)
    cum = np.zeros_like(f)
    if alphabet:
        cum[:, 1:] = np.cumsum(f, axis=1)[:, :-1]
    fc = f | (cum << 16)
    sy = np.zeros((K, PROB_SCALE), dtype=np.uint8)
    for k in range(K):
        if f[k].sum():
            sy[k] = np.repeat(np.arange(alphabet, dtype=np.uint8), f[k])
    return fc, sy


def symbols(q: np.ndarray, rows: int, cols: int):
    """Return (E, sym, row_counts): the escape limit min(127, max |level|), the symbol of each level
    (level + E, or the escape symbol 2E + 1) and each row's symbol counts (spec 7.1)."""
    q = np.asarray(q, dtype=np.int64).reshape(-1)
    n = q.size
    if n:
        top = max(int(q.max()), -int(q.min()))
    else:
        top = 0
    E = min(127, top)
    alphabet = 2 * E + 2
    escaped = (q > E) | (q < -E)  # not np.abs: abs(-2^63) overflows
    sym = np.where(escaped, 2 * E + 1, q + E).astype(np.uint8) if n else np.zeros(0, np.uint8)
    counts = np.zeros((rows, alphabet), dtype=np.int64)
    if n:
        rid = np.repeat(np.arange(rows, dtype=np.int64), cols) * alphabet
        counts = np.bincount(rid + sym, minlength=rows * alphabet).reshape(rows, alphabet)
    return E, sym, counts
