"""``codec report FILE -o report.html``: one self-contained HTML page (inline SVG, no script, nothing
fetched) with the pictures a table cannot give: where the bytes go (per layer, coloured by coding
mode), bits per element and weight SQNR per layer, the level histograms of the quantized layers and
the density of the sparse ones. The figures come from :func:`codec.dump.summarize`; histograms
decode each layer's levels (one layer at a time).
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from . import dump
from .errors import CodecError
from .reader import Reader

__all__ = ["build_report"]

#: Colours of the coding modes (colour-blind-safe palette, Okabe-Ito).
MODE_COLOURS = {"raw": "#999999", "zstd": "#56B4E9", "entropy": "#009E73", "quantized": "#0072B2",
                "floatplanes": "#E69F00", "ternary": "#CC79A7", "sparse": "#D55E00", "dq": "#000000"}
#: At most this many level histograms (the largest layers that have levels).
MAX_HISTOGRAMS = 24
#: Levels beyond +-this are counted in the outermost bins.
HISTOGRAM_RANGE = 32


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _bars(values: list[float | None], labels: list[str], colours: list[str], *, title: str, unit: str,
          log: bool = False, width: int = 1100, bar_h: int = 14) -> str:
    """A horizontal bar chart, one bar per layer (its name as the tooltip and the label)."""
    finite = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
    top = max(finite) if finite else 1.0
    low = min(v for v in finite if v > 0) if log and finite else 0.0
    label_w, gap = 330, 4
    plot_w = width - label_w - 90
    height = 30 + len(values) * (bar_h + gap)

    def scale(v: float) -> float:
        if log:
            lo, hi = math.log10(max(low, 1e-12)) - 0.1, math.log10(max(top, 1e-12))
            return plot_w * (math.log10(max(v, 1e-12)) - lo) / max(hi - lo, 1e-9)
        return plot_w * v / top if top > 0 else 0.0

    rows = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{_esc(title)}"><text x="0" y="16" class="t">{_esc(title)}</text>']
    for i, (v, name, colour) in enumerate(zip(values, labels, colours)):
        y = 26 + i * (bar_h + gap)
        short = name if len(name) <= 48 else name[:20] + "~" + name[-27:]
        rows.append(f'<text x="{label_w - 6}" y="{y + bar_h - 3}" class="l">{_esc(short)}</text>')
        if v is None or not math.isfinite(v):
            rows.append(f'<text x="{label_w + 4}" y="{y + bar_h - 3}" class="l0">-</text>')
            continue
        w = max(scale(v), 1.0)
        rows.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                    f'<title>{_esc(name)}: {v:.4g} {_esc(unit)}</title></rect>')
        rows.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 3}" class="v">{v:.3g}</text>')
    rows.append("</svg>")
    return "".join(rows)


def _histogram(counts: np.ndarray, title: str, colour: str, width: int = 260, height: int = 110) -> str:
    """Counts of levels -R..R (log scale: the tails matter as much as the peak)."""
    n = len(counts)
    bar_w = (width - 10) / n
    top = math.log10(max(int(counts.max()), 1) + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{_esc(title)}"><text x="0" y="12" class="s">{_esc(title)}</text>']
    base = height - 14
    for i, c in enumerate(counts):
        h = (base - 18) * math.log10(int(c) + 1) / top if c else 0
        if h:
            parts.append(f'<rect x="{5 + i * bar_w:.2f}" y="{base - h:.1f}" width="{max(bar_w - 0.5, 0.5):.2f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>level {i - n // 2}: {int(c)}</title></rect>')
    parts.append(f'<text x="5" y="{height - 2}" class="s">-{n // 2}</text>'
                 f'<text x="{width / 2 - 4:.0f}" y="{height - 2}" class="s">0</text>'
                 f'<text x="{width - 24}" y="{height - 2}" class="s">+{n // 2}</text></svg>')
    return "".join(parts)


_STYLE = """body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1180px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse}
td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
.t{font-weight:600;font-size:13px}.l{font-size:11px;text-anchor:end;fill:#333}.l0{font-size:11px;fill:#999}
.v{font-size:10px;fill:#555}.s{font-size:10px;fill:#444}.grid{display:flex;flex-wrap:wrap;gap:8px}
.key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
code{font-size:12px}"""


def build_report(path: str, *, max_histograms: int = MAX_HISTOGRAMS) -> str:
    """The HTML page of the bitstream at ``path``."""
    import os

    with Reader(path) as reader:
        doc = dump.summarize(reader, file_size=os.path.getsize(path))
        largest = sorted((layer for layer in doc["layers"] if _has_levels(reader, layer)),
                         key=lambda layer: -layer["elements"])[:max_histograms]
        histograms = []
        for layer in largest:
            try:
                got = reader.get(layer["name"], levels=True)
            except CodecError:  # a sparse layer whose values carry no levels, say
                continue
            levels = got[0] if isinstance(got, tuple) else got
            if not isinstance(levels, np.ndarray) or levels.dtype.kind not in "iu":
                continue
            clipped = np.clip(np.asarray(levels).reshape(-1), -HISTOGRAM_RANGE, HISTOGRAM_RANGE) + HISTOGRAM_RANGE
            counts = np.bincount(clipped.astype(np.int64), minlength=2 * HISTOGRAM_RANGE + 1)
            histograms.append(_histogram(counts, f"{layer['name']} ({layer['mode']})",
                                         MODE_COLOURS.get(layer["mode"], "#444")))
            del levels, clipped
    layers = doc["layers"]
    names = [layer["name"] for layer in layers]
    colours = [MODE_COLOURS.get(layer["mode"], "#444") for layer in layers]
    file_bytes = doc["file_bytes"] or 1
    elements = sum(layer["elements"] for layer in layers)
    raw = sum(layer["raw_bytes"] or 0 for layer in layers)
    header_lines = dump.render_text(doc, os.path.basename(path)).split("\n\n")[0]
    modes = sorted({layer["mode"] for layer in layers})
    key = "".join(f'<span style="background:{MODE_COLOURS.get(m, "#444")}"></span>{_esc(m)}' for m in modes)
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>codec report: "
             f"{_esc(os.path.basename(path))}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{_esc(os.path.basename(path))}</h1><pre>{_esc(header_lines)}</pre>",
             f"<p class=\"key\">coding modes:{key}</p>"]
    parts.append(_bars([100 * layer["payload_bytes"] / file_bytes for layer in layers], names, colours,
                       title=f"Share of the file per layer (% of {file_bytes:,} bytes; log scale)", unit="%",
                       log=True))
    parts.append(_bars([layer["bits_per_element"] for layer in layers], names, colours,
                       title=f"Bits per element (whole file: {8 * file_bytes / max(elements, 1):.3f}; raw "
                             f"{8 * raw / max(elements, 1):.1f})", unit="bits"))
    if "quality_total" in doc:
        sqnr = [layer["quality"]["sqnr_db"] if "quality" in layer else None for layer in layers]
        parts.append(_bars(sqnr, names, colours, unit="dB",
                           title="Weight SQNR per lossy layer (dB, the encoder's report; higher is closer)"))
    sparse = [layer for layer in layers if isinstance(layer.get("coding"), dict) and "density" in layer["coding"]]
    if sparse:
        parts.append(_bars([layer["coding"]["density"] for layer in sparse], [layer["name"] for layer in sparse],
                           [MODE_COLOURS["sparse"]] * len(sparse), title="Density of the sparse layers (kept / all)",
                           unit=""))
    if histograms:
        parts.append(f"<h2>Level histograms of the {len(histograms)} largest layers with levels "
                     f"(log counts; levels beyond +-{HISTOGRAM_RANGE} in the end bins)</h2>")
        parts.append("<div class=\"grid\">" + "".join(histograms) + "</div>")
    if doc["metadata"]:
        rows = "".join(f"<tr><td><code>{_esc(k)}</code></td><td>{_esc(v['type'])}</td><td><code>"
                       f"{_esc(dump._short(dump._plain(v), 300))}</code></td></tr>" for k, v in doc["metadata"].items())
        parts.append(f"<h2>Metadata</h2><table>{rows}</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _has_levels(reader: Reader, layer: dict) -> bool:
    from .modes import get_mode

    try:
        return bool(getattr(get_mode(reader.header(layer["name"]).coding_mode), "has_levels", False)) \
            and layer["elements"] > 0
    except CodecError:
        return False
