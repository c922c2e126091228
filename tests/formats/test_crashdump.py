"""The crash dump reader: every DumpType and width read back, header values, bad input, and
cross-checks against kdmp-parser and Volatility 3 on the same synthetic files."""

from __future__ import annotations

import json
import random
import shutil
import struct
from pathlib import Path

import pytest

from memfs import windows_structs as ws
from memfs.detect import OpenOptions, detect_format, open_image
from memfs.exceptions import CorruptionError, FormatError, MemfsError, UnknownFormatError
from memfs.formats import crashdump_structs as cs
from memfs.formats.crashdump import bitmap_runs
from memfs.kernel.discover import discover
from memfs.report import info_dict
from memfs.views.header_txt import render_header
from memfs.views.tree import build_files
from scripts import make_crashdump_fixtures as mk
from tests.readers import kdmp_read_pages, vol3_crash_read, vol3_is_present

PAGE = 0x1000
KDMP_TYPES = {1, 5, 6, 8, 9, 0xA}
VOL3_TYPES = {1, 5}


@pytest.fixture(scope="session")
def crash_dumps(fixture_dir: Path) -> dict[str, tuple[Path, dict[int, bytes]]]:
    """Every fixture of the builder: name -> (path, expected pages)."""
    built = {}
    for name, kwargs in mk.FIXTURES.items():
        path = fixture_dir / name
        built[name] = (path, mk.build_dump(path, **kwargs))
    return built


def _page_names() -> list[str]:
    return [name for name, kwargs in mk.FIXTURES.items() if kwargs["dump_type"] != 4]


def _hole_pfns(pages: dict[int, bytes]) -> list[int]:
    return [pfn for pfn in mk.HOLE_PFNS if pfn not in pages]


# -- read-back -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _page_names())
def test_every_page_reads_back(crash_dumps, name: str) -> None:
    path, pages = crash_dumps[name]
    with open_image(str(path)) as source:
        assert source.metadata.format == "crashdump"
        for pfn, data in pages.items():
            assert source.read(pfn * PAGE, PAGE) == data, f"PFN {pfn:#x}"
        for pfn in _hole_pfns(pages):
            assert not source.is_present(pfn * PAGE)
            assert source.read(pfn * PAGE, PAGE) == bytes(PAGE)
        assert source.size == (max(pages) + 1) * PAGE  # physmem.bin ends with the highest run
        assert build_files(source, discover(source))["physmem.bin"].size == source.size
        assert source.present_bytes == len(pages) * PAGE
        json.dumps(info_dict(source))  # the info --json view accepts every value


@pytest.mark.parametrize("name", [n for n in _page_names() if not mk.FIXTURES[n].get("pae")])
def test_whole_image_and_unaligned_reads(crash_dumps, name: str) -> None:
    path, pages = crash_dumps[name]
    image = bytearray((max(pages) + 1) * PAGE)
    for pfn, data in pages.items():
        image[pfn * PAGE : (pfn + 1) * PAGE] = data
    with open_image(str(path)) as source:
        assert source.read(0, len(image) + PAGE) == image
        rng = random.Random(5)
        for _ in range(200):
            pa = rng.randrange(len(image))
            n = rng.randrange(1, 3 * PAGE)
            assert source.read(pa, n) == image[pa : pa + n]
            buffer = bytearray(n)
            assert buffer[: source.read_into(pa, buffer)] == image[pa : pa + n]


def test_adjacent_runs_merge_only_when_file_data_is_contiguous(crash_dumps) -> None:
    # (0x30, 0x10) and (0x40, 0x8) are separate in the run table but adjacent in PA and in the file.
    with open_image(str(crash_dumps["full64.dmp"][0])) as source:
        assert (0x30 * PAGE, 0x18 * PAGE) in source.runs
    # Reversed file order: PA-adjacent runs whose data is not contiguous stay separate.
    path = crash_dumps["full64.dmp"][0].with_name("swapped.dmp")
    runs = [(0x40, 0x8), (0x30, 0x10)]
    pages = mk.build_dump(path, runs=runs)
    with open_image(str(path)) as source:
        assert source.runs == ((0x30 * PAGE, 0x10 * PAGE), (0x40 * PAGE, 0x8 * PAGE))
        for pfn, data in pages.items():
            assert source.read(pfn * PAGE, PAGE) == data
        assert source.read(0x3F * PAGE, 2 * PAGE) == pages[0x3F] + pages[0x40]


