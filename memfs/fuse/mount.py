"""Mounting: checks before mounting, foreground and background modes, unmounting.

Background mode forks *before* any FUSE thread starts; the child runs the FUSE loop in the
foreground and reports over a pipe once the kernel has accepted the mount (``init``), so
``memfs mount`` returns only when the mount is usable — or fails with the child's one-line reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

from memfs.exceptions import MemfsError, MissingDependencyError
from memfs.mounts import is_mounted
from memfs.views.base import VirtualFile

log = logging.getLogger(__name__)

MAX_THREADS = 8
"""Worker threads of the multi-threaded FUSE loop (decoders release the GIL, so more than one helps)."""

READ_AHEAD_KB = 1024
"""Kernel read-ahead for the mount, so sequential reads arrive as 1 MiB requests (performance.md)."""


@dataclass
class MountOptions:
    """How to mount: what the CLI's ``mount`` flags say."""

    foreground: bool = False
    allow_other: bool = False
    group: int | None = None
    """With ``allow_other``: the group that may read the files (None: the mounting user's)."""
    world_readable: bool = False
    """With ``allow_other``: every user may read the files, not only the owner and ``group``."""
    single_threaded: bool = False
    debug: bool = False
    extra: list[str] = field(default_factory=list)
    fsname: str = "memfs"


def tune_malloc() -> None:
    """Keep glibc from trimming and re-faulting buffers on every request (performance.md, malloc trap)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    libc.mallopt(m_trim_threshold, 512 * 1024 * 1024)
    libc.mallopt(m_mmap_threshold, 64 * 1024 * 1024)
    # One arena: decoded units are allocated on one FUSE thread and freed on others; with an
    # arena per thread each keeps its own untrimmed free pool.  Measured on a 2 GiB Huffman hiberfil,
    # cache 512M, one reader: peak RSS 920-984 -> 587 MiB and daemon CPU 4.7-5.3 -> 3.9 s.
    libc.mallopt(m_arena_max, 1)


def release_free_memory() -> None:
    """Return the free pages inside glibc's heap to the system (``malloc_trim(0)``); best effort."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


FUSE_DEVICE = "/dev/fuse"
FUSE_CONF = "/etc/fuse.conf"


def check_mountpoint(mountpoint: str) -> None:
    """Refuse a mount point that is missing, not a directory, not empty, or already mounted."""
    if not os.path.exists(FUSE_DEVICE):
        raise MissingDependencyError(
            f"cannot mount: {FUSE_DEVICE} is missing (load the fuse module, install fuse3)"
        )
    if not os.access(FUSE_DEVICE, os.R_OK | os.W_OK):
        # libfuse opens the device itself before trying fusermount3, and gives up if it cannot.
        raise MemfsError(
            f"cannot mount: no permission to open {FUSE_DEVICE} (it is normally mode 0666; "
            f"ask an administrator, or mount as root)"
        )
    if not os.path.exists(mountpoint):
        raise MemfsError(f"{mountpoint}: mount point does not exist")
    if not os.path.isdir(mountpoint):
        raise MemfsError(f"{mountpoint}: mount point is not a directory")
    if is_mounted(mountpoint):
        raise MemfsError(f"{mountpoint}: something is already mounted here (memfs umount {mountpoint})")
    try:
        entries = os.listdir(mountpoint)
    except PermissionError:
        raise MemfsError(f"{mountpoint}: permission denied") from None
    if entries:
        raise MemfsError(f"{mountpoint}: mount point is not empty")
    if not os.access(mountpoint, os.W_OK) and os.getuid() != 0:
        raise MemfsError(f"{mountpoint}: no permission to mount here (you must own the directory)")


def check_allow_other(fuse_conf: str = FUSE_CONF) -> None:
    """``allow_other`` is root's right; other users need ``user_allow_other`` in /etc/fuse.conf."""
    if os.geteuid() == 0:
        return
    try:
        with open(fuse_conf) as handle:
            allowed = any(line.strip() == "user_allow_other" for line in handle)
    except OSError:
        allowed = False
    if not allowed:
        raise MemfsError(
            f"--allow-other: only root may use it unless {fuse_conf} has a line 'user_allow_other' "
            "(ask an administrator to add it, or mount as root)"
        )


