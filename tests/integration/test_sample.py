"""The built-in sample that ``make run`` mounts: it builds, mounts, and shows all three files."""

from __future__ import annotations

import gc
import hashlib

from scripts.make_sample import build, explain, sample_pages
from tests.readers import independent_reader


def test_sample_mounts_with_discovered_kernel_values(tmp_path, mount_image) -> None:
    image = build(tmp_path / "sample")
    mnt = mount_image(image)
    header = (mnt / "header.txt").read_text()
    assert "Format          : hiberfil" in header
    assert "KdDebuggerDataBlock      : 0xfffff" in header
    assert "encoded (Windows 8+)" in header
    pages = sample_pages()
    physmem = (mnt / "physmem.bin").read_bytes()
    expected = bytearray(len(physmem))
    for pfn, data in pages.items():
        expected[pfn * 0x1000 : (pfn + 1) * 0x1000] = data
    assert hashlib.sha256(physmem).digest() == hashlib.sha256(expected).digest()
    dump = independent_reader("kdmp_parser").KernelDumpParser(str(mnt / "memory.dmp"))
    assert dump.directory_table_base == 0x1AB000
    del dump  # it maps the file: release it so the mount can be unmounted
    gc.collect()
    assert str(tmp_path / "sample" / "mnt") in explain(tmp_path / "sample")
