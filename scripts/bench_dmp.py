"""Throughput of memory.dmp versus physmem.bin on the same source (target: within 10 %).

Reads both files sequentially, start to end, in ``--chunk`` pieces (FUSE hands reads of 128 KiB),
alternating the two files ``--repeat`` times after one warm-up pass so both see the same page
cache, and prints MB/s and the ratio.

- ``--mount``: for every pass, mount IMAGE with the memfs CLI, read one file, unmount — so each
  pass goes through FUSE and memfs, not the kernel's page cache of an earlier pass (the real path);
- ``--mounted DIR``: read ``DIR/physmem.bin`` and ``DIR/memory.dmp`` of a running mount (after
  the warm-up pass this mostly measures the kernel page cache);
- otherwise the files are read in-process through ``memfs.views.tree.build_files`` (isolates the
  view's own cost).

The source is ``IMAGE`` or, without one, a synthetic Windows image of ``--synthetic-mib`` MiB
(scripts/make_windows_image.py) written to a temporary directory.

Usage: ``python3 -m scripts.bench_dmp [IMAGE] [--mount | --mounted DIR] [--chunk 131072] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
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


def _fresh_mount_times(image: Path, tmp: str, chunk: int, repeat: int) -> tuple[dict, dict]:
    """Per pass: mount, read one file start to end, unmount (so no pass is served by the page cache)."""
    mountpoint = Path(tmp) / "mnt"
    mountpoint.mkdir()
    memfs = [sys.executable, "-m", "memfs"]
    names = ["physmem.bin", "memory.dmp"]
    times: dict[str, list[float]] = {name: [] for name in names}
    sizes: dict[str, int] = {}
    for index in range(repeat + 1):  # pass 0 warms the image file's page cache for both
        for name in names if index % 2 == 0 else names[::-1]:
            subprocess.run([*memfs, "mount", str(image), str(mountpoint)], check=True, capture_output=True)
            try:
                size, read, close = _mounted_reader(mountpoint / name)
                try:
                    elapsed = _time_reader(size, read, chunk)
                finally:
                    close()
            finally:
                subprocess.run([*memfs, "umount", str(mountpoint)], check=True, capture_output=True)
            sizes[name] = size
            if index:
                times[name].append(elapsed)
    return sizes, times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path)
    parser.add_argument("--mount", action="store_true", help="mount IMAGE afresh for every pass (real path)")
    parser.add_argument("--mounted", type=Path, help="directory of a running memfs mount of IMAGE")
    parser.add_argument("--chunk", type=int, default=128 * 1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic-mib", type=int, default=256)
    args = parser.parse_args(argv)

    closers: list[Callable[[], None]] = []
    with tempfile.TemporaryDirectory(prefix="memfs-bench-") as tmp:
        if args.mount:
            image = args.image
            if image is None:
                from scripts.make_windows_image import MIB, build_image

                image = Path(tmp) / "bench.raw"
                build_image(image, mode="x64", encoded=True, size=args.synthetic_mib * MIB)
            sizes, times = _fresh_mount_times(image, tmp, args.chunk, args.repeat)
            readers = {name: (size, None) for name, size in sizes.items()}
            where = f"fresh memfs mount of {image} per pass"
        elif args.mounted is not None:
            readers = {}
            for name in ("physmem.bin", "memory.dmp"):
                size, read, close = _mounted_reader(args.mounted / name)
                readers[name] = (size, read)
                closers.append(close)
            where = f"mount {args.mounted}"
        else:
            from memfs.detect import open_image
            from memfs.kernel.discover import discover
            from memfs.views.tree import build_files

            image = args.image
            if image is None:
                from scripts.make_windows_image import MIB, build_image

                image = Path(tmp) / "bench.raw"
                build_image(image, mode="x64", encoded=True, size=args.synthetic_mib * MIB)
            source = open_image(str(image))
            closers.append(source.close)
            started = time.perf_counter()
            files = build_files(source, discover(source))
            print(f"discover + build_files: {time.perf_counter() - started:.3f} s")
            readers = {name: (files[name].size, files[name].read) for name in ("physmem.bin", "memory.dmp")}
            where = f"in-process views of {image}"
        if not args.mount:
            try:
                for size, read in readers.values():  # warm-up: same page cache for both
                    _time_reader(size, read, args.chunk)
                times = {name: [] for name in readers}
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