def resolve_group(name: str) -> int:
    """The group id of ``name`` (a group name or a number), for ``--group``."""
    import grp

    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise MemfsError(f"--group {name}: no such group") from None


def _fuse_options(options: MountOptions) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "ro": True,
        "fsname": options.fsname,
        "subtype": "memfs",
        "default_permissions": True,
        "foreground": True,
        "nothreads": options.single_threaded,
        "debug": options.debug,
    }
    # libfuse 3.14 otherwise warns about an unset (-1) thread limit; two cores want a few workers.
    kwargs["max_threads"] = MAX_THREADS
    if options.allow_other:
        kwargs["allow_other"] = True
    for item in options.extra:
        for part in filter(None, item.split(",")):
            key, _, value = part.partition("=")
            kwargs[key] = value if value else True
    return kwargs


def _raise_read_ahead(mountpoint: str) -> None:
    """Best effort: raise the mount's read-ahead window (needs root; harmless if refused)."""
    try:
        dev = os.stat(mountpoint).st_dev
        path = f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb"
        with open(path, "w") as handle:
            handle.write(str(READ_AHEAD_KB))
    except OSError as exc:
        log.debug("could not raise read_ahead_kb: %s", exc)


def _zero_copy_fuse() -> type:
    """mfusepy's FUSE with reads filled straight into libfuse's reply buffer.

    mfusepy's own ``read`` takes a bytes object from the operations and copies it into the reply;
    building that object costs a join of the decoded pieces and the copy itself.  Here the view
    fills the reply buffer in place (``VirtualFile.read_into``): one copy fewer per request, and
    no 1 MiB temporaries for the allocator to fragment the heap with.
    """
    from mfusepy import FUSE

    class ZeroCopyFUSE(FUSE):
        def read(self, path, buf, size, offset, fip) -> int:  # noqa: D102 (libfuse callback)
            fh = fip.contents if self.raw_fi else fip.contents.fh
            reply = (ctypes.c_char * size).from_address(ctypes.addressof(buf.contents))
            name = None if path is None else path.decode(self.encoding, self.errors)
            return self.operations.read_into(name, memoryview(reply).cast("B"), offset, fh)

    return ZeroCopyFUSE


def run_fuse(files: dict[str, VirtualFile], mountpoint: str, options: MountOptions, on_ready=None) -> None:
    """Serve ``files`` at ``mountpoint`` until unmounted or interrupted (blocks)."""
    try:
        fuse_class = _zero_copy_fuse()
    except (ImportError, OSError) as exc:  # a missing libfuse is an OSError from ctypes
        raise MissingDependencyError(
            f"cannot mount: libfuse is not available ({exc}); install fuse3"
        ) from None
    from memfs.fuse.operations import MemfsOperations, mount_modes

    served = threading.Event()

    def ready() -> None:
        served.set()
        threading.Thread(target=_raise_read_ahead, args=(mountpoint,), daemon=True).start()
        if on_ready is not None:
            on_ready()

    tune_malloc()
    fuse_options = _fuse_options(options)
    # "-o allow_other" shares the mount as --allow-other does: the same owner-and-group modes apply.
    shared = bool(fuse_options.get("allow_other"))
    operations = MemfsOperations(
        files, on_ready=ready, gid=options.group, modes=mount_modes(shared, options.world_readable)
    )
    try:
        fuse_class(operations, mountpoint, raw_fi=True, **fuse_options)
    except RuntimeError as exc:
        # libfuse's loop reports a non-zero status when SIGINT/SIGTERM ended it; once the mount
        # has served, that is the clean way out, not a failure.
        if not served.is_set():
            raise MemfsError(f"{mountpoint}: mount failed (libfuse error {exc})") from None


READY = b"\0memfs-ready\n"
"""The line the daemon writes on its stderr pipe once the kernel has accepted the mount."""

LIBFUSE_NOISE = ("Ignoring invalid max threads value",)
"""libfuse 3.14 prints this for every mount made through fuse_main; it means nothing to a user."""


