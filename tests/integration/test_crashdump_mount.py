"""Every crash dump fixture through a real mount, and the CLI's one-line errors on bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from memfs.detect import open_image
from scripts.make_crashdump_fixtures import FIXTURES, build_dump
from tests.digest import sha256
from tests.integration.conftest import run_memfs


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("dumps")
    for name, kwargs in FIXTURES.items():
        build_dump(directory / name, **kwargs)
    return directory


def _physmem_digest(image: Path) -> str:
    import hashlib

    with open_image(str(image)) as source:
        digest = hashlib.sha256()
        for pa in range(0, source.size, 1 << 20):
            digest.update(source.read(pa, 1 << 20))
        return digest.hexdigest()


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_physmem_through_the_mount_equals_the_source(dumps: Path, name: str, mount_image) -> None:
    image = dumps / name
    mnt = mount_image(image)
    header = (mnt / "header.txt").read_text()
    assert "Format          : crashdump" in header
    assert "[Crash dump header]" in header
    if FIXTURES[name]["dump_type"] == 4:
        assert os.listdir(mnt) == ["header.txt"]
        assert "no physical memory" in header
        return
    assert "physmem.bin" in os.listdir(mnt)
    assert sha256(mnt / "physmem.bin") == _physmem_digest(image)


def _one_line_error(result, *needles: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_cli_bad_inputs(dumps: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.dmp"
    empty.write_bytes(b"")
    _one_line_error(run_memfs("info", str(empty)), "empty.dmp", "offset 0x0", "empty")

    truncated = tmp_path / "truncated.dmp"
    truncated.write_bytes((dumps / "full64.dmp").read_bytes()[:0x800])
    _one_line_error(run_memfs("info", str(truncated)), "truncated.dmp", "offset 0x", "truncated")

    wrong = tmp_path / "wrong.dmp"
    wrong.write_bytes(b"PAGEXXXX" + (dumps / "full64.dmp").read_bytes()[8:])
    _one_line_error(run_memfs("info", str(wrong)), "wrong.dmp", "offset 0x4")

    short = tmp_path / "short.dmp"
    short.write_bytes((dumps / "full64.dmp").read_bytes()[:0x3000])
    _one_line_error(run_memfs("info", str(short)), "short.dmp", "past the end of the file")

    _one_line_error(run_memfs("info", str(tmp_path)), "is a directory")
    _one_line_error(run_memfs("info", str(tmp_path / "missing.dmp")), "no such file")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    _one_line_error(run_memfs("mount", str(short), str(mnt)), "short.dmp", "past the end of the file")
    assert not os.path.ismount(mnt)


def test_info_json_keys(dumps: Path) -> None:
    result = run_memfs("info", str(dumps / "bitmap64_full.dmp"), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    for key in (
        "format", "arch", "os_build", "dump_type", "directory_table_base", "kd_debugger_data_block",
        "ps_loaded_module_list", "ps_active_process_head", "pfn_database", "number_processors",
        "bugcheck_code", "bugcheck_parameters", "system_time", "runs", "size",
    ):  # fmt: skip
        assert key in info
    assert info["format"] == "crashdump" and info["arch"] == "x64" and info["dump_type"] == 5
    assert info["size"] == info["runs"][-1][0] + info["runs"][-1][1]
    raw = json.loads(run_memfs("info", str(dumps / "full64.dmp"), "--json", "--format", "raw").stdout)
    assert raw["format"] == "raw" and raw["arch"] is None and raw["os_build"] is None


def test_build_dump_is_deterministic(tmp_path: Path) -> None:
    build_dump(tmp_path / "a.dmp", width=64, dump_type=5)
    build_dump(tmp_path / "b.dmp", width=64, dump_type=5)
    assert (tmp_path / "a.dmp").read_bytes() == (tmp_path / "b.dmp").read_bytes()
