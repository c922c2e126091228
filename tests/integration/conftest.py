"""Real FUSE mounts for tests: mount through the CLI in the background, always unmount.

Tests here are marked ``fuse``.  They skip only where this machine really cannot mount — the checks
of ``memfs doctor`` (libfuse loads, ``/dev/fuse`` opens, the setuid helper for non-root) — and
fail otherwise.  ``FUSE_LIBRARY_PATH`` selects the libfuse under test (scripts/platform_matrix.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from memfs.fuse.doctor import mount_blocker

MEMFS = [sys.executable, "-m", "memfs"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.fuse)


def run_memfs(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the memfs CLI and capture its output."""
    return subprocess.run([*MEMFS, *args], capture_output=True, text=True, timeout=timeout)


def _has_exited(pid: int) -> bool:
    """True once ``pid`` is gone or a zombie (the daemon's parent is init, which reaps when it likes)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def _wait_for_exit(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _has_exited(pid):
            return True
        time.sleep(0.02)
    return False


def unmount_quietly(mountpoint: Path) -> None:
    """Unmount if mounted, lazily as a last resort, so a failing test never leaves a mount behind."""
    if os.path.ismount(mountpoint):
        subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True)
    if os.path.ismount(mountpoint):
        subprocess.run(["fusermount3", "-uz", str(mountpoint)], capture_output=True)


REQUIRE_FUSE = "MEMFS_TEST_REQUIRE_FUSE"
"""Set (to anything) where FUSE must work, so that a blocker fails the tests instead of skipping them."""


@pytest.fixture(scope="session")
def fuse_mountable() -> None:
    """Skip, with the reason and its fix, where this machine cannot mount at all."""
    reason = mount_blocker()
    if reason is not None:
        if os.environ.get(REQUIRE_FUSE):
            pytest.fail(f"FUSE cannot mount here and {REQUIRE_FUSE} is set: {reason}")
        pytest.skip(f"FUSE cannot mount here: {reason}")


@pytest.fixture(autouse=True)
def _needs_fuse(fuse_mountable: None) -> None:
    """Every test in tests/integration mounts (or checks what a mount refuses)."""


@pytest.fixture
def mount_image(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Factory: ``mount_image(image, *cli_args) -> mount point``, mounted in the background.

    ``mount_image.pids`` maps each mount point to its daemon's PID (as ``memfs mount`` printed it),
    ``mount_image.results`` to the finished ``memfs mount`` command (its stdout and stderr).
    """
    mounted: list[tuple[Path, int | None]] = []

    def mount(image: Path | str, *args: str) -> Path:
        mountpoint = tmp_path / f"mnt{len(mounted)}"
        mountpoint.mkdir()
        result = run_memfs("mount", str(image), str(mountpoint), *args)
        assert result.returncode == 0, f"mount failed: {result.stderr}"
        assert os.path.ismount(mountpoint), "memfs mount returned before the mount was ready"
        match = re.search(r"daemon pid (\d+)", result.stdout)
        mount.results[mountpoint] = result
        mounted.append((mountpoint, int(match.group(1)) if match else None))
        if match:
            mount.pids[mountpoint] = int(match.group(1))
        return mountpoint

    mount.pids = {}  # type: ignore[attr-defined]
    mount.results = {}  # type: ignore[attr-defined]

    yield mount
    for mountpoint, pid in mounted:
        unmount_quietly(mountpoint)
        if pid is not None and not _wait_for_exit(pid):
            os.kill(pid, 9)
            pytest.fail(f"memfs daemon {pid} did not exit after unmount")
