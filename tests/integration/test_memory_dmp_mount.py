"""memory.dmp through a real FUSE mount of a synthetic Windows image: the same bytes as the view,
opened by kdmp-parser, and header.txt showing the discovery."""

from __future__ import annotations

import hashlib
from pathlib import Path

from memfs.byte_source import FileByteSource
from memfs.formats.raw import RawSource
from memfs.kernel.discover import discover
from memfs.views.tree import build_files
from scripts.make_windows_image import build_image
from tests.readers import independent_reader


def test_memory_dmp_through_the_mount(tmp_path: Path, mount_image) -> None:
    image = build_image(tmp_path / "win.raw", mode="x64", encoded=True)
    with RawSource(FileByteSource(str(image.path))) as source:
        view = build_files(source, discover(source))["memory.dmp"]
        expected = hashlib.sha256(b"".join(view.read(o, 1 << 20) for o in range(0, view.size, 1 << 20)))
    mnt = mount_image(image.path)
    dump = mnt / "memory.dmp"
    assert dump.stat().st_size == view.size
    digest = hashlib.sha256()
    with open(dump, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    assert digest.hexdigest() == expected.hexdigest()
    header = (mnt / "header.txt").read_text()
    assert "[Kernel discovery (symbol-free)]" in header and f"{image.kdbg_va:#x}" in header
    parser = independent_reader("kdmp_parser").KernelDumpParser(str(dump))
    assert parser.translate_virtual(image.kdbg_va) == image.kdbg_pa
