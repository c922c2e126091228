"""A crash dump inside two test-only containers (tests/stacking.py), mounted for real through FUSE."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from memfs.detect import open_image
from scripts import make_crashdump_fixtures
from tests.integration.conftest import _wait_for_exit, unmount_quietly
from tests.readers import kdmp_read_pages
from tests.test_stacking import STACKED_MEMFS, boxed


def test_mount_reads_through_two_containers(tmp_path: Path) -> None:
    inner = tmp_path / "inner.dmp"
    pages = make_crashdump_fixtures.build_dump(inner, width=64, dump_type=5)
    outer = boxed(inner, tmp_path / "evidence.tbox.tbox", 0x21, 0x42)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    result = subprocess.run(
        [*STACKED_MEMFS, "mount", str(outer), str(mountpoint)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    pid = int(re.search(r"daemon pid (\d+)", result.stdout).group(1))
    try:
        assert sorted(os.listdir(mountpoint)) == ["header.txt", "memory.dmp", "physmem.bin"]
        with open_image(str(inner)) as direct:
            want = direct.read(0, direct.size)
            want_format = direct.metadata.format_detail
        assert (mountpoint / "physmem.bin").read_bytes() == want
        header = (mountpoint / "header.txt").read_text()
        assert re.search(r"^Layers *: tbox -> tbox -> crashdump$", header, re.MULTILINE)
        assert f"Detail          : {want_format}" in header
        # memory.dmp on top of the stacked source keeps the inner dump's own header (read through both
        # containers) and holds its pages, as an independent reader sees them.
        dmp = mountpoint / "memory.dmp"
        assert dmp.read_bytes()[:0x88] == inner.read_bytes()[:0x88]
        assert kdmp_read_pages(dmp) == {pfn * 0x1000: page for pfn, page in pages.items()}
    finally:
        unmount_quietly(mountpoint)
        assert _wait_for_exit(pid), f"memfs daemon {pid} did not exit after unmount"
