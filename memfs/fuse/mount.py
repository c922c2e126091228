"""Mounting: checks before mounting, foreground and background modes, unmounting.

Background mode forks *before* any FUSE thread starts; the child runs the FUSE loop in the
foreground and reports over a pipe once the kernel has accepted the mount (``init``), so
``memfs mount`` returns only when the mount is usable — or fails with the child's one-line reason,
or after :data:`READY_TIMEOUT` seconds.  Everything the daemon needs from its caller is settled
before the fork: paths are absolute (libfuse changes the daemon's directory to ``/``), the log
file is open, and the descriptors the caller handed down are closed in the daemon.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from memfs.allocator import tune_malloc
from memfs.exceptions import MemfsError, MissingDependencyError
from memfs.fuse.libfuse import LibFuse, select_libfuse
from memfs.memory import Section
from memfs.mounts import find_mount, is_mounted
from memfs.views.base import VirtualFile

log = logging.getLogger(__name__)

MAX_THREADS = 8
"""Worker threads of the multi-threaded FUSE loop (decoders release the GIL, so more than one helps)."""

READ_AHEAD_KB = 4096
"""Kernel read-ahead for the mount: sequential reads arrive as 1 MiB requests (the largest FUSE read) with
up to four in flight, so the FUSE threads decode while the reader copies.  A 1 GiB Huffman hiberfil read
by dd bs=1M: 615-665 MB/s at 1024 KiB, 760-764 at 4096, 716 at 8192 (docs/performance.md,
"Both cores for one reader")."""


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


FUSE_DEVICE = "/dev/fuse"
FUSE_CONF = "/etc/fuse.conf"

DOCTOR_HINT = "run `memfs doctor` to check this machine"
"""Ends every message of a mount that failed for a reason of the machine's, not the user's."""


def dead_mount_message(mountpoint: str, fstype: str) -> str:
    """What to say about a FUSE mount whose daemon is gone (every access fails with ENOTCONN)."""
    if fstype == "fuse.memfs":
        what, fix = "a memfs mount", f"memfs umount {mountpoint}"
    else:
        what, fix = f"a {fstype} mount", f"fusermount3 -u {mountpoint}"
    return f"{mountpoint}: {what} whose daemon died is still attached: run `{fix}`"


def is_dead_mount(mountpoint: str) -> bool:
    """Whether a FUSE mount sits at ``mountpoint`` with no daemon behind it any more."""
    if not is_mounted(mountpoint):
        return False
    try:
        os.statvfs(mountpoint)  # never answered from the kernel's cache, unlike stat
    except OSError as exc:
        return exc.errno == errno.ENOTCONN
    return False


def clear_dead_mount(mountpoint: str) -> bool:
    """Detach a dead *memfs* mount left at ``mountpoint``; True if one was cleared.

    Nothing can be read from a mount whose daemon died, so detaching it loses nothing; a dead
    mount of another filesystem is left alone for its owner (:func:`check_mountpoint` names it).
    """
    entry = find_mount(os.path.realpath(mountpoint)) if is_dead_mount(mountpoint) else None
    if entry is None or entry.fstype != "fuse.memfs":
        return False
    try:
        unmount(mountpoint)
    except MemfsError as exc:
        log.debug("could not clear the dead mount: %s", exc)
        return False
    return not is_mounted(mountpoint)


def check_fuse_device() -> None:
    """Refuse to go on when ``/dev/fuse`` is missing or cannot be opened by this user."""
    if not os.path.exists(FUSE_DEVICE):
        raise MissingDependencyError(
            f"cannot mount: {FUSE_DEVICE} is missing (load the fuse module, install fuse3); {DOCTOR_HINT}"
        )
    if not os.access(FUSE_DEVICE, os.R_OK | os.W_OK):
        # libfuse opens the device itself before trying fusermount3, and gives up if it cannot.
        raise MemfsError(
            f"cannot mount: no permission to open {FUSE_DEVICE} (it is normally mode 0666; "
            f"ask an administrator, or mount as root); {DOCTOR_HINT}"
        )


def check_mountpoint(mountpoint: str) -> None:
    """Refuse a mount point that is missing, not a directory, not empty, or already mounted.

    Also refuse when this machine cannot mount at all (``/dev/fuse``, libfuse), before the image is
    opened.
    """
    check_fuse_device()
    try:
        select_libfuse()
    except MissingDependencyError as exc:
        raise MissingDependencyError(f"cannot mount: {exc}; {DOCTOR_HINT}") from None
    if is_dead_mount(mountpoint):
        entry = find_mount(os.path.realpath(mountpoint))
        raise MemfsError(dead_mount_message(mountpoint, entry.fstype if entry else "FUSE"))
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
            f"(ask an administrator to add it, or mount as root); {DOCTOR_HINT}"
        )


LOOKUP_TIMEOUT = 3600.0
"""Seconds the kernel may remember a name or its absence: names never change while mounted."""


def thread_options(lib: LibFuse) -> dict[str, object]:
    """The worker-thread limit, where the loaded libfuse has one (``max_threads``, libfuse >= 3.12).

    libfuse 3.12–3.14 otherwise warn about an unset (-1) limit; two cores want a few workers.
    libfuse 2, 3.10 and 3.11 refuse the option as unknown and start threads as requests need them.
    """
    return {"max_threads": MAX_THREADS} if lib.knows_max_threads else {}


def resolve_group(name: str) -> int:
    """The group id of ``name`` (a group name or a number), for ``--group``."""
    import grp

    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise MemfsError(f"--group {name}: no such group") from None


def _fuse_options(options: MountOptions, lib: LibFuse) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "ro": True,
        "fsname": options.fsname,
        "subtype": "memfs",
        "default_permissions": True,
        "foreground": True,
        "nothreads": options.single_threaded,
        "debug": options.debug,
        # Options of the high-level library in libfuse 2 and 3 alike (libfuse 3 also has them in
        # fuse_config, which libfuse 2's init callback lacks).
        "entry_timeout": LOOKUP_TIMEOUT,
        "negative_timeout": LOOKUP_TIMEOUT,
        **thread_options(lib),
    }
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
    from memfs.fuse.libfuse import import_mfusepy

    class ZeroCopyFUSE(import_mfusepy().FUSE):
        def read(self, path, buf, size, offset, fip) -> int:  # noqa: D102 (libfuse callback)
            fh = fip.contents if self.raw_fi else fip.contents.fh
            reply = (ctypes.c_char * size).from_address(ctypes.addressof(buf.contents))
            name = None if path is None else path.decode(self.encoding, self.errors)
            return self.operations.read_into(name, memoryview(reply).cast("B"), offset, fh)

    return ZeroCopyFUSE


def mount_section(lib: LibFuse) -> Section:
    """The ``[Mount]`` section of a mount's header.txt: which libfuse serves it, and what that means."""
    rows = [("Served by", lib.describe()), ("Largest read request", lib.largest_read_text)]
    if lib.major < 3:
        rows.append(("", "libfuse 2 cannot negotiate larger requests; libfuse 3 (fuse3) would read 1 MiB"))
    return Section("Mount", rows)


