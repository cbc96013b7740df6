"""The mode registry: each mode declares itself once, and the writer, reader, dump tool and policies
find a new mode through the registry alone (a toy mode is registered here and used end to end)."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil

import numpy as np
import pytest

import codec
import codec.modes
from codec import policy as policies
from codec.dump import render_fields, summarize, walk
from codec.errors import EncodeError
from codec.modes import Mode, Param, Plan, get_mode, params_table, register_mode, registered_modes
from codec.modes import base


def test_one_module_per_mode():
    owners = {}
    for info in pkgutil.iter_modules(codec.modes.__path__):
        module = importlib.import_module(f"codec.modes.{info.name}")
        classes = [v for v in vars(module).values()
                   if isinstance(v, type) and issubclass(v, Mode) and v is not Mode and v.__module__ == module.__name__]
        for cls in classes:
            owners.setdefault(cls.name, []).append(info.name)
    assert sorted(owners) == sorted(m.name for m in registered_modes())
    assert all(len(modules) == 1 for modules in owners.values()), owners


def test_declarations_are_complete():
    for mode in registered_modes():
        for p in mode.params:
            assert p.doc and p.type, (mode.name, p.name)
            if p.default is not None:
                assert p.validate(p.default, mode.name) == p.default
        for p in mode.params:
            assert f"``{p.name}``" in type(mode).__doc__  # the docstring lists the declarations
    assert "``quantized``: ``bits``" in codec.Writer.add_layer.__doc__


def test_validation_names_the_mode_the_parameter_and_the_rule():
    with pytest.raises(EncodeError, match=r"mode 'zstd' takes no parameter 'lvl' \(its parameters: level; did you mean 'level'\?\)"):
        codec.encode({"w": np.ones(2)}, mode="zstd", lvl=3)
    with pytest.raises(EncodeError, match=r"mode 'quantized' parameter 'bits' must be int in 1..16, got 20"):
        codec.encode({"w": np.ones(2)}, mode="quantized", bits=20)
    with pytest.raises(EncodeError, match=r"parameter 'ternarize' prepares a tensor in a policy"):
        codec.encode({"w": np.ones(2)}, mode="ternary", ternarize=True)
    with pytest.raises(EncodeError, match=r"rules\[0\]: mode 'sparse' parameter 'mask' cannot be given in a policy"):
        policies.Policy({"rules": [{"mode": "sparse", "mask": [True]}]})
    with pytest.raises(EncodeError, match=r"rules\[0\]: mode 'sparse' parameter 'values_mode'"):
        policies.Policy({"rules": [{"mode": "sparse", "values_mode": "sparse"}]})
    # the values' mode's parameters are the sparse mode's too
    policies.Policy({"rules": [{"mode": "sparse", "values_mode": "quantized", "bits": 4}]})
    with pytest.raises(EncodeError, match="takes no parameter 'bits'"):
        policies.Policy({"rules": [{"mode": "sparse", "values_mode": "zstd", "bits": 4}]})


class ToyXorMode(Mode):
    """An experimental mode: the raw bytes XOR a key byte (kept in a one-byte parameter block)."""

    name = "toy_xor"
    mode_id = 200
    since_minor = 1
    params = (Param("key", (int,), "the XOR key", default=0x5A, range=(0, 255)),
              Param("negate", (bool,), "negate the tensor first", default=False, prepare=True))

    def prepare(self, array, params):
        array, rest = super().prepare(array, params)
        return (-array if params.get("negate") else array), rest

    def plan(self, array, dtype, params, *, global_qp=None):
        key = params.get("key", 0x5A)
        return Plan(bytes([key]), key)

    def write(self, plan, array, dtype, sink):
        sink.write((np.ascontiguousarray(array).view(np.uint8) ^ plan.state).tobytes())

    def read_params(self, r, header):
        return r.u8("toy_key")

    def decode(self, header, payload, *, verify=True, global_qp=None, levels=False, format="dense"):
        key = self.begin_decode(header, payload, verify=verify, levels=levels, format=format)
        data = np.frombuffer(payload, np.uint8) ^ key
        return codec.dtypes.user_array(header, data.view(codec.dtypes.storage_dtype(header)))

    def summarize(self, header, payload, *, global_qp=None):
        return {"key": self.params_of(header)}

    def summary_text(self, summary):
        return f"key=0x{summary['key']:02x}"


@pytest.fixture
def toy_mode():
    saved = dict(base._MODES), dict(base._MODES_BY_NAME)
    register_mode(ToyXorMode)
    try:
        yield get_mode("toy_xor")
    finally:
        base._MODES.clear()
        base._MODES.update(saved[0])
        base._MODES_BY_NAME.clear()
        base._MODES_BY_NAME.update(saved[1])


def test_a_new_mode_needs_no_change_elsewhere(toy_mode, tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    data = codec.encode({"w": w}, mode="toy_xor", key=7)
    assert np.array_equal(codec.decode(data)["w"], w)
    with codec.open(data) as r:
        layer = summarize(r)["layers"][0]
    assert (layer["mode"], layer["coding"], layer["coding_text"]) == ("toy_xor", {"key": 7}, "key=0x07")
    assert "layers[0].mode_params.toy_key = 7" in render_fields(walk(data))
    policy = policies.Policy({"rules": [{"mode": "toy_xor", "key": 9, "negate": True}]})
    array, params = policies.apply(policy.choose("w", w, "weight")[0], w)
    out = codec.decode(codec.encode({"w": array}, **params))["w"]
    assert np.array_equal(out, -w) and params == {"mode": "toy_xor", "key": 9}
    assert "| `toy_xor` | `key` | int in 0..255 | `90` | the XOR key |" in params_table()
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"rules": [{"mode": "toy_xor", "key": 300}]}))
    with pytest.raises(EncodeError, match="parameter 'key' must be int in 0..255, got 300"):
        policies.load_policy(os.fspath(path))


def test_a_spec_mode_value_keeps_its_spec_name():
    class Impostor(ToyXorMode):
        name = "xor"
        mode_id = 5

    with pytest.raises(ValueError, match="must be named after coding_mode 5"):
        register_mode(Impostor)
