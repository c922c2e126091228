"""Container benchmarks, run by hand: physmem.bin through a real mount vs each library alone, and open times.

For each container (Snappy, S2, AVML, gzip, ZIP deflated member, tar member, EWF) holding the same
memory-like raw image (512 MiB: long enough that the start of a mount's pipeline does not weigh), and
that raw image itself (the FUSE path alone: the ceiling of every mount):

* ``mount``: a fresh ``memfs mount`` of the container, then ``dd if=physmem.bin of=/dev/null bs=1M``
  (the kernel asks in 128 KiB–1 MiB pieces, several FUSE threads serve them); MB/s of physmem.bin;
* ``layer``: the memfs layer alone, read sequentially in 1 MiB ``readinto`` pieces in this process
  (what ``convert`` does; the difference to ``mount`` is the FUSE path);
* ``alone``: the library decoding the same file in one process without memfs: cramjam's framed
  decoder (Snappy, and AVML's frames), klauspost's own decoder (``go_s2 decode``, S2), rapidgzip
  (gzip), ``zipfile`` (ZIP), ``tarfile`` (tar), dissect.evidence (EWF), ``os.pread`` (raw);
* open time of a 16 GiB image: S2 with a seek index (index parse only), Snappy and AVML (chunk-header
  walk) and a tar member (header listing) on synthetic images built from repeated chunks; EWF with
  ``--ewf-16g`` (ewfacquire of 16 GiB of zeros, slow to make); gzip with ``--gzip-16g`` (the gzip
  of the throughput image, concatenated into a 16 GiB multi-member stream: its index pass must inflate
  everything once, as for a deflated ZIP member);
* CPU per byte of the mount (daemon and dd) and of the library alone, and from them each container's
  ceiling on this machine: cores / (FUSE's own cost per byte + the library's), what a mount could reach
  with every core busy all the time (docs/benchmarks.md explains the columns).

Rounds interleave the measurements (mount, layer, alone, next container) and the best of each is kept:
on a shared machine that is the fairest comparison.  Ratios are only meaningful within one run; say the
machine's load next to any figure.  Mounting needs FUSE (root, or fusermount3).

Usage: ``python3 -m scripts.bench_containers [--mib 512] [--rounds 3] [--work DIR] [--no-mount]
[--no-16g] [--ewf-16g]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import subprocess
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from memfs.byte_source import FileByteSource
from memfs.detect import open_image
from memfs.formats.base import OpenOptions
from scripts import make_container_fixtures as make
from scripts.bench_read import _cpu_seconds as process_cpu_seconds  # utime + stime of a process, /proc
from scripts.bench_targets import children_cpu_seconds, memfs_mount

GIB16 = 16 << 30
MIB = 1 << 20
RAW = "raw (no container)"
"""The row of the image without a container: what FUSE alone costs."""
REPO = Path(__file__).resolve().parent.parent


def _image(mib: int) -> bytes:
    tile = make.memory_like(4096, seed=3)  # 16 MiB of memory-like pages, tiled
    return (tile * (mib // 16 + 1))[: mib * MIB]


def _go_tool(work: Path) -> Path | None:
    source = REPO / "tests/containers/go_s2"
    if shutil.which("go") is None or not Path("/usr/share/gocode/src/github.com/klauspost/compress").is_dir():
        return None
    out = work / "go_s2"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOFLAGS": ""}
    env["GOCACHE"] = str(work / "gocache")
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=source, env=env, check=True)
    return out


# -- the measurements --------------------------------------------------------------------------------------


def _rate(size: int, seconds: float) -> float:
    return size / seconds / 1e6


@dataclass
class Measured:
    """One timed read: MB/s, and the CPU it took in nanoseconds per byte (every thread, every core)."""

    rate: float
    cpu_ns_per_byte: float


def _cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of every child it has waited for."""
    return time.process_time() + children_cpu_seconds()


