"""Which libfuse memfs loads, the options it passes each version, and ``memfs doctor`` (no mounting)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memfs.exceptions import MemfsError, MissingDependencyError
from memfs.fuse import doctor, libfuse, mount
from memfs.fuse.libfuse import LibFuse, find_libfuse
from memfs.fuse.mount import MountOptions, _fuse_options, mount_background

REAL_CDLL = ctypes.CDLL


def _installed_libfuse3() -> str:
    for name in libfuse.LIBFUSE3_SONAMES:
        try:
            REAL_CDLL(name)
        except OSError:
            continue
        return name
    pytest.skip("no libfuse 3 on this machine")


@pytest.fixture
def linker(monkeypatch: pytest.MonkeyPatch):
    """Pretend the dynamic linker finds only the sonames given (each served by the real libfuse 3)."""

    loaded: list[str] = []

    def install(*available: str) -> list[str]:
        """Returns the list of sonames loaded, in order."""
        real = _installed_libfuse3()

        def cdll(name, *args, **kwargs):
            if name is None or "fuse" not in str(name):
                return REAL_CDLL(name, *args, **kwargs)
            if name not in available:
                raise OSError(f"{name}: cannot open shared object file")
            loaded.append(name)
            return REAL_CDLL(real, *args, **kwargs)

        monkeypatch.setattr(libfuse.ctypes, "CDLL", cdll)
        return loaded

    return install


@pytest.mark.parametrize(
    ("available", "chosen"),
    [
        (("libfuse.so.2", "libfuse3.so.3"), "libfuse3.so.3"),  # 2 beside 3: the mount-breaking case
        (("libfuse3.so.4", "libfuse3.so.3", "libfuse.so.2"), "libfuse3.so.4"),
        (("libfuse.so.2",), "libfuse.so.2"),
    ],
)
def test_libfuse_3_wins_over_2(linker, available: tuple[str, ...], chosen: str) -> None:
    loaded = linker(*available)
    assert find_libfuse({}).chosen_by == "memfs"
    assert loaded == [chosen]


def test_no_libfuse_says_what_to_install(linker) -> None:
    linker()
    with pytest.raises(MissingDependencyError, match=r"no libfuse found .*apt-get install fuse3"):
        find_libfuse({})


def test_user_variable_overrides(tmp_path: Path) -> None:
    real = _installed_libfuse3()
    lib = find_libfuse({"FUSE_LIBRARY_PATH": real})
    assert lib.chosen_by == "FUSE_LIBRARY_PATH" and lib.major == 3
    assert os.path.isabs(lib.path) and "libfuse3.so" in lib.path
    assert "chosen by FUSE_LIBRARY_PATH" in lib.describe()
    with pytest.raises(MissingDependencyError, match="FUSE_LIBRARY_PATH=.*cannot load it"):
        find_libfuse({"FUSE_LIBRARY_PATH": str(tmp_path / "libfuse.so.9")})
    with pytest.raises(MissingDependencyError, match="not a libfuse library"):
        find_libfuse({"FUSE_LIBRARY_PATH": "libc.so.6"})


def test_version_comes_from_the_library() -> None:
    lib = find_libfuse({"FUSE_LIBRARY_PATH": _installed_libfuse3()})
    handle = REAL_CDLL(lib.path)
    handle.fuse_pkgversion.restype = ctypes.c_char_p
    assert lib.release == handle.fuse_pkgversion().decode()
    assert lib.release.startswith(f"{lib.api[0]}.{lib.api[1]}")
    assert libfuse._api_version(29) == (2, 9) and libfuse._api_version(317) == (3, 17)


@pytest.mark.parametrize(
    ("api", "max_threads", "largest_read"),
    [
        ((2, 9), False, "128 KiB"),
        ((3, 10), False, "1 MiB"),
        ((3, 11), False, "1 MiB"),
        ((3, 12), True, "1 MiB"),
    ],
)
def test_options_follow_the_version(api: tuple[int, int], max_threads: bool, largest_read: str) -> None:
    lib = LibFuse(path="/x", api=api, release=f"{api[0]}.{api[1]}.0", chosen_by="memfs")
    options = _fuse_options(MountOptions(), lib)
    assert ("max_threads" in options) is max_threads
    assert options["entry_timeout"] == options["negative_timeout"] == 3600.0  # both majors know them
    assert lib.largest_read_text == largest_read
    section = mount.mount_section(lib)
    assert section.rows[0] == ("Served by", "libfuse " + lib.release + " (/x)")
    assert ("Largest read request", largest_read) in section.rows


def test_import_mfusepy_leaves_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUSE_LIBRARY_PATH", raising=False)
    _installed_libfuse3()
    module = libfuse.import_mfusepy()
    assert "FUSE_LIBRARY_PATH" not in os.environ  # memfs's children see the user's environment
    assert module._libfuse_path == libfuse.select_libfuse().path


def test_version_names_libfuse_and_python() -> None:
    result = subprocess.run([sys.executable, "-m", "memfs", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("memfs ")
    assert lines[1].startswith(f"Python {sys.version_info.major}.{sys.version_info.minor}.")
    assert lines[2].startswith("libfuse ") or lines[2].startswith("libfuse: none usable")


def test_doctor_names_a_missing_device_and_its_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "FUSE_DEVICE", str(tmp_path / "fuse"))
    reason = doctor.mount_blocker()
    assert reason is not None and "fuse is missing" in reason and "modprobe fuse" in reason
    text, can_mount = doctor.report()
    assert not can_mount and "FAIL" in text and text.count("\n") < 25  # one screen
    (tmp_path / "fuse").write_text("")
    (tmp_path / "fuse").chmod(0o000)
    if os.geteuid() != 0:  # root opens anything
        assert "cannot be opened" in (doctor.mount_blocker() or "")


def test_doctor_command_exit_status_matches_its_verdict() -> None:
    result = subprocess.run([sys.executable, "-m", "memfs", "doctor"], capture_output=True, text=True)
    verdict = result.stdout.strip().splitlines()[-2]
    assert verdict.startswith("yes:" if result.returncode == 0 else "no:"), result.stdout
    assert "Traceback" not in result.stderr


def test_doctor_flags_a_helper_that_is_not_setuid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "fusermount3"
    helper.write_text("#!/bin/sh\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    check = doctor._helper(None)
    assert check.status == doctor.FAIL and f"chmod u+s {helper}" in check.fix


def test_ready_wait_has_a_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon that never says ready is stopped, and the mount reported failed, after the timeout."""
    monkeypatch.setattr(mount, "run_fuse", lambda *args, **kwargs: time.sleep(60))
    started = time.monotonic()
    with pytest.raises(
        MemfsError, match=r"not ready after 0\.5 s; its daemon \(pid (\d+)\) was stopped"
    ) as err:
        mount_background({}, str(tmp_path), MountOptions(), timeout=0.5)
    assert time.monotonic() - started < 10
    pid = int(err.value.args[0].split("(pid ")[1].split(")")[0])
    with pytest.raises(ChildProcessError):  # already reaped
        os.waitpid(pid, os.WNOHANG)
    assert "memfs doctor" in str(err.value)


def test_daemon_failure_comes_back_as_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise MemfsError(f"{tmp_path}: mount failed (libfuse error 1)")

    monkeypatch.setattr(mount, "run_fuse", fail)
    with pytest.raises(MemfsError, match="libfuse error 1.*memfs doctor"):
        mount_background({}, str(tmp_path), MountOptions(), timeout=30)


def test_unwritable_log_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(MemfsError, match=r"--log-file .*/no/such/dir/log: cannot open it for writing"):
        mount.open_log_file(str(tmp_path / "no" / "such" / "dir" / "log"))
