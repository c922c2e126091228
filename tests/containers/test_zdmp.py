"""The .zdmp container (docs/formats/zdmp.md) over fixtures from scripts/make_zdmp_fixtures.py: decoded
bytes equal the inner dump's, and every kind of damage gives one clear error or fails only its block."""

from __future__ import annotations

import random
import struct
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memfs import lznt1
from memfs.containers.zdmp import UNIT, ZdmpSource, open_zdmp, probe
from memfs.detect import detect_format, open_image
from memfs.exceptions import CorruptionError, DecompressionError, FormatError, MemfsError
from memfs.formats.base import OpenOptions
from memfs.report import info_dict
from memfs.views.header_txt import render_header
from scripts.make_zdmp_fixtures import (
    FIXTURES,
    block_offsets,
    block_payloads,
    build_fixture,
    build_zdmp,
    write_zdmp,
)

from .file_source import FileByteSource

FIRST_BLOCK = 0x1000  # docs/formats/zdmp.md §2, stated here for the tests


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory) -> dict[str, tuple[Path, bytes]]:
    out = tmp_path_factory.mktemp("zdmp")
    built = {}
    for name in FIXTURES:
        path, inner, _ = build_fixture(out, name)
        built[name] = (path, inner.read_bytes())
    return built


def open_path(path) -> ZdmpSource:
    return ZdmpSource(FileByteSource(path))


def cut(path: Path, dest: Path, length: int) -> Path:
    """A copy of ``path`` truncated to ``length`` bytes."""
    dest.write_bytes(path.read_bytes()[:length])
    return dest


def rewrite(path: Path, dest: Path, edit) -> Path:
    data = bytearray(path.read_bytes())
    edit(data)
    dest.write_bytes(data)
    return dest


# -- decoding --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FIXTURES))
def test_pread_and_readinto_give_the_inner_dump(fixtures, name):
    path, inner = fixtures[name]
    source = open_path(path)
    try:
        assert source.size == len(inner)
        assert source.pread(0, len(inner) + 100) == inner
        buf = bytearray(len(inner) + 7)
        assert source.readinto(0, memoryview(buf)[3 : 3 + len(inner)]) == len(inner)
        assert buf[3 : 3 + len(inner)] == inner
        rng = random.Random(name)
        for _ in range(200):
            offset = rng.randrange(len(inner) + 10)
            n = rng.choice((1, 7, 4096, 65536, 70000, rng.randrange(1, 200000)))
            assert source.pread(offset, n) == inner[offset : offset + n]
            out = bytearray(n)
            got = source.readinto(offset, out)
            assert got == len(inner[offset : offset + n]) and out[:got] == inner[offset : offset + n]
        assert source.pread(len(inner), 10) == b"" and source.readinto(len(inner) + 5, bytearray(3)) == 0
        assert source.failures.count == 0
    finally:
        source.close()


def test_units_follow_the_blocks(fixtures):
    """Units are computed from BlockSize (docs/formats/zdmp.md §4.2): contiguous, none across a block."""
    for name in ("full64_320k.zdmp", "full64_2m.zdmp", "full64.zdmp"):
        source = open_path(fixtures[name][0])
        pos = 0
        for i in range(source.units):
            start, length = source.unit_span(i)
            assert start == pos and 0 < length <= UNIT, (name, i)
            assert start // source.block_size == (start + length - 1) // source.block_size
            assert source._unit_at(start) == source._unit_at(start + length - 1) == i
            pos += length
        assert pos == source.size
        source.close()


def test_fixture_shapes(fixtures):
    """The fixtures hold what they claim: stored blocks, short last blocks, DumpIt's block size."""
    four_k = open_path(fixtures["full64_4k.zdmp"][0])
    assert four_k.stored_blocks >= 1  # the pseudo-random page
    bitmap = open_path(fixtures["bitmap64.zdmp"][0])
    assert bitmap.stored_blocks == 1 and bitmap.size % bitmap.block_size != 0
    big = open_path(fixtures["full64_2m.zdmp"][0])
    assert big.blocks_expected == big.blocks_present == 1 and big.size < big.block_size == 0x200000
    for source in (four_k, bitmap, big):
        assert source.chain_stop is None and source.trailing_bytes == 0
        source.close()