# -- metadata and header.txt -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(mk.FIXTURES))
def test_metadata_matches_the_builder(crash_dumps, name: str) -> None:
    kwargs = mk.FIXTURES[name]
    width = kwargs["width"]
    values = mk.HEADER_VALUES[width]
    with open_image(str(crash_dumps[name][0])) as source:
        meta = source.metadata
        assert meta.arch == ("x64" if width == 64 else "x86")
        assert meta.pae == (bool(kwargs.get("pae")) if width == 32 else None)
        assert meta.dump_type == kwargs["dump_type"]
        assert meta.os_build == values["MinorVersion"]
        assert meta.machine_image_type == values["MachineImageType"]
        assert meta.directory_table_base == values["DirectoryTableBase"]
        assert meta.pfn_database == values["PfnDataBase"]
        assert meta.ps_loaded_module_list == values["PsLoadedModuleList"]
        assert meta.ps_active_process_head == values["PsActiveProcessHead"]
        assert meta.kd_debugger_data_block == values["KdDebuggerDataBlock"]
        assert meta.number_processors == values["NumberProcessors"]
        assert meta.bugcheck_code == values["BugCheckCode"]
        assert meta.bugcheck_parameters == values["BugCheckParameters"]
        assert meta.product_type == values["ProductType"]
        assert meta.suite_mask == values["SuiteMask"]
        assert meta.comment == values["Comment"]
        assert meta.system_time == mk.SYSTEM_TIME
        assert meta.system_uptime == mk.SYSTEM_UPTIME
        assert meta.context is not None
        for register, value in values["context"].items():
            assert meta.context[register] == value, register
        assert meta.kernel_base is None and "kernel_base" in meta.unknown_reasons
        layout = kwargs.get("summary_layout")
        if kwargs["dump_type"] == 2:
            assert ("MS2 SUMMARY_DUMP layout" in meta.format_detail) == (layout == "ms2")
            assert ("bitmap 'SDMP'" in meta.format_detail) == (layout == "bitmap")


@pytest.mark.parametrize("name", list(mk.FIXTURES))
def test_header_txt_shows_the_header(crash_dumps, name: str) -> None:
    kwargs = mk.FIXTURES[name]
    with open_image(str(crash_dumps[name][0])) as source:
        text = render_header(source)
    for label in [
        "[Crash dump header]",
        "Signature",
        "MajorVersion",
        "MinorVersion",
        "DirectoryTableBase",
        "PfnDataBase",
        "PsLoadedModuleList",
        "PsActiveProcessHead",
        "MachineImageType",
        "NumberProcessors",
        "BugCheckCode",
        "BugCheckParameter4",
        "VersionUser",
        "KdSecondaryVersion",
        "KdDebuggerDataBlock",
        "PhysicalMemoryBlock.NumberOfRuns",
        "PhysicalMemoryBlock.NumberOfPages",
        "Exception.ExceptionCode",
        "Comment",
        "Attributes",
        "BootId",
        "DumpType",
        "MiniDumpFields",
        "SecondaryDataState",
        "ProductType",
        "SuiteMask",
        "WriterStatus",
        "RequiredDumpSpace",
        "SystemUpTime",
        "SystemTime",
        "[Register context]",
    ]:
        assert label in text, label
    assert "2024-05-06T07:08:09+00:00" in text
    assert "not written ('A' of the 'PAGE' filler)" in text  # KdSecondaryVersion left as filler
    if kwargs["width"] == 32:
        assert "PaeEnabled" in text
    dump_type = kwargs["dump_type"]
    if dump_type != 1:  # Windows leaves the run table as filler outside type 1 dumps
        assert "PhysicalMemoryBlock.NumberOfRuns  : not written ('PAGE' filler)" in text
    if kwargs.get("attributes", 0) is None:
        assert "Attributes                        : not written ('PAGE' filler)" in text
    section = {
        1: "[Physical memory descriptor (DumpType 1)]",
        4: "[Triage dump header (TRIAGE_DUMP)]",
        5: "[Bitmap header]",
        6: "[Bitmap header]",
        8: "[RDMP header]",
        9: "[RDMP header]",
        0xA: "[RDMP header]",
        2: "[Summary dump header",
    }[dump_type]
    assert section in text


