"""EWF: segmented ewfacquire images checked against ewfexport; a chunk failing its checksum fails alone."""

from __future__ import annotations

import shutil
import subprocess
import zlib

import pytest

from memfs.containers import ewf
from memfs.exceptions import DecompressionError, FormatError
from tests.containers.file_source import FileSource, probe_input

pytestmark = pytest.mark.skipif(shutil.which("ewfacquire") is None, reason="needs ewf-tools (apt)")


def _open(first):
    return ewf.open_stream([FileSource(p) for p in ewf.segment_paths(str(first))], cache_size=1 << 20)


def test_segmented_image_reads_back(fixtures):
    built = fixtures["image.E01"]
    paths = ewf.segment_paths(str(built.path))
    assert len(paths) >= 2 and paths[1].endswith(".E02")
    assert ewf.probe(probe_input(built.path))
    stream = _open(built.path)
    try:
        assert stream.pread(0, stream.size + 1) == built.expected
        whole = bytearray(stream.size)
        assert stream.readinto(0, memoryview(whole)) == len(built.expected) and whole == built.expected
        assert 0 < sum(stream._packed) < stream.units  # both compressed and stored chunks
    finally:
        stream.close()


def test_ewfexport_agrees(fixtures, tmp_path):
    built = fixtures["image.E01"]
    target = tmp_path / "export"
    subprocess.run(
        ["ewfexport", "-u", "-q", "-f", "raw", "-t", str(target), "-S", "0", str(built.path)],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    exported = (tmp_path / "export.raw").read_bytes()
    stream = _open(built.path)
    assert stream.pread(0, stream.size) == exported == built.expected


@pytest.mark.parametrize("packed", [1, 0])
def test_bad_chunk_fails_only_itself(fixtures, tmp_path, packed):
    built = fixtures["image.E01"]
    for path in ewf.segment_paths(str(built.path)):
        shutil.copy(path, tmp_path)
    first = tmp_path / built.path.name
    stream = _open(first)
    victim = next(i for i in range(stream.units) if stream._packed[i] == packed and stream._seg[i] == 0)
    offset = stream._off[victim] + 100
    stream.close()
    data = bytearray(first.read_bytes())
    data[offset] ^= 0xFF
    first.write_bytes(bytes(data))
    verify = subprocess.run(
        ["ewfverify", "-q", str(first)], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert verify.returncode != 0  # the independent verifier sees the damage too
    stream = _open(first)
    start, length = stream.unit_span(victim)
    with pytest.raises(DecompressionError, match=rf"image.E01: offset 0x[0-9a-f]+: EWF chunk #{victim} "):
        stream.pread(start, 10)
    assert stream.failures.count == 1
    assert stream.pread(0, start) == built.expected[:start]
    assert stream.pread(start + length, 1 << 30) == built.expected[start + length :]


def test_missing_segment_and_garbage(fixtures, tmp_path):
    built = fixtures["image.E01"]
    shutil.copy(built.path, tmp_path)  # E02 missing: a partial image that says what is missing
    stream = _open(tmp_path / built.path.name)
    assert 0 < stream.size < len(built.expected)
    assert any("the tables list" in note for note in stream.notes)
    assert stream.pread(0, stream.size) == built.expected[: stream.size]
    bad = tmp_path / "bad.E01"
    bad.write_bytes(b"EVF\x09\x0d\x0a\xff\x00" + bytes(100))
    with pytest.raises(FormatError, match=r"bad.E01: offset 0x0: EWF segments hold no volume section \(.*"
                       r"descriptor at 0xd fails its checksum"):  # fmt: skip
        _open(bad)


def _sections(data: bytes) -> list[tuple[bytes, int]]:
    """``(type, descriptor offset)`` along the chain (docs/formats/ewf.md §1, restated here: type at 0,
    next at 16, size at 24, Adler-32 of the first 72 bytes at 72)."""
    found, offset = [], 13
    while True:
        kind = data[offset : offset + 16].rstrip(b"\0")
        found.append((kind, offset))
        following = int.from_bytes(data[offset + 16 : offset + 24], "little")
        if kind in (b"done", b"next") or following == offset:
            return found
        offset = following


def _reseal(data: bytearray, at: int, length: int) -> None:
    """Write the Adler-32 of ``data[at : at + length]`` after it, as EWF does for descriptors and tables."""
    data[at + length : at + length + 4] = zlib.adler32(bytes(data[at : at + length])).to_bytes(4, "little")


def _state_huge_table(data: bytearray, chain: list[tuple[bytes, int]]) -> tuple[int, str]:
    table = next(offset for kind, offset in chain if kind == b"table")
    data[table + 76 : table + 80] = (1 << 31).to_bytes(4, "little")
    _reseal(data, table + 76, 20)
    return table, r"EWF table states 2147483648 entries; its section holds \d+"


def _loop_back(data: bytearray, chain: list[tuple[bytes, int]]) -> tuple[int, str]:
    victim, earlier = chain[2][1], chain[1][1]
    data[victim + 16 : victim + 24] = earlier.to_bytes(8, "little")
    _reseal(data, victim, 72)
    return victim, rf"EWF section names {earlier:#x}, not after itself, as the next"


@pytest.mark.parametrize("damage", [_state_huge_table, _loop_back])
def test_hostile_section_chain_is_one_line(fixtures, tmp_path, damage):
    """A table stating 2^31 entries, or a chain looping back to an earlier section (a 5 KiB fuzz input
    with such a loop took dissect.evidence's parser 5 GB): one line naming the section's offset."""
    data = bytearray(fixtures["image.E01"].path.read_bytes())
    offset, message = damage(data, _sections(data))
    path = tmp_path / "image.E01"
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=rf"image.E01: offset {offset:#x}: {message}$"):
        _open(path)


def test_cut_segment_keeps_its_tables_and_says_where(fixtures, tmp_path):
    """A segment cut inside its chain (an interrupted copy) serves the chunks its tables before the cut
    list; the note names the offset."""
    built = fixtures["image.E01"]
    data = built.path.read_bytes()
    last_table = [offset for kind, offset in _sections(data) if kind == b"table"][-1]
    end = last_table + 76 + int.from_bytes(data[last_table + 24 : last_table + 32], "little") - 76
    path = tmp_path / "image.E01"
    path.write_bytes(data[: end + 10])
    stream = _open(path)
    assert any(f"cut by the end of the file at {end:#x}" in note for note in stream.notes), stream.notes
    assert stream.size > 0 and stream.pread(0, stream.size) == built.expected[: stream.size]
