"""Values read from an image are range-checked where they are read (issue 12).

Each case is one that got through before: a time that does not fit, a physical address near 2^64, a
number as wide as a 61-byte tag.  The answer must be "unknown, and why" or one line naming the file
and the offset (exit 1) — never a traceback, a wrapped size, or a wrong number.
"""

from __future__ import annotations

import struct
from datetime import timedelta
from pathlib import Path

import pytest

from memfs import cli
from memfs.detect import open_image
from memfs.exceptions import CorruptionError
from memfs.filetime import MAX_TICKS, from_timedelta, to_datetime, to_timedelta
from memfs.kernel.discover import discover
from memfs.views.tree import build_files
from scripts.make_hiberfil_fixtures import INTERRUPT_TIME, build_from_pages, paging_pages
from scripts.make_other_fixtures import build_elf, build_lime, build_vmware, lime_header

PAGE = 0x1000
NEAR_2_64 = (1 << 64) - 0x1000


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    return code, err


def _one_line_naming(err: str, path: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and "offset 0x" in lines[0] and "Traceback" not in err, err


def test_tick_counts_outside_a_signed_64_bit_field_are_unknown() -> None:
    assert to_timedelta(MAX_TICKS) is not None
    assert to_timedelta(MAX_TICKS + 1) is None and to_timedelta(-1) is None
    assert to_datetime(NEAR_2_64) is None and to_datetime(-5) is None
    assert from_timedelta(timedelta(days=10**8)) == 0  # would need more than 63 bits of ticks
    assert from_timedelta(timedelta(seconds=-1)) == 0
    assert from_timedelta(timedelta(seconds=1)) == 10**7


@pytest.fixture
def legacy_hiberfil_far_uptime(tmp_path: Path) -> Path:
    """A Windows 7 x64 hibernation file whose InterruptTime is near 2^64 (found by its fixture value)."""
    data = bytearray(build_from_pages("win7-x64", paging_pages("x64")))
    where = data.index(struct.pack("<Q", INTERRUPT_TIME), 0, PAGE)
    struct.pack_into("<Q", data, where, NEAR_2_64)
    path = tmp_path / "hiberfil.sys"
    path.write_bytes(bytes(data))
    return path


def test_legacy_interrupt_time_near_2_64(legacy_hiberfil_far_uptime: Path, tmp_path: Path, capsys) -> None:
    path = legacy_hiberfil_far_uptime
    with open_image(str(path)) as source:
        assert source.metadata.system_uptime is None
        reason = source.metadata.unknown_reasons["system_uptime"]
        assert f"InterruptTime {NEAR_2_64:#x} does not fit" in reason
        dump = build_files(source, discover(source))["memory.dmp"]
        header = dump.read(0, 0x2000)
    assert struct.unpack_from("<q", header, 0x1030)[0] == 0  # SystemUpTime: 0 = not known (§3)
    code, err = _run(capsys, "info", str(path))
    assert code == 0, err
    code, err = _run(capsys, "convert", str(path), str(tmp_path / "out.dmp"), "--to", "dmp", "-q")
    assert code == 0, err


def test_lime_range_near_2_64(tmp_path: Path, capsys) -> None:
    path = tmp_path / "high.lime"
    path.write_bytes(lime_header(0xFFFFFFFFFFFFF000, PAGE) + bytes(PAGE))
    with pytest.raises(CorruptionError, match="offset 0x10: LiME range 0xfffffffffffff000-0xf+ ends"):
        open_image(str(path))
    for argv in (["info", str(path)], ["convert", str(path), str(tmp_path / "o.raw"), "--to", "raw"]):
        code, err = _run(capsys, *argv)
        assert code == 1
        _one_line_naming(err, path)


def test_lime_range_ending_past_2_52(tmp_path: Path) -> None:
    path = tmp_path / "edge.lime"
    build_lime(path, [(0, PAGE), ((1 << 52) - PAGE, PAGE)])
    with open_image(str(path)) as source:  # ending exactly at 2^52 is still an address
        assert source.size == 1 << 52
    path.write_bytes(lime_header(1 << 52, PAGE) + bytes(PAGE))
    with pytest.raises(CorruptionError, match="beyond the 52-bit physical address space"):
        open_image(str(path))


def test_elf_segment_near_2_64(tmp_path: Path, capsys) -> None:
    fixture = build_elf(tmp_path / "high.elf", [(0, PAGE)], notes=None)
    data = bytearray(fixture.path.read_bytes())
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    (phnum,) = struct.unpack_from("<H", data, 0x38)
    headers = [phoff + 56 * i for i in range(phnum)]
    load = next(at for at in headers if struct.unpack_from("<I", data, at)[0] == 1)  # PT_LOAD
    struct.pack_into("<Q", data, load + 0x18, 0xFFFFFFFFFFFFF000)  # p_paddr (gABI Elf64_Phdr)
    fixture.path.write_bytes(bytes(data))
    code, err = _run(capsys, "info", str(fixture.path))
    assert code == 1 and "maps physical 0xfffffffffffff000" in err
    _one_line_naming(err, fixture.path)


def test_vmware_region_near_2_64(tmp_path: Path, capsys) -> None:
    fixture = build_vmware(tmp_path, "vm", [(0, 2)], meta_suffix=".vmsn", inline=True)
    data = bytearray(fixture.path.read_bytes())
    tag = b"regionPPN" + struct.pack("<I", 0)
    where = data.index(tag) + len(tag)
    data[where : where + 4] = struct.pack("<I", 0xFFFFFFFF)  # 16 TiB: fine; make it 8 bytes wide below
    fixture.path.write_bytes(bytes(data))
    with open_image(str(fixture.path)) as source:
        assert source.size == (0xFFFFFFFF + 2) * PAGE
    # The same tag with an 8-byte value near 2^52 pages: the region would end near 2^64.
    name = b"regionPPN"
    old = struct.pack("<H", (len(name) << 8) | (1 << 6) | 4) + name + struct.pack("<I", 0)
    new = struct.pack("<H", (len(name) << 8) | (1 << 6) | 8) + name + struct.pack("<I", 0)
    start = bytes(data).index(old)
    data[start : start + len(old) + 4] = new + struct.pack("<Q", 0xFFFFFFFFFFFFF)
    _fix_group_sizes(data, 4)
    fixture.path.write_bytes(bytes(data))
    code, err = _run(capsys, "info", str(fixture.path))
    assert code == 1 and "region 0 maps physical pages 0xfffffffffffff" in err
    _one_line_naming(err, fixture.path)


def _fix_group_sizes(data: bytearray, grown: int) -> None:
    """Shift the memory group's position entries after a tag grew by ``grown`` bytes (for the test above)."""
    _, _, count = struct.unpack_from("<III", data, 0)
    for i in range(count):
        name, position, size = struct.unpack_from("<64sQQ", data, 12 + 80 * i)
        if name.rstrip(b"\0") == b"memory":
            struct.pack_into("<64sQQ", data, 12 + 80 * i, name, position, size + grown)


def test_vmware_values_wider_than_a_number(tmp_path: Path) -> None:
    """A 16-byte 'rip' and a huge cpu:numVCPUs: not numbers memfs believes (memory.dmp still builds)."""
    fixture = build_vmware(tmp_path, "vm", [(0, 2)], meta_suffix=".vmsn", inline=True)
    data = bytes(fixture.path.read_bytes())
    for name, size, value in ((b"rip", 16, 1 << 100), (b"cpu:numVCPUs", 8, 1 << 40)):
        old_size = 8 if name == b"rip" else 4
        indices = 1 if name == b"rip" else 0
        head = struct.pack("<H", (len(name) << 8) | (indices << 6) | old_size) + name
        head += struct.pack("<I", 0) * indices
        start = data.index(head)
        grown = head[:0] + struct.pack("<H", (len(name) << 8) | (indices << 6) | size) + head[2:]
        data = data[:start] + grown + value.to_bytes(size, "little") + data[start + len(head) + old_size :]
        data = bytearray(data)
        _fix_cpu_group(data, size - old_size)
        data = bytes(data)
    fixture.path.write_bytes(data)
    with open_image(str(fixture.path)) as source:
        assert source.metadata.number_processors is None
        assert "numVCPUs" in source.metadata.unknown_reasons["number_processors"]
        assert "rip" not in (source.metadata.context or {})
        files = build_files(source, discover(source))
        assert len(files["memory.dmp"].read(0, 0x2000)) == 0x2000


def _fix_cpu_group(data: bytearray, grown: int) -> None:
    """Move every group that follows the cpu group by ``grown`` bytes (the test grew a cpu tag)."""
    _, _, count = struct.unpack_from("<III", data, 0)
    groups = [struct.unpack_from("<64sQQ", data, 12 + 80 * i) for i in range(count)]
    cpu = next(position for name, position, _ in groups if name.rstrip(b"\0") == b"cpu")
    for i, (name, position, size) in enumerate(groups):
        if name.rstrip(b"\0") == b"cpu":
            size += grown
        elif position > cpu:
            position += grown
        struct.pack_into("<64sQQ", data, 12 + 80 * i, name, position, size)


def test_32_bit_memory_dmp_leaves_out_memory_above_16_tib(tmp_path: Path) -> None:
    """An x86 guest (EM_386 in an ELF64 core) with memory at 32 TiB: a 32-bit header cannot say so."""
    high = 1 << 45
    fixture = build_elf(tmp_path / "x86.elf", [(0, 2 * PAGE), (high, PAGE)], notes=None)
    data = bytearray(fixture.path.read_bytes())
    struct.pack_into("<H", data, 18, 3)  # e_machine = EM_386
    fixture.path.write_bytes(bytes(data))
    with open_image(str(fixture.path)) as source:
        assert source.metadata.arch == "x86" and source.size == high + PAGE
        files = build_files(source, discover(source))
        dump = files["memory.dmp"]
        assert dump.width == 32 and dump.size == 0x1000 + 2 * PAGE
        assert "bytes of memory at or above 16 TiB" in files["header.txt"].read(0, 1 << 20).decode()


def test_memory_dmp_convert_skips_merged_gaps(tmp_path: Path, capsys) -> None:
    """40 one-page ranges 1 GiB apart: memory.dmp merges 8 gaps (GiBs of zeros) but converts only data."""
    ranges = [(i << 30, PAGE) for i in range(40)]
    path = tmp_path / "spread.lime"
    build_lime(path, ranges)
    with open_image(str(path)) as source:
        dump = build_files(source, discover(source))["memory.dmp"]
        extents = dump.data_extents()
        assert dump.gap_pages > 0 and dump.size > 8 << 30
        assert sum(length for _, length in extents) == 0x2000 + 40 * PAGE
        for offset, length in extents[1:]:
            assert dump.read(offset, length) == source.read(_pa_of(dump, offset), length)
    out = tmp_path / "spread.dmp"
    code, err = _run(capsys, "convert", str(path), str(out), "--to", "dmp", "-q", "--no-hash")
    assert code == 0, err
    assert out.stat().st_blocks * 512 < 1 << 20  # sparse: the merged gaps were never written


def _pa_of(dump, offset: int) -> int:
    spans = list(dump._spans(offset, 1))
    return spans[0][2]


def test_bitmap_is_read_in_bounded_steps(monkeypatch, tmp_path: Path) -> None:
    """Stepping through the bitmap (memory bounded by BITMAP_STEP) finds the very runs a single pass does,
    including runs that cross a step boundary; a bitmap marking more pages than the file holds stops."""
    import scripts.make_crashdump_fixtures as mk
    from memfs.formats import crashdump

    path = tmp_path / "bitmap.dmp"
    mk.build_dump(path, width=64, dump_type=5)
    with open_image(str(path)) as whole:
        expected = whole.runs
    monkeypatch.setattr(crashdump, "BITMAP_STEP", 1)
    with open_image(str(path)) as stepped:
        assert stepped.runs == expected and len(expected) > 3
    data = bytearray(path.read_bytes())
    bits_at = 0x2000 + 0x30  # BITMAP_DUMP.Pages (crashdump.md §6.4)
    (bits,) = struct.unpack_from("<Q", data, bits_at)
    data[0x2038 : 0x2038 + bits // 8] = b"\x55" * (bits // 8)  # every other page: far more than stored
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match="they need the file to extend to"):
        open_image(str(path))


def test_a_discovered_source_is_freed(tmp_path: Path) -> None:
    """Discovery's result must not keep its source (and the source's decode cache) alive: a process that
    opens image after image (the fuzzer, a long test run) would otherwise grow without bound."""
    import gc
    import weakref

    path = tmp_path / "hiberfil.sys"
    path.write_bytes(build_from_pages("win10-1809-x64", paging_pages("x64")))
    source = open_image(str(path))
    files = build_files(source, discover(source))
    assert files["memory.dmp"].metadata.directory_table_base
    source.close()
    alive = weakref.ref(source)
    del source, files
    gc.collect()
    assert alive() is None
