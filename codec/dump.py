"""codec-dump: inspect a codec bitstream without decoding its tensors.

The logic lives here so that the console script, ``codec dump`` and ``tools/codec_dump.py`` share it.
:func:`summarize` returns the JSON document of ``--json`` (schema ``codec-dump/1``, documented in
spec/dump-json.md); :func:`walk` returns every syntax element with its bit offset (``--fields``).
Names read from the file are escaped before they reach a terminal.
"""

from __future__ import annotations

import argparse
import enum
import fnmatch
import json
import math
import mmap
import os
import re
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
from . import delta, quality
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
    changes = _delta_changes(metadata)
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
        c = changes.get(name)
        if c is not None:
            entry["change"] = _change_entry(c)
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
    if changes:
        doc["change_total"] = _change_total(layers, changes)
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


def _delta_changes(metadata: dict) -> dict[str, "delta.LayerChange"]:
    """A delta bitstream's recorded changes (spec 10.1, ``codec.delta.changes``) by layer name; empty
    without them (or when they cannot be parsed: the dump shows the raw value then)."""
    text = metadata.get(delta.CHANGES_KEY)
    if not isinstance(text, str):
        return {}
    try:
        return {c.name: c for c in delta.changes_from_metadata(text)}
    except ValueError:
        return {}


def _change_entry(c) -> dict[str, Any]:
    def finite(x):
        return x if math.isfinite(x) else None

    return {"changed_elements": c.changed, "changed_fraction": c.changed_fraction,
            "rel_change": finite(c.rel_change), "max_abs_change": finite(c.max_abs_change)}


def _change_total(layers: list[dict], changes: dict) -> dict[str, Any]:
    """Every recorded layer's changed elements; relative and largest change over the float layers only
    (an integer's change is in other units)."""
    recorded = [changes[layer["name"]] for layer in layers if layer["name"] in changes]
    floats = [changes[layer["name"]] for layer in layers if layer["name"] in changes
              and layer["dtype"] in ("float16", "bfloat16", "float32", "float64")]
    changed = sum(c.changed for c in recorded)
    elements = sum(c.elements for c in recorded)
    total = delta.total_change(floats)
    entry = {"layers": len(recorded), "changed_elements": changed, "changed_fraction": changed / elements if elements
             else 0.0, "rel_change": None, "max_abs_change": None, "float_layers": len(floats)}
    if total is not None:
        c = _change_entry(total)
        entry.update(rel_change=c["rel_change"], max_abs_change=c["max_abs_change"])
    return entry


def _change_total_text(t: dict) -> str:
    text = (f"{t['changed_elements']:,} elements of {t['layers']} recorded layer{'s' if t['layers'] != 1 else ''} "
            f"differ ({100 * t['changed_fraction']:.3g}%)")
    if t["float_layers"]:
        text += f"; float layers: relative change {_change_text(t)}, largest {_num(t['max_abs_change'])}"
    return text


def _change_text(change: dict | None) -> str:
    """Relative change as a percentage, in at most 5 characters."""
    if change is None:
        return "-"
    r = change["rel_change"]
    if r is None:
        return "inf"
    p = 100 * r
    return f"{p:.2f}%" if p < 9.995 else f"{p:.1f}%" if p < 99.95 else f"{p:.0f}%" if p < 9999.5 else ">99x"


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


#: The default view's width (a terminal's); --wide prints every column.
WIDTH = 80
#: Level-coder details that the default view leaves to --wide.
_LEVEL_DETAILS = re.compile(r"\s*(E=\d+|K=\d+|S=\d+|esc=\d+|ctx k0=\d+|ctx|chunks=\d+)")


