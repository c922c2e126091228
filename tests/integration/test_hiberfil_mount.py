"""Hibernation files through a real FUSE mount: physmem.bin has the source image's sha256."""

from __future__ import annotations

import errno
import os
import random
import struct
import threading

import pytest

from scripts import make_hiberfil_fixtures as mk
from tests import leechcore
from tests.digest import sha256

PAGE = 0x1000


@pytest.mark.parametrize(
    "name", ["win7-x64", "xp-x86", "win11-24h2-x64", "win10-1809-x86", "win10-1809-x64-zeroed"]
)
def test_physmem_through_fuse(mount_image, fixture_dir, name):
    info = mk.build_fixture(name, fixture_dir)
    mnt = mount_image(info.path)
    physmem = mnt / "physmem.bin"
    assert physmem.stat().st_size == info.physmem_size
    assert sha256(physmem) == info.sha256
    header = (mnt / "header.txt").read_text()
    assert "[Hibernation file]" in header
    assert f"{info.cr3:#x}" in header


def test_damaged_set_gives_eio_for_its_pages_only(mount_image, tmp_path):
    info = mk.build_fixture("win10-1809-x64", tmp_path)
    data = bytearray(info.path.read_bytes())
    # The first boot-phase set starts at page 8 (builder layout); smash its data, keep its header.
    off = 8 * PAGE
    head = struct.unpack_from("<I", data, off)[0]
    count, size = head & 0xFF, (head >> 8) & 0x3FFFFF
    first_pfn = struct.unpack_from("<Q", data, off + 4)[0] >> 4
    pages = sum((struct.unpack_from("<Q", data, off + 4 + 8 * i)[0] & 0xF) + 1 for i in range(count))
    assert size != pages * PAGE, "builder changed: the first set is stored, pick another"
    start = off + 4 + 8 * count
    data[start : start + size] = b"\xff" * size
    image = tmp_path / "damaged.hiberfil"
    image.write_bytes(bytes(data))
    expected = mk.build_bytes("win10-1809-x64")[1]
    mnt = mount_image(image)
    fd = os.open(mnt / "physmem.bin", os.O_RDONLY)
    try:
        with pytest.raises(OSError) as exc:
            os.pread(fd, PAGE, first_pfn * PAGE)
        assert exc.value.errno == errno.EIO
        far = len(expected) - PAGE
        assert os.pread(fd, PAGE, far) == expected[far:]
    finally:
        os.close(fd)
    header = (mnt / "header.txt").read_text()
    assert "Units that failed to decode : 1" in header


def test_leechcore_reads_what_the_mount_serves(mount_image, tmp_path):
    """LeechCore, an independent reader (tests/leechcore.py), against physmem.bin read through FUSE."""
    leechcore.require_leechcore()
    info = mk.build_fixture("win11-24h2-x64", tmp_path)
    image = leechcore.padded_copy(info.path, tmp_path)
    physmem = (mount_image(image) / "physmem.bin").read_bytes()
    result = leechcore.compare(image, physmem, info.sets, info.header["HighestPhysicalPage"])
    assert result.compared == info.pages - result.unserved > 0


def test_random_pages_and_concurrent_readers_through_fuse(mount_image, fixture_dir):
    """Small random reads (units decoded only in part) and two readers at once (requests split over the
    daemon's helper threads) return the image's bytes through a real mount."""
    info = mk.build_fixture("win11-24h2-x64", fixture_dir)
    expected = mk.build_bytes("win11-24h2-x64")[1]
    mnt = mount_image(info.path, "--cache-size", "256K")
    fd = os.open(mnt / "physmem.bin", os.O_RDONLY)
    try:
        rng = random.Random(12)
        for _ in range(400):
            pa = rng.randrange(len(expected) // PAGE) * PAGE
            assert os.pread(fd, PAGE, pa) == expected[pa : pa + PAGE], f"page at {pa:#x}"
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # make the kernel ask the daemon again
        results: dict[int, bytes] = {}
        half = len(expected) // 2

        def read(start: int, end: int) -> None:
            results[start] = b"".join(
                os.pread(fd, min(1 << 20, end - pa), pa) for pa in range(start, end, 1 << 20)
            )

        readers = [
            threading.Thread(target=read, args=(0, half)),
            threading.Thread(target=read, args=(half, len(expected))),
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(60)
        assert results[0] + results[half] == expected
    finally:
        os.close(fd)
