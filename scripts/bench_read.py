"""Benchmark: sequential physmem.bin reads through a real mount of a large Huffman hibernation file.

One run prints, side by side: the raw single-core decode rate of our Huffman decoder on the file's own
sets; mount throughput cold and warm with one and two reader processes; open time; the daemon's peak
RSS; and the numbers behind a second, lz4-compressed cache level (decode vs lz4 costs).

    python3 -m scripts.bench_read [--gib 2] [--workdir /tmp/memfs-bench] [--cache-size 512M]

The image is built once by ``scripts.make_hiberfil_fixtures.build_large`` (memory-like 16-page sets,
LZ77+Huffman) and reused.  Mounting uses the CLI: ``python3 -m memfs mount IMAGE MNT``.
Targets (issue 4): one reader ≥ 70% of the single-core decode rate; two readers > one core's worth.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

CHUNK = 1 << 20

READER = """
import os, sys, time
path, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_RDONLY)
pos, t = start, time.perf_counter()
while pos < end:
    n = len(os.pread(fd, min(1 << 20, end - pos), pos))
    if n == 0:
        break
    pos += n
print(pos - start, time.perf_counter() - t)
"""


def decode_rate(image: str) -> tuple[float, int]:
    """Single-core MB/s of output of memfs.xpress.decompress_huffman over every set of the image."""
    from memfs import xpress
    from memfs.detect import open_image
    from memfs.formats.hiberfil_index import KIND_HUFFMAN

    with open_image(image) as src:
        index = src._index
        fd = os.open(image, os.O_RDONLY)
        total = 0
        elapsed = 0.0
        for unit in range(index.units):
            if index.unit_kind[unit] != KIND_HUFFMAN:
                continue
            data = os.pread(fd, index.unit_csize[unit], index.unit_off[unit])
            out_size = index.unit_pages[unit] * 4096
            t = time.perf_counter()
            xpress.decompress_huffman(data, out_size)
            elapsed += time.perf_counter() - t
            total += out_size
        os.close(fd)
    return total / elapsed / 1e6, total


def lz4_costs(image: str, sample: int = 2000) -> dict[str, float]:
    """µs per 64 KiB set: Huffman decode, lz4 compress, lz4 decompress; and the lz4 ratio."""
    import lz4.block

    from memfs import xpress
    from memfs.detect import open_image

    with open_image(image) as src:
        index = src._index
        fd = os.open(image, os.O_RDONLY)
        dec = comp = decomp = 0.0
        raw = packed = 0
        n = min(sample, index.units)
        for unit in range(n):
            data = os.pread(fd, index.unit_csize[unit], index.unit_off[unit])
            t0 = time.perf_counter()
            out = xpress.decompress_huffman(data, index.unit_pages[unit] * 4096)
            t1 = time.perf_counter()
            small = lz4.block.compress(out, store_size=False)
            t2 = time.perf_counter()
            lz4.block.decompress(small, uncompressed_size=len(out))
            t3 = time.perf_counter()
            dec, comp, decomp = dec + t1 - t0, comp + t2 - t1, decomp + t3 - t2
            raw += len(out)
            packed += len(small)
        os.close(fd)
    return {
        "huffman_us": dec / n * 1e6,
        "lz4_compress_us": comp / n * 1e6,
        "lz4_decompress_us": decomp / n * 1e6,
        "lz4_ratio": packed / raw,
    }


def _mount(image: str, mnt: Path, cache_size: str) -> int:
    mnt.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "memfs", "mount", image, str(mnt), "--cache-size", cache_size],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(f"mount failed: {result.stderr.strip()}")
    match = re.search(r"daemon pid (\d+)", result.stdout)
    return int(match.group(1)) if match else 0


def _umount(mnt: Path, pid: int) -> None:
    subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, ValueError):
            return
        time.sleep(0.05)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _drop_page_cache() -> None:
    """Best effort: drop the kernel page cache so 'cold' means cold (needs root)."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass


