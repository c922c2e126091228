"""Benchmark: how long an image takes to open with kernel discovery and with ``--no-discovery``.

A user who wants only ``physmem.bin`` of a large image should not wait for discovery.  This measures,
side by side in one run, fresh ``memfs`` processes on the same images:

- ``info --json`` with and without ``--no-discovery`` (open + discovery + header, no FUSE);
- ``mount`` with and without ``--no-discovery`` (until ``memfs mount`` returns a ready mount), when
  this machine can mount.

Images (built once into ``--workdir`` and reused): a sparse raw image of ``--raw-gib`` GiB (all holes,
so discovery scans its full byte budgets), a large hibernation file (``--hiber-gib`` GiB of real
memory-like sets, as ``scripts.bench_read`` builds), and any ``IMAGE`` given on the command line.

    python3 -m scripts.bench_open [--raw-gib 64] [--hiber-gib 2] [--repeat 3] [--workdir DIR] [IMAGE ...]

Prints a markdown table of median wall seconds and the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEMFS = [sys.executable, "-m", "memfs"]


def sparse_raw(path: Path, gib: float) -> Path:
    """A raw image of ``gib`` GiB that is one file hole (built in no time, reads as zeros)."""
    size = int(gib * (1 << 30))
    if not path.exists() or path.stat().st_size != size:
        with open(path, "wb") as handle:
            handle.truncate(size)
    return path


def hiberfil(path: Path, gib: float) -> Path:
    from scripts.make_hiberfil_fixtures import build_large

    if not path.exists():
        build_large(path, gib)
    return path


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return elapsed


def time_info(image: Path, no_discovery: bool) -> float:
    return _timed([*MEMFS, "info", str(image), "--json", *(["--no-discovery"] if no_discovery else [])])


def time_mount(image: Path, no_discovery: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="memfs-bench-open-") as mountpoint:
        try:
            flags = ["--no-discovery"] if no_discovery else []
            return _timed([*MEMFS, "mount", str(image), mountpoint, *flags])
        finally:
            subprocess.run([*MEMFS, "umount", mountpoint], capture_output=True)


def can_mount() -> bool:
    from memfs.fuse.doctor import mount_blocker

    return mount_blocker() is None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", type=Path, help="further images to measure")
    parser.add_argument("--raw-gib", type=float, default=64.0)
    parser.add_argument("--hiber-gib", type=float, default=2.0, help="0 to leave it out")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/memfs-bench"))
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    images = [sparse_raw(args.workdir / f"sparse-{args.raw_gib:g}g.raw", args.raw_gib)]
    if args.hiber_gib:
        images.append(hiberfil(args.workdir / f"large-{args.hiber_gib:g}g.hiberfil", args.hiber_gib))
    images += args.images
    measures = [("info", time_info)] + ([("mount", time_mount)] if can_mount() else [])
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| image | size | command | with discovery (s) | --no-discovery (s) |")
    print("|---|---|---|---|---|")
    for image in images:
        size = f"{image.stat().st_size / (1 << 30):.1f} GiB file"
        for name, measure in measures:
            with_d, without = [], []
            for _ in range(args.repeat):  # interleaved, so load changes hit both columns alike
                with_d.append(measure(image, False))
                without.append(measure(image, True))
            print(
                f"| {image.name} | {size} | {name} | {statistics.median(with_d):.2f} "
                f"| {statistics.median(without):.2f} |"
            )
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