def measure_mount(path: Path, work: Path) -> Measured:
    """``dd bs=1M`` over physmem.bin of a fresh ``memfs mount`` of ``path`` (mounting is not timed).

    The CPU of serving is the daemon's CPU time during the read (``/proc``, in clock ticks: use images
    of a few hundred MiB for a precise figure) plus dd's.
    """
    with memfs_mount(path, work / "mnt") as mounted:
        physmem = mounted.path / "physmem.bin"
        size = physmem.stat().st_size
        daemon_cpu, cpu, start = process_cpu_seconds(mounted.pid), _cpu_seconds(), time.perf_counter()
        subprocess.run(["dd", f"if={physmem}", "of=/dev/null", "bs=1M"], check=True, capture_output=True)
        seconds, dd_cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        daemon_cpu = process_cpu_seconds(mounted.pid) - daemon_cpu
    return Measured(_rate(size, seconds), (daemon_cpu + dd_cpu) / size * 1e9)


def measure_layer(path: Path) -> tuple[float, float]:
    """``(open seconds, MB/s)``: open_image of ``path`` and its physical memory read in 1 MiB pieces."""
    start = time.perf_counter()
    source = open_image(str(path), OpenOptions())
    opened = time.perf_counter() - start
    try:
        buf = memoryview(bytearray(MIB))
        start = time.perf_counter()
        for pa in range(0, source.size, MIB):
            source.read_into(pa, buf)
        return opened, _rate(source.size, time.perf_counter() - start)
    finally:
        source.close()


def _timed_rate(decode) -> Measured:
    cpu, start = _cpu_seconds(), time.perf_counter()
    size = decode()
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    return Measured(_rate(size, seconds), cpu / size * 1e9)


def alone_file(path: Path) -> Measured:
    def read() -> int:
        fd, buf, total = os.open(path, os.O_RDONLY), bytearray(MIB), 0
        try:
            while got := os.preadv(fd, [buf], total):
                total += got
        finally:
            os.close(fd)
        return total

    return _timed_rate(read)


def alone_snappy(path: Path) -> Measured:
    import cramjam

    return _timed_rate(lambda: len(cramjam.snappy.decompress(path.read_bytes())))


def alone_go(go: Path, path: Path, size: int) -> Measured:
    def decode() -> int:
        subprocess.run([go, "decode", path, "/dev/null"], check=True)
        return size

    return _timed_rate(decode)


def alone_avml(path: Path) -> Measured:
    """cramjam's framed decoder over each AVML block's frames (the 32-byte headers and trailers skipped)."""
    import cramjam

    def decode() -> int:
        data, pos, total = path.read_bytes(), 0, 0
        while pos < len(data):
            first, last = struct.unpack_from("<QQ", data, pos + 8)
            stream_at = pos + 32
            # the trailer after the frames states their length; find it by walking the chunk headers
            end, want, got = stream_at, last - first + 1, 0
            while got < want:
                kind, length = data[end], int.from_bytes(data[end + 1 : end + 4], "little")
                if kind == 0x00:
                    got += cramjam.snappy.decompress_raw_len(data[end + 8 : end + 4 + length])
                elif kind == 0x01:
                    got += length - 4
                end += 4 + length
            total += len(cramjam.snappy.decompress(data[stream_at:end]))
            pos = end + 8
        return total

    return _timed_rate(decode)


def _drain(handle) -> int:
    """Read a file object to its end in 1 MiB pieces; the bytes read."""
    total = 0
    while chunk := handle.read(MIB):
        total += len(chunk)
    return total


def alone_rapidgzip(path: Path) -> Measured:
    import rapidgzip

    def decode() -> int:
        with rapidgzip.open(str(path), parallelization=os.cpu_count() or 1) as handle:
            return _drain(handle)

    return _timed_rate(decode)


def alone_zipfile(path: Path) -> Measured:
    def decode() -> int:
        with zipfile.ZipFile(path) as archive, archive.open(archive.infolist()[0]) as member:
            return _drain(member)

    return _timed_rate(decode)


