"""Who may read a shared mount (``--allow-other``): the mounting user and one group, unless asked otherwise.

Physical memory holds passwords and keys.  Real mounts made by root; the readers are other users played
with ``setpriv`` (no capabilities, so the kernel's permission check is the one a real user meets).
The mount point sits in a 0755 directory under /tmp so that every user can reach it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import run_memfs, unmount_quietly

STRANGER = 4242
NOGROUP = 65534  # the group of Samba's default guest account, nobody


def read_as(path: Path, uid: int, groups: tuple[int, ...] = ()) -> str:
    """The SHA-256 of ``path`` read as ``uid`` with ``groups``, or the error."""
    ids = ["--clear-groups"] if not groups else [f"--groups={','.join(map(str, groups))}"]
    result = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", *ids, "sha256sum", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.split(" ")[0] if result.returncode == 0 else "denied: " + result.stderr.strip()


@pytest.fixture
def shared(tmp_path: Path) -> Iterator:
    """Factory: ``shared(*mount args) -> mount point`` in a directory every user can enter."""
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to read as other users")
    image = tmp_path / "image.raw"
    image.write_bytes(os.urandom(1 << 20))
    made: list[Path] = []

    def mount(*args: str) -> Path:
        parent = Path(tempfile.mkdtemp(prefix="fuzz-shared-", dir="/tmp"))
        parent.chmod(0o755)
        made.append(parent / "mnt")
        made[-1].mkdir()
        result = run_memfs("mount", str(image), str(made[-1]), *args)
        assert result.returncode == 0, result.stderr
        return made[-1]

    mount.digest = hashlib.sha256(image.read_bytes()).hexdigest()  # type: ignore[attr-defined]
    try:
        yield mount
    finally:
        for mnt in made:
            unmount_quietly(mnt)
            if not os.path.ismount(mnt):
                shutil.rmtree(mnt.parent)


def _modes(mnt: Path) -> tuple[int, int, int]:
    root, file = mnt.stat(), (mnt / "physmem.bin").stat()
    assert root.st_gid == file.st_gid
    return stat.S_IMODE(root.st_mode), stat.S_IMODE(file.st_mode), file.st_gid


def test_allow_other_lets_in_the_owner_and_their_group_only(shared) -> None:
    mnt = shared("--allow-other")
    assert _modes(mnt) == (0o550, 0o440, os.getgid())
    physmem = mnt / "physmem.bin"
    assert read_as(physmem, STRANGER).startswith("denied:")
    assert read_as(physmem, STRANGER, groups=(os.getgid(),)) == shared.digest
    share = run_memfs("share", str(mnt), "--guest")
    assert share.returncode == 0
    assert "the guest account (nobody) cannot read the files (mode 0440" in share.stderr
    share = run_memfs("share", str(mnt))
    assert "only root and members of group" in share.stderr


def test_group_chooses_who_reads(shared) -> None:
    mnt = shared("--allow-other", "--group", "nogroup")
    assert _modes(mnt) == (0o550, 0o440, NOGROUP)
    physmem = mnt / "physmem.bin"
    assert read_as(physmem, STRANGER).startswith("denied:")
    assert read_as(physmem, STRANGER, groups=(NOGROUP,)) == shared.digest
    assert read_as(physmem, NOGROUP) == shared.digest  # nobody: its primary group is nogroup
    share = run_memfs("share", str(mnt), "--guest")
    assert share.returncode == 0 and "cannot read" not in share.stderr, share.stderr


def test_fuse_option_allow_other_is_no_way_around(shared) -> None:
    mnt = shared("-o", "allow_other")
    assert _modes(mnt) == (0o550, 0o440, os.getgid())
    assert read_as(mnt / "physmem.bin", STRANGER).startswith("denied:")


def test_world_readable_lets_everyone_in(shared) -> None:
    mnt = shared("--allow-other", "--world-readable")
    assert _modes(mnt)[:2] == (0o555, 0o444)
    assert read_as(mnt / "physmem.bin", STRANGER) == shared.digest


def test_without_allow_other_nothing_changes(shared) -> None:
    mnt = shared()
    assert _modes(mnt) == (0o555, 0o444, os.getgid())
    assert read_as(mnt / "physmem.bin", STRANGER).startswith("denied:")  # FUSE refuses other users


def test_group_options_are_checked_before_mounting(tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(bytes(4096))
    (tmp_path / "mnt").mkdir()
    for args, says in (
        (["--group", "nogroup"], "add --allow-other"),
        (["--world-readable"], "add --allow-other"),
        (["--allow-other", "--group", "no-such-group-here"], "--group no-such-group-here: no such group"),
        (["--allow-other", "--group", "nogroup", "--world-readable"], "--group would restrict nothing"),
    ):
        result = run_memfs("mount", str(image), str(tmp_path / "mnt"), *args)
        assert result.returncode == 1 and says in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not os.path.ismount(tmp_path / "mnt")
