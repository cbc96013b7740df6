"""PyTorch adapter: save and load state dicts as codec bitstreams (torch is imported lazily)."""

from __future__ import annotations

import os
from typing import Any, Mapping

__all__ = ["save_state_dict", "load_state_dict"]


def save_state_dict(state_dict: Mapping[str, Any], path: str | os.PathLike, /, *, policy=None,
                    metadata: Mapping[str, Any] | None = None, workers: int | None = None) -> None:
    """Write a state dict (name -> torch.Tensor) with a policy (path, text or :class:`codec.policy.Policy`)."""
    from . import formats
    from . import policy as policies
    from .writer import Writer, guess_kind

    if policy is None:
        policy = policies.DEFAULT_POLICY
    elif not isinstance(policy, policies.Policy):
        policy = policies.load_policy(policy)

    def items():
        for name, tensor in state_dict.items():
            array, hint = formats._tensor_to_numpy(name, tensor)
            action, _ = policy.choose(name, array, guess_kind(name, array).name.lower())
            array, params = policies.apply(action, array)
            if hint:
                params["dtype"] = hint
            yield name, array, params

    meta = {"codec.policy": policy.to_json(), **(metadata or {})}
    with Writer(path, metadata=meta) as writer:
        writer.add_layers(items(), workers=workers)


def load_state_dict(path: str | os.PathLike, /, *, workers: int | None = None) -> dict:
    """Read a bitstream into a dict of name -> torch.Tensor (bfloat16 layers as torch.bfloat16)."""
    import numpy as np
    import torch

    from .api import _read_all
    from .reader import Reader

    out = {}
    with Reader(path) as r:
        arrays = _read_all(r, workers)
        for name in r:
            a = arrays[name]
            if r.header(name).dtype_name == "bfloat16":
                out[name] = torch.from_numpy(np.array(a.view(np.uint16), order="C").view(np.int16)).view(torch.bfloat16)
            else:
                out[name] = torch.from_numpy(np.array(a, order="C", copy=True))
    return out
