"""Checks made before mounting, and the one-line reason a failed mount reports (no FUSE needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memfs.exceptions import MemfsError, MissingDependencyError
from memfs.fuse import mount
from memfs.fuse.mount import _failure_reason, check_allow_other, check_mountpoint


def test_missing_dev_fuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: False if p == "/dev/fuse" else real_exists(p))
    with pytest.raises(MissingDependencyError, match="/dev/fuse is missing"):
        check_mountpoint(str(tmp_path))


def test_unusable_dev_fuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mount, "FUSE_DEVICE", str(tmp_path / "fuse"))
    (tmp_path / "fuse").write_text("")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if p == mount.FUSE_DEVICE else real_access(p, m))
    (tmp_path / "mnt").mkdir()
    with pytest.raises(MemfsError, match="no permission to open .*fuse"):
        check_mountpoint(str(tmp_path / "mnt"))


def test_allow_other_needs_user_allow_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "fuse.conf"
    conf.write_text("# user_allow_other\nmount_max = 1000\n")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(MemfsError, match="user_allow_other"):
        check_allow_other(str(conf))
    with pytest.raises(MemfsError, match="user_allow_other"):
        check_allow_other(str(tmp_path / "absent.conf"))
    conf.write_text("user_allow_other\n")
    check_allow_other(str(conf))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    check_allow_other(str(tmp_path / "absent.conf"))  # root may always


def test_failure_reason_prefers_libfuse_over_a_bare_status() -> None:
    said = [
        "fusermount3: option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf",
        "memfs: error: /m: mount failed (libfuse error 4)",
    ]
    hint = "; run `memfs doctor` to check this machine"
    assert _failure_reason("/m", said) == f"/m: mount failed: {said[0]}{hint}"
    assert _failure_reason("/m", ["memfs: error: /m: something precise"]) == f"/m: something precise{hint}"
    assert _failure_reason("/m", []) == f"/m: mount failed: the daemon exited{hint}"
