"""Samba share definitions for a memfs mount, so WinDbg on Windows can open ``memory.dmp``.

Why the share looks the way it does (docs/sharing.md explains it to users):

- smbd serves files *as the connecting user* (it switches its effective uid per session).  FUSE lets
  only the mounting user in unless the mount has ``allow_other`` — and its check wants the real,
  effective and saved uid all equal to the owner, which smbd's per-user switch never gives.  So the
  mount must be made with ``memfs mount --allow-other``; :func:`share_for_mount` refuses otherwise.
- ``--allow-other`` alone lets in the mounting user and one group (files 0440): the Samba user
  must be one of them (:func:`readers_problem` checks), or the mount ``--world-readable``.
- The mount is read-only and its content never changes: no oplocks, leases, kernel share modes or
  POSIX locks to coordinate, and no DOS attributes or extended attributes to store (memfs has none).
- Reads are large and random (WinDbg walks page tables through ``memory.dmp``): SMB2/3 allow up to
  8 MiB per read (``smb2 max read``, Samba's default); asynchronous reads let slow decodes overlap.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat

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


GUEST_ACCOUNT = "nobody"
"""Samba's default ``guest account``: the Unix user a guest connection reads as."""


def may_read(user: pwd.struct_passwd, st: os.stat_result) -> bool:
    """Whether ``user`` may read a file with ``st``'s owner, group and mode (owner, then group, then
    others, as the kernel decides for a mount with ``default_permissions``); root always may."""
    if user.pw_uid == 0:
        return True
    if user.pw_uid == st.st_uid:
        return bool(st.st_mode & stat.S_IRUSR)
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def _name(table, key: int, attr: str) -> str:
    try:
        return getattr(table(key), attr)
    except KeyError:
        return str(key)


def readers_problem(mountpoint: str, user: str | None = None, guest: bool = False) -> str | None:
    """Why the Samba user of a share (``user``, or the guest account) cannot read a mount's files.

    smbd reads as the Unix user of the same name as the Samba user.  Without ``user`` or ``guest`` any
    Samba user may connect, so the answer names who can read instead when that is not everyone.
    """
    try:
        st = os.stat(os.path.join(mountpoint, "header.txt"))
    except OSError as exc:
        return f"{mountpoint}: cannot check who may read the files ({exc.strerror})"
    owner = _name(pwd.getpwuid, st.st_uid, "pw_name")
    group = _name(grp.getgrgid, st.st_gid, "gr_name")
    fix = f"add the user to group {group}, or remount with --group NAME or --world-readable"
    if user is None and not guest:
        if st.st_mode & stat.S_IROTH:
            return None
        return f"only {owner} and members of group {group} can read the files; other Samba users are refused"
    name = user if user is not None else GUEST_ACCOUNT
    who = f"Samba user {name}" if user is not None else f"the guest account ({name})"
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        return f"{who} has no Unix user of that name, whom smbd would read as"
    if may_read(account, st):
        return None
    return (
        f"{who} cannot read the files (mode {stat.S_IMODE(st.st_mode):04o}, "
        f"owner {owner}, group {group}): {fix}"
    )


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
    "may_read",
    "readers_problem",
    "unreachable_ancestors",
    "SHARE_OPTIONS",
    "default_share_name",
    "share_for_mount",
    "share_section",
]
