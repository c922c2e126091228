"""The foundation through a real FUSE mount: content, errno policy, concurrency, life cycle."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import default_sigint
from tests.digest import sha256
from tests.integration.conftest import MEMFS, run_memfs, unmount_quietly


@pytest.fixture
def raw_image(tmp_path: Path) -> Path:
    rng = random.Random(7)
    data = bytearray(rng.randbytes(3 << 20))
    data[0x1000:0x3000] = bytes(0x2000)  # zeros inside, too
    path = tmp_path / "image.raw"
    path.write_bytes(bytes(data) + b"tail")
    return path


def test_raw_image_through_the_mount(raw_image: Path, mount_image) -> None:
    mnt = mount_image(raw_image)
    assert sorted(os.listdir(mnt)) == ["header.txt", "memory.dmp", "physmem.bin"]
    assert (mnt / "physmem.bin").stat().st_size == raw_image.stat().st_size
    assert sha256(mnt / "physmem.bin") == sha256(raw_image)
    header = (mnt / "header.txt").read_text()
    assert "Format          : raw" in header
    assert str(raw_image) in header
    st = os.stat(mnt / "physmem.bin")
    assert st.st_blksize == 1 << 20
    assert st.st_mode & 0o777 == 0o444


def test_errno_policy(raw_image: Path, mount_image) -> None:
    mnt = mount_image(raw_image)
    with pytest.raises(OSError) as missing:
        os.open(mnt / "nope.bin", os.O_RDONLY)
    assert missing.value.errno == errno.ENOENT
    for attempt in (
        lambda: os.open(mnt / "physmem.bin", os.O_RDWR),
        lambda: os.open(mnt / "new.txt", os.O_WRONLY | os.O_CREAT),
        lambda: os.mkdir(mnt / "dir"),
        lambda: os.unlink(mnt / "header.txt"),
        lambda: os.truncate(mnt / "physmem.bin", 0),
    ):
        with pytest.raises(OSError) as refused:
            attempt()
        assert refused.value.errno == errno.EROFS
    before = raw_image.read_bytes()
    assert before == raw_image.read_bytes()  # the image is never written to


def test_concurrent_random_readers(raw_image: Path, mount_image) -> None:
    mnt = mount_image(raw_image)
    expected = raw_image.read_bytes()
    errors: list[str] = []

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        with open(mnt / "physmem.bin", "rb", buffering=0) as handle:
            for _ in range(200):
                offset = rng.randrange(len(expected))
                length = rng.randrange(1, 300_000)
                got = os.pread(handle.fileno(), length, offset)
                if got != expected[offset : offset + length]:
                    errors.append(f"mismatch at {offset:#x}+{length:#x}")

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_second_mount_on_same_point_is_refused(raw_image: Path, mount_image) -> None:
    mnt = mount_image(raw_image)
    result = run_memfs("mount", str(raw_image), str(mnt))
    assert result.returncode == 1
    assert "already mounted" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("problem", ["missing", "not_empty", "file"])
def test_bad_mount_points(raw_image: Path, tmp_path: Path, problem: str) -> None:
    target = tmp_path / "mp"
    if problem == "not_empty":
        target.mkdir()
        (target / "x").write_text("x")
    elif problem == "file":
        target.write_text("x")
    result = run_memfs("mount", str(raw_image), str(target))
    assert result.returncode == 1
    expected = {"missing": "does not exist", "not_empty": "not empty", "file": "not a directory"}[problem]
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "fusermount"])
def test_foreground_mount_exits_cleanly(raw_image: Path, tmp_path: Path, how: str) -> None:
    mnt = tmp_path / "fg"
    mnt.mkdir()
    daemon = subprocess.Popen(
        [*MEMFS, "mount", "-f", str(raw_image), str(mnt)], stderr=subprocess.PIPE, preexec_fn=default_sigint
    )
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mnt):
            assert daemon.poll() is None, daemon.stderr.read().decode()
            assert time.monotonic() < deadline, "foreground mount never became ready"
            time.sleep(0.05)
        assert (mnt / "physmem.bin").read_bytes()[:64] == raw_image.read_bytes()[:64]
        if how == "fusermount":
            subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
        else:
            daemon.send_signal(getattr(signal, how))
        assert daemon.wait(timeout=20) == 0
        assert not os.path.ismount(mnt)
        assert b"Traceback" not in daemon.stderr.read()
    finally:
        if daemon.poll() is None:
            daemon.kill()
        unmount_quietly(mnt)


def test_umount_command(raw_image: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "u"
    mnt.mkdir()
    assert run_memfs("mount", str(raw_image), str(mnt)).returncode == 0
    try:
        result = run_memfs("umount", str(mnt))
        assert result.returncode == 0, result.stderr
        assert not os.path.ismount(mnt)
        again = run_memfs("umount", str(mnt))
        assert again.returncode == 1 and "not mounted" in again.stderr
    finally:
        unmount_quietly(mnt)
