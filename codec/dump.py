"""codec-dump: inspect a codec bitstream without decoding its tensors.

The logic lives here so that the console script, ``codec dump`` and ``tools/codec_dump.py`` share it.
:func:`summarize` returns the JSON document of ``--json`` (schema ``codec-dump/1``, documented in
spec/dump-json.md); :func:`walk` returns every syntax element with its bit offset (``--fields``).
Names read from the file are escaped before they reach a terminal.
"""

from __future__ import annotations

import argparse
import enum
import json
import math
import mmap
import os
import sys
from typing import Any

import numpy as np

from .dtypes import storage_dtype
from .errors import CodecError
from .format import DEFAULT_LIMITS, GLOBAL_QP_SET_OFFSET, Limits, UnknownValue, read_index_payload, \
    read_network_header, read_trailer, read_unit_header
from .format.constants import STORAGE_DTYPE, TRAILER_SIZE
from .kernels import Field
from .modes import get_mode, mode_name
from .quant import read_qp_set_data
from . import quality
from .format.metadata import read_metadata_unit
from .format.unit import is_metadata_unit
from .reader import Reader, iter_units, memory_for

__all__ = ["main", "summarize", "walk", "escape"]

SCHEMA = "codec-dump/2"


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


def _coding_summary(reader: Reader, h) -> tuple[dict[str, Any] | None, str]:
    """The layer's mode's summary (JSON) and its short text; errors become {"error": message}."""
    try:
        mode = get_mode(h.coding_mode)
        mode.check_header(h)
        summary = mode.summarize(h, reader.payload(h.layer_name), global_qp=reader.global_qp)
        return summary, ("-" if summary is None else mode.summary_text(summary))
    except CodecError as exc:
        return {"error": str(exc)}, "invalid"


def summarize(reader: Reader, *, verify: bool = False, file_size: int | None = None) -> dict[str, Any]:
    """Return the ``--json`` document for an open reader (checksums too if ``verify``)."""
    nh = reader.network_header
    metadata = reader.metadata
    report = _quality_report(metadata)
    layers = []
    for name in reader:
        h = reader.header(name)
        try:
            itemsize = storage_dtype(h).itemsize
        except CodecError:
            itemsize = None
        elements = h.num_elements
        raw_bytes = elements * itemsize if itemsize is not None else None
        coding, coding_text = _coding_summary(reader, h)
        entry = {
            "index": h.layer_index,
            "name": h.layer_name,
            "kind": h.kind_name,
            "dtype": h.dtype_name,
            "shape": list(h.layer_shape),
            "elements": elements,
            "mode": mode_name(h.coding_mode),
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
            "coding": coding,
            "coding_text": coding_text,
        }
        q = report.get(name)
        if q is not None:
            entry["quality"] = _quality_entry(q)
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
        "metadata": {k: _json_value(v) for k, v in metadata.items()},
        "layers": layers,
    }
    if report:
        doc["quality_total"] = _quality_entry(quality.total(list(report.values())))
    if verify:
        doc["verified"] = all(entry["check"] == "ok" for entry in layers)
    return doc


def _quality_report(metadata: dict) -> dict[str, "quality.LayerQuality"]:
    """The stored quality report (spec 5.7, ``codec.quality``) by layer name; empty without one
    (or when it cannot be parsed: the dump shows the raw value then)."""
    text = metadata.get(quality.METADATA_KEY)
    if not isinstance(text, str):
        return {}
    try:
        return {q.name: q for q in quality.from_metadata(text)}
    except ValueError:
        return {}


def _quality_entry(q) -> dict[str, Any]:
    def finite(x):
        return x if math.isfinite(x) else None

    return {"rel_error": finite(q.rel_error), "sqnr_db": finite(q.sqnr_db), "max_abs_error": finite(q.max_abs_error)}


def walk(buf, *, limits: Limits = DEFAULT_LIMITS) -> list[Field]:
    """Parse a whole bitstream and return every syntax element, in file order, as Fields.

    Parameter sets and payloads are walked by the modes that own them (``Mode.trace``), down to
    the bulk data (rANS words, planes, raw bytes), which are listed as one ``b(n)`` element each.
    A payload that cannot be walked gets an ``error`` entry, and the walk goes on.
    """
    trace: list[Field] = []
    buf = memoryview(buf).cast("B")
    nh = read_network_header(buf, limits, trace=trace)
    global_qp = read_qp_set_data(nh.global_qp_set, path="network_header.global_qp_set.qp_set_data",
                                 base_offset=GLOBAL_QP_SET_OFFSET, trace=trace)
    trailer_offset = len(buf) - TRAILER_SIZE
    index_offset, _ = read_trailer(buf[trailer_offset:], trailer_offset)
    position = 0
    for unit in iter_units(buf, nh, limits, end=index_offset, trace=trace):
        h = unit.layer
        path = f"layers[{position}]" if h is not None else "unit"
        payload = buf[unit.payload_offset:unit.payload_offset + unit.unit_payload_size]
        trace.append(Field(f"{path}.unit_payload", unit.payload_offset * 8, unit.unit_payload_size * 8,
                           f"b({unit.unit_payload_size})", f"<{unit.unit_payload_size} bytes>"))
        if is_metadata_unit(unit.unit_type, nh.version):
            try:
                read_metadata_unit(payload, unit.payload_offset, limits, taken=(), path="unit.unit_payload",
                                   trace=trace)
            except CodecError as exc:
                trace.append(Field(path, unit.payload_offset * 8, 0, "error", str(exc)))
        if h is not None:
            try:
                if h.local_qp_set is not None:
                    read_qp_set_data(h.local_qp_set, path=f"{h.qp_path}.qp_set_data", base_offset=h.local_qp_set_offset,
                                     trace=trace)
                # walking a payload may decode it (flag strings, masks): bounded like a decode
                nbytes = h.num_elements * (storage_dtype(h).itemsize if h.layer_dtype in STORAGE_DTYPE else 1)
                limits.check("max_decoded_bytes", nbytes, path=f"{h.path}.layer_dim")
                mode = get_mode(h.coding_mode)
                mode.check_header(h)  # the dtype rule every decode checks first
                with memory_for(h, nbytes):
                    mode.trace(h, payload, trace, global_qp=global_qp)
            except CodecError as exc:
                trace.append(Field(path, unit.payload_offset * 8, 0, "error", str(exc)))
        position += h is not None
    unit = read_unit_header(buf[index_offset:trailer_offset], index_offset, limits, version=nh.version,
                            trace=trace)
    read_index_payload(buf[unit.payload_offset:trailer_offset], unit.payload_offset, limits,
                       layer_count=nh.layer_count, first_unit_offset=nh.network_header_size,
                       index_unit_offset=index_offset, trace=trace)
    read_trailer(buf[trailer_offset:], trailer_offset, trace=trace)
    # containers (a b(n) element) come before the elements inside them: a stable sort by position
    trace.sort(key=lambda f: f.bit_offset)
    return trace