def alone_tarfile(path: Path) -> Measured:
    def decode() -> int:
        with tarfile.open(path) as archive:
            return _drain(archive.extractfile(archive.getmembers()[0]))

    return _timed_rate(decode)


def alone_dissect(segments: list[str]) -> Measured:
    from dissect.evidence.ewf import EWF

    def decode() -> int:
        handles = [open(p, "rb") for p in segments]  # noqa: SIM115 - closed below
        try:
            return _drain(EWF(handles).open())
        finally:
            for handle in handles:
                handle.close()

    return _timed_rate(decode)


# -- the benchmark -----------------------------------------------------------------------------------------


def build_containers(work: Path, mib: int) -> list[tuple[str, Path, object, str]]:
    """``(name, container file, "alone" measurement, what "alone" is)`` for every container."""
    data = _image(mib)
    raw = work / "image.raw"
    raw.write_bytes(data)
    go = _go_tool(work)
    rows = [(RAW, raw, lambda p=raw: alone_file(p), "os.pread of the file")]

    path = work / "image.snappy"
    if go is not None:  # go-winpmem's writer
        subprocess.run([go, "write", "snappy", raw, path], check=True)
    else:
        path.write_bytes(make.snappy_stream(data))
    rows.append(("snappy", path, lambda p=path: alone_snappy(p), "cramjam framed decoder"))

    if go is not None:
        path = work / "image.s2"
        subprocess.run([go, "write", "s2", raw, path], check=True)
        rows.append(("s2", path, lambda p=path: alone_go(go, p, len(data)), "klauspost s2 (go_s2 decode)"))
    else:
        print("s2: skipped (needs go and golang-github-klauspost-compress-dev)")

    path = work / "image.avml"
    path.write_bytes(make.avml_image([(0, data)]))
    rows.append(("avml", path, lambda p=path: alone_avml(p), "cramjam framed decoder per block"))

    path = work / "image.gz"
    with path.open("wb") as out:
        subprocess.run(["gzip", "-1", "-c", str(raw)], check=True, stdout=out)
    rows.append(("gzip", path, lambda p=path: alone_rapidgzip(p), "rapidgzip alone"))

    path = work / "image.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        out.write(raw, "C/PhysicalMemory.raw")
    rows.append(("zip(deflate)", path, lambda p=path: alone_zipfile(p), "zipfile member read"))

    path = work / "image.tar"
    with tarfile.open(path, "w") as out:
        out.add(raw, "mem/PhysicalMemory.raw")
    rows.append(("tar", path, lambda p=path: alone_tarfile(p), "tarfile member read"))

    first = make.ewf_image(work, "evidence", data, segment_bytes=64 << 20)
    if first is not None:
        from memfs.containers import ewf

        segments = ewf.segment_paths(str(first))
        note = f"dissect.evidence ({len(segments)} segments)"
        rows.append(("ewf", first, lambda s=segments: alone_dissect(s), note))
    else:
        print("ewf: skipped (needs ewfacquire: apt ewf-tools)")
    return rows


