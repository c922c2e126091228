"""Discovery survives damage: an undecodable unit costs only its own pages, and any input is bounded.

The headline case (issue 12): one damaged compression set at physical address 0 of a Windows 10
hibernation file used to stop discovery altogether; CR3 and KDBG must still be found, memory.dmp must
carry them, and header.txt / ``info --json`` say how many units discovery skipped.
"""

from __future__ import annotations

import bisect
import json
import re
import struct
import time
import tracemalloc
from pathlib import Path

import pytest

from memfs.cli import main as memfs_main
from memfs.detect import OpenOptions, open_image
from memfs.exceptions import CorruptionError, MemfsError, SourceChangedError
from memfs.kernel.discover import discover, merge_metadata
from memfs.kernel.tolerant import TolerantMemory
from memfs.memory import BufferSource
from memfs.views.tree import build_files
from scripts.make_hiberfil_fixtures import build_from_pages
from scripts.make_hostile_images import aliased_kernel
from scripts.make_sample import SAMPLE_LAYOUT, sample_pages
from scripts.make_windows_image import build_image
from tests.readers import independent_reader

PAGE = 0x1000
# DUMP_HEADER64 field offsets (docs/formats/crashdump.md §2), stated here independently of the writer.
HEADER64_DTB = 0x10
HEADER64_KDBG = 0x80


@pytest.fixture(scope="module")
def damaged_hiberfil(tmp_path_factory) -> tuple[Path, object]:
    """The sample's Windows 10 x64 hibernation file with the compression set holding PA 0 garbled.

    Returns the file and the synthetic image it holds (every value the builder placed).
    """
    image = build_image(mode="x64", encoded=True, size=32 << 20)  # what make_sample's file holds
    data = bytearray(build_from_pages(SAMPLE_LAYOUT, sample_pages()))
    path = tmp_path_factory.mktemp("damage") / "hiberfil.sys"
    path.write_bytes(data)
    with open_image(str(path)) as source:  # where the set of PA 0 lies: the reader's own index
        run = bisect.bisect_right(source._run_pfn, 0) - 1
        unit = source._index.unit(source._run_unit[run])
    assert unit.csize > 16
    for offset in range(unit.data_off + 4, unit.data_off + unit.csize):
        data[offset] ^= 0xA5
    path.write_bytes(data)
    return path, image


def test_one_bad_set_at_pa0_costs_only_its_pages(damaged_hiberfil) -> None:
    path, image = damaged_hiberfil
    with open_image(str(path)) as source:
        with pytest.raises(MemfsError, match="does not decode"):
            source.read(0, PAGE)  # the damage is real: physmem.bin fails there
        found = discover(source)
        meta = merge_metadata(source.metadata, found)
        assert found.complete and found.stopped is None
        assert len(found.skipped_units) == 1 and "offset" in found.skipped_units[0]
        assert meta.directory_table_base == image.dtb
        assert meta.kd_debugger_data_block == image.kdbg_va
        assert meta.kernel_base == image.kernel_base
        assert meta.os_build == image.build
        assert found.missing == []
        # The low stub lived in the damaged set: the DTB came from the self-map scan instead.
        assert "self-referencing PML4" in dict(found.rows)["DirectoryTableBase"]
        files = build_files(source, found)
        text = files["header.txt"].read(0, 1 << 20).decode()
        assert re.search(r"Undecodable units skipped +: 1 \(", text)
        assert "kernel discovery skipped 1 units" in text
        dump = files["memory.dmp"]
        header = dump.read(0, 0x2000)
        assert struct.unpack_from("<Q", header, HEADER64_DTB)[0] == image.dtb
        assert struct.unpack_from("<Q", header, HEADER64_KDBG)[0] == image.kdbg_va


def _write_dump_zero_filling_eio(dump, out: Path) -> None:
    """memory.dmp as a file, the pages that fail to decode written as zeros (what a reader of the
    mount that skips EIO pages would save)."""
    with open(out, "wb") as handle:
        for offset in range(0, dump.size, PAGE):
            try:
                handle.write(dump.read(offset, PAGE))
            except MemfsError:
                handle.write(bytes(min(PAGE, dump.size - offset)))


