"""``Reader.get(name, out=...)``: a layer decoded into the caller's array gives the values ``get`` gives,
for every coding mode, and a wrong ``out`` is a clear ValueError."""

import numpy as np
import pytest

import codec
from codec import levels
from codec.dtypes import bfloat16_dtype


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((70, 33)) * 0.05).astype(np.float32)
    root = tmp_path_factory.mktemp("out")
    settings = {
        "raw": ({"w": w, "h": w.astype(np.float16), "b": w.astype(bfloat16_dtype()), "m": w > 0,
                 "i": rng.integers(-9, 9, (4, 5)).astype(np.int64), "s": np.array(2.5, np.float32),
                 "e": np.zeros((0, 3), np.float32)}, dict(mode="raw")),
        "lossless": ({"w": w, "b": w.astype(bfloat16_dtype()), "m": w > 0, "i": rng.integers(-9, 9, (40, 5))}, {}),
        "int8 channel": ({"w": w, "h": w.astype(np.float16)}, dict(mode="quantized", bits=8, granularity="channel")),
        "uniform_zp": ({"w": w}, dict(mode="quantized", method="uniform_zp", bits=4, granularity="channel")),
        "axis 1": ({"w": w}, dict(mode="quantized", bits=6, granularity="channel", axis=1)),
        "codebook": ({"w": w}, dict(mode="quantized", method="codebook", bits=3)),
        "dq": ({"w": w, "v": w[0]}, dict(mode="dq", step=2 ** -7)),
        "dq axis 1": ({"w": w}, dict(mode="dq", bits=5, granularity="channel", axis=1)),
        "ternary": ({"w": w}, dict(mode="ternary", threshold=0.7)),
        "sparse": ({"w": np.where(np.abs(w) > 0.05, w, 0)}, dict(mode="sparse", values_mode="quantized", bits=8)),
        "zstd": ({"w": w}, dict(mode="zstd")),
    }
    out = {}
    saved = levels.LC_CHUNK_ELEMENTS
    levels.LC_CHUNK_ELEMENTS = 200  # several chunks, so that threads have something to share
    try:
        for i, (label, (tensors, params)) in enumerate(settings.items()):
            path = root / f"{i}.nnc"
            codec.save_file(tensors, path, **params)
            out[label] = path
    finally:
        levels.LC_CHUNK_ELEMENTS = saved
    return out


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("label", ["raw", "lossless", "int8 channel", "uniform_zp", "axis 1", "codebook", "dq",
                                   "dq axis 1", "ternary", "sparse", "zstd"])
def test_out_holds_what_get_returns(files, label, threads):
    previous = levels.set_decode_threads(threads)
    try:
        for verify in (True, False):
            with codec.open(files[label], verify=verify) as r:
                for name in r.keys():
                    expected = r.get(name)
                    out = np.full_like(expected, 7)  # not zeros: every element must be written
                    got = r.get(name, out=out)
                    assert got is out, (label, name)
                    assert out.dtype == expected.dtype and np.array_equal(
                        out.reshape(-1).view(np.uint8), expected.reshape(-1).view(np.uint8)), (label, name)
    finally:
        levels.set_decode_threads(previous)


def test_a_wrong_out_is_a_value_error_naming_the_layer(files):
    with codec.open(files["int8 channel"]) as r:
        good = r.get("w")
        bad = [np.empty((33, 70), np.float32), np.empty((70, 33), np.float64), np.empty((70, 66), np.float32)[:, ::2],
               np.frombuffer(bytes(good.nbytes), np.float32).reshape(good.shape), good.tolist()]
        for out in bad:
            with pytest.raises(ValueError, match="out= for layer 'w' must be a writable C-contiguous array of dtype "
                                                 "float32 and shape \\(70, 33\\)"):
                r.get("w", out=out)
        with pytest.raises(ValueError, match="does not combine with levels="):
            r.get("w", out=np.empty_like(good), levels=True)
        assert r.get("missing", out=np.empty_like(good)) is None  # the Mapping default, as without out


def test_a_damaged_payload_raises_with_out(files, tmp_path):
    path = files["dq"]
    data = bytearray(path.read_bytes())
    with codec.open(path) as r:
        header = r.header("w")
    data[header.payload_offset + header.payload_size // 2] ^= 0x55
    damaged = tmp_path / "d.nnc"
    damaged.write_bytes(bytes(data))
    with codec.open(damaged) as r, pytest.raises(codec.errors.ChecksumError):
        r.get("w", out=np.empty(header.layer_shape, np.float32))


@pytest.mark.parametrize("label,name", [("raw", "w"), ("raw", "b"), ("raw", "m"), ("int8 channel", "w"),
                                        ("uniform_zp", "w"), ("codebook", "w"), ("dq", "w"), ("dq", "v")])
def test_these_decode_in_place(files, label, name, monkeypatch):
    """Raw layers and float32 quantized / dq layers with a step per row are written straight into out."""
    import codec.reader

    with codec.open(files[label]) as r:
        expected = r.get(name)

        def no_decode(*args, **kwargs):
            raise AssertionError("decoded into an array of its own, then copied")

        monkeypatch.setattr(codec.reader, "_decode_layer", no_decode)
        out = np.empty_like(expected)
        assert np.array_equal(r.get(name, out=out), expected)


def test_threads_reading_a_fresh_reader_make_one_map(tmp_path, monkeypatch):
    """The map is made on first use; threads that all reach for it at once make one."""
    import threading

    import codec.reader

    rng = np.random.default_rng(5)
    tensors = {f"t{i}": rng.standard_normal((64, 64)).astype(np.float32) for i in range(16)}
    path = tmp_path / "m.nnc"
    codec.save_file(tensors, path, mode="raw")
    made = []
    real_mmap = codec.reader.mmap.mmap

    class CountingMmap(real_mmap):
        def __init__(self, *args, **kwargs):
            made.append(1)

    monkeypatch.setattr(codec.reader.mmap, "mmap", CountingMmap)
    with codec.open(path) as r:
        assert not made  # opening reads headers with pread: no map yet
        barrier = threading.Barrier(8)
        results, errors = {}, []

        def work(k):
            try:
                barrier.wait()
                for name in list(tensors)[k::8] + list(tensors)[:2]:
                    results[(k, name)] = r.get(name, copy=False)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(made) == 1
        for (_, name), array in results.items():
            assert np.array_equal(array, tensors[name])
        results.clear()  # the views, before the reader closes its map