def read_through(mnt: Path, readers: int) -> float:
    """Aggregate MB/s of ``readers`` processes reading disjoint parts of physmem.bin sequentially."""
    path = mnt / "physmem.bin"
    size = path.stat().st_size
    part = (size // readers + CHUNK - 1) // CHUNK * CHUNK
    t = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(path), str(i * part), str(min(size, (i + 1) * part))],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(readers)
    ]
    total = sum(int(p.communicate()[0].split()[0]) for p in procs)
    return total / (time.perf_counter() - t) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=2.0, help="memory size of the image (default 2)")
    parser.add_argument("--workdir", default="/tmp/memfs-bench")
    parser.add_argument("--cache-size", default="512M", help="decode cache of the mount (default 512M)")
    args = parser.parse_args(argv)
    from memfs.detect import open_image
    from scripts.make_hiberfil_fixtures import build_large

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    image = work / f"bench-{args.gib:g}g-huffman.hiberfil"
    if not image.exists():
        t = time.perf_counter()
        info = build_large(image, args.gib, "huffman")
        took = time.perf_counter() - t
        print(f"built {image}: {info['pages']} pages, {info['file_size']} bytes in {took:.1f}s")
    opens = []
    for cold in (True, False):
        if cold:
            _drop_page_cache()
        t = time.perf_counter()
        with open_image(str(image)) as src:
            opens.append(time.perf_counter() - t)
            index_bpp = src._index.nbytes() / src._index.pages
    rate, total = decode_rate(str(image))
    costs = lz4_costs(str(image))
    gib_out, gib_file = total / 2**30, image.stat().st_size / 2**30
    rows = [
        (
            "image",
            f"{image.name}: {gib_out:.2f} GiB of Huffman sets, file {gib_file:.2f} GiB",
        ),
        (
            "open time (in process)",
            f"cold page cache {opens[0] * 1000:.0f} ms, warm {opens[1] * 1000:.0f} ms; "
            f"index {index_bpp:.2f} bytes/page",
        ),
        ("raw Huffman decode, 1 core", f"{rate:.0f} MB/s"),
    ]
    mnt = work / "mnt"
    results = {}
    for readers in (1, 2):
        _drop_page_cache()
        pid = _mount(str(image), mnt, args.cache_size)
        try:
            cpu0 = _cpu_seconds(pid)
            cold = read_through(mnt, readers)
            cpu = _cpu_seconds(pid) - cpu0
            warm = read_through(mnt, readers)
            rss = _peak_rss_mib(pid)
        finally:
            _umount(mnt, pid)
        results[readers] = cold
        rows.append(
            (f"mount, {readers} reader(s), cold", f"{cold:.0f} MB/s ({cold / rate:.0%} of 1-core decode)")
        )
        # Load-independent view: daemon CPU per byte served vs the bare decoder's CPU per byte.
        efficiency = (total / rate / 1e6) / cpu if cpu else float("nan")
        rows.append(
            (
                f"daemon CPU, {readers} reader(s), cold",
                f"{cpu:.1f} s for {total / 2**30:.1f} GiB; bare decode would need "
                f"{total / rate / 1e6:.1f} s ({efficiency:.0%} of the daemon's CPU is decoding)",
            )
        )
        rows.append((f"mount, {readers} reader(s), warm", f"{warm:.0f} MB/s"))
        rows.append((f"daemon peak RSS ({readers} reader(s))", f"{rss:.0f} MiB (cache {args.cache_size})"))
    rows.append(
        (
            "lz4 second level (per 64 KiB set)",
            f"Huffman decode {costs['huffman_us']:.0f} us; lz4 compress {costs['lz4_compress_us']:.0f} us, "
            f"decompress {costs['lz4_decompress_us']:.0f} us, ratio {costs['lz4_ratio']:.2f}",
        )
    )
    rows.append(("target: 1 reader >= 70% of decode", "met" if results[1] >= 0.7 * rate else "NOT met"))
    rows.append(("target: 2 readers > 1 core", "met" if results[2] > rate else "NOT met"))
    rows.append(("load average (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
