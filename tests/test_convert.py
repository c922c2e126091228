"""``memfs convert`` without FUSE: content, sparseness, parallel decode, safety, progress, SHA-256."""

from __future__ import annotations

import io
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import scripts.make_crashdump_fixtures as mk
import scripts.make_hiberfil_fixtures as make_hiberfil_fixtures
import scripts.make_other_fixtures as mo
from memfs.convert import TARGETS, ZERO_BLOCK, check_output, convert_file, plan_chunks, select_file
from memfs.detect import open_image
from memfs.exceptions import DecompressionError, MemfsError
from memfs.kernel.discover import discover
from memfs.memory import BufferSource
from memfs.progress import Progress, format_bytes, format_duration
from memfs.views.tree import build_files
from tests.conftest import REPO, default_sigint
from tests.digest import sha256

MEMFS = [sys.executable, "-m", "memfs"]
SLOW_MEMFS = [sys.executable, "-m", "tests.slow_memfs"]

CRASHDUMPS = ["full64.dmp", "summary64_bitmap.dmp", "bitmap64_full.dmp", "rdmp64_complete.dmp", "full32.dmp"]


def run(*args: str, command: list[str] = MEMFS, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=REPO, env={**os.environ, **env}, timeout=60
    )


def expected_physmem(pages: dict[int, bytes]) -> bytes:
    """physmem.bin built independently from the pages the fixture builder stored."""
    out = bytearray((max(pages) + 1) * mk.PAGE)
    for pfn, data in pages.items():
        out[pfn * mk.PAGE : (pfn + 1) * mk.PAGE] = data
    return bytes(out)


def whole(file) -> bytes:
    return file.read(0, file.size)


@pytest.fixture
def raw_image(tmp_path: Path) -> Path:
    """4 MiB random, a 3 MiB zero gap (whole 64 KiB blocks), then a tail that is not block aligned."""
    rng = random.Random(3)
    path = tmp_path / "image.raw"
    path.write_bytes(rng.randbytes(4 << 20) + bytes(3 << 20) + rng.randbytes(12345))
    return path


@pytest.fixture(scope="module")
def crashdumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[int, bytes]]]:
    out = tmp_path_factory.mktemp("dumps")
    built = {}
    for name in [*CRASHDUMPS, "triage64.dmp"]:
        path = out / name
        built[name] = (path, mk.build_dump(path, **mk.FIXTURES[name]))
    return built


# -- planning ------------------------------------------------------------------------------------------


def test_plan_chunks_aligns_to_the_chunk_size_and_skips_holes() -> None:
    chunks = plan_chunks([(0x100, 0x2F00), (0x5000, 0x800), (0x6000, 0x10000)], 0x9000, 0x1000)
    assert chunks[:4] == [(0x100, 0xF00), (0x1000, 0x1000), (0x2000, 0x1000), (0x5000, 0x800)]
    assert chunks[4:] == [(0x6000, 0x1000), (0x7000, 0x1000), (0x8000, 0x1000)]  # clamped at size
    assert all(off // 0x1000 == (off + n - 1) // 0x1000 for off, n in chunks)
    assert plan_chunks([], 0x1000, 0x1000) == []
    with pytest.raises(ValueError):
        plan_chunks([(0, 1)], 1, 0)


# -- content -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_raw_image_round_trips_with_any_number_of_workers(raw_image: Path, tmp_path: Path, jobs: int) -> None:
    out = tmp_path / "out.raw"
    with open_image(str(raw_image)) as source:
        result = convert_file(select_file(source, "raw"), str(out), jobs=jobs, chunk_size=256 << 10)
    assert out.read_bytes() == raw_image.read_bytes()
    assert result.sha256 == sha256(out) == sha256(raw_image)
    assert result.size == out.stat().st_size
    # The 3 MiB of zeros were not written: whole 64 KiB blocks stay sparse.
    assert result.written_bytes == result.size - (3 << 20)
    assert out.stat().st_blocks * 512 < result.size


@pytest.mark.parametrize("name", CRASHDUMPS)
def test_crash_dump_to_raw_equals_the_physmem_view(crashdumps, tmp_path: Path, name: str) -> None:
    path, pages = crashdumps[name]
    out = tmp_path / "physmem.raw"
    with open_image(str(path)) as source:
        view = build_files(source, discover(source))["physmem.bin"]
        result = convert_file(select_file(source, "raw"), str(out), jobs=2, chunk_size=64 << 10)
        assert out.read_bytes() == whole(view) == expected_physmem(pages)
        holes = source.size - source.present_bytes
    assert holes > 0
    assert result.sha256 == sha256(out)
    assert result.data_bytes == result.size - holes  # holes were never read
    st = out.stat()
    assert st.st_blocks * 512 < st.st_size, "holes of the source must stay sparse in the output"


@pytest.fixture(scope="module")
def other_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, mo.Fixture]:
    return mo.build_all(tmp_path_factory.mktemp("other_inputs"))


