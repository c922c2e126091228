"""DumpIt ``.zdmp`` files (scripts/make_zdmp_fixtures.py) through a real FUSE mount and the CLI.

Every page of ``physmem.bin`` equals the inner crash dump read directly; kdmp-parser and Volatility 3
read the ``memory.dmp`` built on top; a bad block is EIO for exactly its pages; bad input is one line
naming the file and the offset; ``convert`` writes what the mount serves.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest

from memfs import lznt1
from memfs.detect import open_image
from scripts.make_zdmp_fixtures import FIXTURES, block_offsets, block_payloads, build_fixture, write_zdmp
from tests.digest import sha256
from tests.integration.conftest import run_memfs
from tests.readers import kdmp_read_pages, vol3_crash_read

PAGE = 0x1000
FIRST_BLOCK = 0x1000  # docs/formats/zdmp.md §2, stated here for the tests
HEADER_64 = 0x2000  # a 64-bit crash dump's header; DumpType 1 pages follow it in run order


@pytest.fixture(scope="module")
def zdmps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, dict[int, bytes]]]:
    out = tmp_path_factory.mktemp("zdmp")
    return {name: build_fixture(out, name) for name in FIXTURES}


def one_line_error(result, *needles: str) -> str:
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("memfs: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("name", list(FIXTURES))
def test_every_fixture_through_the_mount(zdmps, tmp_path: Path, mount_image, name: str) -> None:
    path, inner, pages = zdmps[name]
    mnt = mount_image(path)
    physmem = (mnt / "physmem.bin").read_bytes()
    with open_image(str(inner)) as direct:
        assert physmem == direct.read(0, direct.size)  # every page, and the holes, as read directly
    for pfn in range(len(physmem) // PAGE):  # and as the fixture builder wrote them
        assert physmem[pfn * PAGE : (pfn + 1) * PAGE] == pages.get(pfn, bytes(PAGE)), hex(pfn)
    header = (mnt / "header.txt").read_text()
    assert re.search(r"^Layers *: zdmp -> crashdump$", header, re.MULTILINE)
    assert "[Layer 1 of 2: zdmp (container)]" in header and "Units that failed to decode : 0" in header

    # memory.dmp on top, read by independent readers from a copy of the mount's bytes (Volatility keeps
    # its file open, which would keep the mount busy).
    dump = tmp_path / "memory.dmp"
    dump.write_bytes((mnt / "memory.dmp").read_bytes())
    expected = {pfn * PAGE: page for pfn, page in pages.items()}
    if FIXTURES[name][0]["width"] == 64:
        assert kdmp_read_pages(dump) == expected
    for pa, page in expected.items():
        assert vol3_crash_read(dump, pa, PAGE) == page, hex(pa)


def test_bad_crc_is_eio_for_exactly_its_pages(zdmps, tmp_path: Path, mount_image) -> None:
    path, _, pages = zdmps["full64.zdmp"]
    third = block_offsets(path)[2]
    data = bytearray(path.read_bytes())
    data[third + 40] ^= 0x10  # inside block 2's payload: decoded bytes 0x20000..0x30000
    bad = tmp_path / "crc.zdmp"
    bad.write_bytes(bytes(data))
    mnt = mount_image(bad)
    order = sorted(pages)  # DumpType 1: page n of the run order is at HEADER_64 + n * PAGE
    lost = {pfn for n, pfn in enumerate(order) if 0x20000 <= HEADER_64 + n * PAGE < 0x30000}
    assert len(lost) == 16
    size = (mnt / "physmem.bin").stat().st_size
    fd = os.open(mnt / "physmem.bin", os.O_RDONLY)
    try:
        for pfn in range(size // PAGE):  # one page at a time, in order: read-ahead crosses the bad block
            if pfn in lost:
                with pytest.raises(OSError) as info:
                    os.pread(fd, PAGE, pfn * PAGE)
                assert info.value.errno == errno.EIO
            else:
                assert os.pread(fd, PAGE, pfn * PAGE) == pages.get(pfn, bytes(PAGE)), hex(pfn)
        # A large read stops short at the first lost page (the bytes before it are good); from there, EIO.
        assert len(os.pread(fd, 1 << 20, 0)) == min(lost) * PAGE
        with pytest.raises(OSError) as info:
            os.pread(fd, 1 << 20, min(lost) * PAGE)
        assert info.value.errno == errno.EIO
    finally:
        os.close(fd)
    with open(mnt / "memory.dmp", "rb") as handle:  # the same pages in memory.dmp
        first_lost = min(lost)
        dmp_offset = HEADER_64 + order.index(first_lost) * PAGE
        with pytest.raises(OSError):
            os.pread(handle.fileno(), PAGE, dmp_offset)
        assert os.pread(handle.fileno(), PAGE, dmp_offset - PAGE) == pages[order[order.index(first_lost) - 1]]
    header = (mnt / "header.txt").read_text()
    assert "Units that failed to decode : 1" in header
    assert re.search(r"^in layer 1 \(zdmp\) *: 1$", header, re.MULTILINE)
    assert re.search(
        rf"^layer 1, {third:#x} *: {re.escape(str(bad))}: offset {third + 8:#x}: block 2 ", header, re.M
    )
    assert re.search(r"^Bad blocks found so far *: 1$", header, re.MULTILINE)


def test_truncated_file_mounts_what_it_holds(zdmps, tmp_path: Path, mount_image) -> None:
    path, _, pages = zdmps["full64.zdmp"]
    sixth = block_offsets(path)[5]
    cut = tmp_path / "cut.zdmp"
    cut.write_bytes(path.read_bytes()[: sixth + 100])  # DumpIt interrupted inside block 5
    mnt = mount_image(cut)
    header = (mnt / "header.txt").read_text()
    assert re.search(rf"^Block chain stops *: at file offset {sixth:#x}: block 5 is truncated", header, re.M)
    assert "Blocks                  : 5 of 8 present" in header
    order = sorted(pages)
    fd = os.open(mnt / "physmem.bin", os.O_RDONLY)
    try:
        for n, pfn in enumerate(order):
            if HEADER_64 + (n + 1) * PAGE <= 5 * 0x10000:
                assert os.pread(fd, PAGE, pfn * PAGE) == pages[pfn]
            else:
                with pytest.raises(OSError) as info:
                    os.pread(fd, PAGE, pfn * PAGE)
                assert info.value.errno == errno.EIO
    finally:
        os.close(fd)
    assert "is unreadable: block 5 is truncated" in (mnt / "header.txt").read_text()


def test_bad_input_is_one_line_naming_file_and_offset(zdmps, tmp_path: Path) -> None:
    path, inner, _ = zdmps["full64.zdmp"]
    inner_bytes = inner.read_bytes()
    mnt = tmp_path / "mnt"
    mnt.mkdir()

    def check(image: Path, *needles: str) -> None:
        one_line_error(run_memfs("info", str(image)), str(image), *needles)
        one_line_error(run_memfs("mount", str(image), str(mnt)), str(image), *needles)
        assert not os.path.ismount(mnt)

    truncated = tmp_path / "truncated.zdmp"  # the file ends inside block 0
    truncated.write_bytes(path.read_bytes()[: FIRST_BLOCK + 40])
    check(truncated, "offset 0x1000: no complete block: block 0 is truncated")

    header_only = tmp_path / "header.zdmp"
    header_only.write_bytes(path.read_bytes()[:0x10])
    check(header_only, "offset 0x10: file ends inside the 24-byte zdmp header")

    lies = tmp_path / "lies.zdmp"  # block 0's LZNT1 stream holds a page more than BlockSize
    payloads = block_payloads(inner_bytes, 0x10000)
    payloads[0] = lznt1.compress(inner_bytes[: 0x10000 + PAGE])
    write_zdmp(lies, payloads, len(inner_bytes), 0x10000)
    check(lies, "block 0 (decoded bytes 0x0..0x10000)", "more data than the expected output size")

    short = tmp_path / "short_filesize.zdmp"  # FileSize says 3 blocks: the dump's pages lie past its end
    write_zdmp(short, block_payloads(inner_bytes, 0x10000)[:3], 0x30000, 0x10000)
    one_line_error(run_memfs("info", str(short)), f"{short}[decoded]: offset 0x", "past the end of the file")

    for fields, needles in (
        ({"file_size": 1 << 60}, ("offset 0x8:", "more than the 4194304 memfs accepts")),
        ({"block_size": 0}, ("offset 0x10:", "BlockSize 0x0 is outside")),
        ({"block_size": 1 << 30}, ("offset 0x10:", "BlockSize 0x40000000 is outside")),
        ({"data_type": 2}, ("offset 0x14:", "encrypted")),
        ({"data_type": 3}, ("offset 0x14:", "encrypted")),
        ({"compression_format": 3}, ("offset 0x16:", "CompressionFormat 3 is not 2")),
        ({"version": 0x200}, ("offset 0x4:", "Version 0x200")),
    ):
        args = {"file_size": len(inner_bytes), "block_size": 0x10000} | fields
        absurd = tmp_path / "absurd.zdmp"
        write_zdmp(
            absurd,
            block_payloads(inner_bytes, 0x10000),
            args.pop("file_size"),
            args.pop("block_size"),
            **args,
        )
        check(absurd, *needles)


def test_info_json_and_verify(zdmps, tmp_path: Path) -> None:
    path, inner, _ = zdmps["bitmap64.zdmp"]
    result = run_memfs("info", "--json", str(path))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    direct = json.loads(run_memfs("info", "--json", str(inner)).stdout)
    assert info["format"] == "crashdump" and info["dump_type"] == 5
    assert (info["runs"], info["size"]) == (direct["runs"], direct["size"])
    assert [(layer["kind"], layer["format"], layer["name"]) for layer in info["layers"]] == [
        ("container", "zdmp", str(path)),
        ("memory", "crashdump", f"{path}[decoded]"),
    ]
    facts = info["layers"][0]["facts"]
    assert (
        facts["BlockSize"] == "0x10000"
        and facts["Blocks"] == "8 of 8 present: 7 LZNT1, 1 stored uncompressed"
    )
    assert "verify" not in info

    good = run_memfs("info", "--verify", str(path))
    assert good.returncode == 0, good.stderr
    assert re.search(
        r"^Layer 1 \(zdmp\) *: 8 blocks: 8 good, 0 bad, 0 missing .*: all good$", good.stdout, re.M
    )
    assert re.search(r"^Layer 2 \(crashdump\) *: nothing to check without decoding", good.stdout, re.M)

    offsets = block_offsets(path)
    data = bytearray(path.read_bytes())
    for k in (3, 6):
        data[offsets[k] + 50] ^= 1
    bad = tmp_path / "two_bad.zdmp"
    bad.write_bytes(bytes(data[: offsets[7] + 20]))  # and the last block cut short
    result = run_memfs("info", "--verify", "--json", str(bad))
    assert result.returncode == 1
    verify = json.loads(result.stdout)["verify"]
    assert verify[0] == {
        "layer": 1,
        "format": "zdmp",
        "checked": True,
        "units": "blocks",
        "check": "CRC32 of each stored payload",
        "good": 5,
        "bad": 2,
        "missing": 1,
        "ok": False,
    }
    assert verify[1] == {"layer": 2, "format": "crashdump", "checked": False}
    failed = [line for line in result.stderr.splitlines() if line.startswith("memfs: verify failed: ")]
    summary = "8 blocks: 5 good, 2 bad, 1 missing (CRC32 of each stored payload): FAILED"
    assert failed == [f"memfs: verify failed: {bad}: {summary}"]


@pytest.mark.parametrize("name", ["full64_320k.zdmp", "bitmap32.zdmp"])
def test_convert_equals_the_mounted_files(zdmps, tmp_path: Path, mount_image, name: str) -> None:
    path, _, _ = zdmps[name]
    mnt = mount_image(path)
    for to, file in (("raw", "physmem.bin"), ("dmp", "memory.dmp")):
        out = tmp_path / f"out.{to}"
        result = run_memfs("convert", str(path), str(out), "--to", to, "-q")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[0] == sha256(out) == sha256(mnt / file), file
