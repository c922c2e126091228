"""Byte sources and stacked containers, with the test-only TBOX container (tests/stacking.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memfs.byte_source import BufferByteSource, FileByteSource
from memfs.detect import MAX_CONTAINERS, detect_format, open_image, register_format
from memfs.exceptions import CorruptionError, FormatError, MemfsError
from memfs.formats.base import CONTAINER, MEMORY, FormatSpec, OpenOptions
from memfs.memory import PAGE_SIZE
from memfs.report import info_dict
from memfs.views.header_txt import render_header
from scripts import make_crashdump_fixtures, make_hiberfil_fixtures
from tests.stacking import MIRROR, TBOX, TboxStream, registered, wrap

REPO = Path(__file__).resolve().parents[1]
STACKED_MEMFS = [sys.executable, "-m", "tests.stacked_memfs"]


@pytest.fixture(autouse=True)
def tbox():
    with registered():
        yield


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    path = tmp_path / "inner.dmp"
    make_crashdump_fixtures.build_dump(path, width=64, dump_type=1)
    return path


def boxed(path: Path, out: Path, *keys: int) -> Path:
    """``path`` wrapped in one TBOX per key, the first key innermost."""
    data = path.read_bytes()
    for number, key in enumerate(keys):
        data = wrap(data, key=key, block=0x1000 >> number)
    out.write_bytes(data)
    return out


def assert_same_memory(outer: Path, inner: Path) -> None:
    """Every byte of physical memory reads the same through the containers as from the bare image."""
    with open_image(str(inner)) as want, open_image(str(outer)) as got:
        assert got.runs == want.runs
        assert got.metadata.format == want.metadata.format
        assert got.metadata.format_detail == want.metadata.format_detail
        step = 0x3000 + 0x123  # crosses pages, runs and the containers' blocks at odd offsets
        for pa in range(0, want.size, step):
            assert got.read(pa, step) == want.read(pa, step)
        whole = bytearray(want.size)
        assert got.read_into(0, whole) == want.size
        assert whole == want.read(0, want.size)


# -- byte sources ------------------------------------------------------------------------------


def test_file_byte_source_reads_short_only_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 16)
    with FileByteSource(str(path)) as data:
        assert (data.name, data.path, data.size) == (str(path), str(path), 4096)
        assert data.pread(4090, 100) == bytes(range(250, 256))
        out = bytearray(10)
        assert data.readinto(4094, memoryview(out)) == 2
        assert out[:2] == bytes([254, 255])
        assert data.pread(5000, 10) == b""
        with pytest.raises(OSError):
            os.write(data.fd, b"x")  # opened read-only: the image is never written
    data.close()  # twice is harmless


def test_file_byte_source_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(MemfsError, match=r": no such file$"):
        FileByteSource(str(tmp_path / "nope"))
    with pytest.raises(MemfsError, match=r": is a directory, not an image file$"):
        FileByteSource(str(tmp_path))


def test_buffer_byte_source() -> None:
    data = BufferByteSource("<test>", b"abcdef")
    assert data.pread(4, 10) == b"ef"
    out = bytearray(b"......")
    assert data.readinto(3, memoryview(out)) == 3
    assert out == b"def..."
    assert (data.path, data.fd) == (None, None)


def test_format_spec_kind_is_checked() -> None:
    with pytest.raises(ValueError, match="kind 'zip'"):
        FormatSpec("x", "x", lambda probe: False, lambda data, options: data, kind="zip")
    with pytest.raises(ValueError, match="already registered"):
        register_format(TBOX)


# -- detection and reads through containers --------------------------------------------------------


def test_crash_dump_in_a_container_reads_like_the_dump(dump: Path, tmp_path: Path) -> None:
    outer = boxed(dump, tmp_path / "evidence.tbox", 0x5A)
    assert detect_format(str(outer)).name == "tbox"
    assert_same_memory(outer, dump)
    with open_image(str(outer)) as source:
        box, dmp = source.layers
        assert (box.kind, box.format, dmp.kind, dmp.format) == (CONTAINER, "tbox", MEMORY, "crashdump")
        assert (box.name, box.path, box.size) == (str(outer), str(outer), outer.stat().st_size)
        assert (dmp.name, dmp.path, dmp.size) == (f"{outer}[decoded]", None, dump.stat().st_size)
        assert ("Key", "0x5a") in box.rows
        assert source.name == f"{outer}[decoded]"
        assert isinstance(source.byte_source, TboxStream)


def test_two_levels_of_containers_around_hibernation_files(tmp_path: Path) -> None:
    # A modern file (compressed sets, decoded straight into read_into's buffer) and a zeroed legacy
    # one (found by the weak probe's extra reads, walked by scanning): every read goes through both.
    for name in ("win10-1809-x64", "win7-x64-zeroed"):
        inner = make_hiberfil_fixtures.build_fixture(name, tmp_path).path
        outer = boxed(inner, tmp_path / f"{name}.tbox.tbox", 0x11, 0xC3)
        assert_same_memory(outer, inner)
        with open_image(str(outer)) as source:
            assert [layer.format for layer in source.layers] == ["tbox", "tbox", source.metadata.format]
            assert source.layers[1].name == f"{outer}[decoded]"
            assert source.name == f"{outer}[decoded][decoded]"
            assert source.byte_source.reads > 0


def test_containers_nest_up_to_the_limit(tmp_path: Path) -> None:
    raw = tmp_path / "raw.bin"
    raw.write_bytes(bytes(range(256)) * 64)
    deepest = boxed(raw, tmp_path / "deep.tbox", *range(MAX_CONTAINERS))
    with open_image(str(deepest)) as source:
        assert [layer.format for layer in source.layers] == ["tbox"] * MAX_CONTAINERS + ["raw"]
        assert source.read(0, 1 << 14) == raw.read_bytes()
    too_deep = boxed(raw, tmp_path / "too-deep.tbox", *range(MAX_CONTAINERS + 1))
    with pytest.raises(FormatError) as info:
        open_image(str(too_deep))
    deepest_name = f"{too_deep}{'[decoded]' * MAX_CONTAINERS}"
    assert str(info.value) == (
        f"{deepest_name}: offset 0x0: tbox container inside {MAX_CONTAINERS} others "
        f"({' -> '.join(['tbox'] * MAX_CONTAINERS)}): memfs opens at most {MAX_CONTAINERS} nested containers"
    )


def test_a_container_that_decodes_to_itself_is_a_loop(tmp_path: Path) -> None:
    path = tmp_path / "loop.bin"
    path.write_bytes(b"MIRR" + bytes(100))
    with registered(MIRROR), pytest.raises(FormatError) as info:
        open_image(str(path))
    assert str(info.value) == (
        f"{path}[decoded]: offset 0x0: the mirror container decodes to the same bytes as {path}: "
        "a container loop"
    )


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_errors_name_the_layer_and_release_every_layer(dump: Path, tmp_path: Path) -> None:
    before = open_fds()
    # The inner dump is cut short: its reader names the decoded stream and its offset.
    cut = tmp_path / "cut.dmp"
    cut.write_bytes(dump.read_bytes()[:0x3000])
    outer = boxed(cut, tmp_path / "cut.tbox", 1, 2)
    with pytest.raises(CorruptionError) as info:
        open_image(str(outer))
    assert str(info.value).startswith(f"{outer}[decoded][decoded]: offset 0x")
    assert "\n" not in str(info.value)
    # The container itself lies about its size: the container names the file and the field.
    data = bytearray(wrap(dump.read_bytes()))
    data[8:16] = (len(data)).to_bytes(8, "little")
    liar = tmp_path / "liar.tbox"
    liar.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match=rf"^{liar}: offset 0x8: decoded size 0x"):
        open_image(str(liar))
    # An empty decoded stream is named too.
    empty = tmp_path / "empty.tbox"
    empty.write_bytes(wrap(b""))
    with pytest.raises(MemfsError, match=rf"^{empty}\[decoded\]: offset 0x0: file is empty$"):
        open_image(str(empty))
    assert open_fds() == before


def test_format_option_names_the_outermost_layer(dump: Path, tmp_path: Path) -> None:
    outer = boxed(dump, tmp_path / "x.tbox", 7)
    with open_image(str(outer), OpenOptions(format="tbox")) as source:
        assert [layer.format for layer in source.layers] == ["tbox", "crashdump"]
    with open_image(str(outer), OpenOptions(format="raw")) as source:  # the container file itself, as raw
        assert [layer.format for layer in source.layers] == ["raw"]
        assert source.size == outer.stat().st_size
    with pytest.raises(FormatError, match=rf"^{outer}: offset 0x0: not a Windows crash dump"):
        open_image(str(outer), OpenOptions(format="crashdump"))


# -- header.txt and info --json ----------------------------------------------------------------


def test_header_txt_shows_the_stack(dump: Path, tmp_path: Path) -> None:
    outer = boxed(dump, tmp_path / "evidence.tbox", 0x5A, 0x33)
    with open_image(str(outer)) as source:
        text = render_header(source)
        info = info_dict(source)

    def row(label: str, value: str) -> bool:
        return re.search(rf"^{re.escape(label)} *: {re.escape(value)}$", text, re.MULTILINE) is not None

    assert row("Source file", str(outer))  # the evidence file, not a decoded stream
    assert row("Layers", "tbox -> tbox -> crashdump")
    size = outer.stat().st_size
    assert "\n[Layer 1 of 3: tbox (container)]\nReads " in text
    assert row("Reads", f"{outer} ({size} bytes, {size:#x})")
    assert row("Reads", f"{outer}[decoded] ({size - 32} bytes, {size - 32:#x})")
    assert "\n[Layer 3 of 3: crashdump (memory)]\nReads " in text
    assert row("Reads", f"{outer}[decoded][decoded] ({size - 64} bytes, {size - 64:#x})")
    assert row("Physical memory", f"{info['present_bytes']} bytes in {len(info['runs'])} runs")
    assert [layer["format"] for layer in info["layers"]] == ["tbox", "tbox", "crashdump"]
    assert info["layers"][1] == {
        "kind": "container",
        "format": "tbox",
        "name": f"{outer}[decoded]",
        "size": outer.stat().st_size - 32,
        "facts": {"Block size": "0x1000", "Decoded size": f"{dump.stat().st_size} bytes", "Key": "0x5a"},
        "failures": [],
    }
    assert info["format"] == "crashdump"


def test_a_plain_file_is_one_layer(dump: Path) -> None:
    with open_image(str(dump)) as source:
        info = info_dict(source)
        text = render_header(source)
    assert [(layer["kind"], layer["format"], layer["name"]) for layer in info["layers"]] == [
        ("memory", "crashdump", str(dump))
    ]
    assert info["layers"][0]["facts"]["Detail"] == info["format_detail"]
    assert "Layers" not in text and "[Layer " not in text


def run_stacked(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*STACKED_MEMFS, *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_cli_info_json_lists_layers_and_errors_stay_one_line(dump: Path, tmp_path: Path) -> None:
    outer = boxed(dump, tmp_path / "evidence.tbox", 3)
    result = run_stacked("info", "--json", str(outer))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert [(layer["kind"], layer["format"]) for layer in info["layers"]] == [
        ("container", "tbox"),
        ("memory", "crashdump"),
    ]
    with open_image(str(dump)) as direct:
        assert (info["size"], info["runs"]) == (direct.size, [list(run) for run in direct.runs])
    cut = tmp_path / "cut.tbox"
    cut.write_bytes(outer.read_bytes()[: 32 + 2 * PAGE_SIZE])
    bad = run_stacked("info", str(cut))
    assert bad.returncode == 1
    assert bad.stderr.startswith(f"memfs: error: {cut}: offset 0x8: decoded size 0x")
    assert bad.stderr.count("\n") == 1
