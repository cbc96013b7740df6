"""codec as a numcodecs codec (id "nnc"): chunks round-trip bit-exactly, the config round-trips, and
zarr stores an array with it."""

import numpy as np
import pytest

numcodecs = pytest.importorskip("numcodecs")

from codec.numcodecs import NNC  # noqa: E402


@pytest.mark.parametrize("codec_args", [{}, {"mode": "entropy"}, {"mode": "zstd", "level": 9}, {"mode": "raw"}])
@pytest.mark.parametrize("array", [
    np.random.default_rng(0).standard_normal((17, 5)).astype(np.float32),
    np.arange(-50, 50, dtype=np.int16).reshape(10, 10),
    np.random.default_rng(1).random(33) < 0.2,
    np.zeros(0, np.float64),
])
def test_round_trip(codec_args, array):
    if codec_args.get("mode") == "entropy" and array.dtype.kind == "f":
        pytest.skip("entropy codes integers")
    c = NNC(**codec_args)
    data = c.encode(array)
    back = c.decode(data)
    assert back.dtype == array.dtype and np.array_equal(back.reshape(array.shape), array)
    out = np.empty_like(array)
    c.decode(data, out=out)
    assert np.array_equal(out, array)
    # the config is the constructor's arguments, and the registry knows the id
    again = numcodecs.get_codec(c.get_config())
    assert isinstance(again, NNC) and again.get_config() == c.get_config()


def test_refuses_lossy_modes_and_foreign_bytes():
    with pytest.raises(ValueError, match="losslessly"):
        NNC(mode="quantized")
    with pytest.raises(Exception):
        NNC(mode="zstd", lvl=3)
    import codec

    with pytest.raises(ValueError, match="not an NNC chunk"):
        NNC().decode(codec.encode({"a": np.ones(2), "b": np.ones(2)}))


def test_zarr_array_with_the_codec(tmp_path):
    zarr = pytest.importorskip("zarr")
    data = np.random.default_rng(2).standard_normal((40, 30)).astype(np.float32)
    z = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=data.shape, chunks=(16, 16), dtype=data.dtype,
                          zarr_format=2, compressors=NNC())
    z[:] = data
    back = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    assert np.array_equal(back[:], data) and np.array_equal(back[3:20, 7:9], data[3:20, 7:9])


def test_the_entry_point_names_the_codec():
    from importlib.metadata import entry_points

    assert any(ep.name == "nnc" and ep.value == "codec.numcodecs:NNC" for ep in entry_points(group="numcodecs.codecs"))
