"""VMware reader: region table over the .vmem (PCI hole), memory inline in a .vmsn, mismatches."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from memfs.detect import OpenOptions, detect_format, open_image
from memfs.exceptions import CorruptionError, FormatError, MemfsError
from memfs.report import info_dict
from memfs.views.header_txt import render_header
from scripts.make_other_fixtures import GIB, PAGE, SMALL_REGIONS, build_vmss, build_vmware
from tests.formats.compare import assert_source_matches, mismatches
from tests.readers import vol3_layer, vol3_runs


@pytest.mark.parametrize("name", ["vmware_small", "vmware_hole", "vmware_inline"])
def test_reads_every_region(other_fixtures, name: str) -> None:
    fixture = other_fixtures[name]
    assert detect_format(str(fixture.path)).name == "vmware"
    with open_image(str(fixture.path)) as source:
        assert_source_matches(source, fixture)
        info = info_dict(source)
    assert info["format"] == "vmware"
    assert info["directory_table_base"] == "0x1ad000"
    assert info["notes"] == []


def test_pci_hole_is_skipped(other_fixtures) -> None:
    fixture = other_fixtures["vmware_hole"]
    with open_image(str(fixture.path)) as source:
        assert source.runs == ((0, 3 * GIB), (4 * GIB, 0x2000 * PAGE))
        # The .vmem page right after 3 GiB of RAM is physical 4 GiB, not physical 3 GiB.
        assert source.read(4 * GIB, PAGE) == fixture.pages[4 * GIB]
        assert source.read(3 * GIB, PAGE) == bytes(PAGE)
        assert source.read(3 * GIB - PAGE, PAGE) == fixture.pages[3 * GIB - PAGE]
        assert source.read(3 * GIB - 8, 16) == fixture.pages[3 * GIB - PAGE][-8:] + bytes(8)
    assert os.stat(fixture.path).st_blocks * 512 < 1 << 20  # sparse: the 3 GiB .vmem costs little disk


@pytest.mark.parametrize("name", ["vmware_small", "vmware_hole"])
def test_volatility3_reads_the_same_bytes(other_fixtures, name: str) -> None:
    from volatility3.framework.layers.vmware import VmwareLayer

    fixture = other_fixtures[name]
    layer = vol3_layer(VmwareLayer, fixture.path, extra_files={"meta_layer": fixture.extra["meta"]})
    assert vol3_runs(layer) == fixture.runs
    with open_image(str(fixture.path)) as source:
        assert mismatches(lambda pa, n: layer.read(pa, n, pad=True), fixture) == []
        assert mismatches(source.read, fixture) == []


def test_opening_the_metadata_file_serves_the_vmem_beside_it(other_fixtures) -> None:
    fixture = other_fixtures["vmware_small"]
    meta = fixture.extra["meta"]
    assert detect_format(str(meta)).name == "vmware"
    with open_image(str(meta)) as source:
        assert source.name == str(fixture.path)
        assert_source_matches(source, fixture)


def test_header_shows_regions_and_registers(other_fixtures) -> None:
    with open_image(str(other_fixtures["vmware_hole"].path)) as source:
        meta = source.metadata
        assert meta.context is not None and meta.context["rip"] == 0xFFFFF80000002000
        assert meta.number_processors == 1
        text = render_header(source)
    assert "#1 : physical 0x100000000-0x102000000 <- memory file offset 0xc0000000 (8192 pages)" in text
    assert "Metadata file : " in text and "Win10-abc.vmss" in text


def test_arch_from_control_registers(tmp_path: Path, other_fixtures) -> None:
    with open_image(str(other_fixtures["vmware_small"].path)) as source:
        assert source.metadata.arch is None  # CR4.PAE set: x64 or 32-bit PAE
        assert "CR0/CR4" in source.metadata.unknown_reasons["arch"]
    fixture = build_vmware(tmp_path, "nopae", SMALL_REGIONS[:1], cr4=0x690)
    with open_image(str(fixture.path)) as source:
        assert (source.metadata.arch, source.metadata.pae) == ("x86", False)


def test_inline_memory_snapshot(other_fixtures) -> None:
    fixture = other_fixtures["vmware_inline"]
    with open_image(str(fixture.path)) as source:
        assert "memory inline" in source.metadata.format_detail
        assert source.name == str(fixture.path)
        assert_source_matches(source, fixture)


def test_explicit_metadata_option(tmp_path: Path, other_fixtures) -> None:
    fixture = other_fixtures["vmware_small"]
    vmem = tmp_path / "memory.bin"
    os.link(fixture.path, vmem)
    meta = tmp_path / "elsewhere" / "state.dat"
    meta.parent.mkdir()
    shutil.copy(fixture.extra["meta"], meta)
    assert detect_format(str(vmem)).name == "raw"
    with open_image(str(vmem), OpenOptions(vmware_meta=str(meta))) as source:
        assert source.metadata.format == "vmware"
        assert_source_matches(source, fixture)


def test_vmem_without_metadata_is_raw_with_a_warning(tmp_path: Path) -> None:
    vmem = tmp_path / "lonely.vmem"
    vmem.write_bytes(b"x" * 3 * PAGE)
    assert detect_format(str(vmem)).name == "vmware"
    with open_image(str(vmem)) as source:
        assert source.metadata.format == "raw"
        assert source.runs == ((0, 3 * PAGE),)
        assert len(source.metadata.notes) == 1
        assert "no VMware metadata" in source.metadata.notes[0]
        assert "no VMware metadata" in render_header(source)


# -- bad input ---------------------------------------------------------------------------------


def _copy_small(tmp_path: Path) -> tuple[Path, Path]:
    fixture = build_vmware(tmp_path, "vm", SMALL_REGIONS)
    return fixture.path, fixture.extra["meta"]


def test_vmem_too_short_for_the_regions(tmp_path: Path) -> None:
    vmem, meta = _copy_small(tmp_path)
    os.truncate(vmem, 0xA0 * PAGE)  # only region 0 fits
    with pytest.raises(CorruptionError) as info:
        open_image(str(vmem))
    message = str(info.value)
    assert message.startswith(f"{meta}: offset 0x")
    assert "region 1 needs memory-file pages 0xa0-0xe0" in message
    assert "does not match its memory file" in message


def test_vmem_longer_than_the_regions_is_noted(tmp_path: Path) -> None:
    fixture = build_vmware(tmp_path, "vm", SMALL_REGIONS, vmem_extra=0x5000)
    with open_image(str(fixture.path)) as source:
        assert_source_matches(source, fixture)
        (note,) = source.metadata.notes
    assert "0x5000 bytes after the last region" in note


def test_metadata_without_memory_or_vmem(tmp_path: Path) -> None:
    meta = tmp_path / "orphan.vmss"
    build_vmss(meta, [(0, 0, 4)])
    with pytest.raises(FormatError) as info:
        open_image(str(meta))
    assert "orphan.vmem, which is not beside it" in str(info.value)


def test_truncated_group_table(tmp_path: Path) -> None:
    vmem, meta = _copy_small(tmp_path)
    meta.write_bytes(meta.read_bytes()[:100])
    with pytest.raises(CorruptionError) as info:
        open_image(str(vmem))
    assert str(info.value).startswith(f"{meta}: offset 0x8: 3 groups of 80 bytes do not fit")


def test_truncated_tag_list(tmp_path: Path) -> None:
    vmem, meta = _copy_small(tmp_path)
    data = meta.read_bytes()
    meta.write_bytes(data[: data.index(b"regionSize") + 4])
    with pytest.raises(CorruptionError) as info:
        open_image(str(vmem))
    assert str(info.value).startswith(f"{meta}: offset 0x")
    assert "runs past the end of the file" in str(info.value)


def test_missing_region_tag(tmp_path: Path) -> None:
    vmem, meta = _copy_small(tmp_path)
    data = meta.read_bytes().replace(b"regionPPN", b"regionXXX")
    meta.write_bytes(data)
    with pytest.raises(CorruptionError) as info:
        open_image(str(vmem))
    assert "region 0 lacks one of regionPageNum/regionPPN/regionSize" in str(info.value)


def test_explicit_metadata_that_is_not_vmware(tmp_path: Path) -> None:
    vmem, _ = _copy_small(tmp_path)
    bogus = tmp_path / "bogus.vmss"
    bogus.write_bytes(b"\x7fELF" + bytes(100))
    with pytest.raises(FormatError) as info:
        open_image(str(vmem), OpenOptions(vmware_meta=str(bogus)))
    assert str(info.value) == f"{bogus}: offset 0x0: not a VMware .vmss/.vmsn file (magic 0x464c457f)"


def test_missing_explicit_metadata(tmp_path: Path) -> None:
    vmem, _ = _copy_small(tmp_path)
    with pytest.raises(MemfsError) as info:
        open_image(str(vmem), OpenOptions(vmware_meta=str(tmp_path / "nope.vmss")))
    assert "nope.vmss: cannot open VMware metadata" in str(info.value)


def test_compressed_memory_block_is_refused(tmp_path: Path) -> None:
    fixture = build_vmware(tmp_path, "snap", SMALL_REGIONS[:1], meta_suffix=".vmsn", inline=True)
    data = bytearray(fixture.path.read_bytes())
    at = data.index(b"Memory") - 2
    (tag,) = struct.unpack_from("<H", data, at)
    struct.pack_into("<H", data, at, (tag & ~0x3F) | 62)  # value size 62: compressed block
    fixture.path.write_bytes(bytes(data))
    with pytest.raises(FormatError) as info:
        open_image(str(fixture.path))
    assert (
        str(info.value)
        == f"{fixture.path}: offset {at:#x}: the 'Memory' block is compressed; memfs cannot read it"
    )


def test_huge_region_count_fails_fast(tmp_path: Path) -> None:
    vmem, meta = _copy_small(tmp_path)
    data = bytearray(meta.read_bytes())
    at = data.index(b"regionsCount") + len(b"regionsCount")
    data[at : at + 4] = struct.pack("<I", 0xFFFFFFFF)
    meta.write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as info:
        open_image(str(vmem))
    assert "regionsCount is 4294967295 but region 3 lacks" in str(info.value)


@pytest.mark.parametrize("magic", [0xBED0BED0, 0xBED3BED3, 0xBAD1BAD1])
def test_other_checkpoint_magics(tmp_path: Path, magic: int) -> None:
    fixture = build_vmware(tmp_path, "old", SMALL_REGIONS, meta_suffix=".vmsn", inline=True, magic=magic)
    with open_image(str(fixture.path)) as source:
        assert_source_matches(source, fixture)
        assert f"Magic         : {magic:#x}" in render_header(source)
