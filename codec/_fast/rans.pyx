# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Interleaved static rANS kernels of the level coder: twin of codec.kernels.rans (GIL released)."""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, int8_t, int16_t, int32_t, int64_t, uint64_t
from libc.stdlib cimport malloc, calloc, free

import numpy as np

cdef extern from "rans_impl.h" nogil:
    enum:
        LC_STATES
        LC_MAX_STATES
        LC_PROB_BITS
        LC_PROB_SCALE
        LC_RANS_L
        LC_OUT_I64
        LC_OUT_AFFINE
        LC_OUT_CODEBOOK
        LC_OUT_I32
        LC_OUT_I16
        LC_OUT_DQ
        LC_ERR_BAD_STATE
        LC_ERR_OVERFLOW
    void lc_dq_init()
    int lc_encode(const uint8_t *sym, size_t n, const uint8_t *row_class, size_t cols,
                  const uint32_t *freq, const uint32_t *cum, size_t alphabet, uint16_t *out_begin,
                  uint16_t *out_end, uint16_t **out_start, const uint32_t *states_in, size_t first,
                  uint32_t *states_out, int nstates)
    void lc_build_tables(const uint32_t *freq, size_t K, size_t alphabet, uint32_t *fc, uint8_t *sy)
    int lc_read_tables(const uint8_t *buf, size_t nbits, size_t pos, size_t K, size_t alphabet, uint32_t *freq,
                       size_t *pos_out)
    void lc_freqs_from_codes(const int32_t *codes, size_t alphabet, uint32_t *f)
    int lc_decode(const uint8_t *words, size_t nwords, const uint32_t *states_in,
                  const uint32_t *fc, size_t alphabet, const uint8_t *sy, const uint8_t *row_class,
                  size_t rows, size_t cols,
                  int64_t E, const int64_t *escapes, size_t nesc, int out_kind, int64_t *out_i64,
                  float *out_f32, const float *scale, const int64_t *zero_point, const float *codebook,
                  size_t codebook_size, int nstates, int simd)
    int lc_cpu_has_avx2()

cdef extern from "payload_impl.h" nogil:
    enum:
        LP_OK
        LP_NO_MEMORY
    ctypedef struct lp_payload:
        int escape_limit
        int classes
        int states
        int model
        int eg_order
        uint32_t freq[4096]
        size_t nesc
        int64_t *escapes
        uint32_t state[32]
        size_t words_at
        size_t nwords
    int lp_parse(const uint8_t *buf, size_t nbytes, size_t rows, size_t cols, int version, lp_payload *p,
                 uint8_t *row_class)
    int la_decode(const uint8_t *words, size_t nwords, uint32_t state, size_t rows, size_t cols, int E, int k0,
                  const int64_t *escapes, size_t nesc, int out_kind, int64_t *out_i64, float *out_f32,
                  const float *scale, const int64_t *zero_point, const float *codebook, size_t codebook_size,
                  size_t *at)

include "lc_out.pxi"

lc_dq_init()  # the trellis block table of LC_OUT_DQ (once, at import, under the GIL)


def _check_nstates(int nstates):
    if nstates not in (1, 2, 4, 8, 16, 32):
        raise ValueError(f"nstates must be 1, 2, 4, 8, 16 or 32, got {nstates}")


def encode(sym, row_class, Py_ssize_t cols, freq, cum, Py_ssize_t capacity=-1, states=None, Py_ssize_t first=0, *,
           int nstates=LC_STATES):
    """Encode; ``capacity`` (words) bounds the output buffer, retried at the worst case if too small.
    ``states`` and ``first`` code a piece of a layer (see the reference)."""
    _check_nstates(nstates)
    if states is not None and len(states) != nstates or first < 0:
        raise ValueError(f"states must be {nstates} integers and first >= 0")
    if capacity >= 0:
        result = _encode(sym, row_class, cols, freq, cum, capacity, states, first, nstates)
        if result[0] != LC_ERR_OVERFLOW:
            return result
    return _encode(sym, row_class, cols, freq, cum, -1, states, first, nstates)