def render_text(doc: dict[str, Any], path: str, *, wide: bool = False, metadata_only: bool = False,
                shown: list[dict] | None = None) -> str:
    """The text view: header lines (over the whole file), the metadata, then one row per layer of
    ``shown`` (default all; ``wide``: every column, else one 80-column row each, the name last)."""
    if wide and not metadata_only:
        return _render_wide({**doc, "layers": doc["layers"] if shown is None else shown}, path)
    layers = doc["layers"]
    shown = layers if shown is None else shown
    total_payload = sum(layer["payload_bytes"] for layer in layers)
    total_raw = sum(layer["raw_bytes"] or 0 for layer in layers)
    elements = sum(layer["elements"] for layer in layers)
    file_bytes = doc["file_bytes"] or total_payload
    nh = doc["network_header"]
    out = [f"{escape(path)}: format {doc['version']}, {nh['layer_count']} layers, {elements:,} elements"]
    if elements:
        ratio = total_raw / max(file_bytes, 1)
        versus = f"{ratio:.2f}x smaller than raw" if ratio >= 1 else f"{1 / max(ratio, 1e-9):.2f}x larger than raw"
        out.append(f"  {_fmt_bytes(file_bytes)} bytes: {8 * file_bytes / elements:.3f} bits per element, {versus}")
    by_mode: dict[str, list[int]] = {}
    for layer in layers:
        entry = by_mode.setdefault(layer["mode"], [0, 0])
        entry[0] += layer["payload_bytes"]
        entry[1] += 1
    if by_mode:
        shares = sorted(by_mode.items(), key=lambda kv: -kv[1][0])
        line = "  share of the file:"
        for i, (m, (b, n)) in enumerate(shares):
            item = f" {m} {100 * b / max(file_bytes, 1):.1f}% ({n} layer{'s' if n != 1 else ''})" \
                + ("," if i < len(shares) - 1 else "")
            if len(line) + len(item) > WIDTH:
                out.append(line)
                line = "   "
            line += item
        out.append(line)
    meta_plain = {k: _plain(v) for k, v in doc["metadata"].items() if k.startswith("codec.delta.")}
    if "codec.delta.base" in meta_plain:  # spec 10.1: what the file changes, and of which base
        changed = sum(layer["mode"] == "delta" for layer in layers)
        removed = meta_plain.get("codec.delta.removed") or []
        out.append(f"  delta bitstream of the base with content digest {escape(str(meta_plain['codec.delta.base']))}: "
                   f"{changed} layer{'s' if changed != 1 else ''} as differences, {len(layers) - changed} stored whole, "
                   f"{len(removed)} removed; the base's other layers are unchanged")
        if "change_total" in doc:
            t = doc["change_total"]
            out.append(f"  changes (the writer's record): {_change_total_text(t)}")
    if "quality_total" in doc:
        t = doc["quality_total"]
        rel = "inf" if t["rel_error"] is None else f"{t['rel_error']:.4g}"
        out.append(f"  lossy layers: relative error {rel}, SQNR {_sqnr_text(t)} dB (the encoder's report)")
    out.append("")
    meta = doc["metadata"]
    if metadata_only:
        for key, value in meta.items():
            text = _plain(value)
            if isinstance(text, str) and text.startswith("{"):
                try:
                    text = json.dumps(json.loads(text), indent=2, sort_keys=True)
                except ValueError:
                    pass
            out.append(f"{escape(key)} ({value['type']}):")
            out.extend("  " + escape(line) for line in str(text).splitlines() or [""])
        return "\n".join(out)
    if meta:
        keyw = min(24, max(len(escape(k)) for k in meta))
        for key, value in meta.items():
            text = ("(the quality report: the SQNR column)" if key == quality.METADATA_KEY and "quality_total" in doc
                    else "(the writer's change record: the change column)"
                    if key == delta.CHANGES_KEY and "change_total" in doc
                    else _short(_plain(value), WIDTH - keyw - 4))
            out.append(f"{escape(key)[:keyw].ljust(keyw)}  {text}")
        out.append("(--metadata prints the values in full)")
    else:
        out.append("metadata: (none)")
    out.append("")
    has_quality = "quality_total" in doc
    out.extend(_compact_rows(shown, file_bytes, has_quality, "change_total" in doc))
    if len(shown) != len(layers):
        out.append(f"({len(shown)} of {len(layers)} layers shown)")
    if "verified" in doc:
        out.append("checksums: " + ("all ok" if doc["verified"] else "FAILED"))
    return "\n".join(out)


def _steps(c: dict, scale: float = 1.0) -> str:
    lo, hi = c.get("step_min"), c.get("step_max")
    if not lo or not hi:
        return ""
    a, b = math.log2(lo * scale), math.log2(hi * scale)
    return f" 2^{a:.1f}" if abs(a - b) < 0.05 else f" 2^{a:.0f}..{b:.0f}"


