"""Built-in policies, usable by name wherever a policy is (``codec encode --policy int8``,
``save_file(..., policy="int8")``, ``encode_file(..., policy="dq")``).

Each preset codes the float tensors of rank >= 2 (the weight matrices and convolution kernels)
and leaves everything else to the lossless default. The ``dq`` presets carry a target (a maximum
relative weight error): the step is searched per model, so they do not depend on the scale of
the weights, and ``codec encode``/``encode_file`` (which encode a few times) run them; the figures
are measured on all-MiniLM-L6-v2 (``bench/bench_presets.py``).
"""

from __future__ import annotations

__all__ = ["PRESETS", "preset"]

_WEIGHTS = {"min_rank": 2, "dtype": "float"}

#: name -> (what it does and what it measured, the policy document)
PRESETS: dict[str, tuple[str, dict]] = {
    "lossless": ("every tensor lossless (floatplanes, entropy or raw): the default", {"rules": []}),
    "int8": ("8-bit levels per output channel (absmax scale) for weight tensors; MiniLM: 7.27 bits per "
             "parameter, embedding cosine 0.9996",
             {"rules": [{**_WEIGHTS, "mode": "quantized", "bits": 8, "granularity": "channel"}]}),
    "int4": ("4-bit levels per output channel (absmax scale) for weight tensors; MiniLM: 3.11 bits per "
             "parameter, embedding cosine 0.884 (dq-small: 3.38 bits, cosine 0.960)",
             {"rules": [{**_WEIGHTS, "mode": "quantized", "bits": 4, "granularity": "channel"}]}),
    "dq-fine": ("dependent quantization of weight tensors at a relative weight error of 1% (one step, searched); "
                "MiniLM: 6.70 bits per parameter, embedding cosine 0.9996 (int8: 7.27)",
                {"rules": [{**_WEIGHTS, "mode": "dq", "step": 2.0 ** -8}], "target": {"max_rel_error": 0.01}}),
    "dq": ("dependent quantization of weight tensors at a relative weight error of 3%; MiniLM: 5.09 bits per "
           "parameter, embedding cosine 0.996",
           {"rules": [{**_WEIGHTS, "mode": "dq", "step": 2.0 ** -7}], "target": {"max_rel_error": 0.03}}),
    "dq-small": ("dependent quantization of weight tensors at a relative weight error of 10%; MiniLM: 3.38 bits "
                 "per parameter, embedding cosine 0.960",
                 {"rules": [{**_WEIGHTS, "mode": "dq", "step": 2.0 ** -5}], "target": {"max_rel_error": 0.1}}),
}


def preset(name: str) -> dict | None:
    """The policy document of a preset, or None when ``name`` is not one."""
    entry = PRESETS.get(name)
    return None if entry is None else {**entry[1], "preset": name}
