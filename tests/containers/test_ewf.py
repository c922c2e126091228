"""EWF: segmented ewfacquire images checked against ewfexport; a chunk failing its checksum fails alone."""

from __future__ import annotations

import shutil
import subprocess

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
    with pytest.raises(FormatError, match=r"bad.E01: offset 0x0: EWF segments do not parse"):
        _open(bad)