@pytest.mark.parametrize(
    "name", ["lime_unordered", "elf32_qemu", "elf64_vbox", "vmware_small", "vmware_inline"]
)
def test_lime_elf_vmware_to_raw(other_inputs, tmp_path: Path, name: str) -> None:
    fixture = other_inputs[name]
    out = tmp_path / "physmem.raw"
    with open_image(str(fixture.path)) as source:
        result = convert_file(select_file(source, "raw"), str(out), jobs=2, chunk_size=64 << 10)
        has_holes = source.present_bytes < source.size
    assert out.read_bytes() == fixture.image_bytes()
    assert result.sha256 == sha256(out)
    if has_holes:
        assert out.stat().st_blocks * 512 < out.stat().st_size


@pytest.mark.parametrize("name", ["xp-x86", "win7-x64", "win10-1809-x64"])
def test_hiberfil_to_raw(tmp_path: Path, name: str) -> None:
    info = make_hiberfil_fixtures.build_fixture(name, tmp_path)
    out = tmp_path / "physmem.raw"
    with open_image(str(info.path)) as source:
        assert source.metadata.format != "raw"
        result = convert_file(select_file(source, "raw"), str(out), jobs=2, chunk_size=128 << 10)
        holes = source.size - source.present_bytes
    assert result.sha256 == sha256(out) == info.sha256
    assert result.size == info.physmem_size
    assert holes > 0 and out.stat().st_blocks * 512 < out.stat().st_size


def test_dmp_output_equals_the_memory_dmp_view(crashdumps, tmp_path: Path) -> None:
    path, _ = crashdumps["bitmap64_full.dmp"]
    with open_image(str(path)) as source:
        files = build_files(source, discover(source))
        out = tmp_path / "out.dmp"
        result = convert_file(select_file(source, "dmp"), str(out), jobs=2, chunk_size=64 << 10)
        assert out.read_bytes() == whole(files["memory.dmp"])
    assert out.read_bytes()[:8] in (b"PAGEDU64", b"PAGEDUMP")
    assert result.sha256 == sha256(out)


