"""The background mount's life cycle: paths, descriptors, the log file, the libfuse it names, dead mounts."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from memfs.exceptions import MemfsError
from memfs.fuse.doctor import report
from memfs.fuse.libfuse import find_libfuse
from memfs.fuse.mount import check_mountpoint
from memfs.mounts import is_mounted
from tests.integration.conftest import MEMFS, _wait_for_exit, run_memfs, unmount_quietly


@pytest.fixture
def raw_image(tmp_path: Path) -> Path:
    path = tmp_path / "image.raw"
    path.write_bytes(random.Random(11).randbytes(1 << 20))
    return path


def _header(mnt: Path) -> dict[str, str]:
    rows = {}
    for line in (mnt / "header.txt").read_text().splitlines():
        label, sep, value = line.partition(" : ")
        if sep:
            rows[label.strip()] = value
    return rows


def test_relative_image_path_is_resolved_before_the_daemon_starts(raw_image: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = subprocess.run(
        [*MEMFS, "mount", raw_image.name, "mnt"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    try:
        assert result.returncode == 0, result.stderr
        rows = _header(mnt)
        assert rows["Source file"] == str(raw_image)
        assert rows["Source size"].startswith(f"{1 << 20} bytes")
        assert "Source modified" in rows
    finally:
        unmount_quietly(mnt)


def test_header_names_the_libfuse_serving_the_mount(raw_image: Path, mount_image) -> None:
    lib = find_libfuse()  # what memfs chooses in this environment (FUSE_LIBRARY_PATH in the matrix)
    rows = _header(mount_image(raw_image))
    assert rows["Served by"].startswith(f"libfuse {lib.release} ({lib.path})")
    assert rows["Largest read request"] == lib.largest_read_text


def test_daemon_closes_inherited_descriptors(raw_image: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    marker = tmp_path / "inherited-marker"
    read_end, write_end = os.pipe()
    marker_fd = os.open(marker, os.O_CREAT | os.O_WRONLY)
    try:
        result = subprocess.run(
            [*MEMFS, "mount", str(raw_image), str(mnt)],
            pass_fds=(write_end, marker_fd),
            capture_output=True,
            text=True,
            timeout=60,
        )
        os.close(write_end)
        assert result.returncode == 0, result.stderr
        pid = int(result.stdout.split("daemon pid ")[1].split(")")[0])
        held = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert str(marker) not in held
        assert str(raw_image) in held  # what memfs opened itself stays open
        # Nobody holds the pipe's write end any more: the caller of memfs would see end-of-file.
        assert os.read(read_end, 1) == b""
    finally:
        os.close(read_end)
        os.close(marker_fd)
        unmount_quietly(mnt)


def test_log_file_is_opened_before_mounting(raw_image: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    refused = run_memfs("mount", "--log-file", str(tmp_path / "missing" / "log"), str(raw_image), str(mnt))
    assert refused.returncode == 1
    reason = "cannot open it for writing: No such file or directory"
    expected = f"memfs: error: --log-file {tmp_path}/missing/log: {reason}"
    assert refused.stderr.strip().splitlines() == [expected]
    assert not is_mounted(str(mnt))
    log = tmp_path / "daemon.log"
    result = subprocess.run(
        [*MEMFS, "mount", "--log-file", "daemon.log", str(raw_image), str(mnt)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert result.returncode == 0, result.stderr
        assert log.exists()  # the relative path was resolved before the daemon moved to /
    finally:
        unmount_quietly(mnt)


def test_dead_mount_is_named_then_cleared(raw_image: Path, mount_image) -> None:
    mnt = mount_image(raw_image)
    pid = mount_image.pids[mnt]
    os.kill(pid, signal.SIGKILL)
    assert _wait_for_exit(pid)
    assert is_mounted(str(mnt))
    with pytest.raises(OSError):
        os.statvfs(mnt)  # ENOTCONN: the kernel still has the mount, nobody serves it
    dead = "a memfs mount whose daemon died is still attached: run `memfs umount"
    with pytest.raises(MemfsError, match=dead):
        check_mountpoint(str(mnt))
    text, can_mount = report()
    assert f"{mnt}: a memfs mount whose daemon died" in text
    assert can_mount  # a dead mount stops only its own mount point

    again = run_memfs("mount", str(raw_image), str(mnt))
    assert again.returncode == 0, again.stderr
    assert "cleared a dead memfs mount" in again.stderr
    assert (mnt / "physmem.bin").read_bytes() == raw_image.read_bytes()
    new_pid = int(again.stdout.split("daemon pid ")[1].split(")")[0])
    mount_image.pids[mnt] = new_pid
    unmount_quietly(mnt)
    assert _wait_for_exit(new_pid)


def test_umount_clears_a_dead_mount(raw_image: Path, mount_image) -> None:
    mnt = mount_image(raw_image)
    os.kill(mount_image.pids[mnt], signal.SIGKILL)
    assert _wait_for_exit(mount_image.pids[mnt])
    result = run_memfs("umount", str(mnt))
    assert result.returncode == 0, result.stderr
    assert not is_mounted(str(mnt))