def _coding_short(layer: dict) -> str:
    """The coding in a few words, from the mode's summary: method, bits, step(s), scheme."""
    c, mode = layer.get("coding"), layer["mode"]
    if not isinstance(c, dict):
        return mode
    if "error" in c:
        return "invalid"
    ch = "/ch" if c.get("granularity") == "channel" else ""
    if mode == "quantized":  # int8/ch: 8-bit levels per channel; zp: with zero points
        method = c.get("method")
        if method == "codebook":
            return f"codebook {c.get('bits', '?')}b"
        return f"{'uint' if method == 'uniform_zp' else 'int'}{c.get('bits', '?')}{ch}" + _steps(c)
    if mode == "dq":  # the stored step is half the quantizer's spacing (spec 8.5): show the user's step
        return f"dq {c.get('bits', '?')}b{ch}" + _steps(c, 2.0)
    if mode == "ternary":
        return f"ternary {c.get('scheme', '?')} {c.get('bits_per_trit', 0):.2f}b"
    if mode == "sparse":
        nm = c.get("nm")
        mask = f"{nm[0]}:{nm[1]}" if nm else f"d={c.get('density', 0):.2f}"
        return f"sparse {mask} +{c.get('values_mode', '?')}"
    if mode == "delta":  # the difference to the base, in another mode
        return f"delta +{c.get('delta_mode', '?')}"
    if mode == "pq":  # vectors of dim weights, centroids per stage
        return f"pq d{c.get('dim', '?')} K{'+'.join(str(k) for k in c.get('centroids', []))}"
    return mode


