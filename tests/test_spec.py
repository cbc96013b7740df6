"""The code speaks the spec's names: every syntax element of spec/bitstream.md appears, under its
exact name, in the ``codec-dump --fields`` walk of the golden vectors; the walk accounts for every
bit of every vector; the spec's enum tables are the code's enums; spec/policy.md's parameter table
is the modes' declarations."""

from __future__ import annotations

import glob
import os
import re

import pytest

from codec.dump import render_fields, walk
from codec.format.constants import DTYPE_NAMES, CodingMode
from codec.modes import params_table, registered_modes
from tests.test_dump import leaves_tile

ROOT = os.path.join(os.path.dirname(__file__), "..")
SPEC = open(os.path.join(ROOT, "spec", "bitstream.md"), encoding="utf-8").read()
VECTORS = sorted(glob.glob(os.path.join(ROOT, "spec", "vectors", "*.nnc")))

DESCRIPTOR = r"(?:u\(|ue\(|se\(|u8\b|u16le\b|u32le\b|u64le\b|i64le\b|f32le\b|f64le\b|b\(|st\b)"


def spec_elements() -> set[str]:
    """Names of the syntax elements in the spec's syntax tables (code blocks): a name, optionally
    indexed, followed by its descriptor."""
    names = set()
    for block in re.findall(r"```\n(.*?)```", SPEC, re.S):
        for line in block.splitlines():
            match = re.search(rf"([a-z][a-z0-9_]*)(?:\[[^\]]*\])?\s+{DESCRIPTOR}", line)
            if match:
                names.add(match.group(1))
            instance = re.match(r"\s+([a-z][a-z0-9_]*)\s*=\s*[a-z_]+\(\)", line)
            if instance:
                names.add(instance.group(1))
    return names


def walked_names(fields) -> set[str]:
    return {re.sub(r"\[.*?\]", "", part) for f in fields for part in f.path.split(".")}


def test_the_parser_reads_the_tables():
    names = spec_elements()
    assert {"nnc_magic", "layer_dim", "lc_rans_words", "tn_flag_items", "us_state", "cb_value", "global_qp_set",
            "sp_block_flags", "extension_bytes"} <= names
    assert len(names) > 100


def test_every_spec_element_appears_in_the_fields_of_the_golden_vectors():
    seen = set()
    for path in VECTORS:
        seen |= walked_names(walk(open(path, "rb").read()))
    missing = spec_elements() - seen
    assert not missing, f"spec elements no golden vector's --fields shows: {sorted(missing)}"


@pytest.mark.parametrize("path", VECTORS, ids=os.path.basename)
def test_the_walk_accounts_for_every_bit(path):
    data = open(path, "rb").read()
    fields = walk(data)
    assert not [f for f in fields if f.descriptor == "error"]
    leaves_tile(fields, len(data) * 8)


def test_enum_values_print_by_name_and_number():
    text = render_fields(walk(open(os.path.join(ROOT, "spec", "vectors", "006-ternary.nnc"), "rb").read()))
    assert "layers[0].coding_mode = ternary (5)" in text
    assert "layers[0].unit_payload.tn_scheme = flag (0)" in text
    assert "layers[1].layer_dtype = float32 (2)" in text
    sparse = render_fields(walk(open(os.path.join(ROOT, "spec", "vectors", "008-sparse.nnc"), "rb").read()))
    assert "mask_block.sp_mask_kind = hierarchical (2)" in sparse and ".sp_values_mode = floatplanes (4)" in sparse


def _table(heading: str) -> list[tuple[str, str]]:
    section = SPEC[SPEC.index(heading):]
    rows = re.findall(r"^\| (\d+) \| ([a-z0-9_]+)\b", section[:section.index("\n\n", section.index("|"))], re.M)
    return [(int(v), n) for v, n in rows]


def test_spec_enum_tables_are_the_code_enums():
    assert _table("### 5.6 coding_mode") == [(m.value, m.name.lower()) for m in CodingMode]
    assert [m.name for m in registered_modes()] == [m.name.lower() for m in CodingMode]
    dtypes = {v: n for v, n in _table("### 5.4 layer_dtype") if n != "invalid"}
    assert dtypes == {int(k): v for k, v in DTYPE_NAMES.items()}


def test_policy_doc_lists_the_declared_parameters():
    doc = open(os.path.join(ROOT, "spec", "policy.md"), encoding="utf-8").read()
    begin, end = "<!-- parameters: begin (tools/update_docs.py) -->\n", "\n<!-- parameters: end -->"
    assert begin in doc and end in doc, "spec/policy.md lost its generated parameter table"
    assert doc[doc.index(begin) + len(begin):doc.index(end)] == params_table(), \
        "spec/policy.md is stale: run python tools/update_docs.py"
