#!/usr/bin/env python3
"""Benchmark the memfs Xpress codecs against xpress_lz77 on memory-like data in 64 KiB units.

Reports MB/s of decoded output per core for both decoders (1 thread, and 2 threads each decoding half
of the units), encoder MB/s, and the encoders' output size relative to Windows on the Samba vectors
(shared/data/xpress).  Prints a markdown table.  Run from the repository root after
``python3 setup.py build_ext --inplace``.

    python3 scripts/bench_xpress.py [--mib 48] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "xpress"))

import xp_memlike  # noqa: E402
from xp_shared import shared_dir  # noqa: E402

import memfs.xpress as xp  # noqa: E402

UNIT = 65536
PAGE = 4096


def build_units(mib: int, seed: int = 7) -> list[bytes]:
    """64 KiB units of 16 pages each, drawn from a pool of generated pages with a realistic mix."""
    rng = random.Random(seed)
    weights = {"zero": 30, "pointers": 15, "code": 20, "text": 12, "utf16": 12, "random": 11}
    pool = {k: [xp_memlike.segment(k, PAGE, rng.randrange(1 << 30)) for _ in range(300)] for k in weights}
    kinds = list(weights)
    units = []
    for _ in range(mib * (1 << 20) // UNIT):
        pages = []
        while len(pages) < UNIT // PAGE:
            kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
            pages += [rng.choice(pool[kind])] * min(rng.randint(1, 3), UNIT // PAGE - len(pages))
        units.append(b"".join(pages))
    return units


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def in_threads(nthreads: int, work, items):
    """Run work(share) in nthreads threads on interleaved shares of items; return a callable."""
    shares = [items[i::nthreads] for i in range(nthreads)]

    def run():
        threads = [threading.Thread(target=work, args=(s,)) for s in shares]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    return run


def _each(fn, *extra):
    """work(streams): decode every stream, keeping no result alive (as a cache-fed reader would)."""

    def work(streams):
        for s in streams:
            fn(s, *extra)

    return work


def _each_into(fn):
    def work(streams):
        out = bytearray(UNIT)  # one reusable buffer per thread
        for s in streams:
            fn(s, out)

    return work


def decoders():
    import xpress_lz77

    return {
        "plain": {
            "memfs.xpress": _each(xp.decompress_plain, UNIT),
            "memfs.xpress (into)": _each_into(xp.decompress_plain_into),
            "xpress_lz77": _each(xpress_lz77.lz77_plain_decompress_py),
        },
        "huffman": {
            "memfs.xpress": _each(xp.decompress_huffman, UNIT),
            "memfs.xpress (into)": _each_into(xp.decompress_huffman_into),
            "xpress_lz77": _each(xpress_lz77.lz77_huffman_decompress_py, UNIT),
        },
    }


def windows_ratio():
    """(our total, Windows total, encoder MB/s) per algorithm on the samba/ vectors."""
    shared = shared_dir()
    if shared is None:
        return {}
    root = shared / "data" / "xpress"
    manifest = json.loads((root / "manifest.json").read_text())
    result = {}
    for alg, enc in (("plain_lz77", xp.compress_plain), ("lz77_huffman", xp.compress_huffman)):
        ours = windows = nbytes = 0
        elapsed = 0.0
        for e in manifest:
            if e["algorithm"] == alg and e["compressed"].startswith("samba/"):
                original = (root / e["expected"]).read_bytes()
                t0 = time.perf_counter()
                ours += len(enc(original))
                elapsed += time.perf_counter() - t0
                windows += e["compressed_size"]
                nbytes += len(original)
        result[alg] = (ours, windows, nbytes / elapsed / 1e6)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=48, help="corpus size in MiB (default 48)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions, best is kept")
    args = parser.parse_args()

    units = build_units(args.mib)
    total = len(units) * UNIT
    print(
        f"corpus: {len(units)} units of 64 KiB ({total / 2**20:.0f} MiB), CPUs: {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.2f}\n"
    )

    streams = {}
    enc_speed = {}
    for alg, enc, dec in (
        ("plain", xp.compress_plain, xp.decompress_plain),
        ("huffman", xp.compress_huffman, xp.decompress_huffman),
    ):
        t0 = time.perf_counter()
        streams[alg] = [enc(u) for u in units]
        enc_speed[alg] = total / (time.perf_counter() - t0) / 1e6
        assert all(dec(s, UNIT) == u for s, u in zip(streams[alg], units, strict=True))
        t0 = time.perf_counter()
        in_threads(2, _each(enc), units)()
        enc_speed[alg + "2"] = total / (time.perf_counter() - t0) / 1e6

    rows = []
    speeds = {}
    for alg, table in decoders().items():
        ratio = sum(map(len, streams[alg])) / total
        for name, work in table.items():
            t1 = best_time(lambda work=work, alg=alg: work(streams[alg]), args.repeat)
            t2 = best_time(in_threads(2, work, streams[alg]), args.repeat)
            speeds[(alg, name, 1)] = total / t1 / 1e6
            speeds[(alg, name, 2)] = total / t2 / 1e6
            rows.append((alg, name, total / t1 / 1e6, total / t2 / 1e6, t1 / t2, ratio))

    # Control: a GIL-free C workload of similar grain; shows how much a second core is really free.
    control = _each(lambda u: hashlib.sha256(u).digest())
    c1 = best_time(lambda: control(units), args.repeat)
    c2 = best_time(in_threads(2, control, units), args.repeat)
    rows.append(("(control)", "hashlib.sha256", total / c1 / 1e6, total / c2 / 1e6, c1 / c2, float("nan")))

    print("| algorithm | decoder | 1 thread MB/s | 2 threads MB/s | 2T/1T | compressed/original |")
    print("|---|---|---:|---:|---:|---:|")
    for alg, name, s1, s2, scale, ratio in rows:
        print(f"| {alg} | {name} | {s1:.0f} | {s2:.0f} | {scale:.2f}x | {ratio:.3f} |".replace("nan", "-"))

    print("\n| target | measured | met |")
    print("|---|---:|---|")
    checks = [
        ("Huffman decode >= 4x xpress_lz77", speeds[("huffman", "memfs.xpress", 1)]
         / speeds[("huffman", "xpress_lz77", 1)], 4.0),
        ("Plain decode >= 1.5x xpress_lz77", speeds[("plain", "memfs.xpress", 1)]
         / speeds[("plain", "xpress_lz77", 1)], 1.5),
        ("Huffman 2 threads >= 1.7x 1 thread", speeds[("huffman", "memfs.xpress", 2)]
         / speeds[("huffman", "memfs.xpress", 1)], 1.7),
        ("Plain 2 threads >= 1.7x 1 thread", speeds[("plain", "memfs.xpress", 2)]
         / speeds[("plain", "memfs.xpress", 1)], 1.7),
    ]  # fmt: skip
    checks.append(("(control) sha256 2 threads vs 1 thread", c1 / c2, 1.7))
    for label, value, goal in checks:
        print(f"| {label} | {value:.2f}x | {'yes' if value >= goal else 'NO'} |")

    print(
        "\n| encoder | memory-like MB/s (1 thread) | 2 threads MB/s | Samba vectors MB/s | size vs Windows |"
    )
    print("|---|---:|---:|---:|---:|")
    ratios = windows_ratio()
    for alg, key in (("plain", "plain_lz77"), ("huffman", "lz77_huffman")):
        if key in ratios:
            ours, windows, mbs = ratios[key]
            vs = f"{ours} / {windows} = {ours / windows:.3f}"
            vmbs = f"{mbs:.0f}"
        else:
            vs = vmbs = "n/a (no shared data)"
        print(f"| {alg} | {enc_speed[alg]:.0f} | {enc_speed[alg + '2']:.0f} | {vmbs} | {vs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
