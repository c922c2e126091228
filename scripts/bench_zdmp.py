#!/usr/bin/env python3
"""Benchmark the .zdmp container layer: reading the whole decoded stream through ZdmpSource against
decoding every block with the LZNT1 codec alone, in one process, side by side.

Writes (or reuses) a .zdmp of memory-like 2 MiB blocks — DumpIt's block size — drawn from a pool of
distinct blocks compressed once, so that building 1 GiB takes seconds.  Then measures, best of
``--repeat``, with the file in the page cache:

* codec alone: ``os.pread`` each payload and ``lznt1.decompress_into`` a reused 2 MiB buffer;
* the CRC32 of every payload alone (what the container adds to the codec's work);
* ``ZdmpSource.readinto`` over the stream in 4 MiB reads (bulk path: whole units decoded straight into
  the caller's buffer) and in 128 KiB reads starting 8 KiB in (what FUSE asks of physmem.bin once a
  crash dump's 8 KiB header shifts the pages: every unit decoded once into the cache, then copied);
* both again with 2 threads, each reading half of the stream.

Per-core speed comes from the thread's CPU time, so it holds on a shared machine; the wall-clock columns
show the thread scaling, which needs a free second core.

The mount comparison of docs/formats/zdmp.md (physmem.bin through FUSE) needs the container registered;
this isolates the container's own cost.  Prints a markdown table with the machine's load.

    python3 scripts/bench_zdmp.py [--gib 1] [--path /tmp/bench.zdmp] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memfs import lznt1  # noqa: E402
from memfs.containers.zdmp import ZdmpSource  # noqa: E402
from memfs.fuse.mount import tune_malloc  # noqa: E402
from scripts.bench_xpress import UNIT, best_time, build_units  # noqa: E402
from scripts.make_zdmp_fixtures import write_zdmp  # noqa: E402
from tests.containers.file_source import FileByteSource  # noqa: E402

BLOCK = 0x200000


def build(path: Path, gib: float, pool_size: int = 24, seed: int = 5) -> None:
    units = build_units(pool_size * BLOCK // (1 << 20), seed)
    per_block = BLOCK // UNIT
    pool = [lznt1.compress(b"".join(units[i * per_block : (i + 1) * per_block])) for i in range(pool_size)]
    rng = random.Random(seed)
    blocks = int(gib * (1 << 30)) // BLOCK
    write_zdmp(path, [rng.choice(pool) for _ in range(blocks)], blocks * BLOCK, BLOCK)


def codec_alone(path: Path, source: ZdmpSource, blocks: range) -> None:
    out = bytearray(BLOCK)
    fd = os.open(path, os.O_RDONLY)
    try:
        for index in blocks:
            start = source._offsets[index] + 12
            payload = os.pread(fd, source._offsets[index + 1] - start, start)
            lznt1.decompress_into(payload, out, True)
    finally:
        os.close(fd)


def crc_alone(path: Path, source: ZdmpSource, blocks: range) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        for index in blocks:
            start = source._offsets[index] + 12
            zlib.crc32(os.pread(fd, source._offsets[index + 1] - start, start))
    finally:
        os.close(fd)


def through_source(source: ZdmpSource, start: int, end: int, chunk: int) -> None:
    out = bytearray(chunk)
    for offset in range(start, end, chunk):
        source.readinto(offset, memoryview(out)[: min(chunk, end - offset)])


def two_threads(work_for_half) -> None:
    threads = [threading.Thread(target=work_for_half, args=(half,)) for half in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="decoded size in GiB (default 1)")
    parser.add_argument("--path", type=Path, default=Path("/tmp/memfs-bench.zdmp"))
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions, best is kept")
    args = parser.parse_args()
    tune_malloc()  # as the mount daemon does (docs/performance.md, malloc trap)
    if not args.path.exists() or args.path.stat().st_size < 0x1000:
        t0 = time.perf_counter()
        build(args.path, args.gib)
        print(f"built {args.path} in {time.perf_counter() - t0:.1f} s")
    source = ZdmpSource(FileByteSource(args.path), cache_size=64 << 20)
    size, n = source.size, source.blocks_present
    half = (n // 2) * BLOCK
    on_disk = args.path.stat().st_size / 2**20
    print(
        f"{args.path}: {size / 2**30:.2f} GiB decoded in {n} blocks of 2 MiB, {on_disk:.0f} MiB on disk; "
        f"CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}\n"
    )
    through_source(source, 0, size, 1 << 20)  # warm the page cache
    cases = {
        "codec alone (pread + decompress_into)": (
            lambda: codec_alone(args.path, source, range(n)),
            lambda: two_threads(
                lambda h: codec_alone(args.path, source, range(h * (n // 2), (n // 2) * (h + 1)))
            ),
        ),
        "CRC32 of the payloads alone": (
            lambda: crc_alone(args.path, source, range(n)),
            lambda: two_threads(
                lambda h: crc_alone(args.path, source, range(h * (n // 2), (n // 2) * (h + 1)))
            ),
        ),
        "ZdmpSource.readinto, 4 MiB reads (bulk)": (
            lambda: through_source(source, 0, size, 4 << 20),
            lambda: two_threads(lambda h: through_source(source, h * half, (h + 1) * half, 4 << 20)),
        ),
        "ZdmpSource.readinto, 128 KiB reads from 8 KiB on (cache)": (
            lambda: (source.cache.clear(), through_source(source, 0x2000, size, 128 << 10)),
            lambda: (
                source.cache.clear(),
                two_threads(lambda h: through_source(source, h * half + 0x2000, (h + 1) * half, 128 << 10)),
            ),
        ),
    }
    print(
        "| path | MB/s per core (CPU) | 1 thread wall MB/s | 2 threads wall MB/s | per core vs codec alone |"
    )
    print("|---|---:|---:|---:|---:|")
    base = None
    for name, (one, two) in cases.items():
        core = size / best_time(one, args.repeat, time.thread_time) / 1e6
        wall1 = size / best_time(one, args.repeat) / 1e6
        wall2 = (2 * half) / best_time(two, args.repeat) / 1e6
        base = base or core
        print(f"| {name} | {core:.0f} | {wall1:.0f} | {wall2:.0f} | {core / base:.2f}x |")
    source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
