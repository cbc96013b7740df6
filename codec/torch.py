"""PyTorch adapter: save and load state dicts as codec bitstreams (torch is imported lazily)."""

from __future__ import annotations

import os
from typing import Any, Mapping

__all__ = ["save_state_dict", "load_state_dict", "collect_importance", "collect_sensitivity"]


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


def _output_array(out):
    """The model's output as one float64 tensor: a tensor, the first tensor of a tuple or list, or a
    ``last_hidden_state`` / ``logits`` attribute (transformers' output objects)."""
    import torch

    for attr in ("last_hidden_state", "logits"):
        if hasattr(out, attr):
            out = getattr(out, attr)
            break
    if isinstance(out, (tuple, list)):
        out = next((o for o in out if isinstance(o, torch.Tensor)), None)
    if not isinstance(out, torch.Tensor):
        raise TypeError("the model's output must be a tensor, a tuple/list holding one, or have last_hidden_state "
                        "or logits")
    return out.detach().to(torch.float64)


def collect_sensitivity(model, batches, /, *, names=None, rel_noise: float | None = None, seed: int = 0) -> dict:
    """The output sensitivity of each weight of ``model`` (parameters of rank >= 2 by default, or
    ``names``): the mean squared change of its outputs over ``batches`` (an iterable of inputs, each a
    tensor or a tuple of positional arguments; it is iterated once per weight plus once) when Gaussian
    noise of ``rel_noise`` (default :data:`codec.sensitivity.DEFAULT_REL_NOISE`) times the weight's RMS is
    added, per unit of the noise's sum of squares. Returns ``{name: float}`` for
    ``codec encode --sensitivity`` (save it with :func:`codec.sensitivity.save`) or
    ``encode_file(sensitivity=)``. The model runs in eval mode without gradients; every weight is
    restored afterwards."""
    import numpy as np
    import torch

    from . import sensitivity as sens

    rel_noise = sens.DEFAULT_REL_NOISE if rel_noise is None else rel_noise
    batches = list(batches)
    params = dict(model.named_parameters())
    if names is None:
        names = [k for k, p in params.items() if p.dim() >= 2 and p.is_floating_point()]

    def outputs():
        return [_output_array(model(*b) if isinstance(b, tuple) else model(b)) for b in batches]

    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    out = {}
    try:
        with torch.no_grad():
            reference = outputs()
            for name in names:
                p = params[name]
                rms = float(p.detach().to(torch.float64).pow(2).mean().sqrt()) if p.numel() else 0.0
                if rms == 0.0:
                    out[name] = 0.0
                    continue
                noise = (torch.randn(p.shape, generator=gen, dtype=torch.float64) * (rel_noise * rms)).to(p.dtype)
                sse = float(noise.to(torch.float64).pow(2).sum())
                saved = p.detach().clone()
                p.add_(noise.to(p.device))
                try:
                    moved = outputs()
                finally:
                    p.copy_(saved)
                diff = sum(float((m - r).pow(2).sum()) for m, r in zip(moved, reference))
                count = sum(r.numel() for r in reference)
                out[name] = diff / max(count, 1) / sse if sse > 0 else 0.0
    finally:
        model.train(was_training)
    return {k: float(np.float64(v)) for k, v in out.items()}
