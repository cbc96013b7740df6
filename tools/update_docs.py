#!/usr/bin/env python3
"""Rewrite the generated parts of the docs from the code's declarations:

* spec/policy.md: the table of every coding mode's parameters (codec.modes.params_table()).

tests/test_spec.py fails while a generated part is stale. The bench tables of bench/README.md are
written by the bench scripts themselves (``--markdown --write``).
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from codec.modes import params_table  # noqa: E402

BEGIN = "<!-- parameters: begin (tools/update_docs.py) -->\n"
END = "\n<!-- parameters: end -->"


def replace_between(text: str, begin: str, end: str, body: str) -> str:
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + body + text[stop:]


def main() -> int:
    path = os.path.join(ROOT, "spec", "policy.md")
    text = open(path, encoding="utf-8").read()
    new = replace_between(text, BEGIN, END, params_table())
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
        print(f"updated {os.path.relpath(path, ROOT)}")
    else:
        print(f"{os.path.relpath(path, ROOT)} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
