"""memory.dmp from LiME, ELF and VMware images of a (synthetic) Windows machine.

The synthetic images of ``tests/kernel`` are wrapped in each format with a hole in the first MiB;
the CR3 that a QEMU note or a VMware checkpoint states is what kernel discovery validates (the
``nostub`` image has no x64 low stub to fall back on), and the memory.dmp it yields is accepted by
memfs's crash-dump reader and kdmp-parser with the page data of physmem.bin.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from memfs.detect import open_image
from memfs.kernel.discover import discover
from memfs.views.tree import build_files
from scripts.make_other_fixtures import PAGE, build_elf, build_lime, build_vmware
from tests.readers import kdmp_read_pages

HOLE = (0x9F000, 0x100000)  # legacy VGA/BIOS hole, as real guests have


def _wrap(kind: str, image, out: Path):
    runs = [(0, HOLE[0]), (HOLE[1], image.size - HOLE[1])]
    if kind == "elf64":
        return build_elf(out / "win.elf", runs, memory=image.memory, cr3=image.dtb, file_order=[1, 0])
    if kind == "elf32":
        return build_elf(out / "win32.elf", runs, bits=32, memory=image.memory, cr3=image.dtb, cpus=1)
    if kind == "vmware":
        regions = [(start // PAGE, length // PAGE) for start, length in runs]
        return build_vmware(out, "win", regions, memory=image.memory, cr3=image.dtb)
    return build_lime(out / "win.lime", runs, memory=image.memory)


@pytest.mark.parametrize(
    ("kind", "variant", "stated"),
    [
        ("elf64", "x64_encoded_nostub", True),
        ("vmware", "x64_encoded_nostub", True),
        ("elf32", "pae", True),
        ("lime", "x64", False),
    ],
)
def test_memory_dmp_from_other_inputs(
    windows_images, tmp_path: Path, kind: str, variant: str, stated: bool
) -> None:
    image = windows_images[variant]
    fixture = _wrap(kind, image, tmp_path)
    out = tmp_path / "memory.dmp"
    with open_image(str(fixture.path)) as source:
        files = build_files(source, discover(source))
        dump = files["memory.dmp"]
        out.write_bytes(b"".join(dump.read(off, 1 << 20) for off in range(0, dump.size, 1 << 20)))
        header = files["header.txt"].read(0, 1 << 20).decode()
        meta = dump.metadata
        assert meta.kd_debugger_data_block == image.kdbg_va
        assert meta.directory_table_base == image.dtb
        physmem = {pa: source.read(pa, PAGE) for pa in range(0, source.size, PAGE) if source.is_present(pa)}
        overlaid = {pa & ~0xFFF for pa, patch, _ in dump.overlays} | {
            (pa + len(patch) - 1) & ~0xFFF for pa, patch, _ in dump.overlays
        }
    found = re.search(r"^DirectoryTableBase +: (0x[0-9a-f]+): (.*)$", header, re.M)
    assert found is not None and int(found.group(1), 16) == image.dtb
    assert found.group(2).startswith("stated by the image, validated") == stated, found.group(2)
    x64 = image.arch == "x64"
    data = out.read_bytes()
    assert data[:8] == (b"PAGEDU64" if x64 else b"PAGEDUMP")
    assert struct.unpack_from("<Q" if x64 else "<I", data, 0x10)[0] == image.dtb
    with open_image(str(out)) as dmp:
        assert dmp.metadata.format == "crashdump"
        assert dmp.metadata.kd_debugger_data_block == image.kdbg_va
        assert [run for run in dmp.runs] == [(0, HOLE[0]), (HOLE[1], image.size - HOLE[1])]
        for pa in [*list(physmem)[::97], HOLE[1]]:
            if pa not in overlaid:  # memory.dmp overlays a few documented bytes (decoded KDBG, contexts)
                assert dmp.read(pa, PAGE) == physmem[pa], hex(pa)
    if x64:
        pages = kdmp_read_pages(out)
        assert len(pages) == len(physmem)
        assert pages[HOLE[1]] == physmem[HOLE[1]]
    out.unlink()  # 32 MiB each: do not keep them in pytest's retained temporary directories