def test_triage_dump_has_no_memory_and_says_why(crash_dumps) -> None:
    for name in ("triage64.dmp", "triage32.dmp"):
        with open_image(str(crash_dumps[name][0])) as source:
            assert source.runs == () and source.size == 0
            assert list(build_files(source, discover(source))) == ["header.txt"]
            text = render_header(source)
            assert "no physical memory" in text
            assert "'TRGD' at" in text and "(ok)" in text


def test_filler_values_are_not_reported_as_numbers(tmp_path) -> None:
    path = tmp_path / "filler.dmp"
    mk.build_dump(path)
    data = bytearray(path.read_bytes())
    for offset in (0x10, 0x80, 0xFA8, 0x1030):  # DTB, KDBG, SystemTime, SystemUpTime
        data[offset : offset + 8] = b"PAGEPAGE"
    data[0x34:0x38] = b"PAGE"  # NumberProcessors
    path.write_bytes(data)
    with open_image(str(path)) as source:
        meta = source.metadata
        assert meta.directory_table_base is None and "filler" in meta.unknown_reasons["directory_table_base"]
        assert meta.kd_debugger_data_block is None
        assert meta.system_time is None and meta.system_uptime is None
        assert meta.number_processors is None
        text = render_header(source)
    assert "DirectoryTableBase                : not written ('PAGE' filler)" in text
    assert "SystemTime                        : not written ('PAGE' filler)" in text
    assert "0x4547415045474150" not in text.split("[Crash dump header]")[1]


# -- structure sizes -----------------------------------------------------------------------------


def test_struct_sizes_are_pinned() -> None:
    assert cs.DUMP_HEADER32.sizeof() == 0x1000
    assert cs.DUMP_HEADER64.sizeof() == 0x2000
    assert cs.PHYSICAL_MEMORY_DESCRIPTOR32.sizeof() == 700
    assert cs.PHYSICAL_MEMORY_DESCRIPTOR64.sizeof() == 0x2C0
    assert cs.EXCEPTION_RECORD32.sizeof() == 0x50
    assert cs.EXCEPTION_RECORD64.sizeof() == 0x98
    assert ws.CONTEXT_AMD64.sizeof() == 0x4D0
    assert ws.CONTEXT_X86.sizeof() == 0x2CC
    assert cs.BITMAP_DUMP.sizeof() == 0x38
    assert cs.SUMMARY_DUMP32.sizeof() == 0x20
    assert cs.SUMMARY_DUMP64.sizeof() == 0x28
    assert cs.RDMP_HEADER.sizeof() == 0x30
    assert cs.TRIAGE_DUMP32.sizeof() == 0x68
    assert cs.TRIAGE_DUMP64.sizeof() == 0x80


@pytest.mark.parametrize(
    ("struct_", "expected"),
    [
        (
            cs.DUMP_HEADER32,
            {
                "PaeEnabled": 0x5C,
                "KdDebuggerDataBlock": 0x60,
                "PhysicalMemoryBlock": 0x64,
                "ContextRecord": 0x320,
                "Exception": 0x7D0,
                "Comment": 0x820,
                "Attributes": 0x8A0,
                "DumpType": 0xF88,
                "RequiredDumpSpace": 0xFA0,
                "SystemUpTime": 0xFB8,
                "SystemTime": 0xFC0,
            },
        ),
        (
            cs.DUMP_HEADER64,
            {
                "BugCheckParameter1": 0x40,
                "KdDebuggerDataBlock": 0x80,
                "PhysicalMemoryBlock": 0x88,
                "ContextRecord": 0x348,
                "Exception": 0xF00,
                "DumpType": 0xF98,
                "RequiredDumpSpace": 0xFA0,
                "SystemTime": 0xFA8,
                "Comment": 0xFB0,
                "SystemUpTime": 0x1030,
                "KdSecondaryVersion": 0x104D,
                "Attributes": 0x1050,
            },
        ),
        (
            ws.CONTEXT_AMD64,
            {
                "MxCsr": 0x34,
                "SegCs": 0x38,
                "EFlags": 0x44,
                "Rsp": 0x98,
                "Rip": 0xF8,
                "FltSave": 0x100,
                "VectorRegister": 0x300,
                "VectorControl": 0x4A0,
            },
        ),
        (
            ws.CONTEXT_X86,
            {
                "SegGs": 0x8C,
                "Eip": 0xB8,
                "SegCs": 0xBC,
                "Esp": 0xC4,
                "SegSs": 0xC8,
                "ExtendedRegisters": 0xCC,
            },
        ),
    ],
)
def test_struct_offsets_follow_the_format_doc(struct_, expected: dict[str, int]) -> None:
    for name, offset in expected.items():
        assert ws.offset_of(struct_, name) == offset, name


