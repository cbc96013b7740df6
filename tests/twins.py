"""The one helper that checks a compiled kernel against its pure reference (the twin contract of
``codec.kernels``): called with the same arguments, both give equal results (same types, dtypes,
bytes) or raise the same exception type with the same message.

``check(stem, name, *args)`` calls ``codec.kernels.<stem>.<name>`` and ``codec._fast.<stem>.<name>``
(when the compiled core is built) and returns the reference's result, or raises its exception.
``check_calls`` does the same for a sequence of method calls on a twin class (the bit reader and
writer). Every call is recorded in ``CHECKED`` so a test can see that each pair was exercised.
"""

from __future__ import annotations

import copy
import importlib

import numpy as np

from codec.kernels import KERNELS

PURE = {stem: importlib.import_module(f"codec.kernels.{stem}") for stem in KERNELS}
try:
    FAST = {stem: importlib.import_module(f"codec._fast.{stem}") for stem in KERNELS}
except ImportError:  # pragma: no cover - a build without the compiled core
    FAST = None

#: (stem, name, "ok" | "error") of every twin call made through this module.
CHECKED: set[tuple[str, str, str]] = set()


def _fresh(value):
    """A copy for one call: kernels may write into arrays; read-only views become bytes."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return copy.deepcopy(value)


def _outcome(fn, args, kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome compared
        return ("raise", type(exc), str(exc), exc)


def same(a, b) -> bool:
    """Equal values of the same type; arrays of the same dtype and shape, NaNs in the same places."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    if isinstance(a, memoryview) or isinstance(b, memoryview):
        return isinstance(a, memoryview) and isinstance(b, memoryview) and bytes(a) == bytes(b)
    if type(a) is not type(b) and not (isinstance(a, int) and isinstance(b, int) and not
                                         isinstance(a, bool) and not isinstance(b, bool)):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


def _compare(where: str, ref, fast) -> None:
    if ref[0] == "ok" and fast[0] == "ok":
        assert same(ref[1], fast[1]), f"{where}: results differ:\n  pure: {ref[1]!r}\n  fast: {fast[1]!r}"
    else:
        assert ref[:3] == fast[:3], f"{where}: outcomes differ:\n  pure: {ref[:3]!r}\n  fast: {fast[:3]!r}"


def _status(result) -> str:
    # a decoder's (status, at, value) with a negative status is a detected error too
    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[0], int) and result[0] < 0:
        return "error"
    return "ok"


def check(stem: str, name: str, *args, **kwargs):
    """Run kernel ``name`` of ``stem`` in both backends on copies of the arguments; compare; return
    the reference's result or raise its exception."""
    ref = _outcome(getattr(PURE[stem], name), _fresh(args), _fresh(kwargs))
    if FAST is not None:
        _compare(f"{stem}.{name}", ref, _outcome(getattr(FAST[stem], name), _fresh(args),
                                                 _fresh(kwargs)))
    CHECKED.add((stem, name, "error" if ref[0] == "raise" else _status(ref[1])))
    if ref[0] == "raise":
        raise ref[3]
    return ref[1]


def check_calls(stem: str, cls: str, ctor_args: tuple, ctor_kwargs: dict, calls: list) -> list:
    """Build ``cls`` in both backends and make the same method calls on each; compare every outcome.

    ``calls`` holds (method, args, kwargs); the first exception ends the sequence. Returns the
    reference's outcomes: ("ok", value) or ("raise", type, message, exception).
    """
    def run(module):
        obj = getattr(module, cls)(*_fresh(ctor_args), **_fresh(ctor_kwargs))
        outs = []
        for method, args, kwargs in calls:
            out = _outcome(getattr(obj, method), _fresh(args), _fresh(kwargs))
            if out[0] == "ok" and isinstance(out[1], memoryview):
                out = ("ok", bytes(out[1]))
            outs.append(out)
            if out[0] == "raise":
                break
        if outs and outs[-1][0] == "ok" and hasattr(obj, "getvalue"):
            outs.append(_outcome(obj.getvalue, (), {}))
        if hasattr(obj, "pos"):
            outs.append(("ok", obj.pos))
        return outs

    ref = run(PURE[stem])
    if FAST is not None:
        fast = run(FAST[stem])
        assert len(ref) == len(fast), f"{stem}.{cls}: {ref!r} vs {fast!r}"
        for (method, _, _), r, f in zip(calls + [("end", (), {})] * 2, ref, fast):
            _compare(f"{stem}.{cls}.{method}", r, f)
    for (method, _, _), r in zip(calls, ref):
        CHECKED.add((stem, f"{cls}.{method}", "error" if r[0] == "raise" else "ok"))
    return ref
