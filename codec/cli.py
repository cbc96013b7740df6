"""The ``codec`` command line: demo, dump, info, verify.

Only this module and codec.dump print; the library logs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from . import __version__, dump
from ._backend import BACKEND
from .atomic import remove_temporary_files
from .errors import BaseMismatchError, CodecError, EncodeError

EPILOG = """examples:
  codec demo                       write, dump and read back the built-in example model
  codec encode model.safetensors -o model.nnc [--policy p.toml]   compress a model
  codec decode model.nnc -o model.safetensors                     decompress it
  codec demo -o demo.nnc           ... and keep the file
  codec dump model.nnc --verify    table of layers, checking every checksum
  codec info model.nnc             one-line summary
  codec verify model.nnc           check all checksums; exit 0 if the file is intact

exit status: 0 ok; 1 the demo's round trip failed; 2 an error: bad arguments (as argparse reports them), an
output that exists without -f or that is an input, a bad or unreadable file; 128+N killed by signal N (the
output is left as it was)"""


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
        _demo_policies()
        return 0 if exact else 1
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


def _demo_policies() -> None:
    """Encode the shipped digits MLP under the demo policies; print size, bits/weight and test accuracy."""
    import io

    from . import policy as policies
    from .api import decode
    from .demo import DEMO_POLICIES, load_digits_mlp, mlp_accuracy
    from .reader import Reader
    from .writer import Writer

    params, x_test, y_test = load_digits_mlp()
    weights = [k for k, v in params.items() if v.ndim == 2]
    count = sum(params[k].size for k in weights)
    print(f"\nthe shipped model: MLP 64-64-32-10 trained on scikit-learn's digits ({count:,} weights); "
          f"test split of {len(y_test)} images")
    print(f"{'policy':<24} {'file bytes':>10} {'bits/weight':>12} {'test accuracy':>14}")
    for label, doc in DEMO_POLICIES.items():
        policy = policies.Policy(doc)
        buf = io.BytesIO()
        with Writer(buf, metadata={"codec.demo.policy": label, "codec.policy": policy.to_json()}) as w:
            for name, array in params.items():
                action, _ = policy.choose(name, array, "weight" if array.ndim == 2 else "bias")
                array, kwargs = policies.apply(action, array)
                w.add_layer(name, array, **kwargs)
        data = buf.getvalue()
        with Reader(data) as r:
            weight_bits = sum(r.header(k).payload_size for k in weights) * 8
        accuracy = mlp_accuracy(decode(data), x_test, y_test)
        print(f"{label:<24} {len(data):>10,} {weight_bits / count:>12.3f} {accuracy:>14.4f}")


class _Progress:
    """A progress bar on stderr (tqdm if installed) counting the bytes of the finished tensors
    (``sizes``: name -> bytes; layers when unknown); drawn only on a terminal, never with --quiet."""

    def __init__(self, sizes: dict[str, int] | None, desc: str, quiet: bool):
        self.bar = None
        self.quiet = quiet or not sys.stderr.isatty()
        self.sizes = sizes
        self.desc = desc
        self.seen: set[str] = set()
        self.passes = 1
        if self.quiet:
            return
        total = sum(sizes.values()) if sizes else None
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="B" if sizes else "layer", unit_scale=bool(sizes),
                            file=sys.stderr, leave=False)
        except ImportError:
            self.count = 0
            self.total = total

    def __call__(self, name: str) -> None:
        if self.quiet:
            return
        if name in self.seen:  # a name again: the next pass of a target search
            self.seen.clear()
            self.passes += 1
            if self.bar is not None:
                self.bar.reset(total=self.bar.total)
                self.bar.set_description(f"{self.desc} (pass {self.passes})")
            else:
                self.count = 0
                print(file=sys.stderr)
        self.seen.add(name)
        step = self.sizes.get(name, 0) if self.sizes else 1
        if self.bar is not None:
            self.bar.update(step)
        else:
            self.count += step
            label = self.desc if self.passes == 1 else f"{self.desc} (pass {self.passes})"
            print(f"\r{label}: {self.count:,}/{self.total or '?'}{' bytes' if self.sizes else ''}", end="",
                  file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif not self.quiet:
            print(file=sys.stderr)


class UsageError(Exception):
    """A command line the CLI refuses before doing any work (exit status 2, as argparse's)."""


def _check_output(output: str, inputs: list[str], force: bool) -> None:
    """Refuse to write onto an input (same path or same file, through links too), into a
    directory, into a folder that does not exist, or over an existing file without --force."""
    if os.path.isdir(output):
        raise UsageError(f"{output} is a directory: give the path of the file to write")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write {output}: the folder {parent} does not exist")
    for path in inputs:
        same = os.path.abspath(path) == os.path.abspath(output)
        if not same and os.path.exists(output) and os.path.exists(path):
            same = os.path.samefile(path, output)
        if same:
            raise UsageError(f"refusing to write onto the input {path}: choose another output")
    if os.path.lexists(output) and not force:
        raise UsageError(f"{output} exists: use -f/--force to replace it")


def _cmd_encode(args) -> int:
    from . import formats, policy as policies
    from .api import encode_file

    policy = policies.load_policy(args.policy) if args.policy else policies.DEFAULT_POLICY
    tensors = formats.read_tensors(args.input)  # a missing or unknown input is reported first
    if args.previous and not args.base:
        raise UsageError("--previous goes with --base")
    if args.base:
        from .dtypes import bfloat16_dtype

        # the whole input is held: a delta compares every layer with the base's
        return _encode_delta(args, {name: array.view(bfloat16_dtype()) if hint == "bfloat16" else array
                                    for name, array, hint in tensors}, policy)
    to_stdout = args.output == "-"
    if to_stdout:
        if sys.stdout.isatty():
            raise UsageError("refusing to write a bitstream to a terminal: redirect stdout, or give -o FILE")
    else:
        _check_output(args.output, [args.input] + ([args.policy] if args.policy else [])
                      + ([args.importance] if args.importance else [])
                      + ([args.sensitivity] if args.sensitivity else []), args.force)
    sizes = None
    if args.input.endswith(".safetensors"):
        sizes = {ref.name: ref.nbytes for ref in formats.safetensors_refs(args.input)}
    del tensors
    progress = _Progress(sizes, "encoding", args.quiet)
    start = time.perf_counter()
    warnings = _HeldWarnings()
    # -o -: the file is made in a temporary folder (the writer seeks), then copied to stdout
    scratch = tempfile.mkdtemp(prefix="codec-encode-") if to_stdout else None
    out_path = os.path.join(scratch, "out.nnc") if to_stdout else args.output
    try:
        try:
            version = None if args.format_version is None else tuple(int(x) for x in args.format_version.split("."))
            with warnings:
                summary = encode_file(args.input, out_path, policy=policy, workers=args.workers, progress=progress,
                                      format_version=version, target_bits=args.target_bits,
                                      target_size=args.target_size, max_rel_error=args.max_rel_error,
                                      importance=args.importance, sensitivity=args.sensitivity)
        finally:
            progress.close()
            warnings.print_held()
        size = os.path.getsize(out_path)
        if to_stdout:
            with open(out_path, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if not args.quiet:
        with contextlib.redirect_stdout(sys.stderr) if to_stdout else contextlib.nullcontext():
            _print_encode_summary(args, summary, size, start)
    return 0


def _encode_delta(args, tensors, policy) -> int:
    """codec encode --base: a delta bitstream of the input against the base (or the chain of --base files)."""
    from .api import save_delta

    if args.output == "-":
        raise UsageError("--base writes a file: give -o FILE")
    if args.target_bits or args.target_size or args.max_rel_error or args.importance or args.sensitivity:
        raise UsageError("--base does not combine with --target-bits, --target-size, --max-rel-error, --importance or "
                         "--sensitivity")
    _check_output(args.output, [args.input, *args.base] + ([args.policy] if args.policy else [])
                  + ([args.previous] if args.previous else []), args.force)
    start = time.perf_counter()
    version = None if args.format_version is None else tuple(int(x) for x in args.format_version.split("."))
    previous = None
    if args.previous:
        from . import formats
        from .dtypes import bfloat16_dtype

        previous = {name: array.view(bfloat16_dtype()) if hint == "bfloat16" else array
                    for name, array, hint in formats.read_tensors(args.previous)}
    summary = save_delta(tensors, args.output, base=args.base, previous=previous, policy=policy, workers=args.workers,
                         format_version=version)
    if not args.quiet:
        print(f"{dump.escape(args.output)}: delta of base {summary['base_digest'][:16]}: {summary['changed']} layers "
              f"stored, {summary['unchanged']} unchanged, {summary['removed']} removed; "
              f"{os.path.getsize(args.output):,} bytes in {time.perf_counter() - start:.2f} s")
    return 0


def _print_encode_summary(args, summary, size: int, start: float) -> None:
    """What codec encode did (on stdout, or on stderr when the bitstream goes to stdout)."""
    raw_bytes = summary["raw_bytes"]
    how = ", ".join(f"{n} x {label}" for label, n in summary["chosen"].items()) or "no layers"
    if any(label.startswith("lossless") for label in summary["chosen"]):
        how += " (coded as " + ", ".join(f"{n} {m}" for m, n in sorted(summary["written"].items())) + ")"
    where = "(stdout)" if args.output == "-" else dump.escape(args.output)
    print(f"{where}: {summary['layers']} layers, {size:,} bytes from {raw_bytes:,} "
          f"({raw_bytes / max(size, 1):.3f}x) in {time.perf_counter() - start:.2f} s; "
          f"{'policy ' + dump.escape(args.policy) if args.policy else 'default policy (lossless)'}: {how}")
    if "target" in summary:
        t = summary["target"]
        goal = {"bits": f"target {t['limit']} bits per parameter: {t['value']:.4f}",
                "size": f"target {t['limit']:,} bytes: {t['value']:,}",
                "max_rel_error": f"max relative error {t['limit']}: {t['value']:.4g}"}[t["kind"]]
        print(f"{goal} with the policy's steps moved by "
              f"{t['qp_offset']:+d} qp ({t['qp_offset'] / (1 << t['qp_density']):+.3f} octave; "
              f"{len(t['tried'])} passes)")
    _print_quality(summary["quality"])


def _size(text: str) -> int:
    from .policy import parse_size

    try:
        value = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive size, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


class _HeldWarnings(logging.Handler):
    """Holds the library's warnings while a progress bar is drawn, then prints them on stderr."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def __enter__(self):
        logging.getLogger("codec").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("codec").removeHandler(self)

    def emit(self, record):
        self.messages.append(record.getMessage())

    def print_held(self):
        for message in self.messages:
            print(f"warning: {message}", file=sys.stderr)
        self.messages = []


def _print_quality(layers, worst: int = 10) -> None:
    """The lossy layers' error against the input: the total and the worst layers (warnings for
    layers past the threshold are logged by codec.quality, on stderr)."""
    from . import quality

    every = quality.total(layers)
    if every is None:
        return
    print(f"quality of the {len(layers)} lossy layers (weight error against the input): relative error "
          f"{every.rel_error:.4f}, SQNR {every.sqnr_db:.1f} dB")
    ranked = sorted(layers, key=lambda q: -q.rel_error)[:worst]
    print(f"  {'rel. error':>10} {'SQNR dB':>8}  {'mode':<10} layer" + (f" (the {worst} worst)" if len(layers) > worst
                                                                          else ""))
    for q in ranked:
        print(f"  {q.rel_error:>10.4f} {q.sqnr_db:>8.1f}  {q.mode:<10} {dump.escape(q.name)}")


def _decoded_sizes(reader) -> dict[str, int]:
    from .dtypes import storage_dtype
    from .errors import CodecError

    sizes = {}
    for name in reader:
        h = reader.header(name)
        try:
            sizes[name] = h.num_elements * storage_dtype(h).itemsize
        except CodecError:  # a reserved dtype: the decode reports it
            sizes[name] = 0
    return sizes


def _cmd_decode(args) -> int:
    from . import formats

    if args.output == "-":
        raise UsageError("-o -: the output format follows the file name's extension; give -o FILE.safetensors "
                         "(or .npz, .pt)")
    if formats._format_of(args.output) == ".onnx":  # fail before decoding anything
        raise EncodeError("cannot write .onnx files: decode to .safetensors, .npz or .pt")
    if args.input == "-":  # a pipe: spooled to a temporary file (the reader needs random access)
        scratch = tempfile.mkdtemp(prefix="codec-decode-")
        try:
            spooled = os.path.join(scratch, "in.nnc")
            with open(spooled, "wb") as f:
                shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
            return _decode_path(args, spooled)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return _decode_path(args, args.input)


def _decode_path(args, source: str) -> int:
    from . import delta, formats
    from .reader import Reader

    if args.base:
        _check_output(args.output, [args.input, *args.base], args.force)
        # the base is read a layer at a time (its digest, then each layer as it is written)
        base = delta.resolve_base(args.base, lazy=True)
        try:
            r = Reader(source)
        except BaseException:
            delta.close_base(base)
            raise
        try:
            model = delta.UpdatedModel(r, base, close_base=True)
        except BaseException:
            r.close()
            delta.close_base(base)
            raise
        with model:
            metadata = {k: v for k, v in r.metadata.items() if isinstance(v, (str, int, float, bool))}
            items = [formats.LazyTensor(name, *model.spec(name), lambda name=name: model[name]) for name in model]
            formats.write_tensors(args.output, items, metadata=metadata)
        if not args.quiet:
            print(f"{dump.escape(args.output)}: {len(items)} tensors, {os.path.getsize(args.output):,} bytes")
        return 0
    with Reader(source) as r:
        if delta.is_delta(r.metadata):
            raise BaseMismatchError(f"{source} is a delta bitstream (changes to the base of content digest "
                                    f"{r.metadata[delta.BASE_KEY][:16]}...): give its base with --base BASE "
                                    "(repeat --base for a chain: the base, then each earlier update)")
        _check_output(args.output, [args.input], args.force)
        progress = _Progress(_decoded_sizes(r), "decoding", args.quiet)
        # the output's header comes from the layer headers; each layer is decoded when its bytes
        # are written (``workers`` ahead at most), so memory holds a layer or a few, not the model
        prefetch = _Prefetch(r, args.workers, progress)
        items = [formats.LazyTensor(name, r.header(name).shape, r.header(name).dtype_name,
                                    lambda name=name: prefetch.get(name)) for name in r]
        metadata = {k: v for k, v in r.metadata.items() if isinstance(v, (str, int, float, bool))}
        try:
            formats.write_tensors(args.output, items, metadata=metadata)
        finally:
            prefetch.close()
            progress.close()
    if not args.quiet:
        print(f"{dump.escape(args.output)}: {len(items)} tensors, {os.path.getsize(args.output):,} bytes")
    return 0


class _Prefetch:
    """Layers decoded in file order on ``workers`` threads, at most ``workers`` ahead of the writer."""

    def __init__(self, reader, workers: int, progress):
        self.reader, self.workers, self.progress = reader, max(1, workers or 1), progress
        self.names = list(reader)
        self.position = {name: i for i, name in enumerate(self.names)}
        self.pending: dict = {}
        self.total = 0
        self.pool = None
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=self.workers)

    def get(self, name: str):
        if self.pool is None:
            array = self.reader.get(name)
        else:
            i = self.position[name]
            for ahead in self.names[i:i + self.workers]:
                if ahead not in self.pending:
                    self.pending[ahead] = self.pool.submit(self.reader.get, ahead)
            array = self.pending.pop(name).result()
        # the decoded bytes of the whole file are bounded like those of load_file
        self.total += array.nbytes
        self.reader.limits.check("max_decoded_bytes", self.total, path=f"layers[{self.position[name]}]")
        self.progress(name)
        return array

    def close(self) -> None:
        if self.pool is not None:
            for future in self.pending.values():
                future.cancel()
            self.pool.shutdown(wait=True)


def _cmd_dump(args) -> int:
    return dump.run(args, prog="codec dump")


def _cmd_report(args) -> int:
    from .atomic import AtomicFile
    from .report import build_report

    _check_output(args.output, [args.input], args.force)
    page = build_report(args.input)
    atomic = AtomicFile(args.output, mode="w+b")
    try:
        atomic.file.write(page.encode("utf-8"))
        atomic.commit()
    except BaseException:
        atomic.abort()
        raise
    if not args.quiet:
        print(f"{dump.escape(args.output)}: {len(page):,} bytes (open it in a browser; it fetches nothing)")
    return 0


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

    p = sub.add_parser("encode", help="compress a safetensors/npz/PyTorch/ONNX file into a bitstream",
                       description="Compress the tensors of IN (safetensors, npz, .pt/.pth, .onnx) into a codec "
                       "bitstream. Without --policy every tensor is stored losslessly with the best lossless "
                       "mode for its dtype; a policy (a TOML/JSON file or a built-in preset, see --policy) chooses modes per "
                       "layer. "
                       "The policy is stored in the file's metadata.",
                       epilog="examples:\n  codec encode model.safetensors -o model.nnc\n"
                       "  codec encode model.pt -o model.nnc --policy int8.toml --workers 2",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="safetensors, npz, .pt/.pth or .onnx file")
    p.add_argument("-o", "--output", required=True, help="bitstream to write (atomically)")
    from .presets import PRESETS

    p.add_argument("--policy", metavar="POLICY",
                   help="policy file (.toml or .json, see the policy section of the README) or a built-in preset: "
                        + "; ".join(f"{name}: {text}" for name, (text, _) in PRESETS.items()).replace("%", "%%"))
    p.add_argument("--workers", type=_positive_int, default=1, help="encode layers on this many threads (same bytes)")
    p.add_argument("--importance", metavar="FILE",
                   help="safetensors or npz file of per-input-channel importances by tensor name (the mean squared "
                        "input of each layer, codec.torch.collect_importance): dq layers weigh their error by them")
    p.add_argument("--sensitivity", metavar="FILE",
                   help="JSON file of per-layer output sensitivities by tensor name (codec.torch.collect_sensitivity, "
                        "codec.sensitivity.measure): the step of each quantized or dq rule with step= is scaled per "
                        "layer, coarser where the output cares less (MiniLM: 18-25%% fewer bits than one step at equal "
                        "embedding cosine, bench/bench_rd.py)")
    goal = p.add_mutually_exclusive_group()
    goal.add_argument("--target-bits", type=_positive_float, metavar="B",
                      help="make the file at most B bits per parameter, as close as the step grid allows: the steps "
                           "of the policy's quantized and dq rules (those with step=) all move by the same number of "
                           "grid points, found by encoding a few times (also a policy's [target] table)")
    goal.add_argument("--target-size", type=_size, metavar="SIZE",
                      help="the same for a file of at most SIZE bytes (12MB = 12,000,000; 12MiB = 12 x 2^20)")
    goal.add_argument("--max-rel-error", type=_positive_float, metavar="E",
                      help="the smallest file whose lossy layers keep a total relative weight error (the quality "
                           "report's) of at most E, by moving the same steps")
    p.add_argument("--format-version", choices=["1.1", "2.0", "2.1"], default=None,
                   help="lowest format version to write; 1.1: readable by codec 1.x readers (levels coded as spec "
                        "7.2); 2.0: readable by codec 2.0 readers (levels without adaptive contexts, the fastest "
                        "to decode); default: 2.1 when a layer codes levels (adaptive contexts where they make a "
                        "layer >= 1%% smaller), 2.2 when a layer uses mode dq, 2.3 with the quality report of a lossy "
                        "policy, else 1.x")
    p.add_argument("--base", metavar="BASE", action="append",
                   help="write a delta bitstream: only the changes to the model in BASE (a codec file; repeat for a "
                        "chain: the base, then each earlier update). Unchanged layers are left out, changed layers of a "
                        "lossy policy rule store their difference to BASE's decoded layer; decode with --base")
    p.add_argument("--previous", metavar="FILE",
                   help="with --base: the tensors (safetensors, npz, .pt, .onnx) a lossy BASE was encoded from; layers "
                        "equal to them are unchanged and lossy layers code only the update (IN - FILE)")
    p.add_argument("-f", "--force", action="store_true", help="replace OUT if it exists (never an input)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="decode a bitstream to safetensors, npz or a PyTorch state dict",
                       description="Decode every layer and write them to OUT; the format follows the extension "
                       "(.safetensors, .npz, .pt). Names, shapes and dtypes (bfloat16 included) are kept.",
                       epilog="example:\n  codec decode model.nnc -o model.safetensors",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True, help=".safetensors, .npz or .pt file to write (atomically)")
    p.add_argument("--workers", type=_positive_int, default=1, help="decode layers on this many threads")
    p.add_argument("--base", metavar="BASE", action="append",
                   help="the base model of a delta bitstream (repeat for a chain: the base, then each earlier update)")
    p.add_argument("-f", "--force", action="store_true", help="replace OUT if it exists (never the input)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("report", help="write a self-contained HTML page with pictures of a bitstream",
                       description="Write one HTML file (inline SVG, no script, nothing fetched) showing where the "
                       "bytes go per layer and coding mode, bits per element and weight SQNR per layer, the level "
                       "histograms of the largest quantized layers and the density of sparse layers.",
                       epilog="example:\n  codec report model.nnc -o model.html",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="bitstream")
    p.add_argument("-o", "--output", required=True, help="HTML file to write (atomically)")
    p.add_argument("-f", "--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("info", help="one-line summary of a bitstream")
    p.add_argument("file")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("verify", help="check every checksum and decode every layer")
    p.add_argument("file")
    p.set_defaults(func=_cmd_verify)
    return parser


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM or SIGHUP, so that the writer removes its temporary
    file on the way out (as it does for KeyboardInterrupt)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, frame):
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import signal

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, _on_signal)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"codec {args.command}: error: {dump.escape(str(exc))}", file=sys.stderr)
        return 2
    except (CodecError, OSError) as exc:
        print(f"codec {args.command}: error: {dump.escape(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        remove_temporary_files()
        print(f"codec {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        remove_temporary_files()
        print(f"codec {args.command}: terminated by signal {exc.signum}", file=sys.stderr)
        return 128 + exc.signum


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
