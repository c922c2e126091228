"""Benchmark ``memfs convert --to raw`` of a Huffman hibernation file: two workers against one core.

Builds (or reuses) a hiberfil of ``--gib`` GiB of memory with the hibernation fixture builder
(``scripts.make_hiberfil_fixtures.build_large``: real Xpress Huffman sets of memory-like content), then,
in one run and on the same file:

1. ``decode x1``: one thread reading the ``physmem.bin`` view in 8 MiB chunks, nothing else — the
   one-core decode rate; ``decode x2``: the same on two threads (how well decoding alone scales);
   ``read_into x1``: one thread through ``read_into``, the bulk path convert uses;
2. ``convert -j1``, ``convert -j2`` and ``convert -j2 --no-hash``: the real conversion engine
   (:func:`memfs.convert.convert_file`: decoding, SHA-256, writing, fsync), each on a freshly opened
   source so no decoded set is cached between runs; ``convert 1 core``: ``-j1`` with the whole process
   pinned to one CPU (the one-core conversion rate: hashing then shares that core).

Opening the image is timed apart (``open``, as ``memfs convert`` does it: ``--to raw`` builds only
``physmem.bin``, no kernel discovery) and excluded from the rates.

Rates are MB/s of physical memory produced.  The target is ``convert -j2`` at >= 1.7x ``decode x1``.
On two cores the SHA-256 (serial) and the kernel's copy of every written byte share the cores with
decoding, so the script also prints the ceiling those costs allow.

    python3 -m scripts.bench_convert [--gib 2] [--dir /tmp/bench] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from memfs.allocator import tune_malloc
from memfs.cache import DEFAULT_CACHE_SIZE, parse_size
from memfs.convert import DEFAULT_CHUNK_SIZE, convert_file, select_file
from memfs.detect import OpenOptions, open_image

MB = 1_000_000


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def line(label: str, size: int, seconds: float, cpu: float, base: float | None = None) -> str:
    """Rate, and the cores actually used (CPU time / wall time): the machine is shared."""
    rate = size / seconds / MB
    text = f"{label:14} {size / MB:6.0f} MB in {seconds:6.2f} s  {rate:7.1f} MB/s"
    text += f"  {cpu / seconds:4.2f} cores busy"
    return text + (f"  ({rate / base:.2f}x decode x1)" if base else "")


def build_input(path: Path, gib: float) -> None:
    """The hiberfil, built once per size (reused when it exists)."""
    from scripts.make_hiberfil_fixtures import build_large

    if path.exists():
        return
    started = time.monotonic()
    info = build_large(path, gib, codec="huffman")
    seconds = time.monotonic() - started
    print(f"built {path}: {info['pages']} pages, {info['file_size'] / MB:.0f} MB in {seconds:.1f} s")


def decode_only(
    image: Path, options: OpenOptions, threads: int, into: bool = False
) -> tuple[float, int, float]:
    """Seconds, bytes and CPU seconds of ``threads`` threads reading the whole physmem.bin view in
    8 MiB chunks with nothing else: no hashing, no writing.

    ``into``: through ``read_into`` (the bulk path convert uses: units decoded straight into a reused
    buffer, no cache) instead of ``read`` (the mount's path)."""
    from concurrent.futures import ThreadPoolExecutor

    from memfs.convert import plan_chunks

    with open_image(str(image), options) as source:
        view = select_file(source, "raw")
        chunks = plan_chunks(view.data_extents(), view.size, DEFAULT_CHUNK_SIZE)
        started, cpu = time.monotonic(), cpu_seconds()
        with ThreadPoolExecutor(threads) as pool:
            if into:
                buffers = threading.local()

                def read(chunk: tuple[int, int]) -> int:
                    if not hasattr(buffers, "one"):
                        buffers.one = bytearray(DEFAULT_CHUNK_SIZE)
                    return view.read_into(chunk[0], memoryview(buffers.one)[: chunk[1]])

            else:

                def read(chunk: tuple[int, int]) -> int:
                    return len(view.read(*chunk))

            done = sum(pool.map(read, chunks))
        return time.monotonic() - started, done, cpu_seconds() - cpu


def control(out_dir: Path, seconds: float = 1.5) -> tuple[float, float, float, float]:
    """The machine's own figures in MB/s: Xpress Huffman decode on 1 and 2 threads, SHA-256, and
    ``pwrite`` of 8 MiB blocks into a new file in ``out_dir`` (the kernel's copy and page allocation).

    On a shared 2-vCPU machine other processes take cores; this control says what two threads of
    pure C decoding get right now, so the convert figures can be read against it.
    """
    import hashlib
    import threading

    from memfs import xpress

    unit = bytes(range(256)) * 64 + os.urandom(16 << 10) + bytes(32 << 10)
    packed = xpress.compress_huffman(unit)

    def rate(threads: int) -> float:
        done = [0] * threads
        stop = time.monotonic() + seconds

        def work(k: int) -> None:
            while time.monotonic() < stop:
                xpress.decompress_huffman(packed, len(unit))
                done[k] += len(unit)

        workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return sum(done) / seconds / MB

    block = os.urandom(8 << 20)
    started = time.monotonic()
    for _ in range(16):
        hashlib.sha256(block).digest()
    sha = 16 * len(block) / (time.monotonic() - started) / MB
    fd, temp = tempfile.mkstemp(dir=out_dir, prefix=".memfs-bench-write.")
    try:
        started = time.monotonic()
        for k in range(64):
            os.pwrite(fd, block, k * len(block))
        write = 64 * len(block) / (time.monotonic() - started) / MB
    finally:
        os.close(fd)
        os.unlink(temp)
    return rate(1), rate(2), sha, write


OPEN_SECONDS: list[float] = []
"""Wall time of ``open_image`` + ``select_file(.., "raw")`` in each conversion."""


def convert_once(
    image: Path,
    out: Path,
    jobs: int,
    options: OpenOptions,
    *,
    hash_output: bool = True,
    cpus: int | None = None,
) -> tuple[float, int, str | None, float]:
    """One conversion on a fresh source; ``cpus``: pin the process to that many CPUs meanwhile."""
    allowed = os.sched_getaffinity(0)
    if cpus is not None:
        os.sched_setaffinity(0, sorted(allowed)[:cpus])
    try:
        started = time.monotonic()
        with open_image(str(image), options) as source:
            view = select_file(source, "raw")
            OPEN_SECONDS.append(time.monotonic() - started)
            cpu = cpu_seconds()
            result = convert_file(view, str(out), jobs=jobs, force=True, hash_output=hash_output)
            cpu = cpu_seconds() - cpu
    finally:
        os.sched_setaffinity(0, allowed)
    out.unlink()
    return result.seconds, result.data_bytes, result.sha256, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=2.0, help="GiB of memory in the hiberfil (default 2)")
    parser.add_argument("--dir", help="work directory (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the built hiberfil for the next run")
    parser.add_argument(
        "--out-dir",
        help="where the conversions write (default /dev/shm when present: measures decoding, not the disk)",
    )
    parser.add_argument(
        "--cache-size",
        type=parse_size,
        default=DEFAULT_CACHE_SIZE,
        help="decode cache per run (default 256M)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best of each is shown (default 3)")
    args = parser.parse_args(argv)
    options = OpenOptions(cache_size=args.cache_size)
    tune_malloc()  # as `memfs convert` does
    if args.gib < 2:
        print("note: the issue asks for at least 2 GiB", file=sys.stderr)
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="memfs-bench-convert-"))
    work.mkdir(parents=True, exist_ok=True)
    image = work / f"hiberfil-{args.gib:g}g.sys"
    out_dir = Path(args.out_dir or ("/dev/shm" if os.path.isdir("/dev/shm") else work))
    try:
        build_input(image, args.gib)
        print(f"cpus available: {len(os.sched_getaffinity(0))}; load average: {os.getloadavg()[0]:.2f}")
        one, two, sha, write = control(out_dir)
        print(f"control: C Huffman decode {one:.0f} MB/s on 1 thread, {two:.0f} MB/s on 2 ({two / one:.2f}x)")
        print(f"control: SHA-256 {sha:.0f} MB/s (convert hashes everything it writes, on the main thread)")
        print(f"control: pwrite {write:.0f} MB/s into {out_dir} (CPU the kernel spends per byte written)")
        print(f"output written to {out_dir}; best of {args.repeat} interleaved rounds")
        out = out_dir / "memfs-bench-convert.raw"
        runs = {
            "decode x1": lambda: decode_only(image, options, 1),
            "decode x2": lambda: decode_only(image, options, 2),
            "read_into x1": lambda: decode_only(image, options, 1, into=True),
            "convert 1 core": lambda: convert_once(image, out, 1, options, cpus=1),
            "convert -j1": lambda: convert_once(image, out, 1, options),
            "convert -j2": lambda: convert_once(image, out, 2, options),
            "-j2 --no-hash": lambda: convert_once(image, out, 2, options, hash_output=False),
        }
        best: dict[str, tuple[float, int, float]] = {}
        digests = set()
        for _ in range(args.repeat):
            for label, run in runs.items():
                seconds, size, *rest = run()
                if label.startswith(("convert", "-j2")):
                    digest = rest.pop(0)
                    if digest is not None:
                        digests.add(digest)
                if label not in best or seconds < best[label][0]:
                    best[label] = (seconds, size, rest[0])
        assert len(digests) == 1, "the conversions wrote different bytes"
        base = best["decode x1"][1] / best["decode x1"][0] / MB
        for label, (seconds, size, cpu) in best.items():
            print(line(label, size, seconds, cpu, None if label == "decode x1" else base))
        opened = f"{min(OPEN_SECONDS):.2f}-{max(OPEN_SECONDS):.2f} s"
        print(f"open + physmem.bin view before each conversion: {opened}")
        rate = {label: size / seconds / MB for label, (seconds, size, _) in best.items()}
        print(
            f"convert -j2 / convert on 1 core = {rate['convert -j2'] / rate['convert 1 core']:.2f}x;  "
            f"convert -j2 / decode x1 = {rate['convert -j2'] / base:.2f}x (target >= 1.7x);  "
            f"--no-hash: {rate['-j2 --no-hash'] / base:.2f}x"
        )
        # Two cores shared by decoding, the hash and the writes: R/D + R/H + R/W = 2 cores.
        ceiling = 2 / (1 / base + 1 / sha)
        print(
            f"2-core ceiling estimate, SHA-256 included: {ceiling:.0f} MB/s ({ceiling / base:.2f}x decode x1)"
        )
        # What convert itself does: the bulk decode (read_into), the hash and the writes.
        ceiling = 2 / (1 / rate["read_into x1"] + 1 / sha + 1 / write)
        print(
            f"2-core ceiling estimate for convert (read_into x1, SHA-256 and writes): {ceiling:.0f} MB/s "
            f"({ceiling / base:.2f}x decode x1); convert -j2 reaches "
            f"{rate['convert -j2'] / ceiling:.0%} of it"
        )
        ceiling = 2 / (1 / rate["read_into x1"] + 1 / write)
        print(
            f"2-core ceiling estimate without the hash: {ceiling:.0f} MB/s "
            f"({ceiling / base:.2f}x decode x1); "
            f"--no-hash reaches {rate['-j2 --no-hash'] / ceiling:.0%} of it"
        )
    finally:
        if args.keep:
            pass
        elif args.dir:
            image.unlink(missing_ok=True)
        else:
            shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
