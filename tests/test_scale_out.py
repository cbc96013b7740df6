"""Encoding from a file on process or cluster executors by reference: each task carries where its
tensor is (a TensorRef) and the policy action, reads the tensor in the worker, and sends back the
encoded layer. The bytes do not depend on the executor."""

import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import codec
from codec import formats
from codec.writer import LayerTask

POLICY = """
[[rules]]
name = "*.bias"
mode = "floatplanes"

[[rules]]
name = "sparse.*"
mode = "sparse"
prune = 0.5
values_mode = "quantized"
bits = 8

[[rules]]
name = "tern.*"
mode = "ternary"
ternarize = true
axis = 0

[[rules]]
dtype = "int"
mode = "entropy"

[defaults]
mode = "quantized"
bits = 6
granularity = "channel"
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    rng = np.random.default_rng(1)
    tensors = [("l0.weight", (rng.standard_normal((64, 96)) * 0.05).astype(np.float32), "float32"),
               ("l0.bias", rng.standard_normal(64).astype(np.float32), "float32"),
               ("sparse.w", rng.standard_normal((32, 40)).astype(np.float32), "float32"),
               ("tern.w", rng.standard_normal((16, 24)).astype(np.float16), "float16"),
               ("steps", np.arange(10, dtype=np.int64), "int64")]
    path = tmp_path_factory.mktemp("m") / "model.safetensors"
    formats.write_tensors(path, tensors)
    return path


class Spy(ThreadPoolExecutor):
    """A thread pool that records the pickled size of every task it is given."""

    sizes: list

    def submit(self, fn, *args, **kwargs):
        self.sizes.append(len(pickle.dumps((fn, args, kwargs))))
        return super().submit(fn, *args, **kwargs)


def test_same_bytes_on_every_executor(model, tmp_path):
    one = tmp_path / "one.nnc"
    summary = codec.encode_file(model, one, policy=POLICY)
    assert summary["layers"] == 5 and summary["raw_bytes"] == sum(a.nbytes for _, a, _ in formats.read_tensors(model))
    data = one.read_bytes()
    assert codec.encode_file(model, tmp_path / "threads.nnc", policy=POLICY, workers=2)["layers"] == 5
    assert (tmp_path / "threads.nnc").read_bytes() == data
    with ProcessPoolExecutor(2) as pool:
        codec.encode_file(model, tmp_path / "procs.nnc", policy=POLICY, executor=pool)
    assert (tmp_path / "procs.nnc").read_bytes() == data
    # and the same as encoding the arrays in this process (the CLI's bytes of earlier versions)
    with codec.Reader(data) as r:
        assert [r.header(n).mode_name for n in r] == ["quantized", "floatplanes", "sparse", "ternary", "entropy"]


def test_tasks_carry_references_not_arrays(model, tmp_path):
    spy = Spy(2)
    spy.sizes = []
    with spy:
        codec.encode_file(model, tmp_path / "spy.nnc", policy=POLICY, executor=spy)
    assert len(spy.sizes) == 5 and max(spy.sizes) < 2048, spy.sizes
    ref = formats.safetensors_refs(model)[0]
    task = LayerTask(ref, {"mode": "raw"})
    assert pickle.loads(pickle.dumps(task)).resolve()[0].tobytes() == ref.load().tobytes()


def test_references_match_the_reader(model):
    refs = formats.safetensors_refs(model)
    for ref, (name, array, hint) in zip(refs, formats.read_tensors(model)):
        assert (ref.name, ref.shape, ref.dtype, ref.nbytes) == (name, array.shape, array.dtype, array.nbytes)
        assert ref.load().tobytes() == array.tobytes() and hint is None


def test_reference_to_a_truncated_file(model, tmp_path):
    short = tmp_path / "short.safetensors"
    short.write_bytes(model.read_bytes()[:-100])
    with pytest.raises(codec.FormatError, match="do not fit"):
        formats.safetensors_refs(short)