def run_fuse(files: dict[str, VirtualFile], mountpoint: str, options: MountOptions, on_ready=None) -> None:
    """Serve ``files`` at ``mountpoint`` until unmounted or interrupted (blocks)."""
    lib = select_libfuse()
    fuse_class = _zero_copy_fuse()
    from memfs.fuse.operations import MemfsOperations, mount_modes

    served = threading.Event()

    def ready() -> None:
        served.set()
        threading.Thread(target=_raise_read_ahead, args=(mountpoint,), daemon=True).start()
        if on_ready is not None:
            on_ready()

    tune_malloc()
    fuse_options = _fuse_options(options, lib)
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
            raise MemfsError(
                f"{mountpoint}: mount failed (libfuse error {exc}, {lib.describe()}); {DOCTOR_HINT}"
            ) from None


READY = b"\0memfs-ready\n"
"""The line the daemon writes on its stderr pipe once the kernel has accepted the mount."""

READY_TIMEOUT = 60.0
"""Seconds ``memfs mount`` waits for the daemon's mount to come up (it takes well under one)."""

LIBFUSE_NOISE = ("Ignoring invalid max threads value",)
"""libfuse 3.14 prints this for every mount made through fuse_main; it means nothing to a user."""


def open_descriptors() -> set[int]:
    """The descriptors open in this process now (call it first thing: they are the inherited ones)."""
    try:
        listed = {int(name) for name in os.listdir("/proc/self/fd")}
    except OSError:
        return set()
    still_open = set()
    for fd in listed:  # drop the one the listing itself used, closed by now
        try:
            os.fstat(fd)
        except OSError:
            continue
        still_open.add(fd)
    return still_open