def bench_throughput(work: Path, mib: int, rounds: int, mount: bool) -> None:
    rows = build_containers(work, mib)
    rates: dict[str, dict[str, list[float]]] = {name: {"open": [], "mount": [], "layer": [], "alone": []}
                                                  for name, *_ in rows}  # fmt: skip
    cpu: dict[str, dict[str, list[float]]] = {name: {"mount": [], "alone": []} for name, *_ in rows}
    loads = []
    for _ in range(rounds):
        for name, path, alone, _ in rows:
            loads.append(os.getloadavg()[0])
            if mount:
                served = measure_mount(path, work)
                rates[name]["mount"].append(served.rate)
                cpu[name]["mount"].append(served.cpu_ns_per_byte)
            opened, rate = measure_layer(path)
            rates[name]["open"].append(opened)
            rates[name]["layer"].append(rate)
            alone_run = alone()
            rates[name]["alone"].append(alone_run.rate)
            cpu[name]["alone"].append(alone_run.cpu_ns_per_byte)
    print(
        f"\nphysmem.bin of a {mib} MiB image, MB/s, best (median) of {rounds} interleaved rounds; "
        f"load {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'container':<14}{'open s':>8}{'mount':>16}{'layer':>16}{'alone':>16}  mount/alone  alone is")
    for name, *_, note in rows:
        r = rates[name]
        cells = "".join(
            f"{max(r[k]):>8.0f} ({statistics.median(r[k]):>4.0f})" if r[k] else f"{'-':>16}"
            for k in ("mount", "layer", "alone")
        )
        ratio = f"{max(r['mount']) / max(r['alone']):>11.2f}" if r["mount"] else f"{'-':>11}"
        print(f"{name:<14}{min(r['open']):>8.2f}{cells}  {ratio}  {note}")
    if mount:
        print_cpu_ceilings(rows, rates, cpu)


def print_cpu_ceilings(rows, rates, cpu) -> None:
    """What the machine's cores allow a mount of each container, from the CPU each step was measured to cost.

    A mount must both decode (at least the CPU the library alone spends per byte) and serve through FUSE
    (the CPU per byte a mount of the plain raw file costs, daemon and reader together, less what reading
    that file alone costs).  With every core busy all the time, the mount's rate cannot exceed
    cores / (decode + FUSE) per byte: the ceiling.  When 0.7x the library's rate alone is above the
    ceiling, no mount on this machine reaches it.
    """
    cores = os.cpu_count() or 1
    fuse = statistics.median(cpu[RAW]["mount"]) - statistics.median(cpu[RAW]["alone"])
    print(
        f"\nCPU per byte (ns, median): FUSE serving {fuse:.2f} (the raw mount less os.pread); "
        f"ceiling = {cores} cores / (FUSE + the library's own CPU alone)"
    )
    print(f"{'container':<14}{'mount ns/B':>11}{'alone ns/B':>11}{'ceiling':>9}{'mount':>7}"
          f"{'0.7x alone':>11}  reachable")  # fmt: skip
    for name, *_ in rows:
        alone_cpu = statistics.median(cpu[name]["alone"])
        ceiling = cores / (fuse + alone_cpu) * 1e3  # bytes per ns -> MB/s
        wanted = 0.7 * max(rates[name]["alone"])
        mount_rate = max(rates[name]["mount"])
        print(
            f"{name:<14}{statistics.median(cpu[name]['mount']):>11.2f}{alone_cpu:>11.2f}{ceiling:>9.0f}"
            f"{mount_rate:>7.0f}{wanted:>11.0f}  {'yes' if wanted <= ceiling else 'no'}"
            f" (mount at {mount_rate / ceiling:.0%} of the ceiling)"
        )


# -- open time of 16 GiB images ----------------------------------------------------------------------------


