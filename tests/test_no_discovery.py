"""``--no-discovery``: mount, info and convert open at once; memory.dmp and header.txt say what they lack."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from memfs.cli import build_parser
from memfs.cli import main as memfs_main
from memfs.kernel import discover as discover_mod
from memfs.kernel.discover import NOT_REQUESTED
from scripts.make_sample import build

# DUMP_HEADER64 offsets (docs/formats/crashdump.md §2), stated here independently of the writer.
DTB_AT, KDBG_AT, COMMENT_AT = 0x10, 0x80, 0xFB0


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("sample"))


@pytest.fixture
def no_discovery_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if discovery runs anyway."""

    def refuse(*args, **kwargs):
        raise AssertionError("kernel discovery ran despite --no-discovery")

    monkeypatch.setattr(discover_mod, "discover", refuse)


@pytest.mark.parametrize("command", ["mount", "info", "convert"])
def test_the_switch_is_offered_and_explained(command, capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    assert "--no-discovery" in capsys.readouterr().out


def test_info_says_discovery_was_not_run(sample, capsys, no_discovery_allowed) -> None:
    assert memfs_main(["info", str(sample), "--json", "--no-discovery"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["discovery"]["skipped"] == NOT_REQUESTED and info["discovery"]["complete"] is False
    assert info["directory_table_base"] is None and info["kd_debugger_data_block"] is None
    assert NOT_REQUESTED in info["unknown_reasons"]["directory_table_base"]
    assert any("no KdDebuggerDataBlock" in text for text in info["discovery"]["missing"])
    assert memfs_main(["info", str(sample), "--no-discovery"]) == 0
    text = capsys.readouterr().out
    assert f"Not run : {NOT_REQUESTED}" in text
    assert f"WinDbg will miss : {NOT_REQUESTED}" in text
    assert "WinDbg will miss : no DirectoryTableBase" in text


def test_convert_to_dmp_without_discovery(sample, tmp_path, capsys, no_discovery_allowed) -> None:
    out = tmp_path / "memory.dmp"
    assert memfs_main(["convert", str(sample), str(out), "--to", "dmp", "-q", "--no-discovery"]) == 0
    header = out.read_bytes()[:0x2000]
    assert header[:8] == b"PAGEDU64"
    assert struct.unpack_from("<Q", header, DTB_AT)[0] == 0
    assert struct.unpack_from("<Q", header, KDBG_AT)[0] == 0
    comment = header[COMMENT_AT : COMMENT_AT + 128].rstrip(b"\0").decode()
    assert comment.endswith("; kernel discovery was not run (--no-discovery)")


def test_with_discovery_the_same_dump_has_the_values(sample, tmp_path, capsys) -> None:
    out = tmp_path / "memory.dmp"
    assert memfs_main(["convert", str(sample), str(out), "--to", "dmp", "-q"]) == 0
    header = out.read_bytes()[:0x2000]
    assert struct.unpack_from("<Q", header, DTB_AT)[0] == 0x1AB000
    assert struct.unpack_from("<Q", header, KDBG_AT)[0] != 0
    assert "discovery" not in header[COMMENT_AT : COMMENT_AT + 128].decode(errors="replace")
