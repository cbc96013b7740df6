#!/usr/bin/env python3
"""Hand-made mutants of the decode, limit and writer paths (Python and C), and whether the test
suite kills each: a small, scripted mutation test (the C kernels are out of mutmut's reach).

Each mutant replaces one exact snippet in one file of a scratch copy of the repository (a git
worktree of HEAD), rebuilds the compiled core when a .pyx/.h file changed, and runs the suite with
``pytest -x`` (with CODEC_PUREPYTHON=1 for mutants of the pure kernels, which the fast backend
only meets in the twin tests). A mutant is *killed* when the suite fails.

    python tools/mutants.py [--only ID ...] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

#: (id, file, original snippet (must occur once), mutated snippet, what it breaks)
MUTANTS = [
    # -- the level coder: pure reference and C twin
    ("rans-final-state-py", "codec/kernels/rans.py", "if any(x != LC_RANS_L for x in st):",
     "if any(x != LC_RANS_L for x in st[1:]):", "final-state check skips state 0 (pure)"),
    ("rans-final-state-c", "codec/_fast/rans_impl.h", "for (size_t j = 0; j < S; j++)\n        if (st[j] != LC_RANS_L)",
     "for (size_t j = 1; j < S; j++)\n        if (st[j] != LC_RANS_L)", "final-state check skips state 0 (C)"),
    ("rans-words-left-c", "codec/_fast/rans_impl.h", "if (wp != nwords) return LC_ERR_WORDS_LEFT;", "",
     "words left over accepted (C)"),
    ("rans-escape-count-c", "codec/_fast/rans_impl.h", "if (ep != nesc) return LC_ERR_ESCAPES;", "",
     "unused escapes accepted (C)"),
    ("rans-escape-range-c", "codec/_fast/rans_impl.h", "if (*ep >= nesc) return LC_ERR_ESCAPES;",
     "if (*ep > nesc) return LC_ERR_ESCAPES;", "reads one escape past the list (C)"),
    ("rans-affine-overflow-c", "codec/_fast/rans_impl.h",
     "if (__builtin_sub_overflow(level, z_r, &d)) return LC_ERR_AFFINE_RANGE;", "d = level - z_r;",
     "level - zero point overflow unchecked (C)"),
    ("escape-limit-128", "codec/levels.py", "if E > LC_MAX_ESCAPE_LIMIT:", "if E > LC_MAX_ESCAPE_LIMIT + 1:",
     "lc_escape_limit 128 accepted"),
    ("escape-count-bound", "codec/levels.py", "if count > n or count * 2 > r.bits_left():",
     "if count > n + 1 or count * 2 > r.bits_left() + 2:", "escape count bound loosened"),
    ("words-bound", "codec/levels.py", "if nbytes // 2 > most:", "if nbytes // 2 > most + 1:",
     "more rANS words than levels accepted"),
    # -- level coding v2 (spec 7.4): header rules, the AVX2 kernel, the tables kernel, chunks
    ("lc-log2-states", "codec/levels.py", "if log2 > 5:", "if log2 > 6:", "lc_log2_states 6 accepted"),
    ("lc-model", "codec/levels.py", "if model not in (LC_MODEL_STATIC, LC_MODEL_ADAPTIVE):", "if False:",
     "a reserved lc_model decoded"),
    ("lc-chunk-rows", "codec/levels.py", "if bounds[-1] + rows_c >= grid_rows:", "if bounds[-1] + rows_c > grid_rows:",
     "chunks that leave the last one no row accepted"),
    ("lc-chunk-escapes", "codec/levels.py", "if esc_bounds[-1] + esc_c > count:", "if False:",
     "chunk escape counts beyond the list accepted"),
    ("lc-chunk-words", "codec/levels.py", "if words_c > rows_c * cols * per_level:", "if False:",
     "more chunk words than levels accepted"),
    ("lc-chunk-escape-slice", "codec/levels.py", "esc = escapes[chunk.esc0:chunk.esc1]", "esc = escapes[chunk.esc0:]",
     "a chunk given the escapes of the chunks after it"),
    ("avx2-affine-bias", "codec/_fast/rans_impl.h", "(int)(E + (out_kind == LC_OUT_AFFINE ? z_r : 0))", "(int)(E)",
     "the AVX2 kernel dequantizes without the zero point"),
    ("avx2-escape-fallback", "codec/_fast/rans_impl.h",
     "if (out_kind == LC_OUT_CODEBOOK || _mm256_movemask_epi8(_mm256_cmpeq_epi32(sym[r], esc)))",
     "if (out_kind == LC_OUT_CODEBOOK)", "the AVX2 kernel emits escape symbols as levels"),
    ("read-tables-last-code-c", "codec/_fast/rans_impl.h",
     "if (codes[lo] == 0 || codes[lo + count - 1] == 0) return -1;", "if (codes[lo] == 0) return -1;",
     "the C table reader accepts an absent last symbol"),
    ("unit-padding-v2", "codec/format/unit.py",
     "if version[0] >= 2 and unit_type == UnitType.LAYER and coding_mode >= UNPADDED_MODES_FROM:", "if False:",
     "2.x entropy-coded units padded (reader and writer agree: vectors and offsets must catch it)"),
    # -- payload checksums, per mode
    ("crc-ternary", "codec/modes/ternary.py",
     "axis, alphas = self.begin_decode(header, payload, verify=verify,",
     "axis, alphas = self.begin_decode(header, payload, verify=False,", "ternary payload CRC not checked"),
    ("crc-entropy", "codec/modes/entropy.py", "self.begin_decode(header, payload, verify=verify,",
     "self.begin_decode(header, payload, verify=False,", "entropy payload CRC not checked"),
    ("crc-quantized", "codec/modes/quantized.py", "self.begin_decode(header, payload, verify=verify,",
     "self.begin_decode(header, payload, verify=False,", "quantized payload CRC not checked"),
    ("crc-floatplanes", "codec/modes/floatplanes.py", "self.begin_decode(header, payload, verify=verify,",
     "self.begin_decode(header, payload, verify=False,", "floatplanes payload CRC not checked"),
    ("crc-sparse", "codec/modes/sparse.py", "self.begin_decode(header, payload, verify=verify,",
     "self.begin_decode(header, payload, verify=False,", "sparse payload CRC not checked"),
    ("crc-raw", "codec/modes/raw.py", "            if actual != header.payload_crc32c:\n                raise",
     "            if False:\n                raise", "raw payload CRC not checked"),
    ("crc-zstd", "codec/modes/zstd.py", "            check_payload_crc(header, payload)", "            pass",
     "zstd payload CRC not checked"),
    ("crc-headers", "codec/format/_io.py", "    if actual != stored:", "    if False:",
     "header and trailer CRCs not checked"),
    ("verify-false-verifies", "codec/reader.py", "verify=self.verify_payloads if verify is None else verify",
     "verify=True", "get(verify=False) still verifies"),
    # -- limits and header rules
    ("limit-at-value", "codec/format/limits.py", "if value > limit:", "if value >= limit:",
     "a value equal to its limit refused"),
    ("limit-one-past", "codec/format/limits.py", "if value > limit:", "if value > limit + 1:",
     "one past the limit accepted"),
    ("rank-9-limit", "codec/format/unit.py", "    if layer_rank > MAX_RANK:\n        raise r.error(",
     "    if layer_rank > MAX_RANK + 8:\n        raise r.error(", "rank 9 reported as a LimitError"),
    ("dim-limit", "codec/format/unit.py", "if dim > limits.max_elements_per_layer:",
     "if False:", "a dimension of an empty tensor unbounded"),
    ("elements-limit", "codec/format/unit.py", "if elements > limits.max_elements_per_layer:",
     "if elements > limits.max_elements_per_layer * 2:", "a layer's element count checked loosely"),
    ("sparse-kept-bound", "codec/modes/sparse.py", "if sp.kept > header.num_elements:",
     "if sp.kept > header.num_elements + 1:", "kept count above the layer accepted"),
    ("sparse-mask-count", "codec/modes/sparse.py", "if int(mask.sum()) != sp.kept:", "if False:",
     "mask and kept count may disagree"),
    ("floatplanes-exponent-range", "codec/kernels/planes.py",
     "bad = np.flatnonzero((signed < -centre) | (signed >= (1 << ebits) - centre))",
     "bad = np.flatnonzero(signed < -centre)", "exponents above their field accepted (pure)"),
    ("ternary-trit-range", "codec/modes/ternary.py", "if levels.size and (levels.min() < -1 or levels.max() > 1):",
     "if False:", "entropy-coded trits outside -1..1 accepted"),
    ("index-unit-size-c", "codec/_fast/index.pyx", "or size < MIN_UNIT_SIZE:", "or size < MIN_UNIT_SIZE - 1:",
     "index unit size 23 accepted (C)"),
    ("index-unit-size-py", "codec/kernels/index.py", "or size < MIN_UNIT_SIZE:", "or size < MIN_UNIT_SIZE - 1:",
     "index unit size 23 accepted (pure)"),
    ("ternary-trailing-c", "codec/_fast/ternary.pyx", "    if pos + nbytes != size:\n        return TN_ERR_TRAILING",
     "    if False:\n        return TN_ERR_TRAILING", "bytes after a flag payload accepted (C)"),
    # -- the stream reader
    ("stream-index-units", "codec/reader.py", "        if entries != seen:", "        if False:",
     "stream reader does not check the index against the units"),
    ("stream-trailer-count", "codec/reader.py",
     "        if trailer_count != self.network_header.layer_count:  # the rule Reader applies",
     "        if False:", "stream reader does not check trailer_layer_count"),
    ("stream-trailer-offset", "codec/reader.py", "        if index_unit_offset != index_offset:",
     "        if False:", "stream reader does not check index_unit_offset"),
    ("stream-claimed-alloc", "codec/reader.py", "        buf = bytearray()\n        while len(buf) < n:",
     "        buf = bytearray(n)\n        del buf[:]\n        while len(buf) < n:",
     "stream reader allocates the claimed payload size"),
    # -- writers and the dump
    ("no-fsync", "codec/atomic.py", "            os.fsync(self.file.fileno())\n", "",
     "written file not fsynced"),
    ("no-rename", "codec/atomic.py", "            os.replace(self.tmp_path, self.path)",
     "            shutil_copy(self.tmp_path, self.path)", "output written in place, not renamed"),
    ("no-dir-fsync", "codec/atomic.py", "            os.fsync(dir_fd)", "            pass",
     "directory not fsynced after the rename"),
    ("writer-header-limit", "codec/writer.py", "if header_size > DEFAULT_LIMITS.max_header_bytes:",
     "if header_size > DEFAULT_LIMITS.max_header_bytes * 2:", "writer writes headers readers refuse"),
    ("writer-shape-limit", "codec/writer.py", "if array.size > limits.max_elements_per_layer or",
     "if array.size > limits.max_elements_per_layer * 2 or", "writer writes shapes readers refuse"),
    ("dump-ratio", "codec/dump.py", "(raw_bytes / h.payload_size)", "(h.payload_size / raw_bytes)",
     "the dump's compression ratio inverted"),
    # -- adaptive binary contexts (format 2.1, spec 7.5): header rules, kernel checks, the encoder
    ("la-2-0-gate", "codec/levels.py", "if version == 2 and model != LC_MODEL_STATIC:", "if False:",
     "lc_model 1 decoded in a 2.0 file"),
    ("la-one-class", "codec/levels.py", "            if K != 1:", "            if False:",
     "lc_model 1 with row classes accepted"),
    ("la-one-state", "codec/levels.py", "            if nstates != 1:", "            if False:",
     "lc_model 1 with several states accepted"),
    ("la-words-per-level", "codec/levels.py", "LA_MAX_WORDS_PER_LEVEL = 14", "LA_MAX_WORDS_PER_LEVEL = 15",
     "more words per level than bins accepted"),
    ("la-only-2-1", "codec/levels.py", '        adaptive = "never"  # lc_model 1', '        pass  # lc_model 1',
     "lc_model 1 written into 1.x and 2.0 payloads"),
    ("la-min-gain", "codec/levels.py", "if other.size <= parts.size * (1 - LA_MIN_GAIN):", "if True:",
     "the adaptive payload kept even when larger"),
    ("la-empty-chunk-block", "codec/levels.py", "blocks.append((first, spool.block_count))",
     "blocks.append((c, c + 1))", "chunk words misplaced after a chunk without words"),
    ("la-final-state-py", "codec/kernels/adaptive.py", "    if x != LA_RANS_L:\n        return LA_ERR_FINAL_STATE",
     "    if False:\n        return LA_ERR_FINAL_STATE", "final state unchecked (pure)"),
    ("la-final-state-c", "codec/_fast/adaptive_impl.h", "if (x != LA_RANS_L) return LA_ERR_FINAL_STATE;", "",
     "final state unchecked (C)"),
    ("la-words-left-c", "codec/_fast/adaptive_impl.h", "if (wp != nwords) return LA_ERR_WORDS_LEFT;", "",
     "words left over accepted (C)"),
    ("la-escapes-left-c", "codec/_fast/adaptive_impl.h", "if (ep != nesc) return LA_ERR_ESCAPES;", "",
     "unused escapes accepted (C)"),
    ("la-escape-sign-c", "codec/_fast/adaptive_impl.h", "if ((level < 0) != (negative != 0)) {", "if (0) {",
     "an escape's sign unchecked (C)"),
    ("la-magnitude-c", "codec/_fast/adaptive_impl.h", "if (m > E + 1) {", "if (m > E + 2) {",
     "a magnitude of E + 2 accepted (C)"),
    ("la-prefix-c", "codec/_fast/adaptive_impl.h", "if (++nb > LA_MAX_PREFIX) {", "if (++nb > LA_MAX_PREFIX + 1) {",
     "a prefix of 8 ones accepted (C)"),
    ("la-sign-context-c", "codec/_fast/adaptive_impl.h",
     "LA_BIN(LA_CTX_SIGN + (p1 == 0 ? 0 : p1 > 0 ? 1 : 2), negative);",
     "LA_BIN(LA_CTX_SIGN + (p1 > 0 ? 1 : 2), negative);",
     "the decoder's sign context merges P = 0 with P < 0 (C; a consistent relabelling would be an equivalent mutant)"),
    ("la-bypass-c", "codec/_fast/adaptive_impl.h", "xv = (xv << nbp) | (slot >> (LA_PROB_BITS - nbp));",
     "xv = (xv << nbp) | (slot >> (LA_PROB_BITS - nbp + 1));", "bypass bits misread (C)"),
    ("la-truncated-c", "codec/_fast/adaptive_impl.h", "if (__builtin_expect(need_ && wp >= nwords, 0)) {",
     "if (__builtin_expect(need_ && wp > nwords, 0)) {", "reads one word past the chunk (C)"),

    # -- dependent quantization (spec 8.5): reconstruction in both twins, the method rule
    ("dq-next-state-py", "codec/kernels/trellis.py", "(5, 7), (3, 1), (4, 6))", "(5, 7), (1, 3), (4, 6))",
     "one trellis transition wrong (pure)"),
    ("dq-next-state-c", "codec/_fast/trellis.pyx", "[5, 7], [3, 1], [4, 6]]", "[5, 7], [3, 1], [6, 4]]",
     "one trellis transition wrong (C)"),
    ("dq-parity-c", "codec/_fast/trellis.pyx", "v[r * C + t] = 2 * k + (s & 1)", "v[r * C + t] = 2 * k - (s & 1)",
     "negative levels of Q1 reconstruct away from zero (C)"),
    ("dq-limit-c", "codec/_fast/trellis.pyx", "if v[i] >= LIMIT or v[i] <= -LIMIT:",
     "if v[i] > LIMIT or v[i] < -LIMIT:", "a level of magnitude 2^31 accepted (C)"),
    ("dq-limit-py", "codec/kernels/trellis.py", "(levels >= DQ_LEVEL_LIMIT) | (levels <= -DQ_LEVEL_LIMIT)",
     "(levels > DQ_LEVEL_LIMIT) | (levels < -DQ_LEVEL_LIMIT)", "a level of magnitude 2^31 accepted (pure)"),
    ("dq-method", "codec/modes/dq.py", 'if eff.method != "uniform":', "if False:", "a dq layer with uniform_zp accepted"),
    ("dq-trellis-reserved", "codec/modes/dq.py", "if trellis != DQ_TRELLIS_8_STATES:", "if False:",
     "a reserved dq_trellis accepted"),
    ("dq-fused-sign-c", "codec/_fast/trellis.pyx", "q = 2 * k - ((k > 0) - (k < 0)) * (s & 1)",
     "q = 2 * k - (k != 0) * (s & 1)", "the fused decoder moves negative Q1 levels the wrong way (C)"),
    ("dq-fused-limit-c", "codec/_fast/trellis.pyx", "            if v[i] >= LIMIT or v[i] <= -LIMIT:\n                bad = i\n                break\n    if bad >= 0:\n        return DQ_ERR_LEVEL, 0, bad\n    with nogil:\n        for r in range(R):\n            s = 0\n            f = sc[r]",
     "            if v[i] > LIMIT or v[i] < -LIMIT:\n                bad = i\n                break\n    if bad >= 0:\n        return DQ_ERR_LEVEL, 0, bad\n    with nogil:\n        for r in range(R):\n            s = 0\n            f = sc[r]",
     "the fused decoder accepts a level of magnitude 2^31 (C)"),
    ("dq-viterbi-tie-c", "codec/_fast/trellis.pyx", "if c < new[tgt]:", "if c <= new[tgt]:",
     "the encoder's ties keep the later candidate (C): the twins choose differently"),
    # -- metadata units (spec 5.7)
    ("meta-unit-taken", "codec/format/metadata.py", "        if key in taken:", "        if False:",
     "a metadata unit repeating a network header key accepted"),
    ("meta-unit-tail", "codec/format/metadata.py", "    if left:\n        raise r.error(f\"{left} bytes after",
     "    if False:\n        raise r.error(f\"{left} bytes after", "bytes after a metadata unit's metadata() accepted"),
    ("meta-unit-crc", "codec/reader.py", "        if actual != unit.unit_payload_crc32c:\n            raise ChecksumError(f\"metadata",
     "        if False:\n            raise ChecksumError(f\"metadata", "a metadata unit's payload CRC not checked"),
    ("meta-unit-limit", "codec/reader.py", "        self.total += unit.unit_payload_size", "        self.total = 0",
     "metadata units not counted against max_metadata_bytes"),
    ("meta-unit-padding", "codec/format/unit.py", "    if is_metadata_unit(unit_type, version):\n        return 0",
     "", "metadata units padded to 64 bytes (the reader expects what the writer writes: both change)"),
    ("meta-unit-stream", "codec/reader.py", "                self.metadata = self._unit_metadata.merged()\n", "",
     "the sequential reader drops the metadata units' entries"),
]

FIRST = ["tests/test_twins.py", "tests/test_index_twin.py", "tests/test_levels.py", "tests/test_vectors.py",
         "tests/test_limits.py", "tests/test_malformed.py", "tests/test_reader.py", "tests/test_reader_safety.py",
         "tests/test_writer.py", "tests/test_dump.py", "tests/test_hostile.py", "tests/test_damage.py", "tests/test_dq.py"]

SHUTIL_SHIM = "\n\ndef shutil_copy(src, dst):\n    import shutil\n    shutil.copyfile(src, dst)\n    os.unlink(src)\n"


def sh(cmd, cwd, env=None, timeout=1800):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="mutant ids")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch worktree")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="codec-mutants-")
    tree = os.path.join(work, "tree")
    sh(["git", "worktree", "add", "--detach", tree, "HEAD"], ROOT)
    results = []
    try:
        build = sh([sys.executable, "setup.py", "build_ext", "--inplace"], tree)
        if build.returncode:
            raise SystemExit(build.stderr[-2000:])
        built = {f: open(os.path.join(tree, "codec", "_fast", f), "rb").read()
                 for f in os.listdir(os.path.join(tree, "codec", "_fast")) if f.endswith(".so")}
        env = dict(os.environ, PYTHONPATH=tree, PYTHONDONTWRITEBYTECODE="1")
        for mid, rel, old, new, what in MUTANTS:
            if args.only and mid not in args.only:
                continue
            path = os.path.join(tree, rel)
            source = open(path, encoding="utf-8").read()
            if source.count(old) != 1:
                results.append({"id": mid, "what": what, "outcome": f"snippet found {source.count(old)} times"})
                continue
            mutated = source.replace(old, new)
            if "shutil_copy(" in new:
                mutated += SHUTIL_SHIM
            compiled = rel.endswith((".pyx", ".h"))
            start = time.time()
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(mutated)
                if compiled:
                    b = sh([sys.executable, "setup.py", "build_ext", "--inplace", "--force"], tree)
                    if b.returncode:
                        results.append({"id": mid, "what": what, "outcome": "does not build (killed)",
                                        "killed": True})
                        continue
                run_env = dict(env, CODEC_PUREPYTHON="1") if rel.startswith("codec/kernels/") else env
                # the quick, focused files first (-x stops at the first failure), then the rest
                # (a directory argument would be collected in its own order: list every file)
                rest = sorted(os.path.join("tests", f) for f in os.listdir(os.path.join(tree, "tests"))
                              if f.startswith("test_") and f.endswith(".py") and os.path.join("tests", f) not in FIRST)
                proc = sh([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *FIRST, *rest],
                          tree, env=run_env)
                failed = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
                failed += [line for line in proc.stdout.splitlines() if line.startswith("E ")][:1]
                killed = proc.returncode != 0
                results.append({"id": mid, "what": what, "killed": killed, "seconds": round(time.time() - start),
                                "by": " / ".join(failed)[:400] if failed else ("" if killed else proc.stdout[-200:])})
            finally:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(source)
                if compiled:
                    for name, data in built.items():
                        with open(os.path.join(tree, "codec", "_fast", name), "wb") as f:
                            f.write(data)
            r = results[-1]
            print(f"{mid}: {'killed' if r.get('killed') else 'SURVIVED'} ({r.get('seconds', 0)} s) {r.get('by', '')}",
                  file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            sh(["git", "worktree", "remove", "--force", tree], ROOT)
            shutil.rmtree(work, ignore_errors=True)
    killed = sum(1 for r in results if r.get("killed"))
    summary = {"mutants": len(results), "killed": killed, "score": round(killed / max(len(results), 1), 3),
               "survivors": [r["id"] for r in results if not r.get("killed")], "results": results}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{killed} of {len(results)} mutants killed ({100 * summary['score']:.0f}%); "
              f"survivors: {', '.join(summary['survivors']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