def bench_open_16g(work: Path, ewf_16g: bool, gzip_16g: bool) -> None:
    """Open times of 16 GiB images built from repeated chunks (nothing is encoded 16 GiB long)."""
    print(f"\nopen time of a 16 GiB image, warm page cache (load {os.getloadavg()[0]:.2f})")
    path = work / "big"
    block = MIB
    ident, chunk = make.framed_chunks(bytes(block), block, make.s2_block, b"S2sTwO")
    entries, offset = [], len(ident)
    for n in range(GIB16 // block):
        entries.append((n * block, offset))
        offset += len(chunk)
    with path.open("wb") as out:
        out.write(ident)
        out.write(chunk * (GIB16 // block))
        out.write(make.s2_index(entries, GIB16, offset, block))
    _report_open("S2 with seek index (16,384 entries)", path)

    piece = 65536 - 8
    ident, chunk = make.framed_chunks(bytes(piece), piece, make.snappy_block, b"sNaPpY")
    path.write_bytes(ident + chunk * (GIB16 // piece))
    _report_open(f"Snappy, chunk headers walked ({GIB16 // piece} chunks)", path)

    # AVML: 16 MiB blocks of a non-zero page (all-zero blocks are left out by AVML), 256 chunks each.
    page = bytes(range(256)) * 16
    frames = b"".join(make.framed_chunks(page * 16, 65536, make.snappy_block, b"sNaPpY"))
    ident, chunk = frames[:10], frames[10:]
    stream = ident + chunk * 256
    with path.open("wb") as out:
        for n in range(GIB16 // (16 * MIB)):
            first = n * 16 * MIB
            out.write(struct.pack("<IIQQQ", 0x4C4D5641, 2, first, first + 16 * MIB - 1, 0))
            out.write(stream + struct.pack("<Q", len(stream)))
    _report_open(f"AVML, block and chunk headers walked ({GIB16 // 65536} chunks)", path)

    # tar: one 16 GiB member, its data a hole (the listing reads headers only).
    with path.open("wb") as out:
        info = tarfile.TarInfo("PhysicalMemory.raw")
        info.size = GIB16
        out.write(info.tobuf(tarfile.GNU_FORMAT))
        out.truncate(512 + GIB16 + 1024)
    _report_open("tar member (listing)", path)
    path.unlink()

    if ewf_16g:
        zeros = work / "zeros16g.raw"
        with zeros.open("wb") as out:
            out.truncate(GIB16)
        start = time.perf_counter()
        first = _ewf_from(zeros, work)
        print(f"  (ewfacquire made the 16 GiB EWF image in {time.perf_counter() - start:.0f} s)")
        _report_open("EWF, table sections parsed", first)
        for segment in work.glob("big16g.E*"):
            segment.unlink()
        zeros.unlink()
    small = work / "image.gz"
    if gzip_16g and small.exists():
        decoded = _gzip_size(small)
        with path.open("wb") as out:
            piece = small.read_bytes()
            for _ in range(GIB16 // decoded):
                out.write(piece)  # concatenated gzip members are one gzip stream (docs/formats/gzip.md §1)
        _report_open(f"gzip, index pass over {path.stat().st_size / 1e9:.1f} GB compressed", path)
        path.unlink()
    else:
        print("  gzip / ZIP deflate: the index pass inflates everything once (--gzip-16g measures it)")


def _gzip_size(path: Path) -> int:
    import gzip

    with gzip.open(path) as handle:
        return handle.seek(0, 2)


def _ewf_from(raw: Path, work: Path) -> Path:
    target = work / "big16g"
    subprocess.run(
        ["ewfacquire", "-u", "-t", str(target), "-f", "encase6", "-c", "deflate:fast", "-S", "2GiB",
         "-b", "64", "-C", "bench", "-D", "zeros", "-e", "memfs", "-E", "1", "-N", "none", "-q", str(raw)],
        check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return work / "big16g.E01"


def _report_open(label: str, path: Path) -> None:
    from memfs.detect import detect
    from memfs.formats.base import ProbeInput

    with FileByteSource(str(path)) as probe_source:
        spec = detect(ProbeInput.of(probe_source))
    source = FileByteSource(str(path))
    start = time.perf_counter()
    stream = spec.open(source, OpenOptions())
    took = time.perf_counter() - start
    print(f"  {label}: {took:.2f} s, {stream.size / (1 << 30):.2f} GiB decoded")
    stream.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", default=None)
    parser.add_argument("--no-mount", action="store_true", help="skip the FUSE measurements")
    parser.add_argument("--no-16g", action="store_true", help="skip the 16 GiB open-time measurements")
    parser.add_argument("--ewf-16g", action="store_true", help="also make and open a 16 GiB EWF image")
    parser.add_argument("--gzip-16g", action="store_true", help="also open a 16 GiB gzip image (7 GB)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-containers-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        bench_throughput(work, args.mib, args.rounds, mount=not args.no_mount)
        if not args.no_16g:
            bench_open_16g(work, args.ewf_16g, args.gzip_16g)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
