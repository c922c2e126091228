"""Snappy and S2 framed images: every byte, independent decoders, corrupt, truncated and lying input."""

from __future__ import annotations

import random
import re

import pytest

from memfs.containers import snappy_stream
from memfs.exceptions import CorruptionError, DecompressionError, FormatError, MemfsError
from scripts import make_container_fixtures as make
from tests.containers.file_source import FileSource, probe_input

FRAMED = ["raw.snappy", "raw.s2", "raw-index.s2", "raw-index-64k.s2"]


def _open(path):
    return snappy_stream.open_stream(FileSource(path), cache_size=1 << 20)


@pytest.mark.parametrize("name", FRAMED)
def test_every_byte_equals_the_image(fixtures, name):
    built = fixtures[name]
    stream = _open(built.path)
    try:
        assert stream.size == len(built.expected)
        assert stream.pread(0, stream.size + 10) == built.expected
        whole = bytearray(stream.size)
        assert stream.readinto(0, memoryview(whole)) == stream.size
        assert whole == built.expected
        rng = random.Random(name)
        for _ in range(300):
            offset = rng.randrange(stream.size)
            n = rng.choice([1, 4096, 70000, 1 << 20])
            assert stream.pread(offset, n) == built.expected[offset : offset + n]
        assert stream.failures.count == 0
    finally:
        stream.close()


def test_index_is_used_when_present(fixtures):
    assert "seek index" in _open(fixtures["raw-index.s2"].path).how
    assert "seek index" in _open(fixtures["raw-index-64k.s2"].path).how
    assert "walked" in _open(fixtures["raw.s2"].path).how


def test_snappy_fixture_has_incompressible_chunks(fixtures):
    data = fixtures["raw.snappy"].path.read_bytes()
    pos, kinds = 0, set()
    while pos < len(data):
        kinds.add(data[pos])
        pos += 4 + int.from_bytes(data[pos + 1 : pos + 4], "little")
    assert {0x00, 0x01, 0xFF} <= kinds


def test_independent_snappy_decoders_agree(fixtures, raw_image):
    data = fixtures["raw.snappy"].path.read_bytes()
    cramjam = pytest.importorskip("cramjam", reason="cramjam (a memfs dependency) is not installed")
    assert bytes(cramjam.snappy.decompress(data)) == raw_image
    snappy = pytest.importorskip("snappy", reason="python-snappy (the test extra) is not installed")
    assert snappy.StreamDecompressor().decompress(data) == raw_image


def _chunks(data: bytes):
    pos = 0
    while pos < len(data):
        length = int.from_bytes(data[pos + 1 : pos + 4], "little")
        yield pos, data[pos], length
        pos += 4 + length