# -- bitmap scanning -----------------------------------------------------------------------------


def _naive_runs(bitmap: bytes, bits: int) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for bit in range(bits):
        if bitmap[bit // 8] >> (bit % 8) & 1:
            if runs and runs[-1][0] + runs[-1][1] == bit:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((bit, 1))
    return runs


@pytest.mark.parametrize("seed", range(6))
def test_bitmap_runs_match_a_naive_scan(seed: int) -> None:
    rng = random.Random(seed)
    nbytes = rng.randrange(1, 300)
    density = rng.choice([0.02, 0.5, 0.98])
    # Runs of bytes that are all zero, all ones or mixed, like real bitmaps.
    data = bytes(
        rng.choice([0, 0xFF, rng.randrange(256)]) if rng.random() < density else 0 for _ in range(nbytes)
    )
    bits = nbytes * 8 - rng.randrange(8)  # a trailing partial byte: its high bits are ignored
    assert bitmap_runs(data, bits) == _naive_runs(data, bits)


def test_bitmap_runs_edges() -> None:
    assert bitmap_runs(b"", 0) == []
    assert bitmap_runs(b"\xff", 8) == [(0, 8)]
    assert bitmap_runs(b"\xff", 5) == [(0, 5)]
    assert bitmap_runs(b"\x81\x01", 16) == [(0, 1), (7, 2)]


# -- independent readers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", [n for n, kw in mk.FIXTURES.items() if kw["width"] == 64 and kw["dump_type"] in KDMP_TYPES]
)
def test_kdmp_parser_agrees(crash_dumps, name: str) -> None:
    path, pages = crash_dumps[name]
    theirs = kdmp_read_pages(path)
    assert sorted(theirs) == sorted(pfn * PAGE for pfn in pages)  # holes are absent there too
    with open_image(str(path)) as source:
        for pa, data in theirs.items():
            assert source.read(pa, PAGE) == data, f"PA {pa:#x}"


@pytest.mark.parametrize("name", [n for n, kw in mk.FIXTURES.items() if kw["dump_type"] in VOL3_TYPES])
def test_volatility3_agrees(crash_dumps, name: str) -> None:
    path, pages = crash_dumps[name]
    with open_image(str(path)) as source:
        for pfn in pages:
            assert vol3_crash_read(path, pfn * PAGE, PAGE) == source.read(pfn * PAGE, PAGE), f"PFN {pfn:#x}"
        for pfn in _hole_pfns(pages):
            assert not vol3_is_present(path, pfn * PAGE)
        if source.size <= 4 << 20:
            assert vol3_crash_read(path, 0, source.size) == source.read(0, source.size)


# -- bad input -----------------------------------------------------------------------------------


def _patched(tmp_path: Path, source: Path, patches: dict[int, bytes], name: str = "bad.dmp") -> Path:
    data = bytearray(source.read_bytes())
    for offset, value in patches.items():
        data[offset : offset + len(value)] = value
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _open_error(path: Path, kind: type[Exception] = MemfsError) -> str:
    with pytest.raises(kind) as info:
        open_image(str(path))
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_empty_file_forced_as_crashdump(tmp_path) -> None:
    path = tmp_path / "empty.dmp"
    path.write_bytes(b"")
    with pytest.raises(UnknownFormatError, match=r"offset 0x0: file is empty"):
        open_image(str(path), OpenOptions(format="crashdump"))


def test_directory_and_missing_file_forced_as_crashdump(tmp_path) -> None:
    with pytest.raises(MemfsError, match="is a directory"):
        open_image(str(tmp_path), OpenOptions(format="crashdump"))
    with pytest.raises(MemfsError, match="no such file"):
        open_image(str(tmp_path / "nope.dmp"), OpenOptions(format="crashdump"))


def test_truncated_header(crash_dumps, tmp_path) -> None:
    for name, keep in (("full64.dmp", 0x1800), ("full32.dmp", 0x10), ("full64.dmp", 6)):
        path = tmp_path / "short.dmp"
        path.write_bytes(crash_dumps[name][0].read_bytes()[:keep])
        message = _open_error(path, FormatError)
        assert "truncated header" in message or "ValidDump" in message