# -- in the registry: detected from content, the crash dump reader on top (docs/formats/zdmp.md §5) ------


@pytest.mark.parametrize("name", list(FIXTURES))
def test_open_image_reads_the_inner_dump_through_the_container(fixtures, tmp_path, name):
    path, _ = fixtures[name]
    inner = path.with_suffix(".dmp")
    disguised = tmp_path / "memory.raw"  # the name says nothing: detection looks at content only
    disguised.write_bytes(path.read_bytes())
    assert detect_format(str(disguised)).name == "zdmp"
    with open_image(str(inner)) as want, open_image(str(disguised), OpenOptions(cache_size=1 << 20)) as got:
        assert [(layer.kind, layer.format) for layer in got.layers] == [
            ("container", "zdmp"),
            ("memory", "crashdump"),
        ]
        assert got.layers[1].name == f"{disguised}[decoded]"
        assert (got.runs, got.metadata.format_detail) == (want.runs, want.metadata.format_detail)
        assert got.dump_header() == want.dump_header()
        for pa in range(0, want.size, 0x3123):  # odd steps: across pages, runs, units and blocks
            assert got.read(pa, 0x3123) == want.read(pa, 0x3123), hex(pa)
        whole = bytearray(want.size)
        assert got.read_into(0, whole) == want.size and whole == want.read(0, want.size)
        got.drop_cache()  # reaches the container's cache below the reader
        assert got.layers[0].opened.cache.current_bytes == 0


def test_a_raw_image_inside_is_read_as_raw(tmp_path):
    """DumpIt /TYPE RAW with /COMPRESS (docs/formats/zdmp.md §1): the decoded stream is detected again."""
    rng = random.Random(3)
    image = b"".join(rng.randbytes(0x1000) if rng.random() < 0.3 else bytes(0x1000) for _ in range(100))
    path = tmp_path / "raw.zdmp"
    build_zdmp(path, image, 0x8000)
    with open_image(str(path)) as source:
        assert [layer.format for layer in source.layers] == ["zdmp", "raw"]
        assert source.read(0, len(image) + 10) == image


def test_format_option_names_the_outer_layer(fixtures):
    path, _ = fixtures["full64.zdmp"]
    with open_image(str(path), OpenOptions(format="zdmp")) as source:
        assert [layer.format for layer in source.layers] == ["zdmp", "crashdump"]
    with open_image(str(path), OpenOptions(format="raw")) as source:
        assert [layer.format for layer in source.layers] == ["raw"]
    inner = path.with_suffix(".dmp")
    with pytest.raises(FormatError, match=rf"^{inner}: offset 0x0: signature b'PAGE' is not b'ZDMP'$"):
        open_image(str(inner), OpenOptions(format="zdmp"))


def test_header_and_json_show_the_container_and_its_failures(fixtures, tmp_path):
    path, _ = fixtures["full64.zdmp"]
    third = block_offsets(path)[2]
    bad = rewrite(path, tmp_path / "crc.zdmp", lambda d: d.__setitem__(third + 20, d[third + 20] ^ 0x40))
    with open_image(str(bad)) as source:
        text = render_header(source)
        assert "[Layer 1 of 2: zdmp (container)]" in text and "Units that failed to decode : 0" in text
        failed = []
        for pa in (start + page for start, length in source.runs for page in range(0, length, 0x1000)):
            try:
                source.read(pa, 0x1000)
            except DecompressionError:
                failed.append(pa)
        # A DumpType 1 dump stores its pages in run order after the 0x2000-byte header: block 2, decoded
        # bytes 0x20000..0x30000, holds pages 0x1E..0x2D of that order.
        pages = [start + page for start, length in source.runs for page in range(0, length, 0x1000)]
        assert failed == pages[0x1E:0x2E]
        text = render_header(source)
        info = info_dict(source)
    assert "in layer 1 (zdmp)           : 1" in text and "in layer 2 (crashdump)      : 0" in text
    assert f"layer 1, {third:#x}" in text and "Bad blocks found so far : 1" in text
    assert info["format"] == "crashdump"
    zdmp_layer = info["layers"][0]
    assert zdmp_layer["format"] == "zdmp" and zdmp_layer["kind"] == "container"
    assert zdmp_layer["facts"]["Blocks"] == "8 of 8 present: 8 LZNT1, 0 stored uncompressed"
    assert [entry["offset"] for entry in zdmp_layer["failures"]] == [third]
    assert "CRC32" in zdmp_layer["failures"][0]["message"] and info["layers"][1]["failures"] == []


