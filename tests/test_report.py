"""codec report: one self-contained HTML page of pictures; rendered in headless Chromium where it is
installed (.ci/run installs it when it can), with the screenshot kept as a test artifact."""

import html.parser
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import codec
from codec import masks
from codec.report import build_report

CLI = [sys.executable, "-m", "codec"]


class _Checker(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.stack, self.urls = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in ("meta", "br", "img", "rect", "link"):
            self.stack.append(tag)
        self.urls += [v for k, v in attrs if k in ("href", "src") and v]

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if tag == "rect":
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def _model(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32)).astype(np.float32) * 0.05
    tensors = {"<b>odd name</b>": w, "enc.dq.weight": w * 2, "enc.tern.weight": w, "enc.bias": w[0],
               "enc.sparse.weight": np.where(masks.prune_nm(w, 2, 4), w, 0).astype(np.float32),
               "ids": np.arange(50, dtype=np.int64)}
    save_file(tensors, str(tmp_path / "m.safetensors"))
    policy = ('[[rules]]\nname = "enc.dq.*"\nmode = "dq"\nstep = 0.01\n'
              '[[rules]]\nname = "enc.tern.*"\nmode = "ternary"\nternarize = true\n'
              '[[rules]]\nname = "enc.sparse.*"\nmode = "sparse"\nnm = [2, 4]\nvalues_mode = "quantized"\nbits = 6\n'
              '[[rules]]\nname = "<*"\nmode = "quantized"\nbits = 5\n')
    out = tmp_path / "m.nnc"
    codec.encode_file(tmp_path / "m.safetensors", out, policy=policy)
    return out


def test_report_is_a_self_contained_page(tmp_path):
    page = build_report(str(_model(tmp_path)))
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == [] and checker.urls == []  # balanced, and nothing to fetch
    assert "<script" not in page and page.count("<svg") >= 4  # share, bits, SQNR, density + histograms
    assert "Level histograms" in page and "Weight SQNR" in page and "Density of the sparse layers" in page
    assert "&lt;b&gt;odd name&lt;/b&gt;" in page and "<b>odd name</b>" not in page
    # the only URL in the page is the SVG namespace
    assert {u for u in __import__("re").findall(r"https?://[^\"' )]+", page)} == {"http://www.w3.org/2000/svg"}


def test_cli_report(tmp_path):
    src = _model(tmp_path)
    out = tmp_path / "r.html"
    proc = subprocess.run(CLI + ["report", str(src), "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    again = subprocess.run(CLI + ["report", str(src), "-o", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "exists: use -f/--force" in again.stderr


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    page = tmp_path / "r.html"
    page.write_text(build_report(str(_model(tmp_path))), encoding="utf-8")
    artifacts = os.environ.get("CODEC_TEST_ARTIFACTS") or str(tmp_path)
    os.makedirs(artifacts, exist_ok=True)
    shot = os.path.join(artifacts, "report.png")
    if os.path.exists(shot):
        os.remove(shot)
    proc = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert os.path.exists(shot), proc.stderr[-2000:]
    data = open(shot, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a page with pictures, not a blank one
