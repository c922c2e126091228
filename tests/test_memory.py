"""The memory-source base class: run splitting, holes, clamping, and the raw reader."""

from __future__ import annotations

import os

import pytest

from memfs.detect import OpenOptions, open_image
from memfs.exceptions import CorruptionError, MemfsError, UnknownFormatError
from memfs.memory import BufferSource


def make_source() -> BufferSource:
    return BufferSource([(0x1000, b"A" * 0x1000), (0x3000, b"B" * 0x800), (0x3800, b"C" * 0x800)])


def test_runs_are_kept_sorted_and_unmerged_for_buffers() -> None:
    source = make_source()
    assert source.runs == ((0x1000, 0x1000), (0x3000, 0x800), (0x3800, 0x800))
    assert source.size == 0x4000
    assert source.present_bytes == 0x2000


def test_read_fills_holes_with_zeros_and_crosses_runs() -> None:
    source = make_source()
    assert source.read(0, 0x1000) == bytes(0x1000)
    assert source.read(0xFFE, 4) == b"\0\0AA"
    assert source.read(0x1FFE, 4) == b"AA\0\0"
    assert source.read(0x37FE, 4) == b"BBCC"
    assert (
        source.read(0x0, 0x4000)
        == bytes(0x1000) + b"A" * 0x1000 + bytes(0x1000) + b"B" * 0x800 + b"C" * 0x800
    )


def test_read_clamps_at_the_end() -> None:
    source = make_source()
    assert source.read(0x3FFE, 100) == b"CC"
    assert source.read(0x4000, 100) == b""
    assert source.read(0x10000, 1) == b""


def test_read_into_matches_read_across_runs_holes_and_the_end() -> None:
    source = make_source()
    for pa in range(0, 0x4100, 0x1F0):
        for n in (1, 0x7FF, 0x1001, 0x4000):
            buffer = bytearray(b"\xee" * n)
            expected = source.read(pa, n)
            assert source.read_into(pa, buffer) == len(expected)
            assert buffer[: len(expected)] == expected
            assert buffer[len(expected) :] == b"\xee" * (n - len(expected))  # untouched past the end


def test_is_present() -> None:
    source = make_source()
    assert not source.is_present(0xFFF)
    assert source.is_present(0x1000)
    assert not source.is_present(0x2000)
    assert source.is_present(0x3FFF)


def test_next_present_steps_over_holes() -> None:
    source = make_source()
    assert source.next_present(0) == 0x1000
    assert source.next_present(0x1234) == 0x1234
    assert source.next_present(0x2000) == 0x3000
    assert source.next_present(0x3800) == 0x3800
    assert source.next_present(0x4000) is None


def test_overlapping_runs_are_refused() -> None:
    with pytest.raises(CorruptionError, match="overlaps"):
        BufferSource([(0x1000, b"A" * 0x1000), (0x1800, b"B" * 0x1000)])


def test_raw_image_reads_back(tmp_path) -> None:
    data = os.urandom(0x5123)
    path = tmp_path / "image.raw"
    path.write_bytes(data)
    with open_image(str(path)) as source:
        assert source.metadata.format == "raw"
        assert source.runs == ((0, len(data)),)
        assert source.read(0, len(data)) == data
        assert source.read(0x5000, 0x1000) == data[0x5000:]
        buffer = bytearray(0x1000)
        assert source.read_into(0x4800, memoryview(buffer)) == 0x923
        assert buffer[:0x923] == data[0x4800:]
        # What a reader's tables point past the end of the file is one clear error, both ways.
        for read in (
            lambda: source._pread(0x5120, 8),
            lambda: source._pread_into(0x5120, memoryview(buffer)[:8]),
        ):
            with pytest.raises(CorruptionError, match="offset 0x5123: file ends 0x5 bytes before"):
                read()


def test_empty_file_is_an_error(tmp_path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(UnknownFormatError, match=r"empty.*offset 0x0: file is empty"):
        open_image(str(path))
    with pytest.raises(UnknownFormatError, match="file is empty"):
        open_image(str(path), OpenOptions(format="raw"))


def test_directory_and_missing_file(tmp_path) -> None:
    with pytest.raises(MemfsError, match="is a directory"):
        open_image(str(tmp_path))
    with pytest.raises(MemfsError, match="no such file"):
        open_image(str(tmp_path / "nope"))
    with pytest.raises(MemfsError, match="unknown format"):
        open_image(str(tmp_path / "nope"), OpenOptions(format="rar"))