def test_threads_read_consistently(fixtures):
    path, inner = fixtures["bitmap64.zdmp"]
    source = ZdmpSource(FileByteSource(path), cache_size=3 * 0x10000)
    errors = []

    def work(seed):
        rng = random.Random(seed)
        for _ in range(300):
            offset, n = rng.randrange(len(inner)), rng.randrange(1, 100000)
            if source.pread(offset, n) != inner[offset : offset + n]:
                errors.append((offset, n))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert source.cache.current_bytes <= 3 * 0x10000


def test_cache_stays_within_its_budget_and_bulk_reads_bypass_it(fixtures):
    path, inner = fixtures["full64.zdmp"]
    source = ZdmpSource(FileByteSource(path), cache_size=2 * 0x10000)
    for offset in range(0, len(inner), 5000):
        source.pread(offset, 5000)
    assert source.cache.current_bytes <= 2 * 0x10000
    source.drop_cache()
    assert source.cache.current_bytes == 0
    misses = source.cache_stats()["misses"]
    out = bytearray(len(inner))
    source.readinto(0, out)
    assert out == inner
    # Every unit was decoded straight into `out`: the cache only saw each block's layout (docs/formats/zdmp.md
    # §4.2).
    assert source.cache_stats()["misses"] == misses + source.blocks_present
    assert source.cache_stats()["entries"] == source.blocks_present