def mount_background(
    files: dict[str, VirtualFile], mountpoint: str, options: MountOptions, log_file: str | None = None
) -> int:
    """Fork a daemon that serves the mount; return its PID once the mount is ready.

    Until it is ready the daemon's stderr (its own errors and libfuse's) is a pipe that this process
    relays, so a failed mount reports its reason here; afterwards the daemon logs to ``log_file``
    (or syslog) and holds no descriptor of the caller's terminal or pipes.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the daemon
        os.close(read_end)
        os.setsid()
        _detach_stdio(stderr_to=write_end)
        status = 1

        def ready() -> None:
            os.write(2, READY)
            _redirect_log(log_file)

        try:
            run_fuse(files, mountpoint, options, on_ready=ready)
            status = 0
        except MemfsError as exc:
            os.write(2, f"memfs: error: {exc}\n".encode())
        except BaseException as exc:  # never let the child unwind into the parent's code
            os.write(2, f"memfs: error: {mountpoint}: mount failed: {exc}\n".encode())
        finally:
            os._exit(status)
    os.close(write_end)
    messages: list[str] = []
    with os.fdopen(read_end, "rb") as pipe:
        for raw in pipe:
            if raw == READY:
                return pid
            line = raw.decode(errors="replace").rstrip()
            if line and not line.startswith(LIBFUSE_NOISE):
                messages.append(line)
    os.waitpid(pid, 0)
    raise MemfsError(_failure_reason(mountpoint, messages))


def _failure_reason(mountpoint: str, messages: list[str]) -> str:
    """One line out of what a failed daemon said: its own error, or libfuse's if ours is only a status."""
    ours = [m.removeprefix("memfs: error: ") for m in messages if m.startswith("memfs: ")]
    theirs = [m for m in messages if not m.startswith("memfs: ")]
    if ours and not (theirs and "libfuse error" in ours[-1]):
        reason = ours[-1]
    elif theirs:
        reason = theirs[-1]
    else:
        reason = "the daemon exited"
    return reason if mountpoint in reason else f"{mountpoint}: mount failed: {reason}"


def _detach_stdio(stderr_to: int) -> None:
    """Let go of the caller's stdin/stdout; send stderr to ``stderr_to`` (the ready pipe)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(stderr_to, 2)
    os.close(devnull)
    os.close(stderr_to)


def _redirect_log(log_file: str | None) -> None:
    """Once mounted, the daemon's stderr and log go to ``log_file``, else to syslog."""
    import logging.handlers

    if log_file:
        target = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    else:
        target = os.open(os.devnull, os.O_WRONLY)
        if os.path.exists("/dev/log"):
            handler = logging.handlers.SysLogHandler(address="/dev/log")
            handler.setFormatter(logging.Formatter("memfs[%(process)d]: %(levelname)s: %(message)s"))
            logging.getLogger().addHandler(handler)
    os.dup2(target, 2)
    os.close(target)


def unmount(mountpoint: str, timeout: float = 10.0) -> None:
    """Unmount with fusermount3 (or fusermount, or umount as root) and wait until it is gone."""
    if not is_mounted(mountpoint):
        raise MemfsError(f"{mountpoint}: not mounted")
    for tool in ("fusermount3", "fusermount"):
        if shutil.which(tool):
            command = [tool, "-u", mountpoint]
            break
    else:
        command = ["umount", mountpoint]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise MemfsError(f"{mountpoint}: unmount failed: {reason[-1] if reason else 'unknown reason'}")
    deadline = time.monotonic() + timeout
    while is_mounted(mountpoint) and time.monotonic() < deadline:
        time.sleep(0.05)


def is_fuse_usable() -> bool:
    """Whether this machine can mount FUSE filesystems at all (for tests and diagnostics)."""
    return os.path.exists("/dev/fuse") and bool(shutil.which("fusermount3") or shutil.which("fusermount"))


__all__ = [
    "MountOptions",
    "resolve_group",
    "check_allow_other",
    "check_mountpoint",
    "mount_background",
    "run_fuse",
    "unmount",
    "is_fuse_usable",
]
