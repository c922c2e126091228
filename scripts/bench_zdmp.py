#!/usr/bin/env python3
"""Benchmark DumpIt ``.zdmp`` reading: physmem.bin through a real mount against the LZNT1 codec alone.

Writes (or reuses) a ``.zdmp`` holding a DumpType 1 crash dump of ``--gib`` GiB of memory-like pages,
in DumpIt's 2 MiB blocks drawn from a pool of distinct blocks compressed once (so that building 1 GiB
takes seconds).  The input file stays in the page cache for every measurement: what is compared is
decoding, not the disk.

1. **The figure of issue 14**, in interleaved rounds (the machine is shared: each round measures both
   sides back to back, and the ratio is taken per round):

   * *codec alone*: this process ``os.pread``\\ s every block's payload and ``lznt1.decompress_into``\\ s
     it into a reused 2 MiB buffer, one thread;
   * *mount*: a fresh ``memfs mount`` (new daemon, empty caches), then
     ``dd if=MNT/physmem.bin of=/dev/null bs=1M`` (one reader, cold: nothing of physmem.bin cached yet);
     the daemon's CPU seconds are read from ``/proc`` before unmounting;
   * *control*: the same, mounting the decoded crash dump as a plain file (written once beside the
     ``.zdmp``): what FUSE and the crash dump reader cost with nothing to decode, i.e. the ceiling of
     any mount on the machine as loaded right now.

   Target: mount >= 0.7x the codec alone.

2. LZNT1 decode rate per core (thread CPU time): memfs.lznt1 over every block against dissect.util's
   pure-Python decoder over the first ``--dissect-blocks`` blocks.

3. The container layer in this process, per core and wall, 1 and 2 threads: the CRC32 of the payloads
   alone (the reader's: zlib-ng's when installed); ``ZdmpSource.readinto`` in 4 MiB reads (bulk: whole
   units decoded straight into the buffer, as ``memfs convert`` reads) and in 1 MiB reads starting
   8 KiB in (what FUSE asks of physmem.bin once a crash dump's 8 KiB header shifts the pages: units
   cut by the ends of each read, decoded chunk-exact straight into the buffer, docs/formats/zdmp.md
   §4.2).

Prints markdown tables with the machine's load.  Needs root (or FUSE rights) for the mount.

    python3 scripts/bench_zdmp.py [--gib 1] [--path /tmp/memfs-bench-dump.zdmp] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memfs import lznt1  # noqa: E402
from memfs.allocator import tune_malloc  # noqa: E402
from memfs.byte_source import FileByteSource  # noqa: E402
from memfs.containers.zdmp import ZdmpSource, crc32  # noqa: E402
from scripts.bench_xpress import UNIT, best_time, build_units  # noqa: E402
from scripts.make_crashdump_fixtures import PAGE, run_dump_header  # noqa: E402
from scripts.make_zdmp_fixtures import write_zdmp  # noqa: E402

BLOCK = 0x200000  # DumpIt's BlockSize (docs/formats/zdmp.md §2)


def build(path: Path, gib: float, pool_size: int = 24, seed: int = 5) -> None:
    """A .zdmp of a DumpType 1 dump of ``gib`` GiB of pages, one run from PFN 0."""
    pages = int(gib * (1 << 30)) // PAGE
    header = run_dump_header([(0, pages)])
    units = build_units(pool_size * BLOCK // (1 << 20), seed)
    per_block = BLOCK // UNIT
    blocks = [b"".join(units[i * per_block : (i + 1) * per_block]) for i in range(pool_size)]
    pool = [lznt1.compress(block) for block in blocks]
    size = len(header) + pages * PAGE
    count = -(-size // BLOCK)
    rng = random.Random(seed)
    payloads = [lznt1.compress(header + blocks[0][len(header) :])]
    payloads += [rng.choice(pool) for _ in range(count - 2)]
    payloads.append(lznt1.compress(blocks[1][: size - (count - 1) * BLOCK]))
    write_zdmp(path, payloads, size, BLOCK)


def codec_alone(path: Path, source: ZdmpSource, blocks: range) -> None:
    out = bytearray(BLOCK)
    fd = os.open(path, os.O_RDONLY)
    try:
        for index in blocks:
            start, size = source._payload(index)
            payload = os.pread(fd, size, start)
            lznt1.decompress_into(payload, memoryview(out)[: source._block_length(index)], True)
    finally:
        os.close(fd)


def crc_alone(path: Path, source: ZdmpSource, blocks: range) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        for index in blocks:
            start, size = source._payload(index)
            crc32(os.pread(fd, size, start))
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def through_mount(path: Path, mountpoint: Path) -> tuple[float, float, float]:
    """(seconds, bytes, daemon CPU seconds) of dd bs=1M over physmem.bin of a fresh mount of ``path``."""
    memfs = [sys.executable, "-m", "memfs"]
    result = subprocess.run(
        [*memfs, "mount", str(path), str(mountpoint)], capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise SystemExit(f"mount failed: {result.stderr.strip()}")
    pid = int(re.search(r"daemon pid (\d+)", result.stdout).group(1))
    try:
        target = mountpoint / "physmem.bin"
        cpu = _cpu_seconds(pid)
        started = time.perf_counter()
        subprocess.run(["dd", f"if={target}", "of=/dev/null", "bs=1M"], check=True, capture_output=True)
        seconds = time.perf_counter() - started
        return seconds, target.stat().st_size, _cpu_seconds(pid) - cpu
    finally:
        subprocess.run([*memfs, "umount", str(mountpoint)], capture_output=True, timeout=60)
        for _ in range(200):  # the daemon exits once unmounted
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)


def decoded_copy(path: Path, source: ZdmpSource) -> Path:
    """The decoded crash dump as a plain file beside ``path`` (the control mount's input), made once."""
    plain = path.with_suffix(".dmp")
    if not plain.exists() or plain.stat().st_size != source.size:
        out = bytearray(4 << 20)
        with open(plain, "wb") as handle:
            for offset in range(0, source.size, len(out)):
                handle.write(memoryview(out)[: source.readinto(offset, out)])
    return plain


def mount_figure(path: Path, source: ZdmpSource, rounds: int, control: Path | None) -> None:
    blocks = range(source.blocks_present)
    print(f"## physmem.bin through a fresh mount vs the codec alone ({rounds} interleaved rounds)\n")
    print(
        "| round | load | codec alone MB/s (CPU s) | mount MB/s, dd bs=1M (daemon CPU s) | mount / codec "
        "| control: plain dump mounted MB/s (daemon CPU s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    ratios = []
    with tempfile.TemporaryDirectory(prefix="zdmp-bench-") as workdir:
        mountpoint = Path(workdir) / "mnt"
        mountpoint.mkdir()
        for number in range(1, rounds + 1):
            started, cpu_started = time.perf_counter(), time.thread_time()
            codec_alone(path, source, blocks)
            codec = source.size / (time.perf_counter() - started) / 1e6
            codec_cpu = time.thread_time() - cpu_started
            seconds, size, cpu = through_mount(path, mountpoint)
            mount = size / seconds / 1e6
            ratios.append(mount / codec)
            plain = "—"
            if control is not None:
                plain_seconds, plain_size, plain_cpu = through_mount(control, mountpoint)
                plain = f"{plain_size / plain_seconds / 1e6:.0f} ({plain_cpu:.2f})"
            print(
                f"| {number} | {os.getloadavg()[0]:.2f} | {codec:.0f} ({codec_cpu:.2f}) "
                f"| {mount:.0f} ({cpu:.2f}) | {mount / codec:.2f}x | {plain} |"
            )
    print(
        f"\nmount / codec alone: median {statistics.median(ratios):.2f}x, best {max(ratios):.2f}x "
        "(target >= 0.7x)\n"
    )


def lznt1_rates(path: Path, source: ZdmpSource, dissect_blocks: int, repeat: int) -> None:
    from dissect.util.compression import lznt1 as dissect_lznt1

    fd = os.open(path, os.O_RDONLY)
    try:
        payloads = [os.pread(fd, size, start) for start, size in map(source._payload, range(64))]
    finally:
        os.close(fd)
    decoded = 64 * BLOCK
    out = bytearray(BLOCK)

    def ours() -> None:
        for payload in payloads:
            lznt1.decompress_into(payload, out, True)

    few = payloads[1 : 1 + dissect_blocks]  # not block 0: the others are whole 2 MiB blocks of pages
    assert all(dissect_lznt1.decompress(p) == lznt1.decompress(p, BLOCK) for p in few)
    memfs_rate = decoded / best_time(ours, repeat, time.thread_time) / 1e6
    started = time.thread_time()
    for payload in few:
        dissect_lznt1.decompress(payload)
    dissect_rate = len(few) * BLOCK / (time.thread_time() - started) / 1e6
    print("## LZNT1 decode per core (thread CPU time), 2 MiB blocks of the file\n")
    print("| decoder | MB/s per core |\n|---|---:|")
    print(f"| memfs.lznt1 (C) | {memfs_rate:.0f} |\n| dissect.util (pure Python) | {dissect_rate:.1f} |")
    print(f"\nmemfs.lznt1 / dissect.util: {memfs_rate / dissect_rate:.0f}x\n")


def layer_table(path: Path, source: ZdmpSource, repeat: int) -> None:
    size, n = source.size, source.blocks_present
    half = (n // 2) * BLOCK
    cases = {
        "codec alone (pread + decompress_into)": (
            lambda: codec_alone(path, source, range(n)),
            lambda: two_threads(lambda h: codec_alone(path, source, range(h * (n // 2), (n // 2) * (h + 1)))),
        ),
        "CRC32 of the payloads alone": (
            lambda: crc_alone(path, source, range(n)),
            lambda: two_threads(lambda h: crc_alone(path, source, range(h * (n // 2), (n // 2) * (h + 1)))),
        ),
        "ZdmpSource.readinto, 4 MiB reads (bulk)": (
            lambda: through_source(source, 0, size, 4 << 20),
            lambda: two_threads(lambda h: through_source(source, h * half, (h + 1) * half, 4 << 20)),
        ),
        "ZdmpSource.readinto, 1 MiB reads from 8 KiB on (as a mount reads)": (
            lambda: (source.cache.clear(), through_source(source, 0x2000, size, 1 << 20)),
            lambda: (
                source.cache.clear(),
                two_threads(lambda h: through_source(source, h * half + 0x2000, (h + 1) * half, 1 << 20)),
            ),
        ),
    }
    print("## The container layer in this process\n")
    print("| path | MB/s per core (CPU) | 1 thread wall MB/s | 2 threads wall MB/s | per core vs codec |")
    print("|---|---:|---:|---:|---:|")
    base = None
    for name, (one, two) in cases.items():
        core = size / best_time(one, repeat, time.thread_time) / 1e6
        wall1 = size / best_time(one, repeat) / 1e6
        wall2 = (2 * half) / best_time(two, repeat) / 1e6
        base = base or core
        print(f"| {name} | {core:.0f} | {wall1:.0f} | {wall2:.0f} | {core / base:.2f}x |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="decoded size in GiB (default 1)")
    parser.add_argument("--path", type=Path, default=Path("/tmp/memfs-bench-dump.zdmp"))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the mount figure")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions in-process, best is kept")
    parser.add_argument("--dissect-blocks", type=int, default=2, help="blocks dissect.util decodes")
    parser.add_argument("--no-mount", action="store_true", help="skip the mount figure")
    parser.add_argument(
        "--no-control", action="store_true", help="skip the control mount of the decoded dump (a 1 GiB file)"
    )
    args = parser.parse_args()
    tune_malloc()  # as the mount daemon does (docs/performance.md, malloc trap)
    if not args.path.exists() or args.path.stat().st_size < 0x1000:
        started = time.perf_counter()
        build(args.path, args.gib)
        print(f"built {args.path} in {time.perf_counter() - started:.1f} s")
    source = ZdmpSource(FileByteSource(str(args.path)), cache_size=64 << 20)
    on_disk = args.path.stat().st_size / 2**20
    print(
        f"{args.path}: a {source.size / 2**30:.2f} GiB crash dump in {source.blocks_present} blocks "
        "of 2 MiB, "
        f"{on_disk:.0f} MiB on disk; CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}\n"
    )
    through_source(source, 0, source.size, 4 << 20)  # the input into the page cache
    if not args.no_mount:
        control = None if args.no_control else decoded_copy(args.path, source)
        mount_figure(args.path, source, args.rounds, control)
    lznt1_rates(args.path, source, args.dissect_blocks, args.repeat)
    layer_table(args.path, source, args.repeat)
    source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
