#!/usr/bin/env python3
"""Structure-aware fuzzer: mutate the fields of valid bitstreams of every coding mode and variant,
re-compute every checksum (so the payload decoders see the hostile bytes, not a checksum error),
and run every entry point of the reader on the result.

An input passes when every entry point either decodes it or raises a ``codec.CodecError``, in
bounded memory and time. A *finding* is anything else: another exception, a crash (signal), a hang,
or, in the isolating mode, two backends that disagree (outcome, error message, or decoded bytes).

    python tools/fuzz.py isolated --count 20000        # children per backend, compared
    python tools/fuzz.py inprocess --count 1000000     # this process, volume
    python tools/fuzz.py replay FILE.nnc               # one input, every entry point

Inputs are a pure function of (--seed, index): a finding is reproduced by its index, and is saved
under --out (default fuzz-findings/) as NNNNNN-kind.nnc with a .txt saying what happened.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import logging
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)

#: The harness bounds each input: decoded bytes per call, and (isolated) address space and time.
FUZZ_LIMITS = dict(max_decoded_bytes=64 << 20)
CHILD_ADDRESS_SPACE = 6 << 30
INPUT_SECONDS = 20


# ---------------------------------------------------------------------------------------------
# seeds: small valid files of every mode and variant
# ---------------------------------------------------------------------------------------------
def seeds() -> list[bytes]:
    import glob

    import numpy as np

    import codec
    import codec.masks

    out = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(ROOT, "spec", "vectors", "*.nnc")))]
    rng = np.random.default_rng(1234)
    w = (rng.standard_normal((12, 16)) * 0.1).astype(np.float32)
    nm = np.where(codec.masks.prune_nm(w, 2, 4), w, 0).astype(np.float32)
    layers = [
        ("q.channel.zp", w, dict(mode="quantized", method="uniform_zp", bits=4, granularity="channel")),
        ("q.axis1", w, dict(mode="quantized", bits=6, granularity="channel", axis=1)),
        ("q.codebook", w, dict(mode="quantized", method="codebook", bits=2)),
        ("dq", w, dict(mode="dq", bits=4, granularity="channel")),
        ("dq.axis1", w, dict(mode="dq", step=2 ** -5, granularity="channel", axis=1)),
        ("pq", w, dict(mode="pq", dim=4, centroids=12, stages=2)),
        ("lowrank", w, dict(mode="lowrank_sparse", rank=3, density=0.5)),
        ("e", np.rint(w * 300).astype(np.int16), dict(mode="entropy")),
        # locally alike magnitudes and an escape: adaptive contexts (lc_model 1, spec 7.5)
        ("e.adaptive", np.concatenate([np.rint(w[:, :8] * 40), np.full((12, 1), 900.0), np.zeros((12, 7))], axis=1)
         .astype(np.int16), dict(mode="entropy")),
        ("fp", w, dict(mode="floatplanes")),
        ("t.flag", codec.ternary.ternarize(w, axis=0), dict(mode="ternary", axis=0, scheme="flag")),
        ("t.base3", np.sign(np.rint(w * 10)).astype(np.int8), dict(mode="ternary", scheme="base3")),
        ("t.entropy", codec.ternary.ternarize(w), dict(mode="ternary", scheme="entropy")),
        ("s.bitmap", np.where(np.abs(w) > 0.1, w, 0), dict(mode="sparse", values_mode="quantized", bits=8)),
        ("s.nm", nm, dict(mode="sparse", nm=(2, 4), values_mode="floatplanes")),
        ("s.hier", np.where(np.tile([1, 1, 0, 0, 0, 0, 0, 0], (12, 2)) > 0, w, 0).astype(np.float32),
         dict(mode="sparse", nm=[(1, 2), (2, 4)], values_mode="raw")),
        ("s.hybrid", np.vstack([w[:4], nm[4:8], w[8:]]), dict(mode="sparse", nm=(2, 4), hybrid=4, values_mode="zstd")),
        ("s.ternary", np.where(np.abs(w) > 0.1, np.sign(w) * 0.5, 0).astype(np.float32),
         dict(mode="sparse", values_mode="ternary")),
    ]
    for name, array, params in layers:
        buf = io.BytesIO()
        with codec.Writer(buf, quantization={"bits": 7} if name == "q.axis1" else None) as writer:
            writer.add_layer(name, array, **params)
            writer.add_layer("tail", np.arange(5, dtype=np.float32), mode="raw")
        out.append(buf.getvalue())
    return out


# ---------------------------------------------------------------------------------------------
# parsing a valid file into its fields, and putting one together again with fresh checksums
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Unit:
    unit_type: int
    body: bytes  # header fields between unit_payload_crc32c and unit_header_crc32c
    payload: bytes
    layer: object | None  # the parsed LayerHeader of a layer unit


def split(data: bytes):
    """(network header bytes without their CRC, [Unit])."""
    import codec
    from codec.format import read_network_header, read_trailer
    from codec.reader import iter_units

    limits = codec.Limits()
    nh = read_network_header(data, limits)
    index_offset, _ = read_trailer(data[-24:], len(data) - 24)
    units = []
    for u in iter_units(memoryview(data), nh, limits, end=index_offset):
        start = u.unit_offset
        units.append(Unit(u.unit_type, data[start + 20:start + u.unit_header_size - 4],
                          data[u.payload_offset:u.payload_offset + u.unit_payload_size], u.layer))
    return data[:nh.network_header_size - 4], units


def join(network: bytes, units: list[Unit], *, layer_count: int | None = None) -> bytes:
    """A bitstream with every checksum, offset, size and count recomputed."""
    from codec import _backend
    from codec.errors import CodecError
    from codec.format import (IndexEntry, Limits, layer_coding_mode, padding_size, write_index_payload, write_trailer,
                              write_unit_header)

    count = sum(u.unit_type == 1 for u in units) if layer_count is None else layer_count
    head = bytearray(network)
    head[10:14] = (len(network) + 4).to_bytes(4, "little")
    head[14:18] = count.to_bytes(4, "little")
    out = bytearray(bytes(head) + _backend.crc32c(bytes(head)).to_bytes(4, "little"))
    entries = []
    for u in units:
        offset = len(out)
        header = write_unit_header(u.unit_type, u.body, len(u.payload), _backend.crc32c(u.payload))
        mode = 0
        if u.unit_type == 1 and network[8] >= 2:  # 2.x: the padding depends on the coding mode (section 5)
            try:
                mode = layer_coding_mode(u.body, Limits())
            except CodecError:
                mode = 0
        pad = padding_size(offset + len(header), version=(network[8], network[9]), unit_type=u.unit_type,
                           coding_mode=mode)
        out += header + bytes(pad) + u.payload
        if u.unit_type == 1:
            entries.append(IndexEntry(u.layer.layer_name if u.layer is not None else f"u{len(entries)}", offset,
                                      len(out) - offset))
    index_offset = len(out)
    index = write_index_payload(entries)
    header = write_unit_header(2, b"", len(index), _backend.crc32c(index))
    out += header + bytes(padding_size(index_offset + len(header))) + index
    out += write_trailer(index_offset, count)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------------------------
INTERESTING = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1 << 15, 1 << 16, 1 << 20, 1 << 24,
               1 << 31, 1 << 32, 1 << 40, 1 << 62, (1 << 63) - 1, 1 << 63]


def _bytes(rnd: random.Random, data: bytes, focus: int | None = None) -> bytes:
    """Byte-level mutation of ``data``, mostly near its start (where the syntax headers are)."""
    b = bytearray(data)
    for _ in range(rnd.choice([1, 1, 1, 2, 3, 8])):
        kind = rnd.random()
        limit = len(b) if focus is None or rnd.random() < 0.3 else min(len(b), focus)
        if kind < 0.35 and b:
            i = rnd.randrange(limit or len(b))
            b[i] ^= 1 << rnd.randrange(8)
        elif kind < 0.6 and b:
            i = rnd.randrange(limit or len(b))
            b[i] = rnd.choice([0, 1, 2, 3, 7, 8, 15, 16, 127, 128, 254, 255])
        elif kind < 0.75 and len(b) >= 4:
            i = rnd.randrange(max(1, (limit or len(b)) - 3))
            v = rnd.choice(INTERESTING) & 0xFFFFFFFF
            b[i:i + 4] = v.to_bytes(4, "little")
        elif kind < 0.85:
            del b[rnd.randrange(len(b) + 1):]
        elif kind < 0.93:
            i = rnd.randrange(len(b) + 1)
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.choice([1, 2, 8, 64])))
        elif b:
            i, j = sorted(rnd.randrange(len(b)) for _ in range(2))
            b[i:j] = b[i:j][::-1]
    return bytes(b)


def _layer_body(layer, **change) -> bytes:
    from codec.format import write_layer_header

    fields = dict(layer_index=layer.layer_index, layer_name=layer.layer_name, layer_kind=layer.layer_kind,
                  layer_shape=layer.layer_shape, layer_dtype=layer.layer_dtype, coding_mode=layer.coding_mode,
                  local_qp_set=layer.local_qp_set, mode_params=layer.mode_params)
    fields.update(change)
    return write_layer_header(**fields)


def _shape(rnd: random.Random, shape: tuple) -> tuple:
    s = list(shape)
    choice = rnd.random()
    if choice < 0.4 and s:
        i = rnd.randrange(len(s))
        s[i] = rnd.choice([0, 1, 2, 3, s[i] + 1, max(0, s[i] - 1), s[i] * 2, s[i] * 4, rnd.choice(INTERESTING[:22])])
    elif choice < 0.6 and s:
        s = s[::-1]
    elif choice < 0.8:
        s.append(rnd.choice([1, 2, 4]))
    elif s:
        s.pop()
    return tuple(min(v, (1 << 62)) for v in s)[:8]


def mutate(rnd: random.Random, seed: bytes) -> bytes:
    network, units = split(seed)
    layers = [i for i, u in enumerate(units) if u.unit_type == 1]
    what = rnd.random()
    try:
        if what < 0.06 or not layers:
            return _bytes(rnd, seed)  # raw bytes, checksums stale (the reader's first line of defence)
        if what < 0.12:
            network = _bytes(rnd, network, focus=64)
            return join(network, units)
        metas = [u for u in units if u.unit_type == 0x81]  # metadata units (spec 5.7)
        if metas and what < 0.2:
            m = rnd.choice(metas)
            m.payload = _bytes(rnd, m.payload, focus=32)
            return join(network, units)
        u = units[rnd.choice(layers)]
        layer = u.layer
        if what < 0.5:
            u.payload = _bytes(rnd, u.payload, focus=48)
        elif what < 0.6:
            u.body = _layer_body(layer, layer_shape=_shape(rnd, layer.layer_shape))
        elif what < 0.66:
            u.body = _layer_body(layer, layer_dtype=rnd.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 32, 34]))
        elif what < 0.72:
            u.body = _layer_body(layer, coding_mode=rnd.choice([0, 1, 2, 3, 4, 5, 6, 7, 200]))
        elif what < 0.82:
            u.body = _layer_body(layer, mode_params=_bytes(rnd, layer.mode_params, focus=16))
        elif what < 0.92:
            qp = layer.local_qp_set if layer.local_qp_set is not None else b""
            u.body = _layer_body(layer, local_qp_set=_bytes(rnd, qp, focus=16) if qp or rnd.random() < 0.5 else None)
        elif what < 0.96:
            u.body = _bytes(rnd, u.body)
        else:
            other = units[rnd.choice(layers)]
            u.payload, other.payload = other.payload, u.payload
        return join(network, units)
    except Exception:  # noqa: BLE001 - a mutation the writer functions refuse: fall back to bytes
        return _bytes(rnd, seed)


def inputs(seed: int, start: int, count: int, corpus: list[bytes]):
    for i in range(start, start + count):
        rnd = random.Random(seed * 1_000_003 + i)
        yield i, mutate(rnd, rnd.choice(corpus))


# ---------------------------------------------------------------------------------------------
# running one input through every entry point
# ---------------------------------------------------------------------------------------------
def run_all(data: bytes, limits) -> str:
    """Every entry point on ``data``; the outcome as one line (an error or a digest of the arrays).
    Raises for anything that is not a CodecError."""
    import numpy as np

    import codec
    from codec import dump

    digest = hashlib.sha256()
    outcome = []

    def absorb(array):
        if isinstance(array, (tuple, list)):  # levels with parameters; pq's stages (codebook, indices)
            for a in array:
                absorb(a)
        elif isinstance(array, np.ndarray):
            digest.update(str((array.dtype.str, array.shape)).encode())
            digest.update(np.ascontiguousarray(array).view(np.uint8).tobytes())

    def step(name, fn):
        try:
            fn()
            outcome.append(f"{name}:ok")
        except codec.CodecError as exc:
            outcome.append(f"{name}:{type(exc).__name__}:{exc}")

    def random_access():
        with codec.Reader(data, limits=limits) as r:
            for name in r:
                absorb(r.get(name))
                mode = r.header(name).mode_name
                if mode in ("quantized", "dq", "ternary", "sparse", "pq"):
                    try:
                        absorb(r.get(name, levels=True))
                    except ValueError as exc:  # levels of a sparse layer whose values have none
                        if isinstance(exc, codec.CodecError) or "has no levels" not in str(exc):
                            raise
                if mode == "sparse":
                    absorb(r.get(name, format="bitmap"))
            r.verify()

    def stream():
        for _, array in codec.iter_stream(io.BytesIO(data), limits=limits):
            absorb(array)

    def layers_of(source):
        """Each layer's outcome through a Reader of ``source`` (bytes, or a file path)."""
        out = []
        with codec.Reader(source, limits=limits) as r:
            for name in r:
                try:
                    a = r.get(name)
                    out.append((name, a.dtype.str, a.shape, np.ascontiguousarray(a).view(np.uint8).tobytes()))
                except codec.CodecError as exc:
                    out.append((name, f"{type(exc).__name__}: {exc}"))
        return out

    def from_file():
        # a file-backed reader (pread, and payloads read in pieces) must agree with one of bytes
        from codec import reader

        reader._PIECES_BYTES = 0
        with tempfile.NamedTemporaryFile(suffix=".nnc") as f:
            f.write(data)
            f.flush()
            got = layers_of(f.name)
        if got != layers_of(data):
            raise AssertionError("a Reader of the file and a Reader of its bytes disagree")

    def walk():
        fields = dump.walk(data, limits=limits)
        digest.update(dump.render_fields(fields).encode("utf-8", "replace"))

    def summary():
        with codec.Reader(data, limits=limits) as r:
            digest.update(json.dumps(dump.summarize(r, verify=True), default=str).encode())

    step("decode", lambda: absorb(list(codec.decode(data, limits=limits).values())))
    step("open", random_access)
    step("stream", stream)
    step("file", from_file)
    step("walk", walk)
    step("summary", summary)
    return " | ".join(outcome) + " | " + digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# modes