@pytest.mark.parametrize("name", ["raw.snappy", "raw.s2", "raw-index-64k.s2"])
def test_corrupt_chunk_fails_only_its_bytes(fixtures, tmp_path, name):
    built = fixtures[name]
    data = bytearray(built.path.read_bytes())
    compressed = [(pos, length) for pos, kind, length in _chunks(bytes(data)) if kind == 0x00]
    pos, length = compressed[len(compressed) // 2]
    data[pos + 4 + 4 + length // 2] ^= 0x5A
    path = tmp_path / name
    path.write_bytes(bytes(data))
    stream = _open(path)
    bad = [i for i in range(stream.units) if stream._units.comp_off[i] <= pos < stream._units.comp_end[i]]
    assert len(bad) == 1
    start, size = stream.unit_span(bad[0])
    with pytest.raises(DecompressionError) as info:
        stream.pread(start + size // 2, 100)
    assert str(path) in str(info.value) and "offset 0x" in str(info.value)
    with pytest.raises(DecompressionError):
        stream.readinto(0, memoryview(bytearray(stream.size)))
    assert stream.failures.count == 1
    assert stream.pread(0, start) == built.expected[:start]
    assert stream.pread(start + size, 1 << 30) == built.expected[start + size :]


def test_truncated_stream_keeps_whole_chunks(fixtures, tmp_path):
    built = fixtures["raw.snappy"]
    data = built.path.read_bytes()
    cut = len(data) * 2 // 3
    path = tmp_path / "cut.snappy"
    path.write_bytes(data[:cut])
    stream = _open(path)
    assert 0 < stream.size < len(built.expected)
    assert stream.pread(0, stream.size) == built.expected[: stream.size]
    assert any("cut short" in note for note in stream.notes)


def test_lying_chunk_length_is_one_line(tmp_path):
    body = b"\x00\x00\x00\x00" + make._uvarint(1 << 20) + b"\x00" * 20
    path = tmp_path / "lying.snappy"
    path.write_bytes(make._chunk(0xFF, b"sNaPpY") + make._chunk(0x00, body))
    with pytest.raises(CorruptionError, match=r"offset 0xa: chunk decodes to 1048576 bytes"):
        _open(path)


def test_reserved_unskippable_chunk_is_an_error(tmp_path):
    path = tmp_path / "reserved.s2"
    path.write_bytes(make._chunk(0xFF, b"S2sTwO") + make._chunk(0x05, b"xyz"))
    with pytest.raises(CorruptionError, match="reserved unskippable chunk type 0x5"):
        _open(path)


def test_skippable_chunks_are_passed_over(tmp_path):
    payload = b"hello, memory " * 500
    chunks = make.framed_chunks(payload, 1000, make.s2_block, b"S2sTwO")
    chunks.insert(3, make._chunk(0xFE, bytes(40)))
    path = tmp_path / "padded.s2"
    path.write_bytes(b"".join(chunks))
    assert _open(path).pread(0, 1 << 20) == payload


def test_bad_index_falls_back_to_the_walk(fixtures, tmp_path, raw_image):
    data = bytearray(fixtures["raw-index.s2"].path.read_bytes())
    data[-20] ^= 0xFF  # inside the compressed offsets of the index
    path = tmp_path / "bad-index.s2"
    path.write_bytes(bytes(data))
    stream = _open(path)
    assert "walked" in stream.how or stream.pread(0, stream.size) == raw_image
    assert stream.pread(0, stream.size) == raw_image


def test_not_a_framed_stream(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00" * 100)
    assert not snappy_stream.probe_snappy(probe_input(path)) and not snappy_stream.probe_s2(probe_input(path))
    with pytest.raises(FormatError, match="offset 0x0: not a Snappy or S2 framed stream"):
        _open(path)


def test_s2_repeat_forms_decode(tmp_path):
    """Long zero runs and repeated pages use every repeat-length escape of the encoder."""
    payload = bytes(70000) + b"abcd" * 3000 + bytes(300) + make.memory_like(40, 9) + bytes(5)
    block = make.s2_block(payload)
    assert len(block) < len(payload) // 3
    path = tmp_path / "repeats.s2"
    path.write_bytes(b"".join(make.framed_chunks(payload, 4 << 20, make.s2_block, b"S2sTwO")))
    assert _open(path).pread(0, len(payload)) == payload


@pytest.mark.parametrize("name", ["raw.snappy", "raw-index-64k.s2"])
def test_parallel_readers_get_the_same_bytes(fixtures, name):
    import threading

    built = fixtures[name]
    stream = snappy_stream.open_stream(FileSource(built.path), cache_size=256 << 10)  # small: many misses
    errors = []

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(200):
            offset = rng.randrange(stream.size)
            n = rng.choice([4096, 100000])
            if stream.pread(offset, n) != built.expected[offset : offset + n]:
                errors.append(offset)

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_index_stating_a_huge_span_is_not_trusted(fixtures, tmp_path, raw_image):
    """An index whose last entry would span 1 TiB must not make a read allocate it: the stream is walked."""
    plain = fixtures["raw.s2"].path.read_bytes()
    index = make.s2_index([(0, 10)], 1 << 40, len(plain), 1 << 20)
    path = tmp_path / "huge.s2"
    path.write_bytes(plain + index)
    stream = _open(path)
    assert "walked" in stream.how and any("seek index ignored" in note for note in stream.notes)
    assert stream.size == len(raw_image) and stream.pread(0, stream.size) == raw_image


@pytest.mark.parametrize("stated", [0, 4, 19])
def test_index_trailer_stating_a_tiny_index_is_one_line(fixtures, tmp_path, stated):
    """A trailer naming an index smaller than its own header and trailer (found by the fuzzer: the empty
    read that followed was indexed, an IndexError) is corrupt input: one line naming the file."""
    plain = fixtures["raw.s2"].path.read_bytes()
    path = tmp_path / "tiny-index.s2"
    path.write_bytes(plain + stated.to_bytes(4, "little") + b"\x00xdi2s")  # the trailer: size + magic
    with pytest.raises(MemfsError, match=rf"^{re.escape(str(path))}: offset 0x[0-9a-f]+: "):
        _open(path)


@pytest.mark.parametrize("offset", [1, 2, 3, 5, 7, 8, 9, 31, 64, 1000])
def test_s2_overlapping_copies_repeat_their_period(offset):
    """A copy reaching back less than its length repeats the last ``offset`` bytes (docs/formats/snappy-s2.md
    §2.1): the decoder copies whole periods at a time, checked here for every length up to 300."""
    from memfs.containers import _s2

    seed = bytes((7 * i + 3) & 0xFF for i in range(offset))
    for length in range(4, 300, 7):
        block = bytearray(make._uvarint(offset + length))
        make._literal(block, seed)
        make._copy(block, offset, length, None)
        want = (seed * (length // offset + 2))[: offset + length]
        out = bytearray(offset + length)
        _s2.decompress_into(bytes(block), memoryview(out))
        assert out == want, (offset, length)


@pytest.mark.parametrize("length", [0, 3, 4])
def test_data_chunk_shorter_than_its_checksum_fails_its_unit(length):
    """A data chunk too short to hold its CRC and a byte, reached through an S2 index (which the walker's
    same rule never saw; found by the fuzzer: a ValueError from a negative size) fails its unit only."""
    from memfs.containers.framing import UNCOMPRESSED, decode_span

    chunk = bytes([UNCOMPRESSED]) + length.to_bytes(3, "little") + bytes(length)
    with pytest.raises(DecompressionError, match=r"^image: offset 0x10: data chunk of \d bytes is shorter"):
        decode_span("image", chunk, 0x10, memoryview(bytearray(8)), s2=True)
