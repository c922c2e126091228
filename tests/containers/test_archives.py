"""gzip images and images in ZIP/tar archives: every byte, member choice, independent readers, bad input."""

from __future__ import annotations

import gzip
import random
import tarfile
import zipfile

import pytest

from memfs.containers import archive, gzip_stream
from memfs.exceptions import CorruptionError, DecompressionError, FormatError, MemfsError
from tests.containers.file_source import FileSource


def _same(stream, expected: bytes, seed: str) -> None:
    assert stream.size == len(expected)
    assert stream.pread(0, stream.size + 1) == expected
    rng = random.Random(seed)
    for _ in range(100):
        offset = rng.randrange(stream.size)
        n = rng.choice([1, 4096, 1 << 20, 3 << 20])
        assert stream.pread(offset, n) == expected[offset : offset + n]
    whole = bytearray(stream.size)
    assert stream.readinto(0, memoryview(whole)) == stream.size and whole == expected


def test_gzip_of_a_crash_dump(fixtures):
    built = fixtures["crash.dmp.gz"]
    head = built.path.read_bytes()[:64]
    assert gzip_stream.probe(head, None)
    stream = gzip_stream.open_stream(FileSource(built.path), cache_size=1 << 20)
    try:
        _same(stream, built.expected, "gz")
        assert gzip.decompress(built.path.read_bytes()) == built.expected  # the stdlib agrees
    finally:
        stream.close()


@pytest.mark.parametrize("cut", ["truncated", "corrupt"])
def test_damaged_gzip_is_one_line(fixtures, tmp_path, cut):
    data = bytearray(fixtures["crash.dmp.gz"].path.read_bytes())
    if cut == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(
        CorruptionError, match=r"bad.gz: offset 0x0: the gzip stream starting here does not inflate"
    ):
        gzip_stream.open_stream(FileSource(path))


@pytest.mark.parametrize(
    ("name", "kind"),
    [("triage.zip", "zip"), ("stored.zip", "zip"), ("image.tar", "tar")],
)
def test_single_image_member_is_found_by_itself(fixtures, name, kind):
    built = fixtures[name]
    source = FileSource(built.path)
    head = built.path.read_bytes()[:512]
    assert (archive.probe_zip if kind == "zip" else archive.probe_tar)(head, None)
    assert [m.path for m in archive.candidates(source, kind)] == [built.member]
    stream = archive.open_member(source, kind, cache_size=1 << 20)
    try:
        _same(stream, built.expected, name)
    finally:
        stream.close()
        source.close()


def test_members_agree_with_the_standard_library(fixtures):
    for name in ("triage.zip", "two.zip"):
        path = fixtures[name].path
        with zipfile.ZipFile(path) as reference:
            source = FileSource(path)
            for member in archive.list_members(source, "zip"):
                stream = archive.open_member(source, "zip", member.path)
                assert stream.pread(0, stream.size) == reference.read(member.path)
    with tarfile.open(fixtures["image.tar"].path) as reference:
        source = FileSource(fixtures["image.tar"].path)
        for member in archive.list_members(source, "tar"):
            stream = archive.open_member(source, "tar", member.path)
            assert stream.pread(0, stream.size) == reference.extractfile(member.path).read()


def test_several_candidates_need_member(fixtures):
    source = FileSource(fixtures["two.zip"].path)
    with pytest.raises(
        MemfsError, match=r"holds 2 candidate images: a/PhysicalMemory.dd, b/crash.dmp; choose one"
    ):
        archive.open_member(source, "zip")
    stream = archive.open_member(source, "zip", "b/crash.dmp")
    assert stream.pread(0, stream.size) == fixtures["two.zip"].expected
    with pytest.raises(MemfsError, match=r"no member 'c/x'; members: a/PhysicalMemory.dd, b/crash.dmp"):
        archive.open_member(source, "zip", "c/x")


def test_archive_with_no_image(fixtures):
    with pytest.raises(
        MemfsError, match=r"empty.zip: offset 0x0: zip archive holds no memory image; members: readme.txt"
    ):
        archive.open_member(FileSource(fixtures["empty.zip"].path), "zip")


def test_tar_gz_stacks(fixtures, tmp_path):
    built = fixtures["image.tar.gz"]
    inner = gzip_stream.open_stream(FileSource(built.path))
    assert archive.probe_tar(inner.pread(0, 512), inner)
    stream = archive.open_member(inner, "tar")
    assert stream.pread(0, 8) == b"PAGEDU64"
    inner.close()


def test_truncated_zip_is_one_line(fixtures, tmp_path):
    data = fixtures["triage.zip"].path.read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut.zip: offset 0x0: zip archive does not list its members"):
        archive.open_member(FileSource(path), "zip")


def test_corrupt_deflated_member(fixtures, tmp_path):
    data = bytearray(fixtures["triage.zip"].path.read_bytes())
    source = FileSource(fixtures["triage.zip"].path)
    member = archive.pick(source, "zip")
    data[member.data_offset + member.data_size // 2] ^= 0xFF
    path = tmp_path / "bad.zip"
    path.write_bytes(bytes(data))
    with pytest.raises((CorruptionError, DecompressionError), match=r"bad.zip\[C/hiberfil.sys\]"):
        archive.open_member(FileSource(path), "zip", "C/hiberfil.sys")


def test_unsupported_method_is_one_line(tmp_path, raw_image):
    path = tmp_path / "bz.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as out:
        out.writestr("memory.raw", raw_image[:100000])
    with pytest.raises(FormatError, match=r"uses ZIP compression method 12; only stored \(0\) and deflate"):
        archive.open_member(FileSource(path), "zip")


def test_s2_image_inside_a_collection_zip_stacks(fixtures, raw_image):
    """ZIP member (deflated) → S2 stream → raw image: each layer takes the byte source the last returns."""
    from memfs.containers import snappy_stream

    source = FileSource(fixtures["collection.zip"].path)
    member = archive.open_member(source, "zip")
    assert snappy_stream.probe(member.pread(0, 64), member)
    image = snappy_stream.open_stream(member)
    try:
        assert image.format_name == "s2"
        assert image.pread(0, image.size) == raw_image
    finally:
        image.close()
        source.close()