@pytest.mark.parametrize("name", ["full64_320k.zdmp", "full64_2m.zdmp", "full64_4k.zdmp"])
def test_page_aligned_reads_decode_straight_into_the_buffer(fixtures, name):
    """Pieces of units made of whole 4 KiB chunks bypass the cache (the mount's reads, docs/formats/zdmp.md
    §4.2); everything else still reads right."""
    path, inner = fixtures[name]
    source = open_path(path)
    rng = random.Random(name)
    for _ in range(300):
        offset = rng.randrange(len(inner) // 0x1000) * 0x1000
        n = rng.choice((0x1000, 0x2000, 0x41000, 0x100000, rng.randrange(1, 200) * 0x1000))
        out = bytearray(n)
        got = source.readinto(offset, out)
        assert got == len(inner[offset : offset + n]) and out[:got] == inner[offset : offset + n]
    stats = source.cache_stats()
    assert stats["misses"] == stats["entries"] == source.blocks_present  # block layouts only
    assert source.readinto(0x100, bytearray(0x2000)) == 0x2000  # unaligned: through a cached unit
    assert source.cache_stats()["entries"] > source.blocks_present


def test_a_small_read_decodes_one_unit_not_the_block(fixtures):
    path, inner = fixtures["full64_2m.zdmp"]  # one 2 MiB block holding 0x7A000 bytes: units of 256 KiB
    source = open_path(path)
    assert len(inner) > UNIT
    for offset, units in ((0x100, 1), (0x45678, 1), (0x3FFF0, 2)):
        source.drop_cache()
        before = source.decoded_bytes
        assert source.pread(offset, 16) == inner[offset : offset + 16]
        assert source.decoded_bytes - before <= units * UNIT


def test_close_closes_the_base(fixtures):
    base = FileByteSource(fixtures["full64.zdmp"][0])
    source = open_zdmp(base, None)
    source.close()
    with pytest.raises(OSError):  # the base's descriptor is closed
        base.pread(0, 1)


def test_the_crc_is_zlibs_crc32():
    """The CRC-32 the reader uses (zlib-ng's when installed) is zlib's (docs/formats/zdmp.md §3)."""
    import zlib

    from memfs.containers import zdmp

    rng = random.Random(9)
    for size in (0, 1, 7, 4096, 100_000, 1 << 20):
        data = rng.randbytes(size)
        assert zdmp.crc32(data) == zlib.crc32(data)
    assert zdmp.crc32(memoryview(b"123456789")) == 0xCBF43926  # the CRC-32 check value


def test_probe_looks_at_content_only():
    class Head:
        def __init__(self, head):
            self.head = head

    assert probe(Head(b"ZDMP\x00\x01\x00\x00"))
    assert not probe(Head(b"PAGEDU64"))
    assert not probe(Head(b"ZDM"))


def test_facts_for_header_txt_and_info(fixtures):
    source = open_path(fixtures["bitmap64.zdmp"][0])
    assert source.format_name == "zdmp" and source.block_size == 0x10000
    assert source.blocks_expected == source.blocks_present == 8 and source.stored_blocks == 1
    assert source.chain_stop is None and source.failures.count == 0
    rows = dict(source.facts())
    assert rows["Blocks"] == "8 of 8 present: 7 LZNT1, 1 stored uncompressed"
    assert rows["BlockSize"] == "0x10000"
    assert rows["Decoded size (FileSize)"] == f"{source.size:#x} ({source.size} bytes)"
    assert "Block chain stops" not in rows and "Bad blocks found so far" not in rows


# -- bad blocks: EIO for their bytes only (docs/formats/zdmp.md §4.4) ----------------------------------------


def test_bad_crc_fails_only_its_block_and_is_logged_once(fixtures, tmp_path):
    path, inner = fixtures["full64.zdmp"]
    third = block_offsets(path)[2]
    bad = rewrite(path, tmp_path / "crc.zdmp", lambda d: d.__setitem__(third + 20, d[third + 20] ^ 0x40))
    source = open_path(bad)
    for _ in range(2):
        with pytest.raises(DecompressionError) as info:
            source.pread(2 * 0x10000 + 100, 10)
        assert str(info.value).startswith(f"{bad}: offset {third + 8:#x}: block 2 ")
        assert "CRC32" in str(info.value) and "\n" not in str(info.value)
    assert source.failures.count == 1
    assert source.pread(0, 2 * 0x10000) == inner[: 2 * 0x10000]
    assert source.pread(3 * 0x10000, 0x10000) == inner[3 * 0x10000 : 4 * 0x10000]
    with pytest.raises(DecompressionError):
        source.readinto(0, bytearray(len(inner)))  # a bulk read through the bad block


def test_verify_counts_bad_blocks_without_decoding(fixtures, tmp_path):
    path, _ = fixtures["full64.zdmp"]
    offsets = block_offsets(path)

    def damage(d):
        for k in (1, 5):
            d[offsets[k] + 30] ^= 1

    source = open_path(rewrite(path, tmp_path / "two.zdmp", damage))
    result = source.verify()
    assert (result.good, result.bad, result.missing, result.ok) == (6, 2, 0, False)
    assert result.units == "blocks" and "CRC32" in result.check
    assert source.decoded_bytes == 0 and source.cache.stats()["misses"] == 0
    assert source.failures.count == 2


def test_block_whose_decoded_size_lies_is_bad(fixtures, tmp_path):
    """A non-last block whose LZNT1 stream holds more than BlockSize bytes."""
    _, inner = fixtures["full64.zdmp"]
    payloads = block_payloads(inner, 0x10000)
    payloads[1] = lznt1.compress(inner[0x10000 : 0x20000 + 0x1000])  # one page too many
    path = tmp_path / "lies.zdmp"
    write_zdmp(path, payloads, len(inner), 0x10000)
    source = open_path(path)
    with pytest.raises(DecompressionError, match="block 1 .*more data than the expected output size"):
        source.pread(0x10000, 1)
    assert source.pread(0, 0x10000) == inner[:0x10000] and source.failures.count == 1


def test_invalid_lznt1_names_the_file_offset_of_the_fault(fixtures, tmp_path):
    _, inner = fixtures["full64.zdmp"]
    payloads = block_payloads(inner, 0x10000)
    payloads[3] = b"\x10\x00" + payloads[3][2:]  # first chunk header: signature 1
    path = tmp_path / "sig.zdmp"
    write_zdmp(path, payloads, len(inner), 0x10000)
    offset = block_offsets(path)[3] + 12
    with pytest.raises(DecompressionError, match=rf"offset {offset:#x}: block 3 .*signature"):
        open_path(path).pread(3 * 0x10000, 1)


def test_short_lznt1_block_reads_as_zeros_after_its_end(fixtures, tmp_path):
    _, inner = fixtures["full64.zdmp"]
    payloads = block_payloads(inner, 0x10000)
    payloads[2] = lznt1.compress(inner[0x20000 : 0x20000 + 0x9000])
    path = tmp_path / "short.zdmp"
    write_zdmp(path, payloads, len(inner), 0x10000)
    source = open_path(path)
    expected = inner[0x20000:0x29000] + bytes(0x7000)
    assert source.pread(0x20000, 0x10000) == expected
    assert dict(source.facts())["Blocks zero-filled after a short LZNT1 stream"] == "1"
    assert source.failures.count == 0


@pytest.mark.parametrize("kept", [0x41000, 0x30000, 0x40000 + 10])
def test_short_stream_in_a_block_of_several_units(fixtures, tmp_path, kept):
    """A 512 KiB block (two 256 KiB units) whose stream ends inside unit 1, at its start, or in unit 0."""
    _, inner = fixtures["full64.zdmp"]
    payloads = block_payloads(inner, 0x80000)
    payloads[0] = lznt1.compress(inner[:kept])
    path = tmp_path / "short2.zdmp"
    write_zdmp(path, payloads, len(inner), 0x80000)
    expected = (inner[:kept] + bytes(0x80000 - kept))[: len(inner)]  # one short last block
    source = open_path(path)
    assert source.pread(0, len(inner)) == expected
    source.drop_cache()
    out = bytearray(b"\xff" * len(inner))
    assert source.readinto(0, out) == len(inner) and out == expected
    source.drop_cache()
    assert source.pread(0x50000, 0x100) == expected[0x50000:0x50100]
    for offset in range(0, 0x80000, 0x3000):  # whole chunks, straight into the buffer
        out = bytearray(b"\xff" * 0x5000)
        got = source.readinto(offset, out)
        assert out[:got] == expected[offset : offset + 0x5000]


def test_last_block_longer_than_the_rest_is_cut(fixtures, tmp_path):
    """A stored last block carrying a full BlockSize (docs/formats/zdmp.md §3): only the rest of FileSize
    counts."""
    _, inner = fixtures["full64.zdmp"]
    payloads = block_payloads(inner, 0x10000)
    tail = inner[7 * 0x10000 :]
    payloads[7] = tail + b"\xee" * (0x10000 - len(tail))
    path = tmp_path / "long_last.zdmp"
    write_zdmp(path, payloads, len(inner), 0x10000)
    source = open_path(path)
    assert source.pread(0, len(inner) + 0x10000) == inner


# -- truncated and broken chains (docs/formats/zdmp.md §4.5) -------------------------------------------------


def test_truncated_block_leaves_earlier_blocks_readable(fixtures, tmp_path):
    path, inner = fixtures["full64.zdmp"]
    sixth = block_offsets(path)[5]
    short = cut(path, tmp_path / "cut.zdmp", sixth + 100)
    source = open_path(short)
    assert source.blocks_present == 5 and source.chain_stop[0] == sixth
    assert "block 5 is truncated" in source.chain_stop[1]
    assert source.pread(0, 5 * 0x10000) == inner[: 5 * 0x10000]
    with pytest.raises(CorruptionError) as info:
        source.pread(5 * 0x10000 + 10, 1)
    message = str(info.value)
    assert message.startswith(f"{short}: offset {sixth:#x}: block 5 is unreadable") and "\n" not in message
    assert f"decoded bytes {5 * 0x10000:#x}..{len(inner):#x} are missing" in message
    result = source.verify()
    assert (result.good, result.bad, result.missing) == (5, 0, 3)
    assert "Block chain stops" in dict(source.facts())


def test_truncated_inside_a_block_header(fixtures, tmp_path):
    path, inner = fixtures["full64.zdmp"]
    third = block_offsets(path)[2]
    source = open_path(cut(path, tmp_path / "cut_header.zdmp", third + 5))
    assert source.blocks_present == 2 and "inside the header of block 2" in source.chain_stop[1]
    assert source.pread(0, 0x20000) == inner[:0x20000]


def test_bad_block_signature_stops_the_chain(fixtures, tmp_path):
    path, _ = fixtures["full64.zdmp"]
    fourth = block_offsets(path)[3]
    bad = rewrite(path, tmp_path / "zblk.zdmp", lambda d: d.__setitem__(slice(fourth, fourth + 4), b"XBLK"))
    source = open_path(bad)
    assert source.blocks_present == 3 and source.chain_stop == (
        fourth,
        "block 3 header signature b'XBLK' is not b'ZBLK'",
    )


def test_oversized_data_size_stops_the_chain(fixtures, tmp_path):
    path, _ = fixtures["full64.zdmp"]
    second = block_offsets(path)[1]
    bad = rewrite(path, tmp_path / "big.zdmp", lambda d: struct.pack_into("<I", d, second + 4, 0x10001))
    source = open_path(bad)
    assert source.blocks_present == 1 and source.chain_stop[0] == second + 4
    assert "DataSize 0x10001 > BlockSize 0x10000" in source.chain_stop[1]


def test_trailing_bytes_are_noted(fixtures, tmp_path):
    _, inner = fixtures["full64.zdmp"]
    path = tmp_path / "trailing.zdmp"
    write_zdmp(path, block_payloads(inner, 0x10000), len(inner), 0x10000, trailing=b"\0" * 33)
    source = open_path(path)
    assert source.trailing_bytes == 33 and source.pread(0, len(inner)) == inner


# -- header errors: one clear line (docs/formats/zdmp.md §4.1, §6) -------------------------------------------


def header_case(fixtures, tmp_path, **fields) -> str:
    _, inner = fixtures["full64.zdmp"]
    path = tmp_path / "hdr.zdmp"
    args = {"file_size": len(inner), "block_size": 0x10000} | fields
    file_size, block_size = args.pop("file_size"), args.pop("block_size")
    write_zdmp(path, block_payloads(inner, 0x10000), file_size, block_size, **args)
    with pytest.raises(MemfsError) as info:
        open_path(path)
    message = str(info.value)
    assert message.startswith(f"{path}: offset 0x") and "\n" not in message
    return message


@pytest.mark.parametrize("data_type", [2, 3, 0x102])
def test_encryption_flag_is_named(fixtures, tmp_path, data_type):
    message = header_case(fixtures, tmp_path, data_type=data_type)
    assert "offset 0x14:" in message and "encrypted" in message


@pytest.mark.parametrize(
    ("fields", "offset", "words", "kind"),
    [
        ({"data_type": 0}, 0x14, "DataType 0x0 is not 1", FormatError),
        ({"version": 0x200}, 0x4, "Version 0x200", FormatError),
        ({"compression_format": 4}, 0x16, "CompressionFormat 4 is not 2", FormatError),
        ({"block_size": 0}, 0x10, "BlockSize 0x0 is outside", CorruptionError),
        ({"block_size": 0x10000000}, 0x10, "BlockSize 0x10000000 is outside", CorruptionError),
        ({"file_size": 0}, 0x8, "FileSize is 0", CorruptionError),
        ({"file_size": 1 << 60}, 0x8, "more than the 4194304", CorruptionError),
    ],
)
def test_header_values_memfs_cannot_accept(fixtures, tmp_path, fields, offset, words, kind):
    message = header_case(fixtures, tmp_path, **fields)
    assert f"offset {offset:#x}:" in message and words in message


def test_not_a_zdmp_and_too_short(tmp_path):
    short = tmp_path / "short.zdmp"
    short.write_bytes(b"ZDMP\x00\x01")
    with pytest.raises(CorruptionError, match="ends inside the 24-byte zdmp header"):
        open_path(short)
    other = tmp_path / "other.bin"
    other.write_bytes(b"PAGEDU64" + bytes(100))
    with pytest.raises(FormatError, match="signature b'PAGE' is not b'ZDMP'"):
        open_path(other)


def test_no_complete_block_is_an_error_at_open(fixtures, tmp_path):
    path, _ = fixtures["full64.zdmp"]
    short = cut(path, tmp_path / "header_only.zdmp", FIRST_BLOCK + 40)
    with pytest.raises(CorruptionError, match=r"offset 0x1000: no complete block: block 0 is truncated"):
        open_path(short)


# -- fuzz: any damage is a MemfsError at open or on read, nothing else -------------------------------------


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutated_files_fail_cleanly(fixtures, tmp_path, data):
    path, inner = fixtures["bitmap32.zdmp"]
    blob = bytearray(path.read_bytes())
    offsets = block_offsets(path)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.sampled_from(("header", "block header", "payload", "truncate")), label="where")
        if where == "header":
            pos = data.draw(st.integers(0, 0x17))
        elif where == "block header":
            pos = data.draw(st.sampled_from(offsets)) + data.draw(st.integers(0, 11))
        elif where == "payload" and len(blob) > FIRST_BLOCK:
            pos = data.draw(st.integers(FIRST_BLOCK, len(blob) - 1))
        elif where == "truncate" and blob:
            del blob[data.draw(st.integers(0, len(blob) - 1)) :]
            continue
        else:
            continue
        if pos < len(blob):
            blob[pos] = data.draw(st.integers(0, 255))
    target = tmp_path / "fuzz.zdmp"
    target.write_bytes(blob)
    try:
        source = open_path(target)
    except MemfsError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(target))
        return
    ends = [source.size - 1, source.size // 2]  # a damaged FileSize may claim far more than the file holds
    for offset in [*range(0, min(source.size, 2 * len(inner)), 0x7000), *ends]:
        try:
            got = source.pread(offset, 0x7000)
        except MemfsError as exc:
            assert str(exc).startswith(str(target))
        else:
            assert len(got) == min(0x7000, source.size - offset)
    source.verify()
    source.close()


# -- fuzz through the whole pipeline: container, crash dump reader, discovery, the mount's files ----------


def _open_discover_read_all(path: Path) -> None:
    """What a mount does with ``path``: a MemfsError anywhere is fine, any other exception is a bug."""
    from memfs.kernel.discover import discover
    from memfs.views.tree import build_files

    try:
        source = open_image(str(path), OpenOptions(cache_size=1 << 20))
    except MemfsError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        return
    with source:
        files = build_files(source, discover(source))
        for file in files.values():
            for offset in range(0, min(file.size, 4 << 20), 0x10000):
                try:
                    file.read_into(offset, bytearray(min(0x10000, file.size - offset)))
                except MemfsError as exc:
                    assert "\n" not in str(exc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_zdmp_through_the_pipeline(fixtures, tmp_path_factory, data):
    """Damage to the container (header, block headers, payloads, length)."""
    path, _ = fixtures[data.draw(st.sampled_from(["full64.zdmp", "bitmap32.zdmp", "full64_2m.zdmp"]))]
    blob = bytearray(path.read_bytes())
    offsets = block_offsets(path)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(
            st.one_of(
                st.integers(0, 0x17),
                st.sampled_from(offsets).flatmap(lambda o: st.integers(o, o + 11)),
                st.integers(FIRST_BLOCK, len(blob) - 1),
            )
        )
        blob[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del blob[data.draw(st.integers(FIRST_BLOCK, len(blob))) :]
    target = tmp_path_factory.mktemp("fuzz") / "damaged.zdmp"
    target.write_bytes(bytes(blob))
    _open_discover_read_all(target)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_inner_dump_behind_good_crcs(fixtures, tmp_path_factory, data):
    """Damage to the crash dump inside, re-wrapped with valid CRCs: the reader above the container."""
    name = data.draw(st.sampled_from(["full64.zdmp", "bitmap64.zdmp", "full32.zdmp"]))
    inner = bytearray(fixtures[name][1])
    header_end = 0x3000 if name.startswith("bitmap") else 0x2000
    for _ in range(data.draw(st.integers(1, 6))):
        inner[data.draw(st.integers(0, header_end - 1))] = data.draw(st.integers(0, 255))
    target = tmp_path_factory.mktemp("fuzz") / "inner.zdmp"
    write_zdmp(target, block_payloads(bytes(inner), 0x10000), len(inner), 0x10000)
    _open_discover_read_all(target)
