"""Samba share definitions and the mount table reader, without mounting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from memfs.exceptions import MemfsError
from memfs.mounts import find_mount
from memfs.share import (
    SHARE_OPTIONS,
    default_share_name,
    share_for_mount,
    share_section,
    unreachable_ancestors,
)

FUSE_OPTIONS = "ro,user_id=0,group_id=0,default_permissions,allow_other"
MOUNTINFO = "".join(
    [
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n",
        f"42 22 0:39 / /srv/mem\\040case ro,nosuid - fuse.memfs memfs:hiberfil.sys {FUSE_OPTIONS}\n",
        "43 22 0:40 / /srv/private ro,nosuid - fuse.memfs memfs:a.raw ro,user_id=1000,group_id=1000\n",
        "44 22 0:41 / /srv/other rw,relatime - tmpfs tmpfs rw\n",
    ]
)


@pytest.fixture
def mountinfo(tmp_path: Path) -> str:
    path = tmp_path / "mountinfo"
    path.write_text(MOUNTINFO)
    return str(path)


def test_mount_table_entries(mountinfo: str) -> None:
    entry = find_mount("/srv/mem case", mountinfo)  # \\040 is a space
    assert entry is not None
    assert (entry.fstype, entry.source, entry.allow_other, entry.owner_uid) == (
        "fuse.memfs",
        "memfs:hiberfil.sys",
        True,
        0,
    )
    private = find_mount("/srv/private", mountinfo)
    assert private is not None and not private.allow_other and private.owner_uid == 1000
    assert find_mount("/srv/other", mountinfo).owner_uid is None
    assert find_mount("/srv", mountinfo) is None


def test_share_for_a_mount(mountinfo: str) -> None:
    text = share_for_mount("/srv/mem case", mountinfo=mountinfo, user="analyst")
    lines = text.splitlines()
    assert lines[0].startswith("# memfs share for /srv/mem case (hiberfil.sys, mounted by root)")
    assert "[memfs-mem_case]" in lines
    assert "   path = /srv/mem case" in lines
    assert "   comment = memfs: hiberfil.sys (read-only)" in lines
    assert "   valid users = analyst" in lines and "   guest ok = yes" not in lines
    for key, value in SHARE_OPTIONS:
        assert f"   {key} = {value}" in lines
    assert "   read only = yes" in lines and "   oplocks = no" in lines


def test_share_refuses_what_smbd_could_not_read(mountinfo: str) -> None:
    with pytest.raises(MemfsError, match="without --allow-other"):
        share_for_mount("/srv/private", mountinfo=mountinfo)
    with pytest.raises(MemfsError, match="tmpfs mount, not a memfs mount"):
        share_for_mount("/srv/other", mountinfo=mountinfo)
    with pytest.raises(MemfsError, match="not mounted"):
        share_for_mount("/srv", mountinfo=mountinfo)


def test_share_section_options() -> None:
    text = share_section("/m", "cases", guest=True)
    assert text.startswith("[cases]\n") and "   guest ok = yes\n" in text and "valid users" not in text
    with pytest.raises(MemfsError, match="may not contain"):
        share_section("/m", "bad]name")
    assert default_share_name("/srv/mem/case 42/") == "memfs-case_42"


def test_unreachable_ancestors(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "inner").mkdir(parents=True)
    closed.chmod(0o700)
    tmp_path.chmod(0o755)
    try:
        assert str(closed) in unreachable_ancestors(str(closed / "inner" / "mnt"))
        assert str(closed / "inner") not in unreachable_ancestors(str(closed / "inner" / "mnt"))
    finally:
        closed.chmod(0o755)