def _encode(sym, row_class, Py_ssize_t cols, freq, cum, Py_ssize_t capacity, states_in, Py_ssize_t first,
            int nstates):
    cdef const uint8_t[::1] s = np.ascontiguousarray(sym, dtype=np.uint8).reshape(-1)
    cdef const uint8_t[::1] rc = np.ascontiguousarray(row_class, dtype=np.uint8).reshape(-1)
    cdef const uint32_t[:, ::1] f = np.ascontiguousarray(freq, dtype=np.uint32)
    cdef const uint32_t[:, ::1] c = np.ascontiguousarray(cum, dtype=np.uint32)
    cdef size_t n = s.shape[0]
    cdef size_t alphabet = f.shape[1]
    cdef uint32_t states[LC_MAX_STATES]
    cdef uint32_t initial[LC_MAX_STATES]
    cdef const uint32_t *initial_ptr = NULL
    cdef Py_ssize_t words_max = n + 1 if capacity < 0 or capacity > n + 1 else capacity
    cdef uint16_t *buf
    cdef uint16_t *start = NULL
    cdef int rc_code
    cdef size_t at = first
    if states_in is not None:
        for j in range(nstates):
            initial[j] = states_in[j]
        initial_ptr = initial
    if n and cols and (first + n - 1) // cols >= <size_t>rc.shape[0]:
        raise ValueError("row_class has fewer rows than the symbols need")
    buf = <uint16_t *>malloc((words_max if words_max else 1) * sizeof(uint16_t))
    if buf == NULL:
        raise MemoryError()
    try:
        with nogil:
            rc_code = lc_encode(&s[0] if n else NULL, n, &rc[0] if rc.shape[0] else NULL, cols,
                                &f[0, 0], &c[0, 0], alphabet, buf, buf + words_max, &start, initial_ptr, at,
                                states, nstates)
        if rc_code:
            return rc_code, None, None
        nwords = (buf + words_max) - start
        words = (<char *>start)[:nwords * 2]
        if not _little_endian():
            words = np.frombuffer(words, dtype="=u2").astype("<u2").tobytes()
        return 0, [states[j] for j in range(nstates)], words
    finally:
        free(buf)


cdef bint _little_endian():
    cdef uint16_t one = 1
    return (<uint8_t *>&one)[0] == 1


cdef int _simd_enabled = 1


def simd_available():
    """Whether decode() has an AVX2 group kernel on this CPU (used for 16 and 32 states)."""
    return bool(lc_cpu_has_avx2())


def set_simd(bint enabled):
    """Enable or disable decode()'s AVX2 group kernel (identical results either way; tests and
    benchmarks compare the two). Returns the previous setting."""
    global _simd_enabled
    previous = bool(_simd_enabled)
    _simd_enabled = 1 if enabled else 0
    return previous


def decode(words, states, fc, sy, row_class, Py_ssize_t rows, Py_ssize_t cols, int64_t E, escapes,
           int out_kind, out, scale=None, zero_point=None, codebook=None):
    cdef const uint8_t[::1] w = memoryview(words).cast("B")
    cdef uint32_t st[LC_MAX_STATES]
    cdef int j
    cdef int nstates = len(states)
    _check_nstates(nstates)
    for j in range(nstates):
        if states[j] < LC_RANS_L:
            return LC_ERR_BAD_STATE, -4 * (nstates - j), j
        st[j] = states[j]
    cdef const uint32_t[:, ::1] tfc = np.ascontiguousarray(fc, dtype=np.uint32)
    cdef const uint8_t[:, ::1] tsy = np.ascontiguousarray(sy, dtype=np.uint8)
    cdef const uint8_t[::1] rc = np.ascontiguousarray(row_class, dtype=np.uint8).reshape(-1)
    if type(row_class) is not np.ndarray or row_class.dtype != np.uint8:  # as the reference sees it
        _check_row_class(tfc.shape[0], tsy.shape[0], row_class, rows, cols)
    _check_decode_args(tfc.shape[0], tsy.shape[0], rc, rows, cols)
    cdef const int64_t[::1] esc = np.ascontiguousarray(np.asarray(escapes, dtype=np.int64).reshape(-1))
    cdef size_t nwords = w.shape[0] // 2
    cdef int result
    cdef int simd = _simd_enabled
    cdef LcOut o
    keep = lc_out_pointers(out_kind, out, scale, zero_point, codebook, &o)
    with nogil:
        result = lc_decode(&w[0] if w.shape[0] else NULL, nwords, st,
                           &tfc[0, 0] if tfc.shape[0] else NULL, tfc.shape[1],
                           &tsy[0, 0] if tsy.shape[0] else NULL,
                           &rc[0] if rc.shape[0] else NULL, rows, cols, E,
                           &esc[0] if esc.shape[0] else NULL, esc.shape[0], out_kind, o.i64, o.f32, o.scale,
                           o.zero_point, o.codebook, o.codebook_size, nstates, simd)
    if result:
        return result, 0, 0
    return 0, 0, out


