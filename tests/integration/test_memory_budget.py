"""The mount daemon's memory stays within the cache budget the user sets (plus a fixed overhead).

Peak RSS (VmHWM) of the daemon after reading a whole 256 MiB Huffman hiberfil with ``--cache-size 32M``
is compared with the same daemon's peak when it caches (almost) nothing, which is the interpreter,
its modules and libfuse's buffers.  Peak RSS does not depend on timing, so a loaded machine does not
make this flaky; the margin covers the transient 1 MiB replies of the FUSE threads.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts.make_hiberfil_fixtures import build_large

MiB = 1 << 20
CACHE = 32 * MiB
MARGIN = 16 * MiB
"""Measured -6 … +5 MiB over baseline + cache; before the fix (discovery's units kept across the fork,
in per-thread arenas) it was +21 MiB."""


@pytest.fixture(scope="module")
def large_hiberfil(fixture_dir: Path) -> Path:
    path = fixture_dir / "budget-256m.hiberfil"
    if not path.exists():
        build_large(path, 0.25)
    return path


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def _read(path: Path, limit: int) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while pos < limit and (n := len(os.pread(fd, MiB, pos))):
            pos += n
    finally:
        os.close(fd)


def test_daemon_peak_rss_stays_within_cache_budget(mount_image, large_hiberfil: Path) -> None:
    peaks = {}
    for cache, limit in ((MiB, 32 * MiB), (CACHE, 1 << 40)):
        mountpoint = mount_image(large_hiberfil, "--cache-size", str(cache))
        _read(mountpoint / "physmem.bin", limit)
        peaks[cache] = _peak_rss(mount_image.pids[mountpoint])
    baseline, peak = peaks[MiB], peaks[CACHE]
    assert peak <= baseline + CACHE + MARGIN, (
        f"daemon peak RSS {peak / MiB:.0f} MiB with a {CACHE // MiB} MiB cache; "
        f"baseline {baseline / MiB:.0f} MiB + cache + {MARGIN // MiB} MiB margin allowed"
    )
