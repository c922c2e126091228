"""Time opening a large bitmap crash dump (header + bitmap only; page data is a sparse hole).

    python3 -m scripts.bench_crashdump_open [--ram-gib 64] [--hole-every 4099] [--dir /tmp]

Run by hand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from memfs.byte_source import FileByteSource
from memfs.formats.crashdump import CrashDumpSource
from scripts.make_crashdump_fixtures import build_sparse_bitmap_dump


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ram-gib", type=int, default=64)
    parser.add_argument("--hole-every", type=int, default=4099, help="every Nth page is absent")
    parser.add_argument("--dir", default=None, help="where to create the sparse file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = os.path.join(tmp, "big.dmp")
        started = time.perf_counter()
        build_sparse_bitmap_dump(path, args.ram_gib << 30, hole_every=args.hole_every)
        print(f"built {os.path.getsize(path):#x}-byte sparse dump in {time.perf_counter() - started:.2f} s")
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            with CrashDumpSource(FileByteSource(path)) as source:
                elapsed = time.perf_counter() - started
                runs = len(source.runs)
                present = source.present_bytes
            best = min(best, elapsed)
        print(
            f"{args.ram_gib} GiB bitmap, {runs} runs, {present >> 20} MiB present: "
            f"open {best * 1000:.0f} ms (best of {args.repeat})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
