"""The ``codec`` command line: demo, dump, info, verify.

Only this module and codec.dump print; the library logs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from . import __version__, dump
from ._backend import BACKEND
from .errors import CodecError

EPILOG = """examples:
  codec demo                       write, dump and read back the built-in example model
  codec demo -o demo.nnc           ... and keep the file
  codec dump model.nnc --verify    table of layers, checking every checksum
  codec info model.nnc             one-line summary
  codec verify model.nnc           check all checksums; exit 0 if the file is intact

exit status: 0 ok, 1 usage error or failed demo, 2 bad or unreadable file"""


def _cmd_demo(args) -> int:
    from .api import load_file
    from .demo import DEMO_METADATA, build_demo_model
    from .writer import Writer

    model = build_demo_model()
    raw_bytes = sum(a.nbytes for a in model.values())
    params = sum(a.size for a in model.values())
    out = args.output
    tmpdir = None
    if out is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="codec-demo-")
        out = os.path.join(tmpdir.name, "demo.nnc")
    try:
        print(f"codec {__version__} ({BACKEND} core): demo model with {len(model)} layers, {params:,} elements, "
              f"{raw_bytes:,} bytes in memory")
        start = time.perf_counter()
        with Writer(out, metadata=DEMO_METADATA) as writer:
            for name, array in model.items():
                # 1-D tensors and scalars raw (small, mmap-able), everything else zstd.
                mode = "raw" if array.ndim < 2 else "zstd"
                dtype = "bfloat16" if name.endswith("_bf16") else None
                writer.add_layer(name, array, mode=mode, dtype=dtype, **({"level": 9} if mode == "zstd" else {}))
        elapsed = time.perf_counter() - start
        size = os.path.getsize(out)
        print(f"wrote {out}: {size:,} bytes ({raw_bytes / size:.3f}x smaller than the raw tensors) "
              f"in {elapsed * 1e3:.1f} ms\n")
        dump.run(argparse.Namespace(file=out, verify=True, json=False, fields=False), prog="codec dump")
        loaded = load_file(out)
        exact = list(loaded) == list(model)
        for name, array in model.items():
            got = loaded[name]
            if name.endswith("_bf16") and got.dtype != np.uint16:
                got = got.view(np.uint16)
            exact &= got.shape == array.shape and got.tobytes() == array.tobytes()
        print(f"\nread back {len(loaded)} layers: round trip is {'bit-exact' if exact else 'NOT EXACT'}")
        _demo_policies(model)
        return 0 if exact else 1
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


def _demo_policies(model: dict) -> None:
    """Write the demo model's 2-D float weights under several policies; print size and error."""
    from . import masks, ternary
    from .api import decode

    weights = {k: v for k, v in model.items() if v.ndim == 2 and v.dtype == np.float32}
    count = sum(v.size for v in weights.values())
    norm = float(np.sqrt(sum((v.astype(np.float64) ** 2).sum() for v in weights.values()) / count))

    def coded(policy):
        tensors, params = {}, {}
        for name, w in weights.items():
            if policy == "ternary":
                tensors[name] = ternary.ternarize(w, axis=0)
                params[name] = {"mode": "ternary", "axis": 0}
            elif policy == "2:4 sparse + 8-bit":
                mask = masks.prune_nm(w, 2, 4, axis=-1)
                tensors[name] = np.where(mask, w, 0).astype(np.float32)
                params[name] = {"mode": "sparse", "mask": mask, "nm": (2, 4), "values_mode": "quantized", "bits": 8}
            else:
                tensors[name] = w
                params[name] = POLICIES[policy]
        import io

        from .writer import Writer

        buf = io.BytesIO()
        with Writer(buf) as w:
            for name, a in tensors.items():
                w.add_layer(name, a, **params[name])
        return buf.getvalue()

    print(f"\npolicies for the {len(weights)} 2-D float32 weights ({count:,} weights, {4 * count:,} bytes raw):")
    print(f"{'policy':<22} {'bytes':>9} {'bits/weight':>12} {'rel. RMSE':>10}")
    for policy in POLICIES_ORDER:
        data = coded(policy)
        out = decode(data)
        err = np.sqrt(sum(((out[k].astype(np.float64) - weights[k]) ** 2).sum() for k in weights) / count) / norm
        print(f"{policy:<22} {len(data):>9,} {8 * len(data) / count:>12.3f} {err:>10.4f}")


POLICIES = {
    "raw": {"mode": "raw"},
    "lossless (floatplanes)": {"mode": "floatplanes"},
    "8-bit per channel": {"mode": "quantized", "bits": 8, "granularity": "channel"},
    "4-bit per channel": {"mode": "quantized", "bits": 4, "granularity": "channel"},
}
POLICIES_ORDER = ["raw", "lossless (floatplanes)", "8-bit per channel", "4-bit per channel", "ternary",
                  "2:4 sparse + 8-bit"]


def _cmd_dump(args) -> int:
    return dump.run(args, prog="codec dump")


def _cmd_info(args) -> int:
    from .reader import Reader

    try:
        with Reader(args.file) as r:
            total = sum(r.header(n).payload_size for n in r)
            elements = sum(r.header(n).num_elements for n in r)
            print(f"{dump.escape(args.file)}: codec bitstream {r.version[0]}.{r.version[1]}, {len(r)} layers, "
                  f"{elements:,} elements, {total:,} payload bytes, {len(r.metadata)} metadata keys")
    except (CodecError, OSError) as exc:
        print(f"codec info: error: {dump.escape(str(exc))}", file=sys.stderr)
        return 2
    return 0


def _cmd_verify(args) -> int:
    from .reader import Reader

    try:
        with Reader(args.file) as r:
            r.verify()
            for name in r:
                r.get(name)
            print(f"{dump.escape(args.file)}: ok ({len(r)} layers, all checksums match)")
    except (CodecError, OSError) as exc:
        print(f"codec verify: error: {dump.escape(str(exc))}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codec",
        description="Encode, decode and inspect layered bitstreams of compressed neural-network models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"codec {__version__} ({BACKEND} core)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="write, dump and read back the built-in example model",
                       description="Build the built-in example model, write it as a bitstream, dump it, "
                       "read it back and check that the round trip is bit-exact.")
    p.add_argument("-o", "--output", help="keep the bitstream at this path (default: a temporary file)")
    p.set_defaults(func=_cmd_demo)

    d = dump.build_parser("codec dump")
    p = sub.add_parser("dump", help="show headers, metadata and layers (same as codec-dump)",
                       description=d.description, epilog=d.epilog, formatter_class=d.formatter_class)
    for action in d._actions[1:]:
        p._add_action(action)
    p.set_defaults(func=_cmd_dump)

    p = sub.add_parser("info", help="one-line summary of a bitstream")
    p.add_argument("file")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("verify", help="check every checksum and decode every layer")
    p.add_argument("file")
    p.set_defaults(func=_cmd_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