# ---------------------------------------------------------------------------------------------
def _child(args) -> int:
    """Run inputs [start, start+count) and print one JSON line per input; bounded memory and time."""
    import codec

    resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, CHILD_ADDRESS_SPACE))

    def alarm(signum, frame):
        raise TimeoutError("input took too long")

    signal.signal(signal.SIGALRM, alarm)
    limits = codec.Limits(**FUZZ_LIMITS)
    corpus = seeds()
    print(json.dumps({"backend": codec.backend}), flush=True)
    for i, data in inputs(args.seed, args.start, args.count, corpus):
        print(json.dumps({"i": i, "started": True}), flush=True)
        signal.alarm(INPUT_SECONDS)
        try:
            result = {"i": i, "outcome": run_all(data, limits)}
        except BaseException as exc:  # noqa: BLE001 - every other outcome is a finding
            result = {"i": i, "finding": f"{type(exc).__name__}: {exc}"[:500]}
        signal.alarm(0)
        print(json.dumps(result), flush=True)
    return 0


def _run_children(backend: str, args, start: int, count: int) -> dict[int, dict]:
    """Results of inputs [start, start+count) from child processes of one backend; a child that
    dies is restarted after the input it died on (recorded as a crash)."""
    env = dict(os.environ, CODEC_PUREPYTHON="1" if backend == "pure" else "0")
    results: dict[int, dict] = {}
    next_i = start
    while next_i < start + count:
        proc = subprocess.run([sys.executable, __file__, "_child", "--seed", str(args.seed), "--start", str(next_i),
                               "--count", str(start + count - next_i)], capture_output=True, text=True, env=env)
        last_started = None
        for line in proc.stdout.splitlines():
            record = json.loads(line)
            if "backend" in record:
                if record["backend"] != backend:
                    raise SystemExit(f"a child asked for the {backend} backend runs the {record['backend']} one")
            elif record.get("started"):
                last_started = record["i"]
            else:
                results[record["i"]] = record
        if proc.returncode == 0:
            break
        crashed = last_started if last_started is not None else next_i
        results[crashed] = {"i": crashed, "finding": f"child died with {proc.returncode}: {proc.stderr[-300:]}"}
        next_i = crashed + 1
    return results