def test_kdmp_parser_reads_cr3_and_kdbg_from_the_damaged_image_dump(damaged_hiberfil, tmp_path) -> None:
    path, image = damaged_hiberfil
    out = tmp_path / "memory.dmp"
    with open_image(str(path)) as source:
        _write_dump_zero_filling_eio(build_files(source, discover(source))["memory.dmp"], out)
    parser = independent_reader("kdmp_parser").KernelDumpParser(str(out))
    assert parser.directory_table_base == image.dtb
    assert parser.header.KdDebuggerDataBlock == image.kdbg_va
    assert parser.translate_virtual(image.kdbg_va) == image.kdbg_pa


def test_info_reports_the_skipped_units(damaged_hiberfil, capsys) -> None:
    path, image = damaged_hiberfil
    assert memfs_main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["discovery"]["skipped_units"] == 1 and info["discovery"]["complete"] is True
    assert info["directory_table_base"] == f"{image.dtb:#x}"
    assert info["kd_debugger_data_block"] == f"{image.kdbg_va:#x}"
    assert memfs_main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Undecodable units skipped" in text and "[Decode failures]" in text


class _Failing(BufferSource):
    """A source whose reads of the pages in ``bad`` fail, as undecodable units do (one unit per page)."""

    def __init__(self, memory: bytes, bad: range, error: type[MemfsError] = CorruptionError) -> None:
        super().__init__([(0, memory)])
        self.bad = bad
        self.error = error
        self.attempts = 0

    def _read_mapped(self, pa: int, n: int) -> bytes:
        first, last = pa // PAGE, (pa + n - 1) // PAGE
        if any(page in self.bad for page in range(first, last + 1)):
            self.attempts += 1
            page = next(page for page in range(first, last + 1) if page in self.bad)
            raise self.error(f"<memory>: offset {page * PAGE:#x}: unit does not decode")
        return super()._read_mapped(pa, n)


def test_bad_pages_read_as_zeros_once_and_good_pages_as_they_are() -> None:
    memory = bytes(range(256)) * 64  # 4 pages
    source = _Failing(memory, range(1, 2))
    view = TolerantMemory(source)
    assert view.read(0, 4 * PAGE) == memory[:PAGE] + bytes(PAGE) + memory[2 * PAGE :]
    assert view.damaged(PAGE) and not view.damaged(0)
    attempts = source.attempts
    assert view.read(PAGE + 8, 16) == bytes(16)  # known bad: not decoded again
    assert view.read(0, 4 * PAGE)[2 * PAGE :] == memory[2 * PAGE :]
    assert source.attempts == attempts
    assert list(view.skipped) == ["<memory>: offset 0x1000: unit does not decode"]


def test_a_changed_source_stops_discovery_instead_of_being_skipped() -> None:
    image = build_image(mode="x64", size=16 << 20)
    source = _Failing(image.memory, range(0, 1 << 20), SourceChangedError)
    found = discover(source)
    assert found.stopped and "unit does not decode" in found.stopped
    assert found.skipped_units == []


def test_too_many_undecodable_units_end_discovery() -> None:
    image = build_image(mode="x64", size=16 << 20)
    source = _Failing(image.memory, range(0, 1 << 20))
    started = time.monotonic()
    found = discover(source)
    assert time.monotonic() - started < 10
    assert found.stopped and "more than 1024 units" in found.stopped
    assert len(found.skipped_units) == 1025


def test_a_crafted_image_cannot_keep_discovery_busy(tmp_path) -> None:
    """Six pages that alias the whole kernel half onto one page full of KDBG candidates: an unbounded
    scan takes minutes (210 s measured); discovery ends at its budget, in bounded memory."""
    path = aliased_kernel(tmp_path / "aliased.raw")
    with open_image(str(path), OpenOptions(format="raw")) as source:
        tracemalloc.start()
        started = time.monotonic()
        try:
            found = discover(source, seconds=2.0)
        finally:
            elapsed = time.monotonic() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    assert found.stopped == "the time budget of 2 s for kernel discovery ran out"
    assert "ntoskrnl" in dict(found.rows)["Kernel image"]  # it got as far as the kernel scan
    assert elapsed < 4.0
    assert peak < 16 << 20
