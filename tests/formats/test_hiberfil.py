"""Hibernation reader: every layout family, WAKE / zeroed-header variants, and hostile input.

Fixtures come from ``scripts.make_hiberfil_fixtures`` (a known memory image stored with our encoders);
reading the whole physical space must give that image back byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from memfs.detect import OpenOptions, detect_format, open_image
from memfs.exceptions import CorruptionError, DecompressionError, FormatError, MemfsError
from memfs.formats.hiberfil_index import KIND_HUFFMAN, KIND_PLAIN, KIND_RAW
from memfs.kernel.discover import discover, merge_metadata
from memfs.report import info_dict
from memfs.views.header_txt import render_header
from memfs.views.tree import build_files
from scripts import make_hiberfil_fixtures as mk
from tests.readers import independent_reader

PAGE = 0x1000
ZEROED = {name for name, recipe in mk.FIXTURES.items() if recipe.zero_header}


@pytest.fixture(scope="session")
def built(fixture_dir: Path):
    """Every fixture, built once per session on first use."""
    cache: dict[str, mk.FixtureInfo] = {}

    def get(name: str) -> mk.FixtureInfo:
        if name not in cache:
            cache[name] = mk.build_fixture(name, fixture_dir)
        return cache[name]

    return get


def _copy(info: mk.FixtureInfo, tmp_path: Path, patch=None) -> Path:
    data = bytearray(info.path.read_bytes())
    if patch:
        data = patch(data) or data
    out = tmp_path / f"{info.name}.patched"
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("name", list(mk.FIXTURES))
def test_reads_the_source_image(built, name):
    info = built(name)
    with open_image(str(info.path)) as src:
        assert src.metadata.format == "hiberfil"
        assert src.size == info.physmem_size
        data = src.read(0, src.size)
        assert hashlib.sha256(data).hexdigest() == info.sha256
        assert src.metadata.arch == info.arch
        assert src.det.family == info.family
        if name in ZEROED:
            assert src.det.layout is None and src.det.recovered
        else:
            assert src.det.layout.key == info.layout
        # Legacy files state CR3 (processor-state page); modern ones leave it to kernel discovery,
        # which must find it in the restored memory (low stub / self-referencing tables, §3.8).
        stated = info.cr3 if info.family == "legacy" else None
        assert src.metadata.directory_table_base == stated
        found = discover(src)
        assert merge_metadata(src.metadata, found).directory_table_base == info.cr3
        assert src.metadata.directory_table_base == stated  # discovery never writes into the source
        assert src.failures.count == 0


@pytest.mark.parametrize("name", sorted(set(mk.FIXTURES) - ZEROED))
def test_header_fields_are_read_where_the_builder_wrote_them(built, name):
    """The builder states every layout offset itself, from docs/formats/hibernation.md and apart from the
    reader's tables: each header field it wrote must come back with its value, and the reader must not
    have needed a fallback (a misplaced page count is otherwise walked around, leaving only a note)."""
    info = built(name)
    fields = dict(info.header)
    filetime = datetime(1601, 1, 1, tzinfo=timezone.utc) + timedelta(
        microseconds=fields.pop("SystemTime") // 10
    )
    with open_image(str(info.path)) as src:
        assert src.metadata.system_time == filetime
        text = render_header(src)
        for field, value in fields.items():
            assert re.search(rf"^{re.escape(field)}\b[^:\n]*: {value:#x}$", text, re.M), field
        assert [note for note in src.metadata.notes if not note.startswith("signature WAKE")] == []


@pytest.mark.parametrize("name", ["win7-x64", "win11-24h2-x64", "win10-1809-x86", "xp-x86"])
def test_describe_shows_layout_cr3_and_counts(built, name):
    info = built(name)
    with open_image(str(info.path)) as src:
        found = discover(src)
        text = build_files(src, found)["header.txt"].read(0, 1 << 20).decode()  # as mounted
        assert re.search(rf"Layout +: {info.layout}:", text)
        assert "Detected by" in text and "LengthSelf" in text
        unit = "Xpress blocks" if info.family == "legacy" else "Compression sets"
        assert f"{unit}  " in text or f"{unit} " in text
        assert re.search(rf"Pages mapped +: {info.pages}\n", text)
        assert "Slack" in text
        assert re.search(rf"DirectoryTableBase \(CR3\) +: {info.cr3:#x}\n", text)
        assert re.search(r"System time \(UTC\) +: 2024-01-", text)
        meta = info_dict(src, found)
        assert meta["format"] == "hiberfil"
        assert meta["arch"] == info.arch
        assert meta["system_time"].startswith("2024-01-")
        assert meta["directory_table_base"] == f"{info.cr3:#x}"


def test_legacy_context_and_pae(built):
    with open_image(str(built("win7-x86-pae").path)) as src:
        assert src.metadata.pae is True
        assert src.metadata.context["eip"] == 0x8283ABCD
        assert src.det.proc_page == 1
    with open_image(str(built("xp-x86").path)) as src:
        assert src.metadata.pae is False
        assert src.metadata.system_uptime.total_seconds() == 3600
        assert src.det.proc_page == 2
    with open_image(str(built("vista-sp0-x64").path)) as src:
        assert src.det.proc_page == 4
        assert src.metadata.context["rip"] == 0xFFFFF8021234ABCD


def test_ambiguous_length_self_is_resolved_by_probing(built):
    """0x128 is Vista SP0 x64 and 7 x64; 0xE0 Vista SP0 x86 and 7 x86; 0xF0 Vista SP1 and SP2 x86
    (docs/formats/hibernation.md §1.3 step 4)."""
    for name, key in (
        ("vista-sp0-x64", "vista-sp0-x64"),
        ("win7-x64", "win7-x64"),
        ("vista-sp0-x86", "vista-sp0-x86"),
        ("win7-x86-pae", "win7-x86"),
        ("vista-sp1-x86", "vista-sp1-x86"),
        ("vista-sp2-x86", "vista-sp2-x86"),
    ):
        with open_image(str(built(name).path)) as src:
            assert src.det.layout.key == key
            assert "walks validated for 1 of 2" in src.det.how


def test_modern_sets_mix_codecs_and_big_sets(built):
    with open_image(str(built("win11-24h2-x64").path)) as src:
        counts = src._index.kind_counts()
        assert counts[KIND_RAW] and counts[KIND_PLAIN] and counts[KIND_HUFFMAN]
        assert any(walk.big_sets for walk in src.det.walks)
        assert any(walk.size20 for walk in src.det.walks)  # 24H2: size read as 20 bits
        assert src.metadata.os_build == 26100
        assert src.metadata.number_processors == 4
    with open_image(str(built("win7-x64").path)) as src:
        assert src.det.walks[0].tables >= 2  # a multi-table chain


def test_wake_signature_is_read_with_a_note(built):
    for name in ("win10-1809-x64-wake", "xp-x86-wake"):
        with open_image(str(built(name).path)) as src:
            assert any("WAKE" in note for note in src.metadata.notes)
            assert "wake" in render_header(src).lower()


@pytest.mark.parametrize("name", sorted(ZEROED))
def test_zeroed_header_is_recovered(built, name):
    info = built(name)
    assert detect_format(str(info.path)).name == "hiberfil-recover"
    with open_image(str(info.path)) as src:
        text = render_header(src)
        assert "recovered without a header" in text
        assert f"{info.pages} pages in" in text
        assert "header zeroed" in src.det.how


def test_index_is_lazy_and_small(built):
    for name in ("win7-x64", "win10-1809-x86", "win10-1809-x64", "win10-1809-x64-zeroed"):
        with open_image(str(built(name).path)) as src:
            assert src.cache.stats()["misses"] == 0  # nothing decoded at open
            if src.det.family == "modern":
                assert src._index.nbytes() / src._index.pages < 8


def test_open_is_fast_on_a_large_sparse_file(tmp_path):
    import time

    path = tmp_path / "large.hiberfil"
    info = mk.build_large(path, 0.25, sparse=True)
    start = time.perf_counter()
    with open_image(str(path)) as src:
        elapsed = time.perf_counter() - start
        assert src._index.pages == info["pages"]
        assert src._index.nbytes() / info["pages"] < 3
    assert elapsed < 2.0


def test_layout_override(built, tmp_path):
    info = built("win7-x64")
    with open_image(str(info.path), OpenOptions(hiber_layout="win7-x64")) as src:
        assert "override" in src.det.how
    with pytest.raises(FormatError, match="unknown hibernation layout"):
        open_image(str(info.path), OpenOptions(hiber_layout="win99"))
    with pytest.raises(CorruptionError):
        open_image(str(info.path), OpenOptions(hiber_layout="vista-sp2-x64"))


def test_unknown_length_self_is_probed(built, tmp_path):
    info = built("win10-1809-x64")
    path = _copy(info, tmp_path, lambda d: struct.pack_into("<I", d, 0xC, 0x520))
    with open_image(str(path)) as src:
        assert "not a known value" in src.det.how
        assert hashlib.sha256(src.read(0, src.size)).hexdigest() == info.sha256


def test_wrong_kernel_page_count_falls_back_to_the_walk(built, tmp_path):
    """KernelPagesProcessed is unconfirmed for 11 21H2 (§8.3): a wrong value must not lose memory."""
    info = built("win11-21h2-x64")
    path = _copy(info, tmp_path, lambda d: struct.pack_into("<Q", d, 0x230, 5))
    with open_image(str(path)) as src:
        assert any("KernelPagesProcessed" in note for note in src.metadata.notes)
        assert hashlib.sha256(src.read(0, src.size)).hexdigest() == info.sha256


# -- hostile input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["win7-x64", "win10-1809-x64", "xp-x86"])
def test_truncated_file_is_one_clear_error(built, tmp_path, name):
    info = built(name)
    path = _copy(info, tmp_path, lambda d: d[: len(d) // 2])
    with pytest.raises(
        CorruptionError, match=r"offset 0x[0-9a-f]+: .*(end of the file|outside the file)"
    ) as exc:
        open_image(str(path))
    assert str(path) in str(exc.value)


def test_tiny_file_with_signature(tmp_path):
    path = tmp_path / "tiny"
    path.write_bytes(b"HIBR" + bytes(100))
    with pytest.raises(CorruptionError, match="at least two pages"):
        open_image(str(path))


def test_table_chain_loop(built, tmp_path):
    info = built("win7-x64")  # first table at page 6 is full and chains on
    path = _copy(info, tmp_path, lambda d: struct.pack_into("<Q", d, 6 * PAGE, 6))
    with pytest.raises(CorruptionError, match="loops back to page 0x6"):
        open_image(str(path))


def test_counts_past_eof(built, tmp_path):
    legacy = built("xp-x86")  # XP x86 table: EndPage of range 0 at +0x18; make it cover 64 Ki pages

    def grow(d):
        start = struct.unpack_from("<I", d, 6 * PAGE + 0x14)[0]
        struct.pack_into("<I", d, 6 * PAGE + 0x18, start + 0x10000)

    with pytest.raises(
        CorruptionError, match="more Xpress blocks than the file holds|past the end|no Xpress block header"
    ):
        open_image(str(_copy(legacy, tmp_path, grow)))
    modern = built("win10-1809-x64")
    with pytest.raises(CorruptionError, match="NumPagesForLoader"):
        open_image(str(_copy(modern, tmp_path, lambda d: struct.pack_into("<Q", d, 0x58, 1 << 40))))
    with pytest.raises(CorruptionError, match="boot phase"):
        open_image(str(_copy(modern, tmp_path, lambda d: struct.pack_into("<Q", d, 0x58, 0x200))))
    with pytest.raises(CorruptionError, match="EntryCount|entries"):
        open_image(str(_copy(legacy, tmp_path, lambda d: struct.pack_into("<I", d, 6 * PAGE + 0xC, 0x1000))))


def test_set_whose_size_lies(built, tmp_path):
    info = built("win10-1809-x64")
    boot = 8 * PAGE

    def lie(d):
        head = struct.unpack_from("<I", d, boot)[0]
        struct.pack_into("<I", d, boot, head + (0x10 << 8))

    with pytest.raises(
        CorruptionError, match=r"offset 0x[0-9a-f]+: invalid compression set in the boot phase"
    ):
        open_image(str(_copy(info, tmp_path, lie)))


def _first_unit(src, kind):
    index = src._index
    return next(u for u in range(index.units) if index.unit_kind[u] == kind)


@pytest.mark.parametrize("name,kind", [("win10-1809-x64", KIND_HUFFMAN), ("win7-x64", KIND_PLAIN)])
def test_decoder_error_fails_only_that_unit(built, tmp_path, name, kind):
    info = built(name)
    with open_image(str(info.path)) as src:
        unit = _first_unit(src, kind)
        ref = src._index.unit(unit)
        victim = next(p for p in range(len(src._index.run_pfn)) if src._index.run_unit[p] == unit)
        victim_pa = src._index.run_pfn[victim] * PAGE

    def smash(d):
        d[ref.data_off : ref.data_off + ref.csize] = b"\xff" * ref.csize

    path = _copy(info, tmp_path, smash)
    expected = bytearray(mk.build_bytes(name)[1])
    with open_image(str(path)) as src:
        with pytest.raises(DecompressionError, match=f"offset {ref.head:#x}"):
            src.read(victim_pa, PAGE)
        with pytest.raises(DecompressionError):
            src.read(victim_pa, PAGE)  # still failing, still one recorded failure
        assert src.failures.count == 1
        assert f"{ref.head:#x}" in render_header(src)
        # Every page outside the damaged unit still reads correctly.
        bad = {
            src._index.run_pfn[p] + j
            for p in range(len(src._index.run_pfn))
            if src._index.run_unit[p] == unit
            for j in range(src._index.run_count[p])
        }
        for start, length in src.runs:
            for pa in range(start, start + length, PAGE):
                if pa // PAGE not in bad:
                    assert src.read(pa, PAGE) == expected[pa : pa + PAGE]


def test_legacy_block_size_lie_is_resynced(built, tmp_path):
    """A block whose size field is too small: the next header is found by the 10 KiB resync (§2.7)."""
    info = built("win7-x64")
    block = 7 * PAGE

    def lie(d):
        value = struct.unpack_from("<I", d, block + 8)[0]
        struct.pack_into("<I", d, block + 8, value - (0x100 << 10))

    path = _copy(info, tmp_path, lie)
    with open_image(str(path)) as src:
        assert src.det.walks[0].resyncs == 1
        with pytest.raises(DecompressionError):
            src.read(src._index.run_pfn[0] * PAGE, PAGE)
        assert src.failures.count == 1


@pytest.mark.parametrize("seed", [1, 2])
def test_random_and_raw_images_are_not_hibernation(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "random.bin"
    path.write_bytes(rng.randbytes(256 * 1024))
    assert detect_format(str(path)).name == "raw"
    raw_like = bytes(PAGE) + b"".join(mk._page(rng, k % 5, k) for k in range(63))
    path.write_bytes(raw_like)
    assert detect_format(str(path)).name == "raw"


def test_wiped_wake_file_says_so(built, tmp_path):
    info = built("win10-1809-x64-wake")
    path = _copy(info, tmp_path, lambda d: d[:PAGE] + bytes(len(d) - PAGE))
    with pytest.raises(MemfsError, match="WAKE"):
        open_image(str(path))


def test_builder_cli(tmp_path):
    assert mk.main([str(tmp_path), "win8-x64"]) == 0
    assert (tmp_path / "win8-x64.hiberfil").stat().st_size > 0
    os.remove(tmp_path / "win8-x64.hiberfil")


@pytest.mark.parametrize("name", ["win7-x64", "xp-x86", "win10-1809-x64", "win10-1809-x86"])
def test_random_damage_never_hangs_or_escapes(built, tmp_path, name):
    """Flip bytes in headers and tables: open either works or raises MemfsError; reads likewise."""
    info = built(name)
    original = info.path.read_bytes()
    rng = random.Random(name)
    path = tmp_path / "damaged"
    for _ in range(40):
        data = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(0, min(len(data), 12 * PAGE))
            data[pos] = rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            src = open_image(str(path))
        except MemfsError:
            continue
        with src:
            for start, length in src.runs:
                for pa in range(start, start + length, 16 * PAGE):
                    with contextlib.suppress(MemfsError):
                        src.read(pa, 16 * PAGE)


def test_page_stored_twice_uses_the_later_copy():
    from memfs.formats.hiberfil_index import IndexBuilder

    b = IndexBuilder()
    first = b.add_unit(0x1000, 0x1004, 100, 4, KIND_PLAIN)
    b.add_run(10, 4, first, 0)  # pages 10-13
    second = b.add_unit(0x2000, 0x2004, 100, 2, KIND_PLAIN)
    b.add_run(12, 2, second, 0)  # pages 12-13 again, later
    index = b.finish("x")
    assert index.duplicates == 2
    assert list(index.run_pfn) == [10, 12]
    assert list(index.run_unit) == [first, second]
    assert index.byte_runs() == [(10 * PAGE, 4 * PAGE)]


def test_rstr_signature_is_reported(built, tmp_path):
    info = built("win10-1809-x64")
    path = _copy(info, tmp_path, lambda d: d.__setitem__(slice(0, 4), b"RSTR"))
    assert detect_format(str(path)).name == "hiberfil"
    with open_image(str(path)) as src:
        assert "restore in progress" in render_header(src)
        assert hashlib.sha256(src.read(0, src.size)).hexdigest() == info.sha256


@pytest.mark.parametrize("name", ["xp-x86", "win7-x64", "win81-x64", "win11-24h2-x64"])
def test_read_into_matches_the_image_and_bypasses_the_cache(built, name):
    """Bulk reads decode whole units straight into the buffer; units cut by a chunk's ends or split
    over map runs go through the cache.  Either way the bytes are the image's."""
    info = built(name)
    expected = mk.build_bytes(name)[1]
    with open_image(str(info.path)) as src:
        buffer = bytearray(src.size)
        assert src.read_into(0, buffer) == src.size
        assert hashlib.sha256(buffer).hexdigest() == info.sha256
        # Units held whole by one map run bypassed the cache; the others were each decoded once into it.
        index = src._index
        whole = {
            index.run_unit[p]
            for p in range(len(index.run_pfn))
            if index.run_slot[p] == 0 and index.run_count[p] == index.unit_pages[index.run_unit[p]]
        }
        compressed = {u for u in range(index.units) if index.unit_kind[u] != KIND_RAW}
        assert src.cache.stats()["misses"] == len(compressed - whole)
        step = 0x3000 + 0x123  # odd chunks: units cut at both ends
        view = memoryview(bytearray(step))
        for pa in range(0, src.size, step):
            got = src.read_into(pa, view)
            assert view[:got] == expected[pa : pa + step]


