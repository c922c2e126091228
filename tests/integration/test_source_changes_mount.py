"""The evidence changes under a live mount: truncated, replaced, rewritten in place or deleted.

Reads of data the file no longer holds fail with EIO, header.txt says what changed and when, the daemon
keeps serving what needs no image bytes, and it unmounts cleanly.  Pages the kernel had cached go too:
at once when the file is opened again (an open looks at the image first and then drops them), and,
with libfuse 3 (auto_inval_data), within about two seconds through the very handle that cached them.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from memfs.fuse.libfuse import select_libfuse
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
        if select_libfuse().major >= 3:
            # auto_inval_data: the handle that cached the pages loses them once the kernel revalidates.
            deadline = time.monotonic() + REVALIDATE_SECONDS
            while _errno_of(fd, 0) != errno.EIO and time.monotonic() < deadline:
                assert _errno_of(fd, 0) == data[:PAGE]  # until then: the image as opened, nothing else
                time.sleep(0.1)
            assert _errno_of(fd, 0) == errno.EIO
        else:
            assert _errno_of(fd, 0) in (errno.EIO, data[:PAGE])
        # A new open looks at the file first: EIO at once, cached or not, and the kernel drops the
        # cached pages for every handle.
        fresh = os.open(physmem, os.O_RDONLY)
        try:
            for offset in (0, 4 * MIB, 6 * MIB, 8 * MIB - PAGE):
                assert _errno_of(fresh, offset) == errno.EIO, hex(offset)
        finally:
            os.close(fresh)
        assert _errno_of(fd, 0) == errno.EIO
        assert _errno_of(fd, 6 * MIB) == errno.EIO
    finally:
        os.close(fd)
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
    """Units decoded (and cached, by memfs and by the kernel) before the change are not served after it."""
    from scripts.make_sample import build

    image = build(tmp_path / "sample")
    mnt = mount_image(image)
    size = len((mnt / "physmem.bin").read_bytes())  # decodes every unit once
    os.truncate(image, image.stat().st_size // 2)
    fd = os.open(mnt / "physmem.bin", os.O_RDONLY)
    try:
        for offset in (0, size - PAGE):  # a unit before the new end, and one after it
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
