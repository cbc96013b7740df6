# The output pointers of a level decoder (rans.decode, adaptive.decode): included by both, so the two
# kernels take `out`, `scale`, `zero_point` and `codebook` the same way (LC_OUT_DQ: `scale` only).

cdef struct LcOut:
    int64_t *i64  # int64, int32 or int16 levels (the kernel casts by out_kind)
    float *f32
    const float *scale
    const int64_t *zero_point
    const float *codebook
    size_t codebook_size


cdef object lc_out_pointers(int out_kind, out, scale, zero_point, codebook, LcOut *o):
    """Fill ``o`` for ``out_kind``; return the contiguous arrays its pointers point into (keep them
    alive while the kernel runs)."""
    cdef int64_t[::1] o64
    cdef int[::1] o32i
    cdef int16_t[::1] o16i
    cdef float[::1] o32
    cdef const float[::1] sc
    cdef const int64_t[::1] zp
    cdef const float[::1] cb
    o.i64 = NULL
    o.f32 = NULL
    o.scale = NULL
    o.zero_point = NULL
    o.codebook = NULL
    o.codebook_size = 0
    keep = None
    if out_kind == LC_OUT_I64:
        o64 = out
        o.i64 = &o64[0] if o64.shape[0] else NULL
    elif out_kind == LC_OUT_I32:
        o32i = out
        o.i64 = <int64_t *>&o32i[0] if o32i.shape[0] else NULL
    elif out_kind == LC_OUT_I16:
        o16i = out
        o.i64 = <int64_t *>&o16i[0] if o16i.shape[0] else NULL
    else:
        o32 = out
        o.f32 = &o32[0] if o32.shape[0] else NULL
    if out_kind == LC_OUT_AFFINE:
        keep = (np.ascontiguousarray(scale, dtype=np.float32), np.ascontiguousarray(zero_point, dtype=np.int64))
        sc = keep[0]
        zp = keep[1]
        o.scale = &sc[0] if sc.shape[0] else NULL
        o.zero_point = &zp[0] if zp.shape[0] else NULL
    elif out_kind == LC_OUT_DQ:
        keep = np.ascontiguousarray(scale, dtype=np.float32)
        sc = keep
        o.scale = &sc[0] if sc.shape[0] else NULL
    elif out_kind == LC_OUT_CODEBOOK:
        keep = np.ascontiguousarray(codebook, dtype=np.float32)
        cb = keep
        o.codebook_size = cb.shape[0]
        o.codebook = &cb[0] if o.codebook_size else NULL
    return keep
