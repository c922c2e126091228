"""The fuzz corpus as regression tests: every seed and every saved crasher, through the pipeline and the CLI.

``tests/fuzz/crashers/`` holds the minimised inputs ``make fuzz`` found (one per distinct failure);
each must now run cleanly.  Every input must also leave the CLI with status 0 or 1 and at most one
line of error: the last line of defence (``memfs: internal error: ...``, status 2) is for bugs no
known input reaches.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from memfs import cli
from tests.conftest import REPO
from tests.fuzz.seeds import BASES, build_bases, build_small
from tests.fuzz.target import LAYOUT_LIMIT, Workspace, run_input

CRASHERS = Path(__file__).parent / "crashers"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("fuzz")
    build_bases(root / "bases")
    return Workspace(root / "work", root / "bases")


@pytest.fixture(scope="module")
def seed_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    small = build_small(tmp_path_factory.mktemp("seeds"))
    inputs = {path.name: b"\0" + path.read_bytes() for path in small}
    inputs.update({f"base-{base.name}": bytes([LAYOUT_LIMIT + i]) for i, base in enumerate(BASES)})
    return inputs


def _crashers() -> list[str]:
    return sorted(p.name for p in CRASHERS.iterdir() if p.is_file()) if CRASHERS.is_dir() else []


def _cli_answers(workspace: Workspace, data: bytes, out: Path, capsys) -> list[str]:
    """Run info and both conversions on the input; return what went wrong (nothing, hopefully)."""
    problems = []
    with workspace.materialise(data) as opened:
        assert opened is not None
        path, options = opened
        layout = ["--hiber-layout", options.hiber_layout] if options.hiber_layout else []
        for argv in (
            ["info", path],
            ["convert", path, str(out / "o.raw"), "--to", "raw", "-q", "--force", "-j", "1"],
            ["convert", path, str(out / "o.dmp"), "--to", "dmp", "-q", "--force", "-j", "1"],
        ):
            code = cli.main([*argv, *layout])
            err = capsys.readouterr().err
            if code not in (0, 1) or "internal error" in err or len(err.strip().splitlines()) > 1:
                problems.append(f"memfs {argv[0]} {' '.join(argv[2:3])}: status {code}: {err.strip()}")
    return problems


def test_seeds_run_the_whole_pipeline(workspace: Workspace, seed_inputs: dict[str, bytes]) -> None:
    for name, data in seed_inputs.items():
        result = run_input(workspace, data)
        assert result is not None and result.opened, f"{name}: {result}"
        assert "physmem.bin" in result.files or name.startswith("crashdump-triage"), name


@pytest.mark.parametrize("name", _crashers())
def test_saved_crasher_runs_cleanly(workspace: Workspace, name: str) -> None:
    run_input(workspace, (CRASHERS / name).read_bytes())


def test_no_corpus_input_reaches_the_last_line_of_defence(
    workspace: Workspace, seed_inputs: dict[str, bytes], tmp_path: Path, capsys
) -> None:
    inputs = {**seed_inputs, **{name: (CRASHERS / name).read_bytes() for name in _crashers()}}
    problems = []
    for name, data in inputs.items():
        problems += [f"{name}: {p}" for p in _cli_answers(workspace, data, tmp_path, capsys)]
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed (make fuzz)")
def test_the_fuzz_target_runs(tmp_path: Path, workspace: Workspace, seed_inputs: dict[str, bytes]) -> None:
    """The atheris target itself: instrumented memfs, a few hundred mutated runs, no crash."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("crashdump-full64.dmp", "hiberfil-win7-x64", "lime", "elf64-qemu", "vmware-inline.vmsn"):
        (corpus / name).write_bytes(seed_inputs[name])
    env = {**os.environ, "PYTHONPATH": str(REPO), "MEMFS_FUZZ_WORK": str(tmp_path / "work")}
    env["MEMFS_FUZZ_BASES"] = str(workspace.pristine)
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.target", "-runs=300", "-seed=1", "-len_control=0", str(corpus)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 300 runs" in result.stderr


def test_patched_bases_are_restored(workspace: Workspace) -> None:
    """A base input patches a private copy in place (bytes, then a cut) and puts it back afterwards."""
    index = next(i for i, base in enumerate(BASES) if base.name == "windows-crashdump")
    base = BASES[index]
    target = workspace.root / base.name / base.target
    pristine = (workspace.pristine / base.name / base.target).read_bytes()
    script = struct.pack("<BI", 4, 0x10) + b"ABCD" + struct.pack("<BI", 0x80, 0x3000)
    with workspace.materialise(bytes([LAYOUT_LIMIT + index]) + script) as opened:
        assert opened is not None and opened[0] == str(target)
        patched = target.read_bytes()
        assert patched[0x10:0x14] == b"ABCD" and len(patched) == 0x3000
    assert target.read_bytes() == pristine
