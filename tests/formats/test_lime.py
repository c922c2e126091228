"""LiME reader: every range in any order, gaps as zeros, bad files as one clear error."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from memfs.detect import detect_format, open_image
from memfs.exceptions import FormatError
from memfs.report import info_dict
from memfs.views.header_txt import render_header
from scripts.make_other_fixtures import LIME_RANGES, PAGE, build_lime, lime_header
from tests.formats.compare import assert_source_matches, mismatches
from tests.formats.errors import open_error
from tests.readers import vol3_layer, vol3_runs


@pytest.mark.parametrize("name", ["lime", "lime_unordered"])
def test_reads_every_range(other_fixtures, name: str) -> None:
    fixture = other_fixtures[name]
    assert detect_format(str(fixture.path)).name == "lime"
    with open_image(str(fixture.path)) as source:
        assert_source_matches(source, fixture)
        info = info_dict(source)
    assert info["format"] == "lime"
    assert info["directory_table_base"] is None
    assert "directory_table_base" in info["unknown_reasons"]


def test_unordered_file_is_flagged_in_the_header(other_fixtures) -> None:
    with open_image(str(other_fixtures["lime_unordered"].path)) as source:
        text = render_header(source)
    assert "not in address order" in text
    assert "[LiME ranges (file order)]" in text


def test_volatility3_reads_the_same_bytes(other_fixtures) -> None:
    from volatility3.framework.layers.lime import LimeLayer

    fixture = other_fixtures["lime"]
    layer = vol3_layer(LimeLayer, fixture.path)
    assert vol3_runs(layer) == fixture.runs
    with open_image(str(fixture.path)) as source:
        assert mismatches(lambda pa, n: layer.read(pa, n, pad=True), fixture) == []
        assert all(layer.read(pa, PAGE, pad=True) == source.read(pa, PAGE) for pa in range(0, 0x200000, PAGE))


def test_adjacent_ranges_merge_into_one_run(tmp_path: Path) -> None:
    fixture = build_lime(tmp_path / "adj.lime", [(0x0, 0x2000), (0x2000, 0x3000), (0x8000, 0x1000)])
    with open_image(str(fixture.path)) as source:
        assert source.runs == ((0x0, 0x5000), (0x8000, 0x1000))
        assert_source_matches(source, fixture)


# -- bad input ---------------------------------------------------------------------------------


def test_truncated_first_header(tmp_path: Path) -> None:
    path = tmp_path / "trunc.lime"
    path.write_bytes(lime_header(0, PAGE)[:20])
    assert "LiME header truncated" in open_error(path)


def test_bad_version(tmp_path: Path) -> None:
    path = tmp_path / "v2.lime"
    path.write_bytes(lime_header(0, PAGE, version=2) + bytes(PAGE))
    assert "offset 0x4: unsupported LiME header version 2" in open_error(path, FormatError)


def test_overlapping_ranges(tmp_path: Path) -> None:
    path = tmp_path / "overlap.lime"
    path.write_bytes(
        lime_header(0x1000, 0x2000) + bytes(0x2000) + lime_header(0x2000, 0x1000) + bytes(0x1000)
    )
    message = open_error(path)
    assert message.startswith(f"{path}: offset {0x2020:#x}: LiME range #1")
    assert "overlaps LiME range #0" in message


def test_end_before_start(tmp_path: Path) -> None:
    path = tmp_path / "backwards.lime"
    path.write_bytes(struct.pack("<IIQQ8s", 0x4C694D45, 1, 0x5000, 0x4000, bytes(8)))
    assert "ends (0x4000) before it starts (0x5000)" in open_error(path)


def test_garbage_between_ranges(tmp_path: Path) -> None:
    path = tmp_path / "garbage.lime"
    path.write_bytes(lime_header(0, PAGE) + bytes(PAGE) + b"NOTLIME!" * 8)
    message = open_error(path)
    assert message.startswith(f"{path}: offset {0x1020:#x}: expected a LiME range header")


def test_truncated_last_range_is_served_with_a_note(tmp_path: Path) -> None:
    fixture = build_lime(tmp_path / "cut.lime", LIME_RANGES)
    data = fixture.path.read_bytes()
    fixture.path.write_bytes(data[: len(data) - 0x8000])  # the last range loses 8 of its 16 pages
    with open_image(str(fixture.path)) as source:
        last_start, last_len = LIME_RANGES[-1]
        assert source.runs[-1] == (last_start, last_len - 0x8000)
        assert source.read(last_start, 0x8000) == fixture.read(last_start, 0x8000)
        assert source.read(last_start + 0x8000, PAGE) == b""  # beyond the end of physmem now
        notes = source.metadata.notes
    assert len(notes) == 1
    assert re.search(r"offset 0x[0-9a-f]+: LiME range #2 .* 0x8000 bytes are missing", notes[0])


def test_trailing_bytes_are_noted(tmp_path: Path) -> None:
    fixture = build_lime(tmp_path / "tail.lime", LIME_RANGES[:1])
    with open(fixture.path, "ab") as out:
        out.write(b"\0" * 10)
    with open_image(str(fixture.path)) as source:
        assert_source_matches(source, fixture)
        assert any("10 trailing bytes" in note for note in source.metadata.notes)