def _group(name: str) -> str:
    """The part of a name that rows share: up to its first all-digit component ("encoder.layer.0."),
    else its first component ("embeddings.")."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[: i + 1]) + "."
    return parts[0] + "." if len(parts) > 2 else ""


def _num(x) -> str:
    return "inf" if x is None else f"{x:.4g}"


def _compact_rows(layers: list[dict], file_bytes: int, has_quality: bool, has_change: bool = False) -> list[str]:
    codings = [_coding_short(layer) for layer in layers]
    coding_w = min(22, max([6] + [len(c) for c in codings]))
    head = f"{'bits':>6}  {'%file':>5}  " + (f"{'SQNR':>4}  " if has_quality else "") \
        + (f"{'change':>6}  " if has_change else "") \
        + f"{'coding'.ljust(coding_w)}  name"
    lines = [head, "-" * WIDTH]
    name_at = len(head) - len("name")
    room = max(16, WIDTH - name_at)
    previous_group = None
    counts: dict[str, int] = {}
    for layer in layers:
        g = _group(layer["name"])
        counts[g] = counts.get(g, 0) + 1
    for layer, coding in zip(layers, codings):
        name = layer["name"]
        g = _group(name)
        if g and counts[g] > 1:
            if g != previous_group:
                lines.append(" " * name_at + escape(g))
            name = " " + name[len(g):]
        previous_group = g if g and counts[g] > 1 else None
        name = escape(name)
        if len(name) > room:  # keep both ends: the distinguishing part is usually the tail
            keep = room - 1
            name = name[: keep // 3] + "~" + name[-(keep - keep // 3):]
        bpe = layer["bits_per_element"]
        row = f"{'-' if bpe is None else f'{bpe:.2f}':>6}  {100 * layer['payload_bytes'] / max(file_bytes, 1):5.1f}  "
        if has_quality:
            sq = _sqnr_text(layer["quality"]) if "quality" in layer else "-"
            row += f"{sq.split('.')[0] if len(sq) > 4 else sq:>4}  "
        if has_change:
            row += f"{_change_text(layer.get('change')):>6}  "
        coding = coding if len(coding) <= coding_w else coding[: coding_w - 1] + "~"
        row += f"{escape(coding).ljust(coding_w)}  {name}"
        if "check" in layer and layer["check"] != "ok":
            row += "  FAILED"
        lines.append(row)
    return lines


def _render_wide(doc: dict[str, Any], path: str) -> str:
    nh = doc["network_header"]
    out = [f"file: {escape(path)} ({_fmt_bytes(doc['file_bytes'])} bytes), format version {doc['version']}"]
    out.append(f"network header: {nh['network_header_size']} bytes, {nh['layer_count']} layers, "
               f"flags 0x{nh['network_flags']:04x}, global_qp_set {nh['global_qp_set_bytes']} bytes")
    out.append("")
    has_quality = "quality_total" in doc
    if doc["metadata"]:
        has_change = "change_total" in doc
        rows = [[escape(k), v["type"], "quality report: the SQNR column and the total below"
                 if k == quality.METADATA_KEY and has_quality else "change record: the change columns"
                 if k == delta.CHANGES_KEY and has_change else _short(_plain(v))]
                for k, v in doc["metadata"].items()]
        out.append(_table(rows, ["key", "type", "value"], set()))
    else:
        out.append("metadata: (none)")
    out.append("")
    header = ["#", "name", "kind", "dtype", "shape", "mode", "coding", "payload", "bits/elem", "ratio"]
    if has_quality:
        header.append("SQNR dB")
    has_change = "change_total" in doc
    if has_change:
        header += ["changed", "rel change", "max change"]
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
        if has_change:
            c = layer.get("change")
            row += ["-", "-", "-"] if c is None else [f"{100 * c['changed_fraction']:.3g}%", _change_text(c),
                                                      _num(c["max_abs_change"])]
        if verify:
            row.append("ok" if layer["check"] == "ok" else "FAILED")
        rows.append(row)
        total_payload += layer["payload_bytes"]
        total_raw += layer["raw_bytes"] or 0
    right = {0, 7, 8, 9} | ({10} if has_quality else set())
    if has_change:
        first = 10 + has_quality
        right |= {first, first + 1, first + 2}
    out.append(_table(rows, header, right))
    ratio = f"{total_raw / total_payload:.3f}" if total_payload else "-"
    out.append(f"total: {len(rows)} layers, {_fmt_bytes(total_payload)} payload bytes, "
               f"{_fmt_bytes(total_raw)} raw bytes, ratio {ratio}")
    if has_quality:
        t = doc["quality_total"]
        rel = "inf" if t["rel_error"] is None else f"{t['rel_error']:.4g}"
        out.append(f"quality (stored by the encoder): lossy layers' relative error {rel}, SQNR {_sqnr_text(t)} dB "
                   "(weights vs the encoder's input)")
    if has_change:
        t = doc["change_total"]
        out.append(f"changes (the writer's record, against the base or previous model): {_change_total_text(t)}")
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
        description="Show what a codec bitstream holds: the whole file's bits per element, ratio and share per "
        "mode, the metadata, and one row per layer (bits per element, share of the file, weight SQNR when the "
        "encoder stored its quality report, what the coding mode says of its coding, the name; --wide adds "
        "kind, dtype, shape, payload bytes and ratio). Nothing is decoded unless --verify is given.",
        epilog="examples:\n"
        f"  {prog} model.nnc               table of layers (80 columns)\n"
        f"  {prog} --wide model.nnc        every column\n"
        f"  {prog} --layers '*attention*' --mode dq model.nnc   some layers\n"
        f"  {prog} --metadata model.nnc    the metadata in full (the stored policy, the quality report)\n"
        f"  {prog} --verify model.nnc      also check every checksum (exit 2 if one fails)\n"
        f"  {prog} --json model.nnc        machine-readable summary (schema codec-dump/2)\n"
        f"  {prog} --fields model.nnc      every syntax element with bit offset, descriptor, value\n\n"
        "exit status: 0 ok, 2 bad or unreadable file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="bitstream to inspect")
    parser.add_argument("--wide", action="store_true",
                        help="every column (kind, dtype, shape, mode, the coding in full, payload bytes, ratio) instead "
                             "of the 80-column view")
    parser.add_argument("--layers", action="append", metavar="GLOB",
                        help="only the layers whose name matches GLOB (case-insensitive; repeatable)")
    parser.add_argument("--mode", action="append", metavar="MODE", help="only the layers of this coding mode (repeatable)")
    parser.add_argument("--metadata", action="store_true", help="the header lines and the metadata in full, no layers")
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
    globs, modes = getattr(args, "layers", None), getattr(args, "mode", None)
    shown = [layer for layer in doc["layers"]
             if (not globs or any(fnmatch.fnmatchcase(layer["name"].lower(), g.lower()) for g in globs))
             and (not modes or layer["mode"] in modes)]
    if args.json:
        if len(shown) != len(doc["layers"]):
            doc["layers"] = shown
            doc["filtered"] = True
        if fields is not None:
            doc["fields"] = [
                {"path": f.path, "bit_offset": f.bit_offset, "bits": f.bits, "descriptor": f.descriptor,
                 "value": field_value(f.value)}
                for f in fields
            ]
        print(json.dumps(doc, indent=2, ensure_ascii=True, default=str))
    else:
        print(render_text(doc, args.file, wide=getattr(args, "wide", False),
                          metadata_only=getattr(args, "metadata", False), shown=shown))
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
    try:
        return run(args)
    except BrokenPipeError:  # codec-dump ... | head: the reader has gone, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
