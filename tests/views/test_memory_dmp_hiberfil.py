"""memory.dmp built from hibernation files: the header keeps what the file states (CR3, PAE, time,
context) and the page data equals physmem; kdmp-parser, Volatility 3 and memfs's crash-dump reader
accept it."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from memfs.detect import open_image
from memfs.kernel.discover import discover
from memfs.views.tree import build_files
from scripts import make_hiberfil_fixtures as mk
from tests.readers import kdmp_read_pages, vol3_crash_read

PAGE = 0x1000
NAMES = ["xp-x86", "win7-x86-pae", "win7-x64", "win10-1809-x64", "win11-24h2-x64"]


@pytest.mark.parametrize("name", NAMES)
def test_memory_dmp_from_hibernation_file(fixture_dir: Path, name: str) -> None:
    info = mk.build_fixture(name, fixture_dir)
    out = fixture_dir / f"{name}.memory.dmp"
    with open_image(str(info.path)) as source:
        dump = build_files(source, discover(source))["memory.dmp"]
        meta = dump.metadata  # what the file states, with what discovery found
        out.write_bytes(b"".join(dump.read(off, 1 << 20) for off in range(0, dump.size, 1 << 20)))
        physmem = source.read(0, source.size)
        runs = source.runs
    data = out.read_bytes()
    x64 = meta.arch == "x64"
    assert data[:8] == (b"PAGEDU64" if x64 else b"PAGEDUMP")
    dtb = struct.unpack_from("<Q" if x64 else "<I", data, 0x10)[0]
    assert dtb == (meta.directory_table_base or 0)
    if not x64:
        assert data[0x5C] == (1 if meta.pae else 0)
    pc = "rip" if x64 else "eip"
    if meta.context and pc in meta.context:  # the KPROCESSOR_STATE context goes into the header
        context = 0x348 if x64 else 0x320
        offset = 0xF8 if x64 else 0xB8
        assert struct.unpack_from("<Q" if x64 else "<I", data, context + offset)[0] == meta.context[pc]
    expected = bytearray(physmem)
    for pa, patch, _ in dump.overlays:
        expected[pa : pa + len(patch)] = patch
    with open_image(str(out)) as reread:
        assert reread.read(0, len(expected)) == bytes(expected)
        assert reread.present_bytes >= sum(length for _, length in runs)
    if x64:
        for pa, page in kdmp_read_pages(out).items():
            assert page == bytes(expected[pa : pa + PAGE]).ljust(PAGE, b"\0"), hex(pa)
    for pa in range(0, len(expected), 1 << 20):
        assert vol3_crash_read(out, pa, 1 << 20)[: len(expected) - pa] == bytes(expected[pa : pa + (1 << 20)])
