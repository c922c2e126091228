"""Compressed and wrapped evidence mounted for real: every container memfs registers, end to end.

For each container fixture (scripts/make_container_fixtures.py): physmem.bin through the mount is the
memory image the container holds, byte for byte; kdmp-parser and Volatility 3 open the memory.dmp built
on it and find its pages; ``memfs convert`` writes the same two files; ``info --json`` lists the layers.
A corrupt chunk gives EIO for the pages it holds and nothing else, logged once and counted.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import struct
from pathlib import Path

import pytest

from memfs.detect import open_image
from memfs.kernel.discover import discover
from memfs.memory import PAGE_SIZE
from memfs.views.tree import build_files
from tests.containers.conftest import fixtures  # noqa: F401 (the container fixtures, built once)
from tests.containers.test_registry import STACKS
from tests.digest import sha256
from tests.integration.conftest import run_memfs
from tests.readers import kdmp_read_pages, vol3_crash_read

MOUNTED = ["raw.snappy", "raw.s2", "raw-index.s2", "image.avml", "image.E01", "triage.zip", "crash.dmp.gz"]
MOUNTED += ["image.tar", "image.tar.gz", "collection.zip"]


def _built(fixtures, name: str):  # noqa: F811 (the fixture imported above)
    if name not in fixtures:
        pytest.skip(f"{name} not built (ewfacquire from apt ewf-tools is missing)")
    return fixtures[name]


def _expected_files(path: Path) -> tuple[dict[str, str], set[int], set[int]]:
    """What the mount must serve, from the memory image alone: SHA-256 of physmem.bin and memory.dmp,
    the present pages, and the pages memory.dmp overlays with decoded values (docs/formats/crashdump.md
    §15.2)."""
    with open_image(str(path)) as source:
        files = build_files(source, discover(source))
        digests = {
            name: hashlib.sha256(file.read(0, file.size)).hexdigest()
            for name, file in files.items()
            if name != "header.txt"
        }
        present = {pa for start, length in source.runs for pa in range(start, start + length, PAGE_SIZE)}
        overlaid = {
            page & ~(PAGE_SIZE - 1)
            for pa, patch, _ in files["memory.dmp"].overlays
            for page in (pa, pa + len(patch) - 1)
        }
    return digests, present, overlaid


@pytest.mark.parametrize("name", MOUNTED)
def test_container_mounts_end_to_end(fixtures, tmp_path, mount_image, name):  # noqa: F811
    built = _built(fixtures, name)
    bare = tmp_path / f"{name}.bare"
    bare.write_bytes(built.bare)
    digests, present, overlaid = _expected_files(bare)

    mnt = mount_image(built.path)
    assert sorted(os.listdir(mnt)) == ["header.txt", "memory.dmp", "physmem.bin"]
    physmem = (mnt / "physmem.bin").read_bytes()
    assert hashlib.sha256(physmem).hexdigest() == digests["physmem.bin"]  # every page: the bare image's
    # The readers below keep files open (Volatility caches its layers): they read a copy.
    dmp = tmp_path / "mounted.dmp"
    dmp.write_bytes((mnt / "memory.dmp").read_bytes())
    assert sha256(dmp) == digests["memory.dmp"]
    header = (mnt / "header.txt").read_text()
    assert re.search(rf"^Layers *: {' -> '.join(STACKS[name])}$", header, re.M)
    assert re.search(rf"^Source file *: {re.escape(str(built.path))}$", header, re.M)

    # Independent readers of the memory.dmp built on the stack.
    pages = kdmp_read_pages(dmp)
    assert set(pages) == present
    for pa, data in pages.items():
        if pa not in overlaid:
            assert data == physmem[pa : pa + PAGE_SIZE], hex(pa)
    for pa in sorted(present)[:: max(len(present) // 64, 1)]:
        assert vol3_crash_read(dmp, pa, PAGE_SIZE) == pages[pa], hex(pa)

    # convert writes the mount's files; info --json lists the layers.
    for to, file_name in (("raw", "physmem.bin"), ("dmp", "memory.dmp")):
        out = tmp_path / f"out.{to}"
        result = run_memfs("convert", str(built.path), str(out), "--to", to, "-q")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[0] == sha256(out) == digests[file_name]
    result = run_memfs("info", "--json", str(built.path))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert [(layer["kind"], layer["format"]) for layer in info["layers"]] == [
        *(("container", fmt) for fmt in STACKS[name][:-1]),
        ("memory", STACKS[name][-1]),
    ]
    assert info["layers"][0]["name"] == str(built.path)
    assert info["format"] == STACKS[name][-1]


# -- a corrupt chunk through the mount ---------------------------------------------------------------------


def _chunks(data: bytes, start: int, end: int):
    """``(offset, type, length)`` of the framed chunks in ``data[start:end]`` (docs/formats/snappy-s2.md
    §1.1)."""
    pos = start
    while pos < end:
        length = int.from_bytes(data[pos + 1 : pos + 4], "little")
        yield pos, data[pos], length
        pos += 4 + length


def _corrupt_framed(data: bytearray, start: int = 0) -> tuple[int, int]:
    """Flip a byte inside the third compressed chunk from ``start``; return the decoded ``(offset, size)``
    of that chunk, counted from the first data chunk after ``start``."""
    decoded = 0
    compressed = 0
    for pos, kind, length in _chunks(bytes(data), start, len(data)):
        if kind not in (0x00, 0x01):
            continue
        body = bytes(data[pos + 8 : pos + 4 + length])
        if kind == 0x01:
            size = len(body)
        else:
            size, shift, i = 0, 0, 0
            while True:  # the uvarint decoded length that starts a compressed block
                size |= (body[i] & 0x7F) << shift
                if not body[i] & 0x80:
                    break
                shift, i = shift + 7, i + 1
            compressed += 1
            if compressed == 3:
                data[pos + 4 + length // 2] ^= 0x55
                return decoded, size
        decoded += size
    raise AssertionError("fewer than three compressed chunks")


def _bad_range(name: str, built, data: bytearray) -> tuple[int, int]:
    """Damage one chunk of ``data`` (a copy of the fixture); return the physical range it held."""
    if name in ("raw.snappy", "raw-index.s2"):
        return _corrupt_framed(data)
    if name == "image.avml":  # the first AVML block: a 32-byte header, then its frames (256 pages)
        first = struct.unpack_from("<Q", data, 8)[0]
        offset, size = _corrupt_framed(data, 32)
        return first + offset, size
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["raw.snappy", "raw-index.s2", "image.avml", "image.E01"])
def test_corrupt_chunk_is_eio_for_its_pages_only(fixtures, tmp_path, mount_image, name):  # noqa: F811
    built = _built(fixtures, name)
    bare = tmp_path / "bare"
    bare.write_bytes(built.bare)
    with open_image(str(bare)) as direct:
        want = direct.read(0, direct.size)
    if name == "image.E01":
        bad_path, (start, size) = _corrupt_ewf_chunk(built, tmp_path)
    else:
        data = bytearray(built.path.read_bytes())
        start, size = _bad_range(name, built, data)
        bad_path = tmp_path / f"bad-{built.path.name}"
        bad_path.write_bytes(bytes(data))
    log = tmp_path / "memfs.log"
    mnt = mount_image(bad_path, "--log-file", str(log))
    mount_stderr = mount_image.results[mnt].stderr  # discovery, before the daemon starts, may meet the chunk
    bad_pages = set(range(start & ~(PAGE_SIZE - 1), start + size, PAGE_SIZE))
    failed = set()
    fd = os.open(mnt / "physmem.bin", os.O_RDONLY)
    try:
        for _ in range(2):  # a second pass: the bad pages fail again, and are not logged again
            for pa in range(0, len(want), PAGE_SIZE):
                try:
                    got = os.pread(fd, PAGE_SIZE, pa)
                except OSError as exc:
                    assert exc.errno == errno.EIO
                    failed.add(pa)
                else:
                    assert got == want[pa : pa + PAGE_SIZE], hex(pa)
    finally:
        os.close(fd)
    assert failed == bad_pages
    header = (mnt / "header.txt").read_text()
    assert re.search(r"^Units that failed to decode : 1$", header, re.M), header
    assert re.search(rf"^in layer 1 \({STACKS[name][0]}\) +: 1$", header, re.M)
    lines = mount_stderr.splitlines() + log.read_text().splitlines()
    messages = [line for line in lines if str(bad_path) in line and "ERROR" in line]
    assert len(messages) == 1, messages


def _corrupt_ewf_chunk(built, tmp_path: Path) -> tuple[Path, tuple[int, int]]:
    """Copy the segments, flip a byte in a compressed chunk of the first; return its media range."""
    import shutil

    from memfs.containers import ewf
    from tests.containers.file_source import FileSource

    for segment in ewf.segment_paths(str(built.path)):
        shutil.copy(segment, tmp_path)
    first = tmp_path / built.path.name
    stream = ewf.open_stream([FileSource(p) for p in ewf.segment_paths(str(first))])
    try:
        victim = next(i for i in range(3, stream.units) if stream._packed[i] and stream._seg[i] == 0)
        offset, span = stream._off[victim] + 100, stream.unit_span(victim)
    finally:
        stream.close()
    data = bytearray(first.read_bytes())
    data[offset] ^= 0xFF
    first.write_bytes(bytes(data))
    return first, span


def test_gzip_image_of_128_mib(tmp_path, mount_image):
    """The mount daemon is forked after the image is opened; rapidgzip's threads do not survive a fork,
    so a read that needed them waited forever (from about 128 MiB: smaller streams are decoded whole
    while indexed).  The read runs in a child process with a time limit, so a regression fails instead
    of hanging the suite."""
    import gzip
    import subprocess

    from scripts.make_container_fixtures import memory_like

    data = memory_like(4096, seed=22) * 8  # 128 MiB, 16 MiB of memory-like pages repeated
    path = tmp_path / "image.raw.gz"
    path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    mnt = mount_image(path)
    read = subprocess.run(
        ["dd", f"if={mnt / 'physmem.bin'}", "of=/dev/stdout", "bs=1M", "status=none"],
        capture_output=True,
        timeout=60,
    )
    assert read.returncode == 0
    assert hashlib.sha256(read.stdout).digest() == hashlib.sha256(data).digest()