def test_wrong_signature_is_an_error_not_raw(crash_dumps, tmp_path) -> None:
    path = _patched(tmp_path, crash_dumps["full64.dmp"][0], {4: b"XX64"})
    assert detect_format(str(path)).name == "crashdump"
    message = _open_error(path, FormatError)
    assert "offset 0x4" in message and "ValidDump b'XX64'" in message
    other = _patched(tmp_path, crash_dumps["full64.dmp"][0], {0: b"MDMP"}, "mdmp.dmp")
    with pytest.raises(FormatError, match=r"offset 0x0: not a Windows crash dump"):
        open_image(str(other), OpenOptions(format="crashdump"))


def test_run_table_past_eof(crash_dumps, tmp_path) -> None:
    path = tmp_path / "cut.dmp"
    path.write_bytes(crash_dumps["full64.dmp"][0].read_bytes()[:-PAGE])
    message = _open_error(path, CorruptionError)
    assert f"offset {0x98 + 4 * 16:#x}" in message and "past the end of the file" in message
    path.write_bytes(crash_dumps["full32.dmp"][0].read_bytes()[: -0x41 * PAGE])
    message = _open_error(path, CorruptionError)
    assert f"offset {0x6C + 3 * 8:#x}" in message


@pytest.mark.parametrize(
    ("name", "offset", "value", "expected"),
    [
        ("full64.dmp", 0x88, struct.pack("<I", 44), "NumberOfRuns 44 is absurd: at most 43"),
        ("full32.dmp", 0x64, struct.pack("<I", 87), "NumberOfRuns 87 is absurd: at most 86"),
        ("full64.dmp", 0x88, b"PAGE", "NumberOfRuns is 'PAGE' filler"),
        ("full32.dmp", 0x64, struct.pack("<I", 0xFFFFFFFF), "is absurd"),
    ],
)
def test_absurd_run_counts(crash_dumps, tmp_path, name, offset, value, expected) -> None:
    path = _patched(tmp_path, crash_dumps[name][0], {offset: value})
    message = _open_error(path, CorruptionError)
    assert f"offset {offset:#x}" in message and expected in message


def test_huge_run_page_count(crash_dumps, tmp_path) -> None:
    path = _patched(tmp_path, crash_dumps["full64.dmp"][0], {0x98 + 8: struct.pack("<Q", 1 << 62)})
    assert "beyond the 52-bit physical space" in _open_error(path, CorruptionError)


def test_overlapping_runs(crash_dumps, tmp_path) -> None:
    # Run 1 (PFN 0x30) moved to PFN 0x10, inside run 0 (PFN 0x2 + 0x1E).
    path = _patched(tmp_path, crash_dumps["full64.dmp"][0], {0x98 + 16: struct.pack("<Q", 0x10)})
    message = _open_error(path, CorruptionError)
    assert f"offset {0x98 + 16:#x}" in message and "overlaps or duplicates" in message


def test_bitmap_larger_than_the_file(crash_dumps, tmp_path) -> None:
    path = _patched(tmp_path, crash_dumps["bitmap64_full.dmp"][0], {0x2030: struct.pack("<Q", 1 << 40)})
    message = _open_error(path, CorruptionError)
    assert "offset 0x2030" in message and "larger than the file" in message
    path = _patched(tmp_path, crash_dumps["bitmap32_full.dmp"][0], {0x1030: struct.pack("<Q", 1 << 40)})
    assert "offset 0x1030" in _open_error(path, CorruptionError)


def test_bitmap_bit_count_beyond_physical_space(crash_dumps, tmp_path) -> None:
    path = _patched(tmp_path, crash_dumps["bitmap64_full.dmp"][0], {0x2030: struct.pack("<Q", 1 << 41)})
    assert "offset 0x2030: bitmap of" in _open_error(path, CorruptionError)


def test_bitmap_first_page_past_eof_and_inside_the_bitmap(crash_dumps, tmp_path) -> None:
    path = _patched(tmp_path, crash_dumps["bitmap64_full.dmp"][0], {0x2020: struct.pack("<Q", 1 << 36)})
    assert "past the end of the file" in _open_error(path, CorruptionError)
    path = _patched(tmp_path, crash_dumps["bitmap64_full.dmp"][0], {0x2020: struct.pack("<Q", 0x2010)})
    assert "inside the bitmap headers" in _open_error(path, CorruptionError)
    path = _patched(tmp_path, crash_dumps["bitmap64_full.dmp"][0], {0x2020: struct.pack("<Q", 0x4000)})
    message = _open_error(path, CorruptionError)
    assert "offset 0x2020" in message and "marks 120 pages present" in message


