"""The containers in memfs's format registry: detected from content, opened by ``open_image`` into the
memory image they hold, shown layer by layer, sharing the cache budget; bad stacks are one line."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from memfs.containers import ewf
from memfs.detect import detect_format, open_image
from memfs.exceptions import DecompressionError, FormatError, MemfsError
from memfs.formats.base import OpenOptions
from memfs.kernel.discover import discover
from memfs.report import info_dict
from memfs.views.header_txt import render_header
from memfs.views.tree import build_files
from scripts import make_container_fixtures as make

# fixture -> the formats of its stack, outermost first
STACKS = {
    "raw.snappy": ["snappy", "raw"],
    "raw.s2": ["s2", "raw"],
    "raw-index.s2": ["s2", "raw"],
    "image.avml": ["avml", "lime"],
    "crash.dmp.gz": ["gzip", "crashdump"],
    "triage.zip": ["zip", "hiberfil"],
    "stored.zip": ["zip", "raw"],
    "collection.zip": ["zip", "s2", "raw"],
    "image.tar": ["tar", "raw"],
    "image.tar.gz": ["gzip", "tar", "crashdump"],
    "image.E01": ["ewf", "raw"],
}


def _built(fixtures, name: str):
    if name not in fixtures:
        pytest.skip(f"{name} not built (ewfacquire from apt ewf-tools is missing)")
    return fixtures[name]


def _bare(built, tmp_path: Path) -> Path:
    """The memory image the container holds, as a file of its own."""
    path = tmp_path / f"{built.path.name}.bare"
    path.write_bytes(built.bare)
    return path


def _digests(path: Path, options: OpenOptions | None = None) -> dict[str, str]:
    """SHA-256 of physmem.bin and memory.dmp as a mount would serve them."""
    with open_image(str(path), options) as source:
        files = build_files(source, discover(source))
        return {
            name: hashlib.sha256(file.read(0, file.size)).hexdigest()
            for name, file in files.items()
            if name != "header.txt"
        }


@pytest.mark.parametrize("name", sorted(STACKS))
def test_open_image_reads_what_the_container_holds(fixtures, tmp_path, name):
    built = _built(fixtures, name)
    assert detect_format(str(built.path)).name == STACKS[name][0]
    bare = _bare(built, tmp_path)
    with open_image(str(built.path)) as stacked, open_image(str(bare)) as direct:
        assert [layer.format for layer in stacked.layers] == STACKS[name]
        assert [layer.kind for layer in stacked.layers] == ["container"] * (len(STACKS[name]) - 1) + [
            "memory"
        ]
        assert stacked.layers[0].path == str(built.path)
        assert stacked.runs == direct.runs
        assert stacked.metadata.format_detail == direct.metadata.format_detail
        assert stacked.read(0, stacked.size) == direct.read(0, direct.size)
        info = info_dict(stacked)
        assert [layer["format"] for layer in info["layers"]] == STACKS[name]
        assert all(layer["facts"] for layer in info["layers"])
    # physmem.bin and memory.dmp are the bare image's, byte for byte: the stack is transparent.
    assert _digests(built.path) == _digests(bare)


def test_each_container_has_its_own_format_name(fixtures):
    with open_image(str(fixtures["raw.snappy"].path), OpenOptions(format="snappy")) as source:
        assert [layer.format for layer in source.layers] == ["snappy", "raw"]
    with pytest.raises(
        FormatError, match=r"raw.snappy: offset 0x0: the stream identifier says snappy, not s2$"
    ):
        open_image(str(fixtures["raw.snappy"].path), OpenOptions(format="s2"))
    with open_image(str(fixtures["raw.snappy"].path), OpenOptions(format="raw")) as source:
        assert source.size == fixtures["raw.snappy"].path.stat().st_size  # the container file itself


def test_member_option(fixtures):
    two = str(fixtures["two.zip"].path)
    with pytest.raises(MemfsError, match=r"holds 2 candidate images: .*; choose one with --member PATH$"):
        open_image(two)
    with open_image(two, OpenOptions(member="b/crash.dmp")) as source:
        assert [layer.format for layer in source.layers] == ["zip", "crashdump"]
        assert dict(source.layers[0].rows)["Member"] == "b/crash.dmp: chosen with --member"
    with open_image(two, OpenOptions(member="a/PhysicalMemory.dd")) as source:
        assert [layer.format for layer in source.layers] == ["zip", "raw"]
    # The member of the outermost archive: a tar inside a gzip takes it too.
    with open_image(str(fixtures["image.tar.gz"].path), OpenOptions(member="memory.dmp")) as source:
        assert [layer.format for layer in source.layers] == ["gzip", "tar", "crashdump"]
    with pytest.raises(
        MemfsError,
        match=r"crash.dmp.gz: offset 0x0: --member x names an archive member, but the stack holds no archive "
        r"\(gzip -> crashdump\)$",
    ):
        open_image(str(fixtures["crash.dmp.gz"].path), OpenOptions(member="x"))


def test_the_layers_share_the_cache_budget(fixtures):
    budget = 8 << 20
    with open_image(str(fixtures["triage.zip"].path), OpenOptions(cache_size=budget)) as source:
        zip_layer, memory = source.layers
        assert zip_layer.cache is not None and memory.cache is source.cache
        assert zip_layer.cache.max_bytes == memory.cache.max_bytes == budget // 2
        source.read(0, source.size)
        assert zip_layer.cache.current_bytes + memory.cache.current_bytes <= budget
        source.drop_cache()
        assert zip_layer.cache.current_bytes == memory.cache.current_bytes == 0
    with open_image(str(fixtures["raw.snappy"].path), OpenOptions(cache_size=budget)) as source:
        assert source.layers[0].cache.max_bytes == budget  # raw keeps no cache: the stream has it all
    with open_image(str(fixtures["collection.zip"].path), OpenOptions(cache_size=budget)) as source:
        assert [layer.cache.max_bytes for layer in source.layers[:2]] == [budget // 2] * 2


def test_a_corrupt_chunk_is_counted_in_its_layer(fixtures, tmp_path):
    data = bytearray(fixtures["raw.snappy"].path.read_bytes())
    data[0x10 + 4 + 4 + 1000] ^= 0xFF  # inside the first data chunk, after the identifier
    path = tmp_path / "bad.snappy"
    path.write_bytes(bytes(data))
    with open_image(str(path)) as source:
        for _ in range(2):
            with pytest.raises(DecompressionError, match=rf"^{re.escape(str(path))}: offset 0xa: "):
                source.read(0x1000, 16)
        assert source.read(0x20000, 16) == fixtures["raw.snappy"].expected[0x20000:0x20010]
        assert source.failure_count == 1
        text = render_header(source)
    assert re.search(r"^Units that failed to decode : 1$", text, re.M)
    assert re.search(r"^in layer 1 \(snappy\) +: 1$", text, re.M)
    assert re.search(r"^in layer 2 \(raw\) +: 0$", text, re.M)
    assert re.search(rf"^layer 1, 0xa +: {re.escape(str(path))}: offset 0xa: chunk checksum", text, re.M)
    # The bad chunk is the stream's first: its format is detected from the bytes before it (none: raw).
    assert f"{path}[decoded]: format detected as raw from its first 0x0 bytes, the ones before a unit" in text


# -- EWF segments ---------------------------------------------------------------------------------------


def test_ewf_segments_are_found_from_the_first(fixtures, tmp_path):
    built = _built(fixtures, "image.E01")
    segments = ewf.segment_paths(str(built.path))
    assert len(segments) == 3
    with open_image(str(built.path)) as source:
        assert source.read(0, source.size) == built.bare
        assert dict(source.layers[0].rows)["Container"].startswith("EWF (3 segment files")
    with pytest.raises(
        FormatError, match=r"image.E02: offset 0x9: this is segment 2 of an EWF image: open its first segment"
    ):
        open_image(segments[1])


def test_ewf_inside_a_zip_reads_its_first_segment_only(fixtures, tmp_path):
    built = _built(fixtures, "image.E01")
    path = tmp_path / "evidence.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for segment in ewf.segment_paths(str(built.path)):
            out.write(segment, Path(segment).name)
    with open_image(str(path), OpenOptions(member="image.E01")) as source:
        assert [layer.format for layer in source.layers] == ["zip", "ewf", "raw"]
        notes = [value for label, value in source.layers[1].rows if label == "Note"]
        assert any("inside another container, so its further segment files" in note for note in notes)
        assert 0 < source.size < len(built.bare)
        assert source.read(0, source.size) == built.bare[: source.size]
    # A single-segment E01 in a ZIP is whole.
    whole = make.ewf_image(tmp_path, "single", built.bare, segment_bytes=64 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        out.write(whole, "case/single.E01")
    with open_image(str(path)) as source:
        assert [layer.format for layer in source.layers] == ["zip", "ewf", "raw"]
        assert source.read(0, source.size) == built.bare


def test_ewf_missing_segment_is_a_partial_image(fixtures, tmp_path):
    built = _built(fixtures, "image.E01")
    first, second, _ = ewf.segment_paths(str(built.path))
    shutil.copy(first, tmp_path)
    shutil.copy(second, tmp_path)
    with open_image(str(tmp_path / Path(first).name)) as source:
        assert 0 < source.size < len(built.bare)
        notes = [value for label, value in source.layers[0].rows if label == "Note"]
        assert any("the tables list" in note for note in notes)


# -- bad stacks ------------------------------------------------------------------------------------------


def _padding(data: bytes) -> bytes:
    return data[:24] + struct.pack("<Q", 1) + data[32:]


@pytest.mark.parametrize(
    ("name", "mutate", "message"),
    [
        ("raw.snappy", lambda d: d[:10], r"raw.snappy\[decoded\]: offset 0x0: file is empty"),
        ("image.avml", lambda d: d[:40], r"image.avml: offset 0x0: AVML file holds no complete block"),
        ("image.avml", _padding, r"image.avml: offset 0x18: AVML header padding is 0x1, not zero"),
        ("crash.dmp.gz", lambda d: d[: len(d) // 3], r"crash.dmp.gz: offset 0x0: the gzip stream starting"),
        ("triage.zip", lambda d: d[:-30], r"triage.zip: offset 0x0: zip archive does not list its members"),
    ],
)
def test_damaged_containers_are_one_line(fixtures, tmp_path, name, mutate, message):
    path = tmp_path / name
    path.write_bytes(mutate(fixtures[name].path.read_bytes()))
    with pytest.raises(MemfsError) as info:
        open_image(str(path))
    text = str(info.value)
    assert "\n" not in text and re.search(message, text), text


# -- the command line -------------------------------------------------------------------------------------


def _memfs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memfs", *args], capture_output=True, text=True, timeout=120)


def test_cli_member_and_one_line_errors(fixtures, tmp_path):
    two = str(fixtures["two.zip"].path)
    result = _memfs("info", two)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"memfs: error: {two}: offset 0x0: zip archive holds 2 candidate images")
    assert result.stderr.count("\n") == 1
    result = _memfs("info", "--json", "--member", "b/crash.dmp", two)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert [layer["format"] for layer in info["layers"]] == ["zip", "crashdump"]
    assert info["layers"][0]["facts"]["Member"] == "b/crash.dmp: chosen with --member"
    out = tmp_path / "dump.raw"
    result = _memfs("convert", "--member", "b/crash.dmp", two, str(out), "--to", "raw", "-q")
    assert result.returncode == 0, result.stderr
    bare = tmp_path / "crash.dmp"
    bare.write_bytes(fixtures["two.zip"].expected)
    with open_image(str(bare)) as direct:
        assert out.read_bytes() == direct.read(0, direct.size)
    empty = str(fixtures["empty.zip"].path)
    result = _memfs("info", empty)
    assert result.returncode == 1
    assert result.stderr == (
        f"memfs: error: {empty}: offset 0x0: zip archive holds no memory image memfs recognises; members: "
        "readme.txt (choose one with --member PATH to read it as it is)\n"
    )
