"""AVML: the decoded LiME image, Volatility 3's AVML layer page by page, and bad input."""

from __future__ import annotations

import ctypes.util
import struct

import pytest

from memfs.containers import avml
from memfs.exceptions import CorruptionError, DecompressionError
from memfs.formats.lime import LimeSource
from scripts import make_container_fixtures as make
from tests.containers.file_source import FileSource, probe_input

RANGES = make.avml_ranges()


def _open(path):
    return avml.open_stream(FileSource(path), cache_size=1 << 20)


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_decodes_to_the_lime_image(fixtures):
    built = fixtures["image.avml"]
    assert avml.probe(probe_input(built.path))
    stream = _open(built.path)
    assert stream.size == len(built.expected)
    assert stream.pread(0, stream.size) == built.expected
    whole = bytearray(stream.size)
    stream.readinto(0, memoryview(whole))
    assert whole == built.expected
    assert stream.blocks == 4  # 3 ranges, the second split in 1 MiB blocks with two all-zero ones left out


def test_lime_reader_maps_the_decoded_ranges(fixtures):
    with LimeSource(_open(fixtures["image.avml"].path)) as source:
        for address, data in RANGES:
            assert source.read(address, len(data)) == data


@pytest.mark.skipif(
    ctypes.util.find_library("snappy") is None, reason="Volatility's AVML layer needs libsnappy"
)
def test_volatility_avml_layer_agrees_page_by_page(fixtures):
    from volatility3.framework.layers.avml import AVMLLayer

    from tests.readers import vol3_layer

    layer = vol3_layer(AVMLLayer, fixtures["image.avml"].path)
    stream = _open(fixtures["image.avml"].path)
    lime = stream.pread(0, stream.size)
    pos = pages = 0
    while pos < len(lime):
        _, _, first, last, _ = struct.unpack_from("<IIQQ8s", lime, pos)
        data = lime[pos + 32 : pos + 32 + last - first + 1]
        for page in range(0, len(data), 4096):
            assert bytes(layer.read(first + page, 4096)) == data[page : page + 4096]
            pages += 1
        pos += 32 + len(data)
    assert pages == 300 + 200 + 64  # every stored page (all-zero blocks are not stored)


def test_corrupt_chunk_fails_only_its_bytes(fixtures, tmp_path):
    data = bytearray(fixtures["image.avml"].path.read_bytes())
    data[32 + 10 + 4 + 4 + 500] ^= 0xFF  # inside the first chunk of the first block
    stream = _open(_write(tmp_path, "bad.avml", bytes(data)))
    expected = fixtures["image.avml"].expected
    with pytest.raises(DecompressionError, match=r"bad.avml: offset 0x2a"):
        stream.pread(32, 10)
    assert stream.failures.count == 1
    assert stream.pread(32 + 65536, 1 << 30) == expected[32 + 65536 :]


def test_truncated_file_keeps_what_is_whole(fixtures, tmp_path):
    data = fixtures["image.avml"].path.read_bytes()
    stream = _open(_write(tmp_path, "cut.avml", data[: len(data) - 5000]))
    lime = stream.pread(0, stream.size)
    assert any("cut short" in note for note in stream.notes)
    expected = fixtures["image.avml"].expected
    # the last block is shortened: its LiME header says so, the bytes before it are unchanged
    *_, last_header = _headers(lime)
    assert lime[:last_header] == expected[:last_header]
    _, _, first, last, _ = struct.unpack_from("<IIQQ8s", lime, last_header)
    assert last_header + 32 + last - first + 1 == len(lime)


def _headers(lime: bytes):
    pos = 0
    while pos < len(lime):
        yield pos
        _, _, first, last, _ = struct.unpack_from("<IIQQ8s", lime, pos)
        pos += 32 + last - first + 1


def test_lying_trailer_is_one_line(fixtures, tmp_path):
    block = make.avml_image([(0, make.memory_like(16, 1))])
    bad = bytearray(block)
    bad[-8:] = struct.pack("<Q", 12345)
    with pytest.raises(CorruptionError, match="AVML trailer states 0x3039 compressed bytes"):
        _open(_write(tmp_path, "trailer.avml", bytes(bad)))


def test_bad_magic_after_the_first_block(tmp_path):
    block = make.avml_image([(0, make.memory_like(16, 1))])
    with pytest.raises(CorruptionError, match=rf"offset {len(block):#x}: expected an AVML v2 block header"):
        _open(_write(tmp_path, "magic.avml", block + b"JUNK" * 8))


def test_header_with_inverted_range(tmp_path):
    path = _write(tmp_path, "inverted.avml", struct.pack("<IIQQQ", 0x4C4D5641, 2, 0x2000, 0x1000, 0))
    with pytest.raises(CorruptionError, match="offset 0x0: AVML block ends"):
        _open(path)
