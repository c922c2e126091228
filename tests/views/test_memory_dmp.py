"""memory.dmp: header per docs/formats/crashdump.md §15, page data equal to physmem (plus the documented
overlays),
accepted by kdmp-parser, Volatility 3 and memfs's own crash-dump reader."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from memfs.byte_source import FileByteSource
from memfs.detect import open_image
from memfs.formats.raw import RawSource
from memfs.kernel.discover import discover
from memfs.memory import BufferSource, Metadata
from memfs.views.memory_dmp import MAX_RUNS, MEMFS_BUGCHECK_CODE, MemoryDmpFile, page_runs
from memfs.views.tree import build_files
from scripts import make_crashdump_fixtures as mk
from tests.kernel.conftest import VARIANTS
from tests.readers import independent_reader, kdmp_read_pages, vol3_crash_read

PAGE = 0x1000
FILETIME_EPOCH_OFFSET = 116444736000000000


def _write(dump: MemoryDmpFile, path: Path) -> bytes:
    data = b"".join(dump.read(off, 1 << 20) for off in range(0, dump.size, 1 << 20))
    assert len(data) == dump.size
    path.write_bytes(data)
    return data


def _expected_physmem(source, dump: MemoryDmpFile) -> bytearray:
    """physmem.bin with memory.dmp's overlays applied, over the dump's page span."""
    end = (dump.runs[-1][0] + dump.runs[-1][1]) * PAGE
    memory = bytearray(source.read(0, source.size).ljust(end, b"\0"))
    for pa, data, _ in dump.overlays:
        memory[pa : pa + len(data)] = data
    return memory


@pytest.fixture(scope="module")
def raw_dumps(windows_images, fixture_dir):
    """memory.dmp of every synthetic raw image, written out: name -> (image, source, dump, path, bytes)."""
    built = {}
    for name, image in windows_images.items():
        source = RawSource(FileByteSource(str(image.path)))
        dump = build_files(source, discover(source))["memory.dmp"]
        path = fixture_dir / f"windows_{name}.dmp"
        built[name] = (image, source, dump, path, _write(dump, path))
    yield built
    for _, source, *_ in built.values():
        source.close()


# -- runs ---------------------------------------------------------------------------------------


def test_page_runs_round_merge_and_fill_smallest_gaps() -> None:
    assert page_runs([(0x10, 0x20), (0x1000, 0x1000), (0x5000, 1)]) == ([(0, 2), (5, 1)], 0)
    rng = random.Random(2)
    runs, pfn = [], 0
    for _ in range(50):
        pfn += rng.randrange(2, 60)
        runs.append((pfn * PAGE, PAGE))
    merged, added = page_runs(runs, 32)
    assert len(merged) == 32
    covered = {p for base, count in merged for p in range(base, base + count)}
    assert all(start // PAGE in covered for start, _ in runs)
    assert added == sum(count for _, count in merged) - 50
    gaps = sorted(runs[i + 1][0] // PAGE - runs[i][0] // PAGE - 1 for i in range(49))
    assert added == sum(gaps[:18])  # exactly the 18 smallest gaps were filled


def test_many_runs_merge_to_the_limit_and_read_back() -> None:
    rng = random.Random(11)
    segments, pa = [], 0
    for _ in range(45):
        pa += rng.randrange(1, 40) * PAGE + rng.randrange(0, 3) * 0x10
        data = rng.randbytes(rng.randrange(1, 5) * PAGE - rng.randrange(0, 2) * 0x30)
        segments.append((pa, data))
        pa += len(data)
    source = BufferSource(segments)
    dump = MemoryDmpFile(source, discover(source))
    assert len(dump.runs) == MAX_RUNS
    header = dump.read(0, 0x2000)
    nruns, _, npages = struct.unpack_from("<IIQ", header, 0x88)
    assert (nruns, npages) == (MAX_RUNS, dump.total_pages)
    assert struct.unpack_from("<q", header, 0xFA0)[0] == dump.size == 0x2000 + npages * PAGE
    offset = 0x2000
    for i in range(nruns):
        base, count = struct.unpack_from("<QQ", header, 0x98 + 16 * i)
        expected = source.read(base * PAGE, count * PAGE).ljust(count * PAGE, b"\0")
        assert dump.read(offset, count * PAGE) == expected
        # unaligned reads straddling the header, run boundaries and the end
        for _ in range(3):
            start = rng.randrange(0, dump.size)
            n = rng.randrange(1, 3 * PAGE)
            got = dump.read(start, n)
            assert len(got) == min(n, dump.size - start)
        offset += count * PAGE
    assert dump.read(dump.size, 10) == b""
    assert dump.read(dump.size - 5, 10) == dump.read(dump.size - 5, 5)


# -- the header ---------------------------------------------------------------------------------


def _check_header(data: bytes, image, dump: MemoryDmpFile) -> None:
    """The validator checks of docs/formats/crashdump.md §14 plus the §15 field values."""
    x64 = image.arch == "x64"
    assert data[:8] == (b"PAGEDU64" if x64 else b"PAGEDUMP")
    if x64:
        major, minor, dtb, pfn, mods, procs, machine, cpus, code = struct.unpack_from("<IIQQQQIII", data, 8)
        kdbg = struct.unpack_from("<Q", data, 0x80)[0]
        nruns, _, npages = struct.unpack_from("<IIQ", data, 0x88)
        runs = [struct.unpack_from("<QQ", data, 0x98 + 16 * i) for i in range(nruns)]
        dump_type, required, systime = struct.unpack_from("<IxxxxqQ", data, 0xF98)
        uptime = struct.unpack_from("<Q", data, 0x1030)[0]
        product, suite = struct.unpack_from("<II", data, 0x1040)
        comment = data[0xFB0 : 0xFB0 + 128]
        ctx = data[0x348 : 0x348 + 0x4D0]
        assert struct.unpack_from("<I", ctx, 0x34) == struct.unpack_from("<I", ctx, 0x118)  # kdmp-parser rule
        assert struct.unpack_from("<6H", ctx, 0x38) == (0x10, 0x2B, 0x2B, 0x53, 0x2B, 0x18)
        assert struct.unpack_from("<Q", ctx, 0xF8)[0] == image.contexts[0]["rip"]
        assert data[0xF00 : 0xF00 + 0x98] == bytes(0x98)  # Exception zeroed, not 'PAGE' (§4.2)
        assert nruns <= 42 and machine == 0x8664
    else:
        major, minor, dtb, pfn, mods, procs, machine, cpus, code = struct.unpack_from("<IIIIIIIII", data, 8)
        kdbg = struct.unpack_from("<I", data, 0x60)[0]
        nruns, npages = struct.unpack_from("<II", data, 0x64)
        runs = [struct.unpack_from("<II", data, 0x6C + 8 * i) for i in range(nruns)]
        dump_type = struct.unpack_from("<I", data, 0xF88)[0]
        product, suite = struct.unpack_from("<II", data, 0xF94)
        (required,) = struct.unpack_from("<q", data, 0xFA0)
        uptime, systime = struct.unpack_from("<QQ", data, 0xFB8)
        comment = data[0x820 : 0x820 + 128]
        ctx = data[0x320 : 0x320 + 0x2CC]
        assert struct.unpack_from("<I", ctx, 0xBC)[0] == 0x08
        assert struct.unpack_from("<I", ctx, 0xC8)[0] == 0x10
        assert struct.unpack_from("<I", ctx, 0xB8)[0] == image.contexts[0]["eip"]
        assert data[0x5C] == (1 if image.pae else 0)
        assert data[0x7D0 : 0x7D0 + 0x50] == bytes(0x50)
        assert nruns <= 86 and machine == 0x14C
    assert nruns <= 32  # old LeechCore (§14.2)
    assert dump_type == 1 and major == 0xF and minor == image.build
    assert (dtb, kdbg, pfn) == (image.dtb, image.kdbg_va, image.pfn_database)
    assert (mods, procs) == (image.ps_loaded_module_list, image.ps_active_process_head)
    assert cpus == len(image.prcbs)
    assert code == MEMFS_BUGCHECK_CODE
    text = comment.rstrip(b"\0")
    assert text.startswith(b"generated by memfs ") and text.endswith(b" from raw")
    assert npages == sum(count for _, count in runs)
    assert required == len(data) == (0x2000 if x64 else 0x1000) + npages * PAGE  # exact (§5.7)
    assert all(runs[i][0] + runs[i][1] < runs[i + 1][0] for i in range(len(runs) - 1))
    assert systime == int(image.system_time.timestamp() * 10**7) + FILETIME_EPOCH_OFFSET
    assert uptime == int(image.system_uptime.total_seconds() * 10**7)
    assert (product, suite) == (image.product_type, image.suite_mask)


@pytest.mark.parametrize("name", VARIANTS)
def test_header_fields(raw_dumps, name) -> None:
    image, _, dump, _, data = raw_dumps[name]
    _check_header(data, image, dump)


@pytest.mark.parametrize("name", VARIANTS)
def test_page_data_is_physmem_plus_overlays_only(raw_dumps, name) -> None:
    image, source, dump, _, data = raw_dumps[name]
    hdr = 0x2000 if image.arch == "x64" else 0x1000
    body = data[hdr:]
    assert len(body) == image.size
    overlaid = set()
    for pa, patch, _ in dump.overlays:
        assert body[pa : pa + len(patch)] == patch
        overlaid.update(range(pa, pa + len(patch)))
    differing = {i for i in range(0, image.size, PAGE) if body[i : i + PAGE] != image.memory[i : i + PAGE]}
    assert differing == {pa & ~0xFFF for pa in overlaid}
    assert differing  # the selector fix-ups at least (the builder leaves selectors zero)


@pytest.mark.parametrize("name", VARIANTS)
def test_read_into_gives_the_same_bytes_as_read(raw_dumps, name) -> None:
    """The bulk path (``memfs convert``): header, page data and overlays, in odd-sized windows."""
    _, _, dump, _, data = raw_dumps[name]
    assert dump.overlays
    for step in (0x1F00 + 0x11, 1 << 20):
        buffer = bytearray(step)
        for offset in range(0, dump.size + step, step):
            got = dump.read_into(offset, buffer)
            assert buffer[:got] == data[offset : offset + step]


@pytest.mark.parametrize("name", VARIANTS)
def test_memfs_crashdump_reader_reads_it_back(raw_dumps, name) -> None:
    image, source, dump, path, _ = raw_dumps[name]
    expected = _expected_physmem(source, dump)
    with open_image(str(path)) as reread:
        assert reread.metadata.format == "crashdump"
        assert reread.metadata.directory_table_base == image.dtb
        assert reread.read(0, reread.size) == bytes(expected[: reread.size])


@pytest.mark.parametrize("name", [n for n in VARIANTS if n.startswith("x64")])
def test_kdmp_parser_accepts_and_agrees(raw_dumps, name) -> None:
    image, source, dump, path, _ = raw_dumps[name]
    expected = _expected_physmem(source, dump)
    pages = kdmp_read_pages(path)
    assert len(pages) == dump.total_pages
    for pa, data in pages.items():
        assert data == bytes(expected[pa : pa + PAGE]), hex(pa)
    parser = independent_reader("kdmp_parser").KernelDumpParser(str(path))
    assert parser.directory_table_base == image.dtb
    space = dump.discovery.space
    for va in (image.kernel_base, image.kdbg_va, image.kdbg_va + 0x400, image.ps_loaded_module_list,
               image.kuser_va, image.prcbs[-1], image.context_ptrs[0], image.ki_processor_block):  # fmt: skip
        assert parser.translate_virtual(va) == space.translate(va) == image.translate(va), hex(va)
    kdbg = parser.read_virtual_page(image.kdbg_va & ~0xFFF)
    off = image.kdbg_va & 0xFFF
    assert bytes(kdbg[off + 0x10 : off + 0x14]) == b"KDBG"  # decoded in the dump even when encoded in RAM
    assert bytes(kdbg[off : off + 0x40]) == image.kdbg_plain[:0x40]


@pytest.mark.parametrize("name", VARIANTS)
def test_volatility3_accepts_and_agrees(raw_dumps, name) -> None:
    _, source, dump, path, _ = raw_dumps[name]
    expected = _expected_physmem(source, dump)
    for pa in range(0, len(expected), 1 << 20):
        assert vol3_crash_read(path, pa, 1 << 20) == bytes(expected[pa : pa + (1 << 20)]), hex(pa)


# -- header.txt -----------------------------------------------------------------------------------


def test_header_txt_shows_discovery_and_the_dump(raw_dumps) -> None:
    _, source, *_ = raw_dumps["x64_encoded"]
    text = build_files(source, discover(source))["header.txt"].read(0, 1 << 20).decode()
    assert "[Kernel discovery (symbol-free)]" in text
    assert "encoded (Windows 8+)" in text
    assert "[memory.dmp]" in text
    assert "nothing known to be missing" in text
    assert "decoded KDBG" in text


def test_undiscoverable_image_still_gets_a_dump_and_says_what_is_missing(tmp_path) -> None:
    path = tmp_path / "noise.raw"
    path.write_bytes(random.Random(9).randbytes(4 << 20))
    with RawSource(FileByteSource(str(path))) as source:
        files = build_files(source, discover(source))
        dump = files["memory.dmp"]
        data = _write(dump, tmp_path / "noise.dmp")
        assert data[:8] == b"PAGEDU64" and dump.size == 0x2000 + (4 << 20)
        assert data[0x2000:] == path.read_bytes()
        text = files["header.txt"].read(0, 1 << 20).decode()
        assert "WinDbg will miss" in text and "no DirectoryTableBase" in text
        assert "architecture unknown" in text
        assert kdmp_read_pages(tmp_path / "noise.dmp")[0x3000] == data[0x5000:0x6000]


# -- crash-dump sources ---------------------------------------------------------------------------

CRASH_FIXTURES = [n for n, kw in mk.FIXTURES.items() if kw["dump_type"] != 4]


@pytest.mark.parametrize("name", CRASH_FIXTURES)
def test_crash_dump_source_keeps_its_header_and_pages(fixture_dir, name) -> None:
    src_path = fixture_dir / f"src_{name}"
    pages = mk.build_dump(src_path, **mk.FIXTURES[name])
    width = mk.FIXTURES[name]["width"]
    hdr = 0x2000 if width == 64 else 0x1000
    original = src_path.read_bytes()[:hdr]
    with open_image(str(src_path)) as source:
        dump = build_files(source, discover(source))["memory.dmp"]
        assert dump.kept_header and dump.overlays == []
        out = fixture_dir / f"out_{name}"
        data = _write(dump, out)
    memory_desc = (0x88, 0x88 + 700) if width == 64 else (0x64, 0x64 + 700)
    dump_type_off = 0xF98 if width == 64 else 0xF88
    changed = {i for i in range(hdr) if data[i] != original[i]}
    allowed = set(range(*memory_desc)) | set(range(dump_type_off, dump_type_off + 4))
    allowed |= set(range(0xFA0, 0xFA8))  # RequiredDumpSpace
    assert changed <= allowed
    assert struct.unpack_from("<I", data, dump_type_off)[0] == 1
    with open_image(str(out)) as reread:
        for pfn, page in pages.items():
            assert reread.read(pfn * PAGE, PAGE) == page
        assert reread.present_bytes == len(pages) * PAGE
    if width == 64:
        kd_pages = kdmp_read_pages(out)
        assert kd_pages == {pfn * PAGE: page for pfn, page in pages.items()}
    for pfn in list(pages)[:: max(1, len(pages) // 16)]:
        assert vol3_crash_read(out, pfn * PAGE, PAGE) == pages[pfn]


def test_a_context_the_source_states_wins_over_discovery(windows_images) -> None:
    image = windows_images["x64"]
    meta = Metadata(format="hiberfil", arch="x64", directory_table_base=image.dtb)
    meta.context = {"rip": 0xFFFFF80002A01234, "rsp": 0xFFFFE00012480000, "rflags": 0x10246, "cr3": image.dtb}
    source = BufferSource([(0, image.memory)], meta)
    header = MemoryDmpFile(source, discover(source)).read(0, 0x2000)
    ctx = header[0x348 : 0x348 + 0x4D0]
    assert struct.unpack_from("<Q", ctx, 0xF8)[0] == 0xFFFFF80002A01234
    assert struct.unpack_from("<Q", ctx, 0x98)[0] == 0xFFFFE00012480000
    assert struct.unpack_from("<I", ctx, 0x44)[0] == 0x10246
    assert struct.unpack_from("<H", ctx, 0x38)[0] == 0x10
    # without one, CPU 0's context found by discovery
    source = BufferSource([(0, image.memory)])
    header = MemoryDmpFile(source, discover(source)).read(0, 0x2000)
    assert struct.unpack_from("<Q", header, 0x348 + 0xF8)[0] == image.contexts[0]["rip"]


class _OffersDumpHeader(BufferSource):
    """An in-memory source that offers a crash-dump header, whatever its format name says."""

    def __init__(self, segments, header: bytes) -> None:
        super().__init__(segments, Metadata(format="memory", arch="x64"))
        self._header = header

    def dump_header(self) -> bytes:
        return self._header


def test_a_header_the_source_offers_is_kept_whatever_its_format(fixture_dir) -> None:
    """memory.dmp asks the source (MemorySource.dump_header), not its format name or its file."""
    path = fixture_dir / "offered_header.dmp"
    mk.build_dump(path, **mk.FIXTURES["full64.dmp"])
    original = path.read_bytes()[:0x2000]
    source = _OffersDumpHeader([(0x1000, bytes(PAGE)), (0x5000, bytes(2 * PAGE))], original)
    dump = MemoryDmpFile(source, discover(source))
    header = dump.read(0, 0x2000)
    assert dump.kept_header and dump.overlays == []
    assert header[:0x88] == original[:0x88]  # everything before the memory description is the source's
    assert struct.unpack_from("<IxxxxQ", header, 0x88) == (2, 3)  # runs and pages rewritten
    # a header of the wrong width is not kept: a 64-bit dump cannot carry a 32-bit header
    source = _OffersDumpHeader([(0x1000, bytes(PAGE))], original[:0x1000])
    assert not MemoryDmpFile(source, discover(source)).kept_header
