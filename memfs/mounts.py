"""The kernel's mount table (``/proc/self/mountinfo``): is a path mounted, and with what options.

``os.path.ismount`` stats the mount point, and FUSE refuses that stat to every user but the owner
(root included) unless the mount has ``allow_other``; the mount table has no such blind spot.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

MOUNTINFO = "/proc/self/mountinfo"


@dataclass
class MountEntry:
    """One line of the mount table, the parts memfs needs."""

    mountpoint: str
    fstype: str
    source: str
    options: set[str]
    """Per-mount and per-superblock options together (``ro``, ``allow_other``, ``user_id=1000``...)."""

    @property
    def allow_other(self) -> bool:
        return "allow_other" in self.options

    @property
    def owner_uid(self) -> int | None:
        """The FUSE mount owner (``user_id=``), None for other filesystems."""
        for option in self.options:
            if option.startswith("user_id="):
                return int(option.split("=", 1)[1])
        return None


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \ooo octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def all_mounts(mountinfo: str = MOUNTINFO) -> Iterator[MountEntry]:
    """Every line of the mount table, in its order (stacked mounts: the top one last)."""
    with open(mountinfo) as handle:
        for line in handle:
            fields = line.split()
            dash = fields.index("-")
            options = set(fields[5].split(",")) | set(fields[dash + 3].split(","))
            yield MountEntry(_unescape(fields[4]), fields[dash + 1], _unescape(fields[dash + 2]), options)


def find_mount(mountpoint: str, mountinfo: str = MOUNTINFO) -> MountEntry | None:
    """The mount at exactly ``mountpoint`` (the top one if several are stacked), or None."""
    found = None
    for entry in all_mounts(mountinfo):
        if entry.mountpoint == mountpoint:
            found = entry
    return found


def is_mounted(path: str) -> bool:
    """Whether something is mounted at ``path``, even a FUSE mount this user may not stat."""
    real = os.path.realpath(path)
    try:
        return find_mount(real) is not None
    except OSError:  # no /proc: fall back to stat, which is right for our own mounts
        return os.path.ismount(real)


__all__ = ["MountEntry", "all_mounts", "find_mount", "is_mounted"]