def test_bitmap_bad_signature(crash_dumps, tmp_path) -> None:
    path = _patched(tmp_path, crash_dumps["bitmap64_full.dmp"][0], {0x2000: b"XDMP"})
    assert "offset 0x2000: bitmap header signature 'XDMP'" in _open_error(path, CorruptionError)


def test_bitmap_present_count_mismatch_is_a_warning(crash_dumps, tmp_path) -> None:
    path = _patched(tmp_path, crash_dumps["bitmap64_full.dmp"][0], {0x2028: struct.pack("<Q", 7)})
    _, pages = crash_dumps["bitmap64_full.dmp"]
    with open_image(str(path)) as source:
        assert any("120 bits set but the header declares 7" in note for note in source.metadata.notes)
        assert all(source.read(pfn * PAGE, PAGE) == data for pfn, data in pages.items())


def test_rdmp_size_relation_and_signature(crash_dumps, tmp_path) -> None:
    original = crash_dumps["rdmp64_complete.dmp"][0]
    metadata_size = struct.unpack_from("<Q", original.read_bytes(), 0x2010)[0]
    path = _patched(tmp_path, original, {0x2010: struct.pack("<Q", metadata_size + 16)})
    message = _open_error(path, CorruptionError)
    assert "offset 0x2010" in message and "size relation" in message
    path = _patched(tmp_path, original, {0x2004: b"XDMP"})
    assert "offset 0x2000" in _open_error(path, CorruptionError)


def test_rdmp_duplicate_ranges(crash_dumps, tmp_path) -> None:
    original = crash_dumps["rdmp64_kernel.dmp"][0]
    path = _patched(tmp_path, original, {0x2030 + 16: struct.pack("<Q", 0x2)})  # range 1 at PFN 2 again
    assert "overlaps or duplicates" in _open_error(path, CorruptionError)


def test_rdmp_in_a_32bit_dump_is_refused(crash_dumps, tmp_path) -> None:
    path = _patched(tmp_path, crash_dumps["full32.dmp"][0], {0xF88: struct.pack("<I", 8)})
    assert "offset 0xf88: DumpType 0x8 (RDMP) is only known in 64-bit dumps" in _open_error(path, FormatError)


def test_summary_dump_fitting_no_layout(crash_dumps, tmp_path) -> None:
    path = _patched(tmp_path, crash_dumps["summary64_ms2.dmp"][0], {0x200C: struct.pack("<I", 1 << 30)})
    message = _open_error(path, CorruptionError)
    assert "fits neither the bitmap layout" in message and "nor the MS2 ULONG layout" in message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (3, "0x3 (DUMP_TYPE_HEADER)"),
        (7, "0x7 (DUMP_TYPE_AUTOMATIC)"),
        (0x1234, "0x1234 (unknown)"),
        (0x45474150, "not written"),
    ],
)
def test_unknown_dump_types(crash_dumps, tmp_path, value: int, shown: str) -> None:
    path = _patched(tmp_path, crash_dumps["full64.dmp"][0], {0xF98: struct.pack("<I", value)})
    message = _open_error(path, FormatError)
    assert "offset 0xf98: unsupported DumpType" in message and shown in message


def test_encrypted_dump_is_refused(crash_dumps, tmp_path) -> None:
    path = _patched(tmp_path, crash_dumps["full64.dmp"][0], {0x1050: struct.pack("<I", 1 << 8)})
    message = _open_error(path, FormatError)
    assert "offset 0x1050" in message and "EncryptedDumpData" in message
    path = _patched(tmp_path, crash_dumps["full32.dmp"][0], {0x8A0: struct.pack("<I", 0x300)})
    assert "offset 0x8a0" in _open_error(path, FormatError)


def test_reads_never_touch_the_input(crash_dumps, tmp_path) -> None:
    path = tmp_path / "copy.dmp"
    shutil.copy(crash_dumps["bitmap64_full.dmp"][0], path)
    before = path.read_bytes()
    with open_image(str(path)) as source:
        source.read(0, source.size)
        render_header(source)
    assert path.read_bytes() == before
