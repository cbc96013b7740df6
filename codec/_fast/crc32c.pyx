# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""CRC32C kernels: twin of codec.kernels.crc32c; they release the GIL while they run."""

from libc.stdint cimport uint32_t

cdef extern from "crc32c_impl.h" nogil:
    void crc32c_init()
    void crc32c_set_hw(int enable)
    int crc32c_set_path(int path)
    int crc32c_path()
    int crc32c_have_hw
    uint32_t crc32c_update(uint32_t crc, const unsigned char *buf, size_t len)
    uint32_t c_crc32c_combine "crc32c_combine"(uint32_t crc1, uint32_t crc2, unsigned long long len2)
    uint32_t c_crc32c_copy "crc32c_copy"(uint32_t crc, unsigned char *dst, const unsigned char *src, size_t len)

crc32c_init()

cdef enum:
    NOGIL_MIN = 65536  # below this many bytes, releasing the GIL costs more than it frees


def crc32c(data, unsigned int crc=0):
    """Return the CRC32C of ``data`` continuing from the CRC32C ``crc`` of earlier bytes."""
    cdef const unsigned char[::1] view
    cdef Py_ssize_t n
    cdef uint32_t out
    if isinstance(data, bytes):
        n = len(<bytes>data)
        if n < NOGIL_MIN:
            return crc32c_update(crc, <const unsigned char *><char *>data, n)
    view = memoryview(data).cast("B")
    n = view.shape[0]
    if n == 0:
        return crc
    if n < NOGIL_MIN:
        return crc32c_update(crc, &view[0], n)
    with nogil:
        out = crc32c_update(crc, &view[0], n)
    return out


def crc32c_copy(dst, src, unsigned int crc=0):
    """Copy ``src`` into ``dst`` (same length) and return the CRC32C of the bytes copied."""
    cdef const unsigned char[::1] s = memoryview(src).cast("B")
    cdef unsigned char[::1] d = memoryview(dst).cast("B")
    cdef Py_ssize_t n = s.shape[0]
    cdef uint32_t out
    if d.shape[0] != n:
        raise ValueError(f"crc32c_copy: source has {n} bytes, destination {d.shape[0]}")
    if n == 0:
        return crc
    with nogil:
        out = c_crc32c_copy(crc, &d[0], &s[0], n)
    return out


def crc32c_combine(unsigned int crc1, unsigned int crc2, unsigned long long len2):
    """Return the CRC32C of A + B given ``crc1`` of A, ``crc2`` of B and ``len2`` = len(B)."""
    return c_crc32c_combine(crc1, crc2, len2)


PATHS = ("software", "crc32", "pclmul", "vpclmul512")


def hardware_enabled():
    """Return True if a hardware path (SSE4.2 or better) is in use."""
    return bool(crc32c_have_hw)


def path():
    """Return the name of the path in use: one of ``PATHS``."""
    return PATHS[crc32c_path()]


def set_path(name):
    """Use path ``name`` (one of ``PATHS``) or the best one below it that the CPU has; return the one chosen."""
    return PATHS[crc32c_set_path(PATHS.index(name))]


def set_hardware(enable):
    """Use the hardware path if ``enable`` and the CPU has it (tests compare both paths)."""
    crc32c_set_hw(1 if enable else 0)
