"""Benchmark: sequential read of physmem.bin through memfs vs a trivial Python passthrough FUSE daemon.

The passthrough daemon serves the image file itself with ``os.pread`` and nothing else: it is the
ceiling for any Python FUSE daemon on this machine.  Both are measured in one run with
``dd bs=1M``, cold (page cache dropped) and warm (second read).  Run by hand, as root for cold runs:

    python3 -m scripts.bench_mount [--size-mib 1024] [--workdir /tmp/memfs-bench]

Prints a markdown table (MB/s) and the ratio memfs / passthrough.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

from memfs.fuse.mount import READ_AHEAD_KB
from scripts.make_crashdump_fixtures import build_dump


def _serve_passthrough(image: str, mountpoint: str, threads: bool) -> None:
    """The trivial passthrough daemon (run in a child process)."""
    from memfs.fuse.libfuse import import_mfusepy, select_libfuse
    from memfs.fuse.mount import thread_options

    mfusepy = import_mfusepy()  # the same libfuse memfs mounts with
    FUSE, FuseOSError, Operations = mfusepy.FUSE, mfusepy.FuseOSError, mfusepy.Operations

    class Passthrough(Operations):
        use_ns = True

        def __init__(self) -> None:
            self.fd = os.open(image, os.O_RDONLY)
            self.size = os.fstat(self.fd).st_size

        def getattr(self, path, fh=None):
            if path == "/":
                return {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2}
            if path != "/image":
                raise FuseOSError(errno.ENOENT)
            return {
                "st_mode": stat.S_IFREG | 0o444,
                "st_nlink": 1,
                "st_size": self.size,
                "st_blksize": 1 << 20,
            }

        def readdir(self, path, fh):
            return [".", "..", "image"]

        def open(self, path, fi):
            fi.keep_cache = 1
            return 0

        def read(self, path, size, offset, fh):
            return os.pread(self.fd, size, offset)

    FUSE(
        Passthrough(),
        mountpoint,
        raw_fi=True,
        foreground=True,
        ro=True,
        nothreads=not threads,
        **thread_options(select_libfuse()),
    )


def _set_read_ahead(mountpoint: Path) -> None:
    dev = os.stat(mountpoint).st_dev
    with contextlib.suppress(OSError):
        Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb").write_text(str(READ_AHEAD_KB))


def _drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3")
        return True
    except OSError:
        return False


def _dd(path: Path) -> float:
    """MB/s of ``dd if=path of=/dev/null bs=1M``."""
    start = time.perf_counter()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=1M"], check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    return path.stat().st_size / elapsed / 1e6


def _wait_mounted(mountpoint: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.ismount(mountpoint):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{mountpoint} never mounted")
        time.sleep(0.05)


def measure(image: Path, workdir: Path, repeats: int, threads: bool) -> dict[str, dict[str, float]]:
    """Cold and warm MB/s for both daemons, best of ``repeats``."""
    results: dict[str, dict[str, float]] = {}
    for name in ("passthrough", "memfs"):
        mnt = workdir / f"mnt-{name}"
        mnt.mkdir(exist_ok=True)
        if name == "passthrough":
            daemon = subprocess.Popen(
                [sys.executable, "-m", "scripts.bench_mount", "--serve", str(image), str(mnt)]
                + ([] if threads else ["--single-threaded"])
            )
            _wait_mounted(mnt)
            _set_read_ahead(mnt)
            target = mnt / "image"
        else:
            args = [sys.executable, "-m", "memfs", "mount", str(image), str(mnt)]
            out = subprocess.run(
                args + ([] if threads else ["--single-threaded"]), check=True, capture_output=True, text=True
            )
            daemon = None
            pid = int(re.search(r"pid (\d+)", out.stdout).group(1))
            time.sleep(0.2)  # let the daemon raise read_ahead_kb
            target = mnt / "physmem.bin"
        try:
            cold, warm = [], []
            for _ in range(repeats):
                if _drop_caches():
                    cold.append(_dd(target))
                warm.append(_dd(target))
            results[name] = {"cold": max(cold) if cold else float("nan"), "warm": max(warm)}
        finally:
            subprocess.run(["fusermount3", "-u", str(mnt)], check=False)
            if daemon is not None:
                daemon.wait(timeout=20)
            elif pid:
                time.sleep(0.2)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", nargs=2, metavar=("IMAGE", "MNT"), help=argparse.SUPPRESS)
    parser.add_argument("--single-threaded", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/memfs-bench"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.serve:
        _serve_passthrough(*args.serve, threads=not args.single_threaded)
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    image = args.workdir / f"bench-{args.size_mib}M.dmp"
    if not image.exists():
        pages = args.size_mib * 256
        # Two runs with a hole between them, like real firmware maps.
        build_dump(
            image, width=64, dump_type=1, runs=[(0x1, pages // 2), (pages // 2 + 0x100, pages - pages // 2)]
        )
    print(f"image: {image} ({image.stat().st_size / 2**20:.0f} MiB)\n")
    print("| threads | daemon | cold MB/s | warm MB/s |")
    print("|---|---|---|---|")
    for threads in (True, False):
        results = measure(image, args.workdir, args.repeats, threads)
        for name, row in results.items():
            print(f"| {'multi' if threads else 'single'} | {name} | {row['cold']:.0f} | {row['warm']:.0f} |")
        ratio_cold = results["memfs"]["cold"] / results["passthrough"]["cold"]
        ratio_warm = results["memfs"]["warm"] / results["passthrough"]["warm"]
        mode = "multi" if threads else "single"
        print(f"| {mode} | memfs / passthrough | {ratio_cold:.0%} | {ratio_warm:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
