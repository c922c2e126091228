"""The evidence changes under a live mount: truncated, replaced, rewritten in place or deleted.

Reads of data the file no longer holds fail with EIO — including pages the kernel had cached, once it
revalidates them (about two seconds: attr_timeout plus memfs's one-second look) — header.txt says
what changed and when, the daemon keeps serving what needs no image bytes, and it unmounts cleanly.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from tests.integration.conftest import _wait_for_exit, run_memfs

MIB = 1 << 20
PAGE = 0x1000
REVALIDATE_SECONDS = 10.0
"""How long the test waits for cached pages to go: two seconds expected, more on a loaded machine."""


def _truncate(path: Path) -> None:
    os.truncate(path, 2 * MIB)


def _replace(path: Path) -> None:
    other = path.with_name("new.raw")
    other.write_bytes(os.urandom(path.stat().st_size))
    os.replace(other, path)


def _rewrite(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.write(os.urandom(path.stat().st_size))


def _delete(path: Path) -> None:
    path.unlink()


CHANGES = {
    "truncate": (_truncate, "shrank from 0x800000 to 0x200000 bytes"),
    "replace": (_replace, "was replaced"),
    "rewrite": (_rewrite, "was modified in place"),
    "delete": (_delete, "was deleted or moved away"),
}


def _errno_of(fd: int, offset: int, length: int = PAGE) -> int | bytes:
    try:
        return os.pread(fd, length, offset)
    except OSError as exc:
        return exc.errno


@pytest.mark.parametrize("how", CHANGES)
def test_image_changes_under_a_live_mount(tmp_path: Path, mount_image, how: str) -> None:
    change, words = CHANGES[how]
    image = tmp_path / "image.raw"
    data = os.urandom(8 * MIB)
    image.write_bytes(data)
    mnt = mount_image(image)
    pid = mount_image.pids[mnt]
    physmem = mnt / "physmem.bin"
    fd = os.open(physmem, os.O_RDONLY)
    try:
        assert os.pread(fd, MIB, 0) == data[:MIB]  # now in the kernel's page cache (keep_cache)
        assert os.pread(fd, MIB, 6 * MIB) == data[6 * MIB : 7 * MIB]
        change(image)
        # Data the kernel never cached comes from the daemon, which looks at the file when a read
        # is cut short and at least once a second: EIO, never zeros or other bytes.
        deadline = time.monotonic() + REVALIDATE_SECONDS
        while _errno_of(fd, 4 * MIB) != errno.EIO and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _errno_of(fd, 4 * MIB) == errno.EIO
        # Pages read before the change go too, through the very handle that cached them.
        while _errno_of(fd, 0) != errno.EIO and time.monotonic() < deadline:
            assert _errno_of(fd, 0) == data[:PAGE]  # until then: the image as opened, nothing else
            time.sleep(0.1)
        assert _errno_of(fd, 0) == errno.EIO
        assert _errno_of(fd, 6 * MIB) == errno.EIO
    finally:
        os.close(fd)
    fresh = os.open(physmem, os.O_RDONLY)
    try:
        assert _errno_of(fresh, 0) == errno.EIO
    finally:
        os.close(fresh)
    with pytest.raises(OSError) as exc:
        (mnt / "memory.dmp").read_bytes()
    assert exc.value.errno == errno.EIO
    # What needs no image bytes is still served: the listing, the sizes, header.txt, the dump header.
    assert sorted(os.listdir(mnt)) == ["header.txt", "memory.dmp", "physmem.bin"]
    assert physmem.stat().st_size == len(data)
    dump = os.open(mnt / "memory.dmp", os.O_RDONLY)
    try:
        assert os.pread(dump, 0x2000, 0)[:8] == b"PAGEDU64"  # the header is memfs's own, kept in memory
    finally:
        os.close(dump)
    header = (mnt / "header.txt").read_text()
    assert f"Source changed  : {words}" in header and "(noticed " in header
    assert f"Source size     : {len(data)} bytes" in header  # as it was opened
    result = run_memfs("umount", str(mnt))
    assert result.returncode == 0, result.stderr
    assert not os.path.ismount(mnt)
    assert _wait_for_exit(pid), "the daemon did not exit after unmount"


def test_a_truncated_hibernation_file_drops_what_was_decoded(tmp_path: Path, mount_image) -> None:
    """Units decoded (and cached) before the change are not served after it."""
    from scripts.make_sample import build

    image = build(tmp_path / "sample")
    mnt = mount_image(image)
    physmem = (mnt / "physmem.bin").read_bytes()  # decodes every unit once
    os.truncate(image, image.stat().st_size // 2)
    fd = os.open(mnt / "physmem.bin", os.O_RDONLY)
    try:
        deadline = time.monotonic() + REVALIDATE_SECONDS
        while _errno_of(fd, 0) != errno.EIO and time.monotonic() < deadline:
            assert _errno_of(fd, 0) == physmem[:PAGE]
            time.sleep(0.1)
        for offset in (0, len(physmem) - PAGE):  # a unit before the new end, and one after it
            assert _errno_of(fd, offset) == errno.EIO
    finally:
        os.close(fd)
    assert "Source changed  : shrank from" in (mnt / "header.txt").read_text()


def test_no_discovery_mount(tmp_path: Path, mount_image) -> None:
    """``--no-discovery``: physmem.bin is the same, memory.dmp and header.txt say what they lack."""
    from scripts.make_sample import build, sample_pages

    image = build(tmp_path / "sample")
    mnt = mount_image(image, "--no-discovery")
    header = (mnt / "header.txt").read_text()
    assert "Not run : kernel discovery was not run (--no-discovery)" in header
    assert "WinDbg will miss : no DirectoryTableBase" in header
    physmem = (mnt / "physmem.bin").read_bytes()
    for pfn, data in list(sample_pages().items())[::97]:
        assert physmem[pfn * PAGE : (pfn + 1) * PAGE] == data
    dump = (mnt / "memory.dmp").read_bytes()
    assert b"kernel discovery was not run (--no-discovery)" in dump[:0x2000]
