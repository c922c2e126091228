"""ELF core reader: PT_LOAD at p_paddr (32/64-bit, any file order), QEMU/VirtualBox notes, bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from memfs.detect import detect_format, open_image
from memfs.exceptions import FormatError
from memfs.report import info_dict
from memfs.views.header_txt import render_header
from scripts.make_other_fixtures import ELF_SEGMENTS, PAGE, build_elf
from tests.formats.compare import assert_source_matches, mismatches
from tests.formats.errors import open_error
from tests.readers import vol3_layer, vol3_runs

ALL = ["elf64_qemu", "elf32_qemu", "elf64_vbox", "elf64_xnum"]


@pytest.mark.parametrize("name", ALL)
def test_reads_every_segment(other_fixtures, name: str) -> None:
    fixture = other_fixtures[name]
    assert detect_format(str(fixture.path)).name == "elf"
    with open_image(str(fixture.path)) as source:
        assert_source_matches(source, fixture)
        assert info_dict(source)["format"] == "elf"
        assert source.metadata.notes == []


@pytest.mark.parametrize("name", ["elf64_qemu", "elf64_vbox"])
def test_volatility3_reads_the_same_bytes(other_fixtures, name: str) -> None:
    from volatility3.framework.layers.elf import Elf64Layer

    fixture = other_fixtures[name]
    layer = vol3_layer(Elf64Layer, fixture.path)
    assert vol3_runs(layer) == fixture.runs
    with open_image(str(fixture.path)) as source:
        assert mismatches(lambda pa, n: layer.read(pa, n, pad=True), fixture) == []
        assert mismatches(source.read, fixture) == []


def test_qemu_notes_give_cr3_and_context(other_fixtures) -> None:
    fixture = other_fixtures["elf64_qemu"]
    with open_image(str(fixture.path)) as source:
        meta = source.metadata
        assert meta.arch == "x64"
        assert meta.directory_table_base == fixture.extra["cr3"]
        assert meta.number_processors == fixture.extra["cpus"]
        assert meta.context is not None
        assert meta.context["cr3"] == fixture.extra["cr3"]
        assert meta.context["rip"] == 0xFFFFF80000001000
        assert meta.context["rax"] == 0x1000 and meta.context["r15"] == 0x100F
        assert meta.context["cr0"] == 0x80050033
        text = render_header(source)
        info = info_dict(source)
    assert "written by QEMU" in text
    assert "'QEMU' type 0x0, 432 bytes" in text
    assert "[CPU 1 registers]" in text and f"{fixture.extra['cr3'] + PAGE:#x}" in text
    assert info["directory_table_base"] == f"{fixture.extra['cr3']:#x}"
    assert info["context"]["cr3"] == f"{fixture.extra['cr3']:#x}"


def test_32bit_qemu_core(other_fixtures) -> None:
    fixture = other_fixtures["elf32_qemu"]
    with open_image(str(fixture.path)) as source:
        assert source.metadata.arch == "x86"
        assert source.metadata.pae is True  # CR4.PAE set in the fixture's CPU state
        assert source.metadata.directory_table_base == 0x39000
        assert "ELF32 core (EM_386)" in source.metadata.format_detail
        context = source.metadata.context
        assert context is not None
        assert context["eip"] == 0x1000 and context["eax"] == 0x1000 and context["esp"] == 0x1006
        assert "rip" not in context and "r8" not in context
        assert context["cr3"] == 0x39000


def test_virtualbox_notes_and_mmio_range(other_fixtures) -> None:
    fixture = other_fixtures["elf64_vbox"]
    with open_image(str(fixture.path)) as source:
        meta = source.metadata
        assert meta.arch == "x64"  # from EFER.LMA, not e_machine
        assert meta.directory_table_base == fixture.extra["cr3"]
        assert meta.number_processors == 2
        assert not source.is_present(0xE0000000)  # MMIO: PT_LOAD with no file data
        text = render_header(source)
    assert "written by VirtualBox" in text
    assert "VirtualBox version : 7.0.12" in text
    assert "'VBCPU' type 0xb01" in text


def test_virtualbox_32bit_guest_mode_from_efer(tmp_path: Path) -> None:
    fixture = build_elf(tmp_path / "vbox32.elf", ELF_SEGMENTS[:1], notes="vbox", cpus=1)
    data = bytearray(fixture.path.read_bytes())
    efer = struct.pack("<Q", 0xD01)
    at = data.index(efer)
    data[at : at + 8] = struct.pack("<Q", 0x1)  # LMA clear: the guest was in 32-bit mode
    fixture.path.write_bytes(bytes(data))
    with open_image(str(fixture.path)) as source:
        assert source.metadata.arch == "x86"
        assert source.metadata.pae is True


def test_core_without_register_notes(other_fixtures) -> None:
    with open_image(str(other_fixtures["elf64_xnum"].path)) as source:
        assert source.metadata.directory_table_base is None
        assert (
            "no QEMU or VirtualBox register notes" in source.metadata.unknown_reasons["directory_table_base"]
        )


# -- bad input ---------------------------------------------------------------------------------


def test_truncated_elf_header(tmp_path: Path, other_fixtures) -> None:
    path = tmp_path / "short.elf"
    path.write_bytes(other_fixtures["elf64_qemu"].path.read_bytes()[:40])
    assert "ELF64 header truncated" in open_error(path)


def test_program_headers_past_eof(tmp_path: Path, other_fixtures) -> None:
    path = tmp_path / "phdrs.elf"
    path.write_bytes(other_fixtures["elf64_qemu"].path.read_bytes()[:100])
    message = open_error(path)
    assert message.startswith(f"{path}: offset 0x40: 5 program headers")
    assert "run past the end of the file" in message


def test_segment_past_eof_is_served_with_a_note(tmp_path: Path) -> None:
    fixture = build_elf(tmp_path / "cut.elf", ELF_SEGMENTS[:2], notes=None)
    data = fixture.path.read_bytes()
    fixture.path.write_bytes(data[: len(data) - 0x10000])  # last segment in file order loses 16 pages
    with open_image(str(fixture.path)) as source:
        start, length = ELF_SEGMENTS[1]
        assert source.runs[-1] == (start, length - 0x10000)
        assert source.read(start, length - 0x10000) == fixture.read(start, length - 0x10000)
        assert len(source.metadata.notes) == 1
        assert (
            "PT_LOAD #1" in source.metadata.notes[0]
            and "0x10000 bytes are missing" in source.metadata.notes[0]
        )


def test_overlapping_segments(tmp_path: Path) -> None:
    fixture = build_elf(tmp_path / "overlap.elf", [(0x0, 0x3000), (0x2000, 0x2000)], notes=None)
    message = open_error(fixture.path)
    assert "PT_LOAD #1 maps physical 0x2000-0x4000, which overlaps PT_LOAD #0" in message
    assert message.startswith(f"{fixture.path}: offset {0x40 + 56:#x}")


def test_not_a_core(tmp_path: Path, other_fixtures) -> None:
    data = bytearray(other_fixtures["elf64_xnum"].path.read_bytes())
    data[16:18] = struct.pack("<H", 2)  # ET_EXEC
    path = tmp_path / "exec.elf"
    path.write_bytes(bytes(data))
    assert "ELF file of ET_EXEC, not a core dump" in open_error(path, FormatError)


def test_process_core_without_physical_addresses(tmp_path: Path) -> None:
    fixture = build_elf(tmp_path / "proc.elf", [(0x0, 0x1000), (0x0, 0x1000)], notes=None)
    assert "every PT_LOAD segment has physical address 0" in open_error(fixture.path, FormatError)


def test_bad_class(tmp_path: Path, other_fixtures) -> None:
    data = bytearray(other_fixtures["elf64_xnum"].path.read_bytes())
    data[4] = 7
    path = tmp_path / "class.elf"
    path.write_bytes(bytes(data))
    assert "offset 0x4: unknown ELF class 7" in open_error(path, FormatError)


def test_short_qemu_note_is_ignored_with_a_note(tmp_path: Path) -> None:
    fixture = build_elf(tmp_path / "note.elf", ELF_SEGMENTS[:1], cpus=1)
    data = bytearray(fixture.path.read_bytes())
    at = data.index(b"QEMU\0") - 12
    data[at + 4 : at + 8] = struct.pack("<I", 100)  # n_descsz 432 -> 100
    fixture.path.write_bytes(bytes(data))
    with open_image(str(fixture.path)) as source:
        assert_source_matches(source, fixture)
        assert source.metadata.directory_table_base is None
        assert any("QEMU CPU state of 100 bytes is too short" in note for note in source.metadata.notes)


def test_absurd_program_header_count(tmp_path: Path) -> None:
    fixture = build_elf(tmp_path / "xnum.elf", ELF_SEGMENTS[:1], notes=None, xnum=True)
    data = bytearray(fixture.path.read_bytes())
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    struct.pack_into("<I", data, shoff + 44, 0xFFFFFFFF)  # sh_info of section header 0
    fixture.path.write_bytes(bytes(data))
    assert "4294967295 program headers (more than" in open_error(fixture.path)
