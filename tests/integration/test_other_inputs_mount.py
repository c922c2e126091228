"""LiME, ELF cores and VMware snapshots through a real FUSE mount: physmem.bin bytes and header.txt."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from scripts.make_other_fixtures import GIB, PAGE, Fixture, build_all

pytest.importorskip("memfs.fuse.mount", reason="the FUSE layer and mount_image fixture come from main")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Fixture]:
    return build_all(tmp_path_factory.mktemp("other_inputs"))


@pytest.mark.parametrize(
    ("name", "format_name"),
    [
        ("lime_unordered", "lime"),
        ("elf32_qemu", "elf"),
        ("elf64_vbox", "elf"),
        ("vmware_small", "vmware"),
        ("vmware_inline", "vmware"),
    ],
)
def test_physmem_sha256_matches_the_source(fixtures, mount_image, name: str, format_name: str) -> None:
    fixture = fixtures[name]
    mnt = mount_image(fixture.path)
    physmem = mnt / "physmem.bin"
    assert physmem.stat().st_size == fixture.size
    assert sha256_file(physmem) == hashlib.sha256(fixture.image_bytes()).hexdigest()
    header = (mnt / "header.txt").read_text()
    assert f"Format          : {format_name}" in header


def test_qemu_core_header_has_cr3(fixtures, mount_image) -> None:
    fixture = fixtures["elf64_qemu"]
    mnt = mount_image(fixture.path)
    header = (mnt / "header.txt").read_text()
    assert f"DirectoryTableBase (CR3) : {fixture.extra['cr3']:#x}" in header
    assert "'QEMU' type 0x0, 432 bytes" in header
    with open(mnt / "physmem.bin", "rb") as handle:
        for pa in (0, 0x9F000, 0x100000, 0x7FF000, 0x100000000, 0x100007000):
            assert os.pread(handle.fileno(), PAGE, pa) == fixture.read(pa, PAGE), hex(pa)


def test_vmware_pci_hole_through_the_mount(fixtures, mount_image) -> None:
    fixture = fixtures["vmware_hole"]
    mnt = mount_image(fixture.path)
    physmem = mnt / "physmem.bin"
    assert physmem.stat().st_size == 4 * GIB + 0x2000 * PAGE
    with open(physmem, "rb") as handle:
        for pa in sorted(fixture.pages) + [3 * GIB, 3 * GIB + 0x12345000]:
            assert os.pread(handle.fileno(), PAGE, pa) == fixture.read(pa, PAGE), hex(pa)
        # A read straddling the end of RAM below the hole.
        assert os.pread(handle.fileno(), 32, 3 * GIB - 16) == fixture.read(3 * GIB - 16, 32)
    header = (mnt / "header.txt").read_text()
    assert "0x100000000         0x102000000" in header
