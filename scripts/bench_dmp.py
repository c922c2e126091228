"""Throughput of memory.dmp versus physmem.bin on the same source (target: within 10 %).

Reads both files sequentially, start to end, in ``--chunk`` pieces (FUSE hands reads of 128 KiB),
alternating the two files ``--repeat`` times after one warm-up pass so both see the same page
cache, and prints MB/s and the ratio.

- ``--mounted DIR``: read ``DIR/physmem.bin`` and ``DIR/memory.dmp`` of a running mount (the real
  path: FUSE, kernel, memfs);
- otherwise the files are read in-process through ``memfs.views.tree.build_files`` (isolates the
  view's own cost).

The source is ``IMAGE`` or, without one, a synthetic Windows image of ``--synthetic-mib`` MiB
(scripts/make_windows_image.py) written to a temporary directory.

Usage: ``python3 -m scripts.bench_dmp [IMAGE] [--mounted DIR] [--chunk 131072] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _time_reader(size: int, read: Callable[[int, int], bytes], chunk: int) -> float:
    started = time.perf_counter()
    offset = 0
    while offset < size:
        data = read(offset, chunk)
        if not data:
            break
        offset += len(data)
    return time.perf_counter() - started


def _mounted_reader(path: Path) -> tuple[int, Callable[[int, int], bytes], Callable[[], None]]:
    fd = os.open(path, os.O_RDONLY)
    return os.fstat(fd).st_size, lambda off, n: os.pread(fd, n, off), lambda: os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path)
    parser.add_argument("--mounted", type=Path, help="directory of a running memfs mount of IMAGE")
    parser.add_argument("--chunk", type=int, default=128 * 1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic-mib", type=int, default=256)
    args = parser.parse_args(argv)

    closers: list[Callable[[], None]] = []
    with tempfile.TemporaryDirectory(prefix="memfs-bench-") as tmp:
        if args.mounted is not None:
            readers = {}
            for name in ("physmem.bin", "memory.dmp"):
                size, read, close = _mounted_reader(args.mounted / name)
                readers[name] = (size, read)
                closers.append(close)
            where = f"mount {args.mounted}"
        else:
            from memfs.detect import open_image
            from memfs.views.tree import build_files

            image = args.image
            if image is None:
                from scripts.make_windows_image import MIB, build_image

                image = Path(tmp) / "bench.raw"
                build_image(image, mode="x64", encoded=True, size=args.synthetic_mib * MIB)
            source = open_image(str(image))
            closers.append(source.close)
            started = time.perf_counter()
            files = build_files(source)
            print(f"build_files (incl. kernel discovery): {time.perf_counter() - started:.3f} s")
            readers = {name: (files[name].size, files[name].read) for name in ("physmem.bin", "memory.dmp")}
            where = f"in-process views of {image}"
        try:
            for size, read in readers.values():  # warm-up: same page cache for both
                _time_reader(size, read, args.chunk)
            times: dict[str, list[float]] = {name: [] for name in readers}
            for _ in range(args.repeat):
                for name, (size, read) in readers.items():
                    times[name].append(_time_reader(size, read, args.chunk))
        finally:
            for close in closers:
                close()
    print(f"{where}, chunk {args.chunk} bytes, {args.repeat} passes each")
    rates = {}
    for name, (size, _) in readers.items():
        best = min(times[name])
        rates[name] = size / best / 1e6
        print(
            f"{name:12} {size:>14} bytes  best {best:.3f} s  median {statistics.median(times[name]):.3f} s  "
            f"{rates[name]:.0f} MB/s"
        )
    ratio = rates["memory.dmp"] / rates["physmem.bin"]
    print(
        f"memory.dmp / physmem.bin throughput: {ratio:.1%} ({'within' if ratio >= 0.9 else 'outside'} 10 %)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
