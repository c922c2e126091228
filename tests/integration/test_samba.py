"""A real Samba server on loopback shares a live memfs mount; smbclient fetches the files.

The share definition is the one ``memfs share`` prints (:func:`memfs.share.share_for_mount`); the
server runs on a private port with private state directories and is always stopped by its PID.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import scripts.make_crashdump_fixtures as mk
from memfs.share import share_for_mount, share_section
from tests.integration.conftest import run_memfs, unmount_quietly
from tests.integration.test_mount import sha256

FIRST_PORT = 14450
STATE_DIRS = {
    "lock directory": "lock",
    "state directory": "state",
    "cache directory": "cache",
    "pid directory": "pid",
    "private dir": "private",
    "ncalrpc dir": "ncalrpc",
}
"""smb.conf option -> subdirectory of the test's private state directory."""


def _ensure_samba() -> None:
    """Skip, saying how to get them, where smbd or smbclient is absent (``make test`` installs both)."""
    if not (shutil.which("smbd") or os.path.exists("/usr/sbin/smbd")) or not shutil.which("smbclient"):
        pytest.skip("smbd/smbclient absent: `make test` installs them (apt packages samba, smbclient)")
    if os.getuid() != 0:
        pytest.skip("needs root: smbd serves the share as the connecting user, which only root can switch to")


def _smbd() -> str:
    return shutil.which("smbd") or "/usr/sbin/smbd"


def _free_port() -> int:
    for port in range(FIRST_PORT, FIRST_PORT + 100):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port for smbd")


def global_section(state: Path, port: int) -> str:
    """A standalone server on loopback only, with all its state under ``state``."""
    dirs = "\n".join(f"   {option} = {state / sub}" for option, sub in STATE_DIRS.items())
    return f"""[global]
   server role = standalone server
   interfaces = lo
   bind interfaces only = yes
   smb ports = {port}
   disable netbios = yes
{dirs}
   passdb backend = tdbsam:{state / "private" / "passdb.tdb"}
   log file = {state / "log.smbd"}
   log level = 1
   map to guest = Bad User
   guest account = nobody
   load printers = no
   printcap name = /dev/null
   disable spoolss = yes
"""