def open_log_file(path: str) -> int:
    """Open ``--log-file`` for appending before anything is mounted; one line if it cannot be."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        raise MemfsError(f"--log-file {path}: cannot open it for writing: {exc.strerror}") from None


def mount_background(
    files: dict[str, VirtualFile],
    mountpoint: str,
    options: MountOptions,
    log_fd: int | None = None,
    inherited: set[int] | None = None,
    timeout: float = READY_TIMEOUT,
) -> int:
    """Fork a daemon that serves the mount; return its PID once the mount is ready.

    Until it is ready the daemon's stderr (its own errors and libfuse's) is a pipe that this process
    relays, so a failed mount reports its reason here; afterwards the daemon logs to ``log_fd`` (an
    open ``--log-file``, else syslog).  The daemon closes ``inherited`` (the descriptors the caller
    of ``memfs`` handed down: see :func:`open_descriptors`), so it holds none of its terminal's or
    pipes'.  A daemon not ready within ``timeout`` seconds is stopped and the mount reported failed.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the daemon
        os.close(read_end)
        os.setsid()
        _close_inherited(inherited or set(), keep={write_end, log_fd})
        _detach_stdio(stderr_to=write_end)
        status = 1

        def ready() -> None:
            os.write(2, READY)
            _redirect_log(log_fd)

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
    try:
        messages, is_ready = _wait_until_ready(read_end, timeout)
    finally:
        os.close(read_end)
    if is_ready:
        return pid
    if _has_exited(pid):
        raise MemfsError(_failure_reason(mountpoint, messages))
    _stop_daemon(pid, mountpoint)
    raise MemfsError(
        f"{mountpoint}: the mount was not ready after {timeout:g} s; its daemon (pid {pid}) was stopped; "
        + DOCTOR_HINT
    )


def _wait_until_ready(pipe: int, timeout: float) -> tuple[list[str], bool]:
    """Lines the daemon wrote until it said READY (True), closed the pipe or ran out of time (False)."""
    deadline = time.monotonic() + timeout
    pending = b""
    messages: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
            return messages, False
        chunk = os.read(pipe, 4096)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if not chunk and pending:
            lines, pending = [*lines, pending], b""
        for raw in lines:
            if raw + b"\n" == READY:
                return messages, True
            line = raw.decode(errors="replace").rstrip()
            if line and not line.startswith(LIBFUSE_NOISE):
                messages.append(line)
        if not chunk:
            return messages, False


def _has_exited(pid: int, grace: float = 5.0) -> bool:
    """Reap ``pid`` if it exits within ``grace`` seconds (a daemon that closed its pipe is exiting)."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
        time.sleep(0.02)
    return False


def _stop_daemon(pid: int, mountpoint: str) -> None:
    """Stop a daemon that never became ready, and whatever half-made mount it left."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _has_exited(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if is_mounted(mountpoint):
        with contextlib.suppress(MemfsError):
            unmount(mountpoint)


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
    reason = reason if mountpoint in reason else f"{mountpoint}: mount failed: {reason}"
    return reason if DOCTOR_HINT in reason else f"{reason}; {DOCTOR_HINT}"


def _close_inherited(inherited: set[int], keep: set[int | None]) -> None:
    """Close what the daemon inherited from memfs's caller (0-2 are replaced by _detach_stdio)."""
    for fd in inherited - keep - {0, 1, 2}:
        with contextlib.suppress(OSError):
            os.close(fd)


def _detach_stdio(stderr_to: int) -> None:
    """Let go of the caller's stdin/stdout; send stderr to ``stderr_to`` (the ready pipe)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(stderr_to, 2)
    os.close(devnull)
    os.close(stderr_to)


def _redirect_log(log_fd: int | None) -> None:
    """Once mounted, the daemon's stderr and log go to ``log_fd`` (the open --log-file), else to syslog."""
    import logging.handlers

    if log_fd is not None:
        target = log_fd
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


__all__ = [
    "MountOptions",
    "resolve_group",
    "check_allow_other",
    "check_mountpoint",
    "clear_dead_mount",
    "mount_background",
    "mount_section",
    "open_descriptors",
    "open_log_file",
    "run_fuse",
    "unmount",
]
