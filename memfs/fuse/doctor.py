"""``memfs doctor``: can this machine mount memory images, and if not, the exact fix.

Each check looks at the real thing — it loads libfuse, opens ``/dev/fuse``, stats the setuid
helper — rather than at package lists, so the answer holds on any distribution.  The same checks
decide whether the test suite's FUSE tests can run here (:func:`mount_blocker`).
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
import sys
from dataclasses import dataclass
from importlib import metadata

from memfs import __version__
from memfs.exceptions import MemfsError
from memfs.fuse.libfuse import (
    LIBFUSE2_SONAMES,
    LIBFUSE3_SONAMES,
    LIBRARY_VARIABLE,
    LibFuse,
    find_libfuse,
    import_mfusepy,
)
from memfs.fuse.mount import FUSE_CONF, FUSE_DEVICE, dead_mount_message, is_dead_mount
from memfs.mounts import all_mounts

SUPPORTED_PYTHONS = ((3, 10), (3, 13))
"""The oldest and newest Python memfs is tested on."""

OK, NOTE, FAIL = "ok", "note", "FAIL"


@dataclass
class Check:
    """One line of the report: a status, what was found, and the fix when it is not ok."""

    status: str
    what: str
    fix: str = ""
    blocks_every_mount: bool = True
    """A FAIL that stops all mounts (a dead mount stops only mounts on its own mount point)."""

    def render(self) -> str:
        line = f"  {self.status:<5} {self.what}"
        return f"{line}\n        fix: {self.fix}" if self.fix else line


def _python() -> Check:
    version = sys.version_info[:2]
    what = f"memfs {__version__} on Python {platform.python_version()} ({sys.executable})"
    low, high = SUPPORTED_PYTHONS
    if low <= version <= high:
        return Check(OK, what)
    return Check(
        NOTE,
        f"{what}: memfs is tested on Python {low[0]}.{low[1]} to {high[0]}.{high[1]}",
        f"use one of those, e.g. PYTHON=python3.{high[1]} make run",
    )


def _decoder() -> Check:
    try:
        from memfs.xpress import _xpress  # noqa: F401  (the C extension)
    except ImportError as exc:
        return Check(
            FAIL,
            f"the Xpress decoder (C extension) does not import: {exc}",
            "reinstall with a C compiler and Python's headers: sudo apt-get install gcc python3-dev; "
            "then make setup (or pip install .)",
        )
    return Check(OK, "Xpress decoder (C extension) loaded")


def _mfusepy(lib: LibFuse | None) -> Check:
    try:
        version = metadata.version("mfusepy")
    except metadata.PackageNotFoundError:
        return Check(FAIL, "mfusepy is not installed", "make setup (or pip install 'mfusepy>=3,<4')")
    if not version.startswith("3."):
        return Check(FAIL, f"mfusepy {version}: memfs needs 3.x", "pip install 'mfusepy>=3,<4'")
    if lib is not None:
        try:
            import_mfusepy()  # loads and checks the library memfs chose
        except MemfsError as exc:
            return Check(FAIL, str(exc), "sudo apt-get install fuse3")
    return Check(OK, f"mfusepy {version}")


def _libfuse() -> tuple[Check, LibFuse | None]:
    try:
        lib = find_libfuse()
    except MemfsError as exc:
        fix = "sudo apt-get install fuse3"
        if os.environ.get(LIBRARY_VARIABLE):
            fix = f"unset {LIBRARY_VARIABLE}, or set it to a libfuse library file"
        return Check(FAIL, str(exc), fix), None
    threads = "max_threads" if lib.knows_max_threads else "no max_threads option"
    reads = f"reads of up to {lib.largest_read_text}"
    if lib.major < 3:
        return (
            Check(
                NOTE,
                f"{lib.describe()}: works, with {reads}; libfuse 3 reads 1 MiB at a time",
                "sudo apt-get install fuse3",
            ),
            lib,
        )
    return Check(OK, f"{lib.describe()}: {reads}, {threads}"), lib


def _other_libfuse(chosen: LibFuse | None) -> list[Check]:
    """Say so when libfuse 2 sits beside libfuse 3: harmless for memfs, fatal for naive bindings."""
    import ctypes

    if chosen is None or chosen.major < 3:
        return []
    for soname in LIBFUSE2_SONAMES:
        try:
            ctypes.CDLL(soname)
        except OSError:
            continue
        return [Check(NOTE, f"{soname} is installed too; memfs uses libfuse 3 (FUSE_LIBRARY_PATH overrides)")]
    return []


def _device() -> Check:
    if not os.path.exists(FUSE_DEVICE):
        return Check(
            FAIL,
            f"{FUSE_DEVICE} is missing",
            "sudo modprobe fuse (in a container: start it with --device /dev/fuse --cap-add SYS_ADMIN)",
        )
    try:
        fd = os.open(FUSE_DEVICE, os.O_RDWR)
    except OSError as exc:
        return Check(
            FAIL,
            f"{FUSE_DEVICE} cannot be opened: {exc.strerror}",
            f"sudo chmod 0666 {FUSE_DEVICE} (its usual mode), or mount as root",
        )
    os.close(fd)
    return Check(OK, f"{FUSE_DEVICE} opens read-write")


def _helper(lib: LibFuse | None) -> Check:
    """The setuid helper that mounts for ordinary users (root mounts without it)."""
    name = "fusermount" if lib is not None and lib.major < 3 else "fusermount3"
    path = shutil.which(name) or shutil.which("fusermount3")
    as_root = os.geteuid() == 0
    if path is None:
        if as_root:
            return Check(
                NOTE,
                f"{name} is missing: root can mount without it, other users cannot",
                "sudo apt-get install fuse3",
            )
        return Check(FAIL, f"{name} is missing: only root can mount without it", "sudo apt-get install fuse3")
    st = os.stat(path)
    if st.st_uid == 0 and st.st_mode & stat.S_ISUID:
        return Check(OK, f"{path} is setuid root")
    if as_root:
        return Check(
            NOTE, f"{path} is not setuid root: root can mount, other users cannot", f"sudo chmod u+s {path}"
        )
    return Check(FAIL, f"{path} is not setuid root, so it cannot mount for you", f"sudo chmod u+s {path}")


def _allow_other() -> Check:
    if os.geteuid() == 0:
        return Check(OK, "--allow-other: allowed (root)")
    try:
        with open(FUSE_CONF) as handle:
            allowed = any(line.strip() == "user_allow_other" for line in handle)
    except OSError:
        allowed = False
    if allowed:
        return Check(OK, f"--allow-other: allowed ({FUSE_CONF} has user_allow_other)")
    return Check(
        NOTE,
        f"--allow-other (Samba sharing) needs the line user_allow_other in {FUSE_CONF}",
        f"echo user_allow_other | sudo tee -a {FUSE_CONF}",
    )


def _dead_mounts() -> list[Check]:
    """memfs mounts whose daemon died (only memfs's own: stat on a hung foreign daemon could hang)."""
    try:
        entries = [entry for entry in all_mounts() if entry.fstype == "fuse.memfs"]
    except OSError:
        return []
    return [
        Check(FAIL, dead_mount_message(entry.mountpoint, entry.fstype), blocks_every_mount=False)
        for entry in entries
        if is_dead_mount(entry.mountpoint)
    ]


def run_checks() -> list[Check]:
    """Every check, in the order the report prints them."""
    libfuse_check, lib = _libfuse()
    checks = [_python(), _decoder(), libfuse_check, _mfusepy(lib), *_other_libfuse(lib)]
    checks += [_device(), _helper(lib)]
    return [*checks, _allow_other(), *_dead_mounts()]


def _blocking(checks: list[Check]) -> list[Check]:
    """The failures that stop every mount."""
    return [check for check in checks if check.status == FAIL and check.blocks_every_mount]


def mount_blocker() -> str | None:
    """Why this process cannot mount here (first blocking failure, with its fix), or None if it can."""
    blocking = _blocking(run_checks())
    if not blocking:
        return None
    first = blocking[0]
    return f"{first.what} (fix: {first.fix})" if first.fix else first.what


def report() -> tuple[str, bool]:
    """The one-screen report and whether this machine can mount."""
    checks = run_checks()
    can_mount = not _blocking(checks)
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    lines = [f"memfs doctor: can this machine mount memory images? (as {who}, {platform.platform()})", ""]
    lines += [check.render() for check in checks]
    lines.append("")
    if can_mount:
        lines.append("yes: memfs can mount here (try: make run)")
    else:
        lines.append("no: fix the FAIL lines above, then run memfs doctor again")
    tried = ", ".join(LIBFUSE3_SONAMES + LIBFUSE2_SONAMES)
    lines.append(f"(libfuse is looked for as {tried}, in that order; FUSE_LIBRARY_PATH overrides)")
    return "\n".join(lines), can_mount


__all__ = ["Check", "mount_blocker", "report", "run_checks"]
