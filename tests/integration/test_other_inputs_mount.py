"""LiME, ELF cores and VMware snapshots through a real FUSE mount: physmem.bin bytes and header.txt."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from scripts.make_other_fixtures import GIB, PAGE, Fixture, build_all
from tests.digest import sha256
from tests.integration.conftest import run_memfs


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
    assert sha256(physmem) == hashlib.sha256(fixture.image_bytes()).hexdigest()
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


@pytest.mark.parametrize(
    ("name", "format_name"),
    [("lime", "lime"), ("elf64_qemu", "elf"), ("vmware_hole", "vmware"), ("vmware_inline", "vmware")],
)
def test_info_json_format(fixtures, name: str, format_name: str) -> None:
    fixture = fixtures[name]
    result = run_memfs("info", str(fixture.path), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["format"] == format_name
    assert info["runs"] == [list(run) for run in fixture.runs]
    if format_name != "lime":
        assert info["directory_table_base"] is not None


def test_vmware_meta_option_through_the_mount(fixtures, mount_image, tmp_path: Path) -> None:
    fixture = fixtures["vmware_small"]
    vmem = tmp_path / "guest-memory.bin"
    os.link(fixture.path, vmem)
    meta = tmp_path / "state.vmss.copy"
    shutil.copy(fixture.extra["meta"], meta)
    mnt = mount_image(vmem, "--vmware-meta", str(meta))
    assert sha256(mnt / "physmem.bin") == hashlib.sha256(fixture.image_bytes()).hexdigest()
    assert "Format          : vmware" in (mnt / "header.txt").read_text()


def test_bad_inputs_are_one_line_errors(fixtures, tmp_path: Path) -> None:
    cut = tmp_path / "cut.elf"
    cut.write_bytes(fixtures["elf64_qemu"].path.read_bytes()[:100])
    lime = tmp_path / "overlap.lime"
    data = fixtures["lime"].path.read_bytes()
    lime.write_bytes(data + data[: 32 + 0x1000])  # the first range again
    vmem = tmp_path / "guest.vmem"
    os.link(fixtures["vmware_small"].path, vmem)
    meta = tmp_path / "guest.vmss"
    meta.write_bytes(fixtures["vmware_small"].extra["meta"].read_bytes()[:50])
    for image, expected in ((cut, "program headers"), (lime, "overlaps"), (vmem, "groups of 80 bytes")):
        result = run_memfs("info", str(image))
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "offset 0x" in lines[0] and expected in lines[0], lines[0]
