"""Samba share definitions for a memfs mount, so WinDbg on Windows can open ``memory.dmp``.

Why the share looks the way it does (docs/sharing.md explains it to users):

- smbd serves files *as the connecting user* (it switches its effective uid per session).  FUSE lets
  only the mounting user in unless the mount has ``allow_other`` — and its check wants the real,
  effective and saved uid all equal to the owner, which smbd's per-user switch never gives.  So the
  mount must be made with ``memfs mount --allow-other``; :func:`share_for_mount` refuses otherwise.
- The mount is read-only and its content never changes: no oplocks, leases, kernel share modes or
  POSIX locks to coordinate, and no DOS attributes or extended attributes to store (memfs has none).
- Reads are large and random (WinDbg walks page tables through ``memory.dmp``): SMB2/3 allow up to
  8 MiB per read (``smb2 max read``, Samba's default); asynchronous reads let slow decodes overlap.
"""

from __future__ import annotations

import os
import pwd
import re

from memfs.exceptions import MemfsError
from memfs.mounts import MOUNTINFO, find_mount

SHARE_OPTIONS: list[tuple[str, str]] = [
    ("read only", "yes"),
    ("browseable", "yes"),
    # Nothing changes under a read-only memfs mount, so there is nothing to lock or lease.
    ("oplocks", "no"),
    ("level2 oplocks", "no"),
    ("kernel oplocks", "no"),
    ("kernel share modes", "no"),
    ("posix locking", "no"),
    ("strict locking", "no"),
    # memfs has no extended attributes: do not try to read or store DOS attributes in them.
    ("store dos attributes", "no"),
    ("ea support", "no"),
    # sendfile measured no faster through a FUSE mount (and SMB signing, which Windows 11 requires,
    # disables it anyway); asynchronous reads let slow decodes overlap.
    ("use sendfile", "no"),
    ("aio read size", "1"),
]
"""The ``[share]`` options (name, value) every memfs share gets, in order."""


def unreachable_ancestors(path: str) -> list[str]:
    """Directories above ``path`` that other users cannot enter (no ``o+x``).

    smbd opens files as the connecting user, so a mount under e.g. a 0700 home directory is
    refused to everyone but that directory's owner even with ``allow_other``.
    """
    blocked = []
    parent = os.path.dirname(os.path.realpath(path))
    while True:
        try:
            if not os.stat(parent).st_mode & 0o001:
                blocked.append(parent)
        except OSError:
            blocked.append(parent)
        if parent == "/":
            return list(reversed(blocked))
        parent = os.path.dirname(parent)


def default_share_name(mountpoint: str) -> str:
    """``memfs-<mount point name>``, reduced to characters every SMB client accepts."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(mountpoint.rstrip("/")) or "root")
    return f"memfs-{base}"[:80]


def share_section(
    path: str,
    name: str,
    *,
    comment: str | None = None,
    user: str | None = None,
    guest: bool = False,
) -> str:
    """The ``[name]`` section of smb.conf that shares ``path`` read-only for WinDbg.

    ``user`` restricts the share to one Samba user (``valid users``); ``guest`` allows connecting
    without a password (modern Windows refuses guest logons unless told otherwise; see docs/sharing.md).
    """
    if any(ch in name for ch in "[]\n\\/"):
        raise MemfsError(f"share name {name!r} may not contain [ ] / \\ or newlines")
    lines = [f"[{name}]"]
    lines.append(f"   comment = {comment or 'memfs (read-only memory image)'}")
    lines.append(f"   path = {path}")
    lines += [f"   {key} = {value}" for key, value in SHARE_OPTIONS]
    if user:
        lines.append(f"   valid users = {user}")
    if guest:
        lines.append("   guest ok = yes")
    return "\n".join(lines) + "\n"


def share_for_mount(
    mountpoint: str,
    name: str | None = None,
    *,
    user: str | None = None,
    guest: bool = False,
    mountinfo: str = MOUNTINFO,
) -> str:
    """A share definition for a live memfs mount; refuses a path that smbd could not read."""
    mountpoint = os.path.realpath(mountpoint)
    entry = find_mount(mountpoint, mountinfo)
    if entry is None:
        raise MemfsError(
            f"{mountpoint}: not mounted (mount it first: memfs mount --allow-other IMAGE {mountpoint})"
        )
    if entry.fstype != "fuse.memfs":
        raise MemfsError(f"{mountpoint}: is a {entry.fstype} mount, not a memfs mount")
    if not entry.allow_other:
        raise MemfsError(
            f"{mountpoint}: mounted without --allow-other, so smbd (which reads as the connecting user) "
            f"will be refused; unmount and run: memfs mount --allow-other IMAGE {mountpoint}"
        )
    image = entry.source.removeprefix("memfs:")
    owner = entry.owner_uid
    mounted_by = ""
    if owner is not None:
        try:
            mounted_by = f", mounted by {pwd.getpwuid(owner).pw_name}"
        except KeyError:
            mounted_by = f", mounted by uid {owner}"
    header = (
        f"# memfs share for {mountpoint} ({image}{mounted_by}).\n"
        "# Add it to smb.conf, then: smbcontrol smbd reload-config\n"
    )
    section = share_section(
        mountpoint,
        name or default_share_name(mountpoint),
        comment=f"memfs: {image} (read-only)",
        user=user,
        guest=guest,
    )
    return header + section


__all__ = [
    "unreachable_ancestors",
    "SHARE_OPTIONS",
    "default_share_name",
    "share_for_mount",
    "share_section",
]