class Samba:
    """A running private smbd."""

    def __init__(self, conf: Path, port: int, process: subprocess.Popen) -> None:
        self.conf, self.port, self.process = conf, port, process

    def get(self, share: str, name: str, dest: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["smbclient", "-s", str(self.conf), "-p", str(self.port), f"//127.0.0.1/{share}", "-N"]
            + ["-c", f"get {name} {dest}"],
            capture_output=True,
            text=True,
            timeout=30,
        )


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _stop(process: subprocess.Popen) -> None:
    """Stop smbd by its PID, then any helper it forked that outlived it (by their PIDs)."""
    helpers = _children(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    deadline = time.monotonic() + 5
    for pid in helpers:
        while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.05)
        if os.path.exists(f"/proc/{pid}"):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def start_samba(tmp_path: Path) -> Iterator:
    """Factory: ``start_samba(shares_text) -> Samba`` on a private loopback port; stopped at teardown."""
    _ensure_samba()
    started: list[subprocess.Popen] = []

    def start(shares: str) -> Samba:
        state = tmp_path / "samba"
        for sub in STATE_DIRS.values():
            (state / sub).mkdir(parents=True, exist_ok=True)
        port = _free_port()
        conf = state / "smb.conf"
        conf.write_text(global_section(state, port) + "\n" + shares)
        with open(state / "smbd.out", "wb") as log:
            process = subprocess.Popen(
                [_smbd(), "--foreground", "--no-process-group", "--debug-stdout", "-s", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # smbd signals its whole process group when it exits
            )
        started.append(process)
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, (state / "smbd.out").read_text()[-2000:]
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "smbd did not start listening"
            time.sleep(0.1)
        return Samba(conf, port, process)

    try:
        yield start
    finally:
        for process in started:
            _stop(process)


@pytest.fixture
def public_mount() -> Iterator:
    """Factory like ``mount_image``, but the mount point's parents are searchable by everyone.

    pytest's own temporary directories are 0700, and smbd opens files as the connecting user
    (here the guest account), who could not even reach a mount below them.
    """
    made: list[Path] = []

    def mount(image: Path, *args: str) -> Path:
        parent = Path(tempfile.mkdtemp(prefix="memfs-samba-", dir="/tmp"))
        parent.chmod(0o755)
        made.append(parent / "mnt")
        made[-1].mkdir()
        result = run_memfs("mount", str(image), str(made[-1]), *args)
        assert result.returncode == 0, result.stderr
        return made[-1]

    try:
        yield mount
    finally:
        for mnt in made:
            unmount_quietly(mnt)
            if not os.path.ismount(mnt):
                shutil.rmtree(mnt.parent)


@pytest.fixture
def crash_dump(tmp_path: Path) -> Path:
    path = tmp_path / "MEMORY.DMP"
    mk.build_dump(path, **mk.FIXTURES["bitmap64_full.dmp"])
    return path


def test_windbg_files_over_samba(crash_dump: Path, tmp_path: Path, public_mount, start_samba) -> None:
    # The guest account (nobody) reads as a member of nogroup: the one group let in.
    mnt = public_mount(crash_dump, "--allow-other", "--group", "nogroup")
    shared = run_memfs("share", str(mnt), "--name", "memfs", "--guest")
    assert shared.returncode == 0 and shared.stderr == "", shared.stderr
    assert shared.stdout == share_for_mount(str(mnt), "memfs", guest=True)
    samba = start_samba(shared.stdout)
    names = ["memory.dmp", "physmem.bin", "header.txt"]
    assert sorted(os.listdir(mnt)) == sorted(names)
    for name in names:
        dest = tmp_path / f"got-{name}"
        result = samba.get("memfs", name, dest)
        assert result.returncode == 0, result.stdout + result.stderr
        assert sha256(dest) == sha256(mnt / name), name


def test_without_allow_other_smbd_is_refused(tmp_path: Path, public_mount, start_samba) -> None:
    """Why ``memfs share`` insists on --allow-other: smbd reads as the connecting user, FUSE says no."""
    image = tmp_path / "image.raw"
    image.write_bytes(random.Random(5).randbytes(1 << 20))
    mnt = public_mount(image)
    refused = run_memfs("share", str(mnt))
    assert refused.returncode == 1 and "--allow-other" in refused.stderr
    samba = start_samba(share_section(str(mnt), "plain", guest=True))
    result = samba.get("plain", "physmem.bin", tmp_path / "got")
    assert "NT_STATUS_ACCESS_DENIED" in result.stdout + result.stderr
    assert not (tmp_path / "got").exists() or (tmp_path / "got").stat().st_size == 0


def test_guest_outside_the_group_is_refused(
    crash_dump: Path, tmp_path: Path, public_mount, start_samba
) -> None:
    """--allow-other alone lets in root's group only: memfs share says so, and smbd indeed refuses."""
    mnt = public_mount(crash_dump, "--allow-other")
    shared = run_memfs("share", str(mnt), "--name", "memfs", "--guest")
    assert shared.returncode == 0 and "the guest account (nobody) cannot read the files" in shared.stderr
    samba = start_samba(shared.stdout)
    result = samba.get("memfs", "header.txt", tmp_path / "got")
    assert "NT_STATUS_ACCESS_DENIED" in result.stdout + result.stderr


def test_share_warns_about_unsearchable_parents(tmp_path: Path, mount_image) -> None:
    mnt = mount_image(_small_image(tmp_path), "--allow-other")
    result = run_memfs("share", str(mnt))
    assert result.returncode == 0
    assert "not searchable by other users" in result.stderr  # pytest's temporary root is 0700
    assert "[memfs-mnt0]" in result.stdout and f"path = {mnt}" in result.stdout
    written = tmp_path / "share.conf"
    assert run_memfs("share", str(mnt), "--write", str(written)).returncode == 0
    assert written.read_text() == result.stdout


def _small_image(tmp_path: Path) -> Path:
    image = tmp_path / "small.raw"
    image.write_bytes(bytes(4096) + b"x")
    return image