def _check_row_class(Py_ssize_t K, Py_ssize_t K_sy, row_class, Py_ssize_t rows, Py_ssize_t cols):
    rc = np.asarray(row_class).reshape(-1)
    if rows and cols and (K == 0 or K_sy != K or rc.size < rows or (rc.size and int(rc[:rows].max()) >= K)):
        raise ValueError("fc, sy and row_class must give a table to every row")


cdef int _check_decode_args(Py_ssize_t K, Py_ssize_t K_sy, const uint8_t[::1] rc, Py_ssize_t rows,
                            Py_ssize_t cols) except -1:
    # a loop, not numpy's max: a small layer's fixed cost
    cdef Py_ssize_t r
    cdef uint8_t top = 0
    if rows and cols:
        if K == 0 or K_sy != K or rc.shape[0] < rows:
            raise ValueError("fc, sy and row_class must give a table to every row")
        for r in range(rows):
            if rc[r] > top:
                top = rc[r]
        if top >= K:
            raise ValueError("fc, sy and row_class must give a table to every row")
    return 0


def freq_rows_from_codes(codes):
    """The frequencies of spec 7.2 of every row of a K x alphabet array of codes (int64)."""
    c = np.asarray(codes)
    if c.ndim != 2 or c.shape[1] > 256:
        raise ValueError("codes must be K x alphabet with alphabet <= 256")
    if c.size and (int(c.min()) < 0 or int(c.max()) > 64):
        raise ValueError("codes must be 0..64")
    cdef const int32_t[:, ::1] cc = np.ascontiguousarray(c, dtype=np.int32)
    out = np.zeros(c.shape, dtype=np.uint32)
    cdef uint32_t[:, ::1] o = out
    cdef Py_ssize_t k
    if c.shape[1]:
        for k in range(c.shape[0]):
            lc_freqs_from_codes(&cc[k, 0], c.shape[1], &o[k, 0])
    return out.astype(np.int64)


def read_tables(data, Py_ssize_t bitpos, int K, int alphabet):
    """K lc_table() from bit ``bitpos`` of ``data`` and their frequencies: (bit position after
    them, K x alphabet uint32), or None when anything is wrong (see the reference)."""
    cdef const uint8_t[::1] d = memoryview(data).cast("B")
    cdef size_t nbits = d.shape[0] * 8
    if bitpos < 0 or <size_t>bitpos > nbits:
        raise ValueError("bitpos outside data")
    if not 1 <= K <= 16 or not 2 <= alphabet <= 256:
        raise ValueError("read_tables needs 1 <= K <= 16 and 2 <= alphabet <= 256")
    freqs = np.zeros((K, alphabet), dtype=np.uint32)
    cdef uint32_t[:, ::1] f = freqs
    cdef size_t pos = 0
    cdef int rc
    with nogil:
        rc = lc_read_tables(&d[0] if nbits else NULL, nbits, bitpos, K, alphabet, &f[0, 0], &pos)
    if rc:
        return None
    return pos, freqs