def test_read_into_reports_an_undecodable_unit(built, tmp_path):
    name = "win10-1809-x64"
    info = built(name)
    with open_image(str(info.path)) as src:
        ref = src._index.unit(_first_unit(src, KIND_HUFFMAN))
    path = _copy(
        info,
        tmp_path,
        lambda d: d.__setitem__(slice(ref.data_off, ref.data_off + ref.csize), b"\xff" * ref.csize),
    )
    with open_image(str(path)) as src:
        with pytest.raises(DecompressionError, match=f"offset {ref.head:#x}"):
            src.read_into(0, bytearray(src.size))
        assert src.failures.count == 1


@pytest.mark.parametrize("cache_size", [64 << 20, 1 << 20])
def test_sequential_odd_sized_reads(built, cache_size):
    """Reads that cut units at both ends, with a cache that holds many units or only a few."""
    info = built("win10-1809-x64")
    expected = mk.build_bytes("win10-1809-x64")[1]
    with open_image(str(info.path), OpenOptions(cache_size=cache_size)) as src:
        chunks = [src.read(pa, 0x6000) for pa in range(0, src.size, 0x6000)]
        assert b"".join(chunks) == expected


def test_concurrent_sequential_readers(built):
    """Several threads streaming different parts at once (FUSE's threads do this) read correct data."""
    import threading

    info = built("win11-24h2-x64")
    expected = mk.build_bytes("win11-24h2-x64")[1]
    errors: list[BaseException] = []
    with open_image(str(info.path), OpenOptions(cache_size=8 << 20)) as src:
        quarter = src.size // 4

        def stream(first: int) -> None:
            try:
                for pa in range(first, first + quarter, 0x5000):
                    n = min(0x5000, first + quarter - pa)
                    assert src.read(pa, n) == expected[pa : pa + n]
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=stream, args=(k * quarter,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors


def test_too_small_kernel_count_is_noted(built, tmp_path):
    info = built("win10-1809-x64")
    with open_image(str(info.path)) as src:
        kernel = src.det.walks[1]
        # Pages of the first kernel set: the smallest count that still ends on a set boundary.
        head = src.byte_source.pread(kernel.start, 132)
        count = head[0]
        first_set_pages = sum(
            (int.from_bytes(head[4 + 8 * i : 12 + 8 * i], "little") & 0xF) + 1 for i in range(count)
        )
        assert not any("continue after" in note for note in src.metadata.notes)
    path = _copy(info, tmp_path, lambda d: struct.pack_into("<Q", d, 0x230, first_set_pages))
    with open_image(str(path)) as src:
        assert any("continue after the kernel phase" in note for note in src.metadata.notes)


def test_cli_info_json_and_layout_override(built):
    import json
    import subprocess
    import sys

    info = built("win7-x64")
    cmd = [sys.executable, "-m", "memfs", "info", "--json", str(info.path)]
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    assert out["format"] == "hiberfil" and out["directory_table_base"] == f"{info.cr3:#x}"
    assert out["context"]["rip"] == "0xfffff8021234abcd"
    bad = subprocess.run(
        [*cmd[:-1], "--hiber-layout", "xp-x86", str(info.path)], capture_output=True, text=True
    )
    assert bad.returncode != 0
    assert f"{info.path}: offset 0x" in bad.stderr


@pytest.mark.parametrize("name", ["win11-24h2-x64", "win7-x64", "win10-1809-x86"])
def test_fixture_units_decode_with_an_independent_decoder(built, name):
    """The fixtures' Xpress streams are standard: xpress_lz77 (Rust, PyPI) decodes each one identically."""
    xpress_lz77 = independent_reader("xpress_lz77")
    with open_image(str(built(name).path)) as src:
        index = src._index
        checked = 0
        for unit in range(index.units):
            kind = index.unit_kind[unit]
            if kind == KIND_RAW:
                continue
            data = src._pread(index.unit_off[unit], index.unit_csize[unit])
            size = index.unit_pages[unit] * PAGE
            # xpress_lz77 raises pyo3 PanicException (a BaseException) on some inputs:
            # docs/formats/xpress.md §5
            try:
                if kind == KIND_PLAIN:
                    theirs = bytes(xpress_lz77.lz77_plain_decompress_py(data))[:size]
                else:
                    theirs = bytes(xpress_lz77.lz77_huffman_decompress_py(data, size))[:size]
            except BaseException as exc:
                pytest.fail(f"xpress_lz77 rejects unit {unit}: {exc!r}")
            assert theirs == src._decode(unit)
            checked += 1
        assert checked > 10


# -- random access: units decoded only as far as a small read needs (docs/performance.md, "Random access")


def _whole_units(src, kind, pages=16):
    """(unit, pa of its slot 0) for units of ``kind`` held by one map run of ``pages`` pages."""
    index = src._index
    return [
        (index.run_unit[r], index.run_pfn[r] * PAGE)
        for r in range(len(index.run_pfn))
        if index.run_slot[r] == 0
        and index.run_count[r] == pages
        and index.unit_pages[index.run_unit[r]] == pages
        and index.unit_kind[index.run_unit[r]] == kind
    ]


def test_a_small_read_decodes_a_huffman_unit_only_up_to_its_page(built):
    info = built("win10-1809-x64")
    expected = mk.build_bytes("win10-1809-x64")[1]
    with open_image(str(info.path)) as src:
        unit, pa = _whole_units(src, KIND_HUFFMAN)[0]
        assert src.read(pa + PAGE, PAGE) == expected[pa + PAGE : pa + 2 * PAGE]
        prefix = src.cache.get(unit, lambda: pytest.fail("the unit should be cached"))
        assert 2 * PAGE <= len(prefix) < 16 * PAGE
        assert prefix == expected[pa : pa + len(prefix)]
        view = memoryview(bytearray(PAGE))  # read_into (the FUSE path) too, beyond the prefix
        assert (
            src.read_into(pa + 15 * PAGE, view) == PAGE and view == expected[pa + 15 * PAGE : pa + 16 * PAGE]
        )
        assert len(src.cache.get(unit, lambda: b"")) == 16 * PAGE  # extended: decoded whole
        assert src.cache.stats()["misses"] == 2


@pytest.mark.parametrize(
    ("name", "kind", "size"), [("win7-x64", KIND_PLAIN, PAGE), ("win10-1809-x64", KIND_HUFFMAN, 0x20000)]
)
def test_plain_units_and_large_reads_decode_whole_units(built, name, kind, size):
    info = built(name)
    with open_image(str(info.path)) as src:
        index = src._index
        unit = _first_unit(src, kind)
        run = next(r for r in range(len(index.run_pfn)) if index.run_unit[r] == unit)
        src.read(index.run_pfn[run] * PAGE, size)
        assert len(src.cache.get(unit, lambda: b"")) == index.unit_pages[unit] * PAGE


def test_random_small_reads_give_the_image_within_the_budget(built):
    info = built("win11-24h2-x64")
    expected = mk.build_bytes("win11-24h2-x64")[1]
    rng = random.Random(16)
    budget = 6 * 16 * PAGE
    with open_image(str(info.path), OpenOptions(cache_size=budget)) as src:
        view = memoryview(bytearray(3 * PAGE))
        for _ in range(3000):
            pa = rng.randrange(src.size // PAGE) * PAGE
            size = rng.choice((1, 100, PAGE, 3 * PAGE))
            got = src.read(pa, size) if rng.random() < 0.5 else view[: src.read_into(pa, view[:size])]
            assert got == expected[pa : pa + size]
            assert src.cache.current_bytes <= budget


def test_damage_past_a_prefix_fails_only_the_pages_it_reaches(built):
    """A stream cut short still serves the pages before the cut; the others give one failure."""
    info = built("win10-1809-x64")
    expected = mk.build_bytes("win10-1809-x64")[1]
    with open_image(str(info.path)) as src:
        unit, pa = _whole_units(src, KIND_HUFFMAN)[0]
        src._index.unit_csize[unit] //= 2
        assert src.read(pa, PAGE) == expected[pa : pa + PAGE]
        with pytest.raises(DecompressionError, match=f"offset {src._index.unit_head[unit]:#x}"):
            src.read(pa + 15 * PAGE, PAGE)
        assert src.failures.count == 1
        assert src.read(pa, PAGE) == expected[pa : pa + PAGE]  # still cached
