"""The modern walk's C loop (memfs/formats/_hiberwalk.c) against its Python loop: the same index, always.

``walk_phase`` hands runs of ordinary compression sets to C when it can read the file's descriptor, and
walks every other set in Python.  Random chains of sets — valid, damaged, 20-bit sizes, sets of more than
16 pages, bad page numbers, files cut short — must give the same index arrays, the same walk report and
the same error from both.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memfs.byte_source import FileByteSource
from memfs.exceptions import CorruptionError
from memfs.formats import hiberfil_modern as modern
from memfs.formats.hiberfil import _OpenTimeReader
from memfs.formats.hiberfil_index import IndexBuilder

PAGE = 0x1000
LIMIT = 0x400  # pages below this are valid

pytestmark = pytest.mark.skipif(modern.scan_sets is None, reason="memfs.formats._hiberwalk is not built")


@st.composite
def set_bytes(draw, dsz: int) -> bytes:
    """One compression set (header, descriptors, data) in the §3.6 layout, often valid, sometimes not."""
    d = draw(st.one_of(st.integers(1, 4), st.integers(0, 20)))
    descriptors = []
    pages = 0
    for _ in range(d):
        count = draw(st.integers(1, 16))
        pfn = draw(st.one_of(st.integers(0, LIMIT - 17), st.integers(0, LIMIT + 4)))
        descriptors.append(pfn << 4 | (count - 1))
        pages += count
    full = pages * PAGE
    size = draw(
        st.one_of(
            st.just(full),  # stored
            st.sampled_from((full - 1, full + 1)),  # around the rule's edge
            st.integers(1, max(1, full)),
            st.integers(1, 0x3FFFFF),  # maybe too large: only a 20-bit reading (or nothing) fits
            st.just(0),
        )
    )
    method = draw(st.integers(0, 3))
    extra = draw(st.sampled_from((0, 0, 0, 3 << 20)))  # bits 28-29: 24H2's 20-bit size field (§3.6)
    head = struct.pack("<I", (d & 0xFF) | ((size & 0x3FFFFF) << 8 | extra << 8) & 0x3FFFFF00 | method << 30)
    body = b"".join(struct.pack("<Q" if dsz == 8 else "<I", x & (2 ** (8 * dsz) - 1)) for x in descriptors)
    data_size = size if 0 < size <= full else (size & 0xFFFFF if 0 < size & 0xFFFFF <= full else 0)
    return head + body + bytes(min(data_size, 0x20000))


@st.composite
def chains(draw):
    dsz = draw(st.sampled_from((4, 8)))
    sets = draw(st.lists(set_bytes(dsz), min_size=1, max_size=25))
    data = b"".join(sets)
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    count = draw(st.one_of(st.none(), st.integers(1, 400)))
    return dsz, data if cut is None else data[:cut], count


def _walk(path: Path, fd: int | None, dsz: int, count: int | None):
    data = FileByteSource(str(path))
    read = _OpenTimeReader(data, fd) if fd is not None else data.pread
    builder = IndexBuilder()
    try:
        walk = modern.walk_phase(read, "img", path.stat().st_size, 1, count, dsz, builder, LIMIT, "kernel")
        outcome = ("ok", walk)
    except CorruptionError as exc:
        outcome = (type(exc).__name__, str(exc))
    finally:
        data.close()
    arrays = [
        bytes(a)
        for a in (
            builder.unit_off,
            builder.unit_csize,
            builder.unit_pages,
            builder.unit_kind,
            builder.unit_head,
            builder.run_pfn,
            builder.run_count,
            builder.run_unit,
            builder.run_slot,
        )  # fmt: skip
    ]
    return outcome, arrays, builder.pages, builder.end_offset


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chains())
def test_c_and_python_walks_agree(tmp_path, chain):
    dsz, data, count = chain
    path = tmp_path / "chain.bin"
    path.write_bytes(bytes(PAGE) + data)
    fd = os.open(path, os.O_RDONLY)
    try:
        fast = _walk(path, fd, dsz, count)
    finally:
        os.close(fd)
    assert fast == _walk(path, None, dsz, count)


def test_the_c_loop_walks_the_ordinary_sets(tmp_path, monkeypatch):
    """On a chain of ordinary sets the C loop does the walking (not just the Python fallback)."""
    sets = b"".join(
        struct.pack("<IQ", 1 | (0x300 << 8) | (2 << 30), (16 * n) << 4 | 15) + bytes(0x300) for n in range(40)
    )
    path = tmp_path / "chain.bin"
    path.write_bytes(bytes(PAGE) + sets)
    calls = []
    scan = modern.scan_sets
    monkeypatch.setattr(modern, "scan_sets", lambda *args: calls.append(args) or scan(*args))
    fd = os.open(path, os.O_RDONLY)
    try:
        outcome, arrays, pages, _ = _walk(path, fd, 8, 640)
    finally:
        os.close(fd)
    assert outcome[0] == "ok" and outcome[1].sets == 40 and pages == 640
    assert len(calls) == 1