def build_tables(freqs):
    """Return (fc, sy) decoding tables for K x alphabet frequencies."""
    cdef const uint32_t[:, ::1] f = np.ascontiguousarray(freqs, dtype=np.uint32)
    cdef size_t K = f.shape[0], alphabet = f.shape[1]
    # every entry of both is written by lc_build_tables (an empty table: all slots 0)
    fc = np.empty((K, alphabet), dtype=np.uint32) if K and alphabet else np.zeros((K, alphabet), dtype=np.uint32)
    sy = np.empty((K, LC_PROB_SCALE), dtype=np.uint8) if K and alphabet else np.zeros((K, LC_PROB_SCALE), np.uint8)
    cdef uint32_t[:, ::1] tfc = fc
    cdef uint8_t[:, ::1] tsy = sy
    if K and alphabet:
        with nogil:
            lc_build_tables(&f[0, 0], K, alphabet, &tfc[0, 0], &tsy[0, 0])
    return fc, sy


ctypedef fused level_t:
    int8_t
    int16_t
    int32_t
    int64_t


cdef object _symbols(const level_t[::1] v, Py_ssize_t rows, Py_ssize_t cols):
    cdef Py_ssize_t n = v.shape[0], i
    cdef uint64_t top = 0, a
    cdef int64_t x
    with nogil:
        for i in range(n):
            x = v[i]
            a = <uint64_t>(-x) if x < 0 else <uint64_t>x
            if a > top:
                top = a
    cdef int64_t E = <int64_t>(top if top < 127 else 127)
    cdef Py_ssize_t alphabet = 2 * E + 2
    sym = np.empty(n, dtype=np.uint8)
    counts = np.zeros((rows, alphabet), dtype=np.int64)
    cdef uint8_t[::1] s = sym
    cdef int64_t[:, ::1] c = counts
    cdef uint8_t code
    if n:
        with nogil:
            for i in range(n):
                x = v[i]
                code = <uint8_t>(2 * E + 1) if (x > E or x < -E) else <uint8_t>(x + E)
                s[i] = code
                c[i // cols, code] += 1
    return int(E), sym, counts


def count_symbols(sym, group, Py_ssize_t start, Py_ssize_t cols, hist):
    """Add the symbols' counts to hist by their rows' groups (see the reference); GIL released."""
    from codec.kernels.rans import _check_count_args
    sym = np.asarray(sym)
    group = np.asarray(group)
    _check_count_args(sym, group, start, cols, hist)
    cdef const uint8_t[::1] s = np.ascontiguousarray(sym)
    cdef const uint8_t[::1] g = np.ascontiguousarray(group)
    cdef int64_t[:, ::1] h = hist
    cdef size_t n = s.shape[0]
    if n == 0:
        return
    if cols <= 0:
        raise ValueError("cols must be > 0 when there are symbols")
    cdef size_t r0 = start // cols, r1 = (start + n - 1) // cols
    if r1 >= <size_t>g.shape[0]:
        raise ValueError("group has fewer rows than the symbols need")
    cdef size_t groups = h.shape[0], alphabet = h.shape[1]
    cdef size_t r, j, k, col, take
    cdef uint8_t top_g = 0, top_s = 0
    for r in range(r0, r1 + 1):
        if g[r] > top_g:
            top_g = g[r]
    with nogil:
        for j in range(n):
            if s[j] > top_s:
                top_s = s[j]
    if top_g >= groups or top_s >= alphabet:
        raise ValueError("a group or symbol is outside hist")
    # four interleaved count tables: a run of equal symbols does not wait on one counter's store
    # (uint32: fewer than 2^32 symbols a call)
    cdef uint32_t *t = <uint32_t *>calloc(4 * groups * alphabet, sizeof(uint32_t))
    if t == NULL:
        raise MemoryError()
    cdef size_t size = groups * alphabet
    cdef uint32_t *base
    try:
        with nogil:
            j = 0
            r = r0
            col = start - r0 * cols
            while j < n:
                take = cols - col
                if take > n - j:
                    take = n - j
                base = t + g[r] * alphabet
                k = 0
                while k + 4 <= take:
                    base[s[j + k]] += 1
                    base[size + s[j + k + 1]] += 1
                    base[2 * size + s[j + k + 2]] += 1
                    base[3 * size + s[j + k + 3]] += 1
                    k += 4
                while k < take:
                    base[s[j + k]] += 1
                    k += 1
                j += take
                r += 1
                col = 0
            for k in range(size):
                h[k // alphabet, k % alphabet] += <int64_t>t[k] + t[size + k] + t[2 * size + k] + t[3 * size + k]
    finally:
        free(t)


def symbols(q, Py_ssize_t rows, Py_ssize_t cols):
    """Return (E, sym, row_counts) for integer levels; int8, int16 and int32 levels are read as they
    are (no int64 copy of a large layer)."""
    a = np.asarray(q).reshape(-1)
    if a.dtype == np.int8:
        return _symbols[int8_t](np.ascontiguousarray(a), rows, cols)
    if a.dtype == np.int16:
        return _symbols[int16_t](np.ascontiguousarray(a), rows, cols)
    if a.dtype == np.int32:
        return _symbols[int32_t](np.ascontiguousarray(a), rows, cols)
    return _symbols[int64_t](np.ascontiguousarray(a, dtype=np.int64), rows, cols)


from codec.kernels.rans import _payload_output  # noqa: E402


def decode_payload(payload, Py_ssize_t rows, Py_ssize_t cols, int version, int out_kind, out=None, scale=None,
                   zero_point=None, codebook=None):
    """A small layer's whole levels_payload() in one call: the decoded array, or None where this path
    does not take the payload (see the reference)."""
    out = _payload_output(rows, cols, out_kind, out, scale, zero_point, codebook)  # (the reference's checks)
    if out is None:
        return None
    cdef const uint8_t[::1] buf = memoryview(payload).cast("B")
    cdef size_t nbytes = buf.shape[0]
    cdef lp_payload *p = <lp_payload *>malloc(sizeof(lp_payload))
    cdef uint8_t *rc = <uint8_t *>malloc(rows)
    cdef uint32_t *fc = NULL
    cdef uint8_t *sy = NULL
    cdef int status = -1
    cdef int simd = _simd_enabled
    cdef int j
    cdef size_t at = 0, e
    cdef LcOut o
    if p == NULL or rc == NULL:
        free(p)
        free(rc)
        raise MemoryError
    p.escapes = NULL
    try:
        keep = lc_out_pointers(out_kind, out, scale, zero_point, codebook, &o)
        with nogil:
            status = lp_parse(&buf[0] if nbytes else NULL, nbytes, rows, cols, version, p, rc)
        if status == LP_NO_MEMORY:
            raise MemoryError
        if status != LP_OK:
            return None
        if out_kind in (LC_OUT_I32, LC_OUT_I16):  # the levels must fit (E <= 127: only escapes may not)
            bound = (1 << 31) if out_kind == LC_OUT_I32 else (1 << 15)
            for e in range(p.nesc):
                if not -bound <= p.escapes[e] < bound:
                    return None
        if p.model == 1:
            with nogil:
                status = la_decode(&buf[p.words_at], p.nwords, p.state[0], rows, cols, p.escape_limit, p.eg_order,
                                   p.escapes, p.nesc, out_kind, o.i64, o.f32, o.scale, o.zero_point, o.codebook,
                                   o.codebook_size, &at)
        else:
            for j in range(p.states):
                if p.state[j] < LC_RANS_L:
                    return None
            # room (zeroed: empty tables) for every class a row's u(B) can name, not only the K checked
            nclass = 1 << (p.classes - 1).bit_length()
            fc = <uint32_t *>calloc(nclass * (2 * p.escape_limit + 2), sizeof(uint32_t))
            sy = <uint8_t *>calloc(nclass, LC_PROB_SCALE)
            if fc == NULL or sy == NULL:
                raise MemoryError
            with nogil:
                lc_build_tables(p.freq, p.classes, 2 * p.escape_limit + 2, fc, sy)
                status = lc_decode(&buf[p.words_at] if p.nwords else NULL, p.nwords, p.state, fc,
                                   2 * p.escape_limit + 2, sy, rc, rows, cols, p.escape_limit, p.escapes, p.nesc,
                                   out_kind, o.i64, o.f32, o.scale, o.zero_point, o.codebook, o.codebook_size,
                                   p.states, simd)
        return out if status == 0 else None
    finally:
        free(p.escapes)
        free(p)
        free(rc)
        free(fc)
        free(sy)