def test_raw_output_skips_kernel_discovery(crashdumps, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only memory.dmp needs discovery; --to raw must not pay for it (seconds on a large image)."""
    import memfs.kernel.discover as discover_module

    calls = []
    real = discover_module.discover
    monkeypatch.setattr(discover_module, "discover", lambda source: calls.append(source) or real(source))
    with open_image(str(crashdumps["full64.dmp"][0])) as source:
        assert select_file(source, "raw").name == "physmem.bin"
        assert calls == []
        assert select_file(source, "dmp").name == "memory.dmp"
        assert len(calls) == 1


def test_image_without_memory_has_nothing_to_convert(crashdumps) -> None:
    with open_image(str(crashdumps["triage64.dmp"][0])) as source:
        for to in TARGETS:
            with pytest.raises(MemfsError, match="holds no physical memory"):
                select_file(source, to)


# -- safety ------------------------------------------------------------------------------------------


class FailingSource(BufferSource):
    """Reads fail past ``fail_at``, like an undecodable compression unit."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        super().__init__([(0, data)])
        self.fail_at = fail_at

    def _read_mapped(self, pa: int, n: int) -> bytes:
        if pa + n > self.fail_at:
            self.failures.record(self.fail_at, f"<memory>: offset {self.fail_at:#x}: bad unit")
            raise DecompressionError(f"<memory>: offset {self.fail_at:#x}: bad unit")
        return super()._read_mapped(pa, n)


@pytest.mark.parametrize("existing", [False, True])
def test_failed_read_leaves_no_partial_output(tmp_path: Path, existing: bool) -> None:
    out = tmp_path / "out.raw"
    if existing:
        out.write_bytes(b"previous content")
    source = FailingSource(random.Random(1).randbytes(2 << 20), fail_at=1 << 20)
    with pytest.raises(DecompressionError, match="0x100000"):
        convert_file(select_file(source, "raw"), str(out), jobs=2, chunk_size=64 << 10, force=True)
    assert os.listdir(tmp_path) == (["out.raw"] if existing else [])
    if existing:
        assert out.read_bytes() == b"previous content"  # --force replaces only on success


def test_disk_full_is_one_clear_error(
    raw_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import memfs.convert as convert

    def full(*_: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = tmp_path / "out" / "image.raw"
    out.parent.mkdir()
    monkeypatch.setattr(convert.os, "pwrite", full)
    with open_image(str(raw_image)) as source, pytest.raises(MemfsError) as error:
        convert_file(select_file(source, "raw"), str(out), jobs=2)
    assert str(error.value) == f"{out}: cannot write: No space left on device"
    assert os.listdir(out.parent) == []


def test_unwritable_directory_is_one_clear_error(
    raw_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import memfs.convert as convert

    def denied(**_: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(convert.tempfile, "mkstemp", denied)
    with (
        open_image(str(raw_image)) as source,
        pytest.raises(MemfsError, match="cannot write: Permission denied"),
    ):
        convert_file(select_file(source, "raw"), str(tmp_path / "x.raw"))


def test_refuses_to_overwrite_without_force(raw_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.raw"
    out.write_bytes(b"keep me")
    result = run("convert", str(raw_image), str(out), "--to", "raw")
    assert result.returncode == 1
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert "Traceback" not in result.stderr
    assert out.read_bytes() == b"keep me"
    forced = run("convert", str(raw_image), str(out), "--to", "raw", "--force")
    assert forced.returncode == 0, forced.stderr
    assert out.read_bytes() == raw_image.read_bytes()


def test_refuses_bad_outputs(raw_image: Path, tmp_path: Path) -> None:
    with pytest.raises(MemfsError, match="is the input image"):
        check_output(str(raw_image), str(raw_image), force=True)
    with pytest.raises(MemfsError, match="is a directory"):
        check_output(str(tmp_path), str(raw_image), force=True)
    with pytest.raises(MemfsError, match="does not exist"):
        check_output(str(tmp_path / "no" / "out.raw"), str(raw_image), force=False)
    result = run("convert", str(raw_image), str(raw_image), "--to", "raw", "--force")
    assert result.returncode == 1 and "is the input image" in result.stderr


def test_cli_prints_the_sha256_of_what_it_wrote(raw_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.raw"
    result = run("convert", str(raw_image), str(out), "--to", "raw", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{sha256(out)}  {out}\n"
    assert "wrote" in result.stderr and "3.00 MiB left sparse" in result.stderr
    quiet = run("convert", str(raw_image), str(tmp_path / "q.raw"), "--to", "raw", "-q")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.split()[0] == sha256(out)


def test_no_hash_writes_the_same_bytes_and_prints_no_digest(raw_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.raw"
    result = run("convert", str(raw_image), str(out), "--to", "raw", "--no-hash")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "wrote" in result.stderr
    assert sha256(out) == sha256(raw_image)
    with open_image(str(raw_image)) as source:
        again = convert_file(select_file(source, "raw"), str(tmp_path / "api.raw"), hash_output=False)
    assert again.sha256 is None and sha256(tmp_path / "api.raw") == sha256(raw_image)


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_conversion_leaves_no_partial_output(raw_image: Path, tmp_path: Path, sig) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "image.raw"
    child = subprocess.Popen(
        [*SLOW_MEMFS, "convert", str(raw_image), str(out), "--to", "raw", "--jobs", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "MEMFS_TEST_READ_DELAY": "0.1"},  # 29 chunks: ~3 s in all
        preexec_fn=default_sigint,
    )
    try:
        _wait_for(lambda: any(name.endswith(".partial") for name in os.listdir(outdir)))
        time.sleep(0.3)  # mid-way: a few chunks written
        assert child.poll() is None, "conversion finished before it could be interrupted"
        child.send_signal(sig)
        _, stderr = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130
    assert os.listdir(outdir) == [], "no output and no temporary file may remain"
    assert b"interrupted" in stderr and b"Traceback" not in stderr


def test_cli_error_mid_way_leaves_no_partial_output(raw_image: Path, tmp_path: Path) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    result = run(
        "convert",
        str(raw_image),
        str(outdir / "image.raw"),
        "--to",
        "raw",
        command=SLOW_MEMFS,
        MEMFS_TEST_READ_DELAY="0",
        MEMFS_TEST_FAIL_AT="0x500000",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"memfs: error: {raw_image}: offset 0x500000: injected decode failure"
    ]
    assert result.stdout == ""
    assert os.listdir(outdir) == []


def _run_on_pty(args: list[str]) -> tuple[int, bytes, bytes]:
    """Run with stderr on a pseudo-terminal; return (status, terminal output, stdout)."""
    master, slave = os.openpty()
    child = subprocess.Popen(
        args,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "MEMFS_TEST_READ_DELAY": "0.05"},
    )
    os.close(slave)
    terminal = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, "no output from the child for 30 s"
            try:
                block = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not block:
                break
            terminal += block
        stdout = child.stdout.read()
        status = child.wait(timeout=20)
    finally:
        os.close(master)
        if child.poll() is None:
            child.kill()
    return status, terminal, stdout


def test_progress_bar_on_a_terminal(raw_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.raw"
    status, terminal, stdout = _run_on_pty([*SLOW_MEMFS, "convert", str(raw_image), str(out), "--to", "raw"])
    assert status == 0, terminal
    assert terminal.count(b"\r") >= 3 and terminal.count(b"ETA") >= 3, "the bar is redrawn in place"
    assert b"ETA" in terminal and b"MiB/s" in terminal and b"%" in terminal and b"[#" in terminal
    assert b"wrote" in terminal
    assert stdout.decode().split()[0] == sha256(out)


def test_quiet_shows_no_progress_on_a_terminal(raw_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.raw"
    status, terminal, stdout = _run_on_pty(
        [*SLOW_MEMFS, "convert", str(raw_image), str(out), "--to", "raw", "-q"]
    )
    assert status == 0
    assert terminal == b""
    assert stdout.decode().split()[0] == sha256(out)


# -- progress ----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_when_not_a_terminal() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(1000 << 20, "copy", stream=stream, interval=10, clock=clock)
    assert progress.mode == "lines"
    for second in range(1, 31):
        clock.now += 1
        progress.update(second * (10 << 20))  # 10 MiB/s
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # one every 10 s
    assert lines[-1] == "copy:  30.0%  300.00 MiB of 1000.00 MiB  10.00 MiB/s  ETA 0:01:10"
    progress.note("flushing")
    progress.finish("done")
    assert stream.getvalue().endswith("copy: flushing\ndone\n")


def test_progress_tty_redraws_in_place_and_clears() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(100, "x", stream=stream, mode="tty", clock=clock)
    clock.now += 1
    progress.update(50)
    assert stream.getvalue().startswith("\rx [############............]  50.0%")
    progress.finish()
    assert stream.getvalue().endswith("\r")
    off = Progress(100, "x", stream=stream, mode="off", clock=clock)
    before = stream.getvalue()
    off.update(100)
    off.finish("message")
    assert stream.getvalue() == before


def test_progress_formatting() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 << 30) == "3.00 GiB"
    assert format_duration(3725) == "1:02:05"
    assert ZERO_BLOCK == 64 << 10
