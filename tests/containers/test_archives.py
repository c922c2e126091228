"""gzip images and images in ZIP/tar archives: every byte, member choice, independent readers, bad input."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import zipfile

import pytest

from memfs.containers import archive, gzip_stream
from memfs.detect import open_image, recognise
from memfs.exceptions import CorruptionError, DecompressionError, FormatError, MemfsError
from memfs.formats.base import OpenOptions, ProbeInput
from scripts import make_container_fixtures as make
from tests.containers.file_source import FileSource, probe_input


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


def _open_member(path, kind: str, member: str | None = None):
    return archive.open_member(FileSource(path), kind, recognise, member, cache_size=1 << 20)


def test_gzip_of_a_crash_dump(fixtures):
    built = fixtures["crash.dmp.gz"]
    assert gzip_stream.probe(probe_input(built.path))
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
    ("name", "kind", "why"),
    [
        ("triage.zip", "zip", "the one memory image recognised by content as hiberfil"),
        ("stored.zip", "zip", "the one memory image named like a raw image"),
        ("image.tar", "tar", "the one memory image named like a raw image"),
        ("collection.zip", "zip", "the one container recognised by content as s2"),
    ],
)
def test_single_image_member_is_found_by_itself(fixtures, name, kind, why):
    built = fixtures[name]
    assert (archive.probe_zip if kind == "zip" else archive.probe_tar)(probe_input(built.path))
    stream = _open_member(built.path, kind)
    try:
        assert stream.member.path == built.member
        assert ("Member", f"{built.member}: {why}") in stream.facts()
        _same(stream, built.expected, name)
    finally:
        stream.close()


def test_members_agree_with_the_standard_library(fixtures):
    for name in ("triage.zip", "two.zip", "stored.zip"):
        path = fixtures[name].path
        with zipfile.ZipFile(path) as reference:
            for member in archive.list_members(FileSource(path), "zip"):
                stream = _open_member(path, "zip", member.path)
                assert stream.pread(0, stream.size) == reference.read(member.path)
                stream.close()
    path = fixtures["image.tar"].path
    with tarfile.open(path) as reference:
        for member in archive.list_members(FileSource(path), "tar"):
            stream = _open_member(path, "tar", member.path)
            assert stream.pread(0, stream.size) == reference.extractfile(member.path).read()
            stream.close()


def test_several_candidates_need_member(fixtures):
    path = fixtures["two.zip"].path
    with pytest.raises(
        MemfsError,
        match=r"two.zip: offset 0x0: zip archive holds 2 candidate images: a/PhysicalMemory.dd \(raw image "
        r"by its name\), b/crash.dmp \(crashdump\); choose one with --member PATH$",
    ):
        _open_member(path, "zip")
    stream = _open_member(path, "zip", "b/crash.dmp")
    assert stream.pread(0, stream.size) == fixtures["two.zip"].expected
    assert ("Member", "b/crash.dmp: chosen with --member") in stream.facts()
    stream.close()
    with pytest.raises(MemfsError, match=r"no member 'c/x'; members: a/PhysicalMemory.dd, b/crash.dmp$"):
        _open_member(path, "zip", "c/x")


def test_memory_images_come_before_containers(tmp_path, fixtures):
    """A collection holding a hiberfil and, among user files, an archive and a gzip: the hiberfil is the
    image, and the facts name what was passed over."""
    hiberfil = fixtures["triage.zip"].expected
    path = tmp_path / "kape.zip"
    path.write_bytes(
        make._zip({
            "C/Users/x/Downloads/old.zip": make._zip({"a.txt": b"text\n" * 20}),
            "C/Windows/Logs/x.log.gz": gzip.compress(b"log line\n" * 100),
            "C/hiberfil.sys": hiberfil,
        })
    )  # fmt: skip
    stream = _open_member(path, "zip")
    try:
        assert stream.member.path == "C/hiberfil.sys"
        facts = dict(stream.facts())
        assert facts["Member"] == (
            "C/hiberfil.sys: the one memory image recognised by content as hiberfil; passed over: "
            "C/Users/x/Downloads/old.zip (zip), C/Windows/Logs/x.log.gz (gzip)"
        )
    finally:
        stream.close()
    path.write_bytes(make._zip({"a.gz": gzip.compress(b"x" * 100), "b.gz": gzip.compress(b"y" * 100)}))
    with pytest.raises(MemfsError, match=r"holds 2 candidate images: a.gz \(gzip\), b.gz \(gzip\); choose"):
        _open_member(path, "zip")


def test_archive_with_no_image(fixtures):
    with pytest.raises(
        MemfsError,
        match=r"empty.zip: offset 0x0: zip archive holds no memory image memfs recognises; members: "
        r"readme.txt \(choose one with --member PATH to read it as it is\)$",
    ):
        _open_member(fixtures["empty.zip"].path, "zip")


def test_tar_gz_stacks(fixtures):
    built = fixtures["image.tar.gz"]
    inner = gzip_stream.open_stream(FileSource(built.path))
    assert archive.probe_tar(ProbeInput.of(inner))
    stream = archive.open_member(inner, "tar", recognise)
    assert stream.pread(0, 8) == b"PAGEDU64"
    stream.close()


def test_truncated_zip_is_one_line(fixtures, tmp_path):
    data = fixtures["triage.zip"].path.read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut.zip: offset 0x0: zip archive does not list its members"):
        _open_member(path, "zip")


def test_corrupt_deflated_member(fixtures, tmp_path):
    data = bytearray(fixtures["triage.zip"].path.read_bytes())
    member = next(m for m in archive.list_members(FileSource(fixtures["triage.zip"].path), "zip"))
    assert member.path == "C/hiberfil.sys"
    data[member.data_offset + member.data_size // 2] ^= 0xFF
    path = tmp_path / "bad.zip"
    path.write_bytes(bytes(data))
    with pytest.raises((CorruptionError, DecompressionError), match=r"bad.zip\[C/hiberfil.sys\]"):
        _open_member(path, "zip", "C/hiberfil.sys")


def test_lying_member_size_is_one_line(fixtures, tmp_path):
    """A central directory that states more compressed bytes than the archive holds."""
    data = bytearray(fixtures["stored.zip"].path.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 20 : central + 24] = (len(data) * 2).to_bytes(4, "little")  # compressed size
    data[central + 24 : central + 28] = (len(data) * 2).to_bytes(4, "little")  # uncompressed size
    path = tmp_path / "liar.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(
        FormatError, match=r"liar.zip: offset 0x2f: member 'PhysicalMemory.dd' needs \d+ bytes"
    ):
        _open_member(path, "zip")


def test_unreadable_members_are_one_line(tmp_path, raw_image):
    path = tmp_path / "bz.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as out:
        out.writestr("memory.raw", raw_image[:100000])
    with pytest.raises(MemfsError, match=r"holds no memory image memfs recognises; members: memory.raw "
                       r"\(compressed with ZIP method 12\)"):  # fmt: skip
        _open_member(path, "zip")
    with pytest.raises(
        FormatError, match=r"member 'memory.raw' is compressed with ZIP method 12; only stored"
    ):
        _open_member(path, "zip", "memory.raw")


def test_sparse_tar_member_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as out:
        info = tarfile.TarInfo("mem.raw")
        info.type = tarfile.GNUTYPE_SPARSE
        info.size = 0
        out.addfile(info)
    path = tmp_path / "sparse.tar"
    path.write_bytes(buf.getvalue())
    members = archive.list_members(FileSource(path), "tar")
    assert [(m.path, m.unreadable) for m in members] == [("mem.raw", "a GNU sparse member")]
    with pytest.raises(
        FormatError, match=r"sparse.tar: offset 0x200: member 'mem.raw' is a GNU sparse member$"
    ):
        _open_member(path, "tar", "mem.raw")


def test_s2_image_inside_a_collection_zip_stacks(fixtures, raw_image):
    """ZIP member (deflated) → S2 stream → raw image, opened by the registry."""
    with open_image(str(fixtures["collection.zip"].path), OpenOptions(cache_size=1 << 20)) as source:
        assert [layer.format for layer in source.layers] == ["zip", "s2", "raw"]
        assert source.read(0, source.size) == raw_image


def test_gzip_stream_reads_in_a_forked_child(tmp_path):
    """rapidgzip's threads do not survive fork; the mount daemon is a forked child of the process that
    opened the image.  Without the stream stopping them before the fork, this child waited forever."""
    import os
    import time

    data = make.memory_like(2048, seed=21)  # 8 MiB: more than one rapidgzip chunk
    path = tmp_path / "image.gz"
    path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    stream = gzip_stream.open_stream(FileSource(path), cache_size=1 << 20)
    try:
        stream.pread(1000, 10)
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 only when every byte reads back
            ok = (
                stream.pread(0, stream.size) == data
                and stream.pread(len(data) // 3, 4096) == data[len(data) // 3 : len(data) // 3 + 4096]
            )
            os._exit(0 if ok else 1)
        deadline = time.monotonic() + 60
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if done[0] == 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not finish reading within 60 s")
        assert os.waitstatus_to_exitcode(done[1]) == 0
        assert stream.pread(0, stream.size) == data  # and the parent still reads
    finally:
        stream.close()


def _patched_central_header(raw_image, field: int, value: bytes) -> bytes:
    """A one-member ZIP whose central directory header has ``value`` at byte ``field``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("memory.raw", raw_image[:4096])
    data = bytearray(buffer.getvalue())
    central = data.index(b"PK\x01\x02")
    data[central + field : central + field + len(value)] = value
    return bytes(data)


def test_zip_needing_an_unknown_version_is_one_line(tmp_path, raw_image):
    """ "Version needed to extract" 25.5 (found by the fuzzer): the standard library's NotImplementedError
    becomes one line naming the archive."""
    path = tmp_path / "future.zip"
    path.write_bytes(_patched_central_header(raw_image, 6, (255).to_bytes(2, "little")))
    with pytest.raises(FormatError, match=rf"^{path}: offset 0x0: zip archive does not list its members"):
        _open_member(path, "zip")


def test_zip_member_with_an_empty_name_is_listed(tmp_path, raw_image):
    """A member whose name is empty (found by the fuzzer: ZipInfo.is_dir() indexed the empty name) is a
    member like any other."""
    path = tmp_path / "noname.zip"
    with zipfile.ZipFile(path, "w") as out:
        out.writestr(zipfile.ZipInfo(""), raw_image[:4096])
    members = archive.list_members(FileSource(path), "zip")
    assert [(m.path, m.size) for m in members] == [("", 4096)]
