"""Adaptive binary-context level coding (lc_model 1, spec/bitstream.md section 7.5) in pure Python:
the reference for ``codec._fast.adaptive`` (whose C lives in ``codec/_fast/adaptive_impl.h``).

A level is binarised (significance, sign, two greater-than flags, an Exp-Golomb remainder); each bin
is coded with one rANS state and the probability of an adaptive context chosen from the previous
level of the row and the row's recent magnitude. Contexts adapt as the chunk is coded, so small
layers pay no table bytes and neighbouring weights inform each other (what DeepCABAC exploits).

The constants below carry the C header's names; ``tests/test_constants.py`` fails if they differ.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError
from .rans import LC_ERR_DQ_LEVEL, _emit_row

__all__ = ["LA_PROB_BITS", "LA_PROB_ONE", "LA_PROB_INIT", "LA_RATE_FAST", "LA_RATE_SLOW", "LA_GT_FLAGS",
           "LA_ACT_CLASSES", "LA_MAX_PREFIX", "LA_MAX_EG_ORDER", "LA_NUM_CTX", "LA_COST_ONE", "ERRORS",
           "LA_MAX_BINS", "clip_levels", "encode", "decode", "cost", "costs", "cost_table"]

#: Probabilities of a bin being 1 are in units of 2^-LA_PROB_BITS.
LA_PROB_BITS = 15
LA_PROB_ONE = 1 << LA_PROB_BITS
#: Both estimates of every context start at one half.
LA_PROB_INIT = 1 << (LA_PROB_BITS - 1)
#: Adaptation shifts of the fast and the slow estimate of a context.
LA_RATE_FAST = 4
LA_RATE_SLOW = 8
#: Greater-than flags before the remainder (|level| > 1, |level| > 2).
LA_GT_FLAGS = 2
#: Activity classes g = bit length of min(act >> 1, 63): 0..6.
LA_ACT_CLASSES = 7
#: Most ones in a remainder prefix (one more is an error).
LA_MAX_PREFIX = 7
#: Largest lc_eg_order.
LA_MAX_EG_ORDER = 7
#: Most bins of one level: sig, sign, LA_GT_FLAGS gt flags, LA_MAX_PREFIX + 1 prefix bins, msb, one bypass field.
LA_MAX_BINS = 14
#: Context sets, in this order in the context array: sig[g][min(|prev|, 2)], sign[class of prev],
#: gt[k - 1][g], prefix[i][g], msb[prefix length][g].
LA_CTX_SIG = 0
LA_CTX_SIGN = LA_CTX_SIG + 3 * LA_ACT_CLASSES
LA_CTX_GT = LA_CTX_SIGN + 3
LA_CTX_PREFIX = LA_CTX_GT + LA_GT_FLAGS * LA_ACT_CLASSES
LA_CTX_MSB = LA_CTX_PREFIX + (LA_MAX_PREFIX + 1) * LA_ACT_CLASSES
LA_NUM_CTX = LA_CTX_MSB + (LA_MAX_PREFIX + 1) * LA_ACT_CLASSES
#: Lower bound of a normalised state; the state moves 16-bit words.
LA_RANS_L = 1 << 16
#: Costs of :func:`cost` are in units of 2^-16 bit.
LA_COST_ONE = 1 << 16

LA_OK = 0
LA_ERR_WORDS_TRUNCATED = -1
LA_ERR_FINAL_STATE = -2
LA_ERR_ESCAPES = -3
LA_ERR_WORDS_LEFT = -4
LA_ERR_CODEBOOK = -5
LA_ERR_BAD_STATE = -6
LA_ERR_PREFIX = -7
LA_ERR_MAGNITUDE = -8
LA_ERR_AFFINE_RANGE = -9
LA_ERR_ESCAPE_SIGN = -10

#: status -> (error class, element, reason); ``at`` is the byte offset in lc_rans_words reached.
ERRORS = {
    LA_ERR_WORDS_TRUNCATED: (FormatError, "lc_rans_words", "rANS words end before the last level"),
    LA_ERR_FINAL_STATE: (FormatError, "lc_rans_words", "rANS final state is not the initial state (corrupt payload)"),
    LA_ERR_ESCAPES: (FormatError, "lc_rans_words", "escape count does not match the escaped levels"),
    LA_ERR_WORDS_LEFT: (FormatError, "lc_rans_words", "rANS words left over after the last level"),
    LA_ERR_CODEBOOK: (FormatError, "lc_rans_words", "codebook index out of range"),
    LA_ERR_BAD_STATE: (FormatError, "lc_rans_state[{}]", "rANS initial state below 2^16"),
    LA_ERR_PREFIX: (FormatError, "lc_rans_words", "remainder prefix longer than 7 bins"),
    LA_ERR_MAGNITUDE: (FormatError, "lc_rans_words", "level magnitude exceeds lc_escape_limit + 1"),
    LA_ERR_ESCAPE_SIGN: (FormatError, "lc_rans_words", "an escaped level's sign differs from its sign bin"),
    LA_ERR_AFFINE_RANGE: (FormatError, "lc_rans_words", "a level minus its zero point does not fit int64"),
    LC_ERR_DQ_LEVEL: (FormatError, "lc_rans_words", "a dq level's magnitude must be below 2^31"),
}



def clip_levels(q, E: int) -> np.ndarray:
    """Levels clipped to [-(E + 1), E + 1] as int16: what the bins code (|level| = E + 1 marks an
    escaped level, whose value is in the escape list)."""
    q = np.asarray(q).reshape(-1)
    if not 0 <= E <= 127:
        raise ValueError("E must be 0..127")
    return np.clip(q, -(E + 1), E + 1).astype(np.int16)


def _activity_class(act: int) -> int:
    return min(act >> 1, 63).bit_length()


def _binarise(c: list, cols: int, E: int, k0: int):
    """Yield (context or -1, bin value, bypass bit count) for every bin of the clipped levels ``c``
    (rows of ``cols``), in coding order; context -1: ``value`` is ``n`` bypass bits."""
    p1 = act = 0
    for i, v in enumerate(c):
        if cols and i % cols == 0:
            p1 = act = 0
        g = _activity_class(act)
        a1 = -p1 if p1 < 0 else p1
        m = -v if v < 0 else v
        yield LA_CTX_SIG + g * 3 + min(a1, 2), 1 if m else 0, 0
        if m:
            yield LA_CTX_SIGN + (0 if p1 == 0 else 1 if p1 > 0 else 2), 1 if v < 0 else 0, 0
            k = 1
            while k <= LA_GT_FLAGS and k <= E:
                yield LA_CTX_GT + (k - 1) * LA_ACT_CLASSES + g, 1 if m > k else 0, 0
                if m == k:
                    break
                k += 1
            if k > LA_GT_FLAGS and E > LA_GT_FLAGS:
                x = m - (LA_GT_FLAGS + 1) + (1 << k0)
                nb = x.bit_length() - 1 - k0
                for i_ in range(nb):
                    yield LA_CTX_PREFIX + i_ * LA_ACT_CLASSES + g, 1, 0
                yield LA_CTX_PREFIX + nb * LA_ACT_CLASSES + g, 0, 0
                n = nb + k0
                if n:
                    yield LA_CTX_MSB + nb * LA_ACT_CLASSES + g, (x >> (n - 1)) & 1, 0
                    if n > 1:
                        yield -1, x & ((1 << (n - 1)) - 1), n - 1
        p1 = v
        act += m - (act >> 1)


def _check(E: int, k0: int) -> None:
    if not 0 <= E <= 127:
        raise ValueError("E must be 0..127")
    if not 0 <= k0 <= LA_MAX_EG_ORDER:
        raise ValueError(f"k0 must be 0..{LA_MAX_EG_ORDER}")


def _levels_list(levels, E: int) -> list:
    a = np.asarray(levels).reshape(-1)
    if a.size and (int(a.max()) > E + 1 or int(a.min()) < -(E + 1)):
        raise ValueError("levels must be clipped to [-(E + 1), E + 1]")
    return a.tolist()


def encode(levels, cols: int, E: int, k0: int):
    """Encode clipped levels (rows of ``cols``; :func:`clip_levels`) as one chunk: returns (status,
    state, words), the final state (the decoder's initial state) and the little-endian 16-bit words
    in decoder order."""
    _check(E, k0)
    c = _levels_list(levels, E)
    pa = [LA_PROB_INIT] * LA_NUM_CTX
    pb = [LA_PROB_INIT] * LA_NUM_CTX
    entries = []  # (start, freq) of every bin, in coding order
    for ctx, value, n in _binarise(c, cols, E, k0):
        if ctx < 0:
            f = 1 << (LA_PROB_BITS - n)
            entries.append((value * f, f))
            continue
        a, b = pa[ctx], pb[ctx]
        p = (a + b) >> 1
        if value:
            entries.append((0, p))
            pa[ctx], pb[ctx] = a + ((LA_PROB_ONE - a) >> LA_RATE_FAST), b + ((LA_PROB_ONE - b) >> LA_RATE_SLOW)
        else:
            entries.append((p, LA_PROB_ONE - p))
            pa[ctx], pb[ctx] = a - (a >> LA_RATE_FAST), b - (b >> LA_RATE_SLOW)
    x = LA_RANS_L
    out: list[int] = []
    for start, f in reversed(entries):
        if x >= f << (32 - LA_PROB_BITS):  # ((L >> 15) << 16) * f = f << 17
            out.append(x & 0xFFFF)
            x >>= 16
        x = ((x // f) << LA_PROB_BITS) + x % f + start
    out.reverse()
    return LA_OK, x, np.array(out, dtype="<u2").tobytes()


def cost_table() -> np.ndarray:
    """-log2(p / 2^15) in units of 2^-16 bit for p = 0..2^15 - 1 (entry 0 unused), as uint32: the
    one table both backends' :func:`cost` use, so their choices agree."""
    p = np.arange(1, LA_PROB_ONE, dtype=np.float64)
    t = np.rint(-np.log2(p / LA_PROB_ONE) * LA_COST_ONE).astype(np.uint32)
    return np.concatenate(([0], t)).astype(np.uint32)


def cost(levels, cols: int, E: int, k0: int, table) -> int:
    """The code length of :func:`encode`'s bins in units of 2^-16 bit (with ``table`` =
    :func:`cost_table`), without coding: the encoder's choice of lc_eg_order and lc_model."""
    _check(E, k0)
    c = _levels_list(levels, E)
    t = np.asarray(table, dtype=np.uint32).tolist()
    if len(t) != LA_PROB_ONE:
        raise ValueError("table must have 2^15 entries")
    pa = [LA_PROB_INIT] * LA_NUM_CTX
    pb = [LA_PROB_INIT] * LA_NUM_CTX
    total = 0
    for ctx, value, n in _binarise(c, cols, E, k0):
        if ctx < 0:
            total += n * LA_COST_ONE
            continue
        a, b = pa[ctx], pb[ctx]
        p = (a + b) >> 1
        if value:
            total += t[p]
            pa[ctx], pb[ctx] = a + ((LA_PROB_ONE - a) >> LA_RATE_FAST), b + ((LA_PROB_ONE - b) >> LA_RATE_SLOW)
        else:
            total += t[LA_PROB_ONE - p]
            pa[ctx], pb[ctx] = a - (a >> LA_RATE_FAST), b - (b >> LA_RATE_SLOW)
    return total


class _Truncated(Exception):
    pass



def costs(levels, cols: int, E: int, k0s, table) -> list[int]:
    """:func:`cost` for each order of ``k0s`` (at most LA_MAX_EG_ORDER + 1 of them); the compiled
    twin walks the levels once (the sig, sign and gt bins do not depend on the order)."""
    orders = [int(k) for k in k0s]
    if len(orders) > LA_MAX_EG_ORDER + 1:
        raise ValueError(f"at most {LA_MAX_EG_ORDER + 1} orders")
    for k in orders:
        _check(E, k)
    return [cost(levels, cols, E, k, table) for k in orders]


def decode(words, state: int, rows: int, cols: int, E: int, k0: int, escapes, out_kind: int, out,
           scale=None, zero_point=None, codebook=None):
    """Decode one chunk of rows x cols levels into ``out`` (flat int64, int32, int16 or float32 by
    ``out_kind``, as :func:`codec.kernels.rans.decode`). Returns (status, at, out); on an error
    ``at`` is the byte offset in ``words`` reached (-4 for a bad state, which precedes them)."""
    _check(E, k0)
    with np.errstate(over="ignore"):
        return _decode(words, int(state), rows, cols, E, k0, escapes, out_kind, out, scale, zero_point, codebook)


def _decode(words, x, rows, cols, E, k0, escapes, out_kind, out, scale, zero_point, codebook):
    w = np.frombuffer(memoryview(words).cast("B")[: len(words) // 2 * 2], dtype="<u2").tolist()
    if x < LA_RANS_L:
        return LA_ERR_BAD_STATE, -4, 0
    nw = len(w)
    wp = 0
    pa = [LA_PROB_INIT] * LA_NUM_CTX
    pb = [LA_PROB_INIT] * LA_NUM_CTX
    mask = LA_PROB_ONE - 1

    def renorm(x):
        nonlocal wp
        if x < LA_RANS_L:
            if wp >= nw:
                raise _Truncated
            x = (x << 16) | w[wp]
            wp += 1
        return x

    def bin_(ctx):
        nonlocal x
        a, b = pa[ctx], pb[ctx]
        p = (a + b) >> 1
        slot = x & mask
        if slot < p:
            x = renorm(p * (x >> LA_PROB_BITS) + slot)
            pa[ctx], pb[ctx] = a + ((LA_PROB_ONE - a) >> LA_RATE_FAST), b + ((LA_PROB_ONE - b) >> LA_RATE_SLOW)
            return 1
        x = renorm((LA_PROB_ONE - p) * (x >> LA_PROB_BITS) + slot - p)
        pa[ctx], pb[ctx] = a - (a >> LA_RATE_FAST), b - (b >> LA_RATE_SLOW)
        return 0

    def bypass(n):
        nonlocal x
        f = 1 << (LA_PROB_BITS - n)
        slot = x & mask
        x = renorm(f * (x >> LA_PROB_BITS) + (slot & (f - 1)))
        return slot >> (LA_PROB_BITS - n)

    ep = 0
    try:
        i = 0
        for r in range(rows if cols else 0):
            p1 = act = 0
            dq = [0]
            for _ in range(cols):
                g = _activity_class(act)
                a1 = -p1 if p1 < 0 else p1
                m = 0
                negative = 0
                if bin_(LA_CTX_SIG + g * 3 + min(a1, 2)):
                    negative = bin_(LA_CTX_SIGN + (0 if p1 == 0 else 1 if p1 > 0 else 2))
                    m = 1
                    while m <= LA_GT_FLAGS and m <= E:
                        if not bin_(LA_CTX_GT + (m - 1) * LA_ACT_CLASSES + g):
                            break
                        m += 1
                    if m > LA_GT_FLAGS and E > LA_GT_FLAGS:
                        nb = 0
                        while bin_(LA_CTX_PREFIX + nb * LA_ACT_CLASSES + g):
                            nb += 1
                            if nb > LA_MAX_PREFIX:
                                return LA_ERR_PREFIX, 2 * wp, 0
                        n = nb + k0
                        xv = 1
                        if n:
                            xv = 2 | bin_(LA_CTX_MSB + nb * LA_ACT_CLASSES + g)
                            if n > 1:
                                xv = (xv << (n - 1)) | bypass(n - 1)
                        m = LA_GT_FLAGS + 1 + xv - (1 << k0)
                        if m > E + 1:
                            return LA_ERR_MAGNITUDE, 2 * wp, 0
                if m == E + 1:
                    if ep >= len(escapes):
                        return LA_ERR_ESCAPES, 2 * wp, 0
                    level = int(escapes[ep])
                    ep += 1
                    if (level < 0) != bool(negative):
                        return LA_ERR_ESCAPE_SIGN, 2 * wp, 0
                else:
                    level = -m if negative else m
                status = _emit_row(level, out_kind, out, i, 1, r, scale, zero_point, codebook, dq)
                if status:
                    return status, 2 * wp, 0
                i += 1
                cm = -m if negative else m
                p1 = cm
                act += m - (act >> 1)
    except _Truncated:
        return LA_ERR_WORDS_TRUNCATED, 2 * wp, 0
    if ep != len(escapes):
        return LA_ERR_ESCAPES, 2 * wp, 0
    if wp != nw:
        return LA_ERR_WORDS_LEFT, 2 * wp, 0
    if x != LA_RANS_L:
        return LA_ERR_FINAL_STATE, 2 * wp, 0
    return LA_OK, 0, out