def field_value(value) -> Any:
    """A Field's value for JSON: enums as {"name", "value"}, arrays as lists, bytes as hex."""
    if isinstance(value, enum.IntEnum):
        return {"name": value.name.lower(), "value": int(value)}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return value


def _field_text(value) -> str:
    if isinstance(value, enum.IntEnum):
        return f"{value.name.lower()} ({int(value)})"
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[:16]).hex() + ("..." if len(value) > 16 else "")
    if isinstance(value, np.ndarray):
        head = " ".join(str(v) for v in value[:16].tolist())
        return f"[{head}{' ...' if value.size > 16 else ''}]"
    return _short(value, 80)


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
    has_quality = "quality_total" in doc
    if doc["metadata"]:
        rows = [[escape(k), v["type"], "quality report: the SQNR column and the total below"
                 if k == quality.METADATA_KEY and has_quality else _short(_plain(v))]
                for k, v in doc["metadata"].items()]
        out.append(_table(rows, ["key", "type", "value"], set()))
    else:
        out.append("metadata: (none)")
    out.append("")
    header = ["#", "name", "kind", "dtype", "shape", "mode", "coding", "payload", "bits/elem", "ratio"]
    if has_quality:
        header.append("SQNR dB")
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
            layer["coding_text"],
            _fmt_bytes(layer["payload_bytes"]),
            "-" if bpe is None else f"{bpe:.3f}",
            "-" if ratio is None else f"{ratio:.3f}",
        ]
        if has_quality:
            row.append(_sqnr_text(layer["quality"]) if "quality" in layer else "-")
        if verify:
            row.append("ok" if layer["check"] == "ok" else "FAILED")
        rows.append(row)
        total_payload += layer["payload_bytes"]
        total_raw += layer["raw_bytes"] or 0
    out.append(_table(rows, header, {0, 7, 8, 9, 10} if has_quality else {0, 7, 8, 9}))
    ratio = f"{total_raw / total_payload:.3f}" if total_payload else "-"
    out.append(f"total: {len(rows)} layers, {_fmt_bytes(total_payload)} payload bytes, "
               f"{_fmt_bytes(total_raw)} raw bytes, ratio {ratio}")
    if has_quality:
        t = doc["quality_total"]
        rel = "inf" if t["rel_error"] is None else f"{t['rel_error']:.4g}"
        out.append(f"quality (stored by the encoder): lossy layers' relative error {rel}, SQNR {_sqnr_text(t)} dB "
                   "(weights vs the encoder's input)")
    if verify:
        out.append("checksums: " + ("all ok" if doc["verified"] else "FAILED"))
    return "\n".join(out)


def _sqnr_text(q: dict) -> str:
    if q["sqnr_db"] is not None:
        return f"{q['sqnr_db']:.1f}"
    return "inf" if q["rel_error"] == 0 else "-inf"


def render_fields(fields: list[Field]) -> str:
    lines = [f"{'bit':>12}  {'bits':>8}  {'descriptor':<10}  element = value"]
    for f in fields:
        lines.append(f"{f.bit_offset:>12}  {f.bits:>8}  {f.descriptor:<10}  {escape(f.path)} = "
                     f"{escape(_field_text(f.value))}")
    return "\n".join(lines)


def build_parser(prog: str = "codec-dump") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Show what a codec bitstream holds: network header, metadata and one row per layer "
        "(kind, dtype, shape, coding mode and what the mode says of its coding, payload bytes, bits per "
        "element, ratio vs raw). Nothing is decoded unless --verify is given.",
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


def _walk_file(path: str) -> list[Field]:
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return walk(mm)
        except CodecError as exc:
            raise exc.with_traceback(None) from None  # its frames hold views of the map
        finally:
            try:
                mm.close()
            except BufferError:  # views still alive: the map goes with them
                pass


def run(args: argparse.Namespace, prog: str = "codec-dump") -> int:
    try:
        with Reader(args.file) as reader:
            size = os.path.getsize(args.file)
            doc = summarize(reader, verify=args.verify, file_size=size)
            fields = None
            if args.fields:
                fields = _walk_file(args.file)
    except (CodecError, OSError) as exc:
        print(f"{prog}: error: {escape(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        if fields is not None:
            doc["fields"] = [
                {"path": f.path, "bit_offset": f.bit_offset, "bits": f.bits, "descriptor": f.descriptor,
                 "value": field_value(f.value)}
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