def isolated(args) -> int:
    corpus = seeds()
    findings = 0
    done = 0
    t0 = time.time()
    for batch in range(args.start, args.start + args.count, args.batch):
        n = min(args.batch, args.start + args.count - batch)
        fast = _run_children("fast", args, batch, n)
        pure = _run_children("pure", args, batch, n) if not args.fast_only else {}
        for i, data in inputs(args.seed, batch, n, corpus):
            f, p = fast.get(i, {"finding": "no result"}), pure.get(i)
            problem = f.get("finding") or (p and p.get("finding"))
            if not problem and p is not None and p["outcome"] != f["outcome"]:
                problem = f"backends disagree:\n  fast: {f['outcome']}\n  pure: {p['outcome']}"
            if problem:
                findings += 1
                _save(args.out, i, data, problem)
        done += n
        print(f"{done} inputs, {findings} findings, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print(json.dumps({"mode": "isolated", "inputs": done, "findings": findings, "seconds": round(time.time() - t0),
                      "backends": ["fast"] + ([] if args.fast_only else ["pure"])}))
    return 1 if findings else 0


def inprocess(args) -> int:
    import codec

    limits = codec.Limits(**FUZZ_LIMITS)
    corpus = seeds()
    findings = 0
    t0 = time.time()
    for i, data in inputs(args.seed, args.start, args.count, corpus):
        try:
            run_all(data, limits)
        except Exception as exc:  # noqa: BLE001 - a finding
            findings += 1
            _save(args.out, i, data, f"{type(exc).__name__}: {exc}")
        if (i - args.start + 1) % 10000 == 0:
            print(f"{i - args.start + 1} inputs, {findings} findings, {time.time() - t0:.0f} s", file=sys.stderr,
                  flush=True)
    print(json.dumps({"mode": "inprocess", "backend": codec.backend, "inputs": args.count, "findings": findings,
                      "seconds": round(time.time() - t0)}))
    return 1 if findings else 0


