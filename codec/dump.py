"""codec-dump: inspect a codec bitstream without decoding its tensors.

The logic lives here so that the console script, ``codec dump`` and ``tools/codec_dump.py`` share it.
:func:`summarize` returns the JSON document of ``--json`` (schema ``codec-dump/1``, documented in
spec/dump-json.md); :func:`walk` returns every syntax element with its bit offset (``--fields``).
Names read from the file are escaped before they reach a terminal.
"""

from __future__ import annotations

import argparse
import json
import math
import mmap
import os
import sys
from typing import Any

from .bitio import Field
from .constants import TRAILER_SIZE
from .errors import CodecError
from .limits import DEFAULT_LIMITS, Limits
from .modes import storage_dtype
from .reader import Reader, iter_units
from .syntax import (
    UnknownValue,
    read_index_payload,
    read_network_header,
    read_trailer,
    read_unit_header,
)

__all__ = ["main", "summarize", "walk", "escape"]

SCHEMA = "codec-dump/1"


def escape(text: str) -> str:
    """Return ``text`` with control, format and other non-printable characters escaped."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def _json_value(value) -> Any:
    if isinstance(value, UnknownValue):
        return {"type": f"unknown({value.value_type})", "value": bytes(value).hex()}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": value}
    if isinstance(value, float):
        return {"type": "float", "value": value if math.isfinite(value) else repr(value)}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, bytes):
        return {"type": "bytes", "value": value.hex()}
    if isinstance(value, list):
        return {"type": "list", "value": [_json_value(v) for v in value]}
    return {"type": type(value).__name__, "value": repr(value)}


def _quantization_summary(reader: Reader, h) -> dict[str, Any] | None:
    """Effective quantization parameters of a quantized layer (None for other modes)."""
    from .constants import CodingMode
    from .quant import read_qp_set_data, resolve

    if h.coding_mode != CodingMode.QUANTIZED:
        return None
    try:
        local = read_qp_set_data(h.local_qp_set or b"", path=f"layers[{h.layer_index}].local_qp_set")
        eff = resolve(local, reader.global_qp, h.layer_shape, path=f"layers[{h.layer_index}].local_qp_set")
    except CodecError as exc:
        return {"error": str(exc)}
    out = {"method": eff.method, "bits": eff.bits, "granularity": eff.granularity, "axis": eff.axis,
           "local_fields": [k for k, v in vars(local).items() if v is not None]}
    if eff.method == "codebook":
        out["codebook_size"] = int(eff.codebook.size)
    else:
        out.update(qp_density=eff.qp_density, qps=list(eff.qps), step_min=float(eff.steps.min()),
                   step_max=float(eff.steps.max()))
        if eff.method == "uniform_zp":
            out["zero_points"] = eff.zero_points.tolist()
    return out


def _sparse_summary(reader: Reader, h) -> dict[str, Any] | None:
    """Density, mask kind and mask cost of a sparse layer, from its payload header (no decoding)."""
    from .constants import CodingMode
    from .masks import KIND_NAMES
    from .modes import SparseMode, mode_name

    if h.coding_mode != CodingMode.SPARSE:
        return None
    try:
        kept, block, _, vmode, _, _, _ = SparseMode.parse(h, reader.payload(h.layer_name))
    except CodecError as exc:
        return {"error": str(exc)}
    n = h.num_elements
    p = kept / n if n else 0.0
    hp = 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    kind = KIND_NAMES.get(block[0], f"unknown({block[0]})") if len(block) else "empty"
    out = {"kept": kept, "density": p, "mask_kind": kind, "mask_bytes": len(block),
           "mask_bits_per_element": 8 * len(block) / n if n else None, "entropy_bound": hp,
           "mask_vs_entropy": (8 * len(block) / n) / hp if n and hp else None, "values_mode": mode_name(vmode)}
    if kind == "nm" and len(block) >= 4:
        out["nm"] = [int(block[1]), int(block[2])]
    return out


def _sparse_text(q: dict[str, Any] | None) -> str:
    if q is None:
        return "-"
    if "error" in q:
        return "invalid"
    kind = f"{q['nm'][0]}:{q['nm'][1]}" if "nm" in q else q["mask_kind"]
    bpe = q["mask_bits_per_element"]
    text = f"{kind} d={q['density']:.3f} mask {bpe:.3f}b/el" if bpe is not None else f"{kind} empty"
    if q["mask_vs_entropy"]:
        text += f" ({q['mask_vs_entropy']:.3f}xH)"
    return text + f" +{q['values_mode']}"


def _qp_text(q: dict[str, Any] | None) -> str:
    if q is None:
        return "-"
    if "error" in q:
        return "invalid"
    text = f"{q['method']} {q['bits']}b"
    if q["method"] == "codebook":
        return text + f" cb{q['codebook_size']}"
    text += " ch" + str(q["axis"]) if q["granularity"] == "channel" else ""
    step = q["step_min"]
    text += f" step 2^{math.log2(step):.2f}" if q["step_min"] == q["step_max"] else \
        f" steps 2^{math.log2(q['step_min']):.1f}..2^{math.log2(q['step_max']):.1f}"
    return text


def summarize(reader: Reader, *, verify: bool = False, file_size: int | None = None) -> dict[str, Any]:
    """Return the ``--json`` document for an open reader (checksums too if ``verify``)."""
    nh = reader.network_header
    layers = []
    for name in reader:
        h = reader.header(name)
        try:
            itemsize = storage_dtype(h).itemsize
        except CodecError:
            itemsize = None
        elements = h.num_elements
        raw_bytes = elements * itemsize if itemsize is not None else None
        entry = {
            "index": h.layer_index,
            "name": h.layer_name,
            "kind": h.kind_name,
            "dtype": h.dtype_name,
            "shape": list(h.layer_shape),
            "elements": elements,
            "mode": h.mode_name,
            "local_qp_set_bytes": None if h.local_qp_set is None else len(h.local_qp_set),
            "mode_params_bytes": len(h.mode_params),
            "unit_offset": h.unit_offset,
            "header_bytes": h.unit_header_size,
            "payload_offset": h.payload_offset,
            "payload_bytes": h.payload_size,
            "payload_crc32c": f"{h.payload_crc32c:08x}",
            "raw_bytes": raw_bytes,
            "bits_per_element": (8 * h.payload_size / elements) if elements else None,
            "ratio_vs_raw": (raw_bytes / h.payload_size) if raw_bytes and h.payload_size else None,
        }
        entry["quantization"] = _quantization_summary(reader, h)
        entry["sparse"] = _sparse_summary(reader, h)
        if verify:
            try:
                reader.get(name, verify=True)
                entry["check"] = "ok"
            except CodecError as exc:
                entry["check"] = str(exc)
        layers.append(entry)
    doc = {
        "schema": SCHEMA,
        "file_bytes": file_size,
        "version": f"{nh.version_major}.{nh.version_minor}",
        "network_header": {
            "network_header_size": nh.network_header_size,
            "layer_count": nh.layer_count,
            "network_flags": nh.network_flags,
            "global_qp_set_bytes": len(nh.global_qp_set),
        },
        "metadata": {k: _json_value(v) for k, v in nh.metadata.items()},
        "layers": layers,
    }
    if verify:
        doc["verified"] = all(entry["check"] == "ok" for entry in layers)
    return doc


def walk(buf, *, limits: Limits = DEFAULT_LIMITS) -> list[Field]:
    """Parse a whole bitstream in file order and return every syntax element read, as Fields.

    Payloads are listed as one ``b(n)`` element each, not decoded.
    """
    trace: list[Field] = []
    buf = memoryview(buf).cast("B")
    nh = read_network_header(buf, limits, trace=trace)
    trailer_offset = len(buf) - TRAILER_SIZE
    index_offset, _ = read_trailer(buf[trailer_offset:], trailer_offset)
    position = 0
    for unit in iter_units(buf, nh, limits, end=index_offset, trace=trace):
        path = f"layers[{position}]" if unit.layer is not None else "unit"
        trace.append(Field(f"{path}.layer_payload", unit.payload_offset * 8, unit.unit_payload_size * 8,
                           f"b({unit.unit_payload_size})", f"<{unit.unit_payload_size} bytes>"))
        position += unit.layer is not None
    unit = read_unit_header(buf[index_offset:trailer_offset], index_offset, limits, version_minor=nh.version_minor,
                            trace=trace)
    read_index_payload(buf[unit.payload_offset:trailer_offset], unit.payload_offset, limits,
                       layer_count=nh.layer_count, first_unit_offset=nh.network_header_size,
                       index_unit_offset=index_offset, trace=trace)
    read_trailer(buf[trailer_offset:], trailer_offset, trace=trace)
    return trace


def _fmt_bytes(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _table(rows: list[list[str]], header: list[str], right: set[int]) -> str:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]
    lines = ["  ".join(h.rjust(w) if i in right else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths))).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


def _short(value, width: int = 60) -> str:
    text = escape(repr(value) if not isinstance(value, str) else value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _plain(typed: dict[str, Any]):
    # Undo _json_value's type tags for display.
    if typed["type"] == "list":
        return [_plain(v) for v in typed["value"]]
    return typed["value"]


def render_text(doc: dict[str, Any], path: str) -> str:
    nh = doc["network_header"]
    out = [f"file: {escape(path)} ({_fmt_bytes(doc['file_bytes'])} bytes), format version {doc['version']}"]
    out.append(f"network header: {nh['network_header_size']} bytes, {nh['layer_count']} layers, "
               f"flags 0x{nh['network_flags']:04x}, global_qp_set {nh['global_qp_set_bytes']} bytes")
    out.append("")
    if doc["metadata"]:
        rows = [[escape(k), v["type"], _short(_plain(v))] for k, v in doc["metadata"].items()]
        out.append(_table(rows, ["key", "type", "value"], set()))
    else:
        out.append("metadata: (none)")
    out.append("")
    header = ["#", "name", "kind", "dtype", "shape", "mode", "quantization", "sparsity", "payload", "bits/elem", "ratio"]
    verify = "verified" in doc
    if verify:
        header.append("check")
    rows = []
    total_payload = total_raw = 0
    for layer in doc["layers"]:
        bpe = layer["bits_per_element"]
        ratio = layer["ratio_vs_raw"]
        row = [
            str(layer["index"]),
            escape(layer["name"]),
            layer["kind"],
            layer["dtype"],
            "x".join(map(str, layer["shape"])) or "scalar",
            layer["mode"],
            _qp_text(layer["quantization"]),
            _sparse_text(layer["sparse"]),
            _fmt_bytes(layer["payload_bytes"]),
            "-" if bpe is None else f"{bpe:.3f}",
            "-" if ratio is None else f"{ratio:.3f}",
        ]
        if verify:
            row.append("ok" if layer["check"] == "ok" else "FAILED")
        rows.append(row)
        total_payload += layer["payload_bytes"]
        total_raw += layer["raw_bytes"] or 0
    out.append(_table(rows, header, {0, 8, 9, 10}))
    ratio = f"{total_raw / total_payload:.3f}" if total_payload else "-"
    out.append(f"total: {len(rows)} layers, {_fmt_bytes(total_payload)} payload bytes, "
               f"{_fmt_bytes(total_raw)} raw bytes, ratio {ratio}")
    if verify:
        out.append("checksums: " + ("all ok" if doc["verified"] else "FAILED"))
    return "\n".join(out)


def render_fields(fields: list[Field]) -> str:
    lines = [f"{'bit':>12}  {'bits':>8}  {'descriptor':<10}  element = value"]
    for f in fields:
        value = f.value
        if isinstance(value, bytes):
            value = value[:16].hex() + ("..." if len(value) > 16 else "")
        lines.append(f"{f.bit_offset:>12}  {f.bits:>8}  {f.descriptor:<10}  {escape(f.path)} = {_short(value, 80)}")
    return "\n".join(lines)


def build_parser(prog: str = "codec-dump") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Show what a codec bitstream holds: network header, metadata and one row per layer "
        "(kind, dtype, shape, coding mode, quantization parameters, payload bytes, bits per element, "
        "ratio vs raw). Nothing is decoded unless --verify is given.",
        epilog="examples:\n"
        f"  {prog} model.nnc               table of layers\n"
        f"  {prog} --verify model.nnc      also check every checksum (exit 2 if one fails)\n"
        f"  {prog} --json model.nnc        machine-readable summary (schema codec-dump/1)\n"
        f"  {prog} --fields model.nnc      every syntax element with bit offset, descriptor, value\n\n"
        "exit status: 0 ok, 2 bad or unreadable file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="bitstream to inspect")
    parser.add_argument("--verify", action="store_true", help="decode every layer and check all checksums")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--fields", action="store_true", help="list every syntax element (video-analyzer style)")
    return parser


def run(args: argparse.Namespace, prog: str = "codec-dump") -> int:
    try:
        with Reader(args.file) as reader:
            size = os.path.getsize(args.file)
            doc = summarize(reader, verify=args.verify, file_size=size)
            fields = None
            if args.fields:
                with open(args.file, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    fields = walk(mm)
                    fields = list(fields)
    except (CodecError, OSError) as exc:
        print(f"{prog}: error: {escape(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        if fields is not None:
            doc["fields"] = [
                {"path": f.path, "bit_offset": f.bit_offset, "bits": f.bits, "descriptor": f.descriptor,
                 "value": f.value.hex() if isinstance(f.value, bytes) else f.value}
                for f in fields
            ]
        print(json.dumps(doc, indent=2, ensure_ascii=True, default=str))
    else:
        print(render_text(doc, args.file))
        if fields is not None:
            print()
            print(render_fields(fields))
    if args.verify and not doc["verified"]:
        bad = next(layer for layer in doc["layers"] if layer["check"] != "ok")
        print(f"{prog}: error: {escape(bad['check'])}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
