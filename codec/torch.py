"""PyTorch adapter: save and load state dicts as codec bitstreams (torch is imported lazily)."""

from __future__ import annotations

import os
from typing import Any, Mapping

__all__ = ["save_state_dict", "load_state_dict", "collect_importance"]


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


def load_state_dict(path: str | os.PathLike, /, *, workers: int | None = None, device=None) -> dict:
    """Read a bitstream into a dict of name -> torch.Tensor (bfloat16 layers as torch.bfloat16),
    on ``device`` (default the CPU). The tensors share the decoded arrays' memory (no copy)."""
    import numpy as np
    import torch

    from .api import _read_all
    from .reader import Reader

    out = {}
    with Reader(path) as r:
        arrays = _read_all(r, workers)
        for name in r:
            a = arrays.pop(name)
            if not (a.flags.writeable and a.flags.c_contiguous):
                a = np.array(a, order="C")
            if r.header(name).dtype_name == "bfloat16":
                t = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
            else:
                t = torch.from_numpy(a)
            out[name] = t if device is None else t.to(device)
    return out


def collect_importance(model, batches, /) -> dict:
    """The importance of each input channel of every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` of
    ``model``: the mean squared activation that feeds it over ``batches`` (an iterable of inputs,
    each a tensor or a tuple of positional arguments for ``model``), as llama.cpp's importance
    matrix. Returns ``{"<module>.weight": float64 array of in_features / in_channels}``, the
    ``importance=`` of mode ``dq`` (``Writer.add_layer(name, w, mode="dq", importance=...)``).
    The model runs in eval mode without gradients; hooks are removed afterwards.
    """
    import numpy as np
    import torch

    sums: dict = {}
    counts: dict = {}
    hooks = []

    def hook(name, conv):
        def fn(module, inputs, output):
            x = inputs[0].detach().to(torch.float64)
            if conv:  # channels on axis 1: average over the batch and every position
                x = x.transpose(0, 1).reshape(x.shape[1], -1)
                s, n = (x * x).sum(dim=1), x.shape[1]
            else:  # features on the last axis
                x = x.reshape(-1, x.shape[-1])
                s, n = (x * x).sum(dim=0), x.shape[0]
            sums[name] = sums.get(name, 0) + s
            counts[name] = counts.get(name, 0) + n
        return fn

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            hooks.append(module.register_forward_hook(hook(name, False)))
        elif isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            if module.groups != 1:
                continue  # a grouped convolution's weight sees only its group's channels
            hooks.append(module.register_forward_hook(hook(name, True)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                model(*batch) if isinstance(batch, tuple) else model(batch)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {f"{name}.weight" if name else "weight": (sums[name] / counts[name]).cpu().numpy().astype(np.float64)
            for name in sums if counts[name]}