def replay(args) -> int:
    import codec

    data = open(args.file, "rb").read()
    print(run_all(data, codec.Limits(**FUZZ_LIMITS)))
    return 0


def _save(out: str, i: int, data: bytes, problem: str) -> None:
    os.makedirs(out, exist_ok=True)
    kind = problem.split(":")[0].split()[0].replace("/", "_")[:40]
    stem = os.path.join(out, f"{i:07d}-{kind}")
    with open(stem + ".nnc", "wb") as f:
        f.write(data)
    with open(stem + ".txt", "w", encoding="utf-8") as f:
        f.write(problem + "\n")
    print(f"finding {i}: {problem.splitlines()[0][:200]}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("isolated", "inprocess", "_child"):
        p = sub.add_parser(name)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--start", type=int, default=0)
        p.add_argument("--count", type=int, default=1000)
        p.add_argument("--out", default="fuzz-findings")
        if name == "isolated":
            p.add_argument("--batch", type=int, default=500, help="inputs per child process")
            p.add_argument("--fast-only", action="store_true", help="no pure backend (no divergence check)")
    p = sub.add_parser("replay")
    p.add_argument("file")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # skipped unknown metadata etc. are logged: not findings
    warnings.simplefilter("error", RuntimeWarning)  # numpy overflow or invalid value: a finding
    return {"isolated": isolated, "inprocess": inprocess, "_child": _child, "replay": replay}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
