#!/usr/bin/env python3
"""Benchmark the memfs LZNT1 codec against dissect.util's on memory-like data in 64 KiB units.

Reports MB/s of decoded output per core (thread CPU time) for memfs.lznt1 and dissect.util, their ratio,
1-thread and 2-thread wall MB/s for memfs.lznt1 (the GIL is released while it decodes), the encoder's
speed and ratio, and, when shared/data/lznt1 holds the DumpIt block, the encoder's size next to
Windows'.  Prints markdown tables.  Run from the repository root after an editable install.

    python3 scripts/bench_lznt1.py [--mib 32] [--dissect-mib 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import memfs.lznt1 as lz  # noqa: E402
from scripts.bench_xpress import UNIT, _each, _each_into, best_time, build_units, corpus_line, measure  # noqa: E402
from tests.conftest import shared_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=32, help="corpus size in MiB (default 32)")
    parser.add_argument("--dissect-mib", type=int, default=2, help="part dissect.util decodes (default 2)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions, best is kept")
    args = parser.parse_args()
    from dissect.util.compression import lznt1 as dissect_lznt1

    units = build_units(args.mib)
    total = len(units) * UNIT
    print(corpus_line(units))
    t0 = time.perf_counter()
    streams = [lz.compress(u) for u in units]
    encode_mbs = total / (time.perf_counter() - t0) / 1e6
    assert all(lz.decompress(s, UNIT) == u for s, u in zip(streams, units, strict=True))
    ratio = sum(map(len, streams)) / total
    few = streams[: max(1, args.dissect_mib * (1 << 20) // UNIT)]
    assert all(dissect_lznt1.decompress(s) == u for s, u in zip(few, units, strict=False))

    rows = []
    for name, work, items in (
        ("memfs.lznt1", _each(lz.decompress, UNIT), streams),
        ("memfs.lznt1 (into)", _each_into(lz.decompress_into), streams),
        ("dissect.util", _each(dissect_lznt1.decompress), few),
    ):
        repeat = args.repeat if name.startswith("memfs") else 1
        rows.append((name, *measure(work, items, repeat)))
    control = measure(_each(lambda u: hashlib.sha256(u).digest()), units, args.repeat)
    rows.append(("(control) hashlib.sha256", *control))

    print("| decoder | MB/s per core | 1 thread wall MB/s | 2 threads wall MB/s | 2T/1T |")
    print("|---|---:|---:|---:|---:|")
    for name, core, w1, w2 in rows:
        print(f"| {name} | {core:.1f} | {w1:.1f} | {w2:.1f} | {w2 / w1:.2f}x |")
    speed = {name: core for name, core, _, _ in rows}
    print(
        f"\nmemfs.lznt1 / dissect.util per core: {speed['memfs.lznt1'] / speed['dissect.util']:.0f}x; "
        f"compressed/original: {ratio:.3f}; encoder: {encode_mbs:.0f} MB/s (1 thread)"
    )

    shared = shared_dir()
    block = shared / "data" / "lznt1" / "dumpit_block0.lznt1" if shared else None
    if block is not None and block.is_file():
        windows = block.read_bytes()
        original = lz.decompress(windows, 0x200000)
        t_dec = best_time(lambda: lz.decompress(windows, 0x200000), args.repeat, time.thread_time)
        ours = lz.compress(original)
        print(
            f"DumpIt block (2 MiB): Windows {len(windows)} bytes, ours {len(ours)} bytes "
            f"({len(ours) / len(windows):.3f}x); decoding it: {len(original) / t_dec / 1e6:.0f} MB/s per core"
        )
    else:
        print("DumpIt block: shared/data/lznt1/dumpit_block0.lznt1 not found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
